//! `If-Match` (RFC 9110 13.1.1): which versions of a task a write may change.

use crate::{DomainError, Rule};

/// [`IfMatch::parse`]'s grammar as an ECMA-262 regular expression: `*`, or
/// entity-tags (`"3"`, `W/"x"`) separated by commas and optional whitespace.
pub const IF_MATCH_PATTERN: &str = r#"^[ \t]*(\*|[ \t,]*(W/)?"[\x21\x23-\x7E]*"([ \t]*,[ \t,]*(W/)?"[\x21\x23-\x7E]*")*[ \t,]*)[ \t]*$"#;

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
    /// Parses the header value: `*`, or a comma-separated list of entity-tags
    /// (empty list elements are skipped, as RFC 9110 5.6.1 asks of recipients).
    /// A tag needs its quotes and visible ASCII inside them (`etagc`, commas
    /// included); a well-formed tag that names no current version is not an
    /// error here, it fails the precondition (412). [`IF_MATCH_PATTERN`] is the
    /// same grammar as a regular expression (the OpenAPI document's).
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let raw = raw.trim();
        if raw == "*" {
            return Ok(IfMatch::Any);
        }
        let bad = || DomainError::new("If-Match", Rule::Format, "If-Match must be * or entity-tags such as \"3\"");
        let separators: &[char] = &[' ', '\t', ','];
        let mut tags = Vec::new();
        let mut rest = raw.trim_start_matches(separators);
        while !rest.is_empty() {
            let (weak, quoted) = match rest.strip_prefix("W/") {
                Some(after) => (true, after),
                None => (false, rest),
            };
            let inner = quoted.strip_prefix('"').ok_or_else(bad)?;
            let end = inner.find('"').ok_or_else(bad)?;
            let opaque = &inner[..end];
            if !opaque.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b)) {
                return Err(bad());
            }
            tags.push(EntityTag { weak, opaque: opaque.to_owned() });
            let after = inner[end + 1..].trim_start_matches([' ', '\t']);
            if !after.is_empty() && !after.starts_with(',') {
                return Err(bad());
            }
            rest = after.trim_start_matches(separators);
        }
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
        // A comma is an `etagc`: inside quotes it separates nothing.
        assert!(IfMatch::parse("W/\"a,b\", \"3\"").unwrap().matches(3));
        assert_eq!(IfMatch::parse("\"a,b\"").unwrap(), IfMatch::Tags(vec![EntityTag { weak: false, opaque: "a,b".into() }]));
        assert!(IfMatch::parse(", \"2\",,").unwrap().matches(2), "empty list elements are skipped");
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
        fn the_documented_pattern_accepts_what_the_parser_accepts(raw in "[ \t,W/\"3a*é]{0,12}") {
            let pattern = regex::Regex::new(IF_MATCH_PATTERN).unwrap();
            prop_assert_eq!(IfMatch::parse(&raw).is_ok(), pattern.is_match(&raw), "{:?}", raw);
        }

        #[test]
        fn the_tag_of_a_version_matches_only_it(version in 0u64..1_000_000, other in 0u64..1_000_000) {
            let header = IfMatch::parse(&format!("\"{version}\"")).unwrap();
            prop_assert!(header.matches(version));
            prop_assert_eq!(header.matches(other), other == version);
        }
    }
}
