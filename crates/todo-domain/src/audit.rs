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
    /// The task it concerns, if any (CloudEvent `subject`).
    pub task_id: Option<String>,
    /// When it happened: the data's `time` (the change itself), else the CloudEvent's.
    pub time: DateTime<Utc>,
    /// The event's data.
    pub data: Value,
}

impl AuditedEvent {
    /// Parses a CloudEvent (JSON) as delivered by Dapr pub/sub.
    pub fn from_cloudevent(body: &[u8]) -> Result<Self, DomainError> {
        let ce: Value = serde_json::from_slice(body)
            .map_err(|e| DomainError::new("body", Rule::Format, format!("invalid JSON: {e}")))?;
        let text = |field: &str| ce.get(field).and_then(Value::as_str);
        let event_id = text("id").ok_or_else(|| DomainError::new("id", Rule::Required, "CloudEvent id is required"))?;
        let event_type = text("type").ok_or_else(|| DomainError::new("type", Rule::Required, "CloudEvent type is required"))?;
        let data = ce.get("data").cloned().unwrap_or(Value::Null);
        let user = data
            .get("user_id")
            .and_then(Value::as_str)
            .ok_or_else(|| DomainError::new("data.user_id", Rule::Required, "is required"))?;
        let time = data
            .get("time")
            .and_then(Value::as_str)
            .or_else(|| text("time"))
            .ok_or_else(|| DomainError::new("time", Rule::Required, "is required"))?;
        let time = DateTime::parse_from_rfc3339(time)
            .map_err(|_| DomainError::new("time", Rule::Format, "must be RFC 3339"))?
            .with_timezone(&Utc);
        Ok(AuditedEvent {
            event_id: event_id.to_owned(),
            event_type: event_type.to_owned(),
            user_id: UserId::parse(user)?,
            task_id: text("subject").map(str::to_owned),
            time,
            data,
        })
    }
}

/// The head of a user's chain: how many entries it has and the last hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// Number of entries; the next entry's position.
    pub count: u64,
    /// Hash of the last entry ([`GENESIS_HASH`] when empty).
    pub hash: String,
}

impl Default for ChainHead {
    fn default() -> Self {
        ChainHead { count: 0, hash: GENESIS_HASH.to_owned() }
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
}

impl AuditEntry {
    /// The hash this entry should carry, computed from its other fields.
    pub fn expected_hash(&self) -> String {
        let body = serde_json::json!({
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
    };
    entry.hash = entry.expected_hash();
    let head = ChainHead { count: head.count + 1, hash: entry.hash.clone() };
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
}

/// Checks entries in position order from the start of the chain.
pub fn verify<'a>(entries: impl IntoIterator<Item = &'a AuditEntry>) -> Verification {
    let mut prev = GENESIS_HASH.to_owned();
    let mut count = 0;
    for entry in entries {
        if entry.position != count || entry.prev_hash != prev || entry.hash != entry.expected_hash() {
            return Verification { intact: false, entries: count, head_hash: prev, broken_at: Some(count) };
        }
        prev = entry.hash.clone();
        count += 1;
    }
    Verification { intact: true, entries: count, head_hash: prev, broken_at: None }
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
    fn cloudevent_without_user_is_refused() {
        let body = json!({"id": "1", "type": "t", "time": "2026-01-02T03:04:05Z", "data": {}});
        assert_eq!(AuditedEvent::from_cloudevent(body.to_string().as_bytes()).unwrap_err().field, "data.user_id");
    }
}
