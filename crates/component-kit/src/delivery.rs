//! Deliveries from Dapr (pub/sub messages in bulk, job callbacks): who may
//! make them, how to read them, how to answer.
//!
//! Every subscription is a bulk subscription (`bulkSubscribe` in its
//! declarative spec): Dapr posts `{"entries": [{"entryId", "event", ...}], ...}`
//! with each `event` a CloudEvent, and takes back one status per entry,
//! `{"statuses": [{"entryId", "status"}]}`. `SUCCESS` acknowledges an entry,
//! `DROP` sends it to the dead-letter topic, `RETRY` (or no status) makes
//! Dapr deliver it again, alone with the other failed entries of the batch, as
//! its Resiliency policy says.

use std::collections::BTreeMap;
use std::future::Future;

use dapr_http::Dapr;
use serde::Deserialize;
use serde_json::value::RawValue;
use spin_sdk::http::{Request, Response};
use todo_domain::{TaskEvent, UserId};

use crate::{auth, json, Problem, Settings};

/// `200 {"status": <s>}`: a job callback's outcome.
pub fn status(s: &str) -> Response {
    json(200, &serde_json::json!({ "status": s }))
}

/// What became of one entry of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded, or already recorded (a duplicate).
    Success,
    /// A transient failure: Dapr delivers it again.
    Retry,
    /// It can never be handled: Dapr sends it to the dead-letter topic.
    Drop,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "SUCCESS",
            Outcome::Retry => "RETRY",
            Outcome::Drop => "DROP",
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "entryId")]
    entry_id: String,
    event: Box<RawValue>,
}

/// A bulk delivery, each entry read by the consumer's parser: `None` where an
/// entry cannot be read (answered `DROP`).
pub struct Batch<T> {
    ids: Vec<String>,
    items: Vec<Option<T>>,
}

impl<T> Batch<T> {
    /// Reads a bulk delivery of the sidecar. `Err` is the answer to give:
    /// 401 when the caller is not the sidecar, 400 when the body is no bulk
    /// delivery. `parse` reads one entry's CloudEvent (its JSON text); an entry
    /// it refuses is logged and dropped.
    pub async fn receive<E: std::fmt::Display>(
        req: &Request,
        dapr: &Dapr,
        settings: &Settings,
        parse: impl Fn(&[u8]) -> Result<T, E>,
    ) -> Result<Batch<T>, Response> {
        auth::dapr_only(req, dapr, settings).await.map_err(Problem::into_response)?;
        let envelope: Envelope = serde_json::from_slice(req.body()).map_err(|e| {
            crate::Problem::new(400, "Bad Request", format!("not a bulk delivery ({{\"entries\": [...]}}): {e}")).into_response()
        })?;
        let (ids, items) = envelope
            .entries
            .into_iter()
            .map(|entry| {
                let item = parse(entry.event.get().as_bytes())
                    .map_err(|e| crate::telemetry::warn("dropping an event that cannot be read").error(e).emit())
                    .ok();
                (entry.entry_id, item)
            })
            .unzip();
        Ok(Batch { ids, items })
    }

    /// The readable entries grouped by `key` (the user), each group in
    /// delivery order (which is the user's partition order), with the index
    /// of each entry for [`Batch::answer`].
    pub fn groups<K: Ord>(&self, key: impl Fn(&T) -> K) -> Vec<Vec<(usize, &T)>> {
        let mut groups: BTreeMap<K, Vec<(usize, &T)>> = BTreeMap::new();
        for (i, item) in self.items.iter().enumerate() {
            if let Some(item) = item {
                groups.entry(key(item)).or_default().push((i, item));
            }
        }
        groups.into_values().collect()
    }

    /// `200 {"statuses": [...]}`: `DROP` for unreadable entries, the given
    /// outcome for the others, `RETRY` for any left without one.
    pub fn answer(&self, outcomes: impl IntoIterator<Item = (usize, Outcome)>) -> Response {
        let mut statuses: Vec<Outcome> =
            self.items.iter().map(|item| if item.is_some() { Outcome::Retry } else { Outcome::Drop }).collect();
        for (i, outcome) in outcomes {
            statuses[i] = outcome;
        }
        let statuses: Vec<serde_json::Value> =
            self.ids.iter().zip(statuses).map(|(id, outcome)| serde_json::json!({ "entryId": id, "status": outcome.as_str() })).collect();
        json(200, &serde_json::json!({ "statuses": statuses }))
    }
}

