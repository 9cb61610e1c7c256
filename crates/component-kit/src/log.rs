//! "Append once to a per-user log": the loop that audit-service and
//! notify-service share.
//!
//! A log is a head key (with the count of entries), one key per entry, and
//! one dedupe mark per appended id (whose value is the entry's position). An
//! append commits the mark, the entry and the new head in one state
//! transaction guarded by the head's ETag (first-write on the first entry),
//! so concurrent appends serialize: a loser reads the head again and retries
//! after a jittered backoff. A redelivered id finds its mark and adds nothing.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use dapr_http::{Dapr, DaprError, StateOp, Versioned};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Attempts at an append that loses a race for the head. With the jittered
/// backoff below, 64 attempts span several seconds of contention: far more
/// than 50 concurrent deliveries for one user need, so a delivery does not
/// fall back on Dapr's few redeliveries.
pub const MAX_ATTEMPTS: u32 = 64;
/// Backoff after a lost race: a random delay up to `BACKOFF_BASE * 2^attempt`,
/// capped at `BACKOFF_CAP` ("full jitter"), so that losers spread out instead
/// of colliding again.
const BACKOFF_BASE_MS: u64 = 2;
const BACKOFF_CAP_MS: u64 = 200;
/// How long a dedupe mark is kept: 30 days, longer than any copy of a message
/// stays where Dapr could deliver it again (7 days on the topics, 14 in the
/// dead-letter topics, then a replay), see `specs/data-model.md`.
pub const DEDUPE_TTL_SECS: u32 = 30 * 24 * 60 * 60;

/// The keys of one user's log.
pub struct LogKeys<'a> {
    /// The head key.
    pub head: String,
    /// The dedupe mark of the id being appended.
    pub seen: String,
    /// Seconds the mark is kept ([`DEDUPE_TTL_SECS`]); `None` when it is
    /// also an index that must last as long as the entry.
    pub seen_ttl_secs: Option<u32>,
    /// The key of the entry at a position.
    pub entry: &'a dyn Fn(u64) -> String,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// A new entry at this position.
    New(u64),
    /// The id was already in the log (at this position): nothing written.
    Duplicate(u64),
}

/// Appends once: `build(head)` returns the new entry's position, the entry
/// and the new head. It may be called again after a lost race, with the
/// newer head. Fails with `Conflict` after [`MAX_ATTEMPTS`] lost races.
pub async fn append_once<H, E>(
    dapr: &Dapr,
    store: &str,
    keys: &LogKeys<'_>,
    mut build: impl FnMut(&H) -> (u64, E, H),
) -> Result<Appended, DaprError>
where
    H: Serialize + DeserializeOwned + Default,
    E: Serialize,
{
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            backoff(attempt);
        }
        let head: Option<Versioned<H>> = dapr.get_state(store, &keys.head).await?;
        if let Some(seen) = dapr.get_state::<u64>(store, &keys.seen).await? {
            return Ok(Appended::Duplicate(seen.value));
        }
        let (etag, head) = match head {
            Some(v) => (v.etag, v.value),
            None => (None, H::default()),
        };
        let (position, entry, next) = build(&head);
        let head_op = match etag {
            Some(etag) => StateOp::upsert(&keys.head, &next, Some(etag)),
            None => StateOp::insert(&keys.head, &next),
        };
        let mark = StateOp::insert(&keys.seen, &position);
        let mark = match keys.seen_ttl_secs {
            Some(ttl) => mark.ttl(ttl),
            None => mark,
        };
        let ops = [mark, StateOp::insert((keys.entry)(position), &entry), head_op];
        match dapr.transact(store, &ops).await {
            Err(DaprError::Conflict) => continue,
            Ok(()) => return Ok(Appended::New(position)),
            Err(e) => return Err(e),
        }
    }
    crate::telemetry::warn(format!("append to {} lost {MAX_ATTEMPTS} races; Dapr will redeliver", keys.head)).emit();
    Err(DaprError::Conflict)
}

/// Sleeps a random time up to `min(BACKOFF_CAP, BACKOFF_BASE * 2^attempt)`
/// milliseconds. A Spin instance serves one request, so blocking is harmless;
/// std's sleep and `RandomState` use the `wasi:clocks` and `wasi:random`
/// imports that the host contract allows.
pub fn backoff(attempt: u32) {
    let ceiling = BACKOFF_CAP_MS.min(BACKOFF_BASE_MS << attempt.min(16)).max(1);
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    std::thread::sleep(Duration::from_millis(random % (ceiling + 1)));
}
