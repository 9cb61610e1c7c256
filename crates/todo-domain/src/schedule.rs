//! When a task is due and when to remind its owner: instants, time zones and reminders.

use std::fmt;

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde::{Deserialize, Serialize, Serializer};

use crate::fields::deserialize_via_parse;
use crate::{DomainError, Rule};

/// Maximum number of reminders on a task.
pub const REMINDERS_MAX: usize = 5;
/// Longest reminder offset: 365 days, in seconds.
pub const OFFSET_MAX_SECS: u32 = 365 * DAY;

const MINUTE: u32 = 60;
const HOUR: u32 = 60 * MINUTE;
const DAY: u32 = 24 * HOUR;
const WEEK: u32 = 7 * DAY;

/// Parses an RFC 3339 timestamp with an offset (`Z` or `±hh:mm`) into a UTC instant.
///
/// The instant must fall in the years 0000–9999 in UTC too, so that it is
/// written back (always in UTC) in a form this reads.
pub fn parse_instant(raw: &str, field: &str) -> Result<DateTime<Utc>, DomainError> {
    let instant = DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| DomainError::new(field, Rule::Format, "must be an RFC 3339 timestamp with offset, e.g. 2026-03-01T09:00:00+01:00"))?;
    if !in_range(instant) {
        return Err(DomainError::new(field, Rule::OutOfRange, "must be in the years 0000 to 9999 in UTC"));
    }
    Ok(instant)
}

/// Whether `instant` is in the years 0000–9999 in UTC, as [`parse_instant`] requires.
pub(crate) fn in_range(instant: DateTime<Utc>) -> bool {
    (0..=9999).contains(&instant.year())
}

/// An IANA time zone name (`Europe/Paris`, `UTC`, ...), as known to `chrono-tz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeZone(chrono_tz::Tz);

impl TimeZone {
    /// UTC, the zone of a due date given without one.
    pub const UTC: TimeZone = TimeZone(chrono_tz::UTC);

    /// Parses an IANA time zone name (case-sensitive, as in the tz database).
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        raw.parse::<chrono_tz::Tz>()
            .map(TimeZone)
            .map_err(|_| DomainError::new("time_zone", Rule::Format, "must be an IANA time zone name, e.g. Europe/Paris"))
    }

    /// The zone's IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The zone, for local-time arithmetic.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.0
    }
}

impl Serialize for TimeZone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

deserialize_via_parse!(TimeZone, String);

/// How long before the due date a reminder fires: an ISO 8601 duration of
/// the fixed-length subset `PnW` or `P[nD][T[nH][nM][nS]]`, at most 365 days.
///
/// Years and months are refused (they have no fixed length), as are
/// fractions. The value is kept in seconds and written back in canonical form
/// (`PT90M` becomes `PT1H30M`, `P1W` becomes `P7D`, zero is `PT0S`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReminderOffset(u32);

impl ReminderOffset {
    /// Parses an ISO 8601 duration, naming `field` in errors.
    pub fn parse(raw: &str, field: &str) -> Result<Self, DomainError> {
        let format = || {
            DomainError::new(
                field,
                Rule::Format,
                "must be an ISO 8601 duration such as PT15M, PT1H, P1D or P1DT12H (no years, months or fractions)",
            )
        };
        let rest = raw.strip_prefix('P').ok_or_else(format)?;
        let total = if rest.contains('W') {
            sum_units(rest, &[('W', WEEK)])
        } else {
            match rest.split_once('T') {
                Some((_, "")) => None,
                Some((date, time)) => {
                    sum_units(date, &[('D', DAY)]).zip(sum_units(time, &[('H', HOUR), ('M', MINUTE), ('S', 1)])).map(|(d, t)| d + t)
                }
                None if rest.is_empty() => None,
                None => sum_units(rest, &[('D', DAY)]),
            }
        }
        .ok_or_else(format)?;
        u32::try_from(total)
            .ok()
            .filter(|secs| *secs <= OFFSET_MAX_SECS)
            .map(ReminderOffset)
            .ok_or_else(|| DomainError::new(field, Rule::OutOfRange, "must be at most 365 days (P365D)"))
    }

    /// The offset in seconds.
    pub fn seconds(self) -> u32 {
        self.0
    }

    /// The offset as a duration.
    pub fn as_delta(self) -> TimeDelta {
        TimeDelta::seconds(i64::from(self.0))
    }
}

/// Sums `<digits><unit>` components of `s`, units in the order of `units`,
/// each at most once; `None` if `s` has anything else.
fn sum_units(s: &str, units: &[(char, u32)]) -> Option<u64> {
    let mut total = 0u64;
    let mut next = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        let unit = rest[digits..].chars().next()?;
        let pos = next + units[next..].iter().position(|(u, _)| *u == unit)?;
        total += n * u64::from(units[pos].1);
        next = pos + 1;
        rest = &rest[digits + unit.len_utf8()..];
    }
    Some(total)
}

