//! The walking skeleton through the real stack: todo-api -> Dapr state + pub/sub
//! on Kafka -> audit-service through a Dapr subscription.

use std::time::Duration;

use e2e::{eventually, fresh_user, get, send, send_json, Stack};
use serde_json::json;

#[test]
fn created_task_is_listed_published_and_audited_once() {
    let stack = Stack::get();
    let user = fresh_user("skeleton");
    let token = stack.token(&user);

    let created = send_json("POST", &format!("{}/api/{user}/tasks", stack.api), &token, &json!({ "title": "  buy milk " }));
    assert_eq!(created.status, 201, "{:?}", created.json);
    let task = created.json.clone();
    let task_id = task["id"].as_str().expect("task id").to_owned();
    assert_eq!(task["title"], "buy milk");
    assert_eq!(task["completed"], false);
    assert_eq!(created.header("location"), Some(format!("/api/{user}/tasks/{task_id}").as_str()));
    assert_eq!(created.header("etag"), Some("\"1\""));

    let listed = get(&format!("{}/api/{user}/tasks", stack.api), &token);
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json["items"], json!([task]));

    eventually(Duration::from_secs(30), || (!stack.audit_entries(&user, &token).is_empty()).then_some(()))
        .expect("the audit service recorded the created event within 30 s");
    // Give a duplicate delivery time to show up before counting.
    std::thread::sleep(Duration::from_secs(2));
    let entries = stack.audit_entries(&user, &token);
    assert_eq!(entries.len(), 1, "exactly one audit entry: {entries:?}");
    let entry = &entries[0];
    assert_eq!(entry["event_type"], "com.todo.task.created.v1");
    assert_eq!(entry["task_id"], task_id.as_str());
    assert_eq!(entry["actor"], user.as_str());
    assert_eq!(entry["event_id"], entry["data"]["event_id"], "the CloudEvent id is the event's id");
    assert_eq!(entry["data"]["seq"], 1);
    assert_eq!(entry["data"]["task"], task);
    stack.assert_matches_contract("events/task-event.schema.json", &entry["data"]);

    let verified = get(&format!("{}/audit/{user}/verify", stack.audit), &token);
    assert_eq!(verified.json["intact"], true, "{:?}", verified.json);
    assert_eq!(verified.json["entries"], 1);
    assert_eq!(verified.json["head_hash"], entry["hash"]);
}

#[test]
fn redelivered_event_is_recorded_once() {
    let stack = Stack::get();
    let user = fresh_user("redelivery");
    let token = stack.token(&user);
    let event_id = uuid::Uuid::now_v7().to_string();
    let task_id = uuid::Uuid::now_v7().to_string();
    let now = "2026-01-01T00:00:00Z";
    let cloudevent = json!({
        "specversion": "1.0", "id": event_id, "source": "todo-api", "type": "com.todo.task.created.v1",
        "subject": task_id, "time": now, "datacontenttype": "application/json",
        "data": {
            "event_id": event_id, "type": "com.todo.task.created.v1", "user_id": user, "seq": 1, "time": now,
            "task": { "id": task_id, "user_id": user, "title": "t", "completed": false, "completed_at": null,
                      "created_at": now, "updated_at": now, "version": 1 }
        }
    });
    // The same CloudEvent published twice, as a redelivery would bring it.
    for _ in 0..2 {
        stack.publish_cloudevent("task-events", &user, &cloudevent);
    }
    eventually(Duration::from_secs(30), || (!stack.audit_entries(&user, &token).is_empty()).then_some(())).expect("the event was recorded");
    std::thread::sleep(Duration::from_secs(2));
    let entries = stack.audit_entries(&user, &token);
    assert_eq!(entries.len(), 1, "a redelivered event adds nothing: {entries:?}");
    assert_eq!(entries[0]["event_id"], event_id.as_str());
}

#[test]
fn dapr_only_routes_refuse_other_callers() {
    let stack = Stack::get();
    let event = json!({ "id": "x", "type": "t", "data": {} });
    let url = format!("{}/internal/audit/task-events", stack.audit);
    let body = json!({ "entries": [{ "entryId": "0", "event": event }] }).to_string();
    let without = send("POST", &url, &[], Some(("application/json", body.as_bytes())));
    assert_eq!(without.status, 401);
    let wrong = send("POST", &url, &[("dapr-api-token", "guess")], Some(("application/json", body.as_bytes())));
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.header("content-type"), Some("application/problem+json"));
    // The real token gets through, and an event that can never be recorded is dropped (to the DLQ).
    let (right, statuses) = e2e::deliver_bulk(&url, stack.app_token(), "task-events", &[event]);
    assert_eq!((right.status, statuses), (200, vec![Some("DROP".to_owned())]), "{:?}", right.json);
    // A body that is no bulk delivery (a lone CloudEvent) is a 400, not a silent success.
    let lone = json!({ "id": "x", "type": "t", "data": {} }).to_string();
    let refused = send("POST", &url, &[("dapr-api-token", stack.app_token())], Some(("application/cloudevents+json", lone.as_bytes())));
    assert_eq!((refused.status, refused.header("content-type")), (400, Some("application/problem+json")));
}
