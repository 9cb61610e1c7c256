//! The per-user task index: compact summaries of a user's tasks in pages of
//! [`PAGE_SIZE`], so that a write touches the head and one page, and a list
//! reads only the pages it needs.
//!
//! Pages hold tasks in creation order: page `n` (`index:{user}:{n}`) is
//! sealed and never grows again; the open page, the tail, lives in the head
//! ([`crate::UserLedger`]) as page number `sealed`. A task keeps its page for
//! life ([`StoredTask::page`]), so an update or a delete finds its summary
//! without a search. Since `created_at` strictly increases per user, the
//! default list (newest first) reads the tail, then sealed pages downwards,
//! and stops as soon as it has a full page; any other sort, and `GET /tags`,
//! reads every summary, never a task document.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, DurationRound, Utc};
use serde::{Deserialize, Serialize};

use crate::query::{after_cursor, matches, page, ListQuery, Order, Sort};
use crate::{Priority, Task, TaskId};

/// Summaries per page; the tail is sealed when it holds this many.
pub const PAGE_SIZE: usize = 64;
/// A tail whose summaries weigh more than this many bytes (long descriptions)
/// is sealed before the next create, so that the head stays small.
pub const PAGE_BYTES: usize = 16 * 1024;
/// How many sealed pages a list in the default sort reads first. Later rounds
/// read as many as the hits so far say the page still needs (half as many
/// again, for safety), at most four times as many as read so far (hits are not
/// spread evenly: the newest tasks may all miss a filter).
const FIRST_BATCH: usize = 2;

/// What a list filters and sorts on, for one task: lowercased text, no
/// reminders or recurrence. Only [`TaskSummary::of`] makes one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// The task's id.
    #[serde(rename = "i")]
    pub id: TaskId,
    /// The title, lowercased (for text search and the title sort).
    #[serde(rename = "t")]
    pub(crate) title: String,
    /// The description, lowercased (for text search).
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(rename = "p", default, skip_serializing_if = "is_default")]
    pub(crate) priority: Priority,
    /// The tags (already normalized, lowercase).
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) tags: Vec<String>,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none", with = "chrono::serde::ts_microseconds_option")]
    pub(crate) due_at: Option<DateTime<Utc>>,
    #[serde(rename = "c", default, skip_serializing_if = "is_default")]
    pub(crate) completed: bool,
    #[serde(rename = "a", with = "chrono::serde::ts_microseconds")]
    pub(crate) created_at: DateTime<Utc>,
    #[serde(rename = "m", with = "chrono::serde::ts_microseconds")]
    pub(crate) updated_at: DateTime<Utc>,
}

/// `at` to the microsecond: what a summary stores, so that one read back equals the one made.
fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(chrono::TimeDelta::microseconds(1)).unwrap_or(at)
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl TaskSummary {
    /// The summary of `task`.
    pub fn of(task: &Task) -> Self {
        TaskSummary {
            id: task.id,
            title: task.title.as_str().to_lowercase(),
            description: task.description.as_ref().map(|d| d.as_str().to_lowercase()),
            priority: task.priority,
            tags: task.tags.as_slice().iter().map(|t| t.as_str().to_owned()).collect(),
            due_at: task.due_at.map(micros),
            completed: task.completed,
            created_at: micros(task.created_at),
            updated_at: micros(task.updated_at),
        }
    }

    /// When the task was created, to the microsecond (as stored).
    pub(crate) fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// Roughly how many bytes it takes stored.
    fn weight(&self) -> usize {
        100 + self.title.len() + self.description.as_ref().map_or(0, String::len) + self.tags.iter().map(|t| t.len() + 3).sum::<usize>()
    }
}

/// A sealed page of the index (`index:{user}:{n}`): summaries, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPage {
    /// The summaries.
    pub tasks: Vec<TaskSummary>,
}

/// A task as stored (`task:{user}:{id}`): the task and the number of the
/// index page that holds its summary (absent in tasks stored before the index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTask {
    /// The task.
    #[serde(flatten)]
    pub task: Task,
    /// Its index page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
}

impl std::ops::Deref for StoredTask {
    type Target = Task;
    fn deref(&self) -> &Task {
        &self.task
    }
}

