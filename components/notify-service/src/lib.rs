//! `notify-service`: real-time sync. It consumes `task-events` and `reminders`
//! and keeps, per user, a change feed ordered by a cursor and an inbox of
//! reminders; it serves them as a cursor-paged feed and as Server-Sent Events.
//!
//! Keys (prefixed by Dapr with the app-id): `feed:{user}:head` (the last
//! cursor), `feed:{user}:entry:{cursor}`, `feed:{user}:seen:{event_id}`; the
//! same three under `inbox:{user}:...` for notifications. Events come in
//! bulk; appends go through `component_kit::log::append_batch` (one
//! ETag-guarded head write per user and batch, dedupe marks), as in
//! audit-service. The rules are `todo_domain::feed`.
//!
//! A stream cannot be woken by the consumer (every request runs in its own
//! instance, and Spin has no shared memory or WebSockets), so it polls the
//! small head key through the sidecar every `STREAM_POLL_MS` (150 ms) and
//! reads entries only when the head moved.

use std::time::{Duration, Instant};

use chrono::Utc;
use component_kit::cors::{self, Cors};
use component_kit::delivery::{self, Outcome};
use component_kit::log::{self, LogKeys};
use component_kit::settings::env_or;
use component_kit::{auth, health, json, readiness, stream_token, telemetry, Problem, Routes, Settings};
use dapr_http::{Dapr, DaprError, StateOp};
use futures::SinkExt;
use spin_sdk::http::{Headers, Method, OutgoingResponse, Params, Request, Response, ResponseOutparam};
use spin_sdk::http_component;
use todo_domain::feed::{self, ChangesQuery, FeedEntry, FeedEvent, InboxQuery, LogHead, Notification, StreamQuery};
use todo_domain::UserId;

const APP_ID: &str = "notify-service";

#[http_component]
async fn handle(req: Request, out: ResponseOutparam) {
    telemetry::begin(APP_ID, &req);
    if let Some(user) = stream_path(&req) {
        return stream(req, user, out).await;
    }
    let response = cors::handle(req, route).await;
    send_whole(out, response).await;
}

async fn route(req: Request) -> Response {
    let mut router = Routes::new();
    router
        .get("/healthz/notify-service", |_, _| async { health(APP_ID) })
        .get("/readyz/notify-service", |_, _| readiness(APP_ID))
        .post("/internal/notify/task-events", |req, _| receive(req))
        .post("/internal/notify/reminders", |req, _| receive(req))
        .get("/api/:user_id/changes", |req, params| respond(req, params, changes))
        .served_elsewhere(Method::Get, "/api/:user_id/stream")
        .post("/api/:user_id/stream-token", |req, params| respond(req, params, issue_stream_token))
        .get("/api/:user_id/notifications", |req, params| respond(req, params, notifications))
        .post("/api/:user_id/notifications/:id/read", |req, params| respond(req, params, mark_read));
    router.handle(req).await
}

/// The user of `GET /api/{user_id}/stream`.
fn stream_path(req: &Request) -> Option<String> {
    if *req.method() != Method::Get {
        return None;
    }
    let mut parts = req.path().trim_start_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("api"), Some(user), Some("stream"), None) => Some(user.to_owned()),
        _ => None,
    }
}

async fn send_whole(out: ResponseOutparam, mut response: Response) {
    let body = std::mem::take(response.body_mut());
    match OutgoingResponse::try_from(response) {
        Ok(response) => {
            if let Err(e) = out.set_with_body(response, body).await {
                telemetry::warn("cannot send the response").error(e).emit();
            }
        }
        Err(e) => telemetry::error("cannot convert the response").error(e).emit(),
    }
}

/// Runs a user route; errors become problem+json.
async fn respond<F, Fut>(req: Request, params: Params, handler: F) -> Response
where
    F: FnOnce(Request, String, Params) -> Fut,
    Fut: std::future::Future<Output = Result<Response, Problem>>,
{
    let user = params.get("user_id").unwrap_or_default().to_owned();
    handler(req, user, params).await.unwrap_or_else(Problem::into_response)
}

