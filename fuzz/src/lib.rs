//! The checks behind the fuzz targets (`fuzz_targets/`, run by `cargo xtask
//! fuzz`) and the stable tests (`tests/`, run by `cargo xtask test`).
//!
//! Each check takes arbitrary bytes and must not panic on input the domain
//! refuses; for input it accepts, it asserts what the types promise: a value
//! written out the way the API or the store writes it reads back equal, and a
//! recurrence moves strictly forward within its end. A failed assertion is a
//! finding, like a panic inside `todo-domain`.

use std::sync::OnceLock;

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde_json::{json, Map, Value};
use todo_domain::occurrence::next_occurrence;
use todo_domain::recurrence::RecurrenceEnd;
use todo_domain::schedule::parse_instant;
use todo_domain::{
    matches, page, phrase, Anchor, ListQuery, NewTask, OccurrenceRequest, RecurrenceRule, Task, TaskId, TaskPatch, TaskSummary, TimeZone,
    UserId, UserLedger,
};

/// Task JSON: the bodies of `POST`/`PUT` ([`NewTask::from_json`]) and `PATCH`
/// ([`TaskPatch::from_json`]).
///
/// An accepted new task is stored and read back equal; the body a client
/// would send back from it parses to the same task (and, as a `PUT`, changes
/// nothing); completing a recurring one yields a next-occurrence request that
/// parses. An accepted patch is written back to an equal patch, and applying
/// it to a task either fails and leaves the task as it was, or keeps the
/// task consistent and is idempotent.
pub fn task_json(data: &[u8]) {
    if let Ok(new) = NewTask::from_json(data) {
        check_new_task(new);
    }
    if let Ok(patch) = TaskPatch::from_json(data) {
        check_patch(patch);
    }
}

/// Recurrence: an RRULE ([`RecurrenceRule::parse`], with either anchor) or
/// a phrase ([`phrase::parse`]) as UTF-8 text.
///
/// An accepted rule has a canonical form and a phrase (when it has one) that
/// parse back to it, reads back from its JSON form, and its occurrences from
/// several due dates and zones come strictly after the previous due date and
/// completion, never past `COUNT` or `UNTIL`.
pub fn recurrence(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for anchor in [Anchor::Due, Anchor::Completion] {
        if let Ok(rule) = RecurrenceRule::parse(text, anchor) {
            check_rule(&rule);
        }
    }
    if let Ok(rule) = phrase::parse(text, None) {
        check_rule(&rule);
    }
}

/// List filters: the query string of `GET /api/{user_id}/tasks`
/// ([`ListQuery::parse`]) as UTF-8 text.
///
/// An accepted query reads back equal from its re-encoded parameters, and
/// paging a fixed set of tasks with it, following each page's cursor, yields
/// matching tasks only, at most `limit` a page, each once; from the first
/// page, all of them.
pub fn filters(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let Ok(query) = ListQuery::parse(raw) else { return };
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.strip_prefix('?').unwrap_or(raw).as_bytes()).into_owned().collect();
    assert_eq!(ListQuery::parse(&encode(&pairs)).as_ref(), Ok(&query), "re-encoded {raw:?}");
    let from_start = !pairs.iter().any(|(name, value)| name == "cursor" && !value.is_empty());
    let others: Vec<(String, String)> = pairs.into_iter().filter(|(name, _)| name != "cursor").collect();
    let now = at("2026-01-10T00:00:00Z");
    let summaries: Vec<(u32, TaskSummary)> = sample_tasks().iter().map(|t| (0, TaskSummary::of(t))).collect();
    let summary = |id: &TaskId| summaries.iter().map(|(_, s)| s).find(|s| s.id == *id).expect("a listed id is a sample task's");
    let mut seen: Vec<TaskId> = Vec::new();
    let mut current = query.clone();
    for _ in 0..=summaries.len() {
        let (items, next) = page(summaries.clone(), &current, now);
        assert!(items.len() <= current.limit(), "page longer than limit for {raw:?}");
        for id in &items {
            assert!(matches(summary(id), current.filter(), now), "{id} does not match {raw:?}");
            assert!(!seen.contains(id), "{id} listed twice for {raw:?}");
            seen.push(*id);
        }
        let Some(cursor) = next else {
            if from_start {
                let mut want: Vec<TaskId> =
                    summaries.iter().map(|(_, s)| s).filter(|s| matches(s, query.filter(), now)).map(|s| s.id).collect();
                want.sort();
                seen.sort();
                assert_eq!(seen, want, "paging missed tasks for {raw:?}");
            }
            return;
        };
        assert_eq!(items.len(), current.limit(), "a short page has a next cursor for {raw:?}");
        let mut with_cursor = others.clone();
        with_cursor.push(("cursor".to_owned(), cursor));
        current = ListQuery::parse(&encode(&with_cursor)).unwrap_or_else(|e| panic!("next cursor refused for {raw:?}: {e}"));
        assert_eq!(
            (current.filter(), current.sort(), current.order(), current.limit()),
            (query.filter(), query.sort(), query.order(), query.limit()),
            "the next page's query differs for {raw:?}"
        );
    }
    panic!("paging does not end for {raw:?}");
}

