//! Real-time sync through the real stack: todo-api -> `task-events` (and
//! `reminders`) -> notify-service's per-user feed -> Server-Sent Events.
//!
//! The SSE client is a plain HTTP/1.1 reader over `std::net::TcpStream`
//! (chunked decoding, `id:` / `event:` / `data:` / `retry:` lines, comments),
//! so the tests see exactly the bytes a browser's `EventSource` sees.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use e2e::{assert_matches_openapi, eventually, fresh_user, get, send, send_json, Stack};
use serde_json::{json, Value};

const REMINDER_DUE: &str = "com.todo.reminder.due.v1";
const CREATED: &str = "com.todo.task.created.v1";
const UPDATED: &str = "com.todo.task.updated.v1";
/// How long a change may take from the API write to the stream.
const DELIVERY: Duration = Duration::from_secs(30);

fn notify_url() -> String {
    std::env::var("NOTIFY_SERVICE_URL").expect("NOTIFY_SERVICE_URL is set by `cargo xtask test`")
}

// ------------------------------------------------------------ SSE client

/// One dispatched SSE event.
#[derive(Debug, Clone)]
struct Event {
    id: Option<String>,
    event: String,
    data: String,
}

impl Event {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", self.data))
    }
    fn cursor(&self) -> u64 {
        self.id.as_deref().expect("event has an id").parse().expect("numeric id")
    }
}

/// An open `text/event-stream` response.
struct Sse {
    socket: TcpStream,
    status: u16,
    headers: Vec<(String, String)>,
    raw: Vec<u8>,
    chunked: bool,
    /// Bytes left in the current chunk (chunked encoding).
    chunk_left: usize,
    decoded: Vec<u8>,
    /// The body ended cleanly (last chunk, or EOF without chunking).
    ended: bool,
    comments: usize,
    retry: Option<u64>,
    // Fields of the event being parsed.
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
}

