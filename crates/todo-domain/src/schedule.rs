//! When a task is due and when to remind its owner: instants, time zones and reminders.

use std::fmt;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone as _, Utc};
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

    /// Every name [`TimeZone::parse`] accepts (the IANA database's zones and links).
    pub fn names() -> impl Iterator<Item = &'static str> {
        chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())
    }

    /// The zone's IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The zone, for local-time arithmetic.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.0
    }

    /// The instant of the wall-clock time `local` in this zone, as RFC 5545
    /// (3.3.5) reads it: a time that a gap skips (spring forward) is read with
    /// the offset before the gap, so it moves forward by the gap (02:30
    /// becomes 03:30); a time that happens twice (fall back) is the first.
    /// `None` only beyond the years chrono represents.
    pub fn resolve(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.0.from_local_datetime(&local) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
            chrono::LocalResult::None => {
                // A day earlier is before the transition (offsets stay within a day).
                let before = local.checked_sub_days(Days::new(1))?.and_utc();
                let offset = self.0.offset_from_utc_datetime(&before.naive_utc()).fix();
                Some((local - TimeDelta::seconds(i64::from(offset.local_minus_utc()))).and_utc())
            }
        }
    }

    /// The last second of the local date `date` in this zone: one second
    /// before the next day starts.
    pub fn end_of_day(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        let next = date.succ_opt()?.and_time(NaiveTime::MIN);
        self.resolve(next).map(|t| t - TimeDelta::seconds(1))
    }
}

impl Serialize for TimeZone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

deserialize_via_parse!(TimeZone, String);

