//! Reminders on the real Dapr scheduler: todo-api -> `task-events` ->
//! reminder-service (Dapr Jobs on its own sidecar) -> `POST /job/{name}` ->
//! `reminders` -> audit-service, whose log is where the tests observe them.
//!
//! Timing: `data.fired_at` is the reminder-service's clock when the job
//! callback ran (same machine as the test), so "never early" is asserted
//! strictly on it and "within 1 s" on `fired_at - remind_at`. The audit
//! entry's `recorded_at` adds Kafka and subscription delivery; it is checked
//! to be after `remind_at` and reported.

use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e::{eventually, fresh_user, get, send, send_json, Stack};
use serde_json::{json, Value};

const REMINDER_DUE: &str = "com.todo.reminder.due.v1";

/// The sidecar-restart test takes this exclusively, the others shared: a
/// restart must not disturb another test's reminders.
static SIDECAR: RwLock<()> = RwLock::new(());

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-03-01T09:00:00.123Z`.
fn rfc3339(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s, milli) = (rest / 3_600_000, rest / 60_000 % 60, rest / 1000 % 60, rest % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Milliseconds since the epoch of a UTC RFC 3339 timestamp (`...Z`).
fn millis(raw: &Value) -> i64 {
    let text = raw.as_str().unwrap_or_else(|| panic!("not a timestamp: {raw}"));
    let t = text.strip_suffix('Z').unwrap_or_else(|| panic!("not UTC: {text}"));
    let num = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
    let (y, mo, d, h, mi, s) = (num(0..4), num(5..7), num(8..10), num(11..13), num(14..16), num(17..19));
    let frac = t.get(20..).unwrap_or("");
    let ms = if frac.is_empty() { 0 } else { format!("{:0<3}", &frac[..frac.len().min(3)]).parse::<i64>().unwrap() };
    ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60_000 + s * 1000 + ms
}

struct Ctx {
    stack: Stack,
    user: String,
    token: String,
    reminder_dapr: String,
}

impl Ctx {
    fn new(prefix: &str) -> Ctx {
        let stack = Stack::get();
        let user = fresh_user(prefix);
        let token = stack.token(&user);
        let reminder_dapr = std::env::var("REMINDER_SERVICE_DAPR_URL").expect("REMINDER_SERVICE_DAPR_URL is not set");
        Ctx { stack, user, token, reminder_dapr }
    }

    fn create(&self, body: Value) -> Value {
        let reply = send_json("POST", &format!("{}/api/{}/tasks", self.stack.api, self.user), &self.token, &body);
        assert_eq!(reply.status, 201, "{:?}", reply.json);
        reply.json
    }

    fn task_url(&self, task: &Value) -> String {
        format!("{}/api/{}/tasks/{}", self.stack.api, self.user, task["id"].as_str().unwrap())
    }

    /// The audit log's reminder entries of this user.
    fn reminders(&self) -> Vec<Value> {
        let reply = get(&format!("{}/audit/{}?limit=500", self.stack.audit, self.user), &self.token);
        assert_eq!(reply.status, 200, "{:?}", reply.json);
        let items = reply.json["items"].as_array().cloned().unwrap_or_default();
        items.into_iter().filter(|e| e["event_type"] == REMINDER_DUE).collect()
    }

    /// Whether the reminder job `name` exists on reminder-service's sidecar.
    fn job_exists(&self, name: &str) -> bool {
        send("GET", &format!("{}/v1.0/jobs/{name}", self.reminder_dapr), &[], None).status == 200
    }

    /// Waits until `n` reminders are recorded, then long enough for a
    /// duplicate to show up, and returns them all.
    fn await_reminders(&self, n: usize, limit: Duration) -> Vec<Value> {
        eventually(limit, || (self.reminders().len() >= n).then_some(()))
            .unwrap_or_else(|| panic!("{n} reminder(s) within {limit:?}; got {:?}", self.reminders()));
        std::thread::sleep(Duration::from_secs(2));
        self.reminders()
    }
}

fn job_name(task_id: &str, remind_at_ms: i64) -> String {
    format!("reminder-{task_id}-{remind_at_ms}")
}

/// Checks one recorded reminder against the task and the time it was due;
/// returns (callback lateness, recording lateness) in ms.
fn check_reminder(ctx: &Ctx, entry: &Value, task: &Value, remind_at_ms: i64) -> (i64, i64) {
    let data = &entry["data"];
    ctx.stack.assert_matches_contract("events/reminder-event.schema.json", data);
    assert_eq!(entry["event_id"], data["event_id"], "the CloudEvent id is the reminder's event_id");
    assert_eq!(entry["task_id"], task["id"]);
    assert_eq!(data["task_id"], task["id"]);
    assert_eq!(data["user_id"], ctx.user.as_str());
    assert_eq!(data["title"], task["title"]);
    assert_eq!(millis(&data["remind_at"]), remind_at_ms, "{data}");
    let fired = millis(&data["fired_at"]) - remind_at_ms;
    let recorded = millis(&entry["recorded_at"]) - remind_at_ms;
    eprintln!("reminder lateness: callback {fired} ms, audit recorded {recorded} ms");
    assert!(fired >= 0, "fired {fired} ms early: {data}");
    assert!(recorded >= 0, "recorded {recorded} ms before it was due: {entry}");
    (fired, recorded)
}

#[test]
fn reminder_fires_on_time_never_early() {
    let ctx = Ctx::new("remind-ontime");
    let _shared = SIDECAR.read().unwrap();
    let due = now_ms() + 3000;
    // One reminder at the due time (offset zero) and one absolute instant.
    let absolute = due + 1500;
    let task = ctx.create(json!({ "title": "call Bob", "due_at": rfc3339(due), "reminders": ["PT0S", rfc3339(absolute)] }));
    let id = task["id"].as_str().unwrap();
    assert!(eventually(Duration::from_secs(2), || ctx.job_exists(&job_name(id, due)).then_some(())).is_some(), "job scheduled");
    while now_ms() < due - 200 {
        assert!(ctx.reminders().is_empty(), "nothing fires before its time");
        std::thread::sleep(Duration::from_millis(100));
    }
    let entries = ctx.await_reminders(2, Duration::from_secs(10));
    assert_eq!(entries.len(), 2, "each reminder once: {entries:?}");
    let mut by_time = entries.clone();
    by_time.sort_by_key(|e| millis(&e["data"]["remind_at"]));
    for (entry, at) in by_time.iter().zip([due, absolute]) {
        let (fired, recorded) = check_reminder(&ctx, entry, &task, at);
        assert!(fired <= 1000, "fired {fired} ms late (target: within 1 s)");
        assert!(recorded <= 2000, "recorded {recorded} ms late");
        assert_eq!(millis(&entry["data"]["due_at"]), due);
    }
    assert_ne!(by_time[0]["event_id"], by_time[1]["event_id"]);
    assert!(!ctx.job_exists(&job_name(id, due)), "a fired job is gone");
}

#[test]
fn moving_the_due_date_moves_the_reminder() {
    let ctx = Ctx::new("remind-move");
    let _shared = SIDECAR.read().unwrap();
    let first = now_ms() + 3000;
    let task = ctx.create(json!({ "title": "moved", "due_at": rfc3339(first), "reminders": ["PT0S"] }));
    let id = task["id"].as_str().unwrap().to_owned();
    assert!(eventually(Duration::from_secs(2), || ctx.job_exists(&job_name(&id, first)).then_some(())).is_some());
    let moved = first + 3000;
    let reply = send_json("PATCH", &ctx.task_url(&task), &ctx.token, &json!({ "due_at": rfc3339(moved) }));
    assert_eq!(reply.status, 200, "{:?}", reply.json);
    assert!(eventually(Duration::from_secs(2), || (!ctx.job_exists(&job_name(&id, first))).then_some(())).is_some(), "old job cancelled");
    assert!(ctx.job_exists(&job_name(&id, moved)), "new job scheduled");
    while now_ms() < moved - 200 {
        assert!(ctx.reminders().is_empty(), "nothing fires at the old time");
        std::thread::sleep(Duration::from_millis(100));
    }
    let entries = ctx.await_reminders(1, Duration::from_secs(10));
    assert_eq!(entries.len(), 1, "{entries:?}");
    let (fired, _) = check_reminder(&ctx, &entries[0], &reply.json, moved);
    assert!(fired <= 1000, "fired {fired} ms late");
}

#[test]
fn completing_or_deleting_the_task_cancels_its_reminder() {
    let ctx = Ctx::new("remind-cancel");
    let _shared = SIDECAR.read().unwrap();
    let due = now_ms() + 3000;
    let body = json!({ "title": "cancel me", "due_at": rfc3339(due), "reminders": ["PT0S"] });
    let (done, gone) = (ctx.create(body.clone()), ctx.create(body));
    for task in [&done, &gone] {
        let name = job_name(task["id"].as_str().unwrap(), due);
        assert!(eventually(Duration::from_secs(2), || ctx.job_exists(&name).then_some(())).is_some(), "{name} scheduled");
    }
    let reply = send_json("PATCH", &format!("{}/complete", ctx.task_url(&done)), &ctx.token, &json!({ "completed": true }));
    assert_eq!(reply.status, 200, "{:?}", reply.json);
    assert_eq!(reply.json["completed"], true);
    let auth = format!("Bearer {}", ctx.token);
    let reply = send("DELETE", &ctx.task_url(&gone), &[("authorization", &auth)], None);
    assert_eq!(reply.status, 204, "{:?}", reply.json);
    for task in [&done, &gone] {
        let name = job_name(task["id"].as_str().unwrap(), due);
        assert!(eventually(Duration::from_secs(2), || (!ctx.job_exists(&name)).then_some(())).is_some(), "{name} cancelled");
    }
    let wait = (due + 3000 - now_ms()).max(0) as u64;
    std::thread::sleep(Duration::from_millis(wait));
    assert!(ctx.reminders().is_empty(), "no reminder for a done or deleted task: {:?}", ctx.reminders());
}

#[test]
fn the_same_task_event_twice_yields_one_reminder() {
    let ctx = Ctx::new("remind-dup");
    let _shared = SIDECAR.read().unwrap();
    let (event_id, task_id) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
    let (now, due) = (rfc3339(now_ms()), now_ms() + 3000);
    let task = json!({ "id": task_id, "user_id": ctx.user, "title": "twice", "completed": false, "completed_at": null,
                       "created_at": now, "updated_at": now, "version": 1, "due_at": rfc3339(due),
                       "time_zone": "UTC", "reminders": ["PT0S"] });
    let cloudevent = json!({
        "specversion": "1.0", "id": event_id, "source": "todo-api", "type": "com.todo.task.created.v1",
        "subject": task_id, "time": now, "datacontenttype": "application/json",
        "data": { "event_id": event_id, "type": "com.todo.task.created.v1", "user_id": ctx.user, "seq": 1,
                  "time": now, "task": task }
    });
    for _ in 0..2 {
        let reply = send(
            "POST",
            &format!("{}/v1.0/publish/pubsub/task-events?metadata.partitionKey={}", ctx.stack.api_dapr, ctx.user),
            &[],
            Some(("application/cloudevents+json", cloudevent.to_string().as_bytes())),
        );
        assert_eq!(reply.status, 204, "{:?}", reply.json);
    }
    let entries = ctx.await_reminders(1, Duration::from_secs(10));
    assert_eq!(entries.len(), 1, "one reminder for a redelivered event: {entries:?}");
    check_reminder(&ctx, &entries[0], &task, due);
}

#[test]
fn a_late_reminder_fires_at_once_only_while_the_task_is_due() {
    let ctx = Ctx::new("remind-late");
    let _shared = SIDECAR.read().unwrap();
    let due = now_ms() + 60_000;
    // The one-hour reminder is already past, but the task is still due: at once.
    let task = ctx.create(json!({ "title": "late", "due_at": rfc3339(due), "reminders": ["PT1H"] }));
    // Overdue task: its past reminder is skipped.
    ctx.create(json!({ "title": "overdue", "due_at": rfc3339(now_ms() - 60_000), "reminders": ["PT1M"] }));
    let entries = ctx.await_reminders(1, Duration::from_secs(5));
    assert_eq!(entries.len(), 1, "{entries:?}");
    check_reminder(&ctx, &entries[0], &task, due - 3_600_000);
}

/// Restarts reminder-service's daprd from the command line xtask recorded.
// The new daprd outlives this test: the stack stops it by its PID file.
#[allow(clippy::zombie_processes)]
fn restart_reminder_sidecar(ctx: &Ctx) -> u32 {
    let dir = std::path::PathBuf::from(std::env::var("TODO_STACK_DIR").expect("TODO_STACK_DIR is not set")).join("cmd");
    let name = "daprd-reminder-service";
    let record: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap()).unwrap();
    let pid_file = dir.join(format!("{name}.pid"));
    let old_pid = std::fs::read_to_string(&pid_file).ok().map_or_else(|| record["pid"].to_string(), |p| p.trim().to_owned());
    let health = format!("{}/v1.0/healthz", ctx.reminder_dapr);
    let status = std::process::Command::new("kill").args(["-TERM", &old_pid]).status().unwrap();
    assert!(status.success(), "kill {old_pid}");
    let down = |url: &str| {
        let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_millis(500))).build().into();
        agent.get(url).call().is_err()
    };
    assert!(eventually(Duration::from_secs(15), || down(&health).then_some(())).is_some(), "the sidecar stopped");
    let log = std::fs::OpenOptions::new().append(true).open(record["log"].as_str().unwrap()).unwrap();
    let mut cmd = std::process::Command::new(record["program"].as_str().unwrap());
    cmd.args(record["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()));
    for (k, v) in record["env"].as_object().unwrap() {
        cmd.env(k, v.as_str().unwrap());
    }
    if let Some(cwd) = record["cwd"].as_str() {
        cmd.current_dir(cwd);
    }
    let child = cmd.stdin(std::process::Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
    // The stack stops this process when it stops (and expects the old one's exit).
    std::fs::write(&pid_file, child.id().to_string()).unwrap();
    assert!(eventually(Duration::from_secs(60), || (!down(&health)).then_some(())).is_some(), "the sidecar is back");
    child.id()
}

#[test]
fn restarting_the_reminder_sidecar_loses_nothing() {
    let ctx = Ctx::new("remind-restart");
    let _exclusive = SIDECAR.write().unwrap_or_else(|e| e.into_inner());
    let due = now_ms() + 10_000;
    let task = ctx.create(json!({ "title": "survive", "due_at": rfc3339(due), "reminders": ["PT0S"] }));
    let id = task["id"].as_str().unwrap();
    assert!(eventually(Duration::from_secs(2), || ctx.job_exists(&job_name(id, due)).then_some(())).is_some(), "job scheduled");
    let started = Instant::now();
    restart_reminder_sidecar(&ctx);
    eprintln!("reminder-service's sidecar restarted in {:?}", started.elapsed());
    assert!(now_ms() < due, "the restart took longer than the test allows");
    assert!(ctx.job_exists(&job_name(id, due)), "the job survived the restart");
    let entries = ctx.await_reminders(1, Duration::from_secs(15));
    assert_eq!(entries.len(), 1, "{entries:?}");
    let (fired, _) = check_reminder(&ctx, &entries[0], &task, due);
    assert!(fired <= 1000, "fired {fired} ms late after a restart");
}

#[test]
fn timestamps_round_trip() {
    for ms in [0, 1_772_352_000_123, 951_782_400_000, 4_102_444_799_999] {
        assert_eq!(millis(&Value::String(rfc3339(ms))), ms, "{}", rfc3339(ms));
    }
    assert_eq!(rfc3339(1_772_352_000_123), "2026-03-01T08:00:00.123Z");
}

/// A task event as Dapr delivers it to a subscription: the CloudEvent with the event as `data`.
fn delivery(event: &Value) -> Value {
    json!({
        "specversion": "1.0", "id": event["event_id"], "type": event["type"], "source": "todo-api",
        "subject": event["task"]["id"], "datacontenttype": "application/json", "data": event,
    })
}

/// Two handlers of one task at once (a rebalance, a second replica): the one
/// whose projection write loses must not delete a job the winner keeps.
#[test]
fn two_handlers_at_once_keep_the_winners_jobs() {
    let _shared = SIDECAR.read().unwrap();
    let ctx = Ctx::new("remind-race");
    let reminder = std::env::var("REMINDER_SERVICE_URL").expect("REMINDER_SERVICE_URL is not set");
    let url = format!("{reminder}/internal/reminder/task-events");
    let due = now_ms() + 24 * 3_600_000;
    let offsets = ["PT1H", "PT2H", "PT3H", "PT4H", "PT5H"];
    let token = ctx.stack.app_token();
    let mut lost = Vec::new();
    for round in 0..16u64 {
        let task = ctx.create(json!({ "title": format!("race {round}"), "due_at": rfc3339(due), "reminders": offsets }));
        let names: Vec<String> = (1..=5).map(|h| job_name(task["id"].as_str().unwrap(), due - h * 3_600_000)).collect();
        let all_exist = || names.iter().all(|n| ctx.job_exists(n)).then_some(());
        assert!(eventually(Duration::from_secs(5), all_exist).is_some(), "round {round}: the jobs of event 1");
        // Event 2 drops the reminders; event 3, newer, has them again. Both start from the projection of event 1.
        let event = |seq: u64, reminders: Value| {
            let mut task = task.clone();
            task["reminders"] = reminders;
            task["version"] = json!(seq);
            delivery(&json!({ "event_id": uuid::Uuid::now_v7().to_string(), "type": "com.todo.task.updated.v1",
                "user_id": ctx.user, "seq": seq, "time": rfc3339(now_ms()), "task": task, "changed": ["reminders"] }))
        };
        let (older, newer) = (event(2, json!([])), event(3, json!(offsets)));
        let post = |body: &Value| {
            let (reply, statuses) = e2e::deliver_bulk(&url, token, "task-events", std::slice::from_ref(body));
            assert_eq!((reply.status, statuses), (200, vec![Some("SUCCESS".to_owned())]), "{:?}", reply.json);
        };
        std::thread::scope(|s| {
            s.spawn(|| post(&older));
            // Staggered by up to 3.5 ms, so that some round lands the newer write inside the older handler's read..write.
            std::thread::sleep(Duration::from_micros(500 * (round % 8)));
            s.spawn(|| post(&newer));
        });
        lost.extend(names.iter().filter(|n| !ctx.job_exists(n)).map(|n| format!("round {round}: {n}")));
    }
    assert!(lost.is_empty(), "the projection at event 3 keeps every reminder, yet these jobs are gone: {lost:#?}");
}
