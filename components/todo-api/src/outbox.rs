//! Publishing the transactional outbox.
//!
//! After a commit, the request publishes every event of the user that is not
//! yet known to be published, in `seq` order, then records that in the ledger.
//! When that publish fails, the user joins the relay queue (key
//! `outbox-relay`) and the Dapr job `outbox-relay` is scheduled on this app's
//! own sidecar: its callback `POST /job/outbox-relay` publishes the queued
//! users' outboxes without any further request, retried by the scheduler
//! while the broker is away. Consumers dedupe on the event id, so a second
//! publish of the same event is harmless.

use chrono::{SecondsFormat, Utc};
use component_kit::{auth, delivery, telemetry, Problem};
use dapr_http::{DaprError, JobRetry, PublishMeta, StateOp, Versioned};
use spin_sdk::http::{Params, Request, Response};
use todo_domain::event::TASK_EVENTS_TOPIC;
use todo_domain::relay::RelayQueue;
use todo_domain::{TaskEvent, UserId, UserLedger};

use crate::store::{load_ledger, outbox_key, put_ledger};
use crate::{Ctx, APP_ID, MAX_ATTEMPTS};

/// State key of the relay queue, and name of the relay job.
pub(crate) const RELAY: &str = "outbox-relay";
/// The relay job fires this long after the failed publish.
const RELAY_DELAY_MS: i64 = 1000;
/// A relay run that leaves users waiting fails, and the scheduler runs it
/// again every 2 s for 30 minutes; after that, the user's next request (or
/// the next failed publish) takes over.
const RELAY_RETRY: JobRetry = JobRetry { interval_secs: 2, max_retries: 900 };
/// Users one relay run publishes at most; the rest wait for the next run.
const RELAY_BATCH: usize = 50;

/// Publishes the user's pending events; when that fails, hands them to the relay.
pub(crate) async fn flush(ctx: &Ctx, user: &UserId, ledger: &UserLedger) {
    if let Err(e) = try_flush(ctx, user, ledger).await {
        telemetry::warn("outbox left pending; the relay job takes over").user(user).error(e).emit();
        if let Err(e) = enlist(ctx, user).await {
            telemetry::error("outbox waits for the user's next request: the relay cannot be scheduled").user(user).error(e).emit();
        }
    }
}

async fn try_flush(ctx: &Ctx, user: &UserId, ledger: &UserLedger) -> Result<(), DaprError> {
    let pending = ledger.unpublished();
    if pending.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = pending.clone().map(|seq| outbox_key(user, seq)).collect();
    let events = ctx.dapr.get_bulk_each::<TaskEvent>(&ctx.settings.state_store, &keys).await?;
    let mut published = None;
    for (seq, item) in pending.zip(events) {
        match item {
            Some(Ok(event)) => publish(ctx, &event.value).await?,
            // It can never be published: skip it rather than hold back every
            // later event of the user; consumers report the gap in `seq`.
            Some(Err(bad)) => eprintln!("outbox of {user}: event {seq} does not decode, skipped: {}", bad.error),
            None => continue,
        }
        published = Some(seq);
    }
    match published {
        Some(seq) => mark_published(ctx, user, seq).await,
        None => Ok(()),
    }
}

async fn publish(ctx: &Ctx, event: &TaskEvent) -> Result<(), DaprError> {
    let id = event.event_id.to_string();
    let subject = event.task.id.to_string();
    let meta = PublishMeta {
        id: &id,
        event_type: event.event_type.cloudevent_type(),
        source: APP_ID,
        subject: &subject,
        partition_key: event.user_id.as_str(),
    };
    ctx.dapr.publish(&ctx.settings.pubsub, TASK_EVENTS_TOPIC, event, &meta).await
}

