//! Tasks, the input that creates them (POST, PUT) and the input that changes them (PATCH).

use chrono::{DateTime, Utc};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::schedule::parse_instant;
use crate::{Description, DomainError, Priority, RecurrenceRule, Reminders, Rule, Tags, TaskId, TimeZone, Title, UserId};

/// The fields a client sets on a task: the body of `POST /api/{user_id}/tasks`
/// and of `PUT /api/{user_id}/tasks/{id}`.
///
/// A value is consistent: offset reminders and a recurrence have a due date,
/// `UNTIL` does not precede it, and the time zone is set exactly when the due
/// date is (UTC unless given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    title: Title,
    description: Option<Description>,
    priority: Priority,
    tags: Tags,
    due_at: Option<DateTime<Utc>>,
    time_zone: Option<TimeZone>,
    reminders: Reminders,
    recurrence: Option<RecurrenceRule>,
}

/// A request body as sent; each field is parsed on its own so errors name it.
/// A field that is present holds `Some`, even when its value is `null`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default, deserialize_with = "present")]
    title: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    description: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    priority: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    tags: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    due_at: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    time_zone: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    reminders: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    recurrence: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    completed: Option<Value>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl Body {
    /// Parses a JSON object; serde would also fill the struct from an array by
    /// position, which a client never means.
    fn parse(body: &[u8]) -> Result<Self, DomainError> {
        let value: Value = serde_json::from_slice(body).map_err(body_error)?;
        if !value.is_object() {
            return Err(DomainError::new("body", Rule::Format, "must be a JSON object"));
        }
        serde_json::from_value(value).map_err(body_error)
    }
}

impl NewTask {
    /// A task with only a title; every other field takes its default.
    pub fn new(title: Title) -> Self {
        NewTask {
            title,
            description: None,
            priority: Priority::None,
            tags: Tags::default(),
            due_at: None,
            time_zone: None,
            reminders: Reminders::default(),
            recurrence: None,
        }
    }

    /// Parses the JSON body of `POST /api/{user_id}/tasks` (and `PUT`).
    ///
    /// `title` is required; `description`, `priority`, `tags`, `due_at`,
    /// `time_zone`, `reminders` and `recurrence` are optional, and `null` is
    /// the same as absent, as is a blank description. Unknown fields are
    /// refused so that a typo never silently drops data.
    pub fn from_json(body: &[u8]) -> Result<Self, DomainError> {
        let body = Body::parse(body)?;
        if body.completed.is_some() {
            return Err(DomainError::new("completed", Rule::Unknown, "is not a known field here; use PATCH"));
        }
        let given = |v: Option<Value>| v.filter(|v| !v.is_null());
        let title = match given(body.title) {
            Some(v) => Title::parse(string(&v, "title")?)?,
            None => return Err(DomainError::new("title", Rule::Required, "is required")),
        };
        let description = given(body.description).map(|v| description(&v)).transpose()?.flatten();
        let priority = given(body.priority).map(|v| priority(&v)).transpose()?.unwrap_or_default();
        let tags = given(body.tags).map(|v| tags(&v)).transpose()?.unwrap_or_default();
        let due_at = given(body.due_at).map(|v| parse_instant(string(&v, "due_at")?, "due_at")).transpose()?;
        let time_zone = given(body.time_zone).map(|v| TimeZone::parse(string(&v, "time_zone")?)).transpose()?;
        let reminders = given(body.reminders).map(|v| reminders(&v)).transpose()?.unwrap_or_default();
        let recurrence = given(body.recurrence).map(|v| RecurrenceRule::from_json(&v)).transpose()?;
        if time_zone.is_some() && due_at.is_none() {
            return Err(requires_due("time_zone"));
        }
        let time_zone = due_at.map(|_| time_zone.unwrap_or(TimeZone::UTC));
        let recurrence = recurrence.map(|r| r.in_zone(time_zone.unwrap_or(TimeZone::UTC))).transpose()?;
        check_schedule(due_at, &reminders, recurrence.as_ref())?;
        Ok(NewTask { title, description, priority, tags, due_at, time_zone, reminders, recurrence })
    }