fn feed_head(user: &UserId) -> String {
    format!("feed:{user}:head")
}
fn feed_entry(user: &UserId, cursor: u64) -> String {
    format!("feed:{user}:entry:{cursor}")
}
fn feed_seen(user: &UserId, event_id: &str) -> String {
    format!("feed:{user}:seen:{event_id}")
}
fn inbox_head(user: &UserId) -> String {
    format!("inbox:{user}:head")
}
fn inbox_entry(user: &UserId, position: u64) -> String {
    format!("inbox:{user}:entry:{position}")
}
fn inbox_seen(user: &UserId, event_id: &str) -> String {
    format!("inbox:{user}:seen:{event_id}")
}

/// Dapr pub/sub delivery (both topics), in bulk: per entry `SUCCESS` once
/// recorded (or already recorded), `DROP` for an event that can never be
/// recorded, `RETRY` for a transient failure so that Dapr delivers it again.
/// Each user's events of the batch are appended in one transaction per log:
/// the reminders to the inbox first, then every event to the feed; each
/// append is idempotent, so a redelivery after a partial failure completes
/// the other.
async fn receive(req: Request) -> Response {
    let (dapr, settings) = (Dapr::from_env(), Settings::from_env());
    let batch = match delivery::Batch::receive(&req, &dapr, &settings, feed::event_from_cloudevent).await {
        Ok(batch) => batch,
        Err(answer) => return answer,
    };
    let (dapr, store) = (&dapr, settings.state_store.as_str());
    let outcomes = delivery::each_group(batch.groups(|e| e.user_id.clone()), |group| async move {
        let events: Vec<&FeedEvent> = group.iter().map(|(_, e)| *e).collect();
        let notes: Vec<&FeedEvent> = events.iter().copied().filter(|e| feed::is_notification(&e.event_type)).collect();
        let mut result = Ok(());
        if !notes.is_empty() {
            result = add_notifications(dapr, store, &notes).await;
        }
        if result.is_ok() {
            result = add_to_feed(dapr, store, &events).await;
        }
        let outcome = match result {
            Ok(()) => Outcome::Success,
            Err(e) => {
                telemetry::warn("feed append failed; Dapr will deliver again").user(&events[0].user_id).error(e).emit();
                Outcome::Retry
            }
        };
        group.iter().map(|(i, _)| (*i, outcome)).collect()
    })
    .await;
    batch.answer(outcomes)
}

/// Appends `events` (one user's, in order) to the user's feed.
async fn add_to_feed(dapr: &Dapr, store: &str, events: &[&FeedEvent]) -> Result<(), DaprError> {
    let user = &events[0].user_id;
    let (entry, seen) = (|cursor| feed_entry(user, cursor), |id: &str| feed_seen(user, id));
    let keys = LogKeys { head: feed_head(user), seen: &seen, seen_ttl_secs: Some(log::DEDUPE_TTL_SECS), entry: &entry };
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let now = Utc::now();
    log::append_batch(dapr, store, &keys, &ids, |head: &LogHead, i| {
        let (entry, next) = feed::append(*head, events[i], now);
        (entry.cursor, entry, next)
    })
    .await?;
    Ok(())
}

/// Appends reminder `events` (one user's, in order) to the user's inbox.
async fn add_notifications(dapr: &Dapr, store: &str, events: &[&FeedEvent]) -> Result<(), DaprError> {
    let user = &events[0].user_id;
    let (entry, seen) = (|position| inbox_entry(user, position), |id: &str| inbox_seen(user, id));
    let keys = LogKeys { head: inbox_head(user), seen: &seen, seen_ttl_secs: None, entry: &entry };
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let now = Utc::now();
    log::append_batch(dapr, store, &keys, &ids, |head: &LogHead, i| {
        let (note, next) = feed::notify(*head, events[i], now);
        (note.position, note, next)
    })
    .await?;
    Ok(())
}

async fn read_head(dapr: &Dapr, store: &str, key: &str) -> Result<LogHead, DaprError> {
    Ok(dapr.get_state::<LogHead>(store, key).await?.map(|v| v.value).unwrap_or_default())
}

/// The feed entries `from..=to` that exist, stopping at the first missing one
/// (the head is committed with its entry, so none is missing in practice).
async fn load_feed(dapr: &Dapr, store: &str, user: &UserId, from: u64, to: u64) -> Result<Vec<FeedEntry>, DaprError> {
    let keys: Vec<String> = (from..=to).map(|c| feed_entry(user, c)).collect();
    Ok(dapr.get_bulk::<FeedEntry>(store, &keys).await?.into_iter().map_while(|v| v.map(|v| v.value)).collect())
}

