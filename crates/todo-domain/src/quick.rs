//! Quick add: one sentence becomes a task ("Call mom tomorrow 6pm #family p1").
//!
//! The parser is deterministic: the same sentence, time zone and `now` give the
//! same task. It reads the words left to right; at each word it tries, in
//! order, a recurrence (`every ...`, the grammar of [`crate::phrase`], longest
//! phrase that parses), a reminder (`remind me N minutes|hours|days|weeks
//! before`), a tag (`#word`), a priority (`p1`..`p4`, `!urgent`, `high
//! priority`, `priority low`, ...), a date (`today`, `tomorrow`, a weekday,
//! `next friday`, `next week`, `in 3 days`, `2026-12-31`, `dec 31`, `31st
//! december`, optionally after `on`, `by`, `due` or `starting`) and a time
//! (`6pm`, `6:30 pm`, `18:00`, `9:30`, `at 9`, `noon`, `midnight`). Every word
//! nothing claims stays in the title, in order; so does a second date or
//! time. Only date words make a date: `sat`, `sun` and a bare `may` are
//! English words, so they never do.
//!
//! Resolution, in the user's time zone:
//! - a date without a time is due at the end of that day (23:59 local);
//! - a time without a date is today, or tomorrow once that time has passed;
//! - a weekday is the nearest day with that name, today included; `next
//!   <weekday>` is that day in next week (weeks start on Monday); `next week`
//!   is next Monday, `next month` the 1st of next month;
//! - a recurrence without a date is first due at its first occurrence from
//!   now on (at the time given, else 23:59); `starting <date>` sets it;
//! - a local time in a daylight-saving gap moves forward by the gap.
//!
//! The result is the JSON body a client would `POST`, checked by
//! [`NewTask::from_json`], so a quick-added task obeys every rule of the API.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeDelta, Utc, Weekday};
use serde_json::{json, Map, Value};

use crate::occurrence::next_occurrence;
use crate::phrase;
use crate::{DomainError, NewTask, Priority, RecurrenceRule, Rule, Tag, TimeZone};

/// Longest accepted sentence, in characters.
pub const TEXT_MAX: usize = 1_000;
/// Most words a recurrence phrase may span.
const PHRASE_WORDS_MAX: usize = 14;

const WEEKDAYS: [(&str, &[&str], Weekday); 7] = [
    ("monday", &["mon"], Weekday::Mon),
    ("tuesday", &["tue", "tues"], Weekday::Tue),
    ("wednesday", &["wed"], Weekday::Wed),
    ("thursday", &["thu", "thur", "thurs"], Weekday::Thu),
    ("friday", &["fri"], Weekday::Fri),
    // "sat" and "sun" are English words: only the full names are dates.
    ("saturday", &[], Weekday::Sat),
    ("sunday", &[], Weekday::Sun),
];
const MONTHS: [&str; 12] =
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"];

/// A parsed sentence: the task it creates and the JSON body it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct QuickAdd {
    /// The body of `POST /api/{user_id}/tasks` that the sentence means.
    pub fields: Value,
    /// The task, parsed from `fields` by the API's own rules.
    pub task: NewTask,
}

/// What the words said, before it is resolved against `now`.
#[derive(Default)]
struct Parts {
    title: Vec<String>,
    tags: Vec<String>,
    priority: Option<Priority>,
    date: Option<NaiveDate>,
    time: Option<NaiveTime>,
    reminders: Vec<String>,
    recurrence: Option<RecurrenceRule>,
}

/// The body of `POST /api/{user_id}/tasks/quick` (and of its preview):
/// `{"text": "...", "time_zone": "Europe/Paris"}`; `time_zone` defaults to UTC.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    text: Option<Value>,
    #[serde(default)]
    time_zone: Option<Value>,
}

