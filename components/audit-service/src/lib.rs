//! `audit-service`: the per-user, append-only, hash-chained audit log.
//!
//! Keys (prefixed by Dapr with the app-id): `audit:{user}:head` the chain head,
//! `audit:{user}:entry:{position}` the entries, `audit:{user}:seen:{event_id}`
//! the dedupe marks (30-day TTL). Events come in bulk; the events of one user
//! in a batch are appended in one transaction guarded by the head's ETag, so
//! concurrent appends serialize and a redelivered event adds nothing
//! (`component_kit::log::append_batch`, shared with notify-service).
//! A task event whose `seq` jumps past the head's is logged as a gap (user and
//! missing numbers); `verify` reports every gap, and an entry that no longer
//! decodes as where the chain breaks.

use chrono::Utc;
use component_kit::delivery::{self, Outcome};
use component_kit::log::{self, LogKeys};
use component_kit::{auth, cors, health, json, readiness, telemetry, Problem, Routes, Settings};
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

/// Dapr pub/sub delivery, in bulk: per entry `SUCCESS` once recorded (or
/// already recorded), `DROP` (to the dead-letter topic) for an event that can
/// never be recorded, `RETRY` for a transient failure so that Dapr delivers
/// it again. Each user's events of the batch are appended in one transaction.
async fn receive(req: Request) -> Response {
    let (dapr, settings) = (Dapr::from_env(), Settings::from_env());
    let batch = match delivery::Batch::receive(&req, &dapr, &settings, AuditedEvent::from_cloudevent).await {
        Ok(batch) => batch,
        Err(answer) => return answer,
    };
    let outcomes = delivery::each_group(batch.groups(|e| e.user_id.clone()), |group| record(&dapr, &settings, group)).await;
    batch.answer(outcomes)
}

/// Appends one user's events (in delivery order) to the chain.
async fn record(dapr: &Dapr, settings: &Settings, group: Vec<(usize, &AuditedEvent)>) -> Vec<(usize, Outcome)> {
    let user = group[0].1.user_id.clone();
    let (entry, seen) = (|position| entry_key(&user, position), |id: &str| seen_key(&user, id));
    let keys = LogKeys { head: head_key(&user), seen: &seen, seen_ttl_secs: Some(log::DEDUPE_TTL_SECS), entry: &entry };
    let ids: Vec<&str> = group.iter().map(|(_, e)| e.event_id.as_str()).collect();
    let mut gaps = vec![None; group.len()];
    let now = Utc::now();
    let appended = log::append_batch(dapr, &settings.state_store, &keys, &ids, |head: &ChainHead, i| {
        let event = group[i].1;
        gaps[i] = head.gap_before(event);
        let (entry, next) = audit::append(head, event.clone(), now);
        (entry.position, entry, next)
    })
    .await;
    match appended {
        Ok(appended) => {
            for ((appended, gap), (_, event)) in appended.iter().zip(gaps).zip(&group) {
                if let (log::Appended::New(position), Some(gap)) = (appended, gap) {
                    eprintln!(
                        "user {user}: task events seq {}..={} are missing before event {} (entry {position})",
                        gap.from, gap.to, event.event_id
                    );
                }
            }
            group.iter().map(|(i, _)| (*i, Outcome::Success)).collect()
        }
        Err(e) => {
            telemetry::warn("audit append failed; Dapr will deliver again").user(&user).error(e).emit();
            group.iter().map(|(i, _)| (*i, Outcome::Retry)).collect()
        }
    }
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