/// `GET /api/{user_id}/changes?after=&limit=`: catch-up, oldest first.
async fn changes(req: Request, user: String, _: Params) -> Result<Response, Problem> {
    let (dapr, settings) = (Dapr::from_env(), Settings::from_env());
    let user = auth::user(&req, &user, &dapr, &settings).await?;
    let query = ChangesQuery::parse(req.query())?;
    let head = read_head(&dapr, &settings.state_store, &feed_head(&user)).await?;
    let range = query.range(head);
    let items =
        if range.is_empty() { Vec::new() } else { load_feed(&dapr, &settings.state_store, &user, *range.start(), *range.end()).await? };
    Ok(json(200, &query.page(head, items)))
}

/// `POST /api/{user_id}/stream-token`: a token for `?token=` on the stream
/// (opens one for 60 s, re-opens a reconnecting one for an hour).
async fn issue_stream_token(req: Request, user: String, _: Params) -> Result<Response, Problem> {
    let (dapr, settings) = (Dapr::from_env(), Settings::from_env());
    let user = auth::user(&req, &user, &dapr, &settings).await?;
    let secret = stream_token::secret(&dapr, &settings).await?;
    let (token, claims) = stream_token::sign(&user, Utc::now(), secret.as_bytes())?;
    let at = |secs| chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    let body = serde_json::json!({
        "token": token, "token_type": "stream", "expires_in": feed::STREAM_TOKEN_TTL_SECS, "expires_at": at(claims.exp),
        "reconnect_until": at(claims.reconnect_until),
    });
    let mut response = json(201, &body);
    response.set_header("cache-control", "no-store");
    Ok(response)
}

/// `GET /api/{user_id}/notifications?before=&limit=`: the inbox, newest first.
async fn notifications(req: Request, user: String, _: Params) -> Result<Response, Problem> {
    let (dapr, settings) = (Dapr::from_env(), Settings::from_env());
    let user = auth::user(&req, &user, &dapr, &settings).await?;
    let query = InboxQuery::parse(req.query())?;
    let head = read_head(&dapr, &settings.state_store, &inbox_head(&user)).await?;
    let keys: Vec<String> = query.positions(head).into_iter().map(|p| inbox_entry(&user, p)).collect();
    let items: Vec<Notification> =
        dapr.get_bulk::<Notification>(&settings.state_store, &keys).await?.into_iter().flatten().map(|v| v.value).collect();
    Ok(json(200, &query.page(items)))
}

/// `POST /api/{user_id}/notifications/{id}/read`: marks it read (idempotent)
/// and announces it on the feed, so the user's other tabs update.
async fn mark_read(req: Request, user: String, params: Params) -> Result<Response, Problem> {
    let (dapr, settings) = (Dapr::from_env(), Settings::from_env());
    let user = auth::user(&req, &user, &dapr, &settings).await?;
    let store = &settings.state_store;
    let id = params.get("id").unwrap_or_default();
    let valid = !id.is_empty() && id.len() <= 200 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    let unknown = || Problem::not_found("no such notification");
    if !valid {
        return Err(unknown());
    }
    let position = dapr.get_state::<u64>(store, &inbox_seen(&user, id)).await?.ok_or_else(unknown)?.value;
    let key = inbox_entry(&user, position);
    for _ in 0..log::MAX_ATTEMPTS {
        let stored = dapr.get_state::<Notification>(store, &key).await?.ok_or_else(unknown)?;
        let mut note = stored.value;
        let now = Utc::now();
        if note.mark_read(now) {
            match dapr.transact(store, &[StateOp::upsert(&key, &note, stored.etag)]).await {
                Err(DaprError::Conflict) => continue,
                other => other?,
            }
        }
        add_to_feed(&dapr, store, &[&note.read_event(&user, now)]).await?;
        return Ok(json(200, &note));
    }
    Err(DaprError::Conflict.into())
}

/// Stream settings from the environment.
struct StreamConfig {
    lifetime: Duration,
    poll: Duration,
    heartbeat: Duration,
    retry_ms: u64,
}

