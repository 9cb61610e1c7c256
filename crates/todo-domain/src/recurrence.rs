//! Recurrence rules: a subset of RFC 5545 RRULE, parsed and normalized.
//!
//! The API form is `{"rrule": "...", "anchor": "due"|"completion", "text": "..."}`:
//! a client gives `rrule` or `text` (a phrase, see [`crate::phrase`]); the
//! output always has `rrule` and `anchor`, and `text` when the rule can be
//! said in words. Computing the next occurrence is [`crate::occurrence`].

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc, Weekday};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::schedule::in_range;
use crate::{DomainError, Rule, TimeZone};

/// Largest `INTERVAL`.
pub const INTERVAL_MAX: u16 = 1_000;
/// Largest `COUNT`.
pub const COUNT_MAX: u32 = 1_000;

const FIELD: &str = "recurrence.rrule";

/// How often a task recurs (`FREQ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Frequency {
    /// `DAILY`
    Daily,
    /// `WEEKLY`
    Weekly,
    /// `MONTHLY`
    Monthly,
    /// `YEARLY`
    Yearly,
}

impl Frequency {
    fn as_str(self) -> &'static str {
        match self {
            Frequency::Daily => "DAILY",
            Frequency::Weekly => "WEEKLY",
            Frequency::Monthly => "MONTHLY",
            Frequency::Yearly => "YEARLY",
        }
    }
}

/// What the next occurrence counts from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Anchor {
    /// The previous occurrence's due date (the default).
    #[default]
    Due,
    /// The moment the previous occurrence was completed.
    Completion,
}

/// One `BYDAY` entry: a weekday, optionally the n-th (or n-th from last) of
/// the month or year (`1MO`, `-1FR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeekdayNum {
    /// `Some(n)`: only the n-th such weekday of the period (negative: from the end).
    pub ordinal: Option<i8>,
    /// The weekday.
    pub weekday: Weekday,
}

/// How a recurrence ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecurrenceEnd {
    /// After this many occurrences (`COUNT`).
    Count(u32),
    /// At this instant, inclusive (`UNTIL`).
    Until(DateTime<Utc>),
}

/// A parsed recurrence: `FREQ` (`DAILY`, `WEEKLY`, `MONTHLY`, `YEARLY`),
/// `INTERVAL` (1–1000), `BYDAY`, `BYMONTHDAY`, `BYMONTH`, and at most one of
/// `COUNT` (1–1000) and `UNTIL` (UTC, `YYYYMMDDTHHMMSSZ`), plus the anchor.
///
/// Names are case-insensitive on input; lists are sorted and deduplicated;
/// any other rule part is refused. RFC 5545 restrictions are kept: no
/// `BYMONTHDAY` with `WEEKLY`, and `BYDAY` ordinals only with `MONTHLY`
/// (±1–5) or `YEARLY` (±1–53).
///
/// A phrase's `until <date>` means the end of that day in the task's zone;
/// until the rule is read in that zone ([`RecurrenceRule::in_zone`], which
/// every task does), `UNTIL` holds the end of the day in UTC.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecurrenceRule {
    freq: Frequency,
    interval: u16,
    by_day: Vec<WeekdayNum>,
    by_month_day: Vec<i8>,
    by_month: Vec<u8>,
    end: Option<RecurrenceEnd>,
    anchor: Anchor,
    /// The local date of a phrase's `until`, not yet read in a zone.
    local_until: Option<NaiveDate>,
}