/// Replaces the summary of `task` in `summaries` (or adds it, healing an
/// index that lost it).
pub(crate) fn put(summaries: &mut Vec<TaskSummary>, task: &Task) {
    let summary = TaskSummary::of(task);
    match summaries.iter_mut().find(|s| s.id == task.id) {
        Some(slot) => *slot = summary,
        None => summaries.push(summary),
    }
}

/// Whether the tail is full: it is sealed before the next task joins.
pub(crate) fn is_full(tail: &[TaskSummary]) -> bool {
    tail.len() >= PAGE_SIZE || tail.iter().map(TaskSummary::weight).sum::<usize>() >= PAGE_BYTES
}

/// Every tag of `summaries` with the number of tasks that carry it.
pub fn tag_counts<'a>(summaries: impl IntoIterator<Item = &'a TaskSummary>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for tag in summaries.into_iter().flat_map(|s| &s.tags) {
        *counts.entry(tag.clone()).or_default() += 1;
    }
    counts
}

/// One list request over the index: which pages to read, in which order,
/// and when to stop. Feed it the pages it asks for, then [`Scan::finish`].
#[derive(Debug)]
pub struct Scan<'q> {
    query: &'q ListQuery,
    now: DateTime<Utc>,
    /// Page numbers still to visit, in order; `tail_no` is the tail.
    todo: VecDeque<u32>,
    tail_no: u32,
    tail: Vec<TaskSummary>,
    rounds: usize,
    found: Vec<(u32, TaskSummary)>,
    /// Matches after the cursor so far (for the early stop).
    hits: usize,
    /// Summaries and sealed pages read so far (for the size of the next round).
    scanned: usize,
    pages: usize,
}

impl<'q> Scan<'q> {
    /// A scan of the index whose head is `ledger`, for `query` at `now`.
    pub fn new(query: &'q ListQuery, ledger: &crate::UserLedger, now: DateTime<Utc>) -> Self {
        let tail_no = ledger.sealed;
        let all = 0..=tail_no;
        let todo: VecDeque<u32> = match (query.sort(), query.order(), query.cursor_page().map(|p| p.min(tail_no))) {
            (Sort::Created, Order::Desc, hint) => all.rev().filter(|n| hint.is_none_or(|p| *n <= p)).collect(),
            (Sort::Created, Order::Asc, hint) => all.filter(|n| hint.is_none_or(|p| *n >= p)).collect(),
            _ => all.collect(),
        };
        let mut scan =
            Scan { query, now, todo, tail_no, tail: ledger.tail.clone(), rounds: 0, found: Vec::new(), hits: 0, scanned: 0, pages: 0 };
        scan.take_tail_if_next();
        scan
    }

    /// The sealed pages to read next (empty: done). The default sort asks
    /// for a few pages at a time and stops once it has a full page.
    pub fn next_batch(&mut self) -> Vec<u32> {
        if self.is_done() {
            self.todo.clear();
            return Vec::new();
        }
        let size = if self.query.sort() == Sort::Created { self.round_size() } else { usize::MAX };
        self.rounds += 1;
        let mut batch = Vec::new();
        while batch.len() < size {
            match self.todo.front() {
                Some(&n) if n != self.tail_no => {
                    batch.push(n);
                    self.todo.pop_front();
                }
                // The tail is in the head: visiting it needs no read.
                Some(_) if batch.is_empty() => self.take_tail_if_next(),
                _ => break,
            }
        }
        batch
    }

    /// How many sealed pages the next round of a default-sort scan reads.
    fn round_size(&self) -> usize {
        let need = (self.query.limit() + 1).saturating_sub(self.hits);
        let cap = (self.pages * 4).max(FIRST_BATCH * 4);
        match (self.rounds, self.hits) {
            (0, _) => FIRST_BATCH,
            (_, 0) => cap,
            // Hits per summary so far predict how many summaries the rest needs.
            (_, hits) => ((need * self.scanned * 3 / (2 * hits * PAGE_SIZE)).max(1) + 1).min(cap),
        }
    }

