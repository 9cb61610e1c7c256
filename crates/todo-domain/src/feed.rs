//! Real-time sync: the per-user change feed, the notification inbox, and the
//! rules of the Server-Sent Events stream that serves them.
//!
//! The feed is a per-user log ordered by a cursor (1, 2, 3, ...): each event
//! of `task-events` and `reminders` is appended once (deduplicated on the
//! CloudEvent id) and gets the next cursor. A client resumes after the last
//! cursor it saw. The inbox is a second per-user log holding the reminders,
//! read newest first, each of which can be marked read.
//!
//! Everything here is pure: parsing, paging plans, SSE frames and the claims
//! of the short-lived stream token. `notify-service` does the I/O.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::AuditedEvent;
use crate::reminder::REMINDER_DUE_TYPE;
use crate::{DomainError, Rule, UserId};

/// Default page size of `GET /api/{user_id}/changes` and `/notifications`.
pub const PAGE_DEFAULT: u64 = 100;
/// Largest page size.
pub const PAGE_MAX: u64 = 500;
/// Most entries a stream reads from the store per wake-up.
pub const STREAM_BATCH: u64 = 100;
/// The CloudEvent-like type of the feed entry written when a notification is read.
pub const NOTIFICATION_READ_TYPE: &str = "com.todo.notification.read.v1";
/// How long a stream token opens a new stream, in seconds.
pub const STREAM_TOKEN_TTL_SECS: i64 = 60;
/// How long, from its issue, a stream token still re-opens a stream that a
/// browser's `EventSource` reconnects (with `Last-Event-ID`), in seconds.
pub const STREAM_RECONNECT_SECS: i64 = 3600;
/// The `aud` claim of a stream token; user tokens never carry it.
pub const STREAM_TOKEN_AUDIENCE: &str = "stream";

/// The head of a per-user log: how many entries it holds. The last entry's
/// cursor equals `count`; the next one gets `count + 1`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogHead {
    /// Number of entries (= the last cursor; 0 when empty).
    pub count: u64,
}

/// One entry of a user's change feed. Never changed once written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEntry {
    /// Position in the user's feed, from 1; the SSE `id`.
    pub cursor: u64,
    /// The CloudEvent id (one entry per id).
    pub event_id: String,
    /// The CloudEvent type, e.g. `com.todo.task.created.v1`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The task concerned, if any.
    pub task_id: Option<String>,
    /// When the change happened.
    pub time: DateTime<Utc>,
    /// When notify-service recorded it.
    pub recorded_at: DateTime<Utc>,
    /// The event's data, verbatim (the task snapshot for task events).
    pub data: Value,
}

/// An event as the feed receives it: the parsed CloudEvent.
pub type FeedEvent = AuditedEvent;

/// Parses a CloudEvent delivered by Dapr pub/sub (same rules as the audit log:
/// `id`, `type`, `data.user_id` and a time are required).
pub fn event_from_cloudevent(body: &[u8]) -> Result<FeedEvent, DomainError> {
    AuditedEvent::from_cloudevent(body)
}

/// The entry that `event` becomes after `head`, and the new head.
pub fn append(head: LogHead, event: &FeedEvent, recorded_at: DateTime<Utc>) -> (FeedEntry, LogHead) {
    let cursor = head.count + 1;
    let entry = FeedEntry {
        cursor,
        event_id: event.event_id.clone(),
        event_type: event.event_type.clone(),
        task_id: event.task_id.clone(),
        time: event.time,
        recorded_at,
        data: event.data.clone(),
    };
    (entry, LogHead { count: cursor })
}

/// Whether `event_type` also goes to the notification inbox.
pub fn is_notification(event_type: &str) -> bool {
    event_type == REMINDER_DUE_TYPE
}

/// A reminder in the user's inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The reminder event's id; the path segment of `.../notifications/{id}/read`.
    pub id: String,
    /// Position in the inbox, from 1 (newer is larger).
    pub position: u64,
    /// The CloudEvent type (`com.todo.reminder.due.v1`).
    #[serde(rename = "type")]
    pub event_type: String,
    /// The task the reminder is about.
    pub task_id: Option<String>,
    /// The task's title when the reminder fired.
    pub title: Option<String>,
    /// When the task is due.
    pub due_at: Option<String>,
    /// When the reminder was due.
    pub remind_at: Option<String>,
    /// When the event happened.
    pub time: DateTime<Utc>,
    /// When notify-service recorded it.
    pub created_at: DateTime<Utc>,
    /// When the user marked it read (`null`: unread).
    pub read_at: Option<DateTime<Utc>>,
}

