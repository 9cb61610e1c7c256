//! Reminders as `reminder-service` runs them: which Dapr jobs a task needs,
//! what a job's name and data are, whether a firing job still applies, and
//! the `com.todo.reminder.due.v1` event it publishes.
//!
//! `reminder-service` keeps a [`Projection`] of every task it has seen (the
//! last task snapshot, its event `seq`, the jobs it scheduled and the
//! reminders that fired). Everything here is pure: callers pass `now`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{EventId, EventType, Task, TaskEvent, TaskId, Title, UserId};

/// Kafka topic of reminder events.
pub const REMINDERS_TOPIC: &str = "reminders";
/// CloudEvent `type` of a due reminder.
pub const REMINDER_DUE_TYPE: &str = "com.todo.reminder.due.v1";
/// Prefix of every reminder job name.
pub const JOB_PREFIX: &str = "reminder-";

/// UUID v5 namespace of reminder event ids (a fixed, random UUID).
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6d1f_3c2a_8b4e_4f7a_9c55_2e0b_7d41_a9c3);

/// The job name of the reminder of `task` at `remind_at`: deterministic, so
/// scheduling it again overwrites it, and a changed instant is another job.
pub fn job_name(task: TaskId, remind_at: DateTime<Utc>) -> String {
    format!("{JOB_PREFIX}{task}-{}", remind_at.timestamp_millis())
}

/// The id of the reminder event of `task` at `remind_at`: a UUID v5, the
/// same on every retry of the job, so consumers dedupe a repeated publish.
pub fn event_id(task: TaskId, remind_at: DateTime<Utc>) -> EventId {
    let name = format!("{task}/{}", remind_at.to_rfc3339_opts(SecondsFormat::Millis, true));
    Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes()).to_string().parse().expect("a UUID is an event id")
}

/// The `data` of a reminder job, delivered back in `POST /job/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobData {
    /// The task's owner (locates the projection).
    pub user_id: UserId,
    /// The task.
    pub task_id: TaskId,
    /// When the reminder is due.
    pub remind_at: DateTime<Utc>,
    /// `seq` of the task event that scheduled the job: a projection older
    /// than that has not been written yet.
    pub seq: u64,
}

/// A job to create (or overwrite) on the sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// Job name ([`job_name`]).
    pub name: String,
    /// When the job fires: the reminder instant, or `now` for a late reminder
    /// of a task that is still due in the future.
    pub due_time: DateTime<Utc>,
    /// What the callback receives.
    pub data: JobData,
}

/// Whether `event` can concern reminder-service. It cannot when the task has
/// no reminders and the event did not change them: the task had none before
/// either, so no job of it exists before or after the event, and the handler
/// acknowledges it without reading or writing anything (most events, since
/// most tasks have no reminders). An `updated` or `completed` event that
/// does not list its changed fields (written before they were listed) counts
/// as concerning.
pub fn concerns(event: &TaskEvent) -> bool {
    if !event.task.reminders.as_slice().is_empty() {
        return true;
    }
    match event.event_type {
        EventType::Created | EventType::Deleted => false,
        EventType::Updated | EventType::Completed => event.changed.is_empty() || event.changed.iter().any(|field| field == "reminders"),
    }
}

/// reminder-service's view of one task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projection {
    /// `seq` of the last task event applied (0: none).
    pub seq: u64,
    /// The task as of that event; `None` once deleted (a tombstone, so that a
    /// late or reordered event cannot bring the task back).
    pub task: Option<Task>,
    /// Scheduled, not yet fired jobs: name -> reminder instant.
    #[serde(default)]
    pub jobs: BTreeMap<String, DateTime<Utc>>,
    /// Names of the jobs that fired (published their event), for the
    /// reminders the task still has.
    #[serde(default)]
    pub fired: BTreeSet<String>,
}

/// What to do for one task event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Jobs to schedule (with `overwrite: true`).
    pub schedule: Vec<JobSpec>,
    /// Jobs to delete (a job that does not exist counts as deleted).
    pub cancel: Vec<String>,
    /// The projection to store; the jobs change only once that write won.
    pub next: Projection,
}

