//! Fault test of the transactional outbox: a publish that fails after the
//! commit leaves the event pending in the outbox, and the relay job delivers
//! it exactly once after the broker recovers, with no further request. Alone in its own test binary, because it
//! pauses the broker that every other test uses.

use std::process::Command;
use std::time::Duration;

use e2e::{eventually, fresh_user, get, send_json, Stack};
use serde_json::{json, Value};

/// Pauses the Kafka broker (SIGSTOP) until dropped (SIGCONT), even on panic.
struct PausedBroker(String);

impl PausedBroker {
    fn pause(pid: String) -> Self {
        assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
        PausedBroker(pid)
    }
}

impl Drop for PausedBroker {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.0]).status();
    }
}

/// A document of todo-api's state, read through its sidecar.
fn state(stack: &Stack, key: &str) -> Option<Value> {
    let reply = e2e::send("GET", &format!("{}/v1.0/state/statestore/{key}", stack.api_dapr), &[], None);
    assert!(reply.status == 200 || reply.status == 204, "state {key}: {}", reply.status);
    (reply.status == 200).then_some(reply.json)
}

#[test]
fn an_event_whose_publish_failed_is_delivered_once_after_recovery_without_a_request() {
    let stack = Stack::get();
    let kafka = std::env::var("TODO_KAFKA_PID").expect("the stack exports the broker's pid");
    let user = fresh_user("outbox-fault");
    let token = stack.token(&user);
    let tasks = format!("{}/api/{user}/tasks", stack.api);

    let first = send_json("POST", &tasks, &token, &json!({ "title": "before the fault" }));
    assert_eq!(first.status, 201);
    eventually(Duration::from_secs(30), || (stack.audit_entries(&user, &token).len() == 1).then_some(()))
        .expect("the first event is delivered");

    // The broker stops answering: the publish after the commit fails (Dapr's
    // outbound timeout for the pub/sub), but the write itself is committed.
    let paused = PausedBroker::pause(kafka);
    let second = send_json("POST", &tasks, &token, &json!({ "title": "during the fault" }));
    assert_eq!(second.status, 201, "the commit stands even though the publish failed: {:?}", second.json);
    let pending_id = second.json["id"].as_str().unwrap().to_owned();

    // The event is committed but pending: the published mark has not moved
    // and its outbox entry is still there. (The broker may still receive the
    // message the timed-out publish had queued: consumers dedupe on its id.)
    let ledger = state(&stack, &format!("ledger:{user}")).expect("the ledger exists");
    let mark = || state(&stack, &format!("published:{user}")).and_then(|m| m.as_u64());
    assert_eq!((ledger["seq"].as_u64(), mark()), (Some(2), Some(1)), "{ledger}");
    assert!(state(&stack, &format!("outbox:{user}:2")).is_some(), "the event waits in the outbox");
    drop(paused);

    // No further request: the relay job that the failed publish scheduled on
    // todo-api's sidecar publishes the event once the broker is back.
    let published = eventually(Duration::from_secs(90), || (mark() == Some(2)).then_some(()));
    assert!(published.is_some(), "the relay published the pending event without a request");
    assert!(state(&stack, &format!("outbox:{user}:2")).is_none(), "the outbox entry is gone");
    eventually(Duration::from_secs(60), || (stack.audit_entries(&user, &token).len() >= 2).then_some(()))
        .expect("the pending event is delivered after recovery");
    std::thread::sleep(Duration::from_secs(3));
    let entries = stack.audit_entries(&user, &token);
    assert_eq!(entries.len(), 2, "delivered exactly once: {entries:?}");
    assert_eq!(entries[1]["task_id"], pending_id.as_str());
    assert_eq!(entries[1]["data"]["seq"], 2);
    stack.assert_matches_contract("events/task-event.schema.json", &entries[1]["data"]);
    let queue = state(&stack, "outbox-relay").expect("the relay queue exists");
    assert_eq!(queue["users"].as_array().map(|u| u.iter().any(|u| u == user.as_str())), Some(false), "{queue}");

    // The relay route is the sidecar's alone.
    let forged = e2e::send("POST", &format!("{}/job/outbox-relay", stack.api), &[], Some(("application/json", b"{}")));
    assert_eq!(forged.status, 401, "{:?}", forged.json);

    // Later requests publish nothing more.
    assert_eq!(get(&tasks, &token).status, 200);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(stack.audit_entries(&user, &token).len(), 2);
}