impl QuickAdd {
    /// Parses the JSON body of a quick add at `now`.
    pub fn from_json(body: &[u8], now: DateTime<Utc>) -> Result<Self, DomainError> {
        let value: Value = serde_json::from_slice(body).map_err(crate::task::body_error)?;
        if !value.is_object() {
            return Err(DomainError::new("body", Rule::Format, "must be a JSON object"));
        }
        let request: Request = serde_json::from_value(value).map_err(crate::task::body_error)?;
        let text = match request.text {
            Some(Value::String(text)) => text,
            None | Some(Value::Null) => return Err(DomainError::new("text", Rule::Required, "is required")),
            Some(_) => return Err(DomainError::new("text", Rule::Format, "must be a string")),
        };
        let zone = match request.time_zone {
            None | Some(Value::Null) => TimeZone::UTC,
            Some(Value::String(name)) => TimeZone::parse(&name)?,
            Some(_) => return Err(DomainError::new("time_zone", Rule::Format, "must be a string")),
        };
        parse(&text, zone, now)
    }
}

/// What a sentence's characters must be, as a regular expression (the OpenAPI
/// document's): a character that is not whitespace, and no control character
/// but whitespace (the words go into the title). Which words are left for the
/// title is the grammar's, not the pattern's.
pub fn text_pattern() -> String {
    let control = r"\u0000-\u0008\u000E-\u001F\u007F-\u0084\u0086-\u009F";
    let ws = crate::fields::WHITESPACE;
    format!("^[^{control}]*[^{control}{ws}][^{control}]*$")
}

/// Parses `text` into a task, for a user in `zone` at `now`.
pub fn parse(text: &str, zone: TimeZone, now: DateTime<Utc>) -> Result<QuickAdd, DomainError> {
    let chars = text.chars().count();
    if chars > TEXT_MAX {
        return Err(DomainError::new("text", Rule::TooLong, format!("at most {TEXT_MAX} characters, got {chars}")));
    }
    let today = now.with_timezone(&zone.tz()).date_naive();
    let original: Vec<&str> = text.split_whitespace().collect();
    let words: Vec<String> = original.iter().map(|w| w.trim_end_matches([',', '.', ';', '!', '?']).to_lowercase()).collect();
    let mut parts = Parts::default();
    let mut i = 0;
    while i < words.len() {
        let rest = &words[i..];
        let taken = recurrence(&original[i..], &mut parts)
            .or_else(|| reminder(rest, &mut parts))
            .or_else(|| tag(rest, &mut parts))
            .or_else(|| priority(rest, &mut parts))
            .or_else(|| date(rest, today, &mut parts))
            .or_else(|| time(rest, &mut parts));
        match taken {
            Some(n) => i += n,
            None => {
                parts.title.push(original[i].to_owned());
                i += 1;
            }
        }
    }
    resolve(parts, zone, now)
}

/// `every ...`: the longest run of words from here that the phrase grammar reads.
fn recurrence(original: &[&str], parts: &mut Parts) -> Option<usize> {
    let first = original.first()?.to_lowercase();
    if parts.recurrence.is_some() || !(first == "every" || first == "every!") {
        return None;
    }
    let words: Vec<&str> = original.iter().map(|w| w.trim_end_matches([',', '.', ';'])).collect();
    (2..=words.len().min(PHRASE_WORDS_MAX)).rev().find_map(|n| {
        let rule = phrase::parse(&words[..n].join(" "), None).ok()?;
        parts.recurrence = Some(rule);
        Some(n)
    })
}

/// `remind me N <unit> before` (N a number, `a`, `an` or `one`).
fn reminder(words: &[String], parts: &mut Parts) -> Option<usize> {
    let [remind, me, n, unit, before, ..] = words else { return None };
    if remind != "remind" || me != "me" || !(before == "before" || before == "earlier") {
        return None;
    }
    let n: u32 = match n.as_str() {
        "a" | "an" | "one" => 1,
        digits => digits.parse().ok().filter(|n| *n >= 1)?,
    };
    let duration = match unit.trim_end_matches('s') {
        "minute" | "min" => format!("PT{n}M"),
        "hour" | "hr" => format!("PT{n}H"),
        "day" => format!("P{n}D"),
        "week" => format!("P{n}W"),
        _ => return None,
    };
    parts.reminders.push(duration);
    Some(5)
}

/// `#tag`, when the rest is a valid tag.
fn tag(words: &[String], parts: &mut Parts) -> Option<usize> {
    let tag = Tag::parse(words.first()?.strip_prefix('#')?).ok()?;
    if !parts.tags.iter().any(|t| t == tag.as_str()) {
        parts.tags.push(tag.as_str().to_owned());
    }
    Some(1)
}