impl Projection {
    /// Applies a task event at `now`; `None` when the event is not newer than
    /// the projection (a redelivery or a reordered event), which changes nothing.
    ///
    /// An open task gets one job per reminder instant. A future instant is
    /// scheduled at that instant. A past instant is scheduled at once if it is
    /// new and the task is still due in the future, else skipped. A reminder
    /// that fired or is already scheduled is never scheduled again.
    pub fn apply(&self, event: &TaskEvent, now: DateTime<Utc>) -> Option<Plan> {
        if event.seq <= self.seq {
            return None;
        }
        let task = (event.event_type != EventType::Deleted).then(|| event.task.clone());
        let mut schedule = Vec::new();
        let mut jobs = BTreeMap::new();
        let mut fired = BTreeSet::new();
        if let Some(task) = task.as_ref() {
            for instant in task.reminder_instants() {
                let name = job_name(task.id, instant);
                if self.fired.contains(&name) {
                    fired.insert(name);
                    continue;
                }
                if task.completed {
                    continue;
                }
                let due_time = if instant > now || self.jobs.contains_key(&name) {
                    instant
                } else if task.due_at.is_some_and(|due| due > now) {
                    now
                } else {
                    continue;
                };
                if !self.jobs.contains_key(&name) {
                    let data = JobData { user_id: task.user_id.clone(), task_id: task.id, remind_at: instant, seq: event.seq };
                    schedule.push(JobSpec { name: name.clone(), due_time, data });
                }
                jobs.insert(name, instant);
            }
        }
        let cancel = self.jobs.keys().filter(|name| !jobs.contains_key(*name)).cloned().collect();
        Some(Plan { schedule, cancel, next: Projection { seq: event.seq, task, jobs, fired } })
    }

    /// The jobs to schedule again when `event` is the one the projection is
    /// at (a redelivery): every job it lists. The handler writes the
    /// projection before it touches jobs, so a crash in between leaves jobs
    /// missing; scheduling overwrites, so putting them back is harmless.
    pub fn restore(&self, event: &TaskEvent, now: DateTime<Utc>) -> Vec<JobSpec> {
        if event.seq != self.seq {
            return Vec::new();
        }
        self.specs(|_| true, now)
    }

    /// The jobs among `names` that this projection lists: what a handler
    /// puts back after its cancels, when a newer projection (written by a
    /// concurrent handler) wants the same instant again.
    pub fn wanted(&self, names: &[String], now: DateTime<Utc>) -> Vec<JobSpec> {
        self.specs(|name| names.iter().any(|n| n == name), now)
    }

    /// Job specs for the listed jobs `keep` selects, due at their instant (at
    /// once when it has passed).
    fn specs(&self, keep: impl Fn(&str) -> bool, now: DateTime<Utc>) -> Vec<JobSpec> {
        let Some(task) = self.task.as_ref() else { return Vec::new() };
        self.jobs
            .iter()
            .filter(|(name, _)| keep(name))
            .map(|(name, instant)| JobSpec {
                name: name.clone(),
                due_time: (*instant).max(now),
                data: JobData { user_id: task.user_id.clone(), task_id: task.id, remind_at: *instant, seq: self.seq },
            })
            .collect()
    }

    /// Records that the job `name` fired.
    pub fn mark_fired(&mut self, name: &str) {
        self.jobs.remove(name);
        self.fired.insert(name.to_owned());
    }
}

/// The `data` of `com.todo.reminder.due.v1` on topic `reminders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderDue {
    /// Also the CloudEvent `id`; the same for every retry of the reminder.
    pub event_id: EventId,
    /// The owner; also the Kafka partition key.
    pub user_id: UserId,
    /// The task.
    pub task_id: TaskId,
    /// The task's title when the reminder fired.
    pub title: Title,
    /// When the task is due (`null` for an instant reminder on a task without due date).
    pub due_at: Option<DateTime<Utc>>,
    /// When the reminder was due.
    pub remind_at: DateTime<Utc>,
    /// When the job callback ran (never before `remind_at`).
    pub fired_at: DateTime<Utc>,
}