impl Sse {
    /// `GET {path}` on notify-service with `headers`.
    fn open(path: &str, headers: &[(&str, &str)]) -> Sse {
        let base = notify_url();
        let authority = base.trim_start_matches("http://").trim_end_matches('/');
        let mut socket = TcpStream::connect(authority).unwrap();
        socket.set_nodelay(true).unwrap();
        let mut request = format!("GET {path} HTTP/1.1\r\nhost: {authority}\r\naccept: text/event-stream\r\n");
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("connection: close\r\n\r\n");
        socket.write_all(request.as_bytes()).unwrap();
        let mut sse = Sse {
            socket,
            status: 0,
            headers: Vec::new(),
            raw: Vec::new(),
            chunked: false,
            chunk_left: 0,
            decoded: Vec::new(),
            ended: false,
            comments: 0,
            retry: None,
            id: None,
            event: None,
            data: None,
        };
        // Status line and headers.
        let deadline = Instant::now() + Duration::from_secs(20);
        let end = loop {
            if let Some(i) = sse.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            assert!(Instant::now() < deadline, "no response head");
            assert!(sse.fill(Duration::from_secs(1)), "connection closed before the response head");
        };
        let head = String::from_utf8_lossy(&sse.raw[..end]).into_owned();
        sse.raw.drain(..end + 4);
        let mut lines = head.split("\r\n");
        sse.status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        for line in lines {
            if let Some((k, v)) = line.split_once(':') {
                sse.headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        sse.chunked = sse.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        sse
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Reads what the socket has within `wait`; `false` at EOF.
    fn fill(&mut self, wait: Duration) -> bool {
        self.socket.set_read_timeout(Some(wait.max(Duration::from_millis(1)))).unwrap();
        let mut buf = [0u8; 16 * 1024];
        match self.socket.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.raw.extend_from_slice(&buf[..n]);
                true
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => true,
            Err(_) => false,
        }
    }

    /// Moves body bytes from `raw` to `decoded`, undoing chunked encoding.
    fn decode(&mut self) {
        if !self.chunked {
            self.decoded.append(&mut self.raw);
            return;
        }
        loop {
            if self.chunk_left > 0 {
                let n = self.chunk_left.min(self.raw.len());
                self.decoded.extend(self.raw.drain(..n));
                self.chunk_left -= n;
                if self.chunk_left > 0 {
                    return;
                }
                // The CRLF after the chunk data is consumed with the next size line.
            }
            let Some(i) = self.raw.windows(2).position(|w| w == b"\r\n") else { return };
            let line = String::from_utf8_lossy(&self.raw[..i]).trim().to_owned();
            if line.is_empty() {
                self.raw.drain(..i + 2);
                continue;
            }
            let size = usize::from_str_radix(line.split(';').next().unwrap(), 16).unwrap_or_else(|_| panic!("bad chunk size {line:?}"));
            self.raw.drain(..i + 2);
            if size == 0 {
                self.ended = true;
                return;
            }
            self.chunk_left = size;
        }
    }

    /// The next dispatched event within `wait`, or `None`.
    fn next(&mut self, wait: Duration) -> Option<Event> {
        let deadline = Instant::now() + wait;
        loop {
            self.decode();
            while let Some(i) = self.decoded.iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&self.decoded[..i]).trim_end_matches('\r').to_owned();
                self.decoded.drain(..=i);
                if let Some(event) = self.line(&line) {
                    return Some(event);
                }
            }
            let now = Instant::now();
            if now >= deadline || self.ended {
                return None;
            }
            if !self.fill(deadline - now) {
                self.decode();
                if !self.chunked {
                    self.ended = true;
                }
                if self.decoded.is_empty() {
                    return None;
                }
            }
        }
    }

    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let data = self.data.take();
            let (id, event) = (self.id.take(), self.event.take());
            return data.map(|data| Event { id, event: event.unwrap_or_else(|| "message".into()), data });
        }
        if line.starts_with(':') {
            self.comments += 1;
            return None;
        }
        let (field, value) = line.split_once(':').map_or((line, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
        match field {
            "id" => self.id = Some(value.to_owned()),
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "retry" => self.retry = value.parse().ok(),
            _ => {}
        }
        None
    }

    /// The next event named `name` (skipping others) within `wait`.
    fn next_named(&mut self, name: &str, wait: Duration) -> Option<Event> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.next(left) {
                Some(e) if e.event == name => return Some(e),
                Some(_) => continue,
                None => return None,
            }
        }
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Opens `/api/{user}/stream{query}` with the bearer token and waits for `ready`.
fn open_stream(user: &str, token: &str, query: &str, extra: &[(&str, &str)]) -> (Sse, Event) {
    let auth = bearer(token);
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    let mut sse = Sse::open(&format!("/api/{user}/stream{query}"), &headers);
    assert_eq!(sse.status, 200, "stream status");
    assert!(sse.header("content-type").is_some_and(|c| c.starts_with("text/event-stream")), "{:?}", sse.headers);
    let ready = sse.next(Duration::from_secs(10)).expect("a ready event");
    assert_eq!(ready.event, "ready", "{ready:?}");
    assert!(sse.retry.is_some(), "the stream sends `retry:`");
    (sse, ready)
}

fn create(stack: &Stack, user: &str, token: &str, title: &str) -> Value {
    let reply = send_json("POST", &format!("{}/api/{user}/tasks", stack.api), token, &json!({ "title": title }));
    assert_eq!(reply.status, 201, "{:?}", reply.json);
    reply.json
}

/// Every feed entry, through `GET /changes` pages.
fn all_changes(user: &str, token: &str) -> Vec<Value> {
    let (mut items, mut after) = (Vec::new(), 0u64);
    loop {
        let reply = get(&format!("{}/api/{user}/changes?after={after}&limit=2", notify_url()), token);
        assert_eq!(reply.status, 200, "{:?}", reply.json);
        assert_matches_openapi("ChangesPage", &reply.json);
        let page = reply.json["items"].as_array().cloned().unwrap_or_default();
        items.extend(page.iter().cloned());
        match reply.json["next_cursor"].as_str() {
            Some(c) => after = c.parse().unwrap(),
            None => return items,
        }
    }
}

// ------------------------------------------------------------ tests

#[test]
fn a_task_created_through_the_api_reaches_an_open_stream() {
    let stack = Stack::get();
    let user = fresh_user("rt-live");
    let token = stack.token(&user);
    let (mut sse, ready) = open_stream(&user, &token, "", &[]);
    assert_eq!(ready.cursor(), 0, "a new user's feed is empty");
    let written = Instant::now();
    let task = create(&stack, &user, &token, "appears everywhere");
    let event = sse.next_named("change", DELIVERY).expect("the change reaches the stream");
    let latency = written.elapsed();
    let entry = event.json();
    assert_matches_openapi("FeedEntry", &entry);
    assert_eq!(event.cursor(), 1);
    assert_eq!(entry["cursor"], 1);
    assert_eq!(entry["type"], CREATED);
    assert_eq!(entry["task_id"], task["id"]);
    assert_eq!(entry["data"]["task"]["title"], "appears everywhere");
    eprintln!("API write -> SSE client: {} ms", latency.as_millis());
}