    /// The title.
    pub fn title(&self) -> &Title {
        &self.title
    }
}

/// A partial change of a task: the body of `PATCH /api/{user_id}/tasks/{id}`.
///
/// `None` leaves a field as it is. For the nullable fields, `Some(None)` (a
/// JSON `null`) clears it. Checks that involve several fields happen when the
/// patch is applied, against the task's resulting state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskPatch {
    /// New title (`null` is refused).
    pub title: Option<Title>,
    /// New description; `null` or blank clears it.
    pub description: Option<Option<Description>>,
    /// New priority; `null` resets it to `none`.
    pub priority: Option<Priority>,
    /// New tags (replacing all); `null` clears them.
    pub tags: Option<Tags>,
    /// New due date; `null` clears it and its time zone.
    pub due_at: Option<Option<DateTime<Utc>>>,
    /// New time zone of the due date; `null` resets it to UTC.
    pub time_zone: Option<Option<TimeZone>>,
    /// New reminders (replacing all); `null` clears them.
    pub reminders: Option<Reminders>,
    /// New recurrence; `null` stops the task recurring.
    pub recurrence: Option<Option<RecurrenceRule>>,
    /// Complete (`true`) or reopen (`false`) the task.
    pub completed: Option<bool>,
}

impl TaskPatch {
    /// Parses the JSON body of `PATCH /api/{user_id}/tasks/{id}`: the fields
    /// of [`NewTask`] plus `completed`, all optional. Unknown fields are refused.
    pub fn from_json(body: &[u8]) -> Result<Self, DomainError> {
        let body = Body::parse(body)?;
        let nullable = |v: Value| if v.is_null() { None } else { Some(v) };
        Ok(TaskPatch {
            title: match body.title {
                Some(Value::Null) => return Err(DomainError::new("title", Rule::Required, "must not be null")),
                Some(v) => Some(Title::parse(string(&v, "title")?)?),
                None => None,
            },
            description: body.description.map(|v| nullable(v).map(|v| description(&v)).transpose().map(Option::flatten)).transpose()?,
            priority: body.priority.map(|v| nullable(v).map(|v| priority(&v)).transpose().map(Option::unwrap_or_default)).transpose()?,
            tags: body.tags.map(|v| nullable(v).map(|v| tags(&v)).transpose().map(Option::unwrap_or_default)).transpose()?,
            due_at: body.due_at.map(|v| nullable(v).map(|v| parse_instant(string(&v, "due_at")?, "due_at")).transpose()).transpose()?,
            time_zone: body.time_zone.map(|v| nullable(v).map(|v| TimeZone::parse(string(&v, "time_zone")?)).transpose()).transpose()?,
            reminders: body.reminders.map(|v| nullable(v).map(|v| reminders(&v)).transpose().map(Option::unwrap_or_default)).transpose()?,
            recurrence: body.recurrence.map(|v| nullable(v).map(|v| RecurrenceRule::from_json(&v)).transpose()).transpose()?,
            completed: match body.completed {
                Some(Value::Bool(b)) => Some(b),
                Some(_) => return Err(DomainError::new("completed", Rule::Format, "must be true or false")),
                None => None,
            },
        })
    }
}

/// What `PATCH /api/{user_id}/tasks/{id}/complete` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// No body: complete an open task, reopen a completed one. A retry after
    /// a lost response undoes it; clients that retry send [`Completion::Set`].
    Toggle,
    /// `{"completed": true|false}`: that state whatever the current one, so
    /// a retry changes nothing more.
    Set(bool),
}

