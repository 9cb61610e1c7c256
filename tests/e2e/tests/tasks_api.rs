//! The whole task API through the real stack: every route, filter and sort,
//! isolation between users, bad input, optimistic concurrency, idempotent
//! retries, cursor pagination, the events each change publishes (as the audit
//! service records them), and the OpenAPI document against the routes.

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::{assert_matches_openapi, eventually, fresh_user, get, openapi_errors, put_state, send, Reply, Stack};
use serde_json::{json, Value};

const CREATED: &str = "com.todo.task.created.v1";
const UPDATED: &str = "com.todo.task.updated.v1";
const COMPLETED: &str = "com.todo.task.completed.v1";
const DELETED: &str = "com.todo.task.deleted.v1";

/// A user of the API with a valid token.
struct User<'a> {
    stack: &'a Stack,
    name: String,
    auth: String,
}

impl<'a> User<'a> {
    fn new(stack: &'a Stack, prefix: &str) -> Self {
        let name = fresh_user(prefix);
        let auth = format!("Bearer {}", stack.token(&name));
        User { stack, name, auth }
    }

    /// `{api}/api/{user}{path}`.
    fn url(&self, path: &str) -> String {
        format!("{}/api/{}{}", self.stack.api, self.name, path)
    }

    /// A request with this user's token; `body` is sent as JSON.
    fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Reply {
        self.raw(method, path, headers, body.map(|b| ("application/json", b.to_string().into_bytes())))
    }

    /// A request with this user's token and a body sent as-is.
    fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<(&str, Vec<u8>)>) -> Reply {
        let mut all = vec![("authorization", self.auth.as_str())];
        all.extend_from_slice(headers);
        send(method, &self.url(path), &all, body.as_ref().map(|(ct, b)| (*ct, b.as_slice())))
    }

    /// Creates a task; asserts 201 and returns it.
    fn create(&self, body: Value) -> Value {
        let reply = self.call("POST", "/tasks", &[], Some(&body));
        assert_eq!(reply.status, 201, "create {body}: {:?}", reply.json);
        reply.json
    }

    /// `GET /tasks?{query}`; asserts 200.
    fn list(&self, query: &str) -> Value {
        let reply = self.call("GET", &format!("/tasks?{query}"), &[], None);
        assert_eq!(reply.status, 200, "list ?{query}: {:?}", reply.json);
        reply.json
    }

    /// The ids of the one page `GET /tasks?{query}&limit=200` returns, in order.
    fn ids(&self, query: &str) -> Vec<String> {
        let page = self.list(&format!("{query}&limit=200"));
        assert_eq!(page["next_cursor"], Value::Null, "one page: ?{query}");
        ids(&page["items"])
    }

    /// A task as GET returns it; asserts 200.
    fn get_task(&self, id: &str) -> Value {
        let reply = self.call("GET", &format!("/tasks/{id}"), &[], None);
        assert_eq!(reply.status, 200, "{:?}", reply.json);
        reply.json
    }

    /// The user's audit entries once there are `count` of them, checked again
    /// after a pause so that a late duplicate would be seen.
    fn audit(&self, count: usize) -> Vec<Value> {
        let url = format!("{}/audit/{}?limit=500", self.stack.audit, self.name);
        let fetch = || {
            let reply = send("GET", &url, &[("authorization", &self.auth)], None);
            assert_eq!(reply.status, 200, "{:?}", reply.json);
            reply.json["items"].as_array().cloned().unwrap_or_default()
        };
        let found = eventually(Duration::from_secs(30), || (fetch().len() >= count).then_some(()));
        assert!(found.is_some(), "expected {count} audit entries within 30 s, have {:?}", types(&fetch()));
        std::thread::sleep(Duration::from_secs(2));
        let entries = fetch();
        assert_eq!(entries.len(), count, "exactly {count} audit entries: {:?}", types(&entries));
        entries
    }

    /// Asserts the user's events are exactly `expected` (types, in order), numbered
    /// `seq` 1, 2, 3, ... and valid against the event contract; returns their data.
    fn assert_events(&self, expected: &[&str]) -> Vec<Value> {
        let entries = self.audit(expected.len());
        assert_eq!(types(&entries), expected, "event types in order");
        for (i, entry) in entries.iter().enumerate() {
            let data = &entry["data"];
            assert_eq!(data["seq"], (i + 1) as u64, "seq of event {i}: {data}");
            assert_eq!(data["type"], entry["event_type"]);
            assert_eq!(data["user_id"], self.name.as_str());
            assert_eq!(entry["actor"], self.name.as_str());
            assert_eq!(entry["event_id"], data["event_id"]);
            assert_eq!(entry["task_id"], data["task"]["id"]);
            self.stack.assert_matches_contract("events/task-event.schema.json", data);
        }
        entries.into_iter().map(|e| e["data"].clone()).collect()
    }
}

fn types(entries: &[Value]) -> Vec<String> {
    entries.iter().map(|e| e["event_type"].as_str().unwrap_or_default().to_owned()).collect()
}

fn ids(items: &Value) -> Vec<String> {
    items.as_array().expect("items").iter().map(id).collect()
}

fn id(task: &Value) -> String {
    task["id"].as_str().expect("task id").to_owned()
}

fn set(ids: &[&Value]) -> BTreeSet<String> {
    ids.iter().map(|t| id(t)).collect()
}

fn etag(task: &Value) -> String {
    format!("\"{}\"", task["version"])
}

/// Asserts a problem+json answer with `status` (and `field`/`rule` when given).
fn assert_problem(reply: &Reply, status: u16, field_rule: Option<(&str, &str)>) {
    assert_eq!(reply.status, status, "{:?}", reply.json);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"), "{:?}", reply.json);
    assert_eq!(reply.json["status"], status);
    assert!(reply.json["detail"].as_str().is_some_and(|d| !d.is_empty()), "{:?}", reply.json);
    if let Some((field, rule)) = field_rule {
        assert_eq!((reply.json["field"].as_str(), reply.json["rule"].as_str()), (Some(field), Some(rule)), "{:?}", reply.json);
    }
}

/// Asserts a task answer: `status`, the task as JSON, and its version as ETag.
fn assert_task(reply: &Reply, status: u16) -> Value {
    assert_eq!(reply.status, status, "{:?}", reply.json);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("etag"), Some(etag(&reply.json).as_str()), "the ETag is the version");
    reply.json.clone()
}

// ---------------------------------------------------------------- OpenAPI

#[test]
fn responses_match_the_openapi_schemas() {
    let stack = Stack::get();
    let user = User::new(&stack, "schemas");
    let full = user.create(json!({
        "title": "Every field", "description": "all of them", "priority": "medium", "tags": ["a", "b c"],
        "due_at": "2099-01-01T09:00:00-05:00", "time_zone": "America/New_York", "reminders": ["PT30M", "2098-12-31T12:00:00Z"],
        "recurrence": { "rrule": "FREQ=WEEKLY;BYDAY=MO,WE", "anchor": "completion" },
    }));
    assert_matches_openapi("Task", &full);
    let mut broken = full.clone();
    broken["priority"] = json!("top");
    assert!(!openapi_errors("Task", &broken).is_empty(), "the schema check is not vacuous");
    let plain = user.create(json!({ "title": "plain" }));
    assert_matches_openapi("Task", &plain);
    let done = user.call("PATCH", &format!("/tasks/{}/complete", id(&plain)), &[], None);
    assert_matches_openapi("Task", &assert_task(&done, 200));
    let page = user.list("limit=1");
    assert!(page["next_cursor"].is_string());
    assert_matches_openapi("TaskPage", &page);
    assert_matches_openapi("TaskPage", &user.list(""));
    assert_matches_openapi("TagCounts", &user.call("GET", "/tags", &[], None).json);
    for problem in [
        user.call("GET", "/tasks?limit=0", &[], None),
        user.call("POST", "/tasks", &[], Some(&json!({ "title": "" }))),
        user.call("GET", "/tasks/nope", &[], None),
        send("GET", &user.url("/tasks"), &[], None),
    ] {
        assert!(problem.status >= 400);
        assert_matches_openapi("Problem", &problem.json);
    }
    let mut entries = user.audit(3);
    assert_matches_openapi("AuditEntry", &entries.remove(0));
}

