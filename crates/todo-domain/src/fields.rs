//! The plain fields of a task: title, description, priority and tags.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{DomainError, Rule};

/// Maximum length of a title, in characters.
pub const TITLE_MAX: usize = 200;
/// Maximum length of a description, in characters.
pub const DESCRIPTION_MAX: usize = 4_000;
/// Maximum number of tags on a task.
pub const TAGS_MAX: usize = 20;
/// Maximum length of a tag, in characters.
pub const TAG_MAX: usize = 40;

/// The characters `str::trim` removes (Unicode `White_Space`), as a regular
/// expression class body.
pub(crate) const WHITESPACE: &str = r"\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// A text with a character that is not whitespace, as a regular expression
/// (unanchored, as JSON Schema patterns are).
pub fn not_blank_pattern() -> String {
    format!("[^{WHITESPACE}]")
}

/// [`Title::parse`]'s rules as a regular expression (ECMA-262, and the same in
/// Rust's and Python's syntax): optional whitespace, then 1 to [`TITLE_MAX`]
/// characters without control characters that neither start nor end with
/// whitespace, then optional whitespace.
pub fn title_pattern() -> String {
    let edge = format!(r"[^\u0000-\u001F\u007F-\u009F{WHITESPACE}]");
    let inner = r"[^\u0000-\u001F\u007F-\u009F]";
    format!("^[{WHITESPACE}]*{edge}({inner}{{0,{}}}{edge})?[{WHITESPACE}]*$", TITLE_MAX - 2)
}

/// Implements `Deserialize` through the type's `parse`, so stored data is re-checked.
macro_rules! deserialize_via_parse {
    ($name:ident, $raw:ty) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <$raw>::deserialize(d)?;
                $name::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use deserialize_via_parse;

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

deserialize_via_parse!(Title, String);

/// A task description: 1–4,000 characters, not blank, kept as given except
/// that `\r\n` line breaks become `\n`. Control characters other than `\n`
/// and `\t` are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Description(String);

impl Description {
    /// Parses a description. A blank one is refused ([`Rule::TooShort`]);
    /// request bodies treat a blank description as absent instead.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let text = raw.replace("\r\n", "\n");
        if text.trim().is_empty() {
            return Err(DomainError::new("description", Rule::TooShort, "must not be blank"));
        }
        let len = text.chars().count();
        if len > DESCRIPTION_MAX {
            return Err(DomainError::new("description", Rule::TooLong, format!("at most {DESCRIPTION_MAX} characters, got {len}")));
        }
        if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err(DomainError::new(
                "description",
                Rule::Charset,
                "must not contain control characters other than line breaks and tabs",
            ));
        }
        Ok(Description(text))
    }

    /// The description as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

deserialize_via_parse!(Description, String);

/// How urgent a task is; ordered from [`Priority::None`] (lowest) to
/// [`Priority::Urgent`] (highest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// No priority given (the default).
    #[default]
    None,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Urgent.
    Urgent,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Priority; 5] = [Priority::None, Priority::Low, Priority::Medium, Priority::High, Priority::Urgent];

    /// The priority's name as it appears in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::None => "none",
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

impl FromStr for Priority {
    type Err = DomainError;
    fn from_str(raw: &str) -> Result<Self, DomainError> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == raw)
            .ok_or_else(|| DomainError::new("priority", Rule::Format, "must be one of none, low, medium, high, urgent"))
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tag, normalized: trimmed, lowercased, and every run of inner whitespace
/// collapsed to one space; then 1–40 characters of letters, digits, `-`, `_`
/// and single spaces. Two tags that differ only in case or spacing are equal.
///
/// No `,` is allowed, so a comma-separated list of tags is unambiguous.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Tag(String);

impl Tag {
    /// Parses and normalizes a tag.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Tag::parse_as(raw, "tag")
    }

    /// Parses a tag, naming `field` in errors.
    pub(crate) fn parse_as(raw: &str, field: &str) -> Result<Self, DomainError> {
        let normalized = raw.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
        if normalized.is_empty() {
            return Err(DomainError::new(field, Rule::TooShort, "must not be blank"));
        }
        let len = normalized.chars().count();
        if len > TAG_MAX {
            return Err(DomainError::new(field, Rule::TooLong, format!("at most {TAG_MAX} characters, got {len}")));
        }
        if !normalized.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == ' ') {
            return Err(DomainError::new(field, Rule::Charset, "only letters, digits, spaces, - and _ are allowed"));
        }
        Ok(Tag(normalized))
    }

    /// The normalized tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

deserialize_via_parse!(Tag, String);

/// A task's tags: at most 20, unique after normalization, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Tags(Vec<Tag>);

impl Tags {
    /// Parses a list of tags; a duplicate (after normalization) is refused.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, DomainError> {
        if raw.len() > TAGS_MAX {
            return Err(DomainError::new("tags", Rule::TooMany, format!("at most {TAGS_MAX} tags, got {}", raw.len())));
        }
        let mut tags: Vec<Tag> = Vec::with_capacity(raw.len());
        for (i, item) in raw.iter().enumerate() {
            let field = format!("tags[{i}]");
            let tag = Tag::parse_as(item.as_ref(), &field)?;
            if tags.contains(&tag) {
                return Err(DomainError::new(field, Rule::Duplicate, format!("tag \"{}\" is given twice", tag.as_str())));
            }
            tags.push(tag);
        }
        Ok(Tags(tags))
    }

    /// The tags, in order.
    pub fn as_slice(&self) -> &[Tag] {
        &self.0
    }

    /// Whether the list holds `tag`.
    pub fn contains(&self, tag: &Tag) -> bool {
        self.0.contains(tag)
    }
}

