//! The audit log: a per-user, append-only chain of entries linked by SHA-256.
//!
//! Each entry's hash covers a canonical encoding of the entry (keys sorted,
//! no whitespace) and the previous entry's hash, so changing any stored entry
//! breaks the chain at that entry.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{DomainError, Rule, UserId};

/// The hash that precedes a user's first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event as the audit log receives it (a CloudEvent delivered by Dapr).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditedEvent {
    /// CloudEvent `id`; the log holds each id once.
    pub event_id: String,
    /// CloudEvent `type`.
    pub event_type: String,
    /// The user the event belongs to.
    pub user_id: UserId,
    /// The task it concerns, if any (CloudEvent `subject`, else the data's `task_id`).
    pub task_id: Option<String>,
    /// When it happened: the data's `time` (the change itself), else the CloudEvent's.
    pub time: DateTime<Utc>,
    /// The event's data.
    pub data: Value,
    /// The trace id of the CloudEvent's `traceparent` (W3C), when it has one.
    pub trace_id: Option<String>,
}

/// The trace id (32 lower-case hex digits, not all zero) of a W3C `traceparent`.
fn trace_id_of(traceparent: &str) -> Option<String> {
    let id = traceparent.split('-').nth(1)?;
    let hex = id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (hex && id.bytes().any(|b| b != b'0')).then(|| id.to_owned())
}

impl AuditedEvent {
    /// Parses a CloudEvent (JSON) as delivered by Dapr pub/sub.
    pub fn from_cloudevent(body: &[u8]) -> Result<Self, DomainError> {
        let ce: Value = serde_json::from_slice(body).map_err(|e| DomainError::new("body", Rule::Format, format!("invalid JSON: {e}")))?;
        let text = |field: &str| ce.get(field).and_then(Value::as_str);
        let event_id = text("id").ok_or_else(|| DomainError::new("id", Rule::Required, "CloudEvent id is required"))?;
        let event_type = text("type").ok_or_else(|| DomainError::new("type", Rule::Required, "CloudEvent type is required"))?;
        let data = ce.get("data").cloned().unwrap_or(Value::Null);
        let user =
            data.get("user_id").and_then(Value::as_str).ok_or_else(|| DomainError::new("data.user_id", Rule::Required, "is required"))?;
        let time = data
            .get("time")
            .and_then(Value::as_str)
            .or_else(|| text("time"))
            .ok_or_else(|| DomainError::new("time", Rule::Required, "is required"))?;
        let time =
            DateTime::parse_from_rfc3339(time).map_err(|_| DomainError::new("time", Rule::Format, "must be RFC 3339"))?.with_timezone(&Utc);
        Ok(AuditedEvent {
            event_id: event_id.to_owned(),
            event_type: event_type.to_owned(),
            user_id: UserId::parse(user)?,
            task_id: text("subject").or_else(|| data.get("task_id").and_then(Value::as_str)).filter(|s| !s.is_empty()).map(str::to_owned),
            time,
            data,
            trace_id: text("traceparent").and_then(trace_id_of),
        })
    }

    /// The user's event sequence number (`data.seq`) of a task event
    /// (`com.todo.task.*`); `None` for other events (reminders).
    pub fn task_seq(&self) -> Option<u64> {
        task_seq(&self.event_type, &self.data)
    }
}

fn task_seq(event_type: &str, data: &Value) -> Option<u64> {
    event_type.starts_with("com.todo.task.").then(|| data.get("seq").and_then(Value::as_u64)).flatten()
}

/// The head of a user's chain: how many entries it has and the last hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// Number of entries; the next entry's position.
    pub count: u64,
    /// Hash of the last entry ([`GENESIS_HASH`] when empty).
    pub hash: String,
    /// The highest task-event `seq` appended (0: none, or a head written
    /// before it was kept).
    #[serde(default)]
    pub seq: u64,
}

impl Default for ChainHead {
    fn default() -> Self {
        ChainHead { count: 0, hash: GENESIS_HASH.to_owned(), seq: 0 }
    }
}

/// Missing sequence numbers of a user's task events, `from..=to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeqGap {
    /// The first missing `seq`.
    pub from: u64,
    /// The last missing `seq`.
    pub to: u64,
}

