//! State keys and reads/writes of `todo-api` through the Dapr state API.
//!
//! Keys (Dapr prefixes them with the app-id): `ledger:{user}` holds the
//! user's [`UserLedger`] (event sequence and index head); `index:{user}:{n}`
//! the sealed index pages; `task:{user}:{id}` a task ([`StoredTask`]);
//! `outbox:{user}:{seq}` an event committed but not yet known to be
//! published; `published:{user}` the seq up to which the user's events were
//! published; `idem:{user}:{key}` the task a client's `Idempotency-Key`
//! created (for 24 hours); `occurrence:{user}:{series}:{n}` the task that is
//! occurrence `n` of a series (kept, see `specs/data-model.md`);
//! `outbox-relay` the users whose outbox the relay job still has to publish
//! (`todo_domain::relay::RelayQueue`).

use dapr_http::{DaprError, StateOp, Versioned};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use todo_domain::{IndexPage, StoredLedger, StoredTask, TaskEvent, TaskId, UserId, UserLedger};

use crate::Ctx;

pub(crate) fn ledger_key(user: &UserId) -> String {
    format!("ledger:{user}")
}

pub(crate) fn index_key(user: &UserId, page: u32) -> String {
    format!("index:{user}:{page}")
}

pub(crate) fn published_key(user: &UserId) -> String {
    format!("published:{user}")
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

/// What every write and list of a user reads first, in one bulk read: the
/// ledger (with its ETag), the published mark and whatever `extra` keys the
/// caller needs (the task to change, an idempotency record).
pub(crate) struct Head {
    pub(crate) ledger: Versioned<UserLedger>,
    /// Events up to this seq were published (`published:{user}`; 0 when absent).
    pub(crate) published: u64,
    extra: Vec<Option<Versioned<Box<RawValue>>>>,
}

impl Head {
    /// The document at `extra[i]`, decoded; `None` when absent.
    pub(crate) fn extra<T: DeserializeOwned>(&self, i: usize) -> Result<Option<Versioned<T>>, DaprError> {
        match self.extra.get(i).and_then(Option::as_ref) {
            None => Ok(None),
            Some(Versioned { value, etag }) => serde_json::from_str(value.get())
                .map(|value| Some(Versioned { value, etag: etag.clone() }))
                .map_err(|e| DaprError::Decode(e.to_string())),
        }
    }
}

/// Reads the user's [`Head`] with `extra` keys. A ledger of the format before
/// the index is migrated first (once, guarded by its ETag).
pub(crate) async fn load_head(ctx: &Ctx, user: &UserId, extra: &[String]) -> Result<Head, DaprError> {
    let mut keys = vec![ledger_key(user), published_key(user)];
    keys.extend_from_slice(extra);
    for _ in 0..crate::MAX_ATTEMPTS {
        let mut found = ctx.dapr.get_bulk::<Box<RawValue>>(&ctx.settings.state_store, &keys).await?.into_iter();
        let (ledger, published) = (found.next().flatten(), found.next().flatten());
        let published = published.map(|p| dapr_http::decode::<u64>(&keys[1], &p.value)).transpose()?.unwrap_or(0);
        let ledger = match ledger {
            None => Versioned { value: UserLedger::default(), etag: None },
            Some(Versioned { value, etag }) => match dapr_http::decode(&keys[0], &value)? {
                StoredLedger::Paged(ledger) => Versioned { value: ledger, etag },
                StoredLedger::Legacy(legacy) => match migrate(ctx, user, &legacy, etag).await {
                    Err(DaprError::Conflict) | Ok(()) => continue,
                    Err(e) => return Err(e),
                },
            },
        };
        return Ok(Head { ledger, published, extra: found.collect() });
    }
    Err(DaprError::Conflict)
}

/// Replaces a ledger that lists every task id by the paged index of the same
/// tasks, in one transaction guarded by the old ledger's ETag.
async fn migrate(ctx: &Ctx, user: &UserId, legacy: &todo_domain::LegacyLedger, etag: Option<String>) -> Result<(), DaprError> {
    let (tasks, _) = load_tasks(ctx, user, &legacy.tasks).await?;
    let (ledger, pages) = legacy.migrate(tasks.into_iter().map(|t| t.task).collect());
    let mut ops: Vec<StateOp> = pages.iter().map(|(n, page)| StateOp::upsert(index_key(user, *n), page, None)).collect();
    ops.push(StateOp::upsert(published_key(user), &legacy.published, None));
    ops.push(put_ledger(user, &ledger, etag));
    ctx.dapr.transact(&ctx.settings.state_store, &ops).await
}

/// The ledger write of a transaction: guarded by the ETag it was read at, or
/// insert-only for a new user, so concurrent writers of one user serialize.
pub(crate) fn put_ledger(user: &UserId, ledger: &UserLedger, etag: Option<String>) -> StateOp {
    match etag {
        Some(etag) => StateOp::upsert(ledger_key(user), ledger, Some(etag)),
        None => StateOp::insert(ledger_key(user), ledger),
    }
}

pub(crate) fn put_task(task: &StoredTask) -> StateOp {
    StateOp::upsert(task_key(&task.user_id, task.id), task, None)
}

/// The write of sealed page `n`: removed once deletes emptied it.
pub(crate) fn put_page(user: &UserId, n: u32, page: &IndexPage) -> StateOp {
    if page.tasks.is_empty() {
        StateOp::Delete { key: index_key(user, n) }
    } else {
        StateOp::upsert(index_key(user, n), page, None)
    }
}

/// Commits `ops`, the updated ledger and `event` (into the outbox) atomically.
pub(crate) async fn commit(ctx: &Ctx, user: &UserId, head: &Head, ops: &[StateOp], event: &TaskEvent) -> Result<(), DaprError> {
    let mut all = ops.to_vec();
    all.push(StateOp::upsert(outbox_key(user, event.seq), event, None));
    all.push(put_ledger(user, &head.ledger.value, head.ledger.etag.clone()));
    ctx.dapr.transact(&ctx.settings.state_store, &all).await
}

/// Sealed index pages `pages` of the user, in that order (`None`: absent).
/// A page that no longer decodes is logged and read as absent.
pub(crate) async fn load_pages(ctx: &Ctx, user: &UserId, pages: &[u32]) -> Result<Vec<Option<IndexPage>>, DaprError> {
    let keys: Vec<String> = pages.iter().map(|n| index_key(user, *n)).collect();
    let found = ctx.dapr.get_bulk_each::<IndexPage>(&ctx.settings.state_store, &keys).await?;
    Ok(found
        .into_iter()
        .map(|item| match item {
            Some(Ok(page)) => Some(page.value),
            Some(Err(bad)) => {
                eprintln!("user {user}: index page {} does not decode, left out: {}", bad.key, bad.error);
                None
            }
            None => None,
        })
        .collect())
}

/// Every summary of the user's index: the sealed pages and the tail.
pub(crate) async fn all_summaries(ctx: &Ctx, user: &UserId, ledger: &UserLedger) -> Result<Vec<todo_domain::TaskSummary>, DaprError> {
    let numbers: Vec<u32> = (0..ledger.sealed).collect();
    let pages = load_pages(ctx, user, &numbers).await?;
    Ok(pages.into_iter().flatten().flat_map(|p| p.tasks).chain(ledger.tail.iter().cloned()).collect())
}

/// One task of the user, with its ETag.
pub(crate) async fn load_task(ctx: &Ctx, user: &UserId, id: TaskId) -> Result<Option<Versioned<StoredTask>>, DaprError> {
    ctx.dapr.get_state(&ctx.settings.state_store, &task_key(user, id)).await
}

/// The user's tasks with the given ids, in that order (missing ones skipped),
/// and the ids of stored tasks that no longer decode (logged, left out), so
/// that one bad document does not make every list of the user fail.
pub(crate) async fn load_tasks(ctx: &Ctx, user: &UserId, ids: &[TaskId]) -> Result<(Vec<StoredTask>, Vec<TaskId>), DaprError> {
    let keys: Vec<String> = ids.iter().map(|id| task_key(user, *id)).collect();
    let found = ctx.dapr.get_bulk_each::<StoredTask>(&ctx.settings.state_store, &keys).await?;
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

/// The sealed page that holds `task`'s summary, when it is not the tail, and
/// the task with its page set. A task stored before the index names no page:
/// it is looked up in the tail, then in every sealed page (once: the write
/// stores the page with the task).
pub(crate) async fn page_of(ctx: &Ctx, user: &UserId, ledger: &UserLedger, task: &mut StoredTask) -> Result<Option<IndexPage>, DaprError> {
    let n = match task.page {
        Some(n) => n,
        None if ledger.tail_holds(task.id) => ledger.sealed,
        None => {
            let numbers: Vec<u32> = (0..ledger.sealed).collect();
            let pages = load_pages(ctx, user, &numbers).await?;
            let found = numbers.into_iter().zip(pages).find(|(_, p)| p.as_ref().is_some_and(|p| p.holds(task.id)));
            let Some((n, page)) = found else { return Ok(None) };
            task.page = Some(n);
            return Ok(page);
        }
    };
    task.page = Some(n);
    if ledger.is_tail(n) {
        return Ok(None);
    }
    Ok(load_pages(ctx, user, &[n]).await?.pop().flatten().or_else(|| Some(IndexPage::default())))
}
