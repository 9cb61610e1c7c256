//! Recurrence in words: English phrases such as "every weekday" or "every 2
//! weeks on monday and friday until 2026-12-31", parsed into an RRULE of the
//! subset [`RecurrenceRule`] accepts, and rules described back in the same words.
//!
//! Grammar (case-insensitive; commas count as "and"):
//!
//! ```text
//! phrase   = ("every" | "every!") core [" until " YYYY-MM-DD] [" for " N (" times" | " time")]
//! core     = "day" | N " days" | "other day"
//!          | "weekday"                                   FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR
//!          | weekdays                                    FREQ=WEEKLY;BYDAY=...
//!          | ("week" | N " weeks" | "other week") [" on " weekdays]
//!          | ("month" | N " months" | "other month") [" on " ["the "] days ["of the month"]]
//!          | "last day of the month"                     FREQ=MONTHLY;BYMONTHDAY=-1
//!          | ("year" | N " years" | "other year") [" on " month-name day]
//! weekdays = weekday-name {("and" | ",") weekday-name}     (monday or mon, ...)
//! days     = (ordinal | "last" ["day"]) {("and" | ",") ...}   (1st, 2nd, 15th, 31, last day)
//! ```
//!
//! `every!` (as in Todoist) anchors the series on completion: the next
//! occurrence counts from when the previous one was completed. `until <date>`
//! ends the series at the end of that day in the task's time zone: a task
//! at 17:00 in Los Angeles "until 2026-12-31" still has its Dec 31 occurrence
//! (`UNTIL=20270101T075959Z`, see [`RecurrenceRule::in_zone`]). `for N times`
//! is `COUNT=N`: the series has N occurrences in all.

use chrono::Weekday;

use crate::recurrence::{Frequency, RecurrenceEnd};
use crate::{Anchor, DomainError, RecurrenceRule, Rule, TimeZone};

const FIELD: &str = "recurrence.text";
const WEEKDAYS: [(Weekday, &str, &str); 7] = [
    (Weekday::Mon, "monday", "MO"),
    (Weekday::Tue, "tuesday", "TU"),
    (Weekday::Wed, "wednesday", "WE"),
    (Weekday::Thu, "thursday", "TH"),
    (Weekday::Fri, "friday", "FR"),
    (Weekday::Sat, "saturday", "SA"),
    (Weekday::Sun, "sunday", "SU"),
];
const MONTHS: [&str; 12] =
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"];

fn err(message: impl std::fmt::Display) -> DomainError {
    DomainError::new(FIELD, Rule::Format, message)
}

/// Parses a phrase into a rule. The anchor is `completion` for `every!`, else
/// `anchor` (what the client gave, `due` by default).
pub fn parse(text: &str, anchor: Option<Anchor>) -> Result<RecurrenceRule, DomainError> {
    let lowered = text.to_lowercase().replace(',', " and ");
    let mut words: Vec<&str> = lowered.split_whitespace().collect();
    let bang = match words.first() {
        Some(&"every") => false,
        Some(&"every!") => true,
        _ => return Err(err("must start with \"every\", e.g. \"every weekday\" or \"every 2 weeks on monday\"")),
    };
    words.remove(0);
    let anchor = match (bang, anchor) {
        (true, Some(Anchor::Due)) => return Err(DomainError::new("recurrence.anchor", Rule::Format, "\"every!\" means anchor completion")),
        (true, _) => Anchor::Completion,
        (false, a) => a.unwrap_or_default(),
    };
    let mut end = String::new();
    let mut until = None;
    loop {
        match words.as_slice() {
            [.., "for", n, "times" | "time"] if end.is_empty() || !end.contains("COUNT") => {
                end += &format!(";COUNT={}", number(n)?);
                words.truncate(words.len() - 3);
            }
            [.., "until", date] if !end.contains("UNTIL") => {
                let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| err("until needs a date like 2026-12-31"))?;
                end += &format!(";UNTIL={}T235959Z", day.format("%Y%m%d"));
                until = Some(day);
                words.truncate(words.len() - 2);
            }
            _ => break,
        }
    }
    let core = core(&words)?;
    let rule = RecurrenceRule::parse(&format!("{core}{end}"), anchor).map_err(|e| DomainError { field: FIELD.into(), ..e })?;
    Ok(match until {
        Some(day) => rule.until_day(day),
        None => rule,
    })
}