#[test]
fn a_client_that_reconnects_with_last_event_id_gets_every_change_once_in_order() {
    let stack = Stack::get();
    let user = fresh_user("rt-resume");
    let token = stack.token(&user);
    let (mut sse, _) = open_stream(&user, &token, "", &[]);
    let mut titles = Vec::new();
    let mut seen: Vec<Event> = Vec::new();
    for i in 0..3 {
        titles.push(format!("before {i}"));
        create(&stack, &user, &token, &titles[i]);
    }
    while seen.len() < 3 {
        seen.push(sse.next_named("change", DELIVERY).expect("changes while connected"));
    }
    drop(sse); // the tab goes away
               // Changes while disconnected: creates and an update.
    let mut last_task = Value::Null;
    for i in 0..3 {
        titles.push(format!("while away {i}"));
        last_task = create(&stack, &user, &token, &titles[i + 3]);
    }
    let id = last_task["id"].as_str().unwrap();
    let reply = send_json("PATCH", &format!("{}/api/{user}/tasks/{id}", stack.api), &token, &json!({ "priority": "high" }));
    assert_eq!(reply.status, 200, "{:?}", reply.json);
    // Everything is in the feed before reconnecting, so the resume is a catch-up.
    assert!(eventually(DELIVERY, || (all_changes(&user, &token).len() >= 7).then_some(())).is_some());
    // A browser reconnects with the original URL plus Last-Event-ID, which wins.
    let last = seen.last().unwrap().id.clone().unwrap();
    let (mut again, ready) = open_stream(&user, &token, "?after=0", &[("last-event-id", &last)]);
    assert_eq!(ready.id.as_deref(), Some(last.as_str()), "resumes after Last-Event-ID");
    while seen.len() < 7 {
        seen.push(again.next_named("change", DELIVERY).expect("the missed changes"));
    }
    // One more while connected, then nothing else: no duplicates.
    create(&stack, &user, &token, "after resume");
    seen.push(again.next_named("change", DELIVERY).expect("a live change after the resume"));
    assert!(again.next_named("change", Duration::from_secs(2)).is_none(), "no duplicate or extra event");

    let cursors: Vec<u64> = seen.iter().map(Event::cursor).collect();
    assert_eq!(cursors, (1..=8).collect::<Vec<_>>(), "every change once, in order");
    let kinds: Vec<String> = seen.iter().map(|e| e.json()["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds[..6], [CREATED; 6]);
    assert_eq!(kinds[6], UPDATED);
    let seen_titles: Vec<String> = seen[..6].iter().map(|e| e.json()["data"]["task"]["title"].as_str().unwrap().to_owned()).collect();
    assert_eq!(seen_titles, titles);
    // The catch-up feed holds the same entries.
    let ids: Vec<Value> = all_changes(&user, &token).iter().map(|e| e["event_id"].clone()).collect();
    let streamed: Vec<Value> = seen.iter().map(|e| e.json()["event_id"].clone()).collect();
    assert_eq!(ids, streamed);
}

#[test]
fn reminders_appear_in_the_stream_and_the_inbox_once() {
    let stack = Stack::get();
    let user = fresh_user("rt-remind");
    let token = stack.token(&user);
    let (mut sse, _) = open_stream(&user, &token, "", &[]);
    let (event_id, task_id) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
    let data = json!({
        "event_id": event_id, "user_id": user, "task_id": task_id, "title": "pay rent",
        "due_at": "2026-01-01T10:00:00Z", "remind_at": "2026-01-01T09:45:00Z", "fired_at": "2026-01-01T09:45:00.004Z",
    });
    stack.assert_matches_contract("events/reminder-event.schema.json", &data);
    let cloudevent = json!({
        "specversion": "1.0", "id": event_id, "source": "e2e-realtime", "type": REMINDER_DUE, "subject": task_id,
        "time": "2026-01-01T09:45:00Z", "datacontenttype": "application/json", "data": data,
    });
    stack.publish_cloudevent("reminders", &user, &cloudevent);
    let event = sse.next_named("notification", DELIVERY).expect("the reminder reaches the stream");
    assert_eq!(event.json()["event_id"], event_id.as_str());
    assert_eq!(event.json()["data"]["title"], "pay rent");

    let inbox_url = format!("{}/api/{user}/notifications", notify_url());
    let inbox = get(&inbox_url, &token);
    assert_eq!(inbox.status, 200, "{:?}", inbox.json);
    assert_matches_openapi("NotificationPage", &inbox.json);
    let items = inbox.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{:?}", inbox.json);
    assert_eq!(items[0]["id"], event_id.as_str());
    assert_eq!(items[0]["title"], "pay rent");
    assert!(items[0]["read_at"].is_null());

    // Marking it read is idempotent and reaches the stream (other tabs).
    let read_url = format!("{inbox_url}/{event_id}/read");
    let read = send("POST", &read_url, &[("authorization", &bearer(&token))], None);
    assert_eq!(read.status, 200, "{:?}", read.json);
    assert!(read.json["read_at"].is_string());
    assert_matches_openapi("Notification", &read.json);
    let again = send("POST", &read_url, &[("authorization", &bearer(&token))], None);
    assert_eq!(again.json["read_at"], read.json["read_at"]);
    let read_event = sse.next_named("notification.read", DELIVERY).expect("the read mark reaches the stream");
    assert_eq!(read_event.json()["data"]["notification_id"], event_id.as_str());
    let missing = send("POST", &format!("{inbox_url}/{}/read", uuid::Uuid::now_v7()), &[("authorization", &bearer(&token))], None);
    assert_eq!(missing.status, 404);

    // A redelivered reminder adds nothing to either.
    stack.publish_cloudevent("reminders", &user, &cloudevent);
    create(&stack, &user, &token, "a marker after the redelivery");
    assert!(sse.next_named("change", DELIVERY).is_some());
    let reminders = all_changes(&user, &token).iter().filter(|e| e["type"] == REMINDER_DUE).count();
    assert_eq!(reminders, 1);
    let inbox = get(&inbox_url, &token);
    assert_eq!(inbox.json["items"].as_array().unwrap().len(), 1);
    assert!(inbox.json["items"][0]["read_at"].is_string());
}

#[test]
fn browsers_authenticate_with_a_short_lived_stream_token() {
    let stack = Stack::get();
    let user = fresh_user("rt-token");
    let token = stack.token(&user);
    let issued = send("POST", &format!("{}/api/{user}/stream-token", notify_url()), &[("authorization", &bearer(&token))], None);
    assert_eq!(issued.status, 201, "{:?}", issued.json);
    assert_eq!(issued.json["expires_in"], 60);
    assert_matches_openapi("StreamToken", &issued.json);
    let stream_token = issued.json["token"].as_str().unwrap().to_owned();

    // EventSource: no headers, the token in the query.
    let mut sse = Sse::open(&format!("/api/{user}/stream?token={stream_token}"), &[]);
    assert_eq!(sse.status, 200);
    assert_eq!(sse.next(Duration::from_secs(10)).expect("ready").event, "ready");
    create(&stack, &user, &token, "via token");
    assert!(sse.next_named("change", DELIVERY).is_some());

    // A stream token is good for streams only; a user token is not a stream token.
    let as_bearer = get(&format!("{}/api/{user}/tasks", stack.api), &stream_token);
    assert_eq!(as_bearer.status, 401, "a stream token is not a bearer token");
    assert_eq!(Sse::open(&format!("/api/{user}/stream?token={token}"), &[]).status, 401);
    assert_eq!(Sse::open(&format!("/api/{user}/stream"), &[]).status, 401);
    let other = fresh_user("rt-other");
    assert_eq!(Sse::open(&format!("/api/{other}/stream?token={stream_token}"), &[]).status, 403);
    let auth = bearer(&token);
    assert_eq!(Sse::open(&format!("/api/{user}/stream?after=x"), &[("authorization", &auth)]).status, 422);
    // An origin that CORS_ALLOWED_ORIGINS does not name: a preflight is refused.
    let preflight = send(
        "OPTIONS",
        &format!("{}/api/{user}/stream", notify_url()),
        &[("origin", "https://evil.example"), ("access-control-request-method", "GET")],
        None,
    );
    assert_eq!(preflight.status, 403);
    assert!(preflight.header("access-control-allow-origin").is_none());
}

#[test]
fn an_event_source_reconnects_after_its_first_stream_token_expired() {
    let stack = Stack::get();
    let auth = e2e::better_auth::BetterAuth::from_env();
    let session = auth.sign_up();
    let (user, token) = (session.user.clone(), auth.token(&session, "EdDSA"));
    let origin = e2e::allowed_origin();
    let issued_at = Instant::now();
    let issued = send("POST", &format!("{}/api/{user}/stream-token", notify_url()), &[("authorization", &bearer(&token))], None);
    assert_eq!(issued.status, 201, "{:?}", issued.json);
    assert_matches_openapi("StreamToken", &issued.json);
    let path = format!("/api/{user}/stream?token={}", issued.json["token"].as_str().unwrap());

    // `new EventSource(url)` from the page's origin.
    let mut sse = Sse::open(&path, &[("origin", &origin)]);
    assert_eq!((sse.status, sse.header("access-control-allow-origin")), (200, Some(origin.as_str())));
    assert_eq!(sse.next(Duration::from_secs(10)).expect("ready").event, "ready");
    create(&stack, &user, &token, "before the break");
    let last_id = sse.next_named("change", DELIVERY).expect("the first change").id.unwrap();
    drop(sse);

    // The token no longer opens a new stream once its 60 s (+5 s leeway) are over...
    std::thread::sleep(Duration::from_secs(67).saturating_sub(issued_at.elapsed()));
    assert_eq!(Sse::open(&path, &[]).status, 401, "a new stream needs a fresh stream token");
    create(&stack, &user, &token, "while away");
    // ...but EventSource's reconnect (same URL, Last-Event-ID) re-opens it and
    // resumes after the last event it saw.
    let mut again = Sse::open(&path, &[("last-event-id", &last_id), ("origin", &origin)]);
    assert_eq!(again.status, 200, "the reconnect is accepted");
    let ready = again.next(Duration::from_secs(10)).expect("ready");
    assert_eq!((ready.event.as_str(), ready.id.as_deref()), ("ready", Some(last_id.as_str())));
    let missed = again.next_named("change", DELIVERY).expect("the change made while away");
    assert_eq!(missed.json()["data"]["task"]["title"], "while away", "{missed:?}");
}

#[test]
fn changes_are_paged_by_cursor_and_checked() {
    let stack = Stack::get();
    let user = fresh_user("rt-pages");
    let token = stack.token(&user);
    for i in 0..5 {
        create(&stack, &user, &token, &format!("page {i}"));
    }
    let all = eventually(DELIVERY, || Some(all_changes(&user, &token)).filter(|c| c.len() == 5)).expect("5 changes");
    let cursors: Vec<u64> = all.iter().map(|e| e["cursor"].as_u64().unwrap()).collect();
    assert_eq!(cursors, [1, 2, 3, 4, 5]);
    let page = get(&format!("{}/api/{user}/changes?after=3", notify_url()), &token);
    assert_eq!(page.json["items"].as_array().unwrap().len(), 2);
    assert!(page.json["next_cursor"].is_null());
    assert_eq!(page.json["head"], 5);
    for bad in ["?limit=0", "?after=-1", "?cursor=1"] {
        assert_eq!(get(&format!("{}/api/{user}/changes{bad}", notify_url()), &token).status, 422, "{bad}");
    }
    assert_eq!(get(&format!("{}/api/{user}/changes", notify_url()), &stack.token("someone-else")).status, 403);
}

#[test]
fn a_stream_ends_cleanly_after_its_lifetime_with_heartbeats() {
    let stack = Stack::get();
    let user = fresh_user("rt-life");
    let token = stack.token(&user);
    let (mut sse, _) = open_stream(&user, &token, "", &[]);
    let opened = Instant::now();
    // Default lifetime 30 s, heartbeat every 15 s.
    while sse.next(Duration::from_secs(60)).is_some() {}
    let lived = opened.elapsed();
    assert!(sse.ended, "the response ends with the last chunk (a clean close)");
    assert!(lived >= Duration::from_secs(25) && lived < Duration::from_secs(45), "lived {lived:?}");
    assert!(sse.comments >= 2, "heartbeats and the closing comment: {}", sse.comments);
}
