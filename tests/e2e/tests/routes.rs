//! Route parity on the running stack: every operation in the OpenAPI document
//! is routed by `spin.toml` to the component its tag names, and that component
//! really serves it; every concrete route of `spin.toml` is served by its
//! component; a path no route has answers 404 from every component.

use e2e::{send, Stack};
use serde_json::Value;

/// A `[[trigger.http]]` of `spin.toml`.
struct SpinRoute {
    route: String,
    component: String,
}

fn spin_routes() -> Vec<SpinRoute> {
    let manifest: toml::Table = include_str!("../../../spin.toml").parse().expect("spin.toml parses");
    let triggers = manifest["trigger"]["http"].as_array().expect("[[trigger.http]]");
    let routes: Vec<SpinRoute> = triggers
        .iter()
        .map(|t| SpinRoute {
            route: t["route"].as_str().expect("route").to_owned(),
            component: t["component"].as_str().expect("component").to_owned(),
        })
        .collect();
    assert!(routes.len() >= 20, "read the routes of spin.toml");
    routes
}

/// How well `route` matches `path`: `None` when it does not; more literal
/// segments and no trailing wildcard rank higher, as Spin resolves them.
fn specificity(route: &str, path: &str) -> Option<(usize, bool)> {
    let (prefix, wildcard) = match route.strip_suffix("/...") {
        Some(prefix) => (prefix, true),
        None => (route, false),
    };
    let want: Vec<&str> = prefix.split('/').collect();
    let have: Vec<&str> = path.split('/').collect();
    if have.len() < want.len() || (!wildcard && have.len() != want.len()) {
        return None;
    }
    let mut literal = 0;
    for (w, h) in want.iter().zip(&have) {
        match w.strip_prefix(':') {
            Some(_) if !h.is_empty() => {}
            None if w == h => literal += 1,
            _ => return None,
        }
    }
    Some((literal, !wildcard))
}

/// The component that Spin routes `path` to.
fn routed_component<'a>(routes: &'a [SpinRoute], path: &str) -> Option<&'a str> {
    routes.iter().filter_map(|r| specificity(&r.route, path).map(|s| (s, r))).max_by_key(|(s, _)| *s).map(|(_, r)| r.component.as_str())
}

/// The component's address on the stack (`TODO_API_URL`, ...).
fn address(component: &str) -> String {
    let var = format!("{}_URL", component.to_uppercase().replace('-', "_"));
    std::env::var(&var).unwrap_or_else(|_| panic!("{var} is not set"))
}

/// A concrete path for an OpenAPI path (`{x}`) or a Spin route (`:x`).
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{id}" | ":id" => "0190a4a4-0000-7000-8000-000000000000",
            s if s.starts_with('{') || s.starts_with(':') => "route-probe",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// What the component answers to `method path` without credentials.
fn probe(component: &str, method: &str, path: &str) -> u16 {
    let body = (method != "GET").then_some(("application/json", &b"{}"[..]));
    send(&method.to_uppercase(), &format!("{}{path}", address(component)), &[], body).status
}

#[test]
fn every_documented_operation_is_routed_to_and_served_by_its_component() {
    let _stack = Stack::get();
    let routes = spin_routes();
    let doc: Value = serde_json::from_str(include_str!("../../../specs/contracts/openapi.json")).expect("valid JSON");
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Some(component) = op["tags"][0].as_str() else { continue };
            let concrete = concrete(path);
            assert_eq!(routed_component(&routes, &concrete), Some(component), "spin.toml routes {method} {path} elsewhere");
            // Without credentials: 2xx for public routes, 401 for the rest;
            // never the router's 404 or 405.
            let status = probe(component, method, &concrete);
            assert!(![404, 405].contains(&status), "{component} does not serve {method} {path}: {status}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "checked {checked} operations");
}

#[test]
fn every_concrete_spin_route_is_served_and_unknown_paths_are_not() {
    let _stack = Stack::get();
    let routes = spin_routes();
    let mut checked = 0;
    for r in routes.iter().filter(|r| !r.route.ends_with("/...")) {
        let path = concrete(&r.route);
        let statuses = [probe(&r.component, "GET", &path), probe(&r.component, "POST", &path)];
        assert!(statuses.iter().any(|s| *s != 404), "{} does not serve {}: {statuses:?}", r.component, r.route);
        checked += 1;
    }
    assert!(checked >= 15, "checked {checked} routes");
    // The probes tell a served route from a missing one.
    for component in routes.iter().map(|r| r.component.as_str()).collect::<std::collections::BTreeSet<_>>() {
        assert_eq!(probe(component, "GET", &format!("/healthz/{component}/no-such-route")), 404, "{component}");
    }
}

#[test]
fn the_route_matcher_ranks_as_spin_does() {
    let routes = spin_routes();
    assert_eq!(routed_component(&routes, "/api/u/changes"), Some("notify-service"));
    assert_eq!(routed_component(&routes, "/api/u/tasks/1/complete"), Some("todo-api"));
    assert_eq!(routed_component(&routes, "/job/outbox-relay"), Some("todo-api"));
    assert_eq!(routed_component(&routes, "/job/reminder-1-2"), Some("reminder-service"));
    assert_eq!(routed_component(&routes, "/nowhere"), None);
}

#[test]
fn a_method_a_documented_path_does_not_take_is_a_405_naming_the_documented_methods() {
    let _stack = Stack::get();
    let doc: Value = serde_json::from_str(include_str!("../../../specs/contracts/openapi.json")).expect("valid JSON");
    let methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let item = item.as_object().expect("path item");
        let Some(component) = item.values().find_map(|op| op["tags"][0].as_str()) else { continue };
        let mut documented: Vec<String> = item.keys().filter(|m| methods.contains(&m.as_str())).map(|m| m.to_uppercase()).collect();
        documented.sort();
        // TRACE, and a method of the API that this path does not take.
        let other = ["PUT", "DELETE", "PATCH", "POST"].into_iter().find(|m| !documented.iter().any(|d| d == m));
        for method in ["TRACE"].into_iter().chain(other) {
            let reply = send(method, &format!("{}{}", address(component), concrete(path)), &[], None);
            assert_eq!(reply.status, 405, "{method} {path} on {component}");
            assert_eq!(reply.header("content-type"), Some("application/problem+json"), "{method} {path}");
            // `Allow` names the documented methods (and HEAD where GET is served).
            let mut allow: Vec<String> =
                reply.header("allow").unwrap_or_default().split(", ").filter(|m| *m != "HEAD").map(str::to_owned).collect();
            allow.sort();
            assert_eq!(allow, documented, "Allow of {path} on {component}");
            checked += 1;
        }
    }
    assert!(checked >= 35, "checked {checked} requests");
}