fn check_new_task(new: NewTask) {
    let mut ledger = UserLedger::default();
    let created = ledger.create_task(&user(), new.clone(), at("2026-01-01T00:00:00Z"));
    let (task, event) = (created.task.task.clone(), created.event);
    check_task(&task);
    assert_eq!(round_trip(&event), event, "event does not read back");
    let body = post_body(&task);
    let again = NewTask::from_json(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{body} refused: {e}"));
    assert_eq!(again, new, "{body} reads back different");
    let put = TaskPatch::from_json(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{body} refused as a patch: {e}"));
    assert_eq!(put, TaskPatch::from(new.clone()), "{body} as a patch");
    let mut same = task.clone();
    assert_eq!(same.apply(new.into(), at("2026-01-02T00:00:00Z")), Ok(Vec::new()), "a PUT of the task itself changes it");
    if task.recurrence.is_some() {
        let mut done = created.task;
        ledger.toggle_completed(&mut done, None, at("2026-01-03T00:00:00Z"));
        if let Ok(Some(request)) = OccurrenceRequest::next_of(&done.task) {
            let body = serde_json::to_vec(&request).expect("a request serializes");
            let (parsed, _) =
                OccurrenceRequest::from_json(&body).unwrap_or_else(|e| panic!("next occurrence {} refused: {e}", request.task));
            assert_eq!(parsed, request);
        }
    }
}

fn check_patch(patch: TaskPatch) {
    let body = patch_body(&patch);
    assert_eq!(TaskPatch::from_json(body.to_string().as_bytes()).as_ref(), Ok(&patch), "{body} reads back different");
    for base in base_tasks() {
        let mut task = base.clone();
        let now = at("2026-02-01T00:00:00Z");
        match task.apply(patch.clone(), now) {
            Err(_) => assert_eq!(&task, base, "a refused patch changed the task"),
            Ok(changed) => {
                assert_eq!(task.version, base.version + u64::from(!changed.is_empty()));
                check_task(&task);
                let before = task.clone();
                assert_eq!(task.apply(patch.clone(), now), Ok(Vec::new()), "applying {body} twice changes the task again");
                assert_eq!(task, before);
            }
        }
    }
}

/// What every stored task holds, and that it reads back from the store.
fn check_task(task: &Task) {
    assert_eq!(task.time_zone.is_some(), task.due_at.is_some(), "time zone without due date or the reverse");
    assert_eq!(task.completed_at.is_some(), task.completed);
    if task.recurrence.is_some() {
        assert!(task.due_at.is_some(), "recurrence without due date");
        assert!(task.series_id.is_some() && task.occurrence.is_some(), "recurring task outside a series");
    }
    assert_eq!(&round_trip(task), task, "task does not read back from the store");
}

fn check_rule(rule: &RecurrenceRule) {
    let raw = rule.to_rrule_string();
    let canonical = RecurrenceRule::parse(&raw, rule.anchor()).unwrap_or_else(|e| panic!("canonical {raw} refused: {e}"));
    // A phrase's until date is read in the task's zone; its RRULE is the rule read in UTC.
    let in_utc = rule.clone().in_zone(TimeZone::UTC).unwrap_or_else(|e| panic!("{raw} cannot be read in UTC: {e}"));
    assert_eq!(canonical, in_utc, "{raw}");
    assert_eq!(canonical.to_rrule_string(), raw);
    if let Some(text) = rule.text(TimeZone::UTC) {
        let said = phrase::parse(&text, None).and_then(|r| r.in_zone(TimeZone::UTC));
        assert_eq!(said, Ok(in_utc), "{raw} said as {text:?}");
    }
    assert_eq!(&round_trip(rule), rule, "{raw} does not read back from JSON");
    for (zone, due) in [
        ("UTC", "2026-01-31T09:00:00Z"),
        ("Europe/Berlin", "2026-03-28T01:30:00Z"),
        ("America/New_York", "2024-02-29T05:30:00Z"),
        ("Australia/Lord_Howe", "2026-10-03T15:15:00Z"),
        ("UTC", "9999-12-25T12:00:00Z"),
    ] {
        check_occurrences(rule, TimeZone::parse(zone).expect("known zone"), at(due));
    }
}

/// Follows a series for a few occurrences, each completed an hour late.
fn check_occurrences(first: &RecurrenceRule, zone: TimeZone, first_due: DateTime<Utc>) {
    let raw = first.to_rrule_string();
    let (mut rule, mut due) = (first.clone(), first_due);
    for occurrence in 1..=4 {
        let completed = due + TimeDelta::hours(1);
        let Ok(next) = next_occurrence(&rule, zone, due, occurrence, completed) else { return };
        assert!(next.due_at > completed, "{raw} from {due} in {}: {} is not after the completion", zone.name(), next.due_at);
        match rule.end() {
            Some(RecurrenceEnd::Count(count)) => assert!(occurrence < count, "{raw}: occurrence {} of {count}", occurrence + 1),
            Some(RecurrenceEnd::Until(until)) => assert!(next.due_at <= until, "{raw}: {} after UNTIL", next.due_at),
            None => {}
        }
        assert_eq!(
            (next.rule.freq(), next.rule.interval(), next.rule.end(), next.rule.anchor()),
            (rule.freq(), rule.interval(), rule.end(), rule.anchor())
        );
        if zone == TimeZone::UTC {
            let date = next.due_at.date_naive();
            assert_eq!(next.due_at.time(), first_due.time(), "{raw}: the time of day moved in UTC");
            assert!(rule.by_month().is_empty() || rule.by_month().contains(&(date.month() as u8)), "{raw}: {date} is outside BYMONTH");
            let days = rule.by_day();
            if !days.is_empty() && days.iter().all(|d| d.ordinal.is_none()) {
                assert!(days.iter().any(|d| d.weekday == date.weekday()), "{raw}: {date} is outside BYDAY");
            }
        }
        (rule, due) = (next.rule, next.due_at);
    }
}

/// The body of `POST /api/{user_id}/tasks` that recreates `task`, as a
/// client that read the task would write it.
fn post_body(task: &Task) -> Value {
    json!({
        "title": task.title, "description": task.description, "priority": task.priority, "tags": task.tags,
        "due_at": task.due_at, "time_zone": task.time_zone, "reminders": task.reminders, "recurrence": task.recurrence,
    })
}

/// The `PATCH` body that means `patch`: only the fields it sets, `null` for a cleared one.
fn patch_body(patch: &TaskPatch) -> Value {
    let mut body = Map::new();
    let mut set = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            body.insert(name.to_owned(), value);
        }
    };
    set("title", patch.title.as_ref().map(|v| json!(v)));
    set("description", patch.description.as_ref().map(|v| json!(v)));
    set("priority", patch.priority.map(|v| json!(v)));
    set("tags", patch.tags.as_ref().map(|v| json!(v)));
    set("due_at", patch.due_at.map(|v| json!(v)));
    set("time_zone", patch.time_zone.map(|v| json!(v)));
    set("reminders", patch.reminders.as_ref().map(|v| json!(v)));
    set("recurrence", patch.recurrence.as_ref().map(|v| json!(v)));
    set("completed", patch.completed.map(|v| json!(v)));
    Value::Object(body)
}