impl Completion {
    /// Parses the body of `PATCH .../complete`: none (or empty) toggles; a JSON
    /// object with exactly `completed` (a boolean) sets it.
    pub fn from_body(body: Option<&[u8]>) -> Result<Self, DomainError> {
        let Some(body) = body.filter(|b| !b.is_empty()) else { return Ok(Completion::Toggle) };
        let value: Value = serde_json::from_slice(body).map_err(body_error)?;
        let object = value.as_object().ok_or_else(|| DomainError::new("body", Rule::Format, "must be a JSON object"))?;
        if let Some(unknown) = object.keys().find(|k| *k != "completed") {
            return Err(DomainError::new(
                unknown.as_str(),
                Rule::Unknown,
                "is not a known field here; the body is {\"completed\": true|false}",
            ));
        }
        match object.get("completed") {
            Some(Value::Bool(completed)) => Ok(Completion::Set(*completed)),
            Some(_) => Err(DomainError::new("completed", Rule::Format, "must be true or false")),
            None => Err(DomainError::new("completed", Rule::Required, "is required (send no body to toggle)")),
        }
    }

    /// The change it makes to `task`.
    pub fn patch(self, task: &Task) -> TaskPatch {
        let completed = match self {
            Completion::Toggle => !task.completed,
            Completion::Set(completed) => completed,
        };
        TaskPatch { completed: Some(completed), ..TaskPatch::default() }
    }
}

/// A `PUT`: every client-set field is replaced; `completed` is kept.
impl From<NewTask> for TaskPatch {
    fn from(new: NewTask) -> Self {
        TaskPatch {
            title: Some(new.title),
            description: Some(new.description),
            priority: Some(new.priority),
            tags: Some(new.tags),
            due_at: Some(new.due_at),
            time_zone: Some(new.time_zone),
            reminders: Some(new.reminders),
            recurrence: Some(new.recurrence),
            completed: None,
        }
    }
}

fn string<'a>(v: &'a Value, field: &str) -> Result<&'a str, DomainError> {
    v.as_str().ok_or_else(|| DomainError::new(field, Rule::Format, "must be a string"))
}

fn string_list<'a>(v: &'a Value, field: &str) -> Result<Vec<&'a str>, DomainError> {
    let items = v.as_array().ok_or_else(|| DomainError::new(field, Rule::Format, "must be an array of strings"))?;
    items.iter().enumerate().map(|(i, item)| string(item, &format!("{field}[{i}]"))).collect()
}

/// A description, or `None` when blank.
fn description(v: &Value) -> Result<Option<Description>, DomainError> {
    let raw = string(v, "description")?;
    if raw.trim().is_empty() {
        return Ok(None);
    }
    Description::parse(raw).map(Some)
}

fn priority(v: &Value) -> Result<Priority, DomainError> {
    string(v, "priority")?.parse()
}

fn tags(v: &Value) -> Result<Tags, DomainError> {
    Tags::parse(&string_list(v, "tags")?)
}

fn reminders(v: &Value) -> Result<Reminders, DomainError> {
    Reminders::parse(&string_list(v, "reminders")?)
}

fn requires_due(field: &str) -> DomainError {
    DomainError::new(field, Rule::Requires, "requires due_at")
}

/// The rules that tie reminders and recurrence to the due date.
fn check_schedule(due_at: Option<DateTime<Utc>>, reminders: &Reminders, recurrence: Option<&RecurrenceRule>) -> Result<(), DomainError> {
    match (due_at, reminders.first_offset(), recurrence) {
        (None, Some(i), _) => Err(DomainError::new(format!("reminders[{i}]"), Rule::Requires, "an offset reminder requires due_at")),
        (None, None, Some(_)) => Err(requires_due("recurrence")),
        (Some(due), _, Some(rule)) => rule.check_due(due),
        _ => Ok(()),
    }
}

/// Maps a JSON syntax or shape error of a request body to a [`DomainError`].
pub(crate) fn body_error(e: serde_json::Error) -> DomainError {
    let msg = e.to_string();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        // serde writes "unknown field `NAME`, expected ..."; NAME may itself hold a backtick.
        let end = rest.rfind("`, expected").or_else(|| rest.rfind("`, there are no fields")).or_else(|| rest.find('`'));
        let field = &rest[..end.unwrap_or(rest.len())];
        return DomainError::new(field, Rule::Unknown, "is not a known field");
    }
    DomainError::new("body", Rule::Format, format!("invalid JSON: {msg}"))
}

