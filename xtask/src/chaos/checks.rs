//! The invariants `cargo xtask chaos` checks once the load is over, each over
//! what the load recorded and what the services hold afterwards.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::load::{Attempt, UserLog, Write};

/// A 5xx this long after a restarted dependency is ready still counts as
/// caused by it: connections and consumers take a moment to come back.
pub const GRACE: Duration = Duration::from_secs(5);

/// One killed and restarted process.
pub struct Fault {
    /// The process, e.g. `daprd-todo-api`.
    pub target: String,
    /// When it was killed.
    pub killed: Instant,
    /// When it was ready again after its restart.
    pub back: Instant,
}

impl Fault {
    fn covers(&self, attempt: &Attempt) -> bool {
        attempt.sent <= self.back + GRACE && attempt.done >= self.killed
    }
}

/// What one user's services hold after the load.
pub struct Observed {
    /// The user's audit entries, in chain order.
    pub audit: Vec<Value>,
    /// The user's change feed, in order.
    pub feed: Vec<Value>,
    /// The user's tasks.
    pub tasks: Vec<Value>,
    /// CloudEvents of the user on the `task-events` topic, copies included.
    pub kafka: Vec<Value>,
}

impl Observed {
    /// Audit entries of task lifecycle events.
    fn task_events(&self) -> impl Iterator<Item = &Value> {
        self.audit.iter().filter(|e| e["event_type"].as_str().is_some_and(|t| t.starts_with("com.todo.task.")))
    }
}

/// The result of one check.
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Whether it held.
    pub passed: bool,
    /// The counts behind it.
    pub detail: String,
}

fn check(name: &'static str, passed: bool, detail: String) -> Check {
    Check { name, passed, detail }
}

/// The short name of an audit entry's task event type (`created`, ...).
fn kind(entry: &Value) -> &str {
    let t = entry["event_type"].as_str().unwrap_or_default();
    t.strip_prefix("com.todo.task.").and_then(|t| t.strip_suffix(".v1")).unwrap_or(t)
}

fn write_of(entry: &Value) -> (String, String, u64) {
    let task = &entry["data"]["task"];
    (task["id"].as_str().unwrap_or_default().to_owned(), kind(entry).to_owned(), task["version"].as_u64().unwrap_or(0))
}

/// Whether an audit entry is the creation of a later occurrence of a series
/// (made by recurring-service, not by a client).
fn is_occurrence(entry: &Value) -> bool {
    kind(entry) == "created" && entry["data"]["task"]["occurrence"].as_u64().is_some_and(|o| o > 1)
}

/// Runs every check over the users' logs and what their services hold.
pub fn all(logs: &[UserLog], observed: &[Observed], faults: &[Fault]) -> Vec<Check> {
    vec![
        settled(logs),
        one_audit_entry_per_write(logs, observed),
        no_phantoms(logs, observed),
        sequence(observed),
        kafka(observed),
        feed(observed),
        reminders(logs, observed),
        occurrences(logs, observed),
        availability(logs, faults),
    ]
}

fn settled(logs: &[UserLog]) -> Check {
    let failures: Vec<&String> = logs.iter().flat_map(|l| &l.failures).collect();
    let attempts: usize = logs.iter().map(|l| l.attempts.len()).sum();
    let writes: usize = logs.iter().map(|l| l.writes.len()).sum();
    let mut detail = format!("{writes} writes accepted in {attempts} HTTP attempts; {} operations unsettled", failures.len());
    if let Some(first) = failures.first() {
        detail.push_str(&format!(" (first: {first})"));
    }
    check("every operation settled (retried through faults)", failures.is_empty(), detail)
}

fn one_audit_entry_per_write(logs: &[UserLog], observed: &[Observed]) -> Check {
    let (mut once, mut missing, mut extra, mut total) = (0, 0, 0, 0);
    for (log, seen) in logs.iter().zip(observed) {
        let mut counts: HashMap<(String, String, u64), usize> = HashMap::new();
        for entry in seen.task_events() {
            *counts.entry(write_of(entry)).or_default() += 1;
        }
        for Write { task_id, kind, version } in &log.writes {
            total += 1;
            match counts.get(&(task_id.clone(), kind.to_string(), *version)).copied().unwrap_or(0) {
                0 => missing += 1,
                1 => once += 1,
                _ => extra += 1,
            }
        }
    }
    check(
        "each accepted write has exactly one audit entry",
        once == total,
        format!("{total} writes: {once} exactly once, {missing} missing, {extra} more than once"),
    )
}

fn no_phantoms(logs: &[UserLog], observed: &[Observed]) -> Check {
    let (mut phantoms, mut occurrences, mut entries) = (0, 0, 0);
    for (log, seen) in logs.iter().zip(observed) {
        let writes: HashSet<(String, String, u64)> = log.writes.iter().map(|w| (w.task_id.clone(), w.kind.to_owned(), w.version)).collect();
        for entry in seen.task_events() {
            entries += 1;
            if is_occurrence(entry) {
                occurrences += 1;
            } else if !writes.contains(&write_of(entry)) {
                phantoms += 1;
            }
        }
    }
    check(
        "no task event without an accepted write (nothing phantom)",
        phantoms == 0,
        format!(
            "{entries} task events audited: {} client writes, {occurrences} occurrences, {phantoms} phantom",
            entries - occurrences - phantoms
        ),
    )
}