/// The RRULE (without COUNT/UNTIL) of the phrase's core.
fn core(words: &[&str]) -> Result<String, DomainError> {
    let (interval, rest) = match words {
        ["other", rest @ ..] => (2, rest),
        [n, rest @ ..] if n.bytes().all(|b| b.is_ascii_digit()) => (number(n)?, rest),
        rest => (1, rest),
    };
    let every = |freq: &str| if interval == 1 { format!("FREQ={freq}") } else { format!("FREQ={freq};INTERVAL={interval}") };
    let plural = interval != 1 && words.first() != Some(&"other");
    let unit = |one: &str, w: &str| if plural { w == format!("{one}s") } else { w == one };
    match rest {
        [w] if unit("day", w) => Ok(every("DAILY")),
        ["weekday" | "weekdays"] if interval == 1 => Ok("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR".into()),
        ["last", "day", "of", "the", "month"] if interval == 1 => Ok("FREQ=MONTHLY;BYMONTHDAY=-1".into()),
        [w, tail @ ..] if unit("week", w) => match tail {
            [] => Ok(every("WEEKLY")),
            ["on", days @ ..] => Ok(format!("{};BYDAY={}", every("WEEKLY"), weekdays(days)?)),
            _ => Err(err("expected \"on <weekdays>\" after weeks")),
        },
        [w, tail @ ..] if unit("month", w) => match tail {
            [] => Ok(every("MONTHLY")),
            ["on", days @ ..] => Ok(format!("{};BYMONTHDAY={}", every("MONTHLY"), month_days(days)?)),
            _ => Err(err("expected \"on the <day>\" after months")),
        },
        [w, tail @ ..] if unit("year", w) => match tail {
            [] => Ok(every("YEARLY")),
            ["on", month, day] => {
                let m = MONTHS
                    .iter()
                    .position(|name| name == month || name[..3] == **month)
                    .ok_or_else(|| err(format!("\"{month}\" is not a month")))?;
                Ok(format!("{};BYMONTH={};BYMONTHDAY={}", every("YEARLY"), m + 1, ordinal(day)?))
            }
            _ => Err(err("expected \"on <month> <day>\" after years")),
        },
        days if interval == 1 && !days.is_empty() => Ok(format!("FREQ=WEEKLY;BYDAY={}", weekdays(days)?)),
        _ => Err(err("expected day(s), weekday, week(s), month(s), year(s) or weekday names after \"every\"")),
    }
}

fn number(raw: &str) -> Result<u32, DomainError> {
    raw.parse().ok().filter(|n| *n >= 1).ok_or_else(|| err(format!("\"{raw}\" is not a positive number")))
}