impl ChainHead {
    /// The task events that should have come before `event` and did not:
    /// `event`'s `seq` jumps past the highest one appended. `None` when there
    /// is no gap, for other events, and for a head that predates `seq`
    /// (entries but `seq` 0), which cannot tell.
    pub fn gap_before(&self, event: &AuditedEvent) -> Option<SeqGap> {
        let seq = event.task_seq()?;
        let known = self.seq > 0 || self.count == 0;
        (known && seq > self.seq + 1).then(|| SeqGap { from: self.seq + 1, to: seq - 1 })
    }
}

/// One entry of the audit log. Never changed once written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// 0-based position in the user's chain.
    pub position: u64,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The task concerned, if any.
    pub task_id: Option<String>,
    /// Who caused it: the user the event belongs to.
    pub actor: UserId,
    /// When the event happened.
    pub event_time: DateTime<Utc>,
    /// When the audit service recorded it.
    pub recorded_at: DateTime<Utc>,
    /// The event's data, verbatim.
    pub data: Value,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// SHA-256 of the canonical encoding of this entry (without `hash`) and `prev_hash`.
    pub hash: String,
    /// The trace id of the request that caused the event, when it carried one;
    /// covered by the hash when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

impl AuditEntry {
    /// The hash this entry should carry, computed from its other fields.
    pub fn expected_hash(&self) -> String {
        let mut body = serde_json::json!({
            "position": self.position,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "task_id": self.task_id,
            "actor": self.actor,
            "event_time": self.event_time,
            "recorded_at": self.recorded_at,
            "data": self.data,
            "prev_hash": self.prev_hash,
        });
        if let Some(trace_id) = &self.trace_id {
            body["trace_id"] = Value::String(trace_id.clone());
        }
        let mut canonical = String::new();
        write_canonical(&body, &mut canonical);
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }
}

/// Appends `event` after `head`, returning the new entry and the new head.
pub fn append(head: &ChainHead, event: AuditedEvent, recorded_at: DateTime<Utc>) -> (AuditEntry, ChainHead) {
    let mut entry = AuditEntry {
        position: head.count,
        event_id: event.event_id,
        event_type: event.event_type,
        task_id: event.task_id,
        actor: event.user_id,
        event_time: event.time,
        recorded_at,
        data: event.data,
        prev_hash: head.hash.clone(),
        hash: String::new(),
        trace_id: event.trace_id,
    };
    entry.hash = entry.expected_hash();
    let seq = head.seq.max(task_seq(&entry.event_type, &entry.data).unwrap_or(0));
    let head = ChainHead { count: head.count + 1, hash: entry.hash.clone(), seq };
    (entry, head)
}

/// The outcome of checking a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Whether every entry links to its predecessor and matches its hash.
    pub intact: bool,
    /// Number of entries checked.
    pub entries: u64,
    /// Hash of the last entry.
    pub head_hash: String,
    /// Position of the first entry that does not verify, if any.
    pub broken_at: Option<u64>,
    /// Task events missing from the user's sequence (`seq` numbers below the
    /// highest recorded that no entry has): events that never reached the
    /// log, e.g. one that went to a dead-letter topic. Not a broken chain.
    pub seq_gaps: Vec<SeqGap>,
}

/// Checks entries in position order from the start of the chain.
pub fn verify<'a>(entries: impl IntoIterator<Item = &'a AuditEntry>) -> Verification {
    verify_stored(entries.into_iter().map(Some))
}

/// [`verify`] over what the store holds at positions 0, 1, ...: `None` for
/// an entry that is missing or no longer decodes, which breaks the chain
/// there. Gaps in `seq` are collected from every readable entry.
pub fn verify_stored<'a>(entries: impl IntoIterator<Item = Option<&'a AuditEntry>>) -> Verification {
    let mut prev = GENESIS_HASH.to_owned();
    let mut count = 0;
    let mut broken_at = None;
    let mut seqs = Vec::new();
    for entry in entries {
        if let Some(seq) = entry.and_then(|e| task_seq(&e.event_type, &e.data)) {
            seqs.push(seq);
        }
        if broken_at.is_some() {
            continue;
        }
        match entry {
            Some(e) if e.position == count && e.prev_hash == prev && e.hash == e.expected_hash() => {
                prev = e.hash.clone();
                count += 1;
            }
            _ => broken_at = Some(count),
        }
    }
    Verification { intact: broken_at.is_none(), entries: count, head_hash: prev, broken_at, seq_gaps: seq_gaps(seqs) }
}

