//! "Append once to a per-user log": what audit-service and notify-service
//! share.
//!
//! A log is a head key (with the count of entries), one key per entry, and
//! one dedupe mark per appended id (whose value is the entry's position). An
//! append of a batch of ids commits, in one state transaction guarded by the
//! head's ETag (first-write on the first entry), a mark and an entry for each
//! id not yet in the log, and the new head: one head write per batch, not per
//! event. The head and the marks come in one bulk read. Concurrent appends of one user (a rebalance, a second replica, a
//! read mark) serialize on the head; a loser reads the head and the marks
//! again and retries after a short jittered pause, a few times, then fails
//! with `Conflict` so that Dapr redelivers (no retry storm in the service). A
//! redelivered id finds its mark and adds nothing.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use dapr_http::{decode, Dapr, DaprError, StateOp};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;

/// Attempts at an append that loses a race for the head. Batching leaves
/// one writer per user in the steady state (a user's events come in order on
/// one partition), so a race is rare; past these attempts the entries go back
/// to Dapr (`RETRY`), whose redelivery is the backoff.
pub const MAX_ATTEMPTS: u32 = 6;
/// Backoff after a lost race: a random delay up to `BACKOFF_BASE * 2^attempt`,
/// capped at `BACKOFF_CAP` ("full jitter"), so that losers spread out instead
/// of colliding again.
const BACKOFF_BASE_MS: u64 = 2;
const BACKOFF_CAP_MS: u64 = 50;
/// How long a dedupe mark is kept: 30 days, longer than any copy of a message
/// stays where Dapr could deliver it again (7 days on the topics, 14 in the
/// dead-letter topics, then a replay), see `specs/data-model.md`.
pub const DEDUPE_TTL_SECS: u32 = 30 * 24 * 60 * 60;

/// The keys of one user's log.
pub struct LogKeys<'a> {
    /// The head key.
    pub head: String,
    /// The dedupe mark of an id.
    pub seen: &'a dyn Fn(&str) -> String,
    /// Seconds a mark is kept ([`DEDUPE_TTL_SECS`]); `None` when it is
    /// also an index that must last as long as the entry.
    pub seen_ttl_secs: Option<u32>,
    /// The key of the entry at a position.
    pub entry: &'a dyn Fn(u64) -> String,
}

/// What an append did with one id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// A new entry at this position.
    New(u64),
    /// The id was already in the log (at this position): nothing written.
    Duplicate(u64),
}

/// Appends `ids` once each, in order: `build(head, i)` returns the position,
/// the entry and the new head for `ids[i]` after `head`. It may be called
/// again after a lost race, with a newer head. An id given twice is
/// appended once. Fails with `Conflict` after [`MAX_ATTEMPTS`] lost races,
/// having written nothing.
pub async fn append_batch<H, E>(
    dapr: &Dapr,
    store: &str,
    keys: &LogKeys<'_>,
    ids: &[&str],
    mut build: impl FnMut(&H, usize) -> (u64, E, H),
) -> Result<Vec<Appended>, DaprError>
where
    H: Serialize + DeserializeOwned + Default,
    E: Serialize,
{
    let marks: Vec<String> = ids.iter().map(|id| (keys.seen)(id)).collect();
    // One read: the head (with its ETag) and every mark.
    let read: Vec<String> = std::iter::once(keys.head.clone()).chain(marks.iter().cloned()).collect();
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            backoff(attempt);
        }
        let mut found = dapr.get_bulk::<Box<RawValue>>(store, &read).await?.into_iter().zip(&read);
        let (etag, mut head) = match found.next() {
            Some((Some(v), key)) => (v.etag, decode::<H>(key, &v.value)?),
            _ => (None, H::default()),
        };
        let seen = found.map(|(mark, key)| mark.map(|v| decode::<u64>(key, &v.value)).transpose()).collect::<Result<Vec<_>, _>>()?;
        let mut done: Vec<Appended> = Vec::with_capacity(ids.len());
        let mut ops = Vec::with_capacity(2 * ids.len() + 1);
        for (i, id) in ids.iter().enumerate() {
            let earlier = ids[..i].iter().position(|other| other == id).map(|j| done[j]);
            if let Some(Appended::New(p) | Appended::Duplicate(p)) = earlier {
                done.push(Appended::Duplicate(p));
                continue;
            }
            if let Some(position) = seen[i] {
                done.push(Appended::Duplicate(position));
                continue;
            }
            let (position, entry, next) = build(&head, i);
            let mark = StateOp::insert(&marks[i], &position);
            ops.push(match keys.seen_ttl_secs {
                Some(ttl) => mark.ttl(ttl),
                None => mark,
            });
            ops.push(StateOp::insert((keys.entry)(position), &entry));
            head = next;
            done.push(Appended::New(position));
        }
        if ops.is_empty() {
            return Ok(done);
        }
        ops.push(match etag {
            Some(etag) => StateOp::upsert(&keys.head, &head, Some(etag)),
            None => StateOp::insert(&keys.head, &head),
        });
        match dapr.transact(store, &ops).await {
            Err(DaprError::Conflict) => continue,
            Ok(()) => return Ok(done),
            Err(e) => return Err(e),
        }
    }
    crate::telemetry::warn(format!("append to {} lost {MAX_ATTEMPTS} races; Dapr will redeliver", keys.head)).emit();
    Err(DaprError::Conflict)
}

/// Sleeps a random time up to `min(BACKOFF_CAP, BACKOFF_BASE * 2^attempt)`
/// milliseconds. std's sleep and `RandomState` use the `wasi:clocks` and
/// `wasi:random` imports that the host contract allows; it holds up only this
/// instance's other users of the batch, for a race that batching made rare.
pub fn backoff(attempt: u32) {
    let ceiling = BACKOFF_CAP_MS.min(BACKOFF_BASE_MS << attempt.min(16)).max(1);
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    std::thread::sleep(Duration::from_millis(random % (ceiling + 1)));
}