/// Moves the ledger's `published` mark to `seq` and drops those outbox entries.
///
/// Reads the ledger afresh: a transaction does not return the new ETag.
async fn mark_published(ctx: &Ctx, user: &UserId, seq: u64) -> Result<(), DaprError> {
    for _ in 0..MAX_ATTEMPTS {
        let mut ledger = load_ledger(ctx, user).await?;
        let from = ledger.value.published + 1;
        if from > seq {
            return Ok(());
        }
        ledger.value.mark_published(seq);
        let mut ops: Vec<StateOp> = (from..=seq).map(|s| StateOp::Delete { key: outbox_key(user, s) }).collect();
        ops.push(put_ledger(user, &ledger.value, ledger.etag.clone()));
        match ctx.dapr.transact(&ctx.settings.state_store, &ops).await {
            Err(DaprError::Conflict) => continue,
            done => return done,
        }
    }
    Err(DaprError::Conflict)
}

/// Puts `user` in the relay queue and (re)schedules the relay job.
async fn enlist(ctx: &Ctx, user: &UserId) -> Result<(), DaprError> {
    let store = &ctx.settings.state_store;
    for _ in 0..MAX_ATTEMPTS {
        let (mut queue, etag) = load_queue(ctx).await?;
        if !queue.enlist(user) {
            break;
        }
        match ctx.dapr.transact(store, &[write_queue(&queue, etag)]).await {
            Err(DaprError::Conflict) => continue,
            Err(e) => return Err(e),
            Ok(()) => break,
        }
    }
    let due = (Utc::now() + chrono::Duration::milliseconds(RELAY_DELAY_MS)).to_rfc3339_opts(SecondsFormat::Millis, true);
    ctx.dapr.schedule_job(RELAY, &due, &serde_json::json!({}), true, RELAY_RETRY).await
}

async fn load_queue(ctx: &Ctx) -> Result<(RelayQueue, Option<String>), DaprError> {
    let stored: Option<Versioned<RelayQueue>> = ctx.dapr.get_state(&ctx.settings.state_store, RELAY).await?;
    Ok(stored.map(|v| (v.value, v.etag)).unwrap_or_default())
}

fn write_queue(queue: &RelayQueue, etag: Option<String>) -> StateOp {
    match etag {
        Some(etag) => StateOp::upsert(RELAY, queue, Some(etag)),
        None => StateOp::insert(RELAY, queue),
    }
}

/// `POST /job/outbox-relay` (Dapr only): the relay job's callback. 2xx when
/// no user waits any more; 503 otherwise, so that the scheduler runs it again.
pub(crate) async fn relay_job(req: Request, _: Params) -> Response {
    let ctx = Ctx::new();
    if let Err(problem) = auth::dapr_only(&req, &ctx.dapr, &ctx.settings).await {
        return problem.into_response();
    }
    match relay(&ctx).await {
        Ok(0) => delivery::status("SUCCESS"),
        Ok(waiting) => Problem::unavailable(format!("{waiting} users still wait for their events to be published")).into_response(),
        Err(e) => Problem::from(e).into_response(),
    }
}

/// Publishes the outboxes of (at most [`RELAY_BATCH`]) queued users, each in
/// `seq` order, and removes those that succeeded; returns how many still wait.
async fn relay(ctx: &Ctx) -> Result<usize, DaprError> {
    for _ in 0..MAX_ATTEMPTS {
        let (mut queue, etag) = load_queue(ctx).await?;
        if queue.is_empty() {
            return Ok(0);
        }
        let mut flushed = Vec::new();
        for user in queue.batch(RELAY_BATCH) {
            let ledger = load_ledger(ctx, &user).await?;
            match try_flush(ctx, &user, &ledger.value).await {
                Ok(()) => flushed.push(user),
                Err(e) => telemetry::warn("relay: outbox still pending").user(&user).error(e).emit(),
            }
        }
        queue.done(&flushed);
        // A user enlisted meanwhile changes the ETag: read again (flushing twice is harmless).
        match ctx.dapr.transact(&ctx.settings.state_store, &[write_queue(&queue, etag)]).await {
            Err(DaprError::Conflict) => continue,
            Err(e) => return Err(e),
            Ok(()) => return Ok(queue.len()),
        }
    }
    Err(DaprError::Conflict)
}