impl fmt::Display for ReminderOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (d, h, m, s) = (self.0 / DAY, self.0 % DAY / HOUR, self.0 % HOUR / MINUTE, self.0 % MINUTE);
        f.write_str("P")?;
        if d > 0 {
            write!(f, "{d}D")?;
        }
        if h + m + s > 0 || d == 0 {
            f.write_str("T")?;
        }
        if h > 0 {
            write!(f, "{h}H")?;
        }
        if m > 0 {
            write!(f, "{m}M")?;
        }
        if s > 0 || self.0 == 0 {
            write!(f, "{s}S")?;
        }
        Ok(())
    }
}

/// When to remind the owner of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reminder {
    /// This long before the task's due date (requires `due_at`).
    Before(ReminderOffset),
    /// At this instant.
    At(DateTime<Utc>),
}

impl Reminder {
    /// Parses a reminder: an ISO 8601 duration (it starts with `P`) is an
    /// offset before `due_at`, anything else must be an RFC 3339 instant.
    pub fn parse(raw: &str, field: &str) -> Result<Self, DomainError> {
        if raw.starts_with('P') {
            ReminderOffset::parse(raw, field).map(Reminder::Before)
        } else {
            parse_instant(raw, field).map(Reminder::At)
        }
    }

    /// The instant the reminder fires, given the task's due date.
    pub fn instant(&self, due: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        match self {
            Reminder::Before(offset) => due.map(|d| d - offset.as_delta()),
            Reminder::At(at) => Some(*at),
        }
    }
}

impl fmt::Display for Reminder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reminder::Before(offset) => offset.fmt(f),
            Reminder::At(at) => f.write_str(&at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        }
    }
}

impl Serialize for Reminder {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A task's reminders: at most 5, no two equal, in the order given.
///
/// Whether offsets have a due date to count back from is checked with the
/// rest of the task (see [`crate::NewTask`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Reminders(Vec<Reminder>);

impl Reminders {
    /// Parses a list of reminders (errors name `reminders[i]`).
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, DomainError> {
        if raw.len() > REMINDERS_MAX {
            return Err(DomainError::new("reminders", Rule::TooMany, format!("at most {REMINDERS_MAX} reminders, got {}", raw.len())));
        }
        let mut reminders = Vec::with_capacity(raw.len());
        for (i, item) in raw.iter().enumerate() {
            let field = format!("reminders[{i}]");
            let reminder = Reminder::parse(item.as_ref(), &field)?;
            if reminders.contains(&reminder) {
                return Err(DomainError::new(field, Rule::Duplicate, format!("reminder {reminder} is given twice")));
            }
            reminders.push(reminder);
        }
        Ok(Reminders(reminders))
    }

    /// The reminders, in order.
    pub fn as_slice(&self) -> &[Reminder] {
        &self.0
    }

    /// The instants at which the reminders fire, earliest first and without
    /// repeats; offsets are skipped when there is no due date.
    pub fn instants(&self, due: Option<DateTime<Utc>>) -> Vec<DateTime<Utc>> {
        let mut out: Vec<DateTime<Utc>> = self.0.iter().filter_map(|r| r.instant(due)).collect();
        out.sort();
        out.dedup();
        out
    }

    /// Index of the first offset reminder, if any (it needs a due date).
    pub(crate) fn first_offset(&self) -> Option<usize> {
        self.0.iter().position(|r| matches!(r, Reminder::Before(_)))
    }
}

impl<'de> Deserialize<'de> for Reminders {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Vec::<String>::deserialize(d)?;
        Reminders::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn offset(raw: &str) -> Result<String, Rule> {
        ReminderOffset::parse(raw, "r").map(|o| o.to_string()).map_err(|e| e.rule)
    }

    #[test]
    fn offsets_parse_to_canonical_form() {
        for (raw, canonical) in [
            ("PT15M", "PT15M"),
            ("PT1H", "PT1H"),
            ("P1D", "P1D"),
            ("PT90M", "PT1H30M"),
            ("P1DT12H", "P1DT12H"),
            ("P1W", "P7D"),
            ("PT0S", "PT0S"),
            ("P0D", "PT0S"),
            ("PT3661S", "PT1H1M1S"),
            ("P365D", "P365D"),
        ] {
            assert_eq!(offset(raw), Ok(canonical.to_owned()), "{raw}");
        }
    }