/// `p1` (urgent) .. `p4` (low) as in Todoist, `!urgent`, `high priority`, `priority high`.
fn priority(words: &[String], parts: &mut Parts) -> Option<usize> {
    if parts.priority.is_some() {
        return None;
    }
    let level = |w: &str| ["low", "medium", "high", "urgent"].contains(&w).then(|| w.parse::<Priority>().ok()).flatten();
    let (found, n) = match words {
        [w, ..] if w.len() == 2 && w.starts_with('p') => match &w[1..] {
            "1" => (Priority::Urgent, 1),
            "2" => (Priority::High, 1),
            "3" => (Priority::Medium, 1),
            "4" => (Priority::Low, 1),
            _ => return None,
        },
        [w, ..] if w.starts_with('!') => (level(&w[1..])?, 1),
        [l, p, ..] if p == "priority" && level(l).is_some() => (level(l)?, 2),
        [p, l, ..] if p == "priority" && level(l).is_some() => (level(l)?, 2),
        _ => return None,
    };
    parts.priority = Some(found);
    Some(n)
}

/// A date, optionally after `on`, `by`, `due` (`due on`) or `starting`.
fn date(words: &[String], today: NaiveDate, parts: &mut Parts) -> Option<usize> {
    if parts.date.is_some() {
        return None;
    }
    let glue = match words {
        [d, o, ..] if d == "due" && o == "on" => 2,
        [g, ..] if ["on", "by", "due", "starting"].contains(&g.as_str()) => 1,
        _ => 0,
    };
    let (day, n, time) = day(&words[glue..], today)?;
    parts.date = Some(day);
    if parts.time.is_none() {
        parts.time = time;
    }
    Some(glue + n)
}

/// The date the words start with, how many words it took, and the time it implies.
fn day(words: &[String], today: NaiveDate) -> Option<(NaiveDate, usize, Option<NaiveTime>)> {
    let w = |i: usize| words.get(i).map(String::as_str);
    let plus_days = |n: u64| today.checked_add_days(Days::new(n));
    match (w(0)?, w(1)) {
        ("today", _) => Some((today, 1, None)),
        ("tonight", _) => Some((today, 1, NaiveTime::from_hms_opt(20, 0, 0))),
        ("tomorrow" | "tmrw" | "tmr", _) => Some((plus_days(1)?, 1, None)),
        ("next", Some("week")) => Some((plus_days(7 - u64::from(today.weekday().num_days_from_monday()))?, 2, None)),
        ("next", Some("month")) => Some((today.with_day(1)?.checked_add_months(Months::new(1))?, 2, None)),
        ("next", Some(name)) => {
            let target = weekday(name)?;
            let monday = plus_days(7 - u64::from(today.weekday().num_days_from_monday()))?;
            Some((monday.checked_add_days(Days::new(u64::from(target.num_days_from_monday())))?, 2, None))
        }
        ("this", Some(name)) => Some((nearest(today, weekday(name)?)?, 2, None)),
        ("in", Some(n)) => {
            let n: u32 = match n {
                "a" | "an" | "one" => 1,
                digits => digits.parse().ok().filter(|n| (1..=3650).contains(n))?,
            };
            let day = match w(2)?.trim_end_matches('s') {
                "day" => today.checked_add_days(Days::new(n.into()))?,
                "week" => today.checked_add_days(Days::new(u64::from(n) * 7))?,
                "month" => today.checked_add_months(Months::new(n))?,
                _ => return None,
            };
            Some((day, 3, None))
        }
        (iso, _) if iso.len() == 10 && iso.as_bytes()[4] == b'-' => Some((NaiveDate::parse_from_str(iso, "%Y-%m-%d").ok()?, 1, None)),
        (name, next) => {
            if let Some(target) = weekday(name) {
                return Some((nearest(today, target)?, 1, None));
            }
            // "dec 31", "december 31st", "31 dec", "31st of december".
            let (month, day_of_month, n) = match (month(name), next) {
                (Some(m), Some(d)) => (m, ordinal(d)?, 2),
                (None, Some("of")) => (month(w(2)?)?, ordinal(name)?, 3),
                (None, Some(m)) => (month(m)?, ordinal(name)?, 2),
                _ => return None,
            };
            let this_year = NaiveDate::from_ymd_opt(today.year(), month, day_of_month);
            let date = match this_year {
                Some(d) if d >= today => d,
                _ => NaiveDate::from_ymd_opt(today.year() + 1, month, day_of_month)?,
            };
            Some((date, n, None))
        }
    }
}