#[test]
fn openapi_json_and_health_are_served_without_a_token() {
    let stack = Stack::get();
    let served = send("GET", &format!("{}/openapi.json", stack.api), &[], None);
    assert_eq!(served.status, 200);
    assert_eq!(served.header("content-type"), Some("application/json"));
    let on_disk: Value = serde_json::from_str(include_str!("../../../specs/contracts/openapi.json")).unwrap();
    assert_eq!(served.json, on_disk, "the served document is specs/contracts/openapi.json");
    assert!(on_disk["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")));

    let health = send("GET", &format!("{}/healthz/todo-api", stack.api), &[], None);
    assert_eq!((health.status, health.json.clone()), (200, json!({ "status": "ok", "app_id": "todo-api" })));
    let ready = send("GET", &format!("{}/readyz/todo-api", stack.api), &[], None);
    assert_eq!((ready.status, ready.json.clone()), (200, json!({ "status": "ready", "app_id": "todo-api", "sidecar": "ok" })));
    assert_matches_openapi("Readiness", &ready.json);
}

// ------------------------------------------------------- lifecycle, events

#[test]
fn task_lifecycle_publishes_one_numbered_event_per_change() {
    let stack = Stack::get();
    let alice = User::new(&stack, "lifecycle");

    let created = alice.call("POST", "/tasks", &[], Some(&json!({ "title": "Write report", "tags": ["Work"] })));
    let task = assert_task(&created, 201);
    let tid = id(&task);
    assert_eq!(created.header("location"), Some(format!("/api/{}/tasks/{tid}", alice.name).as_str()));
    assert_eq!(created.header("idempotent-replayed"), None);
    assert_eq!((task["version"].clone(), task["completed"].clone(), task["completed_at"].clone()), (json!(1), json!(false), Value::Null));
    assert_eq!(task["tags"], json!(["work"]));
    assert_eq!(task["priority"], "none");
    assert_eq!(alice.get_task(&tid), task, "GET returns the created task");
    assert_task(&alice.call("GET", &format!("/tasks/{tid}"), &[], None), 200);

    // A change.
    let renamed = assert_task(&alice.call("PATCH", &format!("/tasks/{tid}"), &[], Some(&json!({ "title": "Write the report" }))), 200);
    assert_eq!((renamed["title"].clone(), renamed["version"].clone()), (json!("Write the report"), json!(2)));
    assert_eq!(renamed["created_at"], task["created_at"]);
    assert_ne!(renamed["updated_at"], task["updated_at"]);

    // A no-op: same title (after trimming). 200, same version, no event.
    let same = assert_task(&alice.call("PATCH", &format!("/tasks/{tid}"), &[], Some(&json!({ "title": "  Write the report " }))), 200);
    assert_eq!(same, renamed, "a no-op changes nothing");

    // Toggle: completed, then reopened.
    let done = assert_task(&alice.call("PATCH", &format!("/tasks/{tid}/complete"), &[], None), 200);
    assert_eq!((done["completed"].clone(), done["version"].clone()), (json!(true), json!(3)));
    assert!(done["completed_at"].is_string(), "completed_at set: {done}");
    let reopened = assert_task(&alice.call("PATCH", &format!("/tasks/{tid}/complete"), &[], None), 200);
    assert_eq!(
        (reopened["completed"].clone(), reopened["completed_at"].clone(), reopened["version"].clone()),
        (json!(false), Value::Null, json!(4))
    );

    // A replacement.
    let replaced =
        assert_task(&alice.call("PUT", &format!("/tasks/{tid}"), &[], Some(&json!({ "title": "Other", "priority": "low" }))), 200);
    assert_eq!(
        (replaced["title"].clone(), replaced["priority"].clone(), replaced["tags"].clone(), replaced["version"].clone()),
        (json!("Other"), json!("low"), json!([]), json!(5))
    );
    assert_eq!(alice.get_task(&tid), replaced);

    // Delete, then it is gone.
    let deleted = alice.call("DELETE", &format!("/tasks/{tid}"), &[], None);
    assert_eq!(deleted.status, 204, "{:?}", deleted.json);
    assert_problem(&alice.call("GET", &format!("/tasks/{tid}"), &[], None), 404, None);
    assert_problem(&alice.call("DELETE", &format!("/tasks/{tid}"), &[], None), 404, None);
    assert_problem(&alice.call("PATCH", &format!("/tasks/{tid}"), &[], Some(&json!({ "title": "x" }))), 404, None);
    assert_problem(&alice.call("PATCH", &format!("/tasks/{tid}/complete"), &[], None), 404, None);
    assert_eq!(alice.list("")["items"], json!([]));

    let events = alice.assert_events(&[CREATED, UPDATED, COMPLETED, UPDATED, UPDATED, DELETED]);
    let versions: Vec<&Value> = events.iter().map(|e| &e["task"]["version"]).collect();
    assert_eq!(
        versions,
        [&json!(1), &json!(2), &json!(3), &json!(4), &json!(5), &json!(5)],
        "each event carries the task after the change"
    );
    assert_eq!(events[0]["task"], task);
    assert_eq!(events[1]["changed"], json!(["title"]));
    assert_eq!(events[2]["changed"], json!(["completed"]));
    assert_eq!(events[3]["changed"], json!(["completed"]));
    assert_eq!(events[5]["task"], replaced, "the deleted event carries the last state");
}

#[test]
fn put_replaces_every_client_field_and_keeps_completion() {
    let stack = Stack::get();
    let user = User::new(&stack, "put");
    let task = user.create(json!({
        "title": "Pay rent", "description": "via bank", "priority": "high", "tags": ["home", "money"],
        "due_at": "2099-03-01T09:00:00+01:00", "time_zone": "Europe/Paris", "reminders": ["PT1H"],
    }));
    assert_eq!(task["due_at"], "2099-03-01T08:00:00Z");
    assert_eq!(task["time_zone"], "Europe/Paris");
    let tid = id(&task);
    let done = assert_task(&user.call("PATCH", &format!("/tasks/{tid}"), &[], Some(&json!({ "completed": true }))), 200);
    assert!(done["completed_at"].is_string());

    let replaced = assert_task(&user.call("PUT", &format!("/tasks/{tid}"), &[], Some(&json!({ "title": "Pay rent!" }))), 200);
    for (field, value) in [
        ("title", json!("Pay rent!")),
        ("description", Value::Null),
        ("priority", json!("none")),
        ("tags", json!([])),
        ("due_at", Value::Null),
        ("time_zone", Value::Null),
        ("reminders", json!([])),
        ("recurrence", Value::Null),
        ("completed", json!(true)),
        ("completed_at", done["completed_at"].clone()),
        ("version", json!(3)),
        ("created_at", task["created_at"].clone()),
    ] {
        assert_eq!(replaced.get(field).unwrap_or(&Value::Null), &value, "{field} after PUT: {replaced}");
    }
    let refused = user.call("PUT", &format!("/tasks/{tid}"), &[], Some(&json!({ "title": "x", "completed": false })));
    assert_problem(&refused, 422, Some(("completed", "unknown_field")));
    assert_problem(
        &user.call("PUT", &format!("/tasks/{tid}"), &[], Some(&json!({ "description": "no title" }))),
        422,
        Some(("title", "required")),
    );
    assert_eq!(user.get_task(&tid), replaced, "refused PUTs changed nothing");
    user.assert_events(&[CREATED, COMPLETED, UPDATED]);
}

