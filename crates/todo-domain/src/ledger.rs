//! The per-user ledger: the one document every write of a user goes through.
//!
//! It holds the user's task index and event sequence, so that the task, its
//! event (in the outbox) and the ledger commit in one state transaction guarded
//! by the ledger's ETag. Concurrent writers of one user serialize on it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{DomainError, EventId, EventType, NewTask, Task, TaskEvent, TaskId, TaskPatch, UserId};

/// A user's task index and event sequence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLedger {
    /// The sequence number of the user's last event (0 before the first).
    pub seq: u64,
    /// Every event with a sequence number up to this one has been published.
    pub published: u64,
    /// The user's tasks, oldest first.
    pub tasks: Vec<TaskId>,
}

impl UserLedger {
    /// Creates a task for `user` and the event that announces it.
    pub fn create_task(&mut self, user: &UserId, new: NewTask, now: DateTime<Utc>) -> (Task, TaskEvent) {
        let task = Task::create(TaskId::new_v7(), user.clone(), new, now);
        self.tasks.push(task.id);
        let event = self.next_event(EventType::Created, task.clone(), now);
        (task, event)
    }

    /// Applies `patch` to `task` (a PATCH, a PUT or a completion toggle).
    ///
    /// Returns the event announcing the change: `completed` when the change
    /// completed the task, else `updated` (reopening included); `None` when
    /// nothing changed, so that no event is published for a no-op.
    pub fn change_task(&mut self, task: &mut Task, patch: TaskPatch, now: DateTime<Utc>) -> Result<Option<TaskEvent>, DomainError> {
        let changed = task.apply(patch, now)?;
        if changed.is_empty() {
            return Ok(None);
        }
        let event_type = if task.completed && changed.contains(&"completed") { EventType::Completed } else { EventType::Updated };
        let mut event = self.next_event(event_type, task.clone(), now);
        event.changed = changed.into_iter().map(str::to_owned).collect();
        Ok(Some(event))
    }

    /// Completes an open task or reopens a completed one.
    pub fn toggle_completed(&mut self, task: &mut Task, now: DateTime<Utc>) -> TaskEvent {
        let patch = TaskPatch { completed: Some(!task.completed), ..TaskPatch::default() };
        self.change_task(task, patch, now)
            .expect("toggling completion breaks no rule")
            .expect("toggling completion always changes the task")
    }

    /// Removes `task` from the index; the event carries its last state.
    pub fn delete_task(&mut self, task: Task, now: DateTime<Utc>) -> TaskEvent {
        self.tasks.retain(|id| *id != task.id);
        self.next_event(EventType::Deleted, task, now)
    }

    /// Sequence numbers committed to the outbox but not yet known to be published.
    pub fn unpublished(&self) -> std::ops::RangeInclusive<u64> {
        self.published + 1..=self.seq
    }

    /// Records that every event up to `seq` has been published.
    pub fn mark_published(&mut self, seq: u64) {
        self.published = self.published.max(seq.min(self.seq));
    }

    fn next_event(&mut self, event_type: EventType, task: Task, now: DateTime<Utc>) -> TaskEvent {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn new(title: &str) -> NewTask {
        NewTask::new(crate::Title::parse(title).unwrap())
    }

    #[test]
    fn create_indexes_the_task_and_numbers_events() {
        let user = UserId::parse("alice").unwrap();
        let mut ledger = UserLedger::default();
        let now = Utc::now();
        let (t1, e1) = ledger.create_task(&user, new("a"), now);
        let (t2, e2) = ledger.create_task(&user, new("b"), now);
        assert_eq!(ledger.tasks, vec![t1.id, t2.id]);
        assert_eq!((e1.seq, e2.seq), (1, 2));
        assert_eq!(e1.event_type, EventType::Created);
        assert_eq!(e2.task, t2);
        assert_ne!(e1.event_id, e2.event_id);
        assert_eq!(ledger.unpublished(), 1..=2);
    }

    #[test]
    fn changes_completions_and_deletes_are_numbered_events() {
        let user = UserId::parse("carol").unwrap();
        let mut ledger = UserLedger::default();
        let now = Utc::now();
        let (mut task, _) = ledger.create_task(&user, new("a"), now);

        let noop = TaskPatch { title: Some(crate::Title::parse("a").unwrap()), ..TaskPatch::default() };
        assert_eq!(ledger.change_task(&mut task, noop, now).unwrap(), None, "a no-op publishes nothing");
        assert_eq!(ledger.seq, 1);

        let rename = TaskPatch { title: Some(crate::Title::parse("b").unwrap()), ..TaskPatch::default() };
        let updated = ledger.change_task(&mut task, rename, now).unwrap().unwrap();
        assert_eq!((updated.event_type, updated.seq, updated.changed.clone()), (EventType::Updated, 2, vec!["title".to_owned()]));

        let done = ledger.toggle_completed(&mut task, now);
        assert_eq!((done.event_type, task.completed, task.completed_at), (EventType::Completed, true, Some(now)));
        let reopened = ledger.toggle_completed(&mut task, now);
        assert_eq!((reopened.event_type, task.completed, task.completed_at), (EventType::Updated, false, None));
        assert_eq!(reopened.changed, vec!["completed".to_owned()]);

        let deleted = ledger.delete_task(task.clone(), now);
        assert_eq!((deleted.event_type, deleted.seq, deleted.task.id), (EventType::Deleted, 5, task.id));
        assert!(ledger.tasks.is_empty());
    }

    #[test]
    fn published_never_moves_backwards_or_past_seq() {
        let user = UserId::parse("bob").unwrap();
        let mut ledger = UserLedger::default();
        ledger.create_task(&user, new("a"), Utc::now());
        ledger.create_task(&user, new("b"), Utc::now());
        ledger.mark_published(2);
        ledger.mark_published(1);
        assert_eq!(ledger.published, 2);
        ledger.mark_published(9);
        assert_eq!(ledger.published, 2);
        assert!(ledger.unpublished().is_empty());
    }
}
