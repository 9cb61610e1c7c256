//! The next occurrence of a recurring task.
//!
//! Completing a recurring task creates the next one: a new task of the same
//! series (`series_id` = the first task's id, `occurrence` + 1). The rules:
//!
//! - **Evaluation.** The rule is evaluated by the `rrule` crate (RFC 5545) on
//!   the wall-clock time of the task's IANA time zone, so 09:00 stays 09:00
//!   local across DST; each wall-clock candidate then becomes an instant as
//!   RFC 5545 says ([`TimeZone::resolve`]): a local time that does not exist
//!   (spring-forward gap, also where the gap starts at midnight, as in Havana
//!   or Santiago) moves forward by the gap (00:30 becomes 01:30), and an
//!   ambiguous one (fall-back) is the first of the two. No day is skipped and
//!   the series never ends for a gap. After a gap the series continues at the
//!   shifted time: the due date is the only memory of the time of day, and
//!   the RRULE subset has no `BYHOUR`.
//! - **`anchor: due`** follows the schedule: DTSTART is the previous due date
//!   and the next due date is the first occurrence strictly after both the
//!   previous due date and the completion time. Occurrences missed while the
//!   task was open are skipped, not piled up. Using the completion time (from
//!   the event), not the time of processing, makes the result deterministic.
//! - **`anchor: completion`** (Todoist's `every!`) counts from the completion:
//!   DTSTART is the completion's local date at the due date's local
//!   time-of-day, and the next due date is the first occurrence strictly after
//!   both that DTSTART and the completion. `FREQ=DAILY;INTERVAL=3` completed on
//!   the 10th at 18:00 (due time 09:00) is next due on the 13th at 09:00;
//!   `FREQ=WEEKLY;BYDAY=MO` is due on the next Monday after the completion day.
//! - **Month-end clamping.** A positive `BYMONTHDAY` (given, or the day RFC
//!   5545 takes from DTSTART) that a month does not have falls on that month's
//!   last day instead of skipping the month: "Jan 31 monthly" is due Jan 31,
//!   Feb 28 (29), Mar 31, Apr 30; "Feb 29 yearly" is due Feb 28 in common
//!   years. Only without `BYDAY` (with `BYDAY` the days are a filter, as in RFC 5545).
//! - **Pinning.** So that a clamped date does not drift (Feb 28 + 1 month is
//!   not Mar 28), an `anchor: due` series carries the implicit day (and month,
//!   for `YEARLY`) written out: `FREQ=MONTHLY` on Jan 31 becomes
//!   `FREQ=MONTHLY;BYMONTHDAY=31` from the second occurrence on. This is the
//!   meaning RFC 5545 gives the rule, made explicit. A `completion` series keeps
//!   its rule: its day comes from each completion.
//! - **End.** `COUNT` counts the occurrences of the series: occurrence n + 1
//!   exists only if n + 1 <= COUNT. `UNTIL` (inclusive): the next due date must
//!   not be after it. A series also ends where its next due date, or a moved
//!   reminder, would leave the years 0000–9999 (in UTC), which the API refuses.
//!   Every end has a reason ([`SeriesEnd`]), which recurring-service logs.
//! - **Reminders.** Offsets stay offsets (before the new due date). An absolute
//!   reminder keeps its wall-clock relation to the due date in the task's
//!   zone: "20:00 the evening before" stays 20:00 the evening before across a
//!   DST change (the local difference is added to the new due date's local
//!   time, which then resolves as above).

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ledger::Created;
use crate::recurrence::{Frequency, RecurrenceEnd};
use crate::schedule::{in_range, Reminder};
use crate::{Anchor, DomainError, NewTask, RecurrenceRule, Rule, Task, TaskId, TimeZone, UserId, UserLedger};

/// Most candidate instants examined for one next occurrence (a daily rule
/// whose due date is 270 years in the past); beyond it the series ends.
const SCAN_MAX: usize = 100_000;

/// The next due date and the rule the next occurrence carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextOccurrence {
    /// When the next occurrence is due.
    pub due_at: DateTime<Utc>,
    /// Its rule (pinned for `anchor: due`, see the module documentation).
    pub rule: RecurrenceRule,
}

/// Why a series has no next occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesEnd {
    /// The series has `COUNT` occurrences already.
    Count(u32),
    /// The next date would be after `UNTIL`.
    Until(DateTime<Utc>),
    /// The rule yields no further date (within the scan limit).
    Exhausted,
    /// The next due date, or a moved reminder, would leave the years 0000–9999.
    OutOfRange,
}

