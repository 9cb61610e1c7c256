//! `If-Match` (RFC 9110 13.1.1): which versions of a task a write may change.

use crate::{DomainError, Rule};

/// A parsed `If-Match` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any current version.
    Any,
    /// A list of entity-tags; the write applies when the task's tag is one of
    /// the strong ones (weak tags never match, RFC 9110 strong comparison).
    Tags(Vec<EntityTag>),
}

/// One entity-tag: `"opaque"` or `W/"opaque"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag {
    /// `W/` was given.
    pub weak: bool,
    /// The characters between the quotes.
    pub opaque: String,
}

impl IfMatch {
    /// Parses the header value: `*`, or a comma-separated list of entity-tags.
    /// A tag needs its quotes and visible ASCII inside them (`etagc`); a
    /// well-formed tag that names no current version is not an error here, it
    /// fails the precondition (412).
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let raw = raw.trim();
        if raw == "*" {
            return Ok(IfMatch::Any);
        }
        let bad = || DomainError::new("If-Match", Rule::Format, "If-Match must be * or entity-tags such as \"3\"");
        let tags = raw
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|tag| {
                let (weak, quoted) = match tag.strip_prefix("W/") {
                    Some(rest) => (true, rest),
                    None => (false, tag),
                };
                let opaque = quoted.strip_prefix('"').and_then(|r| r.strip_suffix('"')).ok_or_else(bad)?;
                if !opaque.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b)) {
                    return Err(bad());
                }
                Ok(EntityTag { weak, opaque: opaque.to_owned() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if tags.is_empty() {
            return Err(bad());
        }
        Ok(IfMatch::Tags(tags))
    }

    /// Whether a task at `version` (entity-tag `"<version>"`) meets the condition.
    pub fn matches(&self, version: u64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Tags(tags) => tags.iter().any(|t| !t.weak && t.opaque == version.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn well_formed_tags_match_or_fail_the_precondition() {
        assert!(IfMatch::parse("*").unwrap().matches(7));
        assert!(IfMatch::parse("\"3\"").unwrap().matches(3));
        assert!(!IfMatch::parse("\"3\"").unwrap().matches(4));
        // Well formed but no version of ours: a failed precondition, not bad input.
        assert!(!IfMatch::parse("\"stale\"").unwrap().matches(1));
        assert!(!IfMatch::parse("\"\"").unwrap().matches(1));
        assert!(IfMatch::parse(" \"1\", \"4\" ").unwrap().matches(4));
        assert!(!IfMatch::parse("W/\"4\"").unwrap().matches(4), "weak tags never match");
    }

    #[test]
    fn malformed_headers_are_refused() {
        for raw in ["", "3", "\"3", "3\"", "\"a b\"", "\"a\"b\"", "W/3", ",", "\"1\" \"2\"", "**"] {
            let e = IfMatch::parse(raw).unwrap_err();
            assert_eq!((e.field.as_str(), e.rule), ("If-Match", Rule::Format), "{raw:?}");
        }
    }

    proptest! {
        #[test]
        fn the_tag_of_a_version_matches_only_it(version in 0u64..1_000_000, other in 0u64..1_000_000) {
            let header = IfMatch::parse(&format!("\"{version}\"")).unwrap();
            prop_assert!(header.matches(version));
            prop_assert_eq!(header.matches(other), other == version);
        }
    }
}
