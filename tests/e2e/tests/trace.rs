//! One trace across the system: the W3C trace context of a request reaches
//! the CloudEvent that todo-api publishes, and the audit entry of that event
//! records its trace id.

use std::time::Duration;

use e2e::{eventually, fresh_user, send, Stack};
use serde_json::json;

#[test]
fn a_requests_trace_id_reaches_the_audit_entry_of_its_event() {
    let stack = Stack::get();
    let user = fresh_user("trace");
    let token = stack.token(&user);
    let trace_id = uuid::Uuid::now_v7().simple().to_string();
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let auth = format!("Bearer {token}");
    let headers = [("authorization", auth.as_str()), ("traceparent", traceparent.as_str()), ("tracestate", "todo=e2e")];
    let body = json!({ "title": "traced" }).to_string();
    let created = send("POST", &format!("{}/api/{user}/tasks", stack.api), &headers, Some(("application/json", body.as_bytes())));
    assert_eq!(created.status, 201, "{:?}", created.json);
    // A second write without a trace context records none.
    let untraced = e2e::send_json("POST", &format!("{}/api/{user}/tasks", stack.api), &token, &json!({ "title": "untraced" }));
    assert_eq!(untraced.status, 201);

    let entries = eventually(Duration::from_secs(30), || Some(stack.audit_entries(&user, &token)).filter(|e| e.len() == 2))
        .expect("both events reach the audit log");
    let traced = entries.iter().find(|e| e["task_id"] == created.json["id"]).expect("the traced task's entry");
    assert_eq!(traced["trace_id"].as_str(), Some(trace_id.as_str()), "{traced}");
    let other = entries.iter().find(|e| e["task_id"] == untraced.json["id"]).expect("the untraced task's entry");
    assert!(other.get("trace_id").is_none_or(|t| t != trace_id.as_str()), "{other}");
    e2e::assert_matches_openapi("AuditEntry", traced);
    let verify = e2e::get(&format!("{}/audit/{user}/verify", stack.audit), &token);
    assert_eq!(verify.json["intact"], true, "{:?}", verify.json);
}