/// The inbox entry that `event` becomes after `head`, and the new head.
pub fn notify(head: LogHead, event: &FeedEvent, created_at: DateTime<Utc>) -> (Notification, LogHead) {
    let position = head.count + 1;
    let text = |k: &str| event.data.get(k).and_then(Value::as_str).map(str::to_owned);
    let note = Notification {
        id: event.event_id.clone(),
        position,
        event_type: event.event_type.clone(),
        task_id: event.task_id.clone(),
        title: text("title"),
        due_at: text("due_at"),
        remind_at: text("remind_at"),
        time: event.time,
        created_at,
        read_at: None,
    };
    (note, LogHead { count: position })
}

impl Notification {
    /// Marks it read at `now`; `false` (nothing to write) when it already was.
    pub fn mark_read(&mut self, now: DateTime<Utc>) -> bool {
        if self.read_at.is_some() {
            return false;
        }
        self.read_at = Some(now);
        true
    }

    /// The feed event announcing that it was read (so other tabs update).
    /// Its id is derived from the notification's, so it is appended once.
    pub fn read_event(&self, user: &UserId, now: DateTime<Utc>) -> FeedEvent {
        AuditedEvent {
            event_id: format!("read-{}", self.id),
            event_type: NOTIFICATION_READ_TYPE.to_owned(),
            user_id: user.clone(),
            task_id: self.task_id.clone(),
            time: self.read_at.unwrap_or(now),
            data: serde_json::json!({ "notification_id": self.id, "user_id": user, "read_at": self.read_at.unwrap_or(now) }),
            trace_id: None,
        }
    }
}

/// A non-negative integer cursor (`after`, `before`, `Last-Event-ID`).
pub fn parse_cursor(field: &str, value: &str) -> Result<u64, DomainError> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DomainError::new(field, Rule::Format, "must be a non-negative integer cursor"));
    }
    value.parse().map_err(|_| DomainError::new(field, Rule::OutOfRange, "is too large"))
}

/// Query parameters of the feed routes, checked once: unknown and repeated
/// parameters are refused; an empty value counts as absent.
fn parse_params(query: &str, known: &[&str]) -> Result<Vec<(String, String)>, DomainError> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name.is_empty() && value.is_empty() {
            continue;
        }
        if !known.contains(&name.as_ref()) {
            return Err(DomainError::new(name.as_ref(), Rule::Unknown, "is not a parameter of this route"));
        }
        if out.iter().any(|(n, _)| n == name.as_ref()) {
            return Err(DomainError::new(name.as_ref(), Rule::Duplicate, "must be given at most once"));
        }
        if !value.is_empty() {
            out.push((name.into_owned(), value.into_owned()));
        }
    }
    Ok(out)
}

fn parse_limit(value: &str) -> Result<u64, DomainError> {
    let limit = parse_cursor("limit", value)?;
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(DomainError::new("limit", Rule::OutOfRange, format!("must be 1 to {PAGE_MAX}")));
    }
    Ok(limit)
}

/// `GET /api/{user_id}/changes?after=&limit=`: entries with a cursor greater
/// than `after` (default 0: from the start), oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangesQuery {
    /// The last cursor already seen.
    pub after: u64,
    /// Page size, 1 to [`PAGE_MAX`].
    pub limit: u64,
}

impl ChangesQuery {
    /// Parses the query string.
    pub fn parse(query: &str) -> Result<Self, DomainError> {
        let mut q = ChangesQuery { after: 0, limit: PAGE_DEFAULT };
        for (name, value) in parse_params(query, &["after", "limit"])? {
            match name.as_str() {
                "after" => q.after = parse_cursor("after", &value)?,
                _ => q.limit = parse_limit(&value)?,
            }
        }
        Ok(q)
    }

    /// The cursors to read when the feed holds `head.count` entries.
    pub fn range(&self, head: LogHead) -> std::ops::RangeInclusive<u64> {
        let first = self.after.saturating_add(1);
        let last = head.count.min(self.after.saturating_add(self.limit));
        first..=last
    }

