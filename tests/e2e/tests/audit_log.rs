//! The audit log through the real stack: every task and reminder event lands in
//! the user's hash-chained log exactly once, in order, even under concurrent
//! and repeated delivery; tampering is found by `verify`; the log is queryable
//! with filters and cursor pagination.

use std::time::Duration;

use e2e::{assert_matches_openapi, eventually, fresh_user, get, put_state, send, send_json, Reply, Stack};
use serde_json::{json, Value};

const TASK_EVENTS: &str = "task-events";
const REMINDERS: &str = "reminders";
const REMINDER_DUE: &str = "com.todo.reminder.due.v1";
const CREATED: &str = "com.todo.task.created.v1";
const UPDATED: &str = "com.todo.task.updated.v1";
const COMPLETED: &str = "com.todo.task.completed.v1";
const DELETED: &str = "com.todo.task.deleted.v1";

/// How long an event may take from publish to audit entry.
const DELIVERY: Duration = Duration::from_secs(60);
/// How long to wait for a duplicate that should not come.
const SETTLE: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------- helpers

fn audit_dapr() -> String {
    std::env::var("AUDIT_SERVICE_DAPR_URL").expect("AUDIT_SERVICE_DAPR_URL is set by `cargo xtask test`")
}

fn uuid() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn cloudevent(id: &str, event_type: &str, subject: &str, time: &str, data: Value) -> Value {
    json!({
        "specversion": "1.0", "id": id, "source": "e2e-audit-log", "type": event_type,
        "subject": subject, "time": time, "datacontenttype": "application/json", "data": data,
    })
}

/// A task event as todo-api would publish it (`data.time` is the event time).
fn task_event(user: &str, event_type: &str, task_id: &str, seq: u64, time: &str) -> Value {
    let id = uuid();
    let task = json!({ "id": task_id, "user_id": user, "title": format!("task {seq}"), "completed": false,
                       "completed_at": null, "created_at": time, "updated_at": time, "version": seq });
    let data = json!({ "event_id": id, "type": event_type, "user_id": user, "seq": seq, "time": time, "task": task });
    cloudevent(&id, event_type, task_id, time, data)
}

/// A `com.todo.reminder.due.v1` event as reminder-service will publish it
/// (no `data.time`: the CloudEvent `time` is the event time).
fn reminder_event(user: &str, task_id: &str, time: &str) -> Value {
    let id = uuid();
    let data = json!({ "event_id": id, "user_id": user, "task_id": task_id, "title": "pay rent",
                       "due_at": "2026-01-01T10:00:00Z", "remind_at": "2026-01-01T09:45:00Z" });
    cloudevent(&id, REMINDER_DUE, task_id, time, data)
}

fn audit(stack: &Stack, user: &str, token: &str, query: &str) -> Reply {
    get(&format!("{}/audit/{user}{query}", stack.audit), token)
}

/// A page of `GET /audit/{user}{query}`, checked against the OpenAPI schema.
fn page(stack: &Stack, user: &str, token: &str, query: &str) -> Value {
    let reply = audit(stack, user, token, query);
    assert_eq!(reply.status, 200, "{query}: {:?}", reply.json);
    assert_matches_openapi("AuditPage", &reply.json);
    reply.json
}

/// Every entry that `query` selects, following `next_cursor` to the end.
fn collect(stack: &Stack, user: &str, token: &str, query: &str) -> (Vec<Value>, usize) {
    let (mut items, mut after, mut requests) = (Vec::new(), None::<String>, 0);
    loop {
        let sep = if query.is_empty() { "?" } else { "&" };
        let q = match &after {
            Some(a) => format!("{query}{sep}after={a}"),
            None => query.to_owned(),
        };
        let page = page(stack, user, token, &q);
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        requests += 1;
        assert!(requests < 1_000, "pagination does not end");
        match page["next_cursor"].as_str() {
            Some(cursor) => after = Some(cursor.to_owned()),
            None => return (items, requests),
        }
    }
}

fn entries(stack: &Stack, user: &str, token: &str) -> Vec<Value> {
    collect(stack, user, token, "?limit=500").0
}