impl RecurrenceRule {
    /// Parses an RRULE value (an optional `RRULE:` prefix is allowed).
    pub fn parse(rrule: &str, anchor: Anchor) -> Result<Self, DomainError> {
        let body = match rrule.get(..6) {
            Some(prefix) if prefix.eq_ignore_ascii_case("RRULE:") => &rrule[6..],
            _ => rrule,
        };
        let mut seen: Vec<String> = Vec::new();
        let (mut freq, mut interval, mut count, mut until) = (None, 1, None, None);
        let (mut by_day, mut by_month_day, mut by_month) = (Vec::new(), Vec::new(), Vec::new());
        for part in body.split(';') {
            let (name, value) = part.split_once('=').ok_or_else(|| err(Rule::Format, format!("\"{part}\" is not NAME=VALUE")))?;
            let name = name.to_ascii_uppercase();
            if seen.contains(&name) {
                return Err(err(Rule::Duplicate, format!("{name} is given twice")));
            }
            let value = value.to_ascii_uppercase();
            match name.as_str() {
                "FREQ" => freq = Some(parse_freq(&value)?),
                "INTERVAL" => interval = parse_number(&name, &value, 1, INTERVAL_MAX)?,
                "COUNT" => count = Some(parse_number(&name, &value, 1, COUNT_MAX)?),
                "UNTIL" => until = Some(parse_until(&value)?),
                "BYDAY" => by_day = parse_list(&name, &value, parse_weekday_num)?,
                "BYMONTHDAY" => by_month_day = parse_list(&name, &value, |v| parse_signed(&name, v, 31))?,
                "BYMONTH" => by_month = parse_list(&name, &value, |v| parse_number(&name, v, 1, 12))?,
                _ => return Err(err(Rule::Unknown, format!("{name} is not supported"))),
            }
            seen.push(name);
        }
        let freq = freq.ok_or_else(|| err(Rule::Required, "FREQ is required"))?;
        let end = match (count, until) {
            (Some(_), Some(_)) => return Err(err(Rule::Format, "COUNT and UNTIL must not both be given")),
            (Some(c), None) => Some(RecurrenceEnd::Count(c)),
            (None, Some(u)) => Some(RecurrenceEnd::Until(u)),
            (None, None) => None,
        };
        if freq == Frequency::Weekly && !by_month_day.is_empty() {
            return Err(err(Rule::Format, "BYMONTHDAY must not be used with FREQ=WEEKLY"));
        }
        let max_ordinal = match freq {
            Frequency::Monthly => 5,
            Frequency::Yearly => 53,
            Frequency::Daily | Frequency::Weekly => 0,
        };
        if let Some(bad) = by_day.iter().find(|d| d.ordinal.is_some_and(|n| n.unsigned_abs() > max_ordinal)) {
            return Err(err(Rule::OutOfRange, format!("BYDAY {bad} is not allowed with FREQ={}", freq.as_str())));
        }
        by_day.sort_by_key(|d| (d.weekday.num_days_from_monday(), d.ordinal));
        by_day.dedup();
        by_month_day.sort_unstable();
        by_month_day.dedup();
        by_month.sort_unstable();
        by_month.dedup();
        Ok(RecurrenceRule { freq, interval, by_day, by_month_day, by_month, end, anchor, local_until: None })
    }