/// A stored task. Only this crate creates or changes one, so every task is
/// consistent (see [`NewTask`]). Fields added after the first release default
/// when absent, so tasks stored before them still load. It is written with
/// its recurrence in its own zone ([`RecurrenceRule::to_json`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Task {
    /// The task's id.
    pub id: TaskId,
    /// The owner.
    pub user_id: UserId,
    /// The title.
    pub title: Title,
    /// The description, if any.
    #[serde(default)]
    pub description: Option<Description>,
    /// The priority.
    #[serde(default)]
    pub priority: Priority,
    /// The tags.
    #[serde(default)]
    pub tags: Tags,
    /// When the task is due, as a UTC instant.
    #[serde(default)]
    pub due_at: Option<DateTime<Utc>>,
    /// The time zone the due date was set in; present exactly when `due_at` is.
    #[serde(default)]
    pub time_zone: Option<TimeZone>,
    /// The reminders.
    #[serde(default)]
    pub reminders: Reminders,
    /// How the task recurs, if it does.
    #[serde(default)]
    pub recurrence: Option<RecurrenceRule>,
    /// Whether the task is done.
    pub completed: bool,
    /// When the task was completed, if it is.
    pub completed_at: Option<DateTime<Utc>>,
    /// When the task was created.
    pub created_at: DateTime<Utc>,
    /// When the task last changed.
    pub updated_at: DateTime<Utc>,
    /// Incremented on every change, starting at 1.
    pub version: u64,
    /// The id of the series' first task, once the task has recurred; never changes after.
    #[serde(default)]
    pub series_id: Option<TaskId>,
    /// The task's 1-based position in its series.
    #[serde(default)]
    pub occurrence: Option<u32>,
}

impl Serialize for Task {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let zone = self.time_zone.unwrap_or(TimeZone::UTC);
        let mut out = s.serialize_struct("Task", 17)?;
        out.serialize_field("id", &self.id)?;
        out.serialize_field("user_id", &self.user_id)?;
        out.serialize_field("title", &self.title)?;
        out.serialize_field("description", &self.description)?;
        out.serialize_field("priority", &self.priority)?;
        out.serialize_field("tags", &self.tags)?;
        out.serialize_field("due_at", &self.due_at)?;
        out.serialize_field("time_zone", &self.time_zone)?;
        out.serialize_field("reminders", &self.reminders)?;
        out.serialize_field("recurrence", &self.recurrence.as_ref().map(|r| r.to_json(zone)))?;
        out.serialize_field("completed", &self.completed)?;
        out.serialize_field("completed_at", &self.completed_at)?;
        out.serialize_field("created_at", &self.created_at)?;
        out.serialize_field("updated_at", &self.updated_at)?;
        out.serialize_field("version", &self.version)?;
        out.serialize_field("series_id", &self.series_id)?;
        out.serialize_field("occurrence", &self.occurrence)?;
        out.end()
    }
}

impl Task {
    /// A fresh, open task created at `now`.
    pub(crate) fn create(id: TaskId, user_id: UserId, new: NewTask, now: DateTime<Utc>) -> Self {
        let recurring = new.recurrence.is_some();
        Task {
            id,
            user_id,
            title: new.title,
            description: new.description,
            priority: new.priority,
            tags: new.tags,
            due_at: new.due_at,
            time_zone: new.time_zone,
            reminders: new.reminders,
            recurrence: new.recurrence,
            completed: false,
            completed_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
            series_id: recurring.then_some(id),
            occurrence: recurring.then_some(1),
        }
    }