impl fmt::Display for SeriesEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeriesEnd::Count(count) => write!(f, "COUNT={count} occurrences exist"),
            SeriesEnd::Until(until) => write!(f, "the next date is after UNTIL {}", until.to_rfc3339()),
            SeriesEnd::Exhausted => f.write_str("the rule has no further date"),
            SeriesEnd::OutOfRange => f.write_str("the next date would leave the years 0000 to 9999"),
        }
    }
}

/// The next due date of a series after occurrence `occurrence` (1-based) due
/// at `due` in `zone` and completed at `completed_at`, or why the series has
/// ended (COUNT, UNTIL, no further date).
pub fn next_occurrence(
    rule: &RecurrenceRule,
    zone: TimeZone,
    due: DateTime<Utc>,
    occurrence: u32,
    completed_at: DateTime<Utc>,
) -> Result<NextOccurrence, SeriesEnd> {
    if let Some(RecurrenceEnd::Count(count)) = rule.end() {
        if occurrence >= count {
            return Err(SeriesEnd::Count(count));
        }
    }
    let due_local = due.with_timezone(&zone.tz()).naive_local();
    // DTSTART in wall-clock time of the zone.
    let (start, after) = match rule.anchor() {
        Anchor::Due => (due_local, due.max(completed_at)),
        Anchor::Completion => {
            let start = completed_at.with_timezone(&zone.tz()).date_naive().and_time(due_local.time());
            (start, zone.resolve(start).ok_or(SeriesEnd::OutOfRange)?.max(completed_at))
        }
    };
    let pinned = rule.pinned(start.month() as u8, start.day() as u8);
    let effective = pinned.as_ref().unwrap_or(rule);
    let carried = match rule.anchor() {
        Anchor::Due => effective.clone(),
        Anchor::Completion => rule.clone(),
    };
    let clamp = Clamp::of(effective);
    // The rule runs on wall-clock time (written as UTC, which has no gaps);
    // each candidate then resolves in the task's zone.
    let set = to_rrule(effective, &clamp).build(start.and_utc().with_timezone(&rrule::Tz::UTC)).map_err(|_| SeriesEnd::Exhausted)?;
    let next = (&set)
        .into_iter()
        .take(SCAN_MAX)
        .map(|t| t.naive_local())
        .filter(|t| clamp.keeps(t.date()))
        .filter_map(|t| zone.resolve(t))
        .find(|t| *t > after)
        .ok_or(SeriesEnd::Exhausted)?;
    if let Some(RecurrenceEnd::Until(until)) = rule.end() {
        if next > until {
            return Err(SeriesEnd::Until(until));
        }
    }
    if !in_range(next) {
        return Err(SeriesEnd::OutOfRange);
    }
    Ok(NextOccurrence { due_at: next, rule: carried })
}

/// Month-end clamping of positive `BYMONTHDAY`s above 28 (module documentation).
struct Clamp {
    /// The rule's month days; empty when clamping does not apply.
    days: Vec<i8>,
}

impl Clamp {
    fn of(rule: &RecurrenceRule) -> Self {
        let applies = matches!(rule.freq(), Frequency::Monthly | Frequency::Yearly)
            && rule.by_day().is_empty()
            && rule.by_month_day().iter().any(|d| *d > 28);
        Clamp { days: if applies { rule.by_month_day().to_vec() } else { Vec::new() } }
    }

    /// The month days to ask `rrule` for: the rule's, plus the last day.
    fn month_days(&self, rule: &RecurrenceRule) -> Vec<i8> {
        let mut days = rule.by_month_day().to_vec();
        if !self.days.is_empty() && !days.contains(&-1) {
            days.push(-1);
        }
        days
    }

    /// Whether a candidate date is an occurrence of the clamped rule.
    fn keeps(&self, date: NaiveDate) -> bool {
        if self.days.is_empty() {
            return true;
        }
        let len = days_in_month(date) as i8;
        let day = date.day() as i8;
        self.days.contains(&day) || self.days.contains(&(day - len - 1)) || (day == len && self.days.iter().any(|d| *d > len))
    }
}

fn days_in_month(date: NaiveDate) -> u32 {
    let (y, m) = (date.year(), date.month());
    let first_next = if m == 12 { NaiveDate::from_ymd_opt(y + 1, 1, 1) } else { NaiveDate::from_ymd_opt(y, m + 1, 1) };
    first_next.and_then(|d| d.pred_opt()).map_or(31, |d| d.day())
}