/// The runs of numbers in `1..max(seqs)` that `seqs` lacks.
fn seq_gaps(mut seqs: Vec<u64>) -> Vec<SeqGap> {
    seqs.sort_unstable();
    seqs.dedup();
    let mut gaps = Vec::new();
    let mut next = 1;
    for seq in seqs.into_iter().filter(|s| *s > 0) {
        if seq > next {
            gaps.push(SeqGap { from: next, to: seq - 1 });
        }
        next = seq + 1;
    }
    gaps
}

/// Default page size of `GET /audit/{user_id}`.
pub const PAGE_DEFAULT: u64 = 100;
/// Largest page size.
pub const PAGE_MAX: u64 = 500;
/// Most positions one filtered request reads; a page may then be short (even
/// empty) with a `next_cursor` to continue from.
pub const SCAN_MAX: u64 = 2_000;
/// Positions read per batch while scanning with filters.
pub const SCAN_BATCH: u64 = 500;
/// Longest accepted event type in a `type` filter.
const TYPE_MAX: usize = 200;

/// The query string of `GET /audit/{user_id}`: filters and a position cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    after: Option<u64>,
    limit: u64,
    task_id: Option<String>,
    types: Vec<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

impl Default for AuditQuery {
    fn default() -> Self {
        AuditQuery { after: None, limit: PAGE_DEFAULT, task_id: None, types: Vec::new(), from: None, to: None }
    }
}

impl AuditQuery {
    /// Parses a URL query string (with or without the leading `?`).
    ///
    /// Parameters: `after` (position of the last entry already seen, a
    /// non-negative integer: the previous page's `next_cursor`); `limit`
    /// (1–500, default 100); `task_id` (a task id: entries about that task);
    /// `type` (an event type, repeatable or comma-separated: entries of any
    /// of them); `from` and `to` (RFC 3339; `from <= event_time < to`).
    ///
    /// An empty value is the same as leaving the parameter out. Unknown
    /// parameters are refused, as is a non-repeatable one given twice.
    pub fn parse(query: &str) -> Result<Self, DomainError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut q = AuditQuery::default();
        let mut seen: Vec<String> = Vec::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let (name, value) = (name.as_ref(), value.as_ref());
            if name.is_empty() && value.is_empty() {
                continue;
            }
            if name != "type" && seen.iter().any(|s| s == name) {
                return Err(DomainError::new(name, Rule::Duplicate, "must be given at most once"));
            }
            seen.push(name.to_owned());
            if value.is_empty() && matches!(name, "after" | "limit" | "task_id" | "type" | "from" | "to") {
                continue;
            }
            match name {
                "after" => q.after = Some(parse_position(name, value)?),
                "limit" => {
                    let limit = parse_position(name, value)?;
                    if !(1..=PAGE_MAX).contains(&limit) {
                        return Err(DomainError::new(name, Rule::OutOfRange, format!("must be 1 to {PAGE_MAX}")));
                    }
                    q.limit = limit;
                }
                "task_id" => q.task_id = Some(value.parse::<crate::TaskId>()?.to_string()),
                "type" => {
                    for t in value.split(',') {
                        let t = t.trim();
                        if t.is_empty() || t.len() > TYPE_MAX || !t.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                            return Err(DomainError::new("type", Rule::Format, "must be an event type such as com.todo.task.created.v1"));
                        }
                        if !q.types.iter().any(|known| known == t) {
                            q.types.push(t.to_owned());
                        }
                    }
                }
                "from" => q.from = Some(crate::schedule::parse_instant(value, name)?),
                "to" => q.to = Some(crate::schedule::parse_instant(value, name)?),
                _ => return Err(DomainError::new(name, Rule::Unknown, "is not a known query parameter")),
            }
        }
        if let (Some(from), Some(to)) = (q.from, q.to) {
            if from >= to {
                return Err(DomainError::new("to", Rule::OutOfRange, "must be after from"));
            }
        }
        Ok(q)
    }

    /// The page size.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The first position to read.
    pub fn start(&self) -> u64 {
        self.after.map_or(0, |after| after.saturating_add(1))
    }

    /// Whether any filter is set (the scan may then read past `limit` entries).
    pub fn is_filtered(&self) -> bool {
        self.task_id.is_some() || !self.types.is_empty() || self.from.is_some() || self.to.is_some()
    }

    /// Whether `entry` passes every filter.
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        self.task_id.as_ref().is_none_or(|id| entry.task_id.as_deref() == Some(id.as_str()))
            && (self.types.is_empty() || self.types.contains(&entry.event_type))
            && self.from.is_none_or(|from| entry.event_time >= from)
            && self.to.is_none_or(|to| entry.event_time < to)
    }

    /// Starts a scan of a chain of `count` entries.
    pub fn scan(&self, count: u64) -> AuditScan<'_> {
        let start = self.start().min(count);
        let budget = if self.is_filtered() { SCAN_MAX } else { self.limit };
        AuditScan { query: self, count, next: start, end: count.min(start.saturating_add(budget)), last: None, items: Vec::new() }
    }
}