    /// Parses the API form `{"rrule": "FREQ=...", "anchor": "due"|"completion"}`
    /// or `{"text": "every weekday", "anchor": ...}` (`anchor` defaults to
    /// `due`; `every!` in the text means `completion`). When `rrule` is given,
    /// `text` is ignored: it is the derived description that the output
    /// carries, so a client may send back what it read.
    pub fn from_json(value: &Value) -> Result<Self, DomainError> {
        let obj = value
            .as_object()
            .ok_or_else(|| DomainError::new("recurrence", Rule::Format, "must be an object with rrule (or text) and anchor"))?;
        if let Some(unknown) = obj.keys().find(|k| !["rrule", "anchor", "text"].contains(&k.as_str())) {
            return Err(DomainError::new(format!("recurrence.{unknown}"), Rule::Unknown, "is not a known field"));
        }
        let anchor = match obj.get("anchor") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s == "due" => Some(Anchor::Due),
            Some(Value::String(s)) if s == "completion" => Some(Anchor::Completion),
            Some(_) => return Err(DomainError::new("recurrence.anchor", Rule::Format, "must be due or completion")),
        };
        match (obj.get("rrule"), obj.get("text")) {
            (Some(Value::String(s)), _) => RecurrenceRule::parse(s, anchor.unwrap_or_default()),
            (Some(v), _) if !v.is_null() => Err(err(Rule::Format, "must be a string")),
            (_, Some(Value::String(text))) => crate::phrase::parse(text, anchor),
            (_, Some(v)) if !v.is_null() => Err(DomainError::new("recurrence.text", Rule::Format, "must be a string")),
            _ => Err(err(Rule::Required, "is required (or text)")),
        }
    }

    /// The rule in words (`every weekday`), when [`crate::phrase`] can say
    /// it; an `UNTIL` is said as a date of `zone` (the task's).
    pub fn text(&self, zone: TimeZone) -> Option<String> {
        crate::phrase::describe(self, zone)
    }

    /// The API form in `zone` (the task's): `rrule`, `anchor`, and `text`
    /// when the rule can be said in words. A rule whose phrase `until` has not
    /// been read in a zone yet is written as its phrase, so that it reads
    /// back the same.
    pub fn to_json(&self, zone: TimeZone) -> Value {
        let text = self.text(zone);
        if let (Some(_), Some(text)) = (self.local_until, &text) {
            return serde_json::json!({ "text": text, "anchor": self.anchor });
        }
        let mut out = serde_json::json!({ "rrule": self.to_rrule_string(), "anchor": self.anchor });
        if let Some(text) = text {
            out["text"] = Value::String(text);
        }
        out
    }

    /// The rule of a phrase that ends after the local date `day`.
    pub(crate) fn until_day(mut self, day: NaiveDate) -> Self {
        self.local_until = Some(day);
        self
    }

    /// The rule read in the task's zone: a phrase's `until <date>` becomes
    /// the last second of that date in `zone`. An `UNTIL` given as RRULE is
    /// an instant already and stays. Refused when that second is outside the
    /// years 0000–9999 in UTC.
    pub fn in_zone(mut self, zone: TimeZone) -> Result<Self, DomainError> {
        if let Some(day) = self.local_until.take() {
            let until = zone
                .end_of_day(day)
                .filter(|t| in_range(*t))
                .ok_or_else(|| DomainError::new("recurrence.text", Rule::OutOfRange, "until must end in the years 0000 to 9999 in UTC"))?;
            self.end = Some(RecurrenceEnd::Until(until));
        }
        Ok(self)
    }

    /// The same rule with the day (and, for `YEARLY`, the month) that RFC 5545
    /// takes from DTSTART written out, so that it no longer depends on the
    /// start. `None` when the rule does not depend on it.
    pub(crate) fn pinned(&self, month: u8, day: u8) -> Option<Self> {
        let mut out = self.clone();
        match self.freq {
            Frequency::Monthly if self.by_day.is_empty() && self.by_month_day.is_empty() => out.by_month_day = vec![day as i8],
            Frequency::Yearly if self.by_day.is_empty() && self.by_month_day.is_empty() => {
                out.by_month_day = vec![day as i8];
                if out.by_month.is_empty() {
                    out.by_month = vec![month];
                }
            }
            _ => return None,
        }
        Some(out)
    }

    /// The rule in canonical RRULE form (without the `RRULE:` prefix), parts
    /// in the order FREQ, INTERVAL (when not 1), BYMONTH, BYMONTHDAY, BYDAY,
    /// COUNT or UNTIL.
    pub fn to_rrule_string(&self) -> String {
        let mut out = format!("FREQ={}", self.freq.as_str());
        if self.interval != 1 {
            out += &format!(";INTERVAL={}", self.interval);
        }
        let join = |items: Vec<String>| items.join(",");
        if !self.by_month.is_empty() {
            out += &format!(";BYMONTH={}", join(self.by_month.iter().map(u8::to_string).collect()));
        }
        if !self.by_month_day.is_empty() {
            out += &format!(";BYMONTHDAY={}", join(self.by_month_day.iter().map(i8::to_string).collect()));
        }
        if !self.by_day.is_empty() {
            out += &format!(";BYDAY={}", join(self.by_day.iter().map(WeekdayNum::to_string).collect()));
        }
        match self.end {
            Some(RecurrenceEnd::Count(c)) => out += &format!(";COUNT={c}"),
            Some(RecurrenceEnd::Until(u)) => out += &format!(";UNTIL={}", u.format("%Y%m%dT%H%M%SZ")),
            None => {}
        }
        out
    }

    /// `FREQ`.
    pub fn freq(&self) -> Frequency {
        self.freq
    }

    /// `INTERVAL` (1 when not given).
    pub fn interval(&self) -> u16 {
        self.interval
    }

    /// `BYDAY`, sorted Monday first.
    pub fn by_day(&self) -> &[WeekdayNum] {
        &self.by_day
    }

    /// `BYMONTHDAY`, ascending.
    pub fn by_month_day(&self) -> &[i8] {
        &self.by_month_day
    }

    /// `BYMONTH`, ascending.
    pub fn by_month(&self) -> &[u8] {
        &self.by_month
    }

    /// `COUNT` or `UNTIL`, if either was given.
    pub fn end(&self) -> Option<RecurrenceEnd> {
        self.end
    }

    /// What the next occurrence counts from.
    pub fn anchor(&self) -> Anchor {
        self.anchor
    }

    /// Checks the rule against the task's due date: `UNTIL` must not precede it.
    pub(crate) fn check_due(&self, due: DateTime<Utc>) -> Result<(), DomainError> {
        match self.end {
            Some(RecurrenceEnd::Until(until)) if until < due => Err(err(Rule::OutOfRange, "UNTIL must not be before due_at")),
            _ => Ok(()),
        }
    }
}

