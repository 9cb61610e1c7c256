//! Recurring tasks through the real stack: completing a recurring task makes
//! recurring-service create the next occurrence through Dapr service
//! invocation of todo-api, exactly once, whatever is redelivered or raced.

use std::time::Duration;

use e2e::{eventually, fresh_user, get, send, send_json, Reply, Stack};
use serde_json::{json, Value};

const CREATED: &str = "com.todo.task.created.v1";
const COMPLETED: &str = "com.todo.task.completed.v1";
const UPDATED: &str = "com.todo.task.updated.v1";

struct User<'a> {
    stack: &'a Stack,
    name: String,
    token: String,
}

impl<'a> User<'a> {
    fn new(stack: &'a Stack, prefix: &str) -> Self {
        let name = fresh_user(prefix);
        let token = stack.token(&name);
        User { stack, name, token }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/{}{}", self.stack.api, self.name, path)
    }

    fn create(&self, body: Value) -> Value {
        let reply = send_json("POST", &self.url("/tasks"), &self.token, &body);
        assert_eq!(reply.status, 201, "create {body}: {:?}", reply.json);
        reply.json
    }

    fn patch(&self, id: &str, body: Value) -> Value {
        let reply = send_json("PATCH", &self.url(&format!("/tasks/{id}")), &self.token, &body);
        assert_eq!(reply.status, 200, "patch {body}: {:?}", reply.json);
        reply.json
    }

    fn tasks(&self) -> Vec<Value> {
        let reply = get(&self.url("/tasks?limit=200"), &self.token);
        assert_eq!(reply.status, 200, "{:?}", reply.json);
        reply.json["items"].as_array().cloned().unwrap_or_default()
    }

    /// The tasks once there are `n`, checked again after a pause so that a
    /// late duplicate would show.
    fn tasks_settled(&self, n: usize) -> Vec<Value> {
        let found = eventually(Duration::from_secs(30), || (self.tasks().len() >= n).then_some(()));
        assert!(found.is_some(), "expected {n} tasks within 30 s, have {:?}", self.tasks());
        std::thread::sleep(Duration::from_secs(3));
        let tasks = self.tasks();
        assert_eq!(tasks.len(), n, "exactly {n} tasks: {tasks:#?}");
        tasks
    }

    /// The user's audit entries once there are at least `n`.
    fn audit_at_least(&self, n: usize) -> Vec<Value> {
        let found = eventually(Duration::from_secs(30), || {
            let entries = self.stack.audit_entries(&self.name, &self.token);
            (entries.len() >= n).then_some(entries)
        });
        found.unwrap_or_else(|| panic!("expected {n} audit entries within 30 s"))
    }

    /// `POST /internal/todo/{user}/occurrences` as todo-api's sidecar would forward it.
    fn request_occurrence(&self, body: &Value, app_token: Option<&str>) -> Reply {
        let url = format!("{}/internal/todo/{}/occurrences", self.stack.api, self.name);
        let headers: Vec<(&str, &str)> = app_token.map(|t| vec![("dapr-api-token", t)]).unwrap_or_default();
        send("POST", &url, &headers, Some(("application/json", body.to_string().as_bytes())))
    }
}

fn types(entries: &[Value]) -> Vec<String> {
    entries.iter().map(|e| e["event_type"].as_str().unwrap_or_default().to_owned()).collect()
}

/// The CloudEvent todo-api published for an event (as the audit log kept its data).
fn cloudevent(data: &Value) -> Value {
    json!({
        "specversion": "1.0",
        "id": data["event_id"],
        "type": data["type"],
        "source": "todo-api",
        "subject": data["task"]["id"],
        "datacontenttype": "application/json",
        "data": data,
    })
}

fn daily(title: &str) -> Value {
    // Saturday 2030-03-30 09:00 in Berlin (CET); DST starts on Sunday the 31st.
    json!({
        "title": title, "description": "weekly numbers", "priority": "high", "tags": ["work"],
        "due_at": "2030-03-30T09:00:00+01:00", "time_zone": "Europe/Berlin",
        "reminders": ["PT15M", "2030-03-29T20:00:00+01:00"],
        "recurrence": { "text": "every day" },
    })
}