fn parse_position(name: &str, value: &str) -> Result<u64, DomainError> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DomainError::new(name, Rule::Format, "must be a non-negative integer"));
    }
    value.parse().map_err(|_| DomainError::new(name, Rule::OutOfRange, "is too large"))
}

/// One request's scan of a chain: which positions to read next, and the page
/// it yields. Reads at most `limit` positions without filters and at most
/// [`SCAN_MAX`] with them, so a request's cost is bounded.
#[derive(Debug)]
pub struct AuditScan<'q> {
    query: &'q AuditQuery,
    count: u64,
    next: u64,
    end: u64,
    last: Option<u64>,
    items: Vec<AuditEntry>,
}

/// A page of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditPage {
    /// The entries that passed the filters, in chain order.
    pub items: Vec<AuditEntry>,
    /// The last position scanned, when positions after it remain; pass it as `after`.
    pub next_cursor: Option<String>,
}

impl AuditScan<'_> {
    /// The positions to read next (`None`: the page is complete).
    pub fn next_batch(&self) -> Option<std::ops::Range<u64>> {
        if self.next >= self.end || self.items.len() as u64 >= self.query.limit {
            return None;
        }
        let size = if self.query.is_filtered() { SCAN_BATCH } else { self.query.limit - self.items.len() as u64 };
        Some(self.next..self.end.min(self.next + size))
    }

    /// Takes the entries read for `batch` (missing ones left out), in position order.
    pub fn feed(&mut self, batch: std::ops::Range<u64>, entries: Vec<AuditEntry>) {
        for entry in entries {
            if self.items.len() as u64 >= self.query.limit {
                // The page is full: the scan stops after the last entry taken.
                self.next = self.end;
                return;
            }
            self.last = Some(entry.position);
            if self.query.matches(&entry) {
                self.items.push(entry);
            }
        }
        self.last = Some(batch.end.saturating_sub(1)).filter(|_| batch.end > batch.start).or(self.last);
        self.next = batch.end;
    }

    /// The page: the entries found and where to continue.
    pub fn finish(self) -> AuditPage {
        let next_cursor = self.last.filter(|last| last + 1 < self.count).map(|last| last.to_string());
        AuditPage { items: self.items, next_cursor }
    }
}

