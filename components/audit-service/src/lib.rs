//! `audit-service`: the per-user, append-only, hash-chained audit log.
//!
//! Keys (prefixed by Dapr with the app-id): `audit:{user}:head` the chain head,
//! `audit:{user}:entry:{position}` the entries, `audit:{user}:seen:{event_id}`
//! the dedupe marks. An append commits all three in one transaction guarded by
//! the head's ETag, so concurrent appends serialize and a redelivered event
//! adds nothing (`component_kit::log::append_once`, shared with notify-service).
//! A task event whose `seq` jumps past the head's is logged as a gap (user and
//! missing numbers); `verify` reports every gap, and an entry that no longer
//! decodes as where the chain breaks.

use chrono::Utc;
use component_kit::log::{self, LogKeys};
use component_kit::{auth, cors, delivery, health, json, readiness, telemetry, Problem, Routes, Settings};
use dapr_http::{Dapr, DaprError};
use spin_sdk::http::{IntoResponse, Params, Request, Response};
use spin_sdk::http_component;
use todo_domain::audit::{self, AuditEntry, AuditQuery, AuditedEvent, ChainHead, PAGE_MAX};
use todo_domain::UserId;

const APP_ID: &str = "audit-service";

#[http_component]
async fn handle(req: Request) -> impl IntoResponse {
    cors::handle(req, route).await
}

async fn route(req: Request) -> Response {
    telemetry::begin(APP_ID, &req);
    let mut router = Routes::new();
    router
        .get("/healthz/audit-service", |_, _| async { health(APP_ID) })
        .get("/readyz/audit-service", |_, _| readiness(APP_ID))
        .post("/internal/audit/task-events", |req, _| receive(req))
        .post("/internal/audit/reminders", |req, _| receive(req))
        .get("/audit/:user_id", |req, params| respond(list(req, params)))
        .get("/audit/:user_id/verify", |req, params| respond(verify(req, params)));
    router.handle(req).await
}

async fn respond(handler: impl std::future::Future<Output = Result<Response, Problem>>) -> Response {
    handler.await.unwrap_or_else(Problem::into_response)
}

fn head_key(user: &UserId) -> String {
    format!("audit:{user}:head")
}

fn entry_key(user: &UserId, position: u64) -> String {
    format!("audit:{user}:entry:{position}")
}

fn seen_key(user: &UserId, event_id: &str) -> String {
    format!("audit:{user}:seen:{event_id}")
}

/// Dapr pub/sub delivery: `SUCCESS` once recorded (or already recorded),
/// `DROP` (to the dead-letter topic) for an event that can never be recorded,
/// 5xx for a transient failure so that Dapr redelivers.
async fn receive(req: Request) -> Response {
    let dapr = Dapr::from_env();
    let settings = Settings::from_env();
    if let Err(problem) = auth::dapr_only(&req, &dapr, &settings).await {
        return problem.into_response();
    }
    let event = match AuditedEvent::from_cloudevent(req.body()) {
        Ok(event) => event,
        Err(e) => {
            telemetry::warn("dropping an unrecordable event").error(e).emit();
            return delivery::status("DROP");
        }
    };
    match record(&dapr, &settings, event).await {
        Ok(()) => delivery::status("SUCCESS"),
        Err(e) => Problem::from(e).into_response(),
    }
}

async fn record(dapr: &Dapr, settings: &Settings, event: AuditedEvent) -> Result<(), DaprError> {
    let user = event.user_id.clone();
    let entry = |position| entry_key(&user, position);
    let keys =
        LogKeys { head: head_key(&user), seen: seen_key(&user, &event.event_id), seen_ttl_secs: Some(log::DEDUPE_TTL_SECS), entry: &entry };
    let mut gap = None;
    let appended = log::append_once(dapr, &settings.state_store, &keys, |head: &ChainHead| {
        gap = head.gap_before(&event);
        let (entry, next) = audit::append(head, event.clone(), Utc::now());
        (entry.position, entry, next)
    })
    .await?;
    if let (log::Appended::New(position), Some(gap)) = (appended, gap) {
        eprintln!("user {user}: task events seq {}..={} are missing before event {} (entry {position})", gap.from, gap.to, event.event_id);
    }
    Ok(())
}

/// Entries `from..to` as stored: `None` where one is missing or no longer
/// decodes (logged).
async fn load_stored(dapr: &Dapr, store: &str, user: &UserId, from: u64, to: u64) -> Result<Vec<Option<AuditEntry>>, DaprError> {
    let keys: Vec<String> = (from..to).map(|p| entry_key(user, p)).collect();
    Ok(dapr
        .get_bulk_each::<AuditEntry>(store, &keys)
        .await?
        .into_iter()
        .map(|item| match item? {
            Ok(entry) => Some(entry.value),
            Err(bad) => {
                eprintln!("user {user}: audit entry {} does not decode: {}", bad.key, bad.error);
                None
            }
        })
        .collect())
}

/// The readable entries `from..to`.
async fn load_entries(dapr: &Dapr, store: &str, user: &UserId, from: u64, to: u64) -> Result<Vec<AuditEntry>, DaprError> {
    Ok(load_stored(dapr, store, user, from, to).await?.into_iter().flatten().collect())
}

/// `GET /audit/{user_id}?after&limit&task_id&type&from&to`: entries in chain
/// order. The query is parsed and the scan planned by the domain; this only
/// reads the batches it asks for.
async fn list(req: Request, params: Params) -> Result<Response, Problem> {
    let (dapr, settings) = (Dapr::from_env(), Settings::from_env());
    let user = auth::user(&req, params.get("user_id").unwrap_or_default(), &dapr, &settings).await?;
    let query = AuditQuery::parse(req.query())?;
    let head: ChainHead = dapr.get_state(&settings.state_store, &head_key(&user)).await?.map(|v| v.value).unwrap_or_default();
    let mut scan = query.scan(head.count);
    while let Some(batch) = scan.next_batch() {
        let entries = load_entries(&dapr, &settings.state_store, &user, batch.start, batch.end).await?;
        scan.feed(batch, entries);
    }
    Ok(json(200, &scan.finish()))
}

/// `GET /audit/{user_id}/verify`: whether the whole chain is intact.
async fn verify(req: Request, params: Params) -> Result<Response, Problem> {
    let (dapr, settings) = (Dapr::from_env(), Settings::from_env());
    let user = auth::user(&req, params.get("user_id").unwrap_or_default(), &dapr, &settings).await?;
    let head: ChainHead = dapr.get_state(&settings.state_store, &head_key(&user)).await?.map(|v| v.value).unwrap_or_default();
    let mut entries = Vec::with_capacity(head.count as usize);
    let mut from = 0;
    while from < head.count {
        let to = head.count.min(from + PAGE_MAX);
        entries.extend(load_stored(&dapr, &settings.state_store, &user, from, to).await?);
        from = to;
    }
    let mut result = audit::verify_stored(entries.iter().map(Option::as_ref));
    if result.intact && (result.entries != head.count || result.head_hash != head.hash) {
        result.intact = false;
        result.broken_at = Some(result.entries);
    }
    Ok(json(200, &result))
}
