//! Why input was refused: the field and the rule it broke.

use std::fmt;

/// The rule a piece of input broke; stable names that clients can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A required field is absent.
    Required,
    /// Too short or blank after trimming.
    TooShort,
    /// Longer than allowed.
    TooLong,
    /// Characters outside the allowed set.
    Charset,
    /// Not in the expected format.
    Format,
    /// A field the API does not know.
    Unknown,
    /// A number or instant outside the allowed range.
    OutOfRange,
    /// More items than allowed in a list.
    TooMany,
    /// The same item (or query parameter) given twice.
    Duplicate,
    /// The field needs another field that is absent (e.g. a reminder offset needs `due_at`).
    Requires,
}

impl Rule {
    /// Stable identifier of the rule, as it appears in error responses.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Required => "required",
            Rule::TooShort => "too_short",
            Rule::TooLong => "too_long",
            Rule::Charset => "charset",
            Rule::Format => "format",
            Rule::Unknown => "unknown_field",
            Rule::OutOfRange => "out_of_range",
            Rule::TooMany => "too_many",
            Rule::Duplicate => "duplicate",
            Rule::Requires => "requires",
        }
    }
}

/// Input refused by a domain rule. Always the client's fault (a 4xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct DomainError {
    /// The offending field, as named in the API (`title`, `user_id`, ...).
    pub field: String,
    /// The rule that was broken.
    pub rule: Rule,
    /// A human-readable explanation.
    pub message: String,
}

impl DomainError {
    /// An error for `field` breaking `rule`.
    pub fn new(field: impl Into<String>, rule: Rule, message: impl fmt::Display) -> Self {
        DomainError { field: field.into(), rule, message: message.to_string() }
    }
}