#[test]
fn patch_changes_given_fields_and_null_clears() {
    let stack = Stack::get();
    let user = User::new(&stack, "patch");
    let task = user.create(json!({
        "title": "Dentist", "description": "bring card", "priority": "medium", "tags": ["health"],
        "due_at": "2099-05-01T10:00:00Z", "time_zone": "Europe/Berlin", "reminders": ["P1D", "2099-04-01T00:00:00Z"],
    }));
    let tid = id(&task);
    let path = format!("/tasks/{tid}");

    let changed = assert_task(&user.call("PATCH", &path, &[], Some(&json!({ "priority": "urgent", "tags": ["Health", "Family"] }))), 200);
    assert_eq!((changed["priority"].clone(), changed["tags"].clone()), (json!("urgent"), json!(["health", "family"])));
    assert_eq!(
        (changed["title"].clone(), changed["description"].clone(), changed["due_at"].clone()),
        (task["title"].clone(), task["description"].clone(), task["due_at"].clone()),
        "fields not given are kept"
    );

    // Rules are checked against the resulting task: the offset reminder needs the due date.
    assert_problem(&user.call("PATCH", &path, &[], Some(&json!({ "due_at": null }))), 422, Some(("reminders[0]", "requires")));
    assert_problem(&user.call("PATCH", &path, &[], Some(&json!({ "title": null }))), 422, Some(("title", "required")));
    assert_problem(&user.call("PATCH", &path, &[], Some(&json!({ "completed": "yes" }))), 422, Some(("completed", "format")));
    assert_problem(&user.call("PATCH", &path, &[], Some(&json!({ "priority": "top" }))), 422, Some(("priority", "format")));
    assert_eq!(user.get_task(&tid), changed, "refused patches changed nothing");

    let cleared = assert_task(
        &user.call(
            "PATCH",
            &path,
            &[],
            Some(&json!({ "description": null, "priority": null, "tags": null, "reminders": null, "due_at": null })),
        ),
        200,
    );
    for field in ["description", "due_at", "time_zone"] {
        assert_eq!(cleared[field], Value::Null, "{field} cleared: {cleared}");
    }
    assert_eq!((cleared["priority"].clone(), cleared["tags"].clone(), cleared["reminders"].clone()), (json!("none"), json!([]), json!([])));
    assert_eq!(cleared["title"], "Dentist");
    assert_problem(&user.call("PATCH", &path, &[], Some(&json!({ "time_zone": "UTC" }))), 422, Some(("time_zone", "requires")));

    let done = assert_task(&user.call("PATCH", &path, &[], Some(&json!({ "completed": true }))), 200);
    assert_eq!(done["completed"], true);
    assert!(done["completed_at"].is_string());
    let again = assert_task(&user.call("PATCH", &path, &[], Some(&json!({ "completed": true }))), 200);
    assert_eq!(again, done, "completing a completed task is a no-op");
    let open = assert_task(&user.call("PATCH", &path, &[], Some(&json!({ "completed": false }))), 200);
    assert_eq!((open["completed"].clone(), open["completed_at"].clone()), (json!(false), Value::Null));

    let events = user.assert_events(&[CREATED, UPDATED, UPDATED, COMPLETED, UPDATED]);
    assert_eq!(events[1]["changed"], json!(["priority", "tags"]));
    assert_eq!(events[2]["changed"], json!(["description", "priority", "tags", "due_at", "time_zone", "reminders"]));
}

// ------------------------------------------------------ ETag / If-Match

#[test]
fn if_match_guards_every_write() {
    let stack = Stack::get();
    let user = User::new(&stack, "ifmatch");
    let task = user.create(json!({ "title": "v1" }));
    let tid = id(&task);
    let path = format!("/tasks/{tid}");
    let body = json!({ "title": "v2" });

    // Stale or malformed versions change nothing.
    assert_problem(&user.call("PATCH", &path, &[("if-match", "\"2\"")], Some(&body)), 412, None);
    assert_problem(&user.call("PUT", &path, &[("if-match", "\"0\"")], Some(&body)), 412, None);
    assert_problem(&user.call("PATCH", &format!("{path}/complete"), &[("if-match", "\"7\"")], None), 412, None);
    assert_problem(&user.call("DELETE", &path, &[("if-match", "\"2\"")], None), 412, None);
    // Well-formed entity-tags that name no current version fail the precondition (RFC 9110).
    // A comma inside the quotes is part of the tag (etagc), not a separator.
    for stale in ["\"stale\"", "W/\"1\"", "\"one\"", "\"2\", \"3\"", "\"1,\"", "W/\"a,b\", \"3\""] {
        assert_problem(&user.call("PATCH", &path, &[("if-match", stale)], Some(&body)), 412, None);
        assert_problem(&user.call("DELETE", &path, &[("if-match", stale)], None), 412, None);
    }
    for bad in ["1", "\"1", "W/1", "\"a b\"", ","] {
        assert_problem(&user.call("PATCH", &path, &[("if-match", bad)], Some(&body)), 400, Some(("If-Match", "format")));
        assert_problem(&user.call("DELETE", &path, &[("if-match", bad)], None), 400, Some(("If-Match", "format")));
    }
    assert_eq!(user.get_task(&tid), task, "nothing changed");

    // The current version succeeds, and each answer's ETag is the next precondition.
    let v2 = assert_task(&user.call("PATCH", &path, &[("if-match", "\"7\", \"1\"")], Some(&body)), 200);
    assert_eq!(etag(&v2), "\"2\"");
    assert_problem(&user.call("PUT", &path, &[("if-match", &etag(&task))], Some(&json!({ "title": "v3" }))), 412, None);
    let v3 = assert_task(&user.call("PUT", &path, &[("if-match", &etag(&v2))], Some(&json!({ "title": "v3" }))), 200);
    assert_problem(&user.call("PATCH", &format!("{path}/complete"), &[("if-match", &etag(&v2))], None), 412, None);
    let v4 = assert_task(&user.call("PATCH", &format!("{path}/complete"), &[("if-match", &etag(&v3))], None), 200);
    assert_eq!((v4["version"].clone(), v4["completed"].clone()), (json!(4), json!(true)));
    let v5 = assert_task(&user.call("PATCH", &format!("{path}/complete"), &[("if-match", "*")], None), 200);
    assert_eq!(v5["completed"], false);
    let get = user.call("GET", &path, &[], None);
    assert_eq!(get.header("etag"), Some("\"5\""));
    assert_problem(&user.call("DELETE", &path, &[("if-match", &etag(&v4))], None), 412, None);
    assert_eq!(user.call("DELETE", &path, &[("if-match", &etag(&v5))], None).status, 204);
    assert_problem(&user.call("GET", &path, &[], None), 404, None);
    user.assert_events(&[CREATED, UPDATED, UPDATED, COMPLETED, UPDATED, DELETED]);
}