    /// Applies a PATCH (or, through `From<NewTask>`, a PUT) at `now`.
    ///
    /// Returns the names of the fields that changed, in a fixed order (for
    /// the `updated` event). When any changed, `version` goes up by one and
    /// `updated_at` becomes `now`; when none did, the task is untouched. On
    /// error the task is untouched as well.
    pub fn apply(&mut self, patch: TaskPatch, now: DateTime<Utc>) -> Result<Vec<&'static str>, DomainError> {
        let mut next = self.clone();
        if let Some(title) = patch.title {
            next.title = title;
        }
        if let Some(description) = patch.description {
            next.description = description;
        }
        if let Some(priority) = patch.priority {
            next.priority = priority;
        }
        if let Some(tags) = patch.tags {
            next.tags = tags;
        }
        if let Some(due_at) = patch.due_at {
            next.due_at = due_at;
        }
        if let Some(reminders) = patch.reminders {
            next.reminders = reminders;
        }
        if let Some(recurrence) = patch.recurrence {
            next.recurrence = recurrence;
        }
        next.time_zone = match (next.due_at, patch.time_zone) {
            (None, Some(Some(_))) => return Err(requires_due("time_zone")),
            (None, _) => None,
            (Some(_), Some(zone)) => Some(zone.unwrap_or(TimeZone::UTC)),
            (Some(_), None) => Some(next.time_zone.unwrap_or(TimeZone::UTC)),
        };
        next.recurrence = next.recurrence.map(|r| r.in_zone(next.time_zone.unwrap_or(TimeZone::UTC))).transpose()?;
        check_schedule(next.due_at, &next.reminders, next.recurrence.as_ref())?;
        if let Some(completed) = patch.completed.filter(|c| *c != next.completed) {
            next.completed = completed;
            next.completed_at = completed.then_some(now);
        }
        if next.recurrence.is_some() && next.series_id.is_none() {
            next.series_id = Some(next.id);
            next.occurrence = Some(1);
        }
        let changed = next.changed_from(self);
        if !changed.is_empty() {
            next.version += 1;
            next.updated_at = now;
            *self = next;
        }
        Ok(changed)
    }

    /// Names of the client-set fields in which `self` differs from `before`.
    fn changed_from(&self, before: &Task) -> Vec<&'static str> {
        [
            ("title", self.title != before.title),
            ("description", self.description != before.description),
            ("priority", self.priority != before.priority),
            ("tags", self.tags != before.tags),
            ("due_at", self.due_at != before.due_at),
            ("time_zone", self.time_zone != before.time_zone),
            ("reminders", self.reminders != before.reminders),
            ("recurrence", self.recurrence != before.recurrence),
            ("completed", self.completed != before.completed),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
    }

    /// The instants at which the task's reminders fire, earliest first
    /// (offsets count back from the due date in the task's zone).
    pub fn reminder_instants(&self) -> Vec<DateTime<Utc>> {
        self.reminders.instants(self.due_at, self.time_zone.unwrap_or(TimeZone::UTC))
    }

    /// Whether the task is open, has a due date, and that date has passed.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        !self.completed && self.due_at.is_some_and(|due| due < now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn new(body: Value) -> Result<NewTask, DomainError> {
        NewTask::from_json(body.to_string().as_bytes())
    }

    fn patch(body: Value) -> Result<TaskPatch, DomainError> {
        TaskPatch::from_json(body.to_string().as_bytes())
    }

    fn at(raw: &str) -> DateTime<Utc> {
        parse_instant(raw, "t").unwrap()
    }

    fn task(body: Value) -> Task {
        Task::create(TaskId::new_v7(), UserId::parse("alice").unwrap(), new(body).unwrap(), at("2026-01-01T00:00:00Z"))
    }

    #[test]
    fn bodies_must_be_objects() {
        for body in [&br#"["Buy milk"]"#[..], b"[]", b"\"x\"", b"3", b"null"] {
            let e = NewTask::from_json(body).unwrap_err();
            assert_eq!((e.field.as_str(), e.rule), ("body", Rule::Format), "{}", String::from_utf8_lossy(body));
            assert_eq!(TaskPatch::from_json(body).unwrap_err().field, "body");
        }
    }

    #[test]
    fn new_task_refuses_unknown_fields_and_wrong_types() {
        let e = NewTask::from_json(br#"{"title":"x","titel":"y"}"#).unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("titel", Rule::Unknown));
        let e = NewTask::from_json(br#"{"title":"x","a`, expected b`c":1}"#).unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("a`, expected b`c", Rule::Unknown), "the whole name, backticks and all");
        assert_eq!(NewTask::from_json(br#"{"title":5}"#).unwrap_err().rule, Rule::Format);
        assert_eq!(NewTask::from_json(br#"{}"#).unwrap_err().rule, Rule::Required);
        assert_eq!(NewTask::from_json(b"{").unwrap_err().field, "body");
        assert_eq!(NewTask::from_json(br#"{"title":" ok "}"#).unwrap().title.as_str(), "ok");
    }

    #[test]
    fn new_task_with_title_only_takes_defaults() {
        assert_eq!(new(json!({"title": "x", "description": null, "tags": null})).unwrap(), NewTask::new(Title::parse("x").unwrap()));
    }

    #[test]
    fn new_task_parses_every_field() {
        let t = task(json!({
            "title": "Pay rent", "description": "  via bank\r\n", "priority": "high",
            "tags": ["Home", "money "], "due_at": "2026-03-01T09:00:00+01:00", "time_zone": "Europe/Paris",
            "reminders": ["PT1H", "2026-02-28T12:00:00Z"],
            "recurrence": {"rrule": "FREQ=MONTHLY;BYMONTHDAY=1", "anchor": "due"}
        }));
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["description"], "  via bank\n");
        assert_eq!(v["priority"], "high");
        assert_eq!(v["tags"], json!(["home", "money"]));
        assert_eq!(v["due_at"], "2026-03-01T08:00:00Z");
        assert_eq!(v["time_zone"], "Europe/Paris");
        assert_eq!(v["reminders"], json!(["PT1H", "2026-02-28T12:00:00Z"]));
        assert_eq!(v["recurrence"], json!({"rrule": "FREQ=MONTHLY;BYMONTHDAY=1", "anchor": "due", "text": "every month on the 1st"}));
        assert_eq!((t.series_id, t.occurrence), (Some(t.id), Some(1)));
        let back: Task = serde_json::from_value(v).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn new_task_cross_field_rules() {
        let rule = |body: Value| new(body).map(|_| ()).map_err(|e| (e.field, e.rule));
        assert_eq!(rule(json!({"title": "x", "time_zone": "UTC"})), Err(("time_zone".into(), Rule::Requires)));
        assert_eq!(
            rule(json!({"title": "x", "reminders": ["2026-01-01T00:00:00Z", "PT5M"]})),
            Err(("reminders[1]".into(), Rule::Requires))
        );
        assert_eq!(rule(json!({"title": "x", "reminders": ["2026-01-01T00:00:00Z"]})), Ok(()));
        assert_eq!(rule(json!({"title": "x", "recurrence": {"rrule": "FREQ=DAILY"}})), Err(("recurrence".into(), Rule::Requires)));
        assert_eq!(
            rule(json!({"title": "x", "due_at": "2026-01-02T00:00:00Z", "recurrence": {"rrule": "FREQ=DAILY;UNTIL=20260101T000000Z"}})),
            Err(("recurrence.rrule".into(), Rule::OutOfRange))
        );
        assert_eq!(rule(json!({"title": "x", "completed": true})), Err(("completed".into(), Rule::Unknown)));
        assert_eq!(rule(json!({"title": "x", "tags": "a"})), Err(("tags".into(), Rule::Format)));
        assert_eq!(rule(json!({"title": "x", "tags": ["a", 1]})), Err(("tags[1]".into(), Rule::Format)));
        assert_eq!(rule(json!({"title": "x", "priority": "max"})), Err(("priority".into(), Rule::Format)));
        assert_eq!(rule(json!({"title": "x", "due_at": "2026-01-02"})), Err(("due_at".into(), Rule::Format)));
    }

    #[test]
    fn due_without_zone_is_utc_and_blank_description_is_absent() {
        let t = task(json!({"title": "x", "due_at": "2026-01-02T00:00:00Z", "description": "   "}));
        assert_eq!((t.time_zone, t.description), (Some(TimeZone::UTC), None));
        assert_eq!((t.series_id, t.occurrence), (None, None));
    }

    #[test]
    fn title_only_tasks_stored_before_the_new_fields_still_load() {
        let stored = json!({
            "id": "019a0000-0000-7000-8000-000000000000", "user_id": "alice", "title": "old",
            "completed": false, "completed_at": null, "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z", "version": 3
        });
        let t: Task = serde_json::from_value(stored).unwrap();
        assert_eq!((t.priority, t.tags.as_slice().len(), t.due_at, t.recurrence), (Priority::None, 0, None, None));
    }

    #[test]
    fn patch_changes_only_what_it_names_and_bumps_version() {
        let mut t = task(json!({"title": "x", "description": "d", "tags": ["a"]}));
        let later = at("2026-01-05T00:00:00Z");
        let changed = t.apply(patch(json!({"title": "y", "priority": "low"})).unwrap(), later).unwrap();
        assert_eq!(changed, ["title", "priority"]);
        assert_eq!((t.title.as_str(), t.version, t.updated_at), ("y", 2, later));
        assert_eq!(t.description.as_ref().map(Description::as_str), Some("d"));
        let unchanged = t.clone();
        assert!(t.apply(patch(json!({"title": "y"})).unwrap(), at("2026-02-01T00:00:00Z")).unwrap().is_empty());
        assert_eq!(t, unchanged);
    }

    #[test]
    fn patch_null_clears_or_resets() {
        let mut t = task(json!({"title": "x", "description": "d", "priority": "high", "tags": ["a"],
            "due_at": "2026-01-02T00:00:00Z", "time_zone": "Asia/Tokyo", "reminders": ["PT5M"]}));
        let now = at("2026-01-03T00:00:00Z");
        assert_eq!(patch(json!({"title": null})).unwrap_err().rule, Rule::Required);
        let e = t.apply(patch(json!({"due_at": null})).unwrap(), now).unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("reminders[0]", Rule::Requires));
        assert_eq!(t.version, 1, "a refused patch leaves the task untouched");
        let changed = t.apply(patch(json!({"time_zone": null})).unwrap(), now).unwrap();
        assert_eq!((changed, t.time_zone), (vec!["time_zone"], Some(TimeZone::UTC)));
        let body = json!({"description": null, "priority": null, "tags": null, "reminders": null, "due_at": null});
        let changed = t.apply(patch(body).unwrap(), now).unwrap();
        assert_eq!(changed, ["description", "priority", "tags", "due_at", "time_zone", "reminders"]);
        assert_eq!((t.description.is_none(), t.priority, t.due_at, t.time_zone), (true, Priority::None, None, None));
        let e = t.apply(patch(json!({"time_zone": "UTC"})).unwrap(), now).unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("time_zone", Rule::Requires));
    }

    #[test]
    fn patch_due_keeps_zone_and_recurrence_starts_a_series_once() {
        let mut t = task(json!({"title": "x", "due_at": "2026-01-02T00:00:00Z", "time_zone": "Asia/Tokyo"}));
        let now = at("2026-01-03T00:00:00Z");
        t.apply(patch(json!({"due_at": "2026-02-02T00:00:00Z"})).unwrap(), now).unwrap();
        assert_eq!(t.time_zone.map(|z| z.name()), Some("Asia/Tokyo"));
        let changed = t.apply(patch(json!({"recurrence": {"rrule": "FREQ=WEEKLY"}})).unwrap(), now).unwrap();
        assert_eq!((changed, t.series_id, t.occurrence), (vec!["recurrence"], Some(t.id), Some(1)));
        t.apply(patch(json!({"recurrence": null})).unwrap(), now).unwrap();
        assert_eq!((t.recurrence.is_none(), t.series_id), (true, Some(t.id)));
    }

    #[test]
    fn patch_completes_and_reopens() {
        let mut t = task(json!({"title": "x"}));
        let now = at("2026-01-03T00:00:00Z");
        assert_eq!(t.apply(patch(json!({"completed": true})).unwrap(), now).unwrap(), ["completed"]);
        assert_eq!((t.completed, t.completed_at), (true, Some(now)));
        assert!(t.apply(patch(json!({"completed": true})).unwrap(), at("2026-01-04T00:00:00Z")).unwrap().is_empty());
        assert_eq!(t.completed_at, Some(now));
        t.apply(patch(json!({"completed": false})).unwrap(), now).unwrap();
        assert_eq!((t.completed, t.completed_at), (false, None));
        assert_eq!(patch(json!({"completed": "yes"})).unwrap_err().rule, Rule::Format);
        assert_eq!(patch(json!({"done": true})).unwrap_err().rule, Rule::Unknown);
    }

    #[test]
    fn put_replaces_every_client_field_but_keeps_completion() {
        let mut t = task(json!({"title": "x", "description": "d", "tags": ["a"], "due_at": "2026-01-02T00:00:00Z"}));
        let now = at("2026-01-03T00:00:00Z");
        t.apply(patch(json!({"completed": true})).unwrap(), now).unwrap();
        let changed = t.apply(new(json!({"title": "x", "priority": "urgent"})).unwrap().into(), now).unwrap();
        assert_eq!(changed, ["description", "priority", "tags", "due_at", "time_zone"]);
        assert!(t.completed);
        assert_eq!(t.version, 3);
    }

    #[test]
    fn completing_with_a_body_is_idempotent() {
        let mut t = task(json!({"title": "x"}));
        let now = at("2026-01-03T00:00:00Z");
        let done = Completion::from_body(Some(br#"{"completed": true}"#)).unwrap();
        assert_eq!(t.apply(done.patch(&t), now).unwrap(), ["completed"]);
        assert!(t.apply(done.patch(&t), now).unwrap().is_empty(), "a retry changes nothing");
        assert!(t.completed);
        // No body toggles, as before.
        assert_eq!(Completion::from_body(None), Ok(Completion::Toggle));
        assert_eq!(Completion::from_body(Some(b"")), Ok(Completion::Toggle));
        t.apply(Completion::Toggle.patch(&t), now).unwrap();
        assert!(!t.completed);
        let rule = |body: &[u8]| Completion::from_body(Some(body)).map_err(|e| (e.field, e.rule));
        assert_eq!(rule(br#"{"completed": false}"#), Ok(Completion::Set(false)));
        assert_eq!(rule(br#"{"completed": "yes"}"#), Err(("completed".into(), Rule::Format)));
        assert_eq!(rule(br#"{}"#), Err(("completed".into(), Rule::Required)));
        assert_eq!(rule(br#"{"completed": true, "title": "y"}"#), Err(("title".into(), Rule::Unknown)));
        assert_eq!(rule(b"[true]"), Err(("body".into(), Rule::Format)));
        assert_eq!(rule(b"{"), Err(("body".into(), Rule::Format)));
    }

    proptest! {
        #[test]
        fn version_grows_exactly_when_fields_change(
            title in proptest::option::of("[a-c]{1,2}"),
            priority in proptest::option::of(proptest::sample::select(Priority::ALL.to_vec())),
            completed in proptest::option::of(any::<bool>()),
        ) {
            let mut t = task(json!({"title": "a"}));
            let before = t.clone();
            let p = TaskPatch { title: title.map(|s| Title::parse(&s).unwrap()), priority, completed, ..TaskPatch::default() };
            let changed = t.apply(p, at("2026-06-01T00:00:00Z")).unwrap();
            prop_assert_eq!(t.version, before.version + u64::from(!changed.is_empty()));
            prop_assert_eq!(changed.contains(&"title"), t.title != before.title);
            prop_assert_eq!(changed.contains(&"priority"), t.priority != before.priority);
            prop_assert_eq!(t.completed_at.is_some(), t.completed);
        }
    }
}