fn err(rule: Rule, message: impl fmt::Display) -> DomainError {
    DomainError::new(FIELD, rule, message)
}

fn parse_freq(value: &str) -> Result<Frequency, DomainError> {
    match value {
        "DAILY" => Ok(Frequency::Daily),
        "WEEKLY" => Ok(Frequency::Weekly),
        "MONTHLY" => Ok(Frequency::Monthly),
        "YEARLY" => Ok(Frequency::Yearly),
        _ => Err(err(Rule::Format, "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY")),
    }
}

fn parse_number<T: TryFrom<u32> + Into<u64> + Copy>(name: &str, value: &str, min: T, max: T) -> Result<T, DomainError> {
    let range = || err(Rule::OutOfRange, format!("{name} must be {} to {}", min.into(), max.into()));
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(Rule::Format, format!("{name} must be a number")));
    }
    let n: u32 = value.parse().map_err(|_| range())?;
    let n = T::try_from(n).map_err(|_| range())?;
    let n64 = n.into();
    if n64 < min.into() || n64 > max.into() {
        return Err(range());
    }
    Ok(n)
}

/// A non-zero number in `-max..=max` with an optional sign.
fn parse_signed(name: &str, value: &str, max: u8) -> Result<i8, DomainError> {
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let n: u8 = parse_number(name, digits, 1, max)?;
    let n = n as i8; // max <= 53, so this is exact
    Ok(if negative { -n } else { n })
}

fn parse_weekday_num(value: &str) -> Result<WeekdayNum, DomainError> {
    let split = value.len().saturating_sub(2);
    let (ordinal, day) = value.split_at_checked(split).unwrap_or(("", value));
    let weekday = match day {
        "MO" => Weekday::Mon,
        "TU" => Weekday::Tue,
        "WE" => Weekday::Wed,
        "TH" => Weekday::Thu,
        "FR" => Weekday::Fri,
        "SA" => Weekday::Sat,
        "SU" => Weekday::Sun,
        _ => return Err(err(Rule::Format, format!("BYDAY entry \"{value}\" must end in MO, TU, WE, TH, FR, SA or SU"))),
    };
    let ordinal = match ordinal {
        "" => None,
        n => Some(parse_signed("BYDAY", n, 53)?),
    };
    Ok(WeekdayNum { ordinal, weekday })
}

fn parse_until(value: &str) -> Result<DateTime<Utc>, DomainError> {
    let format = || err(Rule::Format, "UNTIL must be a UTC date-time like 20261231T235959Z");
    if value.len() != 16 {
        return Err(format());
    }
    NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%SZ").map(|t| t.and_utc()).map_err(|_| format())
}

fn parse_list<T>(name: &str, value: &str, item: impl Fn(&str) -> Result<T, DomainError>) -> Result<Vec<T>, DomainError> {
    if value.is_empty() {
        return Err(err(Rule::Format, format!("{name} must not be empty")));
    }
    value.split(',').map(item).collect()
}

impl fmt::Display for WeekdayNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.ordinal {
            write!(f, "{n}")?;
        }
        let day = match self.weekday {
            Weekday::Mon => "MO",
            Weekday::Tue => "TU",
            Weekday::Wed => "WE",
            Weekday::Thu => "TH",
            Weekday::Fri => "FR",
            Weekday::Sat => "SA",
            Weekday::Sun => "SU",
        };
        f.write_str(day)
    }
}