#[test]
fn completing_with_a_body_survives_retries() {
    let stack = Stack::get();
    let user = User::new(&stack, "complete-body");
    let task = user.create(json!({ "title": "retry me" }));
    let path = format!("/tasks/{}/complete", id(&task));
    // A client that lost the first answer sends the same request again: still completed, one event.
    for _ in 0..2 {
        let done = assert_task(&user.call("PATCH", &path, &[], Some(&json!({ "completed": true }))), 200);
        assert_eq!((&done["completed"], &done["version"]), (&json!(true), &json!(2)));
    }
    let reopened = assert_task(&user.call("PATCH", &path, &[("if-match", "\"2\"")], Some(&json!({ "completed": false }))), 200);
    assert_eq!((&reopened["completed"], &reopened["version"]), (&json!(false), &json!(3)));
    assert_eq!(assert_task(&user.call("PATCH", &path, &[], Some(&json!({ "completed": false }))), 200)["version"], 3);
    // Without a body it still toggles.
    assert_eq!(assert_task(&user.call("PATCH", &path, &[], None), 200)["completed"], true);
    for (bad, field) in [(json!({ "completed": "yes" }), "completed"), (json!({}), "completed"), (json!({ "done": true }), "done")] {
        let reply = user.call("PATCH", &path, &[], Some(&bad));
        assert_eq!((reply.status, reply.json["field"].as_str()), (422, Some(field)), "{bad}: {:?}", reply.json);
    }
    let text = user.raw("PATCH", &path, &[], Some(("text/plain", b"{\"completed\": true}".to_vec())));
    assert_problem(&text, 415, None);
    assert_eq!(user.get_task(&id(&task))["version"], 4, "refused bodies change nothing");
    user.assert_events(&[CREATED, COMPLETED, UPDATED, COMPLETED]);
}

// ------------------------------------------------- documents that no longer decode

/// The document at `key` in todo-api's state.
fn stored(stack: &Stack, key: &str) -> Value {
    let reply = send("GET", &format!("{}/v1.0/state/statestore/{key}", stack.api_dapr), &[], None);
    assert_eq!(reply.status, 200, "{key}: {:?}", reply.json);
    reply.json
}

#[test]
fn a_stored_task_that_no_longer_decodes_is_left_out_of_lists() {
    let stack = Stack::get();
    let user = User::new(&stack, "undecodable");
    let (broken, fine) = (user.create(json!({ "title": "broken", "tags": ["a"] })), user.create(json!({ "title": "fine", "tags": ["a"] })));
    // A rule tightened since, or a damaged document: an empty title no longer parses.
    let mut bad = broken.clone();
    bad["title"] = json!("");
    put_state(&stack.api_dapr, &format!("task:{}:{}", user.name, id(&broken)), &bad);
    let page = user.list("");
    assert_eq!(ids(&page["items"]), [id(&fine)]);
    assert_eq!(page["unreadable"], json!([id(&broken)]));
    assert_matches_openapi("TaskPage", &page);
    // Tags are counted from the index, which holds what the API committed
    // (the damage happened behind its back).
    let tags = user.call("GET", "/tags", &[], None);
    assert_eq!((tags.status, &tags.json["items"]), (200, &json!([{ "tag": "a", "count": 2 }])));
}

#[test]
fn an_outbox_entry_that_no_longer_decodes_does_not_hold_back_later_events() {
    let stack = Stack::get();
    let user = User::new(&stack, "outbox-undecodable");
    user.create(json!({ "title": "first" }));
    user.assert_events(&[CREATED]);
    // Event 2 is committed but unpublished, and its outbox entry no longer decodes.
    let (ledger_key, published_key) = (format!("ledger:{}", user.name), format!("published:{}", user.name));
    let mut ledger = stored(&stack, &ledger_key);
    assert_eq!((&ledger["seq"], stored(&stack, &published_key)), (&json!(1), json!(1)));
    ledger["seq"] = json!(2);
    put_state(&stack.api_dapr, &format!("outbox:{}:2", user.name), &json!({ "seq": 2, "type": "com.todo.task.nonsense.v1" }));
    put_state(&stack.api_dapr, &ledger_key, &ledger);
    // The next write publishes its own event (seq 3) past the broken one.
    let third = user.create(json!({ "title": "third" }));
    let found = eventually(Duration::from_secs(30), || {
        let entries = stack.audit_entries(&user.name, &stack.token(&user.name));
        (entries.len() >= 2).then_some(entries)
    })
    .expect("the event after the broken outbox entry reaches the audit log");
    assert_eq!((&found[1]["data"]["seq"], id(&found[1]["data"]["task"])), (&json!(3), id(&third)));
    assert_eq!(stored(&stack, &published_key), 3);
    let verified = get(&format!("{}/audit/{}/verify", stack.audit, user.name), &stack.token(&user.name));
    assert_eq!(verified.json["seq_gaps"], json!([{ "from": 2, "to": 2 }]), "{:?}", verified.json);
}

// ------------------------------------------------------------ the task index

#[test]
fn a_ledger_of_the_format_before_the_index_is_migrated_on_first_read() {
    let stack = Stack::get();
    let user = User::new(&stack, "legacy-ledger");
    let (older, newer) = (user.create(json!({ "title": "older" })), user.create(json!({ "title": "newer", "tags": ["x"] })));
    user.assert_events(&[CREATED, CREATED]);
    // The state as the release before the index left it: a ledger listing
    // every task id, task documents without their page, no published mark.
    let ledger_key = format!("ledger:{}", user.name);
    put_state(&stack.api_dapr, &ledger_key, &json!({ "seq": 2, "published": 2, "tasks": [id(&older), id(&newer)] }));
    for task in [&older, &newer] {
        put_state(&stack.api_dapr, &format!("task:{}:{}", user.name, id(task)), task);
    }
    send("DELETE", &format!("{}/v1.0/state/statestore/published:{}", stack.api_dapr, user.name), &[], None);

    assert_eq!(user.ids(""), [id(&newer), id(&older)], "the first read migrates and lists both");
    let head = stored(&stack, &ledger_key);
    assert_eq!((&head["seq"], &head["sealed"], head["tail"].as_array().map(Vec::len)), (&json!(2), &json!(0), Some(2)), "{head}");
    assert!(head.get("tasks").is_none(), "{head}");
    assert_eq!(stored(&stack, &format!("published:{}", user.name)), 2, "the old mark carries over: nothing is published again");
    // The migrated tasks change, filter and delete like any other.
    let renamed = user.call("PATCH", &format!("/tasks/{}", id(&older)), &[], Some(&json!({ "title": "renamed", "tags": ["x"] })));
    assert_eq!(renamed.status, 200, "{:?}", renamed.json);
    assert_eq!(user.ids("tag=x&q=renamed"), [id(&older)]);
    assert_eq!(user.call("DELETE", &format!("/tasks/{}", id(&newer)), &[], None).status, 204);
    assert_eq!(user.ids(""), [id(&older)]);
    user.assert_events(&[CREATED, CREATED, UPDATED, "com.todo.task.deleted.v1"]);
}

