//! Routing under one origin: every public route of a component in `spin.toml`
//! reaches that component's Service through the Ingress, and no internal route
//! (`/internal/`, `/job/`, `/healthz/`, `/readyz/`: Dapr's and the kubelet's calls) is
//! reachable. Paths are matched as ingress-nginx does with `use-regex`: each is a
//! case-insensitive regular expression anchored at the start, the longest first.

use regex::Regex;

use super::checks::Objects;
use super::facts::Facts;

/// Route prefixes that only the cluster itself may call.
const INTERNAL: &[&str] = &["/internal/", "/job/", "/healthz/", "/readyz/"];

/// A request path that the Spin route pattern serves.
fn sample(route: &str) -> String {
    route
        .split('/')
        .map(|s| {
            if s.starts_with(':') {
                "alice1"
            } else if s == "..." {
                "x"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `(path regex, service name)` of every Ingress rule, longest path first.
fn paths(objects: &Objects, faults: &mut Vec<String>) -> Vec<(Regex, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for ingress in objects.of("Ingress") {
        let regex = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/use-regex"] == "true";
        for rule in ingress["spec"]["rules"].as_array().into_iter().flatten() {
            for p in rule["http"]["paths"].as_array().into_iter().flatten() {
                let (path, service) = (p["path"].as_str().unwrap_or("/"), p["backend"]["service"]["name"].as_str().unwrap_or(""));
                let pattern = match (regex, p["pathType"].as_str()) {
                    (true, _) => path.to_owned(),
                    (false, Some("Exact")) => format!("{}$", regex::escape(path)),
                    (false, _) => format!("{}(/|$)", regex::escape(path.trim_end_matches('/'))),
                };
                let ns = ingress["metadata"]["namespace"].as_str().unwrap_or("");
                let port = &p["backend"]["service"]["port"]["number"];
                match objects.find("Service", ns, service) {
                    Some(svc) if svc["spec"]["ports"].as_array().into_iter().flatten().any(|sp| sp["port"] == *port) => {}
                    _ => faults.push(format!("Ingress path {path}: Service {ns}/{service} with port {port} does not exist")),
                }
                out.push((pattern, service.to_owned()));
            }
        }
    }
    out.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    out.into_iter()
        .filter_map(|(p, s)| match Regex::new(&format!("(?i)^{p}")) {
            Ok(r) => Some((r, s)),
            Err(e) => {
                faults.push(format!("Ingress path {p} is no valid regular expression: {e}"));
                None
            }
        })
        .collect()
}

/// Every component route against the Ingress.
pub fn check(objects: &Objects, facts: &Facts) -> Vec<String> {
    let mut faults = Vec::new();
    let paths = paths(objects, &mut faults);
    if paths.is_empty() {
        faults.push("no Ingress: the frontend cannot reach the APIs".into());
    }
    for app in objects.apps(facts) {
        let service = app.spinapp["metadata"]["name"].as_str().unwrap_or("");
        for route in &app.component.routes {
            let path = sample(route);
            let reached = paths.iter().find(|(r, _)| r.is_match(&path)).map(|(_, s)| s.as_str());
            let internal = INTERNAL.iter().any(|p| route.starts_with(p));
            match (internal, reached) {
                (true, Some(s)) => faults.push(format!("{route} of {} is internal but the Ingress sends {path} to {s}", app.id)),
                (false, r) if r != Some(service) => {
                    faults.push(format!("{route} of {}: the Ingress sends {path} to {r:?}, not Service {service}", app.id))
                }
                _ => {}
            }
        }
    }
    faults
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn objects(paths: Value) -> Objects {
        let mut objects = crate::k8s::checks::tests::good();
        for svc in ["api", "worker"] {
            objects.push(json!({"kind": "Service", "metadata": {"name": svc, "namespace": "ns"}, "spec": {"ports": [{"port": 80}]}}));
        }
        objects.push(json!({"kind": "Ingress", "metadata": {"name": "i", "namespace": "ns", "annotations": {"nginx.ingress.kubernetes.io/use-regex": "true"}},
            "spec": {"rules": [{"http": {"paths": paths}}]}}));
        Objects(objects)
    }

    fn path(p: &str, service: &str) -> Value {
        json!({"path": p, "pathType": "ImplementationSpecific", "backend": {"service": {"name": service, "port": {"number": 80}}}})
    }

    fn facts() -> Facts {
        let mut facts = crate::k8s::checks::tests::facts();
        facts.components.get_mut("api").unwrap().routes.push("/api/...".into());
        facts.components.get_mut("worker").unwrap().routes.push("/api/:user/feed".into());
        facts
    }

    #[test]
    fn longest_path_wins_and_internal_routes_stay_inside() {
        let good = objects(json!([path("/api(/.*)?$", "api"), path("/api/[^/]+/feed$", "worker")]));
        assert_eq!(check(&good, &facts()), Vec::<String>::new());
    }

    #[test]
    fn a_route_the_ingress_misroutes_or_exposes_fails() {
        let faults = check(&objects(json!([path("/api(/.*)?$", "api")])), &facts());
        assert!(faults.iter().any(|f| f.contains("/api/:user/feed of worker")), "{faults:?}");
        let faults = check(&objects(json!([path("/", "api"), path("/api/[^/]+/feed$", "worker")])), &facts());
        assert!(faults.iter().any(|f| f.contains("is internal")), "{faults:?}");
        let faults = check(&objects(json!([path("/api(/.*)?$", "nope"), path("/api/[^/]+/feed$", "worker")])), &facts());
        assert!(faults.iter().any(|f| f.contains("Service ns/nope")), "{faults:?}");
    }
}