/// Writes `value` to JSON and reads it back.
fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
    let json = serde_json::to_string(value).expect("domain values serialize");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json} does not read back: {e}"))
}

fn encode(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

fn at(raw: &str) -> DateTime<Utc> {
    parse_instant(raw, "t").expect("a valid instant")
}

fn user() -> UserId {
    UserId::parse("fuzz").expect("a valid user id")
}

/// A task from `body`, with a fixed id so that runs are deterministic.
fn task(n: u128, body: Value) -> Task {
    let new = NewTask::from_json(body.to_string().as_bytes()).expect("a valid sample task");
    let mut task = UserLedger::default().create_task(&user(), new, at("2026-01-01T00:00:00Z")).task.task;
    task.id = format!("00000000-0000-7000-8000-{n:012}").parse().expect("a valid task id");
    task.series_id = task.series_id.map(|_| task.id);
    task
}

/// The tasks that patches are applied to: a bare one and a scheduled, recurring one.
fn base_tasks() -> &'static [Task] {
    static TASKS: OnceLock<Vec<Task>> = OnceLock::new();
    TASKS.get_or_init(|| {
        vec![
            task(1, json!({"title": "bare"})),
            task(
                2,
                json!({"title": "Standup", "description": "notes", "priority": "high", "tags": ["work"],
                "due_at": "2026-01-05T09:00:00+01:00", "time_zone": "Europe/Berlin", "reminders": ["PT15M", "2026-01-04T18:00:00Z"],
                "recurrence": {"rrule": "FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20261231T235959Z"}}),
            ),
        ]
    })
}