    /// The page: `next_cursor` is the last cursor returned when more remain.
    pub fn page(&self, head: LogHead, items: Vec<FeedEntry>) -> ChangesPage {
        let last = items.last().map(|e| e.cursor);
        let next_cursor = last.filter(|&c| c < head.count).map(|c| c.to_string());
        ChangesPage { items, next_cursor, head: head.count }
    }
}

/// A page of the change feed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangesPage {
    /// Entries in cursor order.
    pub items: Vec<FeedEntry>,
    /// Pass as `after` for the next page; `null` when this page reaches the head.
    pub next_cursor: Option<String>,
    /// The feed's last cursor when read: resume the stream from here.
    pub head: u64,
}

/// `GET /api/{user_id}/notifications?before=&limit=`: newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxQuery {
    /// Only positions smaller than this (default: from the newest).
    pub before: Option<u64>,
    /// Page size, 1 to [`PAGE_MAX`].
    pub limit: u64,
}

impl InboxQuery {
    /// Parses the query string.
    pub fn parse(query: &str) -> Result<Self, DomainError> {
        let mut q = InboxQuery { before: None, limit: PAGE_DEFAULT };
        for (name, value) in parse_params(query, &["before", "limit"])? {
            match name.as_str() {
                "before" => q.before = Some(parse_cursor("before", &value)?),
                _ => q.limit = parse_limit(&value)?,
            }
        }
        Ok(q)
    }

    /// The positions to read, newest first.
    pub fn positions(&self, head: LogHead) -> Vec<u64> {
        let top = self.before.map_or(head.count, |b| b.saturating_sub(1).min(head.count));
        (1..=top).rev().take(self.limit as usize).collect()
    }

    /// The page: `next_cursor` is the oldest position returned when older ones remain.
    pub fn page(&self, items: Vec<Notification>) -> InboxPage {
        let next_cursor = items.last().map(|n| n.position).filter(|&p| p > 1).map(|p| p.to_string());
        InboxPage { items, next_cursor }
    }
}

/// A page of the inbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboxPage {
    /// Notifications, newest first.
    pub items: Vec<Notification>,
    /// Pass as `before` for older ones; `null` at the oldest.
    pub next_cursor: Option<String>,
}

/// Where a stream starts: after the `Last-Event-ID` header (a browser's
/// reconnect), else after `?after=`, else at the current head (only new
/// changes). `?token=` is the stream token. Unknown parameters are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamQuery {
    /// The cursor to resume after; `None`: from the head.
    pub after: Option<u64>,
    /// A stream token (`?token=`), for clients that cannot send headers.
    pub token: Option<String>,
    /// Whether this is a reconnect (`Last-Event-ID` was sent).
    pub reconnecting: bool,
}

impl StreamQuery {
    /// Parses the query string and the `Last-Event-ID` header (which wins,
    /// since a browser keeps the original URL when it reconnects).
    pub fn parse(query: &str, last_event_id: Option<&str>) -> Result<Self, DomainError> {
        let mut q = StreamQuery { after: None, token: None, reconnecting: false };
        for (name, value) in parse_params(query, &["after", "token"])? {
            match name.as_str() {
                "after" => q.after = Some(parse_cursor("after", &value)?),
                _ => q.token = Some(value),
            }
        }
        if let Some(id) = last_event_id.map(str::trim).filter(|s| !s.is_empty()) {
            q.after = Some(parse_cursor("Last-Event-ID", id)?);
            q.reconnecting = true;
        }
        Ok(q)
    }
}

/// The SSE `event:` name of a feed entry: `notification` for reminders,
/// `notification.read` when one was read, `change` for task events.
pub fn sse_event_name(event_type: &str) -> &'static str {
    if is_notification(event_type) {
        "notification"
    } else if event_type == NOTIFICATION_READ_TYPE {
        "notification.read"
    } else {
        "change"
    }
}

/// One SSE event: `id:`, `event:`, one `data:` line per line of `data`.
pub fn sse_frame(id: u64, event: &str, data: &str) -> String {
    let mut frame = format!("id: {id}\nevent: {event}\n");
    for line in data.split('\n') {
        frame.push_str("data: ");
        frame.push_str(line.trim_end_matches('\r'));
        frame.push('\n');
    }
    frame.push('\n');
    frame
}