fn to_rrule(rule: &RecurrenceRule, clamp: &Clamp) -> rrule::RRule<rrule::Unvalidated> {
    let freq = match rule.freq() {
        Frequency::Daily => rrule::Frequency::Daily,
        Frequency::Weekly => rrule::Frequency::Weekly,
        Frequency::Monthly => rrule::Frequency::Monthly,
        Frequency::Yearly => rrule::Frequency::Yearly,
    };
    let by_day = rule
        .by_day()
        .iter()
        .map(|d| match d.ordinal {
            Some(n) => rrule::NWeekday::Nth(i16::from(n), d.weekday),
            None => rrule::NWeekday::Every(d.weekday),
        })
        .collect();
    let months: Vec<chrono::Month> = rule.by_month().iter().filter_map(|m| chrono::Month::try_from(*m).ok()).collect();
    rrule::RRule::new(freq).interval(rule.interval()).by_weekday(by_day).by_month_day(clamp.month_days(rule)).by_month(&months)
}

/// What `recurring-service` asks `todo-api` to create
/// (`POST /internal/todo/{user_id}/occurrences`): the next task of a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OccurrenceRequest {
    /// The series (the id of its first task).
    pub series_id: TaskId,
    /// The new task's 1-based position in the series (at least 2).
    pub occurrence: u32,
    /// The new task's fields, in the form of `POST /api/{user_id}/tasks`.
    pub task: Value,
}

impl OccurrenceRequest {
    /// The next occurrence of `task`, which a `completed` event carries;
    /// `Ok(None)` when the task is not a completed recurring task with a due
    /// date, and why not when its series has ended.
    pub fn next_of(task: &Task) -> Result<Option<Self>, SeriesEnd> {
        let (Some(rule), Some(due), Some(completed_at), true) = (task.recurrence.as_ref(), task.due_at, task.completed_at, task.completed)
        else {
            return Ok(None);
        };
        let zone = task.time_zone.unwrap_or(TimeZone::UTC);
        let occurrence = task.occurrence.unwrap_or(1);
        let next = next_occurrence(rule, zone, due, occurrence, completed_at)?;
        let wall = |t: DateTime<Utc>| t.with_timezone(&zone.tz()).naive_local();
        let (due_wall, next_wall) = (wall(due), wall(next.due_at));
        let reminders: Vec<String> = task
            .reminders
            .as_slice()
            .iter()
            .map(|r| match r {
                Reminder::Before(_) => Some(r.to_string()),
                Reminder::At(at) => next_wall
                    .checked_add_signed(wall(*at) - due_wall)
                    .and_then(|t| zone.resolve(t))
                    .filter(|t| in_range(*t))
                    .map(|t| Reminder::At(t).to_string()),
            })
            .collect::<Option<_>>()
            .ok_or(SeriesEnd::OutOfRange)?;
        let body = serde_json::json!({
            "title": task.title,
            "description": task.description,
            "priority": task.priority,
            "tags": task.tags,
            "due_at": next.due_at,
            "time_zone": zone,
            "reminders": reminders,
            "recurrence": { "rrule": next.rule.to_rrule_string(), "anchor": next.rule.anchor() },
        });
        Ok(Some(OccurrenceRequest { series_id: task.series_id.unwrap_or(task.id), occurrence: occurrence + 1, task: body }))
    }

    /// Parses the body of `POST /internal/todo/{user_id}/occurrences`.
    pub fn from_json(body: &[u8]) -> Result<(Self, NewTask), DomainError> {
        let request: OccurrenceRequest = serde_json::from_slice(body).map_err(crate::task::body_error)?;
        if request.occurrence < 2 {
            return Err(DomainError::new("occurrence", Rule::OutOfRange, "a next occurrence is at least the 2nd"));
        }
        let new =
            NewTask::from_json(request.task.to_string().as_bytes()).map_err(|e| DomainError { field: format!("task.{}", e.field), ..e })?;
        Ok((request, new))
    }
}