fn weekday(word: &str) -> Option<Weekday> {
    WEEKDAYS.iter().find(|(name, short, _)| *name == word || short.contains(&word)).map(|(_, _, day)| *day)
}

/// The first day on or after `today` that is a `target`.
fn nearest(today: NaiveDate, target: Weekday) -> Option<NaiveDate> {
    let ahead = (7 + target.num_days_from_monday() - today.weekday().num_days_from_monday()) % 7;
    today.checked_add_days(Days::new(ahead.into()))
}

fn month(word: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| *m == word || (word.len() == 3 && m.starts_with(word)) || (word == "sept" && *m == "september"))
        .map(|i| i as u32 + 1)
}

/// `1`..`31`, optionally with its English suffix (`1st`, `22nd`).
fn ordinal(word: &str) -> Option<u32> {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[digits.len()..];
    let n: u32 = digits.parse().ok().filter(|n| (1..=31).contains(n))?;
    let want = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    (suffix.is_empty() || suffix == want).then_some(n)
}

/// A time of day, optionally after `at` or `@`.
fn time(words: &[String], parts: &mut Parts) -> Option<usize> {
    if parts.time.is_some() {
        return None;
    }
    let glue = usize::from(words.first().is_some_and(|w| w == "at" || w == "@"));
    let rest = &words[glue..];
    let (t, n) = match rest {
        [w, ..] if w == "noon" => (NaiveTime::from_hms_opt(12, 0, 0)?, 1),
        [w, ..] if w == "midnight" => (NaiveTime::MIN, 1),
        [w, m, ..] if (m == "am" || m == "pm") && clock(w, false).is_some() => (meridiem(clock(w, false)?, m)?, 2),
        [w, ..] => {
            if let Some(m) = ["am", "pm"].into_iter().find(|m| w.ends_with(m)) {
                (meridiem(clock(&w[..w.len() - 2], false)?, m)?, 1)
            } else {
                // A bare hour ("at 9") needs `at`; "9:30" and "18:00" stand alone.
                (clock(w, glue == 0).map(|(h, m)| NaiveTime::from_hms_opt(h, m, 0))??, 1)
            }
        }
        [] => return None,
    };
    parts.time = Some(t);
    Some(glue + n)
}

