//! The per-user ledger: the head document every write of a user goes through.
//!
//! It holds the user's event sequence and the head of the task index (the
//! open page and how many pages are sealed, see [`crate::index`]), so that the
//! task, its summary, its event (in the outbox) and the head commit in one
//! state transaction guarded by the head's ETag. Concurrent writers of one
//! user serialize on it. Its size is bounded by one page, whatever the user holds.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::index::{self, IndexPage, StoredTask, TaskSummary};
use crate::{DomainError, EventId, EventType, NewTask, Task, TaskEvent, TaskId, TaskPatch, UserId};

/// A user's event sequence and the head of their task index (`ledger:{user}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLedger {
    /// The sequence number of the user's last event (0 before the first).
    pub seq: u64,
    /// Sealed index pages: `index:{user}:{0..sealed}`; the tail is page `sealed`.
    pub sealed: u32,
    /// The open index page: summaries of the newest tasks, oldest first.
    pub tail: Vec<TaskSummary>,
    /// `created_at` of the user's newest task: the next one is created later,
    /// so that creation order is page order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_created: Option<DateTime<Utc>>,
}

/// The ledger of a user as stored: this format, or the one before the index
/// (`{seq, published, tasks}`), which [`LegacyLedger::migrate`] turns into this one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum StoredLedger {
    /// The paged index (`sealed` and `tail` are required, so an old ledger never reads as one).
    Paged(UserLedger),
    /// A ledger that lists every task id.
    Legacy(LegacyLedger),
}

/// The ledger format before the paged index: every task id in one document.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LegacyLedger {
    /// The sequence number of the last event.
    pub seq: u64,
    /// Events up to this one were published.
    pub published: u64,
    /// Every task id, oldest first.
    pub tasks: Vec<TaskId>,
}

impl LegacyLedger {
    /// The paged ledger and the sealed pages that index `tasks` (the
    /// documents of [`LegacyLedger::tasks`] that still exist), oldest first.
    pub fn migrate(&self, tasks: Vec<Task>) -> (UserLedger, Vec<(u32, IndexPage)>) {
        // In the order a list sorts summaries by creation, so that page order is list order.
        let mut summaries: Vec<TaskSummary> = tasks.iter().map(TaskSummary::of).collect();
        summaries.sort_by_key(|s| (s.created_at(), s.id));
        let last_created = tasks.iter().map(|t| t.created_at).max();
        let mut chunks: Vec<Vec<TaskSummary>> = summaries.chunks(index::PAGE_SIZE).map(<[TaskSummary]>::to_vec).collect();
        let tail = chunks.pop().unwrap_or_default();
        let pages: Vec<(u32, IndexPage)> = chunks.into_iter().zip(0..).map(|(tasks, n)| (n, IndexPage { tasks })).collect();
        (UserLedger { seq: self.seq, sealed: pages.len() as u32, tail, last_created }, pages)
    }
}

/// What a create writes besides the head: the task (with its page) and,
/// when the tail was full, the page sealed to make room.
#[derive(Debug, Clone)]
pub struct Created {
    /// The new task as stored.
    pub task: StoredTask,
    /// Its `created` event.
    pub event: TaskEvent,
    /// The page that was the tail, now sealed, and its number.
    pub sealed: Option<(u32, IndexPage)>,
}

impl UserLedger {
    /// Creates a task for `user` and the event that announces it.
    pub fn create_task(&mut self, user: &UserId, new: NewTask, now: DateTime<Utc>) -> Created {
        let task = Task::create(TaskId::new_v7(), user.clone(), new, self.creation_time(now));
        self.add(task)
    }

    /// Adds a task just made at its `created_at` (see [`UserLedger::creation_time`]).
    pub(crate) fn add(&mut self, task: Task) -> Created {
        let sealed = index::is_full(&self.tail).then(|| {
            let page = IndexPage { tasks: std::mem::take(&mut self.tail) };
            self.sealed += 1;
            (self.sealed - 1, page)
        });
        self.last_created = Some(task.created_at);
        self.tail.push(TaskSummary::of(&task));
        let event = self.next_event(EventType::Created, task.clone(), task.created_at);
        Created { task: StoredTask { task, page: Some(self.sealed) }, event, sealed }
    }

    /// The `created_at` of a task made at `now`: `now` to the microsecond,
    /// and always after the user's previous task (another instance's clock
    /// may be behind), so that creation order is page order.
    pub(crate) fn creation_time(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let now = now.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(now);
        match self.last_created {
            Some(last) if last >= now => last + TimeDelta::microseconds(1),
            _ => now,
        }
    }