/// The SSE frame of a feed entry.
pub fn sse_entry(entry: &FeedEntry) -> String {
    let data = serde_json::to_string(entry).expect("feed entries serialize");
    sse_frame(entry.cursor, sse_event_name(&entry.event_type), &data)
}

/// An SSE comment (ignored by clients; a heartbeat keeps proxies from closing).
pub fn sse_comment(text: &str) -> String {
    let mut out = String::new();
    for line in text.split('\n') {
        out.push_str(": ");
        out.push_str(line.trim_end_matches('\r'));
        out.push('\n');
    }
    out.push('\n');
    out
}

/// The opening of a stream: the reconnect delay, and a `ready` event whose id
/// is the starting cursor, so that a browser reconnecting after a quiet
/// connection resumes from there (its `Last-Event-ID`) and misses nothing.
pub fn sse_open(retry_ms: u64, cursor: u64, head: u64) -> String {
    format!("retry: {retry_ms}\n\n{}", sse_frame(cursor, "ready", &format!("{{\"cursor\":{cursor},\"head\":{head}}}")))
}

/// The claims of a stream token: the user as subject, `aud: "stream"`; it
/// opens a stream for 60 s (`exp`) and re-opens a reconnecting one (a request
/// with `Last-Event-ID`, as `EventSource` sends) until `reconnect_until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamClaims {
    /// The user.
    pub sub: String,
    /// Always [`STREAM_TOKEN_AUDIENCE`].
    pub aud: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Opens new streams until (Unix seconds).
    pub exp: i64,
    /// Re-opens reconnecting streams until (Unix seconds).
    pub reconnect_until: i64,
}

impl StreamClaims {
    /// Claims for `user`, issued at `now`.
    pub fn new(user: &UserId, now: DateTime<Utc>) -> Self {
        let iat = now.timestamp();
        StreamClaims {
            sub: user.to_string(),
            aud: STREAM_TOKEN_AUDIENCE.to_owned(),
            iat,
            exp: iat + STREAM_TOKEN_TTL_SECS,
            reconnect_until: iat + STREAM_RECONNECT_SECS,
        }
    }

    /// Whether the token opens a stream at `now` (Unix seconds, `leeway` of
    /// clock skew): a new one until `exp`, a reconnecting one until
    /// `reconnect_until`.
    pub fn admits(&self, now: i64, reconnecting: bool, leeway: i64) -> bool {
        let until = if reconnecting { self.reconnect_until.max(self.exp) } else { self.exp };
        now <= until + leeway
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, event_type: &str) -> FeedEvent {
        let body = serde_json::json!({
            "specversion": "1.0", "id": id, "type": event_type, "source": "t", "subject": "t1",
            "time": "2026-01-01T00:00:00Z",
            "data": { "user_id": "alice", "title": "pay rent", "remind_at": "2026-01-01T00:00:00Z" },
        });
        event_from_cloudevent(body.to_string().as_bytes()).unwrap()
    }

    fn entry(cursor: u64) -> FeedEntry {
        append(LogHead { count: cursor - 1 }, &event("e", "com.todo.task.created.v1"), Utc::now()).0
    }

    #[test]
    fn appends_take_the_next_cursor() {
        let (e1, h1) = append(LogHead::default(), &event("a", "com.todo.task.created.v1"), Utc::now());
        let (e2, h2) = append(h1, &event("b", "com.todo.task.updated.v1"), Utc::now());
        assert_eq!((e1.cursor, h1.count, e2.cursor, h2.count), (1, 1, 2, 2));
        assert_eq!(e2.event_id, "b");
        assert_eq!(e2.task_id.as_deref(), Some("t1"));
        assert!(event_from_cloudevent(b"{}").is_err());
    }

    #[test]
    fn reminders_become_notifications() {
        let ev = event("r1", REMINDER_DUE_TYPE);
        assert!(is_notification(&ev.event_type));
        assert!(!is_notification("com.todo.task.created.v1"));
        let (mut note, head) = notify(LogHead { count: 4 }, &ev, Utc::now());
        assert_eq!((note.position, head.count), (5, 5));
        assert_eq!(note.title.as_deref(), Some("pay rent"));
        assert!(note.mark_read(Utc::now()));
        assert!(!note.mark_read(Utc::now()), "marking read twice changes nothing");
        let read = note.read_event(&UserId::parse("alice").unwrap(), Utc::now());
        assert_eq!(read.event_id, "read-r1");
        assert_eq!(sse_event_name(&read.event_type), "notification.read");
    }