/// The tasks that queries page through: every filter has hits and misses,
/// and every sort has ties.
fn sample_tasks() -> &'static [Task] {
    static TASKS: OnceLock<Vec<Task>> = OnceLock::new();
    TASKS.get_or_init(|| {
        let bodies = [
            json!({"title": "Buy milk", "priority": "high", "tags": ["home", "shopping"], "due_at": "2026-01-05T09:00:00Z"}),
            json!({"title": "buy MILK", "description": "the milkman", "priority": "low", "due_at": "2026-01-20T09:00:00Z"}),
            json!({"title": "Taxes", "priority": "urgent", "tags": ["money"]}),
            json!({"title": "call mum", "tags": ["home"], "due_at": "2026-01-05T09:00:00Z"}),
            json!({"title": "Zebra", "priority": "high"}),
            json!({"title": "Éclair", "description": "Crème", "priority": "medium", "tags": ["café"], "due_at": "2025-12-31T23:00:00-05:00"}),
            json!({"title": "taxes", "priority": "urgent", "due_at": "2026-02-01T00:00:00Z"}),
            json!({"title": "x", "tags": ["home", "money"]}),
        ];
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                let mut t = task(10 + i as u128, body);
                t.created_at += TimeDelta::minutes(i as i64 % 3);
                t.updated_at = t.created_at + TimeDelta::minutes(i as i64 % 4);
                t.completed = i % 3 == 1;
                t.completed_at = t.completed.then_some(t.updated_at);
                t
            })
            .collect()
    })
}