    /// Adds sealed page `n` as read (`None`: it does not exist, e.g. emptied by deletes).
    pub fn feed(&mut self, n: u32, page: Option<IndexPage>) {
        self.pages += 1;
        for summary in page.map(|p| p.tasks).unwrap_or_default() {
            self.add(n, summary);
        }
        if self.todo.front() == Some(&self.tail_no) {
            self.take_tail_if_next();
        }
    }

    /// The ids of the page's tasks, in list order, and the next page's cursor.
    pub fn finish(self) -> (Vec<TaskId>, Option<String>) {
        page(self.found, self.query, self.now)
    }

    fn take_tail_if_next(&mut self) {
        if self.todo.front() == Some(&self.tail_no) {
            self.todo.pop_front();
            for summary in std::mem::take(&mut self.tail) {
                self.add(self.tail_no, summary);
            }
        }
    }

    fn add(&mut self, n: u32, summary: TaskSummary) {
        self.scanned += 1;
        if matches(&summary, self.query.filter(), self.now) {
            if after_cursor(self.query, &summary) {
                self.hits += 1;
            }
            self.found.push((n, summary));
        }
    }

    /// Pages are in creation order, so in the default sort every page not yet
    /// read lies after what was found: more than a page of hits is enough.
    fn is_done(&self) -> bool {
        self.todo.is_empty() || (self.query.sort() == Sort::Created && self.hits > self.query.limit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewTask, TaskPatch, Title, UserId, UserLedger};
    use chrono::TimeDelta;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// A user's index built through the ledger: the head and the sealed pages.
    fn index(specs: &[(u8, bool)]) -> (UserLedger, HashMap<u32, IndexPage>) {
        let user = UserId::parse("alice").unwrap();
        let (mut ledger, mut pages) = (UserLedger::default(), HashMap::new());
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        for (i, (priority, done)) in specs.iter().enumerate() {
            let body = serde_json::json!({ "title": format!("T{} {}", i % 5, if i % 3 == 0 { "invoice" } else { "chore" }),
                "priority": Priority::ALL[usize::from(*priority) % 5].as_str(), "tags": [format!("t{}", i % 4)] });
            let mut created = ledger.create_task(&user, NewTask::from_json(body.to_string().as_bytes()).unwrap(), t0);
            pages.extend(created.sealed.take());
            if *done {
                ledger.change_task(&mut created.task, None, TaskPatch { completed: Some(true), ..TaskPatch::default() }, t0).unwrap();
            }
        }
        (ledger, pages)
    }

    /// Runs a scan to the end; returns its page and how many sealed pages it read.
    fn run(query: &ListQuery, ledger: &UserLedger, pages: &HashMap<u32, IndexPage>) -> ((Vec<TaskId>, Option<String>), usize) {
        let mut scan = Scan::new(query, ledger, Utc::now());
        let mut read = 0;
        loop {
            let batch = scan.next_batch();
            if batch.is_empty() {
                return (scan.finish(), read);
            }
            for n in batch {
                read += 1;
                scan.feed(n, pages.get(&n).cloned());
            }
        }
    }

    fn everything(ledger: &UserLedger, pages: &HashMap<u32, IndexPage>) -> Vec<(u32, TaskSummary)> {
        let mut all: Vec<(u32, TaskSummary)> = pages.iter().flat_map(|(n, p)| p.tasks.iter().map(|s| (*n, s.clone()))).collect();
        all.extend(ledger.tail.iter().map(|s| (ledger.sealed, s.clone())));
        all
    }

    #[test]
    fn the_default_list_reads_only_the_pages_it_needs() {
        let (ledger, pages) = index(&vec![(0, false); PAGE_SIZE * 10 + 7]);
        assert_eq!(ledger.sealed, 10);
        let first = ListQuery::parse("limit=50").unwrap();
        let ((ids, next), read) = run(&first, &ledger, &pages);
        assert_eq!((ids.len(), read), (50, 2), "7 on the tail, the rest from the first batch of sealed pages");
        assert_eq!(ids[0], ledger.tail.last().unwrap().id, "newest first");
        // Deep in the list, the cursor says where to start reading.
        let mut cursor = next;
        for _ in 0..8 {
            let query = ListQuery::parse(&format!("limit=50&cursor={}", cursor.unwrap())).unwrap();
            let ((_, next), read) = run(&query, &ledger, &pages);
            assert!(read <= 2, "a page of 50 reads at most two pages of {PAGE_SIZE}, read {read}");
            cursor = next;
        }
        // A sparse filter reads about as many pages as its page needs, in few rounds.
        let sparse = ListQuery::parse("limit=50&q=t1").unwrap();
        let ((ids, _), read) = run(&sparse, &ledger, &pages);
        assert_eq!(ids.len(), 50);
        assert!(read <= 6, "1 task in 5 matches: 4 pages hold a page of 50, read {read}");
        // Another sort reads every page, but only summaries.
        let ((_, _), read) = run(&ListQuery::parse("sort=title").unwrap(), &ledger, &pages);
        assert_eq!(read, 10);
    }

    #[test]
    fn summaries_are_compact_and_round_trip() {
        let (ledger, _) = index(&[(3, true)]);
        let json = serde_json::to_value(&ledger.tail[0]).unwrap();
        assert_eq!(json["t"], "t0 invoice", "lowercased");
        assert_eq!((json["p"].as_str(), json["c"].as_bool()), (Some("high"), Some(true)));
        assert!(json.get("d").is_none() && json.get("u").is_none(), "defaults are left out: {json}");
        assert_eq!(serde_json::from_value::<TaskSummary>(json).unwrap(), ledger.tail[0]);
        assert_eq!(tag_counts(&ledger.tail), BTreeMap::from([("t0".to_owned(), 1)]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn a_scan_pages_like_a_list_of_every_task(
            specs in proptest::collection::vec((0u8..5, any::<bool>()), 0..300),
            filter in "(|status=pending|priority=high|q=invoice|tag=t1&status=completed)",
            sort in "(|sort=due|sort=priority|sort=title|sort=created&order=asc|sort=updated)",
            limit in 1usize..80,
            deleted in proptest::collection::vec(any::<u16>(), 0..20),
        ) {
            let (mut ledger, mut pages) = index(&specs);
            // Deletes leave holes (and empty pages) behind.
            let all = everything(&ledger, &pages);
            for pick in deleted.iter().filter(|_| !all.is_empty()) {
                let (n, summary) = &all[usize::from(*pick) % all.len()];
                if ledger.is_tail(*n) { ledger.tail.retain(|s| s.id != summary.id) } else if let Some(p) = pages.get_mut(n) { p.tasks.retain(|s| s.id != summary.id) }
            }
            pages.retain(|_, p| !p.tasks.is_empty());
            let base = format!("{filter}&{sort}&limit={limit}");
            let now = Utc::now() + TimeDelta::seconds(1);
            let mut query = ListQuery::parse(&base).unwrap();
            let mut seen = Vec::new();
            loop {
                let expected = page(everything(&ledger, &pages), &query, now);
                let mut scan = Scan::new(&query, &ledger, now);
                loop {
                    let batch = scan.next_batch();
                    if batch.is_empty() { break }
                    for n in batch { scan.feed(n, pages.get(&n).cloned()) }
                }
                let got = scan.finish();
                prop_assert_eq!(&got.0, &expected.0);
                prop_assert_eq!(got.1.is_some(), expected.1.is_some());
                seen.extend(got.0);
                let Some(cursor) = got.1 else { break };
                query = ListQuery::parse(&format!("{base}&cursor={cursor}")).unwrap();
            }
            let everything_once = page(everything(&ledger, &pages), &ListQuery::parse(&format!("{filter}&{sort}&limit=200")).unwrap(), now).0;
            if everything_once.len() < 200 { prop_assert_eq!(seen, everything_once) }
        }
    }

    #[test]
    fn stored_tasks_carry_their_page_next_to_the_task() {
        let user = UserId::parse("bob").unwrap();
        let created = UserLedger::default().create_task(&user, NewTask::new(Title::parse("x").unwrap()), Utc::now());
        let json = serde_json::to_value(&created.task).unwrap();
        assert_eq!((json["page"].as_u64(), &json["title"]), (Some(0), &serde_json::json!("x")));
        let mut legacy = json.clone();
        legacy.as_object_mut().unwrap().remove("page");
        let read: StoredTask = serde_json::from_value(legacy).unwrap();
        assert_eq!((read.page, read.task), (None, created.task.task));
    }
}