/// Writes `v` as JSON with object keys sorted and no insignificant whitespace,
/// whatever map ordering serde_json was built with.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(id: &str) -> AuditedEvent {
        let body = json!({
            "id": id, "type": "com.todo.task.created.v1", "subject": "t1",
            "time": "2026-01-02T03:04:05Z",
            "data": {"user_id": "alice", "seq": 1, "task": {"title": "x"}}
        });
        AuditedEvent::from_cloudevent(body.to_string().as_bytes()).unwrap()
    }

    fn chain(n: usize) -> Vec<AuditEntry> {
        let mut head = ChainHead::default();
        (0..n)
            .map(|i| {
                let (entry, next) = append(&head, event(&format!("e{i}")), Utc::now());
                head = next;
                entry
            })
            .collect()
    }

    #[test]
    fn a_fresh_chain_verifies() {
        let entries = chain(5);
        let v = verify(&entries);
        assert!(v.intact);
        assert_eq!(v.entries, 5);
        assert_eq!(v.head_hash, entries[4].hash);
    }

    #[test]
    fn tampering_is_found_at_the_changed_entry() {
        let mut entries = chain(5);
        entries[2].data["task"]["title"] = json!("changed");
        let v = verify(&entries);
        assert_eq!((v.intact, v.broken_at, v.entries), (false, Some(2), 2));
    }

    #[test]
    fn removing_an_entry_breaks_the_chain() {
        let mut entries = chain(4);
        entries.remove(1);
        assert_eq!(verify(&entries).broken_at, Some(1));
    }

    fn task_event(id: &str, seq: u64) -> AuditedEvent {
        let body = json!({
            "id": id, "type": "com.todo.task.updated.v1", "subject": "t1", "time": "2026-01-02T03:04:05Z",
            "data": {"user_id": "alice", "seq": seq, "task": {"title": "x"}}
        });
        AuditedEvent::from_cloudevent(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn an_unreadable_entry_breaks_the_chain_where_it_is() {
        let entries = chain(4);
        let stored: Vec<Option<&AuditEntry>> = entries.iter().enumerate().map(|(i, e)| (i != 2).then_some(e)).collect();
        let v = verify_stored(stored);
        assert_eq!((v.intact, v.broken_at, v.entries), (false, Some(2), 2));
        assert!(verify_stored(entries.iter().map(Some)).intact);
    }

    #[test]
    fn gaps_in_seq_are_reported_and_seen_at_append() {
        let mut head = ChainHead::default();
        let mut entries = Vec::new();
        for (i, seq) in [1, 2, 5, 4, 7].into_iter().enumerate() {
            let event = task_event(&format!("e{i}"), seq);
            let gap = head.gap_before(&event);
            match seq {
                5 => assert_eq!(gap, Some(SeqGap { from: 3, to: 4 })),
                7 => assert_eq!(gap, Some(SeqGap { from: 6, to: 6 })),
                _ => assert_eq!(gap, None, "seq {seq}"),
            }
            let (entry, next) = append(&head, event, Utc::now());
            head = next;
            entries.push(entry);
        }
        assert_eq!(head.seq, 7);
        // A reminder has no seq and is no gap.
        let reminder = AuditedEvent { event_type: "com.todo.reminder.due.v1".into(), ..task_event("r", 99) };
        assert_eq!((reminder.task_seq(), head.gap_before(&reminder)), (None, None));
        let v = verify(&entries);
        assert!(v.intact);
        assert_eq!(v.seq_gaps, [SeqGap { from: 3, to: 3 }, SeqGap { from: 6, to: 6 }]);
        // A head written before `seq` was kept cannot tell.
        let old = ChainHead { seq: 0, ..head.clone() };
        assert_eq!(old.gap_before(&task_event("x", 50)), None);
    }

    #[test]
    fn canonical_encoding_ignores_key_order() {
        let mut a = String::new();
        let mut b = String::new();
        write_canonical(&json!({"b": 1, "a": {"d": [1, {"z": 0, "y": 1}], "c": null}}), &mut a);
        write_canonical(&serde_json::from_str(r#"{"a":{"c":null,"d":[1,{"y":1,"z":0}]},"b":1}"#).unwrap(), &mut b);
        assert_eq!(a, b);
        assert_eq!(a, r#"{"a":{"c":null,"d":[1,{"y":1,"z":0}]},"b":1}"#);
    }

    #[test]
    fn reminder_events_take_the_task_from_their_data() {
        let body = json!({
            "id": "r1", "type": "com.todo.reminder.due.v1", "time": "2026-01-02T03:04:05Z",
            "data": {"event_id": "r1", "user_id": "alice", "task_id": "0193a1b2-0000-7000-8000-000000000001",
                     "title": "x", "due_at": "2026-01-02T04:00:00Z", "remind_at": "2026-01-02T03:45:00Z"}
        });
        let event = AuditedEvent::from_cloudevent(body.to_string().as_bytes()).unwrap();
        assert_eq!(event.task_id.as_deref(), Some("0193a1b2-0000-7000-8000-000000000001"));
        assert_eq!(event.time, "2026-01-02T03:04:05Z".parse::<DateTime<Utc>>().unwrap());
    }

    fn query(raw: &str) -> AuditQuery {
        AuditQuery::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn audit_query_defaults_and_values() {
        assert_eq!(query(""), AuditQuery::default());
        assert_eq!(query("?after=&limit=&type=&task_id=&from=&to="), AuditQuery::default());
        let q = query("after=4&limit=500&task_id=0193A1B2-0000-7000-8000-000000000001&type=com.todo.task.created.v1,com.todo.reminder.due.v1&type=com.todo.task.created.v1&from=2026-01-01T01:00:00%2B01:00&to=2026-01-02T00:00:00Z");
        assert_eq!((q.start(), q.limit(), q.is_filtered()), (5, 500, true));
        assert_eq!(q.task_id.as_deref(), Some("0193a1b2-0000-7000-8000-000000000001"));
        assert_eq!(q.types, ["com.todo.task.created.v1", "com.todo.reminder.due.v1"]);
        assert_eq!(q.from, Some("2026-01-01T00:00:00Z".parse().unwrap()));
        assert!(!query("after=0&limit=1").is_filtered());
        assert_eq!(query("after=18446744073709551615").start(), u64::MAX);
    }

    #[test]
    fn bad_audit_queries_name_the_parameter() {
        for (raw, field, rule) in [
            ("after=-1", "after", Rule::Format),
            ("after=1.5", "after", Rule::Format),
            ("after=99999999999999999999999", "after", Rule::OutOfRange),
            ("limit=x", "limit", Rule::Format),
            ("limit=0", "limit", Rule::OutOfRange),
            ("limit=501", "limit", Rule::OutOfRange),
            ("limit=1&limit=2", "limit", Rule::Duplicate),
            ("task_id=nope", "task_id", Rule::Format),
            ("type=com.todo.task.created.v1,", "type", Rule::Format),
            ("type=a%20b", "type", Rule::Format),
            ("from=yesterday", "from", Rule::Format),
            ("to=2026-01-01", "to", Rule::Format),
            ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "to", Rule::OutOfRange),
            ("cursor=3", "cursor", Rule::Unknown),
            ("tpye=x", "tpye", Rule::Unknown),
        ] {
            let e = AuditQuery::parse(raw).unwrap_err();
            assert_eq!((e.field.as_str(), e.rule), (field, rule), "{raw}");
        }
    }

    fn entry(position: u64, event_type: &str, task: &str, time: &str) -> AuditEntry {
        AuditEntry {
            position,
            event_id: format!("e{position}"),
            event_type: event_type.to_owned(),
            task_id: Some(task.to_owned()),
            actor: UserId::parse("alice").unwrap(),
            event_time: time.parse().unwrap(),
            recorded_at: time.parse().unwrap(),
            data: json!({}),
            prev_hash: String::new(),
            hash: String::new(),
            trace_id: None,
        }
    }

    #[test]
    fn filters_match_task_type_and_half_open_time_range() {
        let t = "0193a1b2-0000-7000-8000-000000000001";
        let e = entry(0, "com.todo.task.updated.v1", t, "2026-01-01T10:00:00Z");
        assert!(query(&format!("task_id={t}&type=com.todo.task.updated.v1&from=2026-01-01T10:00:00Z&to=2026-01-01T10:00:01Z")).matches(&e));
        assert!(!query("task_id=0193a1b2-0000-7000-8000-000000000002").matches(&e));
        assert!(!query("type=com.todo.task.created.v1").matches(&e));
        assert!(query("type=com.todo.task.created.v1&type=com.todo.task.updated.v1").matches(&e));
        assert!(!query("to=2026-01-01T10:00:00Z").matches(&e));
        assert!(!query("from=2026-01-01T10:00:00.001Z").matches(&e));
    }

    /// Runs a scan over `chain` as the service does, reading the batches it asks for.
    fn run(q: &AuditQuery, chain: &[AuditEntry]) -> (AuditPage, u64) {
        let mut scan = q.scan(chain.len() as u64);
        let mut read = 0;
        while let Some(batch) = scan.next_batch() {
            read += batch.end - batch.start;
            let entries = chain[batch.start as usize..batch.end as usize].to_vec();
            scan.feed(batch, entries);
        }
        (scan.finish(), read)
    }

    fn typed_chain(n: u64, every: u64) -> Vec<AuditEntry> {
        (0..n)
            .map(|p| {
                let kind = if p % every == 0 { "com.todo.reminder.due.v1" } else { "com.todo.task.updated.v1" };
                entry(p, kind, "0193a1b2-0000-7000-8000-000000000001", "2026-01-01T10:00:00Z")
            })
            .collect()
    }

    #[test]
    fn unfiltered_pages_walk_the_chain() {
        let chain = typed_chain(5, 1);
        let (page, read) = run(&query("limit=2"), &chain);
        assert_eq!((page.items.len(), page.next_cursor.as_deref(), read), (2, Some("1"), 2));
        let (page, _) = run(&query("after=1&limit=2"), &chain);
        assert_eq!((page.items[0].position, page.next_cursor.as_deref()), (2, Some("3")));
        let (page, _) = run(&query("after=3&limit=2"), &chain);
        assert_eq!((page.items.len(), page.next_cursor), (1, None));
        let (page, read) = run(&query("after=9"), &chain);
        assert_eq!((page.items.len(), page.next_cursor, read), (0, None, 0));
        assert_eq!(run(&query(""), &[]).0, AuditPage { items: vec![], next_cursor: None });
    }

    #[test]
    fn filtered_scans_are_bounded_and_resume_from_the_last_scanned_position() {
        // One reminder every 1000 entries: a filtered page stops after SCAN_MAX positions.
        let chain = typed_chain(5_000, 1_000);
        let q = query("type=com.todo.reminder.due.v1&limit=10");
        let (page, read) = run(&q, &chain);
        assert_eq!(read, SCAN_MAX);
        assert_eq!(page.items.iter().map(|e| e.position).collect::<Vec<_>>(), [0, 1000]);
        assert_eq!(page.next_cursor.as_deref(), Some("1999"));
        // Following the cursors finds every match exactly once, then ends.
        let (mut found, mut after, mut requests) = (vec![], None::<String>, 0);
        loop {
            let raw = format!("type=com.todo.reminder.due.v1&limit=2{}", after.map(|a| format!("&after={a}")).unwrap_or_default());
            let (page, _) = run(&query(&raw), &chain);
            found.extend(page.items.iter().map(|e| e.position));
            requests += 1;
            match page.next_cursor {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        assert_eq!(found, [0, 1000, 2000, 3000, 4000]);
        assert!(requests <= 4, "{requests}");
        // A full page stops at its last entry.
        let (page, _) = run(&query("type=com.todo.task.updated.v1&limit=3"), &chain);
        assert_eq!(page.items.iter().map(|e| e.position).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(page.next_cursor.as_deref(), Some("3"));
    }

    #[test]
    fn cloudevent_without_user_is_refused() {
        let body = json!({"id": "1", "type": "t", "time": "2026-01-02T03:04:05Z", "data": {}});
        assert_eq!(AuditedEvent::from_cloudevent(body.to_string().as_bytes()).unwrap_err().field, "data.user_id");
    }

    #[test]
    fn the_trace_id_of_the_cloudevent_is_recorded_and_hashed() {
        let body = json!({
            "id": "e1", "type": "com.todo.task.created.v1", "time": "2026-01-02T03:04:05Z",
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "data": {"user_id": "alice", "seq": 1}
        });
        let event = AuditedEvent::from_cloudevent(body.to_string().as_bytes()).unwrap();
        assert_eq!(event.trace_id.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        let (mut entry, _) = append(&ChainHead::default(), event, "2026-01-02T03:04:06Z".parse().unwrap());
        assert_eq!(entry.trace_id.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(entry.hash, entry.expected_hash());
        entry.trace_id = Some("0af7651916cd43dd8448eb211c80319c".into());
        assert_ne!(entry.hash, entry.expected_hash(), "the trace id is covered by the hash");
        let untraced = json!({ "id": "e2", "type": "t", "time": "2026-01-02T03:04:05Z", "traceparent": "00-zz-00f067aa0ba902b7-01",
            "data": {"user_id": "alice"} });
        assert_eq!(AuditedEvent::from_cloudevent(untraced.to_string().as_bytes()).unwrap().trace_id, None);
    }
}