/// The outcome of a job callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Firing {
    /// Publish this event, then [`Projection::mark_fired`].
    Fire(ReminderDue),
    /// The job ran before its time: schedule it again at this instant.
    Early(DateTime<Utc>),
    /// The event that scheduled the job is not in the projection yet: fail,
    /// so that the scheduler retries the job.
    NotYetProjected,
    /// Nothing to do (the task is done or gone, the reminder changed, or it
    /// already fired); the job is finished.
    Skip(&'static str),
}

/// Decides what the job `name` with `data`, running at `now`, does.
pub fn on_fire(projection: Option<&Projection>, name: &str, data: &JobData, now: DateTime<Utc>) -> Firing {
    let Some(projection) = projection.filter(|p| p.seq >= data.seq) else {
        return Firing::NotYetProjected;
    };
    if name != job_name(data.task_id, data.remind_at) {
        return Firing::Skip("the job name does not match its data");
    }
    let Some(task) = projection.task.as_ref() else {
        return Firing::Skip("the task was deleted");
    };
    if task.id != data.task_id || task.user_id != data.user_id {
        return Firing::Skip("the job belongs to another task");
    }
    if task.completed {
        return Firing::Skip("the task is completed");
    }
    if projection.fired.contains(name) {
        return Firing::Skip("the reminder already fired");
    }
    if projection.jobs.get(name) != Some(&data.remind_at) || !task.reminder_instants().contains(&data.remind_at) {
        return Firing::Skip("the reminder no longer applies");
    }
    if now < data.remind_at {
        return Firing::Early(data.remind_at);
    }
    Firing::Fire(ReminderDue {
        event_id: event_id(task.id, data.remind_at),
        user_id: task.user_id.clone(),
        task_id: task.id,
        title: task.title.clone(),
        due_at: task.due_at,
        remind_at: data.remind_at,
        fired_at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::StoredTask;
    use crate::{NewTask, TaskPatch, UserLedger};
    use chrono::TimeDelta;
    use proptest::prelude::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn created(body: serde_json::Value, now: DateTime<Utc>) -> (UserLedger, StoredTask, TaskEvent) {
        let mut ledger = UserLedger::default();
        let user = UserId::parse("alice").unwrap();
        let created = ledger.create_task(&user, NewTask::from_json(body.to_string().as_bytes()).unwrap(), now);
        (ledger, created.task, created.event)
    }

    fn patch(ledger: &mut UserLedger, task: &mut StoredTask, body: serde_json::Value, now: DateTime<Utc>) -> TaskEvent {
        let p = TaskPatch::from_json(body.to_string().as_bytes()).unwrap();
        ledger.change_task(task, None, p, now).unwrap().unwrap()
    }

    const NOW: &str = "2026-03-01T08:00:00Z";

    #[test]
    fn only_events_of_tasks_with_reminders_or_that_drop_them_concern_the_service() {
        let now = at(NOW);
        let (mut ledger, mut task, event) = created(serde_json::json!({"title": "plain"}), now);
        assert!(!concerns(&event), "a create without reminders");
        let renamed = patch(&mut ledger, &mut task, serde_json::json!({"title": "renamed"}), now);
        assert!(!concerns(&renamed), "a change that leaves no reminders as none");
        let done = patch(&mut ledger, &mut task, serde_json::json!({"completed": true}), now);
        assert!(!concerns(&done), "completing a task without reminders");
        let mut legacy = renamed.clone();
        legacy.changed.clear();
        assert!(concerns(&legacy), "an update that does not say what changed");

        let body = serde_json::json!({"title": "t", "due_at": "2026-03-01T10:00:00Z", "reminders": ["PT15M"]});
        let (mut ledger, mut task, event) = created(body, now);
        assert!(concerns(&event), "a create with reminders");
        let renamed = patch(&mut ledger, &mut task, serde_json::json!({"title": "renamed"}), now);
        assert!(concerns(&renamed), "any change of a task with reminders");
        let dropped = patch(&mut ledger, &mut task, serde_json::json!({"reminders": []}), now);
        assert!(concerns(&dropped), "the change that removes the reminders cancels their jobs");
        let deleted = ledger.delete_task(task, None, now);
        assert!(!concerns(&deleted), "deleting a task whose reminders were removed");
    }

    #[test]
    fn an_open_task_gets_one_job_per_reminder() {
        let now = at(NOW);
        let (_, task, event) =
            created(serde_json::json!({"title": "t", "due_at": "2026-03-01T10:00:00Z", "reminders": ["PT15M", "PT1H"]}), now);
        let plan = Projection::default().apply(&event, now).unwrap();
        let times: Vec<_> = plan.schedule.iter().map(|j| j.due_time).collect();
        assert_eq!(times, [at("2026-03-01T09:00:00Z"), at("2026-03-01T09:45:00Z")]);
        assert_eq!(plan.schedule[0].name, job_name(task.id, at("2026-03-01T09:00:00Z")));
        assert!(plan.schedule[0].name.starts_with("reminder-"));
        assert_eq!(plan.schedule[0].data.seq, 1);
        assert!(plan.cancel.is_empty());
        assert_eq!(plan.next.jobs.len(), 2);
        // The same event again is stale and changes nothing.
        assert_eq!(plan.next.apply(&event, now), None);
    }

    #[test]
    fn moving_the_due_date_moves_the_jobs() {
        let now = at(NOW);
        let (mut ledger, mut task, event) =
            created(serde_json::json!({"title": "t", "due_at": "2026-03-01T10:00:00Z", "reminders": ["PT15M"]}), now);
        let first = Projection::default().apply(&event, now).unwrap();
        let moved = patch(&mut ledger, &mut task, serde_json::json!({"due_at": "2026-03-01T11:00:00Z"}), now);
        let plan = first.next.apply(&moved, now).unwrap();
        assert_eq!(plan.cancel, [first.schedule[0].name.clone()]);
        assert_eq!(plan.schedule.len(), 1);
        assert_eq!(plan.schedule[0].due_time, at("2026-03-01T10:45:00Z"));
        // A change that keeps the instants schedules nothing new.
        let renamed = patch(&mut ledger, &mut task, serde_json::json!({"title": "u"}), now);
        let again = plan.next.apply(&renamed, now).unwrap();
        assert!(again.schedule.is_empty() && again.cancel.is_empty());
        assert_eq!(again.next.jobs, plan.next.jobs);
    }

    #[test]
    fn completing_or_deleting_cancels_every_job() {
        let now = at(NOW);
        let (mut ledger, mut task, event) =
            created(serde_json::json!({"title": "t", "due_at": "2026-03-01T10:00:00Z", "reminders": ["PT15M", "PT5M"]}), now);
        let first = Projection::default().apply(&event, now).unwrap();
        let done = ledger.toggle_completed(&mut task, None, now);
        let plan = first.next.apply(&done, now).unwrap();
        assert_eq!(plan.cancel.len(), 2);
        assert!(plan.schedule.is_empty() && plan.next.jobs.is_empty());
        // Reopening schedules them again.
        let reopened = ledger.toggle_completed(&mut task, None, now);
        let plan = plan.next.apply(&reopened, now).unwrap();
        assert_eq!(plan.schedule.len(), 2);
        let deleted = ledger.delete_task(task, None, now);
        let plan = plan.next.apply(&deleted, now).unwrap();
        assert_eq!(plan.cancel.len(), 2);
        assert_eq!(plan.next.task, None);
        assert_eq!(plan.next.seq, deleted.seq);
    }

    #[test]
    fn a_past_reminder_fires_at_once_only_while_the_task_is_due_in_the_future() {
        let now = at(NOW);
        let (_, _, event) =
            created(serde_json::json!({"title": "t", "due_at": "2026-03-01T08:10:00Z", "reminders": ["PT1H", "PT5M"]}), now);
        let plan = Projection::default().apply(&event, now).unwrap();
        let times: Vec<_> = plan.schedule.iter().map(|j| (j.due_time, j.data.remind_at)).collect();
        assert_eq!(times, [(now, at("2026-03-01T07:10:00Z")), (at("2026-03-01T08:05:00Z"), at("2026-03-01T08:05:00Z"))]);
        let (_, _, overdue) = created(
            serde_json::json!({"title": "t", "due_at": "2026-03-01T07:00:00Z", "reminders": ["PT1H", "2026-03-01T09:00:00Z"]}),
            now,
        );
        let plan = Projection::default().apply(&overdue, now).unwrap();
        assert_eq!(plan.schedule.len(), 1, "only the future instant: {plan:?}");
        assert_eq!(plan.schedule[0].due_time, at("2026-03-01T09:00:00Z"));
    }

    #[test]
    fn a_fired_reminder_is_never_scheduled_again() {
        let now = at(NOW);
        let (mut ledger, mut task, event) =
            created(serde_json::json!({"title": "t", "due_at": "2026-03-01T10:00:00Z", "reminders": ["PT1H"]}), now);
        let mut projection = Projection::default().apply(&event, now).unwrap().next;
        let name = job_name(task.id, at("2026-03-01T09:00:00Z"));
        let later = at("2026-03-01T09:00:01Z");
        let data = JobData { user_id: task.user_id.clone(), task_id: task.id, remind_at: at("2026-03-01T09:00:00Z"), seq: 1 };
        assert!(matches!(on_fire(Some(&projection), &name, &data, later), Firing::Fire(_)));
        projection.mark_fired(&name);
        assert_eq!(on_fire(Some(&projection), &name, &data, later), Firing::Skip("the reminder already fired"));
        let renamed = patch(&mut ledger, &mut task, serde_json::json!({"title": "u"}), later);
        let plan = projection.apply(&renamed, later).unwrap();
        assert!(plan.schedule.is_empty() && plan.cancel.is_empty());
        assert!(plan.next.fired.contains(&name));
    }

    #[test]
    fn firing_rechecks_the_projection() {
        let now = at(NOW);
        let (mut ledger, mut task, event) =
            created(serde_json::json!({"title": "t", "due_at": "2026-03-01T10:00:00Z", "reminders": ["PT15M"]}), now);
        let plan = Projection::default().apply(&event, now).unwrap();
        let job = plan.schedule[0].clone();
        let projection = plan.next;
        assert_eq!(on_fire(None, &job.name, &job.data, now), Firing::NotYetProjected);
        assert_eq!(on_fire(Some(&Projection::default()), &job.name, &job.data, now), Firing::NotYetProjected);
        let early = job.data.remind_at - TimeDelta::milliseconds(1);
        assert_eq!(on_fire(Some(&projection), &job.name, &job.data, early), Firing::Early(job.data.remind_at));
        let Firing::Fire(due) = on_fire(Some(&projection), &job.name, &job.data, job.data.remind_at) else { panic!() };
        assert_eq!(due.event_id, event_id(task.id, job.data.remind_at));
        assert_eq!((due.title.as_str(), due.due_at, due.fired_at), ("t", task.due_at, job.data.remind_at));
        let json = serde_json::to_value(&due).unwrap();
        assert_eq!(json["remind_at"], "2026-03-01T09:45:00Z");
        // Moved: the old job no longer applies.
        let moved = patch(&mut ledger, &mut task, serde_json::json!({"due_at": "2026-03-01T11:00:00Z"}), now);
        let next = projection.apply(&moved, now).unwrap().next;
        assert_eq!(on_fire(Some(&next), &job.name, &job.data, job.data.remind_at), Firing::Skip("the reminder no longer applies"));
        let wrong = JobData { remind_at: at("2026-03-01T10:45:00Z"), ..job.data.clone() };
        assert!(matches!(on_fire(Some(&next), &job.name, &wrong, now), Firing::Skip(_)));
    }

    #[test]
    fn days_and_weeks_before_are_nominal_across_dst() {
        // Due Sunday 2026-03-29 09:00 CEST, the day Berlin springs forward.
        let now = at(NOW);
        let (_, _, event) = created(
            serde_json::json!({"title": "t", "due_at": "2026-03-29T09:00:00+02:00", "time_zone": "Europe/Berlin",
                "reminders": ["P1D", "P1W", "PT24H", "P1DT2H"]}),
            now,
        );
        let plan = Projection::default().apply(&event, now).unwrap();
        let mut got: Vec<_> = plan.schedule.iter().map(|j| j.data.remind_at).collect();
        got.sort();
        assert_eq!(
            got,
            [
                at("2026-03-22T09:00:00+01:00"), // P1W: the Sunday before, 09:00 local
                at("2026-03-28T07:00:00+01:00"), // P1DT2H: the day before 09:00, then two hours
                at("2026-03-28T08:00:00+01:00"), // PT24H: exactly 24 hours
                at("2026-03-28T09:00:00+01:00"), // P1D: the day before, 09:00 local
            ]
        );
    }

    #[test]
    fn a_redelivery_restores_the_jobs_and_a_newer_projection_keeps_its_own() {
        let now = at(NOW);
        let (mut ledger, mut task, event) =
            created(serde_json::json!({"title": "t", "due_at": "2026-03-01T10:00:00Z", "reminders": ["PT15M", "PT1H"]}), now);
        let plan = Projection::default().apply(&event, now).unwrap();
        // The same event again: nothing to plan, but every listed job is put back.
        assert_eq!(plan.next.apply(&event, now), None);
        let mut restored = plan.next.restore(&event, now);
        restored.sort_by_key(|j| j.due_time);
        assert_eq!(restored, plan.schedule);
        // An older event restores nothing (the projection moved on).
        let renamed = patch(&mut ledger, &mut task, serde_json::json!({"title": "u"}), now);
        let newer = plan.next.apply(&renamed, now).unwrap().next;
        assert!(newer.restore(&event, now).is_empty());
        // After cancelling both jobs, a newer projection that lists one wants it back.
        let names: Vec<String> = plan.schedule.iter().map(|j| j.name.clone()).collect();
        let back = newer.wanted(&names[..1], now);
        assert_eq!(back.len(), 1);
        assert_eq!((back[0].name.as_str(), back[0].data.seq), (names[0].as_str(), newer.seq));
        let deleted = ledger.delete_task(task, None, now);
        let gone = newer.apply(&deleted, now).unwrap().next;
        assert!(gone.wanted(&names, now).is_empty() && gone.restore(&deleted, now).is_empty());
    }

    #[test]
    fn event_ids_are_deterministic_per_task_and_instant() {
        let task = TaskId::new_v7();
        let t = at(NOW);
        assert_eq!(event_id(task, t), event_id(task, t));
        assert_ne!(event_id(task, t), event_id(task, t + TimeDelta::seconds(1)));
        assert_ne!(event_id(task, t), event_id(TaskId::new_v7(), t));
        assert_eq!(event_id(task, t).as_uuid().get_version_num(), 5);
    }

    proptest! {
        /// Whatever the offsets and the clock: no job is due before `now`
        /// or after the task's reminder instant, each name is unique, and a
        /// job is never due before its reminder unless it is a late one fired at once.
        #[test]
        fn jobs_never_precede_their_reminder(offsets in proptest::collection::btree_set(0u32..7200, 0..=5), due_in in -7200i64..7200) {
            let now = at(NOW);
            let due = now + TimeDelta::seconds(due_in);
            let raw: Vec<String> = offsets.iter().map(|s| format!("PT{s}S")).collect();
            let (_, task, event) = created(serde_json::json!({"title": "t", "due_at": due.to_rfc3339(), "reminders": raw}), now);
            let plan = Projection::default().apply(&event, now).unwrap();
            let names: BTreeSet<_> = plan.schedule.iter().map(|j| j.name.clone()).collect();
            prop_assert_eq!(names.len(), plan.schedule.len());
            for job in &plan.schedule {
                prop_assert!(job.due_time >= now);
                prop_assert!(job.due_time == job.data.remind_at || (job.due_time == now && job.data.remind_at < now && due > now));
                prop_assert_eq!(&job.name, &job_name(task.id, job.data.remind_at));
            }
            // Replaying the same event is a no-op; a later event keeps the jobs.
            prop_assert!(plan.next.apply(&event, now).is_none());
            let mut later = event.clone();
            later.seq += 1;
            let again = plan.next.apply(&later, now).unwrap();
            prop_assert!(again.schedule.is_empty() && again.cancel.is_empty());
        }
    }
}