    /// Applies `patch` to `task` (a PUT, a PATCH or a completion) and its
    /// summary, in the tail or in `page` (the sealed page `task.page` names).
    ///
    /// Returns the event announcing the change: `completed` when the change
    /// completed the task, else `updated` (reopening included); `None` when
    /// nothing changed, so that no event is published for a no-op.
    pub fn change_task(
        &mut self,
        task: &mut StoredTask,
        page: Option<&mut IndexPage>,
        patch: TaskPatch,
        now: DateTime<Utc>,
    ) -> Result<Option<TaskEvent>, DomainError> {
        let changed = task.task.apply(patch, now)?;
        if changed.is_empty() {
            return Ok(None);
        }
        if let Some(summaries) = self.summaries(task.page, page) {
            index::put(summaries, &task.task);
        }
        let event_type = if task.task.completed && changed.contains(&"completed") { EventType::Completed } else { EventType::Updated };
        let mut event = self.next_event(event_type, task.task.clone(), now);
        event.changed = changed.into_iter().map(str::to_owned).collect();
        Ok(Some(event))
    }

    /// Completes an open task or reopens a completed one.
    pub fn toggle_completed(&mut self, task: &mut StoredTask, page: Option<&mut IndexPage>, now: DateTime<Utc>) -> TaskEvent {
        let patch = TaskPatch { completed: Some(!task.task.completed), ..TaskPatch::default() };
        self.change_task(task, page, patch, now)
            .expect("toggling completion breaks no rule")
            .expect("toggling completion always changes the task")
    }

    /// Removes `task` from the index (the tail, or `page`); the event carries its last state.
    pub fn delete_task(&mut self, task: StoredTask, page: Option<&mut IndexPage>, now: DateTime<Utc>) -> TaskEvent {
        if let Some(summaries) = self.summaries(task.page, page) {
            summaries.retain(|s| s.id != task.task.id);
        }
        self.next_event(EventType::Deleted, task.task, now)
    }

    /// Whether `page` (a task's page number) is the tail, in this head.
    pub fn is_tail(&self, page: u32) -> bool {
        page == self.sealed
    }

    /// Whether the tail holds task `id` (for a task stored before the index, whose page is unknown).
    pub fn tail_holds(&self, id: TaskId) -> bool {
        self.tail.iter().any(|s| s.id == id)
    }

    /// The summaries of page `at`: the tail's, or those of `page`.
    fn summaries<'a>(&'a mut self, at: Option<u32>, page: Option<&'a mut IndexPage>) -> Option<&'a mut Vec<TaskSummary>> {
        match at {
            Some(n) if n == self.sealed => Some(&mut self.tail),
            _ => page.map(|p| &mut p.tasks),
        }
    }

    /// Sequence numbers committed to the outbox but not known to be
    /// published, given the user's published mark (`published:{user}`).
    pub fn unpublished(&self, published: u64) -> std::ops::RangeInclusive<u64> {
        published + 1..=self.seq
    }

    pub(crate) fn next_event(&mut self, event_type: EventType, task: Task, now: DateTime<Utc>) -> TaskEvent {
        self.seq += 1;
        TaskEvent {
            event_id: EventId::new_v7(),
            event_type,
            user_id: task.user_id.clone(),
            seq: self.seq,
            time: now,
            task,
            changed: Vec::new(),
        }
    }
}

