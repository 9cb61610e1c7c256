//! Publishing the transactional outbox.
//!
//! After a commit, the request publishes every event of the user that is not
//! yet known to be published, in `seq` order, then records that in the ledger.
//! An event left behind (publish failed, instance died) goes out with the
//! user's next request; consumers dedupe on the event id, so a second publish
//! of the same event is harmless.

use dapr_http::{DaprError, PublishMeta, StateOp};
use todo_domain::event::TASK_EVENTS_TOPIC;
use todo_domain::{TaskEvent, UserId, UserLedger};

use crate::store::{load_ledger, outbox_key, put_ledger};
use crate::{Ctx, APP_ID, MAX_ATTEMPTS};

/// Publishes the user's pending events; failures are logged and left pending.
pub(crate) async fn flush(ctx: &Ctx, user: &UserId, ledger: &UserLedger) {
    if let Err(e) = try_flush(ctx, user, ledger).await {
        eprintln!("outbox of {user} left pending: {e}");
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