/// Items of a list joined by "and".
fn items<'a>(words: &'a [&'a str]) -> Result<Vec<Vec<&'a str>>, DomainError> {
    let list: Vec<Vec<&str>> = words.split(|w| *w == "and").map(<[&str]>::to_vec).collect();
    if list.iter().any(Vec::is_empty) {
        return Err(err("a list item is missing"));
    }
    Ok(list)
}

fn weekdays(words: &[&str]) -> Result<String, DomainError> {
    let codes = items(words)?
        .into_iter()
        .map(|item| match item.as_slice() {
            [w] => WEEKDAYS
                .iter()
                .find(|(_, name, _)| *name == *w || name[..3] == **w || format!("{name}s") == *w)
                .map(|(_, _, code)| *code)
                .ok_or_else(|| err(format!("\"{w}\" is not a weekday"))),
            _ => Err(err(format!("\"{}\" is not a weekday", item.join(" ")))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(codes.join(","))
}

fn month_days(words: &[&str]) -> Result<String, DomainError> {
    let words = match words {
        ["the", rest @ ..] => rest,
        rest => rest,
    };
    let words = match words {
        [rest @ .., "of", "the", "month"] => rest,
        rest => rest,
    };
    let days = items(words)?
        .into_iter()
        .map(|item| match item.as_slice() {
            ["last"] | ["last", "day"] => Ok("-1".to_owned()),
            ["the", "last"] | ["the", "last", "day"] => Ok("-1".to_owned()),
            [d] | ["the", d] => ordinal(d).map(|d| d.to_string()),
            _ => Err(err(format!("\"{}\" is not a day of the month", item.join(" ")))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(days.join(","))
}

/// `1`, `1st`, `2nd`, `3rd`, `4th`, ... `31st`.
fn ordinal(raw: &str) -> Result<u32, DomainError> {
    let digits = raw.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &raw[digits.len()..];
    let n = number(digits)?;
    if !suffix.is_empty() && suffix != suffix_of(n) {
        return Err(err(format!("\"{raw}\" is not an ordinal")));
    }
    if n > 31 {
        return Err(DomainError::new(FIELD, Rule::OutOfRange, "a day of the month is 1 to 31"));
    }
    Ok(n)
}

fn suffix_of(n: u32) -> &'static str {
    match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

fn join(list: &[String]) -> String {
    match list {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The rule in the words [`parse`] reads (`parse(describe(r, zone))` read in
/// `zone` is `r`), or `None` when the grammar cannot say it (e.g.
/// `BYDAY=1MO`, `BYMONTHDAY=-2`, an `UNTIL` that is not the end of a day in
/// `zone`).
pub fn describe(rule: &RecurrenceRule, zone: TimeZone) -> Option<String> {
    let n = rule.interval();
    let every = if rule.anchor() == Anchor::Completion { "every!" } else { "every" };
    let unit = |one: &str| if n == 1 { one.to_owned() } else { format!("{n} {one}s") };
    let plain_days = rule.by_day().iter().all(|d| d.ordinal.is_none());
    let day_names: Vec<String> = rule.by_day().iter().map(|d| WEEKDAYS[d.weekday.num_days_from_monday() as usize].1.to_owned()).collect();
    let core = match rule.freq() {
        Frequency::Daily if rule.by_day().is_empty() && rule.by_month().is_empty() && rule.by_month_day().is_empty() => unit("day"),
        Frequency::Weekly if rule.by_month().is_empty() && plain_days => {
            let workweek = rule.by_day().len() == 5 && rule.by_day().iter().all(|d| d.weekday.num_days_from_monday() < 5);
            match (n, rule.by_day().is_empty()) {
                (1, false) if workweek => "weekday".to_owned(),
                (1, false) => join(&day_names),
                (_, true) => unit("week"),
                (_, false) => format!("{} on {}", unit("week"), join(&day_names)),
            }
        }
        Frequency::Monthly if rule.by_day().is_empty() && rule.by_month().is_empty() => match rule.by_month_day() {
            [] => unit("month"),
            [-1] if n == 1 => "last day of the month".to_owned(),
            days if days.iter().all(|d| *d > 0 || *d == -1) => {
                // Canonical order puts -1 first; say it last.
                let mut words: Vec<String> = days.iter().filter(|d| **d > 0).map(|d| format!("{d}{}", suffix_of(*d as u32))).collect();
                if days.contains(&-1) {
                    words.push("last day".to_owned());
                }
                format!("{} on the {}", unit("month"), join(&words))
            }
            _ => return None,
        },
        Frequency::Yearly if rule.by_day().is_empty() => match (rule.by_month(), rule.by_month_day()) {
            ([], []) => unit("year"),
            ([m], [d]) if *d > 0 => format!("{} on {} {d}", unit("year"), MONTHS[usize::from(*m) - 1]),
            _ => return None,
        },
        _ => return None,
    };
    let end = match rule.end() {
        None => String::new(),
        Some(RecurrenceEnd::Count(c)) => format!(" for {c} {}", if c == 1 { "time" } else { "times" }),
        // A leap second (23:59:60, which chrono reads as 23:59:59 plus a second of nanoseconds) is not the end of a day.
        Some(RecurrenceEnd::Until(u)) => {
            let day = u.with_timezone(&zone.tz()).date_naive();
            if zone.end_of_day(day) != Some(u) {
                return None;
            }
            format!(" until {}", day.format("%Y-%m-%d"))
        }
    };
    Some(format!("{every} {core}{end}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rrule(text: &str) -> Result<String, (String, Rule)> {
        parse(text, None).map(|r| r.to_rrule_string()).map_err(|e| (e.field, e.rule))
    }

    #[test]
    fn phrases_parse_into_rules() {
        for (text, want) in [
            ("every day", "FREQ=DAILY"),
            ("Every 3 days", "FREQ=DAILY;INTERVAL=3"),
            ("every other day", "FREQ=DAILY;INTERVAL=2"),
            ("every weekday", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
            ("every week", "FREQ=WEEKLY"),
            ("every monday", "FREQ=WEEKLY;BYDAY=MO"),
            ("every tue, thu and sat", "FREQ=WEEKLY;BYDAY=TU,TH,SA"),
            ("every 2 weeks on monday and friday", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR"),
            ("every other week on fridays", "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR"),
            ("every month", "FREQ=MONTHLY"),
            ("every month on the 31st", "FREQ=MONTHLY;BYMONTHDAY=31"),
            ("every month on the 1st and 15th", "FREQ=MONTHLY;BYMONTHDAY=1,15"),
            ("every 3 months on the last day", "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=-1"),
            ("every last day of the month", "FREQ=MONTHLY;BYMONTHDAY=-1"),
            ("every year", "FREQ=YEARLY"),
            ("every year on february 29", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"),
            ("every 2 years on mar 3rd", "FREQ=YEARLY;INTERVAL=2;BYMONTH=3;BYMONTHDAY=3"),
            ("every day until 2026-12-31", "FREQ=DAILY;UNTIL=20261231T235959Z"),
            ("every weekday for 10 times", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;COUNT=10"),
            ("  every   week  for 1 time ", "FREQ=WEEKLY;COUNT=1"),
        ] {
            assert_eq!(rrule(text), Ok(want.to_owned()), "{text}");
        }
        assert_eq!(parse("every! 3 days", None).unwrap().anchor(), Anchor::Completion);
        assert_eq!(parse("every week", Some(Anchor::Completion)).unwrap().anchor(), Anchor::Completion);
    }

    #[test]
    fn bad_phrases_are_refused_on_the_text_field() {
        for text in [
            "",
            "daily",
            "every",
            "every fortnight",
            "every 0 days",
            "every 2 day",
            "every days",
            "every month on the 32nd",
            "every month on the 2st",
            "every week on funday",
            "every day until tomorrow",
            "every day for 0 times",
            "every day until 2026-01-01 for 2 times",
            "every 2 weekdays",
            "every monday and",
            "every year on smarch 3",
        ] {
            assert_eq!(rrule(text).map_err(|e| e.0), Err(FIELD.to_owned()), "{text:?}");
        }
        assert_eq!(parse("every! day", Some(Anchor::Due)).unwrap_err().field, "recurrence.anchor");
    }

    #[test]
    fn rules_are_described_in_phrases() {
        for (raw, anchor, want) in [
            ("FREQ=DAILY", Anchor::Due, Some("every day")),
            ("FREQ=DAILY;INTERVAL=3", Anchor::Completion, Some("every! 3 days")),
            ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", Anchor::Due, Some("every weekday")),
            ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR", Anchor::Due, Some("every 2 weeks on monday and friday")),
            ("FREQ=WEEKLY;BYDAY=MO,WE,FR", Anchor::Due, Some("every monday, wednesday and friday")),
            ("FREQ=MONTHLY;BYMONTHDAY=31", Anchor::Due, Some("every month on the 31st")),
            ("FREQ=MONTHLY;BYMONTHDAY=-1", Anchor::Due, Some("every last day of the month")),
            ("FREQ=MONTHLY;BYMONTHDAY=-1,15", Anchor::Due, Some("every month on the 15th and last day")),
            ("FREQ=YEARLY;COUNT=3", Anchor::Due, Some("every year for 3 times")),
            ("FREQ=DAILY;UNTIL=20261231T235959Z", Anchor::Due, Some("every day until 2026-12-31")),
            ("FREQ=DAILY;UNTIL=20261231T120000Z", Anchor::Due, None),
            // Found by the fuzz checks: a leap second was said as the end of the day, which reads back as 23:59:59.
            ("FREQ=YEARLY;UNTIL=20031231T235960Z", Anchor::Due, None),
            ("FREQ=MONTHLY;BYDAY=1MO", Anchor::Due, None),
            ("FREQ=MONTHLY;BYMONTHDAY=-2", Anchor::Due, None),
        ] {
            let rule = RecurrenceRule::parse(raw, anchor).unwrap();
            assert_eq!(describe(&rule, TimeZone::UTC).as_deref(), want, "{raw}");
        }
    }

    #[test]
    fn until_is_a_date_of_the_tasks_zone() {
        let la = TimeZone::parse("America/Los_Angeles").unwrap();
        let rule = parse("every day until 2026-12-31", None).unwrap();
        assert_eq!(rule.to_rrule_string(), "FREQ=DAILY;UNTIL=20261231T235959Z", "UTC until read in a zone");
        let rule = rule.in_zone(la).unwrap();
        assert_eq!(rule.to_rrule_string(), "FREQ=DAILY;UNTIL=20270101T075959Z");
        assert_eq!(describe(&rule, la).as_deref(), Some("every day until 2026-12-31"));
        assert_eq!(describe(&rule, TimeZone::UTC), None, "07:59:59 is not the end of a UTC day");
        // An UNTIL given as RRULE is an instant and stays.
        let given = RecurrenceRule::parse("FREQ=DAILY;UNTIL=20261231T235959Z", Anchor::Due).unwrap();
        assert_eq!(given.clone().in_zone(la).unwrap(), given);
        // The last day must end in the years the API writes.
        let late = parse("every day until 9999-12-31", None).unwrap();
        assert_eq!(late.in_zone(la).unwrap_err().rule, Rule::OutOfRange);
    }

    fn any_rule() -> impl Strategy<Value = RecurrenceRule> {
        let freq = prop_oneof![Just("DAILY"), Just("WEEKLY"), Just("MONTHLY"), Just("YEARLY")];
        let by_day = proptest::collection::vec("(MO|TU|WE|TH|FR|SA|SU)", 0..4);
        let month_day = proptest::collection::vec(prop_oneof![1i8..=31, Just(-1i8), Just(-3i8)], 0..3);
        let month = proptest::collection::vec(1u8..=12, 0..2);
        let end =
            prop_oneof![Just(String::new()), (1u32..=50).prop_map(|c| format!(";COUNT={c}")), Just(";UNTIL=20300101T235959Z".to_owned())];
        (freq, 1u16..=4, by_day, month_day, month, end, any::<bool>()).prop_filter_map("valid", |(f, i, d, md, m, e, c)| {
            let mut raw = format!("FREQ={f};INTERVAL={i}");
            if !d.is_empty() {
                raw += &format!(";BYDAY={}", d.join(","));
            }
            if !md.is_empty() {
                raw += &format!(";BYMONTHDAY={}", md.iter().map(i8::to_string).collect::<Vec<_>>().join(","));
            }
            if !m.is_empty() {
                raw += &format!(";BYMONTH={}", m.iter().map(u8::to_string).collect::<Vec<_>>().join(","));
            }
            raw += &e;
            RecurrenceRule::parse(&raw, if c { Anchor::Completion } else { Anchor::Due }).ok()
        })
    }

    proptest! {
        #[test]
        fn described_rules_parse_back_to_themselves(rule in any_rule()) {
            if let Some(text) = describe(&rule, TimeZone::UTC) {
                prop_assert_eq!(parse(&text, None).unwrap().in_zone(TimeZone::UTC).unwrap(), rule, "{}", text);
            }
        }

        /// "until D" read in any zone ends on D there and is said back as D.
        #[test]
        fn until_dates_round_trip_in_every_zone(
            zone in prop_oneof![Just("UTC"), Just("America/Los_Angeles"), Just("Pacific/Kiritimati"), Just("America/Havana"), Just("Asia/Kolkata")],
            days in 0i64..20_000,
        ) {
            let zone = TimeZone::parse(zone).unwrap();
            let day = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap() + chrono::TimeDelta::days(days);
            let text = format!("every day until {}", day.format("%Y-%m-%d"));
            let rule = parse(&text, None).unwrap().in_zone(zone).unwrap();
            let Some(RecurrenceEnd::Until(until)) = rule.end() else { panic!("{text} has no UNTIL") };
            prop_assert_eq!(until.with_timezone(&zone.tz()).date_naive(), day);
            prop_assert!((until + chrono::TimeDelta::seconds(1)).with_timezone(&zone.tz()).date_naive() > day);
            prop_assert_eq!(describe(&rule, zone), Some(text));
        }

        #[test]
        fn phrase_parser_never_panics(text in "(every!? )?[a-z0-9 ,!-]{0,40}") {
            let _ = parse(&text, None);
        }
    }
}