impl IndexPage {
    /// Whether the page holds task `id`.
    pub fn holds(&self, id: TaskId) -> bool {
        self.tasks.iter().any(|s| s.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(title: &str) -> NewTask {
        NewTask::new(crate::Title::parse(title).unwrap())
    }

    fn user() -> UserId {
        UserId::parse("alice").unwrap()
    }

    #[test]
    fn create_indexes_the_task_and_numbers_events() {
        let mut ledger = UserLedger::default();
        let now = Utc::now();
        let c1 = ledger.create_task(&user(), new("a"), now);
        let c2 = ledger.create_task(&user(), new("b"), now);
        assert_eq!(ledger.tail.iter().map(|s| s.id).collect::<Vec<_>>(), vec![c1.task.id, c2.task.id]);
        assert_eq!((c1.event.seq, c2.event.seq), (1, 2));
        assert_eq!(c1.event.event_type, EventType::Created);
        assert_eq!(c2.event.task, c2.task.task);
        assert_eq!((c1.task.page, c1.sealed.is_none()), (Some(0), true));
        assert_ne!(c1.event.event_id, c2.event.event_id);
        assert!(c2.task.created_at > c1.task.created_at, "created at the same instant, still in order");
        assert_eq!(ledger.unpublished(0), 1..=2);
        assert!(ledger.unpublished(2).is_empty());
    }

    #[test]
    fn creation_time_never_goes_back_even_when_the_clock_does() {
        let mut ledger = UserLedger::default();
        let now = Utc::now();
        let first = ledger.create_task(&user(), new("a"), now).task;
        let second = ledger.create_task(&user(), new("b"), now - TimeDelta::seconds(5)).task;
        assert_eq!(second.created_at, first.created_at + TimeDelta::microseconds(1));
        let later = now + TimeDelta::seconds(1);
        assert_eq!(ledger.create_task(&user(), new("c"), later).task.created_at, later.duration_trunc(TimeDelta::microseconds(1)).unwrap());
    }

    #[test]
    fn a_full_tail_is_sealed_and_the_head_stays_small() {
        let mut ledger = UserLedger::default();
        let mut sealed = Vec::new();
        for i in 0..index::PAGE_SIZE * 2 + 1 {
            let created = ledger.create_task(&user(), new(&format!("t{i}")), Utc::now());
            assert_eq!(created.task.page, Some(ledger.sealed), "a new task is on the tail");
            sealed.extend(created.sealed);
        }
        assert_eq!(ledger.sealed, 2);
        assert_eq!(sealed.iter().map(|(n, p)| (*n, p.tasks.len())).collect::<Vec<_>>(), [(0, index::PAGE_SIZE), (1, index::PAGE_SIZE)]);
        assert_eq!(ledger.tail.len(), 1);
        // Long descriptions seal the tail sooner.
        let mut heavy = UserLedger::default();
        let body = serde_json::json!({ "title": "x", "description": "d".repeat(4000) }).to_string();
        let pages: usize =
            (0..8).filter_map(|_| heavy.create_task(&user(), NewTask::from_json(body.as_bytes()).unwrap(), Utc::now()).sealed).count();
        assert!(pages >= 1 && heavy.tail.len() <= 5, "{pages} sealed, {} on the tail", heavy.tail.len());
    }

    #[test]
    fn changes_completions_and_deletes_update_the_summary_where_it_lives() {
        let mut ledger = UserLedger::default();
        let now = Utc::now();
        let mut task = ledger.create_task(&user(), new("a"), now).task;

        let noop = TaskPatch { title: Some(crate::Title::parse("a").unwrap()), ..TaskPatch::default() };
        assert_eq!(ledger.change_task(&mut task, None, noop, now).unwrap(), None, "a no-op publishes nothing");
        assert_eq!(ledger.seq, 1);

        let rename = TaskPatch { title: Some(crate::Title::parse("B").unwrap()), ..TaskPatch::default() };
        let updated = ledger.change_task(&mut task, None, rename, now).unwrap().unwrap();
        assert_eq!((updated.event_type, updated.seq, updated.changed.clone()), (EventType::Updated, 2, vec!["title".to_owned()]));
        assert_eq!(ledger.tail[0].title, "b", "the tail's summary follows");

        let done = ledger.toggle_completed(&mut task, None, now);
        assert_eq!((done.event_type, task.completed, task.completed_at), (EventType::Completed, true, Some(now)));
        assert!(ledger.tail[0].completed);
        let reopened = ledger.toggle_completed(&mut task, None, now);
        assert_eq!((reopened.event_type, task.completed, task.completed_at), (EventType::Updated, false, None));
        assert_eq!(reopened.changed, vec!["completed".to_owned()]);

        // Once its page is sealed, the summary changes in that page, not in the tail.
        let mut sealed = None;
        while sealed.is_none() {
            sealed = ledger.create_task(&user(), new("filler"), now).sealed;
        }
        let (n, mut page) = sealed.unwrap();
        assert_eq!((n, task.page), (0, Some(0)));
        let tail_before = ledger.tail.clone();
        let urgent = TaskPatch { priority: Some(crate::Priority::Urgent), ..TaskPatch::default() };
        ledger.change_task(&mut task, Some(&mut page), urgent, now).unwrap().unwrap();
        assert_eq!(page.tasks.iter().find(|s| s.id == task.id).unwrap().priority, crate::Priority::Urgent);
        assert_eq!(ledger.tail, tail_before);

        let deleted = ledger.delete_task(task.clone(), Some(&mut page), now);
        assert_eq!((deleted.event_type, deleted.task.id), (EventType::Deleted, task.id));
        assert!(!page.holds(task.id));
    }

    #[test]
    fn a_legacy_ledger_migrates_to_pages_in_creation_order() {
        let stored: StoredLedger = serde_json::from_value(serde_json::json!({ "seq": 9, "published": 7, "tasks": [] })).unwrap();
        let StoredLedger::Legacy(legacy) = stored else { panic!("an old ledger reads as legacy") };
        let mut scratch = UserLedger::default();
        let t0 = Utc::now();
        let mut tasks: Vec<Task> = (0..index::PAGE_SIZE + 3)
            .map(|i| scratch.create_task(&user(), new(&format!("t{i}")), t0 + TimeDelta::seconds(i as i64)).task.task)
            .collect();
        tasks.reverse();
        let (ledger, pages) = legacy.migrate(tasks.clone());
        assert_eq!((ledger.seq, ledger.sealed, ledger.tail.len(), pages.len()), (9, 1, 3, 1));
        assert_eq!(pages[0].1.tasks[0].id, tasks.last().unwrap().id, "oldest first");
        assert_eq!(ledger.last_created, Some(tasks[0].created_at));
        let paged: StoredLedger = serde_json::from_value(serde_json::to_value(&ledger).unwrap()).unwrap();
        assert_eq!(paged, StoredLedger::Paged(ledger));
    }
}