deserialize_via_parse!(Tags, Vec<String>);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_title_pattern_accepts_what_title_parse_accepts(
            raw in prop_oneof![
                "[ \t\n\u{85}\u{a0}\u{2028}\u{3000}a\u{1}\u{7f}\u{9f}é😀]{0,8}",
                "[ \t]{0,2}[a ]{195,205}[ \t\u{7f}]{0,2}",
            ]
        ) {
            let pattern = regex::Regex::new(&title_pattern()).unwrap();
            prop_assert_eq!(Title::parse(&raw).is_ok(), pattern.is_match(&raw), "{:?}", raw);
            let not_blank = regex::Regex::new(&not_blank_pattern()).unwrap();
            prop_assert_eq!(raw.trim().is_empty(), !not_blank.is_match(&raw), "{:?}", raw);
        }
    }

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
    fn description_keeps_text_but_not_crlf_or_controls() {
        assert_eq!(Description::parse("  a\r\n\tb  ").unwrap().as_str(), "  a\n\tb  ");
        assert_eq!(Description::parse(" \n ").unwrap_err().rule, Rule::TooShort);
        assert_eq!(Description::parse("a\rb").unwrap_err().rule, Rule::Charset);
        assert_eq!(Description::parse("a\u{0}b").unwrap_err().rule, Rule::Charset);
        assert!(Description::parse(&"é".repeat(DESCRIPTION_MAX)).is_ok());
        let e = Description::parse(&"é".repeat(DESCRIPTION_MAX + 1)).unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("description", Rule::TooLong));
    }

    #[test]
    fn priorities_parse_and_order() {
        assert_eq!("urgent".parse::<Priority>().unwrap(), Priority::Urgent);
        assert_eq!("High".parse::<Priority>().unwrap_err().rule, Rule::Format);
        assert!(Priority::ALL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(Priority::default(), Priority::None);
        assert_eq!(serde_json::to_string(&Priority::Medium).unwrap(), "\"medium\"");
    }

    #[test]
    fn tags_are_normalized() {
        assert_eq!(Tag::parse("  Home \t Office ").unwrap().as_str(), "home office");
        assert_eq!(Tag::parse("ÉTÉ_2026-x").unwrap().as_str(), "été_2026-x");
        assert_eq!(Tag::parse("a,b").unwrap_err().rule, Rule::Charset);
        assert_eq!(Tag::parse("#a").unwrap_err().rule, Rule::Charset);
        assert_eq!(Tag::parse("  ").unwrap_err().rule, Rule::TooShort);
        assert!(Tag::parse(&"x".repeat(TAG_MAX)).is_ok());
        assert_eq!(Tag::parse(&"x".repeat(TAG_MAX + 1)).unwrap_err().rule, Rule::TooLong);
    }

    #[test]
    fn tags_are_unique_case_insensitively_and_bounded() {
        let e = Tags::parse(&["Work", "home", "WORK "]).unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("tags[2]", Rule::Duplicate));
        let e = Tags::parse(&["ok", "b!d"]).unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("tags[1]", Rule::Charset));
        let many: Vec<String> = (0..=TAGS_MAX).map(|i| format!("t{i}")).collect();
        assert_eq!(Tags::parse(&many).unwrap_err().rule, Rule::TooMany);
        assert_eq!(Tags::parse(&many[..TAGS_MAX]).unwrap().as_slice().len(), TAGS_MAX);
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

        #[test]
        fn tag_normalization_is_idempotent_and_case_blind(raw in "[ a-zA-Z0-9_\\-ÄÖü]{0,50}") {
            if let Ok(tag) = Tag::parse(&raw) {
                prop_assert_eq!(Tag::parse(tag.as_str()).unwrap(), tag.clone());
                prop_assert_eq!(Tag::parse(&raw.to_uppercase()).ok(), Some(tag.clone()));
                prop_assert!(!tag.as_str().contains("  ") && tag.as_str() == tag.as_str().trim());
                prop_assert!((1..=TAG_MAX).contains(&tag.as_str().chars().count()));
            }
        }

        #[test]
        fn parsed_tag_lists_hold_no_duplicates(raw in proptest::collection::vec("[a-cA-C ]{1,3}", 0..25)) {
            if let Ok(tags) = Tags::parse(&raw) {
                let s = tags.as_slice();
                prop_assert!(s.len() <= TAGS_MAX);
                for (i, a) in s.iter().enumerate() {
                    prop_assert!(!s[i + 1..].contains(a));
                }
            }
        }

        #[test]
        fn parsed_descriptions_are_bounded_and_clean(raw in "(\\PC|\\n|\\r|\\t){0,50}") {
            if let Ok(d) = Description::parse(&raw) {
                prop_assert!(!d.as_str().contains('\r'));
                prop_assert!(!d.as_str().trim().is_empty());
            }
        }
    }
}