/// `H`, `HH`, `H:MM` or `HH:MM` (hour 0-23); with `needs_colon`, only the forms with minutes.
fn clock(word: &str, needs_colon: bool) -> Option<(u32, u32)> {
    let (h, m) = match word.split_once(':') {
        Some((h, m)) if m.len() == 2 => (h, m),
        Some(_) => return None,
        None if needs_colon => return None,
        None => (word, "00"),
    };
    if h.is_empty() || h.len() > 2 || !h.bytes().all(|b| b.is_ascii_digit()) || !m.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

/// A 12-hour clock time: hour 1-12.
fn meridiem((h, m): (u32, u32), which: &str) -> Option<NaiveTime> {
    if !(1..=12).contains(&h) {
        return None;
    }
    let h = match which {
        "am" => h % 12,
        _ => h % 12 + 12,
    };
    NaiveTime::from_hms_opt(h, m, 0)
}

/// The task: the due date from the date, time and recurrence, in `zone`.
fn resolve(parts: Parts, zone: TimeZone, now: DateTime<Utc>) -> Result<QuickAdd, DomainError> {
    let tz = zone.tz();
    let today = now.with_timezone(&tz).date_naive();
    let end_of_day = NaiveTime::from_hms_opt(23, 59, 0).expect("a valid time");
    let at = |day: NaiveDate, t: NaiveTime| zone.resolve(day.and_time(t));
    let due = match (parts.date, parts.time, &parts.recurrence) {
        (Some(day), t, _) => at(day, t.unwrap_or(end_of_day)),
        (None, t, Some(rule)) => first_occurrence(rule, zone, t.unwrap_or(end_of_day), now),
        (None, Some(t), None) => match at(today, t) {
            Some(due) if due > now => Some(due),
            _ => today.checked_add_days(Days::new(1)).and_then(|d| at(d, t)),
        },
        (None, None, None) => None,
    };
    if parts.title.is_empty() {
        return Err(DomainError::new("text", Rule::Required, "nothing is left for the title"));
    }
    let mut fields = Map::new();
    fields.insert("title".into(), json!(parts.title.join(" ")));
    if let Some(due) = due {
        fields.insert("due_at".into(), json!(due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
        fields.insert("time_zone".into(), json!(zone.name()));
    }
    if let Some(p) = parts.priority {
        fields.insert("priority".into(), json!(p));
    }
    if !parts.tags.is_empty() {
        fields.insert("tags".into(), json!(parts.tags));
    }
    if !parts.reminders.is_empty() {
        fields.insert("reminders".into(), json!(parts.reminders));
    }
    if let Some(rule) = &parts.recurrence {
        fields.insert("recurrence".into(), json!({ "rrule": rule.to_rrule_string(), "anchor": rule.anchor() }));
    }
    let fields = Value::Object(fields);
    let task = NewTask::from_json(fields.to_string().as_bytes())?;
    Ok(QuickAdd { fields, task })
}

/// The first occurrence of `rule` at local time `t` from `now` on. A rule
/// that names no days counts from today; one that does finds its next day.
fn first_occurrence(rule: &RecurrenceRule, zone: TimeZone, t: NaiveTime, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let today = now.with_timezone(&zone.tz()).date_naive();
    let start = zone.resolve(today.and_time(t))?;
    let unconstrained = rule.by_day().is_empty() && rule.by_month_day().is_empty() && rule.by_month().is_empty();
    if unconstrained {
        if start > now {
            return Some(start);
        }
        return next_occurrence(rule, zone, start, 1, now).ok().map(|n| n.due_at);
    }
    // Counting from yesterday at `t`, the first occurrence after `now` may be today.
    let before = start.checked_sub_signed(TimeDelta::days(1))?;
    next_occurrence(rule, zone, before, 0, now).ok().map(|n| n.due_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_text_pattern_accepts_what_parse_accepts_of_plain_words(raw in "[x \t\n\u{1}\u{7f}\u{85}\u{a0}\u{2028}]{0,10}") {
            let pattern = regex::Regex::new(&text_pattern()).unwrap();
            prop_assert_eq!(parse(&raw, paris(), now()).is_ok(), pattern.is_match(&raw), "{:?}", raw);
        }
    }

    /// Wednesday 2026-03-04 10:00 in Europe/Paris (09:00 UTC).
    fn now() -> DateTime<Utc> {
        "2026-03-04T09:00:00Z".parse().unwrap()
    }

    fn paris() -> TimeZone {
        TimeZone::parse("Europe/Paris").unwrap()
    }

    fn fields(text: &str) -> Value {
        parse(text, paris(), now()).unwrap_or_else(|e| panic!("{text}: {e}")).fields
    }

    /// The examples of `specs/spec.md` ("Quick add"), with their parses.
    pub(crate) const EXAMPLES: &[(&str, &str)] = &[
        (
            "Call mom tomorrow 6pm #family p1",
            r#"{"title":"Call mom","due_at":"2026-03-05T17:00:00Z","time_zone":"Europe/Paris","priority":"urgent","tags":["family"]}"#,
        ),
        (
            "Pay rent every month on the 1st at 9am remind me 1 day before",
            r#"{"title":"Pay rent","due_at":"2026-04-01T07:00:00Z","time_zone":"Europe/Paris","reminders":["P1D"],"recurrence":{"rrule":"FREQ=MONTHLY;BYMONTHDAY=1","anchor":"due"}}"#,
        ),
        (
            "standup every weekday 9:30 #work",
            r#"{"title":"standup","due_at":"2026-03-05T08:30:00Z","time_zone":"Europe/Paris","tags":["work"],"recurrence":{"rrule":"FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR","anchor":"due"}}"#,
        ),
        ("submit report next friday", r#"{"title":"submit report","due_at":"2026-03-13T22:59:00Z","time_zone":"Europe/Paris"}"#),
        (
            "water plants every 3 days starting monday",
            r#"{"title":"water plants","due_at":"2026-03-09T22:59:00Z","time_zone":"Europe/Paris","recurrence":{"rrule":"FREQ=DAILY;INTERVAL=3","anchor":"due"}}"#,
        ),
        ("buy milk", r#"{"title":"buy milk"}"#),
        (
            "dentist on dec 3 at 14:15 high priority",
            r#"{"title":"dentist","due_at":"2026-12-03T13:15:00Z","time_zone":"Europe/Paris","priority":"high"}"#,
        ),
        ("read the may issue at the cafe", r#"{"title":"read the may issue at the cafe"}"#),
        ("sun is out, sat outside", r#"{"title":"sun is out, sat outside"}"#),
        ("lunch at noon", r#"{"title":"lunch","due_at":"2026-03-04T11:00:00Z","time_zone":"Europe/Paris"}"#),
        ("call bob at 9", r#"{"title":"call bob","due_at":"2026-03-05T08:00:00Z","time_zone":"Europe/Paris"}"#),
        (
            "plan trip in 2 weeks !low #travel #Travel",
            r#"{"title":"plan trip","due_at":"2026-03-18T22:59:00Z","time_zone":"Europe/Paris","priority":"low","tags":["travel"]}"#,
        ),
        (
            "taxes by 2026-04-15 remind me 2 hours before",
            r#"{"title":"taxes","due_at":"2026-04-15T21:59:00Z","time_zone":"Europe/Paris","reminders":["PT2H"]}"#,
        ),
        (
            "gym every! 2 days",
            r#"{"title":"gym","due_at":"2026-03-04T22:59:00Z","time_zone":"Europe/Paris","recurrence":{"rrule":"FREQ=DAILY;INTERVAL=2","anchor":"completion"}}"#,
        ),
        ("review today tomorrow", r#"{"title":"review tomorrow","due_at":"2026-03-04T22:59:00Z","time_zone":"Europe/Paris"}"#),
        ("every time I call, say hi", r#"{"title":"every time I call, say hi"}"#),
    ];

    #[test]
    fn example_sentences_parse_as_the_spec_says() {
        for (text, want) in EXAMPLES {
            assert_eq!(fields(text), serde_json::from_str::<Value>(want).unwrap(), "{text}");
        }
    }

    #[test]
    fn the_spec_table_lists_every_example() {
        let spec = include_str!("../../../specs/spec.md");
        for (text, want) in EXAMPLES {
            let row = format!("| `{text}` | `{want}` |");
            assert!(spec.contains(&row), "specs/spec.md lacks the row {row}");
        }
    }

    #[test]
    fn weekdays_and_times_resolve_around_now() {
        // "wednesday" said on a Wednesday is today; "next wednesday" is next week's.
        assert_eq!(fields("x wednesday")["due_at"], "2026-03-04T22:59:00Z");
        assert_eq!(fields("x next wednesday")["due_at"], "2026-03-11T22:59:00Z");
        assert_eq!(fields("x mon")["due_at"], "2026-03-09T22:59:00Z");
        // 8am has passed in Paris: tomorrow; 11pm has not: today.
        assert_eq!(fields("x 8am")["due_at"], "2026-03-05T07:00:00Z");
        assert_eq!(fields("x 11 pm")["due_at"], "2026-03-04T22:00:00Z");
        // A date earlier in the year is next year's.
        assert_eq!(fields("x jan 5")["due_at"], "2027-01-05T22:59:00Z");
        assert_eq!(fields("x 5th of march")["due_at"], "2026-03-05T22:59:00Z");
        // Spring forward in Paris, 2026-03-29: 02:30 does not exist and moves to 03:30.
        assert_eq!(fields("x 2026-03-29 2:30")["due_at"], "2026-03-29T01:30:00Z");
        // In another zone the same words mean another instant.
        let ny = parse("x tomorrow 6pm", TimeZone::parse("America/New_York").unwrap(), now()).unwrap();
        assert_eq!(ny.fields["due_at"], "2026-03-05T23:00:00Z");
    }

    #[test]
    fn words_that_are_not_dates_stay_in_the_title() {
        for text in [
            "meet at the cafe",
            "p5 is a paper size",
            "#not!a!tag now",
            "remind me of bob",
            "at 25:00 nothing",
            "in 0 days",
            "on 2026-02-30",
        ] {
            let parsed = fields(text);
            assert_eq!(parsed["title"], *text, "{text}");
            assert!(parsed.get("due_at").is_none(), "{text}: {parsed}");
        }
    }

    #[test]
    fn sentences_without_a_title_or_with_broken_rules_are_refused() {
        assert_eq!(parse("tomorrow 6pm #x", paris(), now()).unwrap_err().field, "text");
        assert_eq!(parse(&"a".repeat(TEXT_MAX + 1), paris(), now()).unwrap_err().rule, Rule::TooLong);
        // The API's own rules still apply: a reminder offset needs a due date.
        assert_eq!(parse("x remind me 1 day before", paris(), now()).unwrap_err().field, "reminders[0]");
    }

    #[test]
    fn request_bodies_parse_or_name_the_field() {
        let ok = QuickAdd::from_json(br#"{"text": "x tomorrow", "time_zone": "Europe/Paris"}"#, now()).unwrap();
        assert_eq!(ok.fields["due_at"], "2026-03-05T22:59:00Z");
        assert_eq!(QuickAdd::from_json(br#"{"text": "x 6pm"}"#, now()).unwrap().fields["time_zone"], "UTC");
        for (body, field) in [
            (&br#"{}"#[..], "text"),
            (br#"{"text": 3}"#, "text"),
            (br#"{"text": "x", "time_zone": "Mars/Olympus"}"#, "time_zone"),
            (br#"{"text": "x", "time_zone": 1}"#, "time_zone"),
            (br#"{"text": "x", "title": "y"}"#, "title"),
            (br#"["x"]"#, "body"),
            (br##"{"text": "#,"##, "body"),
        ] {
            assert_eq!(QuickAdd::from_json(body, now()).unwrap_err().field, field, "{}", String::from_utf8_lossy(body));
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in "[a-zA-Z0-9 #!:@,.-]{0,80}", offset in -86_400i64..86_400 * 400) {
            let now = now() + TimeDelta::seconds(offset);
            let _ = parse(&text, paris(), now);
        }

        #[test]
        fn plain_words_are_the_title(words in proptest::collection::vec("(buy|milk|call|the|report|cat|garden)", 1..8)) {
            let text = words.join(" ");
            prop_assert_eq!(fields(&text), json!({ "title": text }));
        }

        #[test]
        fn parts_in_any_order_parse_the_same(order in Just([0usize, 1, 2, 3]).prop_shuffle()) {
            // The title stays first; the other parts may come in any order.
            let bits = ["tomorrow", "at 6pm", "#home", "p2"];
            let text = format!("water plants {}", order.iter().map(|i| bits[*i]).collect::<Vec<_>>().join(" "));
            prop_assert_eq!(fields(&text), fields("water plants tomorrow at 6pm #home p2"));
        }

        #[test]
        fn the_parse_is_a_valid_create_body(text in "[a-z]{1,8}( (tomorrow|today|friday|next week|in 3 days|6pm|9:30|#[a-z]{1,5}|p[1-4]|every day|every weekday|remind me 5 minutes before|dec 24)){0,5}") {
            if let Ok(parsed) = parse(&text, paris(), now()) {
                // Round trip: the JSON reads back as the same task.
                prop_assert_eq!(NewTask::from_json(parsed.fields.to_string().as_bytes()).unwrap(), parsed.task);
                if let Some(due) = parsed.fields.get("due_at") {
                    let due: DateTime<Utc> = due.as_str().unwrap().parse().unwrap();
                    prop_assert!(due >= now() - TimeDelta::days(1), "{} is due long before now: {}", text, due);
                }
            }
        }
    }
}