/// Handles every group at once (the users of a batch are independent) and
/// collects the outcomes.
pub async fn each_group<'a, T: 'a, Fut>(
    groups: Vec<Vec<(usize, &'a T)>>,
    handle: impl Fn(Vec<(usize, &'a T)>) -> Fut,
) -> Vec<(usize, Outcome)>
where
    Fut: Future<Output = Vec<(usize, Outcome)>>,
{
    futures::future::join_all(groups.into_iter().map(handle)).await.into_iter().flatten().collect()
}

/// Handles a user's entries one after the other, in order: after the first
/// that does not succeed, the rest are `RETRY` too, so that a redelivery
/// keeps the user's order.
pub async fn in_order<'a, T: 'a, Fut>(group: Vec<(usize, &'a T)>, handle: impl Fn(&'a T) -> Fut) -> Vec<(usize, Outcome)>
where
    Fut: Future<Output = Outcome>,
{
    let mut outcomes = Vec::with_capacity(group.len());
    let mut failed = false;
    for (i, item) in group {
        let outcome = if failed { Outcome::Retry } else { handle(item).await };
        failed |= outcome == Outcome::Retry;
        outcomes.push((i, outcome));
    }
    outcomes
}

/// The user of a task event, for [`Batch::groups`].
pub fn task_event_user(event: &TaskEvent) -> UserId {
    event.user_id.clone()
}

/// The `data` of a task-event CloudEvent, for [`Batch::receive`].
pub fn task_event(cloudevent: &[u8]) -> Result<TaskEvent, String> {
    #[derive(Deserialize)]
    struct CloudEvent {
        data: TaskEvent,
    }
    serde_json::from_slice::<CloudEvent>(cloudevent).map(|ce| ce.data).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(items: Vec<Option<(&'static str, u32)>>) -> Batch<(&'static str, u32)> {
        Batch { ids: (0..items.len()).map(|i| format!("e{i}")).collect(), items }
    }

    fn statuses(response: &Response) -> Vec<(String, String)> {
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        body["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["entryId"].as_str().unwrap().to_owned(), s["status"].as_str().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn groups_keep_delivery_order_per_key_and_skip_unreadable_entries() {
        let b = batch(vec![Some(("bob", 1)), Some(("alice", 1)), None, Some(("bob", 2))]);
        let groups: Vec<Vec<usize>> = b.groups(|item| item.0).into_iter().map(|g| g.into_iter().map(|(i, _)| i).collect()).collect();
        assert_eq!(groups, vec![vec![1], vec![0, 3]]);
    }

    #[test]
    fn every_entry_gets_a_status_unreadable_drop_and_unanswered_retry() {
        let b = batch(vec![Some(("bob", 1)), None, Some(("bob", 2))]);
        let answer = b.answer([(0, Outcome::Success)]);
        assert_eq!(*answer.status(), 200);
        let expected = [("e0", "SUCCESS"), ("e1", "DROP"), ("e2", "RETRY")];
        assert_eq!(statuses(&answer), expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    }

    #[test]
    fn after_a_retry_the_rest_of_a_users_entries_retry_too() {
        let items = [("u", 1), ("u", 2), ("u", 3), ("u", 4)];
        let group: Vec<(usize, &(&str, u32))> = items.iter().enumerate().collect();
        let outcome = |item: &(&str, u32)| match item.1 {
            1 => Outcome::Drop,
            3 => Outcome::Retry,
            _ => Outcome::Success,
        };
        let handled = futures::executor::block_on(in_order(group, |item| std::future::ready(outcome(item))));
        assert_eq!(handled, vec![(0, Outcome::Drop), (1, Outcome::Success), (2, Outcome::Retry), (3, Outcome::Retry)]);
    }
}
