//! `cargo xtask openapi`: writes into `specs/contracts/openapi.json` every rule
//! that the domain crate enforces and the document states (lengths, limits,
//! patterns, enums), taken from `todo-domain`'s constants and patterns, and
//! each path's `servers` (its service's local port, the cluster's single
//! origin). A test fails when the committed document differs from that.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use todo_domain::{audit, feed, fields, ids, precondition, query, quick, schedule};

use crate::stack::{Ports, APPS};

/// The committed document, relative to the workspace root.
const DOCUMENT: &str = "specs/contracts/openapi.json";

/// The service that serves each path prefix, most specific first (as
/// `spin.toml` routes them).
const SERVICES: &[(&str, &str)] = &[
    ("/api/{user_id}/changes", "notify-service"),
    ("/api/{user_id}/stream", "notify-service"),
    ("/api/{user_id}/notifications", "notify-service"),
    ("/healthz/notify-service", "notify-service"),
    ("/readyz/notify-service", "notify-service"),
    ("/audit/", "audit-service"),
    ("/healthz/audit-service", "audit-service"),
    ("/readyz/audit-service", "audit-service"),
    ("/", "todo-api"),
];

/// The service of `path` and its port on the default local stack.
fn service(path: &str) -> (&'static str, u16) {
    let app = SERVICES.iter().find(|(prefix, _)| path.starts_with(prefix)).map(|(_, app)| *app).expect("`/` matches");
    let index = APPS.iter().position(|a| *a == app).expect("an app-id");
    (app, Ports::default_dev().app(index))
}

/// The `servers` of a path served by `app` on `port` locally.
fn servers(app: &str, port: u16) -> Value {
    let var = format!("{}_port", app.replace('-', "_"));
    json!([
        {
            "url": format!("http://127.0.0.1:{{{var}}}"),
            "description": format!("{app}, local stack (`cargo xtask dev`; each service has its own port, plus TODO_PORT_OFFSET)"),
            "variables": { var: { "default": port.to_string() } }
        },
        {
            "url": "{origin}",
            "description": "the cluster: one origin for every service (spinkube/apps/ingress.yaml)",
            "variables": { "origin": { "default": "http://localhost" } }
        }
    ])
}

/// The domain's rules, as (JSON pointer, value).
fn rules() -> Vec<(String, Value)> {
    let mut rules: Vec<(String, Value)> = Vec::new();
    let mut set = |pointer: &str, value: Value| rules.push((pointer.to_owned(), value));
    let zones: Vec<Value> = schedule::TimeZone::names().map(|z| json!(z)).chain([Value::Null]).collect();
    let priorities: Vec<Value> = fields::Priority::ALL.iter().map(|p| json!(p)).chain([Value::Null]).collect();
    for body in ["NewTask", "TaskPatch"] {
        let props = format!("/components/schemas/{body}/properties");
        set(&format!("{props}/title/pattern"), json!(fields::title_pattern()));
        set(&format!("{props}/description/maxLength"), json!(fields::DESCRIPTION_MAX));
        set(&format!("{props}/priority/enum"), json!(priorities));
        set(&format!("{props}/tags/maxItems"), json!(fields::TAGS_MAX));
        set(&format!("{props}/tags/items/maxLength"), json!(fields::TAG_MAX));
        set(&format!("{props}/reminders/maxItems"), json!(schedule::REMINDERS_MAX));
        set(&format!("{props}/time_zone/enum"), json!(zones));
    }
    set("/components/schemas/QuickAdd/properties/time_zone/enum", json!(zones));
    set("/components/schemas/UserId/pattern", json!(format!("^[A-Za-z0-9._@|-]{{1,{}}}$", ids::USER_ID_MAX)));
    set("/components/schemas/QuickAdd/properties/text/maxLength", json!(quick::TEXT_MAX));
    set("/components/schemas/QuickAdd/properties/text/pattern", json!(quick::text_pattern()));
    set("/components/parameters/IfMatch/schema/pattern", json!(precondition::IF_MATCH_PATTERN));
    set("/components/parameters/Limit/schema/anyOf/0/maximum", json!(query::LIMIT_MAX));
    set("/components/parameters/Limit/schema/anyOf/0/default", json!(query::LIMIT_DEFAULT));
    set("/components/parameters/Q/schema/maxLength", json!(query::Q_MAX));
    // Page sizes; cursors are positions (u64).
    for path in ["/audit/{user_id}", "/api/{user_id}/changes", "/api/{user_id}/notifications"] {
        let (max, default) =
            if path.starts_with("/audit") { (audit::PAGE_MAX, audit::PAGE_DEFAULT) } else { (feed::PAGE_MAX, feed::PAGE_DEFAULT) };
        let params = format!("/paths/{}/get/parameters", path.replace('/', "~1"));
        set(&format!("{params}/0/schema/anyOf/0/maximum"), json!(u64::MAX));
        set(&format!("{params}/1/schema/anyOf/0/maximum"), json!(max));
        set(&format!("{params}/1/schema/anyOf/0/default"), json!(default));
    }
    set("/paths/~1api~1{user_id}~1stream/get/parameters/0/schema/maximum", json!(u64::MAX));
    rules
}

