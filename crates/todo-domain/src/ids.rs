//! Identifiers: users (from the JWT subject and the path), tasks and events.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DomainError, Rule};

/// Maximum length of a user id.
pub const USER_ID_MAX: usize = 128;

/// A user id: 1–128 characters of `A-Z a-z 0-9 - _ . @ |`.
///
/// The charset keeps ids safe inside state keys and URLs; `|` admits OIDC-style
/// subjects such as `auth0|123`. The separator in state keys is `:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// Parses a user id.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.is_empty() {
            return Err(DomainError::new("user_id", Rule::Required, "must not be empty"));
        }
        if raw.chars().count() > USER_ID_MAX {
            return Err(DomainError::new("user_id", Rule::TooLong, format!("at most {USER_ID_MAX} characters")));
        }
        if !raw.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@|".contains(c)) {
            return Err(DomainError::new("user_id", Rule::Charset, "only letters, digits and - _ . @ | are allowed"));
        }
        Ok(UserId(raw.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        UserId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered (UUID v7) id.
            pub fn new_v7() -> Self {
                $name(Uuid::now_v7())
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(raw: &str) -> Result<Self, DomainError> {
                Uuid::parse_str(raw)
                    .map($name)
                    .map_err(|_| DomainError::new($field, Rule::Format, "must be a UUID"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A task id (UUID v7, so ids sort by creation time).
    TaskId,
    "task_id"
);
uuid_id!(
    /// An event id; also the CloudEvent `id`, on which every consumer dedupes.
    EventId,
    "event_id"
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn user_id_accepts_oidc_subjects() {
        assert_eq!(UserId::parse("auth0|abc-1.2_x@y").unwrap().as_str(), "auth0|abc-1.2_x@y");
    }

    #[test]
    fn user_id_rejects_key_separators_and_paths() {
        for bad in ["", "a:b", "a/b", "a b", "ä", &"x".repeat(129)] {
            assert!(UserId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn task_id_parses_only_uuids() {
        let id = TaskId::new_v7();
        assert_eq!(id.to_string().parse::<TaskId>().unwrap(), id);
        assert_eq!("nope".parse::<TaskId>().unwrap_err().field, "task_id");
    }

    proptest! {
        #[test]
        fn parsed_user_ids_never_contain_a_key_separator(raw in "\\PC{0,140}") {
            if let Ok(id) = UserId::parse(&raw) {
                prop_assert!(!id.as_str().contains(':'));
                prop_assert!(!id.as_str().is_empty() && id.as_str().len() <= USER_ID_MAX);
            }
        }
    }
}