    #[test]
    fn offsets_refuse_everything_else() {
        for bad in [
            "",
            "P",
            "PT",
            "P1DT",
            "15M",
            "pt15m",
            "P1M",
            "P1Y",
            "PT1.5H",
            "PT1M1H",
            "PT1H1H",
            "P1D1D",
            "PT-1H",
            "P1W1D",
            "P1DT1W",
            "PT15Mx",
            "PT9999999999S",
            "P 1D",
        ] {
            assert_eq!(offset(bad), Err(Rule::Format), "{bad:?} should be refused");
        }
        assert_eq!(offset("P366D"), Err(Rule::OutOfRange));
        assert_eq!(offset("P53W"), Err(Rule::OutOfRange));
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(TimeZone::parse("Europe/Paris").unwrap().name(), "Europe/Paris");
        assert_eq!(TimeZone::parse("UTC").unwrap(), TimeZone::UTC);
        for bad in ["", "Mars/Olympus", "+01:00", "europe/paris"] {
            assert_eq!(TimeZone::parse(bad).unwrap_err().rule, Rule::Format, "{bad:?}");
        }
        assert_eq!(serde_json::to_string(&TimeZone::parse("Asia/Tokyo").unwrap()).unwrap(), "\"Asia/Tokyo\"");
    }

    #[test]
    fn instants_need_an_offset() {
        let t = parse_instant("2026-03-01T09:00:00+01:00", "due_at").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-01T08:00:00+00:00");
        assert_eq!(parse_instant("2026-03-01T09:00:00", "due_at").unwrap_err().rule, Rule::Format);
        assert_eq!(parse_instant("tomorrow", "due_at").unwrap_err().field, "due_at");
    }

    #[test]
    fn instants_stay_in_four_digit_years_in_utc() {
        // Found by the fuzz checks: UTC writes these as -0001-... and +10000-..., which no longer parse.
        for raw in ["0000-01-01T00:30:00+01:00", "9999-12-31T20:00:00-04:00"] {
            assert_eq!(parse_instant(raw, "due_at").unwrap_err().rule, Rule::OutOfRange, "{raw}");
        }
        for raw in ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59+01:00"] {
            let t = parse_instant(raw, "due_at").unwrap();
            assert_eq!(parse_instant(&Reminder::At(t).to_string(), "due_at"), Ok(t), "{raw}");
        }
    }

    #[test]
    fn reminders_parse_both_kinds_and_compute_instants() {
        let r = Reminders::parse(&["PT15M", "2026-03-01T07:00:00Z", "P1D"]).unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), serde_json::json!(["PT15M", "2026-03-01T07:00:00Z", "P1D"]));
        let due = parse_instant("2026-03-01T08:00:00Z", "d").unwrap();
        let got: Vec<String> = r.instants(Some(due)).iter().map(|t| t.to_rfc3339()).collect();
        assert_eq!(got, ["2026-02-28T08:00:00+00:00", "2026-03-01T07:00:00+00:00", "2026-03-01T07:45:00+00:00"]);
        assert_eq!(r.instants(None).len(), 1);
        assert_eq!(r.first_offset(), Some(0));
    }

    #[test]
    fn reminders_are_bounded_and_unique() {
        assert_eq!(Reminders::parse(&["PT1M"; 6]).unwrap_err().rule, Rule::TooMany);
        let e = Reminders::parse(&["PT60M", "PT1H"]).unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("reminders[1]", Rule::Duplicate));
        let e = Reminders::parse(&["PT1M", "soon"]).unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("reminders[1]", Rule::Format));
        let stored: Reminders = serde_json::from_str(r#"["PT90M"]"#).unwrap();
        assert_eq!(stored.as_slice(), [Reminder::Before(ReminderOffset(90 * 60))]);
    }

    proptest! {
        #[test]
        fn canonical_offsets_round_trip(secs in 0..=OFFSET_MAX_SECS) {
            let text = ReminderOffset(secs).to_string();
            prop_assert_eq!(ReminderOffset::parse(&text, "r").unwrap().seconds(), secs);
        }

        #[test]
        fn offsets_sum_their_components(d in 0u32..=300, h in 0u32..=100, m in 0u32..=100, s in 0u32..=100) {
            let text = format!("P{d}DT{h}H{m}M{s}S");
            let parsed = ReminderOffset::parse(&text, "r").unwrap();
            prop_assert_eq!(parsed.seconds(), d * DAY + h * HOUR + m * MINUTE + s);
        }

        #[test]
        fn offset_parser_never_panics(raw in "P?[0-9DTHMSWY.]{0,12}") {
            if let Ok(o) = ReminderOffset::parse(&raw, "r") {
                prop_assert!(o.seconds() <= OFFSET_MAX_SECS);
            }
        }

        #[test]
        fn instants_are_sorted_and_offsets_precede_due(offsets in proptest::collection::vec(0..=OFFSET_MAX_SECS, 0..=5)) {
            let due = parse_instant("2030-01-01T00:00:00Z", "d").unwrap();
            let raw: Vec<String> = offsets.iter().map(|s| ReminderOffset(*s).to_string()).collect();
            if let Ok(r) = Reminders::parse(&raw) {
                let instants = r.instants(Some(due));
                prop_assert!(instants.windows(2).all(|w| w[0] < w[1]));
                prop_assert!(instants.iter().all(|t| *t <= due));
            }
        }
    }
}