/// `document` with the domain's rules and each path's `servers` written in.
pub fn generate(mut document: Value) -> Result<Value> {
    for (pointer, value) in rules() {
        let (at, key) = pointer.rsplit_once('/').expect("pointers start with /");
        let parent = document.pointer_mut(at).and_then(Value::as_object_mut);
        parent.with_context(|| format!("the document has no object at {at}"))?.insert(key.replace("~1", "/"), value);
    }
    let paths = document["paths"].as_object_mut().context("the document has no paths")?;
    for (path, item) in paths.iter_mut() {
        let (app, port) = service(path);
        item["servers"] = servers(app, port);
    }
    Ok(document)
}

/// The JSON pointers where `committed` differs from `generated`.
fn stale(committed: &Value, generated: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (pointer, _) in rules() {
        if committed.pointer(&pointer) != generated.pointer(&pointer) {
            out.push(pointer);
        }
    }
    for (path, item) in generated["paths"].as_object().into_iter().flatten() {
        if committed["paths"][path]["servers"] != item["servers"] {
            out.push(format!("/paths/{}/servers", path.replace('/', "~1")));
        }
    }
    out
}

/// `cargo xtask openapi`: rewrites the committed document when a rule or a
/// server is stale (keys in `serde_json`'s order; the test compares values).
pub fn write() -> Result<()> {
    let file = crate::paths::root().join(DOCUMENT);
    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let committed: Value = serde_json::from_str(&text)?;
    let generated = generate(committed.clone())?;
    let stale = stale(&committed, &generated);
    if stale.is_empty() {
        println!("{DOCUMENT}: up to date");
        return Ok(());
    }
    std::fs::write(&file, serde_json::to_string_pretty(&generated)? + "\n")?;
    println!("{DOCUMENT}: updated {}", stale.join(", "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed() -> Value {
        serde_json::from_str(&std::fs::read_to_string(crate::paths::root().join(DOCUMENT)).unwrap()).unwrap()
    }

    #[test]
    fn the_committed_document_states_the_domain_rules() {
        let committed = committed();
        let stale = stale(&committed, &generate(committed.clone()).unwrap());
        assert!(stale.is_empty(), "{DOCUMENT} is stale at {stale:?}: run `cargo xtask openapi` and commit it");
    }

    #[test]
    fn a_stale_rule_or_server_is_caught() {
        let mut stale_doc = generate(committed()).unwrap();
        stale_doc["components"]["schemas"]["NewTask"]["properties"]["tags"]["maxItems"] = json!(fields::TAGS_MAX + 1);
        stale_doc["paths"]["/audit/{user_id}"]["servers"][0]["variables"]["audit_service_port"]["default"] = json!("3000");
        let found = stale(&stale_doc, &generate(stale_doc.clone()).unwrap());
        assert_eq!(found, ["/components/schemas/NewTask/properties/tags/maxItems", "/paths/~1audit~1{user_id}/servers"]);
    }

    #[test]
    fn each_path_names_its_own_service() {
        assert_eq!(service("/api/{user_id}/tasks"), ("todo-api", 3000));
        assert_eq!(service("/api/{user_id}/stream-token"), ("notify-service", 3004));
        assert_eq!(service("/audit/{user_id}/verify"), ("audit-service", 3003));
        assert_eq!(service("/openapi.json"), ("todo-api", 3000));
    }
}