#[test]
fn completing_creates_the_next_occurrence_at_the_same_local_time() {
    let stack = Stack::get();
    let user = User::new(&stack, "recur-next");
    let first = user.create(daily("Report"));
    let first_id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(first["recurrence"], json!({ "rrule": "FREQ=DAILY", "anchor": "due", "text": "every day" }));
    assert_eq!((&first["series_id"], &first["occurrence"]), (&first["id"], &json!(1)));

    let done =
        send("PATCH", &user.url(&format!("/tasks/{first_id}/complete")), &[("authorization", &format!("Bearer {}", user.token))], None);
    assert_eq!(done.status, 200, "{:?}", done.json);
    let tasks = user.tasks_settled(2);
    let next = tasks.iter().find(|t| t["id"] != first["id"]).expect("the next occurrence");
    // Saturday 09:00 CET -> Sunday 09:00 CEST (the day DST starts): 07:00 UTC.
    assert_eq!(next["due_at"], "2030-03-31T07:00:00Z");
    assert_eq!(next["time_zone"], "Europe/Berlin");
    // The offset stays; the absolute reminder keeps its local relation to the
    // due date: 20:00 CET the evening before (19:00 UTC), not 23 hours later (19:00 CET).
    assert_eq!(next["reminders"], json!(["PT15M", "2030-03-30T19:00:00Z"]));
    assert_eq!(next["recurrence"], first["recurrence"]);
    assert_eq!((&next["series_id"], &next["occurrence"]), (&first["id"], &json!(2)));
    assert_eq!(
        (&next["title"], &next["description"], &next["priority"], &next["tags"]),
        (&first["title"], &first["description"], &first["priority"], &first["tags"])
    );
    assert_eq!((&next["completed"], &next["completed_at"]), (&json!(false), &Value::Null));
    let history = tasks.iter().find(|t| t["id"] == first["id"]).unwrap();
    assert_eq!(history["completed"], true, "the completed occurrence stays as history");

    // The creation is an ordinary `created` event, valid against the contract.
    let entries = user.audit_at_least(3);
    assert_eq!(types(&entries), [CREATED, COMPLETED, CREATED]);
    assert_eq!(entries[2]["data"]["task"]["id"], next["id"]);
    for entry in &entries {
        stack.assert_matches_contract("events/task-event.schema.json", &entry["data"]);
    }

    // Completing occurrence 2 makes occurrence 3, a day later.
    let next_id = next["id"].as_str().unwrap();
    user.patch(next_id, json!({ "completed": true }));
    let tasks = user.tasks_settled(3);
    let third = tasks.iter().find(|t| t["occurrence"] == 3).expect("occurrence 3");
    assert_eq!((&third["due_at"], &third["series_id"]), (&json!("2030-04-01T07:00:00Z"), &first["id"]));
}

#[test]
fn a_client_idempotency_key_cannot_suppress_an_occurrence() {
    let stack = Stack::get();
    let user = User::new(&stack, "recur-key");
    let first = user.create(daily("Series"));
    let series = first["id"].as_str().unwrap().to_owned();
    // A client's key that spells the occurrence record of the series' second task.
    let key = format!("recur:{series}:2");
    let auth = format!("Bearer {}", user.token);
    let body = json!({ "title": "a client's own task" });
    let reply = send(
        "POST",
        &user.url("/tasks"),
        &[("authorization", &auth), ("idempotency-key", &key)],
        Some(("application/json", body.to_string().as_bytes())),
    );
    assert_eq!(reply.status, 201, "{:?}", reply.json);
    user.patch(&series, json!({ "completed": true }));
    let tasks = user.tasks_settled(3);
    let next = tasks.iter().find(|t| t["occurrence"] == 2).unwrap_or_else(|| panic!("occurrence 2 was created: {tasks:#?}"));
    assert_eq!(next["series_id"], first["id"]);
}

#[test]
fn a_redelivered_completion_or_a_recompletion_creates_no_second_occurrence() {
    let stack = Stack::get();
    let user = User::new(&stack, "recur-redeliver");
    let first = user.create(daily("Redelivered"));
    let id = first["id"].as_str().unwrap().to_owned();
    user.patch(&id, json!({ "completed": true }));
    user.tasks_settled(2);

    // The same completed event, delivered twice more (same CloudEvent id).
    let entries = user.audit_at_least(3);
    let completed = entries.iter().find(|e| e["event_type"] == COMPLETED).expect("the completed event");
    let event = cloudevent(&completed["data"]);
    stack.publish_cloudevent("task-events", &user.name, &event);
    stack.publish_cloudevent("task-events", &user.name, &event);
    // Reopen and complete again: a new completed event of the same occurrence.
    user.patch(&id, json!({ "completed": false }));
    user.patch(&id, json!({ "completed": true }));
    let entries = user.audit_at_least(5);
    assert_eq!(types(&entries)[3..], [UPDATED, COMPLETED]);
    let tasks = user.tasks_settled(2);
    assert_eq!(tasks.iter().filter(|t| t["occurrence"] == 2).count(), 1, "{tasks:#?}");
    // No event beyond created, completed, created, updated, completed.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(stack.audit_entries(&user.name, &user.token).len(), 5);
}

