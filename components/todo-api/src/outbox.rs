//! Publishing the transactional outbox.
//!
//! After a commit, the request publishes every event of the user that is not
//! yet known to be published, in `seq` order (the one it just committed from
//! memory, any older ones from the outbox), then moves the user's published
//! mark and drops those outbox entries in one transaction.
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
use todo_domain::{TaskEvent, UserId};

use crate::store::{load_head, outbox_key, published_key, Head};
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

/// Publishes the user's pending events as of `head` (plus `fresh`, the event
/// just committed on top of it); when that fails, hands them to the relay.
pub(crate) async fn flush(ctx: &Ctx, user: &UserId, head: &Head, fresh: Option<&TaskEvent>) {
    if let Err(e) = try_flush(ctx, user, head, fresh).await {
        telemetry::warn("outbox left pending; the relay job takes over").user(user).error(e).emit();
        if let Err(e) = enlist(ctx, user).await {
            telemetry::error("outbox waits for the user's next request: the relay cannot be scheduled").user(user).error(e).emit();
        }
    }
}

async fn try_flush(ctx: &Ctx, user: &UserId, head: &Head, fresh: Option<&TaskEvent>) -> Result<(), DaprError> {
    let pending = head.ledger.value.unpublished(head.published);
    if pending.is_empty() {
        return Ok(());
    }
    // The event just committed is in memory; only older ones (a publish that
    // failed before) are read from the outbox.
    let stored: Vec<u64> = pending.clone().filter(|seq| fresh.is_none_or(|e| e.seq != *seq)).collect();
    let keys: Vec<String> = stored.iter().map(|seq| outbox_key(user, *seq)).collect();
    let mut events = ctx.dapr.get_bulk_each::<TaskEvent>(&ctx.settings.state_store, &keys).await?.into_iter();
    let mut published = None;
    for seq in pending {
        let item = match fresh {
            Some(event) if event.seq == seq => Some(Ok(Versioned { value: event.clone(), etag: None })),
            _ => events.next().flatten(),
        };
        match item {
            Some(Ok(event)) => publish(ctx, &event.value).await?,
            // It can never be published: skip it rather than hold back every
            // later event of the user; consumers report the gap in `seq`.
            Some(Err(bad)) => eprintln!("outbox of {user}: event {seq} does not decode, skipped: {}", bad.error),
            // Published and dropped by a concurrent flush.
            None => continue,
        }
        published = Some(seq);
    }
    match published {
        Some(seq) => mark_published(ctx, user, head.published, seq).await,
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

/// Moves the user's published mark from `from` to `seq` and drops those
/// outbox entries, in one unguarded transaction: a concurrent flush that
/// moves the mark back only makes a later flush look for entries that are
/// gone (skipped), never publish one twice or skip a pending one.
async fn mark_published(ctx: &Ctx, user: &UserId, from: u64, seq: u64) -> Result<(), DaprError> {
    let mut ops: Vec<StateOp> = (from + 1..=seq).map(|s| StateOp::Delete { key: outbox_key(user, s) }).collect();
    ops.push(StateOp::upsert(published_key(user), &seq, None));
    ctx.dapr.transact(&ctx.settings.state_store, &ops).await
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
            let head = load_head(ctx, &user, &[]).await?;
            match try_flush(ctx, &user, &head, None).await {
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