impl UserLedger {
    /// Creates occurrence `request.occurrence` of a series (a `created` event).
    pub fn create_occurrence(&mut self, user: &UserId, request: &OccurrenceRequest, new: NewTask, now: DateTime<Utc>) -> Created {
        let mut task = Task::create(TaskId::new_v7(), user.clone(), new, self.creation_time(now));
        task.series_id = Some(request.series_id);
        task.occurrence = Some(request.occurrence);
        self.add(task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::parse_instant;
    use crate::EventType;
    use proptest::prelude::*;

    fn at(raw: &str) -> DateTime<Utc> {
        parse_instant(raw, "t").unwrap()
    }

    fn rule(raw: &str) -> RecurrenceRule {
        RecurrenceRule::parse(raw, Anchor::Due).unwrap()
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::parse(name).unwrap()
    }

    /// Due dates of occurrences 2..=n+1, each completed `late` after its due date.
    fn chain(raw: &str, anchor: Anchor, tz: &str, first_due: &str, n: usize) -> Vec<String> {
        let tz = zone(tz);
        let mut r = RecurrenceRule::parse(raw, anchor).unwrap();
        let mut due = at(first_due);
        let mut out = Vec::new();
        for occurrence in 1..=n as u32 {
            let Ok(next) = next_occurrence(&r, tz, due, occurrence, due) else { break };
            out.push(next.due_at.with_timezone(&tz.tz()).format("%Y-%m-%d %H:%M %Z").to_string());
            due = next.due_at;
            r = next.rule;
        }
        out
    }

    #[test]
    fn jan_31_monthly_clamps_to_month_ends_without_drift() {
        let want = ["2026-02-28 09:00 UTC", "2026-03-31 09:00 UTC", "2026-04-30 09:00 UTC", "2026-05-31 09:00 UTC"];
        assert_eq!(chain("FREQ=MONTHLY", Anchor::Due, "UTC", "2026-01-31T09:00:00Z", 4), want);
        assert_eq!(chain("FREQ=MONTHLY;BYMONTHDAY=31", Anchor::Due, "UTC", "2026-01-31T09:00:00Z", 4), want);
        // Leap year February, and the 30th clamps only in February.
        assert_eq!(
            chain("FREQ=MONTHLY;BYMONTHDAY=30", Anchor::Due, "UTC", "2028-01-30T09:00:00Z", 3),
            ["2028-02-29 09:00 UTC", "2028-03-30 09:00 UTC", "2028-04-30 09:00 UTC"]
        );
        // The explicit last day (-1) needs no clamping.
        assert_eq!(
            chain("FREQ=MONTHLY;BYMONTHDAY=-1", Anchor::Due, "UTC", "2026-01-31T09:00:00Z", 2),
            ["2026-02-28 09:00 UTC", "2026-03-31 09:00 UTC"]
        );
        // The pinned rule is what the next occurrence carries.
        let next =
            next_occurrence(&rule("FREQ=MONTHLY"), TimeZone::UTC, at("2026-01-31T09:00:00Z"), 1, at("2026-01-31T10:00:00Z")).unwrap();
        assert_eq!(next.rule.to_rrule_string(), "FREQ=MONTHLY;BYMONTHDAY=31");
        // With BYDAY, month days filter (RFC 5545): Friday the 13th.
        assert_eq!(
            chain("FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", Anchor::Due, "UTC", "2026-02-13T09:00:00Z", 2),
            ["2026-03-13 09:00 UTC", "2026-11-13 09:00 UTC"]
        );
    }

    #[test]
    fn feb_29_yearly_falls_on_feb_28_in_common_years() {
        assert_eq!(
            chain("FREQ=YEARLY", Anchor::Due, "Europe/Berlin", "2028-02-29T08:00:00Z", 5),
            ["2029-02-28 09:00 CET", "2030-02-28 09:00 CET", "2031-02-28 09:00 CET", "2032-02-29 09:00 CET", "2033-02-28 09:00 CET"]
        );
    }

    #[test]
    fn daily_9am_stays_9am_across_dst_in_berlin_and_new_york() {
        // Europe/Berlin: forward 2026-03-29, back 2026-10-25.
        assert_eq!(
            chain("FREQ=DAILY", Anchor::Due, "Europe/Berlin", "2026-03-28T08:00:00Z", 2),
            ["2026-03-29 09:00 CEST", "2026-03-30 09:00 CEST"]
        );
        assert_eq!(chain("FREQ=DAILY", Anchor::Due, "Europe/Berlin", "2026-10-24T07:00:00Z", 1), ["2026-10-25 09:00 CET"]);
        // America/New_York: forward 2026-03-08, back 2026-11-01.
        assert_eq!(chain("FREQ=WEEKLY", Anchor::Due, "America/New_York", "2026-03-02T14:00:00Z", 1), ["2026-03-09 09:00 EDT"]);
        assert_eq!(chain("FREQ=DAILY", Anchor::Due, "America/New_York", "2026-10-31T13:00:00Z", 1), ["2026-11-01 09:00 EST"]);
        let ny = |raw: &str| next_occurrence(&rule("FREQ=DAILY"), zone("America/New_York"), at(raw), 1, at(raw)).unwrap().due_at;
        assert_eq!(ny("2026-03-07T14:00:00Z"), at("2026-03-08T13:00:00Z"), "23-hour day");
        assert_eq!(ny("2026-10-31T13:00:00Z"), at("2026-11-01T14:00:00Z"), "25-hour day");
    }

    #[test]
    fn times_in_a_dst_gap_move_forward_and_ambiguous_times_take_the_first() {
        // 02:30 does not exist in Berlin on 2026-03-29: it becomes 03:30 CEST.
        // The series then stays at 03:30 (the due date is its only memory of the time).
        assert_eq!(
            chain("FREQ=DAILY", Anchor::Due, "Europe/Berlin", "2026-03-28T01:30:00Z", 2),
            ["2026-03-29 03:30 CEST", "2026-03-30 03:30 CEST"]
        );
        // 01:30 happens twice in New York on 2026-11-01: the first (EDT).
        assert_eq!(chain("FREQ=DAILY", Anchor::Due, "America/New_York", "2026-10-31T05:30:00Z", 1), ["2026-11-01 01:30 EDT"]);
    }

    #[test]
    fn byday_with_interval_keeps_its_weeks() {
        // Every 2 weeks on Monday and Friday from Monday 2026-01-05.
        assert_eq!(
            chain("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR", Anchor::Due, "UTC", "2026-01-05T09:00:00Z", 5),
            ["2026-01-09 09:00 UTC", "2026-01-19 09:00 UTC", "2026-01-23 09:00 UTC", "2026-02-02 09:00 UTC", "2026-02-06 09:00 UTC"]
        );
        assert_eq!(
            chain("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", Anchor::Due, "UTC", "2026-01-08T09:00:00Z", 3),
            ["2026-01-09 09:00 UTC", "2026-01-12 09:00 UTC", "2026-01-13 09:00 UTC"]
        );
        assert_eq!(
            chain("FREQ=MONTHLY;BYDAY=-1FR", Anchor::Due, "UTC", "2026-01-30T09:00:00Z", 2),
            ["2026-02-27 09:00 UTC", "2026-03-27 09:00 UTC"]
        );
    }

    #[test]
    fn missed_occurrences_do_not_pile_up() {
        // Due Monday 5 Jan, completed Wednesday 21 Jan: next is Thursday 22 Jan, not 6 Jan.
        let next = next_occurrence(&rule("FREQ=DAILY"), TimeZone::UTC, at("2026-01-05T09:00:00Z"), 1, at("2026-01-21T12:00:00Z")).unwrap();
        assert_eq!(next.due_at, at("2026-01-22T09:00:00Z"));
        // Completed early, before the due date: the occurrence after the due date.
        let next = next_occurrence(&rule("FREQ=WEEKLY"), TimeZone::UTC, at("2026-01-05T09:00:00Z"), 1, at("2026-01-01T12:00:00Z")).unwrap();
        assert_eq!(next.due_at, at("2026-01-12T09:00:00Z"));
    }

    #[test]
    fn count_and_until_end_the_series() {
        let r = rule("FREQ=DAILY;COUNT=3");
        let due = at("2026-01-05T09:00:00Z");
        assert!(next_occurrence(&r, TimeZone::UTC, due, 2, due).is_ok(), "occurrence 3 of 3 exists");
        assert_eq!(next_occurrence(&r, TimeZone::UTC, due, 3, due), Err(SeriesEnd::Count(3)), "occurrence 4 of 3 does not");
        assert_eq!(chain("FREQ=DAILY;COUNT=3", Anchor::Due, "UTC", "2026-01-05T09:00:00Z", 10).len(), 2);
        let until = chain("FREQ=DAILY;UNTIL=20260108T090000Z", Anchor::Due, "UTC", "2026-01-05T09:00:00Z", 10);
        assert_eq!(until, ["2026-01-06 09:00 UTC", "2026-01-07 09:00 UTC", "2026-01-08 09:00 UTC"], "UNTIL is inclusive");
        let last = at("2026-01-08T09:00:00Z");
        let end = next_occurrence(&rule("FREQ=DAILY;UNTIL=20260108T090000Z"), TimeZone::UTC, last, 4, last);
        assert_eq!(end, Err(SeriesEnd::Until(last)));
    }

    #[test]
    fn completion_anchor_counts_from_the_completion_day() {
        let every3 = RecurrenceRule::parse("FREQ=DAILY;INTERVAL=3", Anchor::Completion).unwrap();
        let ny = zone("America/New_York");
        // Due the 5th 09:00 EST, completed the 10th at 18:00 EST: due the 13th at 09:00 EST.
        let next = next_occurrence(&every3, ny, at("2026-01-05T14:00:00Z"), 1, at("2026-01-10T23:00:00Z")).unwrap();
        assert_eq!(next.due_at, at("2026-01-13T14:00:00Z"));
        assert_eq!(next.rule, every3, "a completion series keeps its rule");
        // The local date counts: 01:00 UTC on the 11th is still the 10th in New York.
        let next = next_occurrence(&every3, ny, at("2026-01-05T14:00:00Z"), 1, at("2026-01-11T01:00:00Z")).unwrap();
        assert_eq!(next.due_at, at("2026-01-13T14:00:00Z"));
        // Across DST forward (2026-03-08): still 09:00 local.
        let next = next_occurrence(&every3, ny, at("2026-03-01T14:00:00Z"), 1, at("2026-03-06T12:00:00Z")).unwrap();
        assert_eq!(next.due_at, at("2026-03-09T13:00:00Z"));
        // Weekly on Monday: the next Monday after the completion day.
        let monday = RecurrenceRule::parse("FREQ=WEEKLY;BYDAY=MO", Anchor::Completion).unwrap();
        let next = next_occurrence(&monday, TimeZone::UTC, at("2026-01-05T09:00:00Z"), 1, at("2026-01-14T08:00:00Z")).unwrap();
        assert_eq!(next.due_at, at("2026-01-19T09:00:00Z"));
        // Monthly, completed Jan 31: Feb 28 (clamped).
        let monthly = RecurrenceRule::parse("FREQ=MONTHLY", Anchor::Completion).unwrap();
        let next = next_occurrence(&monthly, TimeZone::UTC, at("2026-01-20T09:00:00Z"), 1, at("2026-01-31T20:00:00Z")).unwrap();
        assert_eq!((next.due_at, next.rule.to_rrule_string()), (at("2026-02-28T09:00:00Z"), "FREQ=MONTHLY".to_owned()));
    }

    fn completed_task(body: Value, completed_at: &str) -> Task {
        let new = NewTask::from_json(body.to_string().as_bytes()).unwrap();
        let mut ledger = UserLedger::default();
        let mut task = ledger.create_task(&UserId::parse("alice").unwrap(), new, at("2026-01-01T00:00:00Z")).task;
        ledger.toggle_completed(&mut task, None, at(completed_at));
        task.task
    }

    #[test]
    fn the_request_carries_the_task_and_moves_its_reminders() {
        let task = completed_task(
            serde_json::json!({"title": "Standup", "description": "d", "priority": "high", "tags": ["work"],
                "due_at": "2026-03-27T09:00:00+01:00", "time_zone": "Europe/Berlin",
                "reminders": ["PT15M", "2026-03-26T18:00:00+01:00"], "recurrence": {"text": "every weekday"}}),
            "2026-03-27T09:30:00Z",
        );
        let request = OccurrenceRequest::next_of(&task).unwrap().unwrap();
        assert_eq!((request.series_id, request.occurrence), (task.id, 2));
        // Friday 27 March 09:00 CET -> Monday 30 March 09:00 CEST.
        assert_eq!(request.task["due_at"], "2026-03-30T07:00:00Z");
        assert_eq!(
            request.task["reminders"],
            serde_json::json!(["PT15M", "2026-03-29T16:00:00Z"]),
            "18:00 the evening before, in local time (CET before, CEST after)"
        );
        let body = serde_json::to_vec(&request).unwrap();
        let (parsed, new) = OccurrenceRequest::from_json(&body).unwrap();
        assert_eq!(parsed, request);
        let mut ledger = UserLedger::default();
        let created = ledger.create_occurrence(&task.user_id, &parsed, new, at("2026-03-27T09:30:01Z"));
        let (next, event) = (created.task.task, created.event);
        assert_eq!((next.series_id, next.occurrence, event.event_type), (Some(task.id), Some(2), EventType::Created));
        assert_eq!(
            (next.title.clone(), next.priority, next.tags.clone(), next.time_zone),
            (task.title.clone(), task.priority, task.tags.clone(), task.time_zone)
        );
        assert_eq!(serde_json::to_value(&next.recurrence).unwrap()["text"], "every weekday");
        assert!(!next.completed);
    }

    #[test]
    fn no_request_for_open_plain_or_ended_tasks() {
        let plain = completed_task(serde_json::json!({"title": "x", "due_at": "2026-01-05T09:00:00Z"}), "2026-01-05T10:00:00Z");
        assert_eq!(OccurrenceRequest::next_of(&plain), Ok(None));
        let once = completed_task(
            serde_json::json!({"title": "x", "due_at": "2026-01-05T09:00:00Z", "recurrence": {"text": "every day for 1 time"}}),
            "2026-01-05T10:00:00Z",
        );
        assert_eq!(OccurrenceRequest::next_of(&once), Err(SeriesEnd::Count(1)), "ended, and says why");
        let mut open = completed_task(
            serde_json::json!({"title": "x", "due_at": "2026-01-05T09:00:00Z", "recurrence": {"text": "every day"}}),
            "2026-01-05T10:00:00Z",
        );
        open.completed = false;
        assert_eq!(OccurrenceRequest::next_of(&open), Ok(None));
        assert_eq!(
            OccurrenceRequest::from_json(br#"{"series_id":"019a0000-0000-7000-8000-000000000000","occurrence":1,"task":{"title":"x"}}"#)
                .unwrap_err()
                .field,
            "occurrence"
        );
        assert_eq!(
            OccurrenceRequest::from_json(br#"{"series_id":"019a0000-0000-7000-8000-000000000000","occurrence":2,"task":{}}"#)
                .unwrap_err()
                .field,
            "task.title"
        );
    }

    #[test]
    fn series_end_where_the_api_takes_no_more_dates() {
        // Found by the fuzz checks: the next occurrence was due in the year 10000, which the API refuses.
        let due = at("9999-12-31T09:00:00Z");
        assert!(next_occurrence(&rule("FREQ=DAILY"), TimeZone::UTC, due, 1, due).is_err());
        let body = serde_json::json!({"title": "x", "due_at": "9999-01-01T09:00:00Z", "reminders": ["9999-12-31T00:00:00Z"], "recurrence": {"text": "every month"}});
        let task = completed_task(body, "2026-01-02T00:00:00Z");
        assert!(
            next_occurrence(task.recurrence.as_ref().unwrap(), TimeZone::UTC, task.due_at.unwrap(), 1, at("2026-01-02T00:00:00Z")).is_ok()
        );
        assert_eq!(OccurrenceRequest::next_of(&task), Err(SeriesEnd::OutOfRange), "the moved reminder would be in the year 10000");
    }

    #[test]
    fn absolute_reminders_keep_their_local_time_across_dst() {
        // Due Saturday 09:00 CET, reminded Friday 20:00 CET; DST starts on Sunday 2030-03-31.
        let task = completed_task(
            serde_json::json!({"title": "t", "due_at": "2030-03-30T09:00:00+01:00", "time_zone": "Europe/Berlin",
                "reminders": ["2030-03-29T20:00:00+01:00"], "recurrence": {"text": "every day"}}),
            "2030-03-30T09:30:00Z",
        );
        let request = OccurrenceRequest::next_of(&task).unwrap().unwrap();
        assert_eq!(request.task["due_at"], "2030-03-31T07:00:00Z", "Sunday 09:00 CEST");
        assert_eq!(request.task["reminders"], serde_json::json!(["2030-03-30T19:00:00Z"]), "Saturday 20:00 CET, not 19:00");
        // Back across the fall-back: due Sunday 2030-10-27 09:00 CET, reminded Saturday 20:00 CEST.
        let task = completed_task(
            serde_json::json!({"title": "t", "due_at": "2030-10-26T09:00:00+02:00", "time_zone": "Europe/Berlin",
                "reminders": ["2030-10-25T20:00:00+02:00"], "recurrence": {"text": "every day"}}),
            "2030-10-26T09:30:00Z",
        );
        let request = OccurrenceRequest::next_of(&task).unwrap().unwrap();
        assert_eq!(request.task["due_at"], "2030-10-27T08:00:00Z");
        assert_eq!(request.task["reminders"], serde_json::json!(["2030-10-26T18:00:00Z"]), "Saturday 20:00 CEST");
    }

    #[test]
    fn a_due_time_in_a_midnight_gap_shifts_forward_and_the_series_goes_on() {
        // Havana springs forward at 00:00 on 2026-03-08 (CST -5 to CDT -4): 00:30 does not exist.
        let havana = zone("America/Havana");
        let due = at("2026-03-07T00:30:00-05:00");
        let next = next_occurrence(&rule("FREQ=DAILY"), havana, due, 1, due).expect("the series goes on");
        assert_eq!(next.due_at, at("2026-03-08T01:30:00-04:00"), "shifted forward by the gap (RFC 5545)");
        let every = RecurrenceRule::parse("FREQ=DAILY", Anchor::Completion).unwrap();
        let next = next_occurrence(&every, havana, due, 1, at("2026-03-07T20:00:00-05:00")).expect("completed the day before");
        assert_eq!(next.due_at, at("2026-03-08T01:30:00-04:00"));
        let next = next_occurrence(&every, havana, due, 1, at("2026-03-08T12:00:00-04:00")).expect("completed on the gap day");
        assert_eq!(next.due_at, at("2026-03-09T00:30:00-04:00"));
        // Havana falls back at 01:00 on 2026-11-01: 00:30 happens twice; the first (CDT) counts.
        let due = at("2026-10-31T00:30:00-04:00");
        let next = next_occurrence(&rule("FREQ=DAILY"), havana, due, 1, due).expect("the series goes on");
        assert_eq!(next.due_at, at("2026-11-01T00:30:00-04:00"));
        let next = next_occurrence(&every, havana, due, 1, at("2026-11-01T00:10:00-05:00")).expect("completed on the ambiguous day");
        assert_eq!(next.due_at, at("2026-11-02T00:30:00-05:00"));
    }

    #[test]
    fn until_in_a_phrase_ends_at_the_end_of_that_day_in_the_tasks_zone() {
        let body = |due: &str| {
            serde_json::json!({"title": "t", "due_at": due, "time_zone": "America/Los_Angeles",
                "recurrence": {"text": "every day until 2026-12-31"}})
        };
        // 17:00 on Dec 30 in Los Angeles: Dec 31 17:00 PST (01:00 UTC on Jan 1) is still in the series.
        let task = completed_task(body("2026-12-30T17:00:00-08:00"), "2026-12-31T02:00:00Z");
        let v = serde_json::to_value(&task).unwrap();
        assert_eq!(v["recurrence"]["rrule"], "FREQ=DAILY;UNTIL=20270101T075959Z");
        assert_eq!(v["recurrence"]["text"], "every day until 2026-12-31", "said back in the task's zone");
        let request = OccurrenceRequest::next_of(&task).unwrap().expect("Dec 31 is in the series");
        assert_eq!(request.task["due_at"], "2027-01-01T01:00:00Z");
        let last = completed_task(body("2026-12-31T17:00:00-08:00"), "2027-01-01T02:00:00Z");
        assert!(matches!(OccurrenceRequest::next_of(&last), Err(SeriesEnd::Until(_))), "Jan 1 is not");
        // A phrase given in a PATCH reads the task's zone too.
        let mut task = completed_task(body("2026-12-30T17:00:00-08:00"), "2026-12-31T02:00:00Z");
        let patch = crate::TaskPatch::from_json(br#"{"recurrence": {"text": "every day until 2027-01-05"}}"#).unwrap();
        task.apply(patch, at("2026-12-31T03:00:00Z")).unwrap();
        assert_eq!(task.recurrence.unwrap().to_rrule_string(), "FREQ=DAILY;UNTIL=20270106T075959Z");
    }

    fn zones() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just("UTC"), Just("Europe/Berlin"), Just("America/New_York"), Just("Australia/Sydney"), Just("Asia/Kolkata")]
    }

    proptest! {
        /// A due-anchored daily or weekly series keeps its local time of day
        /// (outside DST gaps), moves forward past both due and completion.
        #[test]
        fn due_series_keep_local_time_and_move_forward(
            tz in zones(), freq in prop_oneof![Just("DAILY"), Just("WEEKLY"), Just("MONTHLY"), Just("YEARLY")],
            interval in 1u16..=3, days in 0i64..4000, hour in 5u32..=22, late_hours in 0i64..2000,
        ) {
            let z = zone(tz);
            let r = rule(&format!("FREQ={freq};INTERVAL={interval}"));
            let local = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::TimeDelta::days(days);
            let due = local.and_hms_opt(hour, 0, 0).unwrap().and_local_timezone(z.tz()).earliest().unwrap().with_timezone(&Utc);
            let completed = due + chrono::TimeDelta::hours(late_hours);
            let next = next_occurrence(&r, z, due, 1, completed).unwrap();
            prop_assert!(next.due_at > due && next.due_at > completed);
            let local_next = next.due_at.with_timezone(&z.tz());
            prop_assert_eq!(local_next.time(), due.with_timezone(&z.tz()).time());
            // Month days clamp but never exceed the original day.
            prop_assert!(local_next.day() <= due.with_timezone(&z.tz()).day() || freq == "DAILY" || freq == "WEEKLY");
        }

        /// Monthly on day d >= 29: every month of the year has exactly one occurrence.
        #[test]
        fn clamped_monthly_hits_every_month(d in 29u32..=31, year in 2020i32..2040) {
            let r = rule(&format!("FREQ=MONTHLY;BYMONTHDAY={d}"));
            let mut due = NaiveDate::from_ymd_opt(year - 1, 12, 31.min(d)).unwrap().and_hms_opt(9, 0, 0).unwrap().and_utc();
            for month in 1..=12u32 {
                let next = next_occurrence(&r, TimeZone::UTC, due, 1, due).unwrap();
                let date = next.due_at.date_naive();
                prop_assert_eq!((date.year(), date.month(), date.day()), (year, month, d.min(days_in_month(date))));
                due = next.due_at;
            }
        }
    }
}