#[test]
fn concurrent_completions_create_one_occurrence() {
    let stack = Stack::get();
    let user = User::new(&stack, "recur-race");
    let first = user.create(daily("Raced"));
    let id = first["id"].as_str().unwrap().to_owned();
    // Complete, reopen, then complete from two clients at once: two
    // completed events of occurrence 1 reach recurring-service back to back.
    user.patch(&id, json!({ "completed": true }));
    user.patch(&id, json!({ "completed": false }));
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let reply = send_json("PATCH", &user.url(&format!("/tasks/{id}")), &user.token, &json!({ "completed": true }));
                assert_eq!(reply.status, 200, "{:?}", reply.json);
            });
        }
    });
    let tasks = user.tasks_settled(2);
    assert_eq!(tasks.iter().filter(|t| t["occurrence"] == 2).count(), 1, "{tasks:#?}");
}

#[test]
fn concurrent_occurrence_requests_commit_once() {
    let stack = Stack::get();
    let user = User::new(&stack, "recur-invoke");
    let series = uuid_v7();
    let body = |title: &str| {
        json!({ "series_id": series, "occurrence": 2, "task": {
            "title": title, "due_at": "2030-01-02T09:00:00Z", "recurrence": { "rrule": "FREQ=DAILY" } } })
    };
    // Only the sidecar may call the route.
    assert_eq!(user.request_occurrence(&body("x"), None).status, 401);
    assert_eq!(user.request_occurrence(&body("x"), Some("wrong")).status, 401);
    let (user_ref, body_ref, token) = (&user, &body, stack.app_token());
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..8).map(|i| s.spawn(move || user_ref.request_occurrence(&body_ref(&format!("copy {i}")), Some(token)))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let fresh: Vec<&Reply> = replies.iter().filter(|r| r.status == 201 && r.header("idempotent-replayed").is_none()).collect();
    assert_eq!(
        fresh.len(),
        1,
        "one request creates: {:?}",
        replies.iter().map(|r| (r.status, r.header("idempotent-replayed").map(str::to_owned))).collect::<Vec<_>>()
    );
    for reply in &replies {
        assert_eq!(reply.status, 201, "{:?}", reply.json);
        assert_eq!(reply.json["id"], fresh[0].json["id"], "every request answers with the same task");
    }
    assert_eq!((&fresh[0].json["series_id"], &fresh[0].json["occurrence"]), (&json!(series), &json!(2)));
    assert_eq!(user.tasks_settled(1).len(), 1);
    // Bad requests are 422 naming the field.
    let bad = user.request_occurrence(&json!({ "series_id": series, "occurrence": 3, "task": { "title": "" } }), Some(stack.app_token()));
    assert_eq!((bad.status, bad.json["field"].as_str()), (422, Some("task.title")), "{:?}", bad.json);
}

#[test]
fn deleting_with_series_true_ends_the_series() {
    let stack = Stack::get();
    let user = User::new(&stack, "recur-end");
    let first = user.create(daily("Ended"));
    let id = first["id"].as_str().unwrap().to_owned();
    user.patch(&id, json!({ "completed": true }));
    let tasks = user.tasks_settled(2);
    let next = tasks.iter().find(|t| t["occurrence"] == 2).unwrap();
    let auth = format!("Bearer {}", user.token);
    let bad = send("DELETE", &user.url(&format!("/tasks/{}?series=yes", next["id"].as_str().unwrap())), &[("authorization", &auth)], None);
    assert_eq!((bad.status, bad.json["field"].as_str()), (422, Some("series")));
    let gone =
        send("DELETE", &user.url(&format!("/tasks/{}?series=true", next["id"].as_str().unwrap())), &[("authorization", &auth)], None);
    assert_eq!(gone.status, 204, "{:?}", gone.json);
    // A late request for a later occurrence (a completion still in flight) creates nothing.
    let late = json!({ "series_id": first["id"], "occurrence": 3, "task": {
        "title": "Ended", "due_at": "2030-04-01T07:00:00Z", "recurrence": { "rrule": "FREQ=DAILY" } } });
    let reply = user.request_occurrence(&late, Some(stack.app_token()));
    assert_eq!((reply.status, &reply.json["status"]), (200, &json!("series_ended")), "{:?}", reply.json);
    // The completed history stays.
    let tasks = user.tasks_settled(1);
    assert_eq!((&tasks[0]["id"], &tasks[0]["completed"]), (&first["id"], &json!(true)));
}

fn uuid_v7() -> String {
    uuid::Uuid::now_v7().to_string()
}