/// How long before the due date a reminder fires: an ISO 8601 duration
/// `PnW` or `P[nD][T[nH][nM][nS]]`, at most 365 days.
///
/// As in RFC 5545 (3.3.6), days and weeks are nominal and the time part is
/// exact: `P1D` before 09:00 is 09:00 the day before, even across a DST
/// change, while `PT24H` is 24 hours. Years and months are refused, as are
/// fractions. The value is written back in canonical form (`PT90M` becomes
/// `PT1H30M`, `P1W` becomes `P7D`, zero is `PT0S`; `PT24H` stays `PT24H`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReminderOffset {
    /// Nominal days (weeks count 7).
    days: u32,
    /// Exact seconds of the time part.
    secs: u32,
}

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
        let (days, secs) = if rest.contains('W') {
            sum_units(rest, &[('W', 7)]).map(|w| (w, 0))
        } else {
            match rest.split_once('T') {
                Some((_, "")) => None,
                Some((date, time)) => sum_units(date, &[('D', 1)]).zip(sum_units(time, &[('H', HOUR), ('M', MINUTE), ('S', 1)])),
                None if rest.is_empty() => None,
                None => sum_units(rest, &[('D', 1)]).map(|d| (d, 0)),
            }
        }
        .ok_or_else(format)?;
        let too_long = || DomainError::new(field, Rule::OutOfRange, "must be at most 365 days (P365D)");
        if days * u64::from(DAY) + secs > u64::from(OFFSET_MAX_SECS) {
            return Err(too_long());
        }
        Ok(ReminderOffset { days: u32::try_from(days).map_err(|_| too_long())?, secs: u32::try_from(secs).map_err(|_| too_long())? })
    }

    /// The nominal days (weeks count 7).
    pub fn days(self) -> u32 {
        self.days
    }

    /// The exact seconds of the time part.
    pub fn time_seconds(self) -> u32 {
        self.secs
    }

    /// The instant this long before `due` in `zone`: the same wall-clock time
    /// `days` local days earlier ([`TimeZone::resolve`]), then the exact time
    /// part earlier still.
    pub fn before(self, due: DateTime<Utc>, zone: TimeZone) -> Option<DateTime<Utc>> {
        let local = due.with_timezone(&zone.tz()).naive_local().checked_sub_days(Days::new(u64::from(self.days)))?;
        let day = if self.days == 0 { due } else { zone.resolve(local)? };
        day.checked_sub_signed(TimeDelta::seconds(i64::from(self.secs)))
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
        let (d, h, m, s) = (self.days, self.secs / HOUR, self.secs % HOUR / MINUTE, self.secs % MINUTE);
        f.write_str("P")?;
        if d > 0 {
            write!(f, "{d}D")?;
        }
        if self.secs > 0 || d == 0 {
            f.write_str("T")?;
        }
        if h > 0 {
            write!(f, "{h}H")?;
        }
        if m > 0 {
            write!(f, "{m}M")?;
        }
        if s > 0 || (d == 0 && self.secs == 0) {
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

    /// The instant the reminder fires, given the task's due date and its zone.
    pub fn instant(&self, due: Option<DateTime<Utc>>, zone: TimeZone) -> Option<DateTime<Utc>> {
        match self {
            Reminder::Before(offset) => offset.before(due?, zone),
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
    /// repeats; offsets count back from `due` in `zone`, and are skipped when
    /// there is no due date.
    pub fn instants(&self, due: Option<DateTime<Utc>>, zone: TimeZone) -> Vec<DateTime<Utc>> {
        let mut out: Vec<DateTime<Utc>> = self.0.iter().filter_map(|r| r.instant(due, zone)).collect();
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
    fn every_listed_zone_name_parses() {
        let names: Vec<&str> = TimeZone::names().collect();
        assert!(names.len() > 400 && names.contains(&"Europe/Paris") && names.contains(&"UTC"));
        for name in names {
            assert_eq!(TimeZone::parse(name).map(|z| z.name()), Ok(name));
        }
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
            // Days are nominal, hours exact: neither becomes the other.
            ("PT24H", "PT24H"),
            ("PT36H", "PT36H"),
            ("P1DT24H", "P1DT24H"),
            ("P2W", "P14D"),
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
        assert_eq!(offset("P364DT48H"), Err(Rule::OutOfRange));
        assert_eq!(offset("PT8761H"), Err(Rule::OutOfRange));
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
        let got: Vec<String> = r.instants(Some(due), TimeZone::UTC).iter().map(|t| t.to_rfc3339()).collect();
        assert_eq!(got, ["2026-02-28T08:00:00+00:00", "2026-03-01T07:00:00+00:00", "2026-03-01T07:45:00+00:00"]);
        assert_eq!(r.instants(None, TimeZone::UTC).len(), 1);
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
        assert_eq!(stored.as_slice(), [Reminder::Before(ReminderOffset { days: 0, secs: 90 * 60 })]);
    }

    #[test]
    fn local_times_resolve_as_rfc_5545_says() {
        let berlin = TimeZone::parse("Europe/Berlin").unwrap();
        let local = |raw: &str| NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M").unwrap();
        let utc = |raw: &str| parse_instant(raw, "t").unwrap();
        // 02:30 does not exist on 2026-03-29: read with the offset before the gap (+01:00).
        assert_eq!(berlin.resolve(local("2026-03-29 02:30")), Some(utc("2026-03-29T03:30:00+02:00")));
        // 02:30 happens twice on 2026-10-25: the first (+02:00).
        assert_eq!(berlin.resolve(local("2026-10-25 02:30")), Some(utc("2026-10-25T02:30:00+02:00")));
        assert_eq!(berlin.resolve(local("2026-07-01 12:00")), Some(utc("2026-07-01T12:00:00+02:00")));
        // A day whose midnight is skipped (Havana, 2026-03-08) ends at 23:59:59 of the old offset.
        let havana = TimeZone::parse("America/Havana").unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 3, 7).unwrap();
        assert_eq!(havana.end_of_day(day), Some(utc("2026-03-07T23:59:59-05:00")));
        assert_eq!(berlin.end_of_day(day), Some(utc("2026-03-07T23:59:59+01:00")));
    }

    fn offset_of(days: u32, secs: u32) -> ReminderOffset {
        ReminderOffset { days, secs }
    }

    proptest! {
        #[test]
        fn canonical_offsets_round_trip(days in 0u32..=365, secs in 0u32..=DAY * 2) {
            let o = offset_of(days, secs);
            let parsed = ReminderOffset::parse(&o.to_string(), "r");
            if days * DAY + secs <= OFFSET_MAX_SECS {
                prop_assert_eq!(parsed, Ok(o));
            } else {
                prop_assert_eq!(parsed.unwrap_err().rule, Rule::OutOfRange);
            }
        }

        #[test]
        fn offsets_sum_their_components(d in 0u32..=300, h in 0u32..=100, m in 0u32..=100, s in 0u32..=100) {
            let text = format!("P{d}DT{h}H{m}M{s}S");
            let parsed = ReminderOffset::parse(&text, "r").unwrap();
            prop_assert_eq!((parsed.days(), parsed.time_seconds()), (d, h * HOUR + m * MINUTE + s));
        }

        #[test]
        fn offset_parser_never_panics(raw in "P?[0-9DTHMSWY.]{0,12}") {
            if let Ok(o) = ReminderOffset::parse(&raw, "r") {
                prop_assert!(o.days() * DAY + o.time_seconds() <= OFFSET_MAX_SECS);
            }
        }

        #[test]
        fn instants_are_sorted_and_offsets_precede_due(offsets in proptest::collection::vec((0u32..=300, 0u32..=DAY), 0..=5)) {
            let due = parse_instant("2030-01-01T00:00:00Z", "d").unwrap();
            let raw: Vec<String> = offsets.iter().map(|(d, s)| offset_of(*d, *s).to_string()).collect();
            if let Ok(r) = Reminders::parse(&raw) {
                let instants = r.instants(Some(due), TimeZone::parse("Europe/Berlin").unwrap());
                prop_assert!(instants.windows(2).all(|w| w[0] < w[1]));
                prop_assert!(instants.iter().all(|t| *t <= due));
            }
        }

        /// `PnD` before a due date is the same local time n days earlier, in
        /// every zone and across DST changes (outside gaps).
        #[test]
        fn days_before_keep_the_local_time(
            zone in prop_oneof![Just("Europe/Berlin"), Just("America/New_York"), Just("Australia/Sydney"), Just("America/Havana")],
            minutes in 0i64..(20 * 365 * 24 * 60), days in 1u32..=365,
        ) {
            let zone = TimeZone::parse(zone).unwrap();
            let due = parse_instant("2020-01-01T00:00:00Z", "d").unwrap() + TimeDelta::minutes(minutes);
            let at = offset_of(days, 0).before(due, zone).unwrap();
            let (due_local, at_local) = (due.with_timezone(&zone.tz()), at.with_timezone(&zone.tz()));
            let want = due_local.naive_local().checked_sub_days(Days::new(u64::from(days))).unwrap();
            if zone.tz().from_local_datetime(&want).single().is_some() {
                prop_assert_eq!(at_local.naive_local(), want);
            } else {
                prop_assert_eq!(Some(at), zone.resolve(want));
            }
        }
    }
}