/// The API form with `text` said in UTC: a rule on its own has no zone (a
/// [`crate::Task`] writes its rule in the task's zone).
impl Serialize for RecurrenceRule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json(TimeZone::UTC).serialize(s)
    }
}

impl<'de> Deserialize<'de> for RecurrenceRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        RecurrenceRule::from_json(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn canonical(raw: &str) -> Result<String, (Rule, String)> {
        RecurrenceRule::parse(raw, Anchor::Due).map(|r| r.to_rrule_string()).map_err(|e| (e.rule, e.message))
    }

    #[test]
    fn valid_rules_normalize() {
        for (raw, want) in [
            ("FREQ=DAILY", "FREQ=DAILY"),
            ("RRULE:freq=weekly;byday=we,mo,MO;interval=2", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE"),
            ("FREQ=MONTHLY;BYMONTHDAY=15,-1,1;COUNT=12", "FREQ=MONTHLY;BYMONTHDAY=-1,1,15;COUNT=12"),
            ("FREQ=MONTHLY;BYDAY=-1FR,+1MO", "FREQ=MONTHLY;BYDAY=1MO,-1FR"),
            ("FREQ=YEARLY;BYMONTH=12,3;BYDAY=20MO;UNTIL=20301231T235959Z", "FREQ=YEARLY;BYMONTH=3,12;BYDAY=20MO;UNTIL=20301231T235959Z"),
            ("INTERVAL=1;FREQ=DAILY", "FREQ=DAILY"),
        ] {
            assert_eq!(canonical(raw), Ok(want.to_owned()), "{raw}");
        }
    }

    #[test]
    fn invalid_rules_are_refused_with_the_rule_broken() {
        for (raw, rule) in [
            ("", Rule::Format),
            ("INTERVAL=2", Rule::Required),
            ("FREQ=HOURLY", Rule::Format),
            ("FREQ=DAILY;FREQ=WEEKLY", Rule::Duplicate),
            ("FREQ=DAILY;BYSETPOS=1", Rule::Unknown),
            ("FREQ=DAILY;WKST=MO", Rule::Unknown),
            ("FREQ=DAILY;INTERVAL=0", Rule::OutOfRange),
            ("FREQ=DAILY;INTERVAL=1001", Rule::OutOfRange),
            ("FREQ=DAILY;INTERVAL=99999999999", Rule::OutOfRange),
            ("FREQ=DAILY;INTERVAL=-1", Rule::Format),
            ("FREQ=DAILY;COUNT=0", Rule::OutOfRange),
            ("FREQ=DAILY;COUNT=2;UNTIL=20301231T235959Z", Rule::Format),
            ("FREQ=DAILY;UNTIL=20301231", Rule::Format),
            ("FREQ=DAILY;UNTIL=20301332T000000Z", Rule::Format),
            ("FREQ=WEEKLY;BYMONTHDAY=1", Rule::Format),
            ("FREQ=WEEKLY;BYDAY=1MO", Rule::OutOfRange),
            ("FREQ=MONTHLY;BYDAY=6MO", Rule::OutOfRange),
            ("FREQ=YEARLY;BYDAY=54MO", Rule::OutOfRange),
            ("FREQ=MONTHLY;BYDAY=0MO", Rule::OutOfRange),
            ("FREQ=MONTHLY;BYDAY=XX", Rule::Format),
            ("FREQ=MONTHLY;BYDAY=", Rule::Format),
            ("FREQ=MONTHLY;BYMONTHDAY=32", Rule::OutOfRange),
            ("FREQ=MONTHLY;BYMONTHDAY=0", Rule::OutOfRange),
            ("FREQ=YEARLY;BYMONTH=13", Rule::OutOfRange),
            ("FREQ=DAILY;", Rule::Format),
            ("FREQ", Rule::Format),
        ] {
            assert_eq!(canonical(raw).map_err(|e| e.0), Err(rule), "{raw:?}");
        }
    }

    #[test]
    fn json_form_has_rrule_and_anchor() {
        let r = RecurrenceRule::from_json(&serde_json::json!({"rrule": "FREQ=DAILY", "anchor": "completion"})).unwrap();
        assert_eq!(r.anchor(), Anchor::Completion);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"rrule": "FREQ=DAILY", "anchor": "completion", "text": "every! day"})
        );
        let r = RecurrenceRule::from_json(&serde_json::json!({"text": "every weekday"})).unwrap();
        assert_eq!((r.to_rrule_string().as_str(), r.anchor()), ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", Anchor::Due));
        // Stored and output JSON (rrule + text) reads back; rrule wins over text.
        let r = RecurrenceRule::from_json(&serde_json::json!({"rrule": "FREQ=DAILY", "anchor": "due", "text": "every year"})).unwrap();
        assert_eq!(r.freq(), Frequency::Daily);
        let r = RecurrenceRule::from_json(&serde_json::json!({"rrule": "FREQ=MONTHLY;BYDAY=1MO"})).unwrap();
        assert!(serde_json::to_value(&r).unwrap().get("text").is_none(), "no text when words cannot say it");
        let r: RecurrenceRule = serde_json::from_str(r#"{"rrule":"FREQ=WEEKLY;BYDAY=FR"}"#).unwrap();
        assert_eq!((r.anchor(), r.freq(), r.by_day().len()), (Anchor::Due, Frequency::Weekly, 1));
        let field = |v| RecurrenceRule::from_json(&v).unwrap_err().field;
        assert_eq!(field(serde_json::json!({"rrule": "FREQ=DAILY", "every": 2})), "recurrence.every");
        assert_eq!(field(serde_json::json!({"anchor": "due"})), "recurrence.rrule");
        assert_eq!(field(serde_json::json!({"text": "every blue moon"})), "recurrence.text");
        assert_eq!(field(serde_json::json!({"text": 3})), "recurrence.text");
        assert_eq!(field(serde_json::json!({"rrule": "FREQ=DAILY", "anchor": "start"})), "recurrence.anchor");
        assert_eq!(field(serde_json::json!("FREQ=DAILY")), "recurrence");
    }

    #[test]
    fn until_must_not_precede_due() {
        let r = RecurrenceRule::parse("FREQ=DAILY;UNTIL=20300101T000000Z", Anchor::Due).unwrap();
        let due = crate::schedule::parse_instant("2030-01-01T00:00:01Z", "d").unwrap();
        assert_eq!(r.check_due(due).unwrap_err().rule, Rule::OutOfRange);
        assert!(r.check_due(due - chrono::TimeDelta::seconds(1)).is_ok());
    }

    fn rule_part() -> impl Strategy<Value = String> {
        prop_oneof![
            (1u16..=1000).prop_map(|n| format!("INTERVAL={n}")),
            (1u32..=1000).prop_map(|n| format!("COUNT={n}")),
            proptest::collection::vec(1u8..=12, 1..4)
                .prop_map(|v| format!("BYMONTH={}", v.iter().map(u8::to_string).collect::<Vec<_>>().join(","))),
            proptest::collection::vec(prop_oneof![1i8..=31, -31i8..=-1], 1..4)
                .prop_map(|v| format!("BYMONTHDAY={}", v.iter().map(i8::to_string).collect::<Vec<_>>().join(","))),
            proptest::collection::vec((prop_oneof![Just(""), Just("1"), Just("-2")], "(MO|TU|WE|TH|FR|SA|SU)"), 1..4)
                .prop_map(|v| format!("BYDAY={}", v.iter().map(|(n, d)| format!("{n}{d}")).collect::<Vec<_>>().join(","))),
        ]
    }

    proptest! {
        #[test]
        fn canonical_form_is_a_fixed_point(freq in "(DAILY|WEEKLY|MONTHLY|YEARLY)", parts in proptest::collection::vec(rule_part(), 0..4)) {
            let raw = std::iter::once(format!("FREQ={freq}")).chain(parts).collect::<Vec<_>>().join(";");
            if let Ok(rule) = RecurrenceRule::parse(&raw, Anchor::Due) {
                let text = rule.to_rrule_string();
                let again = RecurrenceRule::parse(&text, Anchor::Due).unwrap();
                prop_assert_eq!(&again, &rule);
                prop_assert_eq!(again.to_rrule_string(), text);
            }
        }

        #[test]
        fn parser_never_panics(raw in "[A-Z=;,0-9+-]{0,40}") {
            let _ = RecurrenceRule::parse(&raw, Anchor::Due);
        }
    }
}