#[test]
fn a_user_with_many_tasks_pages_through_every_one_once() {
    let stack = Stack::get();
    let user = User::new(&stack, "index-pages");
    // More than two pages of the index (64 each), some completed, some deleted.
    let mut kept = Vec::new();
    for i in 0..150 {
        let task = user.create(json!({ "title": format!("t{i}"), "tags": [format!("g{}", i % 3)] }));
        match i % 10 {
            0 => assert_eq!(user.call("DELETE", &format!("/tasks/{}", id(&task)), &[], None).status, 204),
            1 => {
                let done = user.call("PATCH", &format!("/tasks/{}/complete", id(&task)), &[], None);
                assert_eq!(done.status, 200, "{:?}", done.json);
                kept.push(id(&task));
            }
            _ => kept.push(id(&task)),
        }
    }
    // A task on a sealed page changes there.
    let first_kept = kept[0].clone();
    let moved = user.call("PATCH", &format!("/tasks/{first_kept}"), &[], Some(&json!({ "title": "the oldest one" })));
    assert_eq!(moved.status, 200, "{:?}", moved.json);
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = user.list(&format!("limit=7{cursor}"));
        seen.extend(ids(&page["items"]));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    kept.reverse();
    assert_eq!(seen, kept, "newest first, each task once, deleted ones gone");
    assert_eq!(user.ids("q=oldest"), [first_kept]);
    assert_eq!(user.ids("status=completed").len(), 15);
    let tags = user.call("GET", "/tags", &[], None);
    assert_eq!(tags.json["items"][0], json!({ "tag": "g0", "count": 45 }), "{:?}", tags.json);
}

// ------------------------------------------------------------ idempotency