    #[test]
    fn changes_query_pages_by_cursor() {
        let q = ChangesQuery::parse("after=3&limit=2").unwrap();
        assert_eq!(q.range(LogHead { count: 10 }), 4..=5);
        assert!(q.range(LogHead { count: 3 }).is_empty());
        let page = q.page(LogHead { count: 10 }, vec![entry(4), entry(5)]);
        assert_eq!(page.next_cursor.as_deref(), Some("5"));
        let last = q.page(LogHead { count: 5 }, vec![entry(4), entry(5)]);
        assert_eq!(last.next_cursor, None);
        assert_eq!(ChangesQuery::parse("").unwrap(), ChangesQuery { after: 0, limit: PAGE_DEFAULT });
        assert_eq!(ChangesQuery::parse("after=").unwrap().after, 0);
        for bad in ["after=-1", "after=x", "limit=0", "limit=501", "foo=1", "after=1&after=2"] {
            assert!(ChangesQuery::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(ChangesQuery::parse("limit=0").unwrap_err().field, "limit");
    }

    #[test]
    fn inbox_is_newest_first() {
        let q = InboxQuery::parse("limit=3").unwrap();
        assert_eq!(q.positions(LogHead { count: 5 }), vec![5, 4, 3]);
        assert_eq!(InboxQuery::parse("before=3").unwrap().positions(LogHead { count: 5 }), vec![2, 1]);
        assert_eq!(InboxQuery::parse("before=99").unwrap().positions(LogHead { count: 2 }), vec![2, 1]);
        assert!(InboxQuery::parse("before=1").unwrap().positions(LogHead { count: 5 }).is_empty());
        assert!(InboxQuery::parse("after=1").is_err());
    }

    #[test]
    fn stream_resumes_from_last_event_id_first() {
        let q = StreamQuery::parse("after=3&token=abc", Some("7")).unwrap();
        assert_eq!(q, StreamQuery { after: Some(7), token: Some("abc".into()), reconnecting: true });
        assert_eq!(StreamQuery::parse("after=3", None).unwrap().after, Some(3));
        assert!(!StreamQuery::parse("after=3", None).unwrap().reconnecting);
        assert_eq!(StreamQuery::parse("", Some(" ")).unwrap().after, None);
        assert_eq!(StreamQuery::parse("", Some("x")).unwrap_err().field, "Last-Event-ID");
        assert!(StreamQuery::parse("limit=3", None).is_err());
    }

    #[test]
    fn sse_frames_follow_the_format() {
        assert_eq!(sse_frame(5, "change", "{\"a\":1}"), "id: 5\nevent: change\ndata: {\"a\":1}\n\n");
        assert_eq!(sse_frame(1, "x", "a\nb"), "id: 1\nevent: x\ndata: a\ndata: b\n\n");
        assert_eq!(sse_comment("hb"), ": hb\n\n");
        assert!(sse_open(1000, 4, 9).starts_with("retry: 1000\n\nid: 4\nevent: ready\ndata: {\"cursor\":4,\"head\":9}\n\n"));
        let frame = sse_entry(&entry(3));
        assert!(frame.starts_with("id: 3\nevent: change\ndata: {"), "{frame}");
        assert_eq!(frame.matches('\n').count(), 4, "one data line: {frame}");
    }

    #[test]
    fn stream_claims_last_sixty_seconds() {
        let now = Utc::now();
        let c = StreamClaims::new(&UserId::parse("alice").unwrap(), now);
        assert_eq!((c.sub.as_str(), c.aud.as_str(), c.exp - c.iat), ("alice", "stream", 60));
        let iat = c.iat;
        // A new stream within 60 s; a reconnect within the hour; leeway on both.
        assert!(c.admits(iat + 60, false, 0) && !c.admits(iat + 61, false, 0) && c.admits(iat + 65, false, 5));
        assert!(c.admits(iat + 61, true, 0) && c.admits(iat + 3600, true, 0));
        assert!(!c.admits(iat + 3601, true, 0));
    }
}
