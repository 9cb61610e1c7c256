//! `audit-service`: the per-user, append-only, hash-chained audit log.
//!
//! Keys (prefixed by Dapr with the app-id): `audit:{user}:head` the chain head,
//! `audit:{user}:entry:{position}` the entries, `audit:{user}:seen:{event_id}`
//! the dedupe marks. An append commits all three in one transaction guarded by
//! the head's ETag, so concurrent appends serialize and a redelivered event
//! adds nothing.

use chrono::Utc;
use component_kit::{auth, health, json, Problem, Settings};
use dapr_http::{Dapr, DaprError, StateOp, Versioned};
use spin_sdk::http::{IntoResponse, Params, Request, Response, Router};
use spin_sdk::http_component;
use todo_domain::audit::{self, AuditEntry, AuditedEvent, ChainHead};
use todo_domain::UserId;

const APP_ID: &str = "audit-service";
/// Attempts at an append that loses a race for the chain head.
const MAX_ATTEMPTS: usize = 32;
/// Default and largest page of entries.
const PAGE: u64 = 100;
const MAX_PAGE: u64 = 500;

#[http_component]
async fn handle(req: Request) -> impl IntoResponse {
    let mut router = Router::new();
    router.get("/healthz/audit-service", |_: Request, _: Params| health(APP_ID));
    router.post_async("/internal/audit/task-events", |req, _| receive(req));
    router.post_async("/internal/audit/reminders", |req, _| receive(req));
    router.get_async("/audit/:user_id", |req, params| respond(list(req, params)));
    router.get_async("/audit/:user_id/verify", |req, params| respond(verify(req, params)));
    router.handle_async(req).await
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
            eprintln!("dropping unrecordable event: {e}");
            return json(200, &serde_json::json!({ "status": "DROP" }));
        }
    };
    match record(&dapr, &settings, event).await {
        Ok(()) => json(200, &serde_json::json!({ "status": "SUCCESS" })),
        Err(e) => Problem::from(e).into_response(),
    }
}

async fn record(dapr: &Dapr, settings: &Settings, event: AuditedEvent) -> Result<(), DaprError> {
    let store = &settings.state_store;
    let user = event.user_id.clone();
    let seen = seen_key(&user, &event.event_id);
    for _ in 0..MAX_ATTEMPTS {
        let head: Option<Versioned<ChainHead>> = dapr.get_state(store, &head_key(&user)).await?;
        if dapr.get_state::<u64>(store, &seen).await?.is_some() {
            return Ok(());
        }
        let (etag, head) = match head {
            Some(v) => (v.etag, v.value),
            None => (None, ChainHead::default()),
        };
        let (entry, next) = audit::append(&head, event.clone(), Utc::now());
        let head_op = match etag {
            Some(etag) => StateOp::upsert(head_key(&user), &next, Some(etag)),
            None => StateOp::insert(head_key(&user), &next),
        };
        let ops = [StateOp::insert(&seen, &entry.position), StateOp::insert(entry_key(&user, entry.position), &entry), head_op];
        match dapr.transact(store, &ops).await {
            Err(DaprError::Conflict) => continue,
            done => return done,
        }
    }
    Err(DaprError::Conflict)
}

async fn load_entries(dapr: &Dapr, store: &str, user: &UserId, from: u64, to: u64) -> Result<Vec<AuditEntry>, DaprError> {
    let keys: Vec<String> = (from..to).map(|p| entry_key(user, p)).collect();
    Ok(dapr.get_bulk::<AuditEntry>(store, &keys).await?.into_iter().flatten().map(|v| v.value).collect())
}

fn query_u64(req: &Request, name: &str) -> Result<Option<u64>, Problem> {
    for pair in req.query().split('&') {
        if let Some((k, v)) = pair.split_once('=') {
            if k == name {
                return v.parse().map(Some).map_err(|_| {
                    Problem { field: Some(name.to_owned()), ..Problem::new(400, "Bad Request", format!("`{name}` must be a non-negative integer")) }
                });
            }
        }
    }
    Ok(None)
}

/// `GET /audit/{user_id}?after=<position>&limit=<n>`: entries in chain order.
async fn list(req: Request, params: Params) -> Result<Response, Problem> {
    let (dapr, settings) = (Dapr::from_env(), Settings::from_env());
    let user = auth::user(&req, params.get("user_id").unwrap_or_default(), &dapr, &settings).await?;
    let limit = query_u64(&req, "limit")?.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    let from = query_u64(&req, "after")?.map_or(0, |after| after + 1);
    let head: ChainHead = dapr.get_state(&settings.state_store, &head_key(&user)).await?.map(|v| v.value).unwrap_or_default();
    let to = head.count.min(from.saturating_add(limit));
    let entries = load_entries(&dapr, &settings.state_store, &user, from, to).await?;
    let next = (to < head.count).then(|| (to - 1).to_string());
    Ok(json(200, &serde_json::json!({ "items": entries, "next_cursor": next })))
}

/// `GET /audit/{user_id}/verify`: whether the whole chain is intact.
async fn verify(req: Request, params: Params) -> Result<Response, Problem> {
    let (dapr, settings) = (Dapr::from_env(), Settings::from_env());
    let user = auth::user(&req, params.get("user_id").unwrap_or_default(), &dapr, &settings).await?;
    let head: ChainHead = dapr.get_state(&settings.state_store, &head_key(&user)).await?.map(|v| v.value).unwrap_or_default();
    let mut entries = Vec::with_capacity(head.count as usize);
    let mut from = 0;
    while from < head.count {
        let to = head.count.min(from + MAX_PAGE);
        entries.extend(load_entries(&dapr, &settings.state_store, &user, from, to).await?);
        from = to;
    }
    let mut result = audit::verify(&entries);
    if result.intact && (result.entries != head.count || result.head_hash != head.hash) {
        result.intact = false;
        result.broken_at = Some(result.entries);
    }
    Ok(json(200, &result))
}