/// When the store forgets `key` of the app behind `dapr` (`metadata.ttlExpireTime`), in seconds from now.
fn ttl_of(dapr: &str, key: &str) -> Option<i64> {
    let reply = send("GET", &format!("{dapr}/v1.0/state/statestore/{key}"), &[], None);
    assert_eq!(reply.status, 200, "{key} is stored: {:?}", reply.json);
    let expires = reply.header("metadata.ttlexpiretime")?;
    let expires = chrono::DateTime::parse_from_rfc3339(expires).unwrap_or_else(|e| panic!("{expires}: {e}"));
    Some((expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds())
}

#[test]
fn idempotency_records_and_dedupe_marks_expire() {
    let stack = Stack::get();
    let user = User::new(&stack, "idem-ttl");
    let key = format!("key-{}", uuid::Uuid::now_v7());
    let task = assert_task(&user.call("POST", "/tasks", &[("idempotency-key", &key)], Some(&json!({ "title": "t" }))), 201);
    let day = 24 * 3600;
    let left = ttl_of(&stack.api_dapr, &format!("idem:{}:{key}", user.name)).expect("the Idempotency-Key record has a TTL");
    assert!((day - 120..=day).contains(&left), "a day, not {left} s");
    // The audit log's dedupe mark of the created event.
    let event = &user.assert_events(&[CREATED])[0];
    assert_eq!(id(&event["task"]), id(&task));
    let audit_dapr = std::env::var("AUDIT_SERVICE_DAPR_URL").expect("AUDIT_SERVICE_DAPR_URL is set by `cargo xtask test`");
    let mark = format!("audit:{}:seen:{}", user.name, event["event_id"].as_str().unwrap());
    let left = ttl_of(&audit_dapr, &mark).expect("the dedupe mark has a TTL");
    assert!((30 * day - 120..=30 * day).contains(&left), "30 days, not {left} s");
    // The audit entry itself stays for good.
    assert_eq!(ttl_of(&audit_dapr, &format!("audit:{}:entry:0", user.name)), None);
}

#[test]
fn idempotent_retries_create_one_task() {
    let stack = Stack::get();
    let user = User::new(&stack, "idem");
    let key = format!("key-{}", uuid::Uuid::now_v7());
    let body = json!({ "title": "Only once", "tags": ["x"] });

    let first = user.call("POST", "/tasks", &[("idempotency-key", &key)], Some(&body));
    let task = assert_task(&first, 201);
    assert_eq!(first.header("idempotent-replayed"), None);
    for _ in 0..2 {
        let retry = user.call("POST", "/tasks", &[("idempotency-key", &key)], Some(&body));
        assert_eq!(assert_task(&retry, 201), task, "the retry answers with the same task");
        assert_eq!(retry.header("idempotent-replayed"), Some("true"));
        assert_eq!(retry.header("location"), first.header("location"));
    }
    assert_eq!(user.ids(""), [id(&task)], "exactly one task");

    let reused = user.call("POST", "/tasks", &[("idempotency-key", &key)], Some(&json!({ "title": "Something else" })));
    assert_problem(&reused, 422, None);
    assert_eq!(user.ids(""), [id(&task)], "a reused key creates nothing");

    for bad in ["has space".to_owned(), "k".repeat(129)] {
        let reply = user.call("POST", "/tasks", &[("idempotency-key", &bad)], Some(&body));
        assert_problem(&reply, 400, Some(("Idempotency-Key", "format")));
    }
    let max = "k".repeat(128);
    let other = user.call("POST", "/tasks", &[("idempotency-key", &max)], Some(&body));
    let other = assert_task(&other, 201);
    assert_ne!(id(&other), id(&task), "another key creates another task");
    let no_key = user.create(body.clone());
    assert_eq!(user.ids("").len(), 3);

    // Keys are per user: another user's identical key and body is a new task.
    let bob = User::new(&stack, "idem-b");
    let theirs = bob.call("POST", "/tasks", &[("idempotency-key", &key)], Some(&body));
    assert_eq!(theirs.header("idempotent-replayed"), None);
    assert_ne!(id(&assert_task(&theirs, 201)), id(&task));

    let events = user.assert_events(&[CREATED, CREATED, CREATED]);
    let created: Vec<String> = events.iter().map(|e| id(&e["task"])).collect();
    assert_eq!(created, [id(&task), id(&other), id(&no_key)]);
}

// ------------------------------------------------------------ isolation

#[test]
fn users_cannot_reach_each_others_tasks() {
    let stack = Stack::get();
    let alice = User::new(&stack, "iso-a");
    let bob = User::new(&stack, "iso-b");
    let task = alice.create(json!({ "title": "Alice's", "tags": ["secret"] }));
    let tid = id(&task);
    let body = json!({ "title": "hijacked" });
    let routes: [(&str, String, Option<&Value>); 9] = [
        ("POST", "/tasks".into(), Some(&body)),
        ("GET", "/tasks".into(), None),
        ("GET", "/tags".into(), None),
        ("GET", format!("/tasks/{tid}"), None),
        ("PUT", format!("/tasks/{tid}"), Some(&body)),
        ("PATCH", format!("/tasks/{tid}"), Some(&body)),
        ("DELETE", format!("/tasks/{tid}"), None),
        ("PATCH", format!("/tasks/{tid}/complete"), None),
        ("GET", format!("/tasks/{tid}?x=1"), None),
    ];
    let bob_token = format!("Bearer {}", stack.token(&bob.name));
    for (method, path, body) in &routes {
        let content = body.map(|b| ("application/json", b.to_string().into_bytes()));
        let url = alice.url(path);
        // Bob's token on Alice's path: 403.
        let reply = send(method, &url, &[("authorization", &bob_token)], content.as_ref().map(|(c, b)| (*c, b.as_slice())));
        assert_problem(&reply, 403, None);
        // No token: 401 with a challenge.
        let reply = send(method, &url, &[], content.as_ref().map(|(c, b)| (*c, b.as_slice())));
        assert_problem(&reply, 401, None);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{method} {path}");
    }
    // Bob's token on Bob's path, naming Alice's task: 404, as for any unknown task.
    for (method, path, body) in &routes[3..8] {
        assert_problem(&bob.call(method, path, &[], *body), 404, None);
    }
    for bad_id in ["not-a-uuid", "00000000-0000-0000-0000-000000000000"] {
        assert_problem(&alice.call("GET", &format!("/tasks/{bad_id}"), &[], None), 404, None);
        assert_problem(&alice.call("PATCH", &format!("/tasks/{bad_id}/complete"), &[], None), 404, None);
    }
    assert_eq!(bob.list("")["items"], json!([]));
    assert_eq!(bob.call("GET", "/tags", &[], None).json, json!({ "items": [] }));
    assert_eq!(alice.get_task(&tid), task, "Alice's task is untouched");
    assert_eq!(alice.ids(""), [tid]);
    alice.assert_events(&[CREATED]);
}

/// PUT and PATCH authenticate before they read the body, like POST: a caller
/// without a valid token learns nothing about the body's validity.
#[test]
fn writes_check_credentials_before_the_body() {
    let stack = Stack::get();
    let alice = User::new(&stack, "authfirst");
    let tid = id(&alice.create(json!({ "title": "x" })));
    let other = format!("Bearer {}", stack.token("someone-else"));
    for method in ["PUT", "PATCH"] {
        let url = alice.url(&format!("/tasks/{tid}"));
        for (content_type, body) in
            [("text/plain", b"{}".to_vec()), ("application/json", b"{".to_vec()), ("application/json", b"{}".to_vec())]
        {
            assert_problem(&send(method, &url, &[], Some((content_type, &body))), 401, None);
            assert_problem(&send(method, &url, &[("authorization", &other)], Some((content_type, &body))), 403, None);
        }
    }
}

// ------------------------------------------------------------- bad input

#[test]
fn bad_input_names_field_and_rule_and_writes_nothing() {
    let stack = Stack::get();
    let user = User::new(&stack, "badinput");
    let task = user.create(json!({ "title": "keep me", "due_at": "2099-01-01T00:00:00Z" }));
    let tid = id(&task);
    let path = format!("/tasks/{tid}");
    let too_large = vec![b' '; 65 * 1024];

    for (method, target) in [("POST", "/tasks"), ("PUT", path.as_str()), ("PATCH", path.as_str())] {
        assert_problem(&user.raw(method, target, &[], Some(("application/json", b"{\"title\":".to_vec()))), 400, Some(("body", "format")));
        assert_problem(&user.raw(method, target, &[], Some(("text/plain", br#"{"title":"x"}"#.to_vec()))), 415, None);
        assert_problem(&user.raw(method, target, &[], None), 415, None);
        assert_problem(&user.raw(method, target, &[], Some(("application/json", too_large.clone()))), 413, None);
    }
    let rules: Vec<(Value, &str, &str)> = vec![
        (json!({ "title": "   " }), "title", "too_short"),
        (json!({ "title": "x".repeat(201) }), "title", "too_long"),
        (json!({ "title": "a\u{7}b" }), "title", "charset"),
        (json!({ "title": ["x"] }), "title", "format"),
        (json!({ "title": "x", "titel": "y" }), "titel", "unknown_field"),
        (json!({ "title": "x", "description": "d".repeat(4001) }), "description", "too_long"),
        (json!({ "title": "x", "priority": "High" }), "priority", "format"),
        (json!({ "title": "x", "tags": "home" }), "tags", "format"),
        (json!({ "title": "x", "tags": ["ok", "b!d"] }), "tags[1]", "charset"),
        (json!({ "title": "x", "tags": ["Work", "work "] }), "tags[1]", "duplicate"),
        (json!({ "title": "x", "tags": (0..21).map(|i| format!("t{i}")).collect::<Vec<_>>() }), "tags", "too_many"),
        (json!({ "title": "x", "tags": ["t".repeat(41)] }), "tags[0]", "too_long"),
        (json!({ "title": "x", "due_at": "tomorrow" }), "due_at", "format"),
        (json!({ "title": "x", "due_at": "2099-01-01T00:00:00Z", "time_zone": "Mars/Base" }), "time_zone", "format"),
        (json!({ "title": "x", "due_at": "2099-01-01T00:00:00Z", "reminders": ["PT1H", "PT1H"] }), "reminders[1]", "duplicate"),
        (json!({ "title": "x", "due_at": "2099-01-01T00:00:00Z", "reminders": ["P400D"] }), "reminders[0]", "out_of_range"),
        (json!({ "title": "x", "due_at": "2099-01-01T00:00:00Z", "reminders": ["soon"] }), "reminders[0]", "format"),
        (
            json!({ "title": "x", "due_at": "2099-01-01T00:00:00Z", "recurrence": { "rrule": "FREQ=DAILY", "anchor": "never" } }),
            "recurrence.anchor",
            "format",
        ),
        (
            json!({ "title": "x", "due_at": "2099-01-01T00:00:00Z", "recurrence": { "rrule": "FREQ=DAILY", "every": 2 } }),
            "recurrence.every",
            "unknown_field",
        ),
    ];
    for (body, field, rule) in &rules {
        for (method, target) in [("POST", "/tasks"), ("PUT", path.as_str()), ("PATCH", path.as_str())] {
            let reply = user.call(method, target, &[], Some(body));
            assert_problem(&reply, 422, Some((*field, *rule)));
        }
    }
    // Rules that need the due date (the task has one, so PATCH would pass).
    for (body, field) in [
        (json!({ "title": "x", "time_zone": "Europe/Paris" }), "time_zone"),
        (json!({ "title": "x", "reminders": ["PT15M"] }), "reminders[0]"),
        (json!({ "title": "x", "recurrence": { "rrule": "FREQ=WEEKLY" } }), "recurrence"),
    ] {
        assert_problem(&user.call("POST", "/tasks", &[], Some(&body)), 422, Some((field, "requires")));
        assert_problem(&user.call("PUT", &path, &[], Some(&body)), 422, Some((field, "requires")));
    }
    assert_problem(&user.call("POST", "/tasks", &[], Some(&json!({}))), 422, Some(("title", "required")));
    assert_problem(
        &user.call("POST", "/tasks", &[], Some(&json!({ "title": "x", "completed": true }))),
        422,
        Some(("completed", "unknown_field")),
    );

    // Bad list queries.
    for (query, field, rule) in [
        ("stauts=all", "stauts", "unknown_field"),
        ("status=done", "status", "format"),
        ("status=all&status=pending", "status", "duplicate"),
        ("priority=top", "priority", "format"),
        ("tag=a!", "tag", "charset"),
        ("due_before=tomorrow", "due_before", "format"),
        ("due_after=2026-01-02T00:00:00Z&due_before=2026-01-01T00:00:00Z", "due_before", "out_of_range"),
        ("overdue=yes", "overdue", "format"),
        ("has_due=1", "has_due", "format"),
        ("sort=random", "sort", "format"),
        ("order=up", "order", "format"),
        ("limit=0", "limit", "out_of_range"),
        ("limit=201", "limit", "out_of_range"),
        ("limit=ten", "limit", "format"),
        ("cursor=%25%25%25", "cursor", "format"),
        ("cursor=e30", "cursor", "format"),
    ] {
        let reply = user.call("GET", &format!("/tasks?{query}"), &[], None);
        assert_problem(&reply, 422, Some((field, rule)));
    }
    let long_q = format!("q={}", "x".repeat(201));
    assert_problem(&user.call("GET", &format!("/tasks?{long_q}"), &[], None), 422, Some(("q", "too_long")));

    assert_eq!(user.get_task(&tid), task, "the task is unchanged");
    assert_eq!(user.ids(""), [tid], "nothing was created");
    user.assert_events(&[CREATED]);
}

// ------------------------------------------------------------------- tags

#[test]
fn tags_endpoint_counts_each_tag() {
    let stack = Stack::get();
    let user = User::new(&stack, "tags");
    assert_eq!(user.call("GET", "/tags", &[], None).json, json!({ "items": [] }));
    user.create(json!({ "title": "a", "tags": ["Home", "work"] }));
    let b = user.create(json!({ "title": "b", "tags": ["WORK"] }));
    let c = user.create(json!({ "title": "c", "tags": ["errands", "home  office"] }));
    user.create(json!({ "title": "d" }));
    assert_eq!(user.call("PATCH", &format!("/tasks/{}/complete", id(&c)), &[], None).status, 200);
    let tags = user.call("GET", "/tags", &[], None);
    assert_eq!(tags.status, 200);
    assert_eq!(
        tags.json,
        json!({ "items": [
            { "tag": "errands", "count": 1 }, { "tag": "home", "count": 1 },
            { "tag": "home office", "count": 1 }, { "tag": "work", "count": 2 },
        ] }),
        "completed tasks count too"
    );
    assert_eq!(user.call("DELETE", &format!("/tasks/{}", id(&b)), &[], None).status, 204);
    assert_eq!(user.call("PATCH", &format!("/tasks/{}", id(&c)), &[], Some(&json!({ "tags": ["home"] }))).status, 200);
    assert_eq!(
        user.call("GET", "/tags", &[], None).json,
        json!({ "items": [{ "tag": "home", "count": 2 }, { "tag": "work", "count": 1 }] })
    );
}

// ---------------------------------------------------------------- filters

#[test]
fn list_filters_combine() {
    let stack = Stack::get();
    let user = User::new(&stack, "filters");
    let t1 =
        user.create(json!({ "title": "Buy MILK", "priority": "high", "tags": ["home", "shopping"], "due_at": "2020-01-01T00:00:00Z" }));
    let t2 = user
        .create(json!({ "title": "Call mum", "priority": "low", "description": "About the Milkman", "due_at": "2099-01-01T00:00:00Z" }));
    let t3 = user.create(json!({ "title": "Taxes", "priority": "urgent", "tags": ["work"] }));
    let t4 = user.create(json!({ "title": "Old report", "tags": ["work", "home"], "due_at": "2020-06-01T00:00:00Z" }));
    let t5 = user.create(json!({ "title": "Plan trip", "priority": "medium", "tags": ["milkrun"] }));
    for t in [&t3, &t4] {
        assert_eq!(user.call("PATCH", &format!("/tasks/{}/complete", id(t)), &[], None).status, 200);
    }
    let hits = |query: &str| -> BTreeSet<String> { user.ids(query).into_iter().collect() };
    for (query, expected) in [
        ("", set(&[&t1, &t2, &t3, &t4, &t5])),
        ("status=all", set(&[&t1, &t2, &t3, &t4, &t5])),
        ("status=", set(&[&t1, &t2, &t3, &t4, &t5])),
        ("status=pending", set(&[&t1, &t2, &t5])),
        ("status=completed", set(&[&t3, &t4])),
        ("priority=high&priority=urgent", set(&[&t1, &t3])),
        ("priority=high,low", set(&[&t1, &t2])),
        ("priority=none", set(&[&t4])),
        ("tag=home", set(&[&t1, &t4])),
        ("tag=HOME", set(&[&t1, &t4])),
        ("tag=home&tag=work", set(&[&t4])),
        ("tag=home,shopping", set(&[&t1])),
        ("tag=home&tag=nothing", set(&[])),
        ("due_before=2021-01-01T00:00:00Z", set(&[&t1, &t4])),
        ("due_after=2021-01-01T00:00:00Z", set(&[&t2])),
        ("due_after=2020-01-01T00:00:00Z&due_before=2020-06-01T00:00:00Z", set(&[&t1])),
        ("due_after=2020-06-01T02:00:00%2B02:00", set(&[&t2, &t4])),
        ("overdue=true", set(&[&t1])),
        ("overdue=false", set(&[&t2, &t3, &t4, &t5])),
        ("has_due=true", set(&[&t1, &t2, &t4])),
        ("has_due=false", set(&[&t3, &t5])),
        ("q=milk", set(&[&t1, &t2, &t5])),
        ("q=MiLk", set(&[&t1, &t2, &t5])),
        ("q=%20milkman%20", set(&[&t2])),
        ("q=WORK", set(&[&t3, &t4])),
        ("q=zzz", set(&[])),
        ("q=", set(&[&t1, &t2, &t3, &t4, &t5])),
        ("status=pending&q=milk&has_due=true", set(&[&t1, &t2])),
        ("status=completed&tag=work&priority=urgent", set(&[&t3])),
    ] {
        assert_eq!(hits(query), expected, "?{query}");
    }
}

// ------------------------------------------------------------------ sorts

#[test]
fn list_sorts_in_both_orders() {
    let stack = Stack::get();
    let user = User::new(&stack, "sorts");
    let s1 = user.create(json!({ "title": "banana", "priority": "low", "due_at": "2099-03-01T00:00:00Z" }));
    let s2 = user.create(json!({ "title": "Apple", "priority": "urgent" }));
    let s3 = user.create(json!({ "title": "cherry", "due_at": "2099-01-01T00:00:00Z" }));
    let s4 = user.create(json!({ "title": "apricot", "priority": "low", "due_at": "2099-02-01T00:00:00Z" }));
    let s5 = user.create(json!({ "title": "Date", "priority": "high" }));
    // Updated order: s2, s4, s5 (never changed), then s3, then s1.
    for t in [&s3, &s1] {
        assert_eq!(user.call("PATCH", &format!("/tasks/{}", id(t)), &[], Some(&json!({ "description": "touched" }))).status, 200);
    }
    // Ties break by id in the sort's direction.
    let by_id = |a: &Value, b: &Value, desc: bool| -> Vec<String> {
        let mut v = vec![id(a), id(b)];
        v.sort();
        if desc {
            v.reverse();
        }
        v
    };
    let list = |ts: &[&Value]| -> Vec<String> { ts.iter().map(|t| id(t)).collect() };
    let cat = |a: Vec<String>, b: Vec<String>, c: Vec<String>| -> Vec<String> { a.into_iter().chain(b).chain(c).collect() };

    let due_asc = cat(list(&[&s3, &s4, &s1]), by_id(&s2, &s5, false), vec![]);
    let due_desc = cat(list(&[&s1, &s4, &s3]), by_id(&s2, &s5, true), vec![]);
    let prio_desc = cat(list(&[&s2, &s5]), by_id(&s1, &s4, true), list(&[&s3]));
    let prio_asc = cat(list(&[&s3]), by_id(&s1, &s4, false), list(&[&s5, &s2]));
    let title_asc = list(&[&s2, &s4, &s1, &s3, &s5]);
    let created_asc = list(&[&s1, &s2, &s3, &s4, &s5]);
    let updated_asc = list(&[&s2, &s4, &s5, &s3, &s1]);
    let rev = |v: &Vec<String>| -> Vec<String> { v.iter().rev().cloned().collect() };

    for (query, expected) in [
        ("sort=due", due_asc.clone()),
        ("sort=due&order=asc", due_asc.clone()),
        ("sort=due&order=desc", due_desc.clone()),
        ("sort=priority", prio_desc.clone()),
        ("sort=priority&order=desc", prio_desc.clone()),
        ("sort=priority&order=asc", prio_asc.clone()),
        ("sort=title", title_asc.clone()),
        ("sort=title&order=desc", rev(&title_asc)),
        ("", rev(&created_asc)),
        ("sort=created", rev(&created_asc)),
        ("sort=created&order=asc", created_asc.clone()),
        ("sort=updated", rev(&updated_asc)),
        ("sort=updated&order=asc", updated_asc.clone()),
        ("sort=updated&order=desc", rev(&updated_asc)),
    ] {
        assert_eq!(user.ids(query), expected, "?{query}");
    }
    // Paging follows the same orders, tasks without a due date last.
    for (query, expected) in [("sort=due&order=desc", due_desc), ("sort=priority&order=asc", prio_asc), ("sort=title", title_asc)] {
        assert_eq!(all_pages(&user, query, 2), expected, "paged ?{query}");
    }
}

/// Follows `next_cursor` from the first page of `query` with `limit`.
fn all_pages(user: &User, query: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let q = match &cursor {
            Some(c) => format!("{query}&limit={limit}&cursor={c}"),
            None => format!("{query}&limit={limit}"),
        };
        let page = user.list(&q);
        let items = ids(&page["items"]);
        assert!(items.len() <= limit);
        seen.extend(items.clone());
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(items.len(), limit, "only the last page is short");
                cursor = Some(next.to_owned());
            }
            None => return seen,
        }
    }
    panic!("paging did not end: {seen:?}");
}

// ------------------------------------------------------------- pagination

#[test]
fn cursor_pages_return_every_task_once_despite_inserts() {
    let stack = Stack::get();
    let user = User::new(&stack, "pages");
    let tasks: Vec<String> = (1..=5).map(|n| id(&user.create(json!({ "title": format!("task {n}") })))).collect();

    // Ascending: pages of 2, 2, 1.
    let first = user.list("sort=created&order=asc&limit=2");
    assert_eq!(ids(&first["items"]), tasks[0..2]);
    let c1 = first["next_cursor"].as_str().expect("a next page").to_owned();
    assert!(c1.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "URL-safe cursor {c1}");
    let second = user.list(&format!("sort=created&order=asc&limit=2&cursor={c1}"));
    assert_eq!(ids(&second["items"]), tasks[2..4]);
    let c2 = second["next_cursor"].as_str().expect("a next page").to_owned();
    let third = user.list(&format!("sort=created&order=asc&limit=2&cursor={c2}"));
    assert_eq!(ids(&third["items"]), tasks[4..5]);
    assert_eq!(third["next_cursor"], Value::Null);
    assert_eq!(all_pages(&user, "sort=created&order=asc", 2), tasks);

    // A cursor belongs to its sort and order.
    assert_problem(
        &user.call("GET", &format!("/tasks?sort=created&order=desc&limit=2&cursor={c1}"), &[], None),
        422,
        Some(("cursor", "format")),
    );
    assert_problem(
        &user.call("GET", &format!("/tasks?sort=title&order=asc&limit=2&cursor={c1}"), &[], None),
        422,
        Some(("cursor", "format")),
    );

    // Newest first (the default), with a task added between pages: the added
    // task sorts before the cursor, so it is not shown, and nothing shifts.
    let page1 = user.list("limit=2");
    let newest: Vec<String> = tasks.iter().rev().cloned().collect();
    assert_eq!(ids(&page1["items"]), newest[0..2]);
    let added = id(&user.create(json!({ "title": "task 6" })));
    let c = page1["next_cursor"].as_str().unwrap().to_owned();
    let page2 = user.list(&format!("limit=2&cursor={c}"));
    assert_eq!(ids(&page2["items"]), newest[2..4]);
    let c = page2["next_cursor"].as_str().unwrap().to_owned();
    let page3 = user.list(&format!("limit=2&cursor={c}"));
    assert_eq!(ids(&page3["items"]), newest[4..5]);
    assert_eq!(page3["next_cursor"], Value::Null);

    // Oldest first, with a task added between pages: every earlier task once, then the new ones.
    let page1 = user.list("sort=created&order=asc&limit=2");
    assert_eq!(ids(&page1["items"]), tasks[0..2]);
    let added2 = id(&user.create(json!({ "title": "task 7" })));
    let mut seen = ids(&page1["items"]);
    let mut cursor = page1["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let page = user.list(&format!("sort=created&order=asc&limit=2&cursor={c}"));
        seen.extend(ids(&page["items"]));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    let mut expected = tasks.clone();
    expected.extend([added, added2]);
    assert_eq!(seen, expected, "each task exactly once, in order");

    // Filters apply across pages.
    assert_eq!(all_pages(&user, "q=task&sort=title", 3).len(), 7);
}

/// A request body must be a JSON object: any other JSON value is a 400
/// (`field: body`, `rule: format`) and writes nothing.
#[test]
fn non_object_bodies_are_refused() {
    let stack = Stack::get();
    let user = User::new(&stack, "shape");
    let task = user.create(json!({ "title": "keep me" }));
    let path = format!("/tasks/{}", id(&task));
    for body in [json!("Buy milk"), json!(42), json!(null), json!(["Buy milk"]), json!(["Buy milk", null, "high"])] {
        for (method, target) in [("POST", "/tasks"), ("PUT", path.as_str()), ("PATCH", path.as_str())] {
            assert_problem(&user.call(method, target, &[], Some(&body)), 400, Some(("body", "format")));
        }
    }
    assert_eq!(user.ids(""), [id(&task)], "nothing was created");
    assert_eq!(user.get_task(&id(&task)), task, "nothing was changed");
}

// ------------------------------------------------------------ concurrency

#[test]
fn concurrent_writes_of_one_user_serialize_without_gaps() {
    let stack = Stack::get();
    let user = User::new(&stack, "race");
    let key = format!("race-{}", uuid::Uuid::now_v7());
    let body = json!({ "title": "once" });

    // Concurrent retries with one Idempotency-Key: one task, every answer names it.
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..6).map(|_| s.spawn(|| user.call("POST", "/tasks", &[("idempotency-key", &key)], Some(&body)))).collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let created: BTreeSet<String> = replies.iter().map(|r| id(&assert_task(r, 201))).collect();
    assert_eq!(created.len(), 1, "one task for one key: {replies:?}");
    assert_eq!(replies.iter().filter(|r| r.header("idempotent-replayed").is_none()).count(), 1, "exactly one original answer");
    let tid = created.into_iter().next().unwrap();
    assert_eq!(user.ids(""), std::slice::from_ref(&tid));

    // Concurrent changes of one task: each succeeds or is a clean 409; versions and seq have no gaps.
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..6)
            .map(|i| {
                let (user, tid) = (&user, &tid);
                s.spawn(move || user.call("PATCH", &format!("/tasks/{tid}"), &[], Some(&json!({ "title": format!("title {i}") }))))
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let ok = replies.iter().filter(|r| r.status == 200).count();
    for r in replies.iter().filter(|r| r.status != 200) {
        assert_problem(r, 409, None);
    }
    assert!(ok >= 1, "{replies:?}");
    let versions: BTreeSet<u64> = replies.iter().filter(|r| r.status == 200).map(|r| r.json["version"].as_u64().unwrap()).collect();
    assert_eq!(versions, (2..=1 + ok as u64).collect(), "each success made its own version");
    assert_eq!(user.get_task(&tid)["version"], json!(1 + ok as u64));
    let mut expected = vec![CREATED];
    expected.extend(std::iter::repeat_n(UPDATED, ok));
    user.assert_events(&expected);
}