fn verify(stack: &Stack, user: &str, token: &str) -> Value {
    let reply = get(&format!("{}/audit/{user}/verify", stack.audit), token);
    assert_eq!(reply.status, 200, "{:?}", reply.json);
    assert_matches_openapi("Verification", &reply.json);
    reply.json
}

/// Waits until the user's log holds `n` entries, then a little longer to see
/// that no more arrive; returns them.
fn wait_for(stack: &Stack, user: &str, token: &str, n: usize) -> Vec<Value> {
    let mut seen = 0;
    eventually(DELIVERY, || {
        seen = entries(stack, user, token).len();
        (seen >= n).then_some(())
    })
    .unwrap_or_else(|| panic!("{n} audit entries within {DELIVERY:?}; found {seen}"));
    std::thread::sleep(SETTLE);
    let all = entries(stack, user, token);
    assert_eq!(all.len(), n, "exactly {n} entries: {:#?}", all.iter().map(summary).collect::<Vec<_>>());
    all
}

fn summary(entry: &Value) -> String {
    format!("{} {} {} seq={}", entry["position"], entry["event_type"], entry["event_id"], entry["data"]["seq"])
}

fn positions(items: &[Value]) -> Vec<u64> {
    items.iter().map(|e| e["position"].as_u64().unwrap()).collect()
}

