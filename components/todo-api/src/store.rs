//! State keys and reads/writes of `todo-api` through the Dapr state API.
//!
//! Keys (Dapr prefixes them with the app-id): `ledger:{user}` holds the user's
//! [`UserLedger`]; `task:{user}:{id}` a task; `outbox:{user}:{seq}` an event
//! committed but not yet known to be published; `idem:{user}:{key}` the task a
//! client's `Idempotency-Key` created (for 24 hours); `occurrence:{user}:{series}:{n}`
//! the task that is occurrence `n` of a series (kept, see `specs/data-model.md`);
//! `outbox-relay` the users whose outbox the relay job still has to publish
//! (`todo_domain::relay::RelayQueue`).

use dapr_http::{DaprError, StateOp, Versioned};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use todo_domain::{Task, TaskEvent, TaskId, UserId, UserLedger};

use crate::Ctx;

pub(crate) fn ledger_key(user: &UserId) -> String {
    format!("ledger:{user}")
}

pub(crate) fn task_key(user: &UserId, id: TaskId) -> String {
    format!("task:{user}:{id}")
}

/// How long a client's `Idempotency-Key` is remembered: a day, as long as a
/// client keeps retrying a lost response (`specs/data-model.md`).
pub(crate) const IDEMPOTENCY_TTL_SECS: u32 = 24 * 60 * 60;

/// The record of a client's `Idempotency-Key`; its own namespace, apart from
/// the occurrence records, so no client key can name an occurrence.
pub(crate) fn idempotency_key(user: &UserId, key: &str) -> String {
    format!("idem:{user}:{key}")
}

/// The record of occurrence `occurrence` of `series`.
pub(crate) fn occurrence_key(user: &UserId, series: TaskId, occurrence: u32) -> String {
    format!("occurrence:{user}:{series}:{occurrence}")
}

/// What an `Idempotency-Key` created, and a fingerprint of the body it came with.
#[derive(Serialize, Deserialize)]
pub(crate) struct IdempotencyRecord {
    pub(crate) task_id: TaskId,
    pub(crate) fingerprint: String,
}

/// SHA-256 of a request body, to tell a retry from a reuse of the key.
pub(crate) fn fingerprint(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

pub(crate) fn outbox_key(user: &UserId, seq: u64) -> String {
    format!("outbox:{user}:{seq}")
}

/// The user's ledger and its ETag (an empty ledger without ETag for a new user).
pub(crate) async fn load_ledger(ctx: &Ctx, user: &UserId) -> Result<Versioned<UserLedger>, DaprError> {
    Ok(ctx
        .dapr
        .get_state(&ctx.settings.state_store, &ledger_key(user))
        .await?
        .unwrap_or(Versioned { value: UserLedger::default(), etag: None }))
}

/// The ledger write of a transaction: guarded by the ETag it was read at, or
/// insert-only for a new user, so concurrent writers of one user serialize.
pub(crate) fn put_ledger(user: &UserId, ledger: &UserLedger, etag: Option<String>) -> StateOp {
    match etag {
        Some(etag) => StateOp::upsert(ledger_key(user), ledger, Some(etag)),
        None => StateOp::insert(ledger_key(user), ledger),
    }
}

pub(crate) fn put_task(task: &Task) -> StateOp {
    StateOp::upsert(task_key(&task.user_id, task.id), task, None)
}

/// Commits `ops`, the updated ledger and `event` (into the outbox) atomically.
pub(crate) async fn commit(
    ctx: &Ctx,
    user: &UserId,
    ledger: &Versioned<UserLedger>,
    ops: &[StateOp],
    event: &TaskEvent,
) -> Result<(), DaprError> {
    let mut all = ops.to_vec();
    all.push(StateOp::upsert(outbox_key(user, event.seq), event, None));
    all.push(put_ledger(user, &ledger.value, ledger.etag.clone()));
    ctx.dapr.transact(&ctx.settings.state_store, &all).await
}

/// One task of the user, with its ETag.
pub(crate) async fn load_task(ctx: &Ctx, user: &UserId, id: TaskId) -> Result<Option<Versioned<Task>>, DaprError> {
    ctx.dapr.get_state(&ctx.settings.state_store, &task_key(user, id)).await
}

/// The user's tasks with the given ids, in that order (missing ones skipped),
/// and the ids of stored tasks that no longer decode (logged, left out), so
/// that one bad document does not make every list of the user fail.
pub(crate) async fn load_tasks(ctx: &Ctx, user: &UserId, ids: &[TaskId]) -> Result<(Vec<Task>, Vec<TaskId>), DaprError> {
    let keys: Vec<String> = ids.iter().map(|id| task_key(user, *id)).collect();
    let found = ctx.dapr.get_bulk_each::<Task>(&ctx.settings.state_store, &keys).await?;
    let (mut tasks, mut unreadable) = (Vec::with_capacity(ids.len()), Vec::new());
    for (id, item) in ids.iter().zip(found) {
        match item {
            Some(Ok(task)) => tasks.push(task.value),
            Some(Err(bad)) => {
                eprintln!("user {user}: stored task {id} does not decode, left out: {}", bad.error);
                unreadable.push(*id);
            }
            None => {}
        }
    }
    Ok((tasks, unreadable))
}
