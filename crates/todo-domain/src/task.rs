//! Tasks and the input that creates them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{DomainError, Rule, TaskId, UserId};

/// Maximum length of a title, in characters.
pub const TITLE_MAX: usize = 200;

/// A task title: trimmed, 1–200 characters, not blank, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Title(String);

impl Title {
    /// Parses a title, trimming surrounding whitespace.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(DomainError::new("title", Rule::TooShort, "must not be blank"));
        }
        let len = trimmed.chars().count();
        if len > TITLE_MAX {
            return Err(DomainError::new("title", Rule::TooLong, format!("at most {TITLE_MAX} characters, got {len}")));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(DomainError::new("title", Rule::Charset, "must not contain control characters"));
        }
        Ok(Title(trimmed.to_owned()))
    }

    /// The title as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Title {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Title::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A request to create a task, parsed from the API's JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    /// The task's title.
    pub title: Title,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTaskBody {
    title: Option<serde_json::Value>,
}

impl NewTask {
    /// Parses the JSON body of `POST /api/{user_id}/tasks`.
    ///
    /// Unknown fields are refused so that a typo never silently drops data.
    pub fn from_json(body: &[u8]) -> Result<Self, DomainError> {
        let parsed: NewTaskBody = serde_json::from_slice(body).map_err(body_error)?;
        let title = match parsed.title {
            Some(serde_json::Value::String(s)) => Title::parse(&s)?,
            Some(_) => return Err(DomainError::new("title", Rule::Format, "must be a string")),
            None => return Err(DomainError::new("title", Rule::Required, "is required")),
        };
        Ok(NewTask { title })
    }
}

/// Maps a JSON syntax or shape error of a request body to a [`DomainError`].
pub(crate) fn body_error(e: serde_json::Error) -> DomainError {
    let msg = e.to_string();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return DomainError::new(field, Rule::Unknown, "is not a known field");
    }
    DomainError::new("body", Rule::Format, format!("invalid JSON: {msg}"))
}

/// A stored task. Only [`crate::UserLedger`] creates one, so every task has a
/// valid title, an owner and consistent timestamps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// The task's id.
    pub id: TaskId,
    /// The owner.
    pub user_id: UserId,
    /// The title.
    pub title: Title,
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
}

impl Task {
    /// A fresh, open task created at `now`.
    pub(crate) fn create(id: TaskId, user_id: UserId, new: NewTask, now: DateTime<Utc>) -> Self {
        Task {
            id,
            user_id,
            title: new.title,
            completed: false,
            completed_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn title_is_trimmed() {
        assert_eq!(Title::parse("  buy milk \n").unwrap().as_str(), "buy milk");
    }

    #[test]
    fn title_limits() {
        assert_eq!(Title::parse("   ").unwrap_err().rule, Rule::TooShort);
        assert_eq!(Title::parse(&"é".repeat(201)).unwrap_err().rule, Rule::TooLong);
        assert!(Title::parse(&"é".repeat(200)).is_ok());
        assert_eq!(Title::parse("a\u{7}b").unwrap_err().rule, Rule::Charset);
    }

    #[test]
    fn new_task_refuses_unknown_fields_and_wrong_types() {
        let e = NewTask::from_json(br#"{"title":"x","titel":"y"}"#).unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("titel", Rule::Unknown));
        assert_eq!(NewTask::from_json(br#"{"title":5}"#).unwrap_err().rule, Rule::Format);
        assert_eq!(NewTask::from_json(br#"{}"#).unwrap_err().rule, Rule::Required);
        assert_eq!(NewTask::from_json(b"{").unwrap_err().field, "body");
        assert_eq!(NewTask::from_json(br#"{"title":" ok "}"#).unwrap().title.as_str(), "ok");
    }

    proptest! {
        #[test]
        fn parsed_titles_are_trimmed_and_bounded(raw in "\\PC{0,250}") {
            if let Ok(t) = Title::parse(&raw) {
                prop_assert_eq!(t.as_str(), t.as_str().trim());
                prop_assert!(!t.as_str().is_empty());
                prop_assert!(t.as_str().chars().count() <= TITLE_MAX);
            }
        }
    }
}