/// Checks the links of a whole log as a client can: positions 0.., each
/// `prev_hash` the previous `hash`.
fn assert_linked(items: &[Value]) {
    let mut prev = "0".repeat(64);
    for (i, entry) in items.iter().enumerate() {
        assert_eq!(entry["position"], i as u64);
        assert_eq!(entry["prev_hash"], prev.as_str(), "entry {i} links to its predecessor");
        prev = entry["hash"].as_str().unwrap().to_owned();
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn task_lifecycle_and_reminder_are_chained_in_order_and_replays_add_nothing() {
    let stack = Stack::get();
    let user = fresh_user("audit-life");
    let token = stack.token(&user);
    let tasks = format!("{}/api/{user}/tasks", stack.api);
    let auth = format!("Bearer {token}");

    let created = send_json("POST", &tasks, &token, &json!({ "title": "pay rent" }));
    assert_eq!(created.status, 201, "{:?}", created.json);
    let task_id = created.json["id"].as_str().unwrap().to_owned();
    let task = format!("{tasks}/{task_id}");
    let renamed = send_json("PATCH", &task, &token, &json!({ "title": "pay the rent" }));
    assert_eq!(renamed.status, 200, "{:?}", renamed.json);
    let completed = send("PATCH", &format!("{task}/complete"), &[("authorization", &auth)], None);
    assert_eq!((completed.status, &completed.json["completed"]), (200, &json!(true)), "{:?}", completed.json);
    let reopened = send("PATCH", &format!("{task}/complete"), &[("authorization", &auth)], None);
    assert_eq!((reopened.status, &reopened.json["completed"]), (200, &json!(false)), "{:?}", reopened.json);
    let deleted = send("DELETE", &task, &[("authorization", &auth)], None);
    assert_eq!(deleted.status, 204, "{:?}", deleted.json);

    wait_for(&stack, &user, &token, 5);
    let reminder = reminder_event(&user, &task_id, "2026-01-01T09:45:00Z");
    stack.publish_cloudevent(REMINDERS, &user, &reminder);
    let log = wait_for(&stack, &user, &token, 6);

    let types: Vec<&str> = log.iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(types, [CREATED, UPDATED, COMPLETED, UPDATED, DELETED, REMINDER_DUE]);
    let seqs: Vec<&Value> = log[..5].iter().map(|e| &e["data"]["seq"]).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(log[1]["data"]["task"]["title"], "pay the rent");
    assert_eq!(log[2]["data"]["task"]["completed"], true);
    assert_eq!(log[3]["data"]["task"]["completed"], false);
    for entry in &log {
        assert_matches_openapi("AuditEntry", entry);
        assert_eq!(entry["task_id"], task_id.as_str());
        assert_eq!(entry["actor"], user.as_str());
        assert_eq!(entry["event_id"], entry["data"]["event_id"], "the CloudEvent id is the event's id");
    }
    for entry in &log[..5] {
        stack.assert_matches_contract("events/task-event.schema.json", &entry["data"]);
        assert_eq!(entry["event_time"], entry["data"]["time"], "a task event happened at its data's time");
    }
    let last = &log[5];
    assert_eq!(last["data"], reminder["data"], "the reminder's data is kept verbatim");
    assert_eq!(last["event_id"], reminder["id"]);
    assert_eq!(last["event_time"], "2026-01-01T09:45:00Z", "a reminder happened at its CloudEvent time");
    assert_linked(&log);
    let verified = verify(&stack, &user, &token);
    assert_eq!(verified, json!({ "intact": true, "entries": 6, "head_hash": last["hash"], "broken_at": null, "seq_gaps": [] }));

    // Replay every event (as a redelivery or a DLQ replay would), then one new
    // event on each topic, so that the new ones arrive after the replays.
    for entry in &log[..5] {
        let again = cloudevent(
            entry["event_id"].as_str().unwrap(),
            entry["event_type"].as_str().unwrap(),
            &task_id,
            entry["data"]["time"].as_str().unwrap(),
            entry["data"].clone(),
        );
        stack.publish_cloudevent(TASK_EVENTS, &user, &again);
    }
    stack.publish_cloudevent(REMINDERS, &user, &reminder);
    let fresh = send_json("POST", &tasks, &token, &json!({ "title": "after the replay" }));
    assert_eq!(fresh.status, 201);
    let next_reminder = reminder_event(&user, &task_id, "2026-01-01T09:50:00Z");
    stack.publish_cloudevent(REMINDERS, &user, &next_reminder);

    let after = wait_for(&stack, &user, &token, 8);
    assert_eq!(&after[..6], &log[..], "entries are never changed");
    let mut tail: Vec<&str> = after[6..].iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    tail.sort();
    let mut expected =
        vec![next_reminder["id"].as_str().unwrap(), after.iter().find(|e| e["data"]["seq"] == 6).unwrap()["event_id"].as_str().unwrap()];
    expected.sort();
    assert_eq!(tail, expected, "the replays added nothing; only the two new events were appended");
    assert_linked(&after);
    assert_eq!(verify(&stack, &user, &token)["entries"], 8);
}

#[test]
fn fifty_concurrent_events_for_one_user_land_exactly_once() {
    let stack = Stack::get();
    let user = fresh_user("audit-burst");
    let token = stack.token(&user);
    let task_id = uuid();
    // Both topics at once, so that the two subscriptions race for the chain head.
    let events: Vec<(&str, Value)> = (1..=50)
        .map(|i| {
            let time = format!("2026-01-01T00:00:{:02}Z", i % 60);
            if i % 2 == 0 {
                (TASK_EVENTS, task_event(&user, UPDATED, &task_id, i / 2, &time))
            } else {
                (REMINDERS, reminder_event(&user, &task_id, &time))
            }
        })
        .collect();
    std::thread::scope(|s| {
        for (topic, event) in &events {
            let (stack, user) = (&stack, &user);
            s.spawn(move || stack.publish_cloudevent(topic, user, event));
        }
    });

    let log = wait_for(&stack, &user, &token, 50);
    let mut recorded: Vec<&str> = log.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    let mut sent: Vec<&str> = events.iter().map(|(_, e)| e["id"].as_str().unwrap()).collect();
    recorded.sort();
    sent.sort();
    assert_eq!(recorded, sent, "every event exactly once");
    assert_linked(&log);
    let verified = verify(&stack, &user, &token);
    assert_eq!(verified, json!({ "intact": true, "entries": 50, "head_hash": log[49]["hash"], "broken_at": null, "seq_gaps": [] }));
}

#[test]
fn concurrent_bulk_deliveries_of_one_user_record_each_event_once() {
    // 50 distinct events in batches of 10, each batch delivered twice, all at
    // once, straight to the subscription route as Dapr would call it (as after
    // a rebalance, or with two replicas): ten writers race for one chain head.
    // An entry that lost too many races is answered RETRY, and delivered
    // again as Dapr would; in the end each event is recorded exactly once, in
    // a valid chain, and every entry was acknowledged.
    let stack = Stack::get();
    let user = fresh_user("audit-race");
    let token = stack.token(&user);
    let task_id = uuid();
    let events: Vec<Value> = (1..=50).map(|i| task_event(&user, CREATED, &task_id, i, "2026-01-01T00:00:00Z")).collect();
    let url = format!("{}/internal/audit/task-events", stack.audit);
    let mut pending: Vec<Vec<Value>> = events.chunks(10).chain(events.chunks(10)).map(<[Value]>::to_vec).collect();
    let mut rounds = 0;
    while !pending.is_empty() {
        rounds += 1;
        assert!(rounds <= 20, "still not acknowledged after 20 rounds: {pending:?}");
        pending = std::thread::scope(|s| {
            let handles: Vec<_> = pending
                .iter()
                .map(|batch| {
                    let (url, stack) = (&url, &stack);
                    s.spawn(move || {
                        let (reply, statuses) = e2e::deliver_bulk(url, stack.app_token(), "task-events", batch);
                        assert_eq!(reply.status, 200, "{:?}", reply.json);
                        let retry: Vec<Value> = batch
                            .iter()
                            .zip(&statuses)
                            .filter(|(_, status)| match status.as_deref() {
                                Some("SUCCESS") => false,
                                Some("RETRY") => true,
                                other => panic!("status {other:?} for a valid event: {:?}", reply.json),
                            })
                            .map(|(event, _)| event.clone())
                            .collect();
                        retry
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).filter(|retry| !retry.is_empty()).collect()
        });
    }
    let log = entries(&stack, &user, &token);
    assert_eq!(log.len(), 50);
    let mut recorded: Vec<&str> = log.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    recorded.sort();
    recorded.dedup();
    assert_eq!(recorded.len(), 50, "no event twice");
    assert_linked(&log);
    assert_eq!(verify(&stack, &user, &token)["intact"], true);
}

#[test]
fn one_bad_entry_of_a_batch_is_dropped_alone() {
    // A batch of three: valid, unreadable (no user), valid. The bad one is
    // DROP (to the dead-letter topic); the others are recorded, in order.
    let stack = Stack::get();
    let user = fresh_user("audit-bulk-drop");
    let token = stack.token(&user);
    let task_id = uuid();
    let first = task_event(&user, CREATED, &task_id, 1, "2026-01-01T00:00:00Z");
    let mut bad = task_event(&user, UPDATED, &task_id, 2, "2026-01-01T00:00:01Z");
    bad["data"].as_object_mut().unwrap().remove("user_id");
    let third = task_event(&user, UPDATED, &task_id, 2, "2026-01-01T00:00:02Z");
    let url = format!("{}/internal/audit/task-events", stack.audit);
    let (reply, statuses) = e2e::deliver_bulk(&url, stack.app_token(), "task-events", &[first.clone(), bad, third.clone()]);
    let expected: Vec<Option<String>> = ["SUCCESS", "DROP", "SUCCESS"].iter().map(|s| Some(s.to_string())).collect();
    assert_eq!((reply.status, statuses), (200, expected), "{:?}", reply.json);
    let log = entries(&stack, &user, &token);
    let recorded: Vec<&str> = log.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(recorded, [first["id"].as_str().unwrap(), third["id"].as_str().unwrap()]);
    assert_linked(&log);
}

#[test]
fn an_entry_changed_behind_the_services_back_is_reported_by_verify() {
    let stack = Stack::get();
    let user = fresh_user("audit-tamper");
    let token = stack.token(&user);
    let task_id = uuid();
    for seq in 1..=4 {
        stack.publish_cloudevent(TASK_EVENTS, &user, &task_event(&user, UPDATED, &task_id, seq, "2026-01-01T00:00:00Z"));
    }
    let log = wait_for(&stack, &user, &token, 4);
    assert_eq!(verify(&stack, &user, &token)["intact"], true);

    // Rewrite entry 2 through the audit-service's own sidecar (Dapr adds the app-id prefix).
    let key = format!("audit:{user}:entry:2");
    let stored = send("GET", &format!("{}/v1.0/state/statestore/{key}", audit_dapr()), &[], None);
    assert_eq!(stored.status, 200, "{:?}", stored.json);
    assert_eq!(stored.json, log[2], "the stored entry is what the API serves");
    let mut forged = stored.json.clone();
    forged["data"]["task"]["title"] = json!("something else");
    put_state(&audit_dapr(), &key, &forged);

    let verified = verify(&stack, &user, &token);
    assert_eq!(verified, json!({ "intact": false, "entries": 2, "head_hash": log[1]["hash"], "broken_at": 2, "seq_gaps": [] }));
    assert_eq!(entries(&stack, &user, &token)[2]["data"]["task"]["title"], "something else", "the log serves what is stored");
}

#[test]
fn an_entry_that_no_longer_decodes_is_where_verify_breaks() {
    let stack = Stack::get();
    let user = fresh_user("audit-undecodable");
    let token = stack.token(&user);
    let task_id = uuid();
    for seq in 1..=3 {
        stack.publish_cloudevent(TASK_EVENTS, &user, &task_event(&user, UPDATED, &task_id, seq, "2026-01-01T00:00:00Z"));
    }
    let log = wait_for(&stack, &user, &token, 3);
    put_state(&audit_dapr(), &format!("audit:{user}:entry:1"), &json!({ "position": "one", "garbage": true }));
    let verified = verify(&stack, &user, &token);
    assert_eq!((&verified["intact"], &verified["broken_at"], &verified["entries"]), (&json!(false), &json!(1), &json!(1)));
    assert_eq!(verified["head_hash"], log[0]["hash"]);
    // The log still serves the entries that decode.
    let served = entries(&stack, &user, &token);
    assert_eq!(positions(&served), [0, 2]);
}

#[test]
fn missing_seq_numbers_are_reported_by_verify() {
    let stack = Stack::get();
    let user = fresh_user("audit-gaps");
    let token = stack.token(&user);
    let task_id = uuid();
    // seq 3, 4 and 6 never arrive (say, dead-lettered); a reminder has no seq.
    for seq in [1, 2, 5, 7] {
        stack.publish_cloudevent(TASK_EVENTS, &user, &task_event(&user, UPDATED, &task_id, seq, "2026-01-01T00:00:00Z"));
    }
    stack.publish_cloudevent(REMINDERS, &user, &reminder_event(&user, &task_id, "2026-01-01T00:00:00Z"));
    wait_for(&stack, &user, &token, 5);
    let verified = verify(&stack, &user, &token);
    assert_eq!(verified["intact"], true, "the chain itself is whole: {verified}");
    assert_eq!(verified["seq_gaps"], json!([{ "from": 3, "to": 4 }, { "from": 6, "to": 6 }]));
}

#[test]
fn filters_and_pagination_select_entries_and_bad_parameters_are_named() {
    let stack = Stack::get();
    let user = fresh_user("audit-query");
    let token = stack.token(&user);
    let (a, b) = (uuid(), uuid());
    // 12 events: two tasks, four types, one per second from 10:00:00.
    let kinds = [CREATED, UPDATED, COMPLETED, REMINDER_DUE, DELETED, UPDATED];
    for i in 0..12u64 {
        let task = if i % 2 == 0 { &a } else { &b };
        let time = format!("2026-01-01T10:00:{i:02}Z");
        let kind = kinds[i as usize % kinds.len()];
        if kind == REMINDER_DUE {
            stack.publish_cloudevent(REMINDERS, &user, &reminder_event(&user, task, &time));
        } else {
            stack.publish_cloudevent(TASK_EVENTS, &user, &task_event(&user, kind, task, i + 1, &time));
        }
    }
    let all = wait_for(&stack, &user, &token, 12);
    let select = |keep: &dyn Fn(&Value) -> bool| -> Vec<u64> { positions(&all.iter().filter(|e| keep(e)).cloned().collect::<Vec<_>>()) };
    let ask = |query: &str| -> Vec<u64> { positions(&collect(&stack, &user, &token, query).0) };

    // after + limit: pages of 5, 5 and 2, each continuing where the last ended.
    let first = page(&stack, &user, &token, "?limit=5");
    assert_eq!((positions(first["items"].as_array().unwrap()), &first["next_cursor"]), (vec![0, 1, 2, 3, 4], &json!("4")));
    let second = page(&stack, &user, &token, "?after=4&limit=5");
    assert_eq!((positions(second["items"].as_array().unwrap()), &second["next_cursor"]), (vec![5, 6, 7, 8, 9], &json!("9")));
    let third = page(&stack, &user, &token, "?after=9&limit=5");
    assert_eq!((positions(third["items"].as_array().unwrap()), &third["next_cursor"]), (vec![10, 11], &json!(null)));
    assert_eq!(page(&stack, &user, &token, "?after=11")["items"], json!([]));
    assert_eq!(page(&stack, &user, &token, "")["items"].as_array().unwrap().len(), 12, "default page holds them all");

    // task_id
    let of_a = ask(&format!("?task_id={a}"));
    assert_eq!(of_a, select(&|e| e["task_id"] == a.as_str()));
    assert_eq!(of_a.len(), 6);
    // type, repeatable and comma-separated
    let types = select(&|e| e["event_type"] == CREATED || e["event_type"] == REMINDER_DUE);
    assert_eq!(types.len(), 4);
    assert_eq!(ask(&format!("?type={CREATED}&type={REMINDER_DUE}")), types);
    assert_eq!(ask(&format!("?type={CREATED},{REMINDER_DUE}")), types);
    // time range on event time: from <= t < to (RFC 3339, any offset)
    let range = ask("?from=2026-01-01T10:00:03Z&to=2026-01-01T11:00:07%2B01:00");
    assert_eq!(range, select(&|e| ("2026-01-01T10:00:03Z".."2026-01-01T10:00:07Z").contains(&e["event_time"].as_str().unwrap())));
    assert_eq!(range.len(), 4);
    // everything at once, one match per page: every match exactly once, in order
    let query = format!("?task_id={b}&type={UPDATED}&from=2026-01-01T10:00:01Z&limit=1");
    let (found, requests) = collect(&stack, &user, &token, &query);
    let expected = select(&|e| e["task_id"] == b.as_str() && e["event_type"] == UPDATED);
    assert_eq!(positions(&found), expected);
    assert!(expected.len() >= 2 && requests >= expected.len(), "{expected:?} in {requests} requests");
    assert_eq!(ask(&format!("?task_id={}", uuid())), Vec::<u64>::new());

    // Bad parameters: 422 naming the parameter.
    for (query, field) in [
        ("?after=x", "after"),
        ("?after=-1", "after"),
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
        ("?limit=1&limit=2", "limit"),
        ("?task_id=nope", "task_id"),
        ("?type=not%20a%20type", "type"),
        ("?from=yesterday", "from"),
        ("?to=2026-01-01", "to"),
        ("?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
        ("?cursor=3", "cursor"),
    ] {
        let reply = audit(&stack, &user, &token, query);
        assert_eq!((reply.status, reply.json["field"].as_str()), (422, Some(field)), "{query}: {:?}", reply.json);
        assert_eq!(reply.header("content-type"), Some("application/problem+json"));
        assert_matches_openapi("Problem", &reply.json);
    }
    assert_eq!(audit(&stack, &user, &token, "?cursor=3").json["rule"], "unknown_field");

    // Only the owner reads a log.
    let other = stack.token(&fresh_user("audit-other"));
    assert_eq!(audit(&stack, &user, &other, "").status, 403);
    assert_eq!(get(&format!("{}/audit/{user}/verify", stack.audit), &other).status, 403);
    assert_eq!(send("GET", &format!("{}/audit/{user}", stack.audit), &[], None).status, 401);
}