fn sequence(observed: &[Observed]) -> Check {
    let mut broken = Vec::new();
    for seen in observed {
        let seqs: Vec<u64> = seen.task_events().map(|e| e["data"]["seq"].as_u64().unwrap_or(0)).collect();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        if seqs != expected {
            broken.push(format!("{:?}", &seqs[..seqs.len().min(12)]));
        }
    }
    check(
        "per user: seq 1..n, each once, audited in order",
        broken.is_empty(),
        format!(
            "{} users, {} out of order or with gaps{}",
            observed.len(),
            broken.len(),
            broken.first().map(|b| format!(" (first: {b})")).unwrap_or_default()
        ),
    )
}

fn kafka(observed: &[Observed]) -> Check {
    let (mut messages, mut distinct, mut mismatched) = (0, 0, 0);
    for seen in observed {
        let on_topic: HashSet<&str> = seen.kafka.iter().filter_map(|e| e["id"].as_str()).collect();
        let audited: HashSet<&str> = seen.task_events().filter_map(|e| e["event_id"].as_str()).collect();
        messages += seen.kafka.len();
        distinct += on_topic.len();
        mismatched += on_topic.symmetric_difference(&audited).count();
    }
    check(
        "Kafka: one distinct event per audited write",
        mismatched == 0,
        format!("{messages} messages on task-events, {distinct} distinct ids ({} redelivered copies), {mismatched} ids not matching the audit log", messages - distinct),
    )
}

fn feed(observed: &[Observed]) -> Check {
    let (mut entries, mut wrong) = (0, 0);
    for seen in observed {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for entry in seen.feed.iter().filter(|e| e["type"].as_str().is_some_and(|t| t.starts_with("com.todo.task."))) {
            entries += 1;
            *counts.entry(entry["event_id"].as_str().unwrap_or_default()).or_default() += 1;
        }
        for id in seen.task_events().filter_map(|e| e["event_id"].as_str()) {
            if counts.remove(id) != Some(1) {
                wrong += 1;
            }
        }
        wrong += counts.len();
    }
    check(
        "each audited task event has exactly one feed entry",
        wrong == 0,
        format!("{entries} task feed entries, {wrong} missing, doubled or extra"),
    )
}

fn reminders(logs: &[UserLog], observed: &[Observed]) -> Check {
    let (mut due, mut once, mut extra) = (0, 0, 0);
    for (log, seen) in logs.iter().zip(observed) {
        let fired: Vec<&Value> = seen.audit.iter().filter(|e| e["event_type"] == "com.todo.reminder.due.v1").collect();
        let instant = |v: &Value| v.as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map(|t| t.to_utc());
        for (task, at) in &log.reminders {
            due += 1;
            let n = fired.iter().filter(|e| e["data"]["task_id"] == task.as_str() && instant(&e["data"]["remind_at"]) == Some(*at)).count();
            if n == 1 {
                once += 1;
            }
        }
        extra += fired.len().saturating_sub(log.reminders.len());
    }
    check(
        "each due reminder fired exactly once",
        once == due && extra == 0,
        format!("{due} reminders due: {once} fired exactly once, {extra} extra firings"),
    )
}

fn occurrences(logs: &[UserLog], observed: &[Observed]) -> Check {
    let (mut completed, mut exactly_one) = (0, 0);
    for (log, seen) in logs.iter().zip(observed) {
        for (series, occurrence) in &log.completed_series {
            completed += 1;
            let next = |t: &&Value| t["series_id"] == series.as_str() && t["occurrence"].as_u64() == Some(occurrence + 1);
            let tasks = seen.tasks.iter().filter(next).count();
            let created = seen.task_events().filter(|e| is_occurrence(e)).map(|e| &e["data"]["task"]).filter(next).count();
            if tasks == 1 && created == 1 {
                exactly_one += 1;
            }
        }
    }
    check(
        "each completed recurring task has exactly one next occurrence",
        completed == exactly_one,
        format!("{completed} completed: {exactly_one} with exactly one next occurrence (task and created event)"),
    )
}

fn availability(logs: &[UserLog], faults: &[Fault]) -> Check {
    let unavailable: Vec<&Attempt> = logs.iter().flat_map(|l| &l.attempts).filter(|a| a.unavailable()).collect();
    let outside: Vec<&&Attempt> = unavailable.iter().filter(|a| !faults.iter().any(|f| f.covers(a))).collect();
    let per_fault: Vec<String> =
        faults.iter().map(|f| format!("{} {}", f.target, unavailable.iter().filter(|a| f.covers(a)).count())).collect();
    let mut detail = format!(
        "{} answers 5xx or none: {} while a dependency was down (+{} s), {} outside; during: {}",
        unavailable.len(),
        unavailable.len() - outside.len(),
        GRACE.as_secs(),
        outside.len(),
        per_fault.join(", ")
    );
    if let Some(first) = outside.first() {
        detail.push_str(&format!(" (first outside: {} -> {})", first.what, first.outcome));
    }
    check("no 5xx except while a dependency was down", outside.is_empty(), detail)
}