impl StreamConfig {
    fn from_env() -> Self {
        let num = |name: &str, default: u64| env_or(name, &default.to_string()).parse::<u64>().unwrap_or(default);
        StreamConfig {
            lifetime: Duration::from_secs(num("STREAM_LIFETIME_SECS", 30).clamp(1, 3600)),
            poll: Duration::from_millis(num("STREAM_POLL_MS", 150).clamp(20, 10_000)),
            heartbeat: Duration::from_secs(num("STREAM_HEARTBEAT_SECS", 15).clamp(1, 300)),
            retry_ms: num("STREAM_RETRY_MS", 1000).min(60_000),
        }
    }
}

/// `GET /api/{user_id}/stream`: Server-Sent Events. Opens with `retry:` and a
/// `ready` event (id = the starting cursor), then sends every feed entry after
/// it (`id:` = cursor), heartbeat comments, and ends cleanly after its
/// lifetime so that the client reconnects with `Last-Event-ID`.
async fn stream(req: Request, user: String, out: ResponseOutparam) {
    let cors = Cors::from_env();
    let origin = cors.allowed_origin(&req).map(str::to_owned);
    let refuse = |problem: Problem| match &origin {
        Some(origin) => cors.with_headers(origin, problem.into_response()),
        None => problem.into_response(),
    };
    let (dapr, settings) = (Dapr::from_env(), Settings::from_env());
    let last_event_id = req.header("last-event-id").and_then(|v| v.as_str());
    let query = match StreamQuery::parse(req.query(), last_event_id) {
        Ok(q) => q,
        Err(e) => return send_whole(out, refuse(e.into())).await,
    };
    let user = match stream_token::stream_user(&req, &user, &query, &dapr, &settings).await {
        Ok(user) => user,
        Err(problem) => return send_whole(out, refuse(problem)).await,
    };
    let store = settings.state_store.clone();
    let head_key = feed_head(&user);
    let head = match read_head(&dapr, &store, &head_key).await {
        Ok(head) => head,
        Err(e) => return send_whole(out, refuse(e.into())).await,
    };
    let config = StreamConfig::from_env();
    let mut cursor = query.after.unwrap_or(head.count).min(head.count);

    let mut headers: Vec<(String, Vec<u8>)> = vec![
        ("content-type".into(), b"text/event-stream".to_vec()),
        ("cache-control".into(), b"no-cache, no-transform".to_vec()),
        ("x-accel-buffering".into(), b"no".to_vec()),
    ];
    if let Some(origin) = &origin {
        for (k, v) in cors.headers(origin) {
            headers.push((k.to_owned(), v.into_bytes()));
        }
    }
    let response = OutgoingResponse::new(Headers::from_list(&headers).expect("valid header names"));
    let _ = response.set_status_code(200);
    let mut body = response.take_body();
    out.set(response);
    if body.send(feed::sse_open(config.retry_ms, cursor, head.count).into_bytes()).await.is_err() {
        return;
    }

    let opened = Instant::now();
    let mut last_write = Instant::now();
    loop {
        // Wake-up: one small read of the head; entries only when it moved.
        let head = match read_head(&dapr, &store, &head_key).await {
            Ok(head) => head,
            Err(e) => {
                telemetry::warn("stream closed so that the client reconnects").user(&user).error(e).emit();
                break;
            }
        };
        while head.count > cursor {
            let to = head.count.min(cursor + feed::STREAM_BATCH);
            let entries = match load_feed(&dapr, &store, &user, cursor + 1, to).await {
                Ok(entries) if !entries.is_empty() => entries,
                _ => break,
            };
            let mut frames = String::new();
            for entry in &entries {
                frames.push_str(&feed::sse_entry(entry));
                cursor = entry.cursor;
            }
            if body.send(frames.into_bytes()).await.is_err() {
                return; // the client left
            }
            last_write = Instant::now();
        }
        if opened.elapsed() >= config.lifetime {
            let _ = body.send(feed::sse_comment("lifetime reached; reconnect with Last-Event-ID").into_bytes()).await;
            break;
        }
        if last_write.elapsed() >= config.heartbeat {
            if body.send(feed::sse_comment("heartbeat").into_bytes()).await.is_err() {
                return;
            }
            last_write = Instant::now();
        }
        // A Spin instance serves one request: blocking here costs nothing
        // but this instance (std's sleep is `wasi:clocks` + `wasi:io/poll`).
        std::thread::sleep(config.poll);
    }
    // Dropping the body finishes it: a clean end of the response.
    drop(body);
}
