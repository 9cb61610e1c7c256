//! Hostile input, generated with proptest: malformed, oversized and deeply
//! nested bodies, wrong JSON types for every field, injection strings (SQL,
//! path traversal, templates, shell, NUL and control characters, RTL and
//! zero-width Unicode), bad UTF-8, huge lists, wrong media types, bad tokens
//! and headers, hostile query strings and path segments.
//!
//! Each invalid request must get the 4xx the spec names (never a 5xx, never a
//! 2xx), as `application/problem+json` naming the field when there is one, and
//! must write nothing. A hostile string that is a valid value (an SQL
//! injection as a title) must instead be stored verbatim.
//!
//! "Nothing written" is checked per generated case, on a fresh user: after the
//! hostile requests the user's list is empty (or their task is unchanged),
//! then one valid sentinel write follows, and the user's audit log must hold
//! exactly the expected events, the sentinel's numbered `seq` 1 (or 2 after
//! the task's creation): a hostile request that committed anything would have
//! taken that number. The audit logs are read once all cases have run.

use std::cell::RefCell;
use std::fmt;
use std::time::{Duration, Instant};

use e2e::{fresh_user, Reply, Stack};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::{json, Map, Value};

/// Largest accepted body (413 above).
const MAX_BODY: usize = 64 * 1024;
/// The fields of a task body; any other key is an unknown field.
const FIELDS: [&str; 9] = ["title", "description", "priority", "tags", "due_at", "time_zone", "reminders", "recurrence", "completed"];
const CREATED: &str = "com.todo.task.created.v1";
const UPDATED: &str = "com.todo.task.updated.v1";

// ------------------------------------------------------------ hostile text

const INJECTIONS: &[&str] = &[
    "' OR '1'='1",
    "'; DROP TABLE state; --",
    "\" OR \"\"=\"",
    "1) UNION SELECT key, value FROM state --",
    "admin'--",
    "%' AND 1=0 UNION ALL SELECT NULL --",
    "{\"$gt\": \"\"}",
    "{\"$where\": \"sleep(1000)\"}",
    "__proto__",
    "constructor[prototype][admin]=1",
    "../../../../etc/passwd",
    "..\\..\\..\\windows\\win.ini",
    "%2e%2e%2f%2e%2e%2f",
    "....//....//",
    "/etc/shadow%00.png",
    "file:///etc/hosts",
    "{{7*7}}",
    "${7*7}",
    "<%= 7*7 %>",
    "#{7*7}",
    "${jndi:ldap://127.0.0.1/a}",
    "{{constructor.constructor('return 1')()}}",
    "{% debug %}",
    "$(id)",
    "`id`",
    "; cat /etc/passwd",
    "| sh -c 'echo pwned'",
    "&& rm -rf /",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    "]]><!--",
    "task:someone-else:0",
    "idem:other:key",
    "user||admin",
    "a:b:c",
    "\r\nSet-Cookie: a=b",
    "%0d%0aLocation: x",
    "%s%s%s%n",
    "{0}{1}",
];

const UNICODE: &[&str] = &[
    "\u{202E}gnp.exe",
    "\u{200B}",
    "\u{200D}",
    "\u{FEFF}",
    "\u{2028}",
    "\u{2029}",
    "\u{00A0}",
    "\u{3000}",
    "e\u{301}",
    "\u{1F4A9}",
    "\u{FFFD}",
    "\u{10FFFF}",
    "\u{E000}",
    "\u{0130}",
    "ß",
    "ﬃ",
    "Ǆ",
    "עברית",
    "العربية",
    "\u{200F}",
    "\u{061C}",
    "Ω",
    "𝔘𝔫𝔦",
];

const CONTROLS: &[&str] =
    &["\0", "\u{1}", "\u{7}", "\u{8}", "\u{b}", "\u{c}", "\u{1b}[31m", "\u{7f}", "\u{85}", "\u{9f}", "\r", "\n", "\t", "\r\n"];

/// Characters that no priority, time zone, instant, duration, tag, cursor,
/// number, boolean, recurrence rule or user id contains.
const METAS: &[char] = &[
    '\'', '"', ';', '<', '>', '{', '}', '$', '`', '\\', '(', ')', '*', '=', '#', '?', '&', '!', '^', '[', ']', '%', '\0', '\u{202E}',
    '\u{200B}',
];

fn fragment() -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(INJECTIONS).prop_map(String::from),
        2 => select(UNICODE).prop_map(String::from),
        1 => select(CONTROLS).prop_map(String::from),
        2 => "[a-zA-Z0-9 _-]{0,8}",
        1 => vec(any::<char>(), 0..6).prop_map(|c| c.into_iter().collect()),
    ]
    .boxed()
}

/// Text made of injection strings, odd Unicode, control characters and noise.
fn hostile_text() -> BoxedStrategy<String> {
    vec(fragment(), 1..4).prop_map(|p| p.concat()).boxed()
}

/// Hostile text with at least one of [`METAS`]: never a valid enum value,
/// instant, time zone, tag, cursor, number or user id.
fn hostile_word() -> BoxedStrategy<String> {
    (hostile_text(), select(METAS), hostile_text()).prop_map(|(a, m, b)| format!("{a}{m}{b}")).boxed()
}

/// Whether `s` can be sent as an HTTP header value as it is: printable ASCII
/// (all the client sends) and nothing that HTTP would trim away.
fn header_safe(s: &str) -> bool {
    s.chars().all(|c| c == '\t' || (' '..='~').contains(&c)) && s.trim_matches([' ', '\t']) == s
}

/// Percent-encodes every byte but the unreserved characters of RFC 3986.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// URL-safe base64 without padding (cursors, forged tokens).
fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Any JSON value, with hostile strings and keys, nested a few levels.
fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        hostile_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            btree_map(hostile_text(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A JSON value of another type than `allowed` accepts (`null` excluded unless `with_null`).
fn wrong_type(allowed: fn(&Value) -> bool, with_null: bool) -> BoxedStrategy<Value> {
    json_value().prop_filter("a wrong type", move |v| !allowed(v) && (with_null || !v.is_null())).boxed()
}

// ------------------------------------------------------------ the rules, as the spec states them

/// A title: trimmed, 1-200 characters, no control characters.
fn title_rule(raw: &str) -> Option<String> {
    let t = raw.trim();
    (!t.is_empty() && t.chars().count() <= 200 && !t.chars().any(char::is_control)).then(|| t.to_owned())
}

/// A description: blank is none; CRLF becomes LF; up to 4,000 characters; no
/// control characters but line breaks and tabs. `Err` when refused.
fn description_rule(raw: &str) -> Result<Option<String>, ()> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    let text = raw.replace("\r\n", "\n");
    let clean = text.chars().count() <= 4000 && !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t');
    if clean {
        Ok(Some(text))
    } else {
        Err(())
    }
}

/// Tags: at most 20; each normalized (whitespace runs collapsed, trimmed, lower
/// case) to 1-40 letters, digits, spaces, `-` and `_`; unique. `Err(field)` names the offender.
fn tags_rule(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.len() > 20 {
        return Err("tags".into());
    }
    let mut out: Vec<String> = Vec::new();
    for (i, item) in raw.iter().enumerate() {
        let tag = item.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
        let ok = !tag.is_empty()
            && tag.chars().count() <= 40
            && tag.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == ' ')
            && !out.contains(&tag);
        if !ok {
            return Err(format!("tags[{i}]"));
        }
        out.push(tag);
    }
    Ok(out)
}

/// A user id: 1-128 characters of `A-Z a-z 0-9 - _ . @ |`.
fn user_id_rule(raw: &str) -> bool {
    (1..=128).contains(&raw.chars().count()) && raw.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@|".contains(c))
}

// ------------------------------------------------------------ expectations

/// The answer a request must get.
#[derive(Clone, Debug, PartialEq)]
struct Expect {
    status: u16,
    /// The `field` the problem must name, when the spec says which.
    field: Option<String>,
}

impl Expect {
    fn new(status: u16, field: Option<&str>) -> Self {
        Expect { status, field: field.map(str::to_owned) }
    }
}

/// A request body and the answer it gets on its own (media type and
/// credentials fine): 413 when too large, else 400 or 422.
#[derive(Clone)]
struct Body {
    label: String,
    bytes: Vec<u8>,
    expect: Expect,
}

impl Body {
    fn raw(label: impl Into<String>, bytes: Vec<u8>, status: u16, field: Option<&str>) -> Self {
        let expect = if bytes.len() > MAX_BODY { Expect::new(413, None) } else { Expect::new(status, field) };
        Body { label: label.into(), bytes, expect }
    }

    /// Well-formed JSON that breaks a rule of `field`.
    fn invalid(label: impl Into<String>, value: &Value, field: &str) -> Self {
        Body::raw(label, value.to_string().into_bytes(), 422, Some(field))
    }

    /// A body that is not JSON, or not an object.
    fn malformed(label: impl Into<String>, bytes: Vec<u8>) -> Self {
        Body::raw(label, bytes, 400, Some("body"))
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = String::from_utf8_lossy(&self.bytes);
        let preview: String = text.chars().take(240).collect();
        write!(
            f,
            "Body {{ {}, {} bytes: {preview:?}{}, expect {:?} }}",
            self.label,
            self.bytes.len(),
            if text.chars().count() > 240 { "..." } else { "" },
            self.expect
        )
    }
}

// ------------------------------------------------------------ hostile bodies

/// `{"title": "ok", key: value}` (or `{"title": value}`), refused on `field`.
fn with_field(key: &str, value: Value, field: &str) -> Body {
    let mut body = Map::new();
    if key != "title" {
        body.insert("title".into(), json!("ok"));
    }
    body.insert(key.into(), value);
    Body::invalid(format!("bad {key}"), &Value::Object(body), field)
}

/// Instants that are RFC 3339 but fall outside the years 0000-9999 in UTC.
fn edge_instant() -> BoxedStrategy<String> {
    (1u32..=(23 * 60 + 59), any::<bool>())
        .prop_map(|(minutes, late)| {
            let (h, m) = (minutes / 60, minutes % 60);
            if late {
                format!("9999-12-31T23:59:59-{h:02}:{m:02}")
            } else {
                format!("0000-01-01T00:00:00+{h:02}:{m:02}")
            }
        })
        .boxed()
}

const BAD_RRULES: &[&str] = &[
    "FREQ=DAILY;INTERVAL=0",
    "FREQ=DAILY;INTERVAL=1001",
    "FREQ=DAILY;INTERVAL=4294967296",
    "FREQ=DAILY;INTERVAL=99999999999999999999",
    "FREQ=DAILY;COUNT=0",
    "FREQ=DAILY;COUNT=1001",
    "FREQ=MONTHLY;BYMONTHDAY=32",
    "FREQ=MONTHLY;BYMONTHDAY=0",
    "FREQ=WEEKLY;BYMONTHDAY=1",
    "FREQ=MONTHLY;BYDAY=6MO",
    "FREQ=YEARLY;BYDAY=54MO",
    "FREQ=DAILY;BYDAY=1MO",
    "FREQ=DAILY;BYDAY=-0MO",
    "FREQ=DAILY;BYDAY=MO,,TU",
    "FREQ=DAILY;BYMONTH=13",
    "FREQ=HOURLY",
    "FREQ=SECONDLY",
    "FREQ=DAILY;FREQ=DAILY",
    "FREQ=DAILY;COUNT=2;UNTIL=20300101T000000Z",
    "FREQ=DAILY;UNTIL=2030-01-01",
    "FREQ=DAILY;BYSETPOS=1",
    "FREQ=DAILY;WKST=MO",
    "FREQ=DAILY;",
    "RRULE:",
    "",
    ";",
    "=",
    "INTERVAL=2",
];

const BAD_PHRASES: &[&str] = &[
    "every",
    "every 0 days",
    "every 1001 days",
    "every 99999999999 days",
    "every blursday",
    "every day until 2026-13-45",
    "every day for 0 times",
    "every month on the 32nd",
    "every year on smarch 1",
    "every week on",
    "every and",
    "each day",
];

/// A body that breaks one field's rule: a wrong JSON type, a hostile string,
/// too long, too many, out of range. `patch`: the rules of PATCH (`completed` allowed).
fn bad_field(patch: bool) -> BoxedStrategy<Body> {
    let is_string = |v: &Value| v.is_string();
    let is_array = |v: &Value| v.is_array();
    let is_object = |v: &Value| v.is_object();
    let title = prop_oneof![
        wrong_type(is_string, true).prop_map(|v| with_field("title", v, "title")),
        (hostile_text(), select(CONTROLS), hostile_text())
            .prop_map(|(a, c, b)| format!("{a}{c}{b}"))
            .prop_filter("an invalid title", |t| title_rule(t).is_none())
            .prop_map(|t| with_field("title", json!(t), "title")),
        (hostile_text(), 201usize..400).prop_map(|(h, n)| format!("{h}{}", "ж".repeat(n))).prop_map(|t| with_field(
            "title",
            json!(t),
            "title"
        )),
        select(&["", " ", "\t\n", "\u{3000}\u{2028}"][..]).prop_map(|t| with_field("title", json!(t), "title")),
    ];
    let description = prop_oneof![
        wrong_type(is_string, false).prop_map(|v| with_field("description", v, "description")),
        (hostile_text(), select(CONTROLS), hostile_text())
            .prop_map(|(a, c, b)| format!("{a}{c}{b}"))
            .prop_filter("an invalid description", |d| description_rule(d).is_err())
            .prop_map(|d| with_field("description", json!(d), "description")),
        (hostile_text(), 4001usize..6000).prop_map(|(h, n)| format!("{h}{}", "ж".repeat(n))).prop_map(|d| with_field(
            "description",
            json!(d),
            "description"
        )),
    ];
    let priority = prop_oneof![
        wrong_type(is_string, false).prop_map(|v| with_field("priority", v, "priority")),
        prop_oneof![
            hostile_word(),
            select(&["HIGH", "High", " high", "high ", "urgent\0", "medium,low", "0", "critical", ""][..]).prop_map(String::from)
        ]
        .prop_map(|p| with_field("priority", json!(p), "priority")),
    ];
    let tags = prop_oneof![
        wrong_type(is_array, false).prop_map(|v| with_field("tags", v, "tags")),
        (vec("[a-z]{1,5}".prop_map(Value::from), 0..5), wrong_type(is_string, true), any::<prop::sample::Index>()).prop_map(
            |(mut items, bad, at)| {
                let i = at.index(items.len() + 1);
                items.insert(i, bad);
                with_field("tags", Value::Array(items), &format!("tags[{i}]"))
            }
        ),
        vec(prop_oneof![hostile_text(), hostile_word(), "[a-zA-Z ]{1,8}"], 1..6)
            .prop_filter_map("invalid tags", |items| tags_rule(&items).err().map(|field| with_field("tags", json!(items), &field))),
        (41usize..80).prop_map(|n| with_field("tags", json!(["x".repeat(n)]), "tags[0]")),
        Just(with_field("tags", json!(["Work", "home", " WORK "]), "tags[2]")),
    ];
    let due_at = prop_oneof![
        wrong_type(is_string, false).prop_map(|v| with_field("due_at", v, "due_at")),
        hostile_word().prop_map(|d| with_field("due_at", json!(d), "due_at")),
        select(
            &[
                "2026-03-01T09:00:00",
                "2026-03-01",
                "tomorrow",
                "2026-02-30T00:00:00Z",
                "2026-03-01T24:00:01Z",
                "1772355600",
                "+002026-03-01T09:00:00Z",
                "2026-03-01T09:00:00+24:00"
            ][..]
        )
        .prop_map(|d| with_field("due_at", json!(d), "due_at")),
        edge_instant().prop_map(|d| with_field("due_at", json!(d), "due_at")),
    ];
    let time_zone = prop_oneof![
        wrong_type(is_string, false).prop_map(|v| with_field("time_zone", v, "time_zone")),
        hostile_word().prop_map(|z| with_field("time_zone", json!(z), "time_zone")),
        select(&["europe/paris", "UTC+1", "Etc/GMT+99", "../../etc/localtime", "/usr/share/zoneinfo/UTC", "Mars/Olympus", "", " UTC"][..])
            .prop_map(|z| with_field("time_zone", json!(z), "time_zone")),
    ];
    let reminders = prop_oneof![
        wrong_type(is_array, false).prop_map(|v| with_field("reminders", v, "reminders")),
        (wrong_type(is_string, true), vec(Just(json!("PT5M")), 0..3)).prop_map(|(bad, mut rest)| {
            rest.insert(0, bad);
            with_field("reminders", Value::Array(rest), "reminders[0]")
        }),
        vec(hostile_word(), 1..=5).prop_map(|r| with_field("reminders", json!(r), "reminders[0]")),
        edge_instant().prop_map(|r| with_field("reminders", json!([r]), "reminders[0]")),
        select(&["P366D", "PT999999999S", "P1Y", "P1M", "PT1.5H", "-PT1H", "P", "PT", "P53W", "pt15m"][..]).prop_map(|r| with_field(
            "reminders",
            json!([r]),
            "reminders[0]"
        )),
        Just(with_field("reminders", json!(["2030-01-01T00:00:00Z", "2030-01-01T01:00:00+01:00"]), "reminders[1]")),
        Just(with_field("reminders", json!(["PT15M"]), "reminders[0]")),
        (6usize..40).prop_map(|n| with_field("reminders", json!((0..n).map(|i| format!("PT{}M", i + 1)).collect::<Vec<_>>()), "reminders")),
    ];
    let recurrence = prop_oneof![
        wrong_type(is_object, false).prop_map(|v| with_field("recurrence", v, "recurrence")),
        (hostile_word(), json_value()).prop_map(|(k, v)| {
            let field = format!("recurrence.{k}");
            with_field("recurrence", json!({ k: v }), &field)
        }),
        hostile_word().prop_map(|r| with_field("recurrence", json!({ "rrule": r }), "recurrence.rrule")),
        wrong_type(is_string, false).prop_map(|r| with_field("recurrence", json!({ "rrule": r }), "recurrence.rrule")),
        select(BAD_RRULES).prop_map(|r| with_field("recurrence", json!({ "rrule": r }), "recurrence.rrule")),
        json_value().prop_filter("not an anchor", |a| !a.is_null() && a != "due" && a != "completion").prop_map(|a| with_field(
            "recurrence",
            json!({ "rrule": "FREQ=DAILY", "anchor": a }),
            "recurrence.anchor"
        )),
        hostile_text().prop_map(|t| with_field("recurrence", json!({ "text": t }), "recurrence.text")),
        wrong_type(is_string, false).prop_map(|t| with_field("recurrence", json!({ "text": t }), "recurrence.text")),
        select(BAD_PHRASES).prop_map(|t| with_field("recurrence", json!({ "text": t }), "recurrence.text")),
        Just(with_field("recurrence", json!({ "text": "every! day", "anchor": "due" }), "recurrence.anchor")),
        Just(with_field("recurrence", json!({}), "recurrence.rrule")),
        Just(with_field("recurrence", json!({ "rrule": "FREQ=DAILY" }), "recurrence")),
    ];
    let completed = if patch {
        wrong_type(|v| v.is_boolean(), true).prop_map(|v| with_field("completed", v, "completed")).boxed()
    } else {
        json_value().prop_map(|v| with_field("completed", v, "completed")).boxed()
    };
    prop_oneof![title, description, priority, tags, due_at, time_zone, reminders, recurrence, completed].boxed()
}

/// A key that is no field of a task.
fn unknown_field() -> BoxedStrategy<Body> {
    let names = prop_oneof![
        hostile_word(),
        hostile_text(),
        select(
            &[
                "Title",
                "TITLE",
                "title ",
                "titlé",
                "due-at",
                "dueAt",
                "timezone",
                "owner",
                "user_id",
                "id",
                "version",
                "created_at",
                "series_id",
                "__proto__",
                "$where",
                "tags[]",
                "",
                "a`b",
                "x`, expected `title"
            ][..]
        )
        .prop_map(String::from),
    ];
    (names.prop_filter("not a field", |k| !FIELDS.contains(&k.as_str())), json_value())
        .prop_map(|(k, v)| {
            let mut body = Map::new();
            body.insert("title".into(), json!("ok"));
            body.insert(k.clone(), v);
            Body::invalid("unknown field", &Value::Object(body), &k)
        })
        .boxed()
}

/// Tag and reminder lists far beyond their limits (413 once over 64 KiB).
fn huge_list() -> BoxedStrategy<Body> {
    prop_oneof![
        (21usize..12_000).prop_map(|n| with_field("tags", json!((0..n).map(|i| format!("t{i}")).collect::<Vec<_>>()), "tags")),
        (6usize..12_000).prop_map(|n| with_field(
            "reminders",
            json!((0..n).map(|i| format!("PT{}M", i + 1)).collect::<Vec<_>>()),
            "reminders"
        )),
        (21usize..20_000).prop_map(|n| with_field("tags", json!(vec![1; n]), "tags[0]")),
    ]
    .boxed()
}

/// JSON nested deeper than the parser allows (128 levels), at the top or in a field.
fn deep_nesting() -> BoxedStrategy<Body> {
    (130usize..20_000, any::<bool>(), select(&["", "title", "tags", "recurrence", "description", "zzz"][..]))
        .prop_map(|(depth, arrays, key)| {
            let nested = if arrays {
                format!("{}{}", "[".repeat(depth), "]".repeat(depth))
            } else {
                format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
            };
            let text = if key.is_empty() { nested } else { format!("{{\"title\":\"ok\",\"{key}\":{nested}}}") };
            Body::malformed(format!("nested {depth} deep"), text.into_bytes())
        })
        .boxed()
}

/// Bodies over 64 KiB: valid JSON, padded JSON, or garbage.
fn oversized() -> BoxedStrategy<Body> {
    (prop_oneof![Just(MAX_BODY + 1), (MAX_BODY + 1)..600_000], 0..3u8, any::<u8>())
        .prop_map(|(size, kind, byte)| {
            let bytes = match kind {
                0 => json!({ "title": "big", "description": "d".repeat(size) }).to_string().into_bytes(),
                1 => {
                    let mut b = br#"{"title":"padded"}"#.to_vec();
                    b.resize(size, b' ');
                    b
                }
                _ => vec![byte; size],
            };
            Body::raw(format!("{size} bytes"), bytes, 413, None)
        })
        .boxed()
}

/// Invalid UTF-8 and raw control bytes inside otherwise valid JSON.
fn bad_utf8() -> BoxedStrategy<Body> {
    const BAD: &[&[u8]] = &[
        &[0x80],
        &[0xBF],
        &[0xC0, 0xAF],
        &[0xC3],
        &[0xE0, 0x80, 0x80],
        &[0xED, 0xA0, 0x80],
        &[0xF4, 0x90, 0x80, 0x80],
        &[0xF8, 0x88, 0x80, 0x80, 0x80],
        &[0xFE],
        &[0xFF],
        &[0x00],
        &[0x1F],
        &[0x0A],
    ];
    (select(BAD), "[a-z ]{0,10}", 0..4u8)
        .prop_map(|(bad, text, place)| {
            let mut b = Vec::new();
            match place {
                0 => {
                    b.extend_from_slice(format!("{{\"title\":\"{text}").as_bytes());
                    b.extend_from_slice(bad);
                    b.extend_from_slice(b"\"}");
                }
                1 => {
                    b.extend_from_slice(format!("{{\"title\":\"ok\",\"tags\":[\"{text}").as_bytes());
                    b.extend_from_slice(bad);
                    b.extend_from_slice(b"\"]}");
                }
                2 => {
                    b.extend_from_slice(b"{\"ti");
                    b.extend_from_slice(bad);
                    b.extend_from_slice(b"tle\":\"ok\"}");
                }
                _ => {
                    b.extend_from_slice(b"{");
                    b.extend_from_slice(bad);
                    b.extend_from_slice(format!("\"title\":\"{text}\"}}").as_bytes());
                }
            }
            Body::malformed(format!("bytes {bad:02X?}"), b)
        })
        // A raw newline outside a string is whitespace, so valid.
        .prop_filter("invalid", |b| !(b.bytes.starts_with(b"{\n")))
        .boxed()
}

/// Lone surrogates and broken escapes in JSON strings.
fn bad_escape() -> BoxedStrategy<Body> {
    const ESCAPES: &[&str] = &[
        r"\ud800",
        r"\udbff",
        r"\udc00",
        r"\udfff",
        r"\ud800\u0041",
        r"\udc00\ud800",
        r"\ud800\ud800",
        r"\u12",
        r"\u",
        r"\x41",
        r"\'",
        r"\U0001F4A9",
        r"\",
    ];
    (select(ESCAPES), "[a-z]{0,6}", select(&["title", "description"][..]))
        .prop_map(|(esc, text, key)| {
            let body = if key == "title" {
                format!(r#"{{"title":"{text}{esc}"}}"#)
            } else {
                format!(r#"{{"title":"ok","description":"{text}{esc}"}}"#)
            };
            Body::malformed(format!("escape {esc}"), body.into_bytes())
        })
        .boxed()
}

/// Not JSON: truncated, trailing garbage, JSON5-isms, nothing at all.
fn malformed() -> BoxedStrategy<Body> {
    const VALID: &str = r#"{"title":"x","tags":["a","b"],"description":"d","due_at":"2030-01-01T00:00:00Z"}"#;
    const FIXED: &[&str] = &[
        "",
        " ",
        "\n\t",
        "{'title':'x'}",
        "{title:\"x\"}",
        "{\"title\":\"x\",}",
        "{\"title\":\"x\" // c\n}",
        "{\"title\":\"x\",\"priority\":NaN}",
        "{\"title\":\"x\",\"priority\":Infinity}",
        "{\"title\":\"x\",\"priority\":1e400}",
        "{\"title\":\"x\",\"priority\":0x10}",
        "{\"title\":\"x\",\"priority\":01}",
        "{\"title\":\"x\",\"priority\":+1}",
        "\u{feff}{\"title\":\"x\"}",
        "{\"title\" \"x\"}",
        "{\"title\":\"x\"\"y\"}",
        "{{}}",
        "title=x",
        "<task><title>x</title></task>",
    ];
    prop_oneof![
        select(FIXED).prop_map(|b| Body::malformed("not JSON", b.as_bytes().to_vec())),
        (0..VALID.len()).prop_map(|n| Body::malformed(format!("cut at {n}"), VALID.as_bytes()[..n].to_vec())),
        select(&["x", "}", ",", "{}", "[]", "\"a\"", "1", "//c", "/*c*/", "\0", "{\"title\":\"y\"}"][..])
            .prop_map(|tail| Body::malformed("trailing garbage", format!("{VALID}{tail}").into_bytes())),
        json_value()
            .prop_filter("not an object", |v| !v.is_object())
            .prop_map(|v| Body::malformed("not an object", v.to_string().into_bytes())),
    ]
    .boxed()
}

/// A body that breaks the rules in some way. `patch`: PATCH's rules.
fn bad_body(patch: bool) -> BoxedStrategy<Body> {
    prop_oneof![
        10 => bad_field(patch),
        2 => unknown_field(),
        1 => huge_list(),
        1 => deep_nesting(),
        1 => oversized(),
        1 => bad_utf8(),
        1 => bad_escape(),
        2 => malformed(),
    ]
    .boxed()
}

/// A body that would be accepted, or a hostile one: credentials and media type are checked first.
fn any_body(patch: bool) -> BoxedStrategy<Body> {
    prop_oneof![
        Just(Body { label: "valid".into(), bytes: br#"{"title":"must not be written"}"#.to_vec(), expect: Expect::new(201, None) }),
        bad_body(patch),
    ]
    .boxed()
}

// ------------------------------------------------------------ hostile headers

/// The `Content-Type` sent.
#[derive(Clone, Debug)]
enum MediaType {
    /// A spelling of `application/json` that must be accepted.
    Json(&'static str),
    /// No `Content-Type` header.
    Missing,
    /// Anything else: 415.
    Other(String),
}

const JSON_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "Application/Json;charset=UTF-8",
    "application/json;foo=bar;baz",
    "application/json ; charset=utf-8",
];

fn bad_media_type() -> BoxedStrategy<MediaType> {
    prop_oneof![
        Just(MediaType::Missing),
        select(
            &[
                "",
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/xml",
                "text/json",
                "application/jsonp",
                "application/json-seq",
                "application/json5",
                "application/problem+json",
                "application/merge-patch+json",
                "application/vnd.api+json",
                "json",
                "application",
                "application/",
                "/json",
                "*/*",
                "application/*",
                "application/json,text/plain",
                "application/ json",
                "application /json",
                "application\\/json",
                ";application/json",
                "text/plain; x=application/json",
            ][..]
        )
        .prop_map(|t| MediaType::Other(t.into())),
        "[a-z]{1,10}/[a-z0-9.+-]{1,12}".prop_filter("not JSON", |t| t != "application/json").prop_map(MediaType::Other),
        hostile_text().prop_filter("a header value", |t| header_safe(t)).prop_map(MediaType::Other),
    ]
    .boxed()
}

/// The credentials sent.
#[derive(Clone, Debug)]
enum Auth {
    /// A valid token of the user.
    Valid,
    /// No `Authorization` header.
    Missing,
    /// This `Authorization` value.
    Raw(String),
    /// A valid token of another user: 403.
    OtherUser,
    /// The user's token signed with another key.
    WrongKey,
    /// HS256 with the right key, but these claims (`$user` is the user).
    Claims(Value),
    /// The right key, but an algorithm that is not accepted.
    Algorithm(Algorithm),
    /// A header naming this `alg`, the user's claims and a made-up signature.
    Forged(String),
    /// Another user's claims under the user's signature.
    Tampered,
}

impl Auth {
    /// The answer when nothing else is wrong: `None` for valid credentials.
    fn refusal(&self) -> Option<Expect> {
        match self {
            Auth::Valid => None,
            Auth::OtherUser => Some(Expect::new(403, None)),
            _ => Some(Expect::new(401, None)),
        }
    }
}

fn bad_auth() -> BoxedStrategy<Auth> {
    let raw = prop_oneof![
        select(
            &[
                "",
                "Bearer",
                "Bearer null",
                "Bearer undefined",
                "Basic dXNlcjpwYXNz",
                "Token abc",
                "Bearer a.b.c",
                "Bearer ....",
                "Bearer eyJ",
                "Digest username=x",
                "Bearer\t"
            ][..]
        )
        .prop_map(String::from),
        hostile_text().prop_map(|t| format!("Bearer {t}")).prop_filter("a header value", |t| header_safe(t)),
        hostile_text().prop_filter("a header value", |t| header_safe(t)),
    ];
    let claims = prop_oneof![
        Just(json!({ "sub": "$user", "exp": "$past" })),
        Just(json!({ "sub": "$user", "exp": "$future", "nbf": "$future" })),
        Just(json!({ "sub": "$user" })),
        Just(json!({ "exp": "$future" })),
        Just(json!({ "sub": 42, "exp": "$future" })),
        Just(json!({ "sub": "$user", "exp": "tomorrow" })),
        Just(json!({ "sub": ["$user"], "exp": "$future" })),
        hostile_word().prop_map(|sub| json!({ "sub": sub, "exp": "$future" })),
        (129usize..300).prop_map(|n| json!({ "sub": "a".repeat(n), "exp": "$future" })),
    ];
    prop_oneof![
        Just(Auth::Missing),
        raw.prop_map(Auth::Raw),
        Just(Auth::OtherUser),
        Just(Auth::WrongKey),
        claims.prop_map(Auth::Claims),
        select(&[Algorithm::HS384, Algorithm::HS512][..]).prop_map(Auth::Algorithm),
        select(&["none", "None", "HS256", "EdDSA", "RS256", "ES256", "PS256", ""][..]).prop_map(|a| Auth::Forged(a.into())),
        Just(Auth::Tampered),
    ]
    .boxed()
}

/// `Idempotency-Key` values that are not 1-128 visible ASCII characters.
fn bad_idempotency_key() -> BoxedStrategy<String> {
    prop_oneof![Just(String::new()), "[!-~]{129,300}", "[!-~]{1,20}[ \t][!-~]{1,20}"].boxed()
}

// ------------------------------------------------------------ the stack

/// The stack, plus what the tests need to forge tokens.
struct Api {
    stack: Stack,
    secret: String,
}

/// What a case wrote on purpose: the user and their events, in order.
struct Written {
    user: String,
    events: Vec<(&'static str, String)>,
    case: String,
}

impl Api {
    fn get() -> Api {
        let stack = Stack::get();
        let file = std::env::var("TODO_SECRETS_FILE").expect("TODO_SECRETS_FILE");
        let secrets: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let secret = secrets["jwt-hs256-secret"].as_str().unwrap().to_owned();
        Api { stack, secret }
    }

    fn url(&self, user_segment: &str, path: &str) -> String {
        format!("{}/api/{user_segment}{path}", self.stack.api)
    }

    fn now() -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
    }

    fn sign(&self, alg: Algorithm, claims: &Value) -> String {
        encode(&Header::new(alg), claims, &EncodingKey::from_secret(self.secret.as_bytes()).unwrap()).unwrap()
    }

    /// The `Authorization` header `auth` means for `user`.
    fn authorization(&self, auth: &Auth, user: &str) -> Option<String> {
        let bearer = |t: String| Some(format!("Bearer {t}"));
        match auth {
            Auth::Valid => bearer(self.stack.token(user)),
            Auth::Missing => None,
            Auth::Raw(raw) => Some(raw.clone()),
            Auth::OtherUser => bearer(self.stack.token(&fresh_user("someone-else"))),
            Auth::WrongKey => bearer(self.stack.token_with(user, 3600, "not-the-key")),
            Auth::Claims(template) => {
                let text = template
                    .to_string()
                    .replace("\"$user\"", &json!(user).to_string())
                    .replace("\"$past\"", &(Self::now() - 3600).to_string())
                    .replace("\"$future\"", &(Self::now() + 3600).to_string());
                bearer(self.sign(Algorithm::HS256, &serde_json::from_str(&text).unwrap()))
            }
            Auth::Algorithm(alg) => bearer(self.sign(*alg, &json!({ "sub": user, "exp": Self::now() + 3600 }))),
            Auth::Forged(alg) => {
                let header = b64url(json!({ "alg": alg, "typ": "JWT" }).to_string().as_bytes());
                let claims = b64url(json!({ "sub": user, "exp": Self::now() + 3600 }).to_string().as_bytes());
                bearer(format!("{header}.{claims}.{}", b64url(b"not a signature")))
            }
            Auth::Tampered => {
                let mine = self.stack.token(user);
                let other = self.stack.token(&fresh_user("someone-else"));
                let (m, o): (Vec<&str>, Vec<&str>) = (mine.split('.').collect(), other.split('.').collect());
                bearer(format!("{}.{}.{}", m[0], o[1], m[2]))
            }
        }
    }

    /// Sends a request as it is: no header but those given.
    fn send(&self, method: &str, url: &str, headers: &[(&str, String)], body: Option<&[u8]>) -> Reply {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into();
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            request = request.header(*k, v.as_str());
        }
        let result = match body {
            Some(bytes) => agent.run(request.body(bytes.to_vec()).unwrap()),
            None => agent.run(request.body(()).unwrap()),
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        Reply { status, headers, json: serde_json::from_str(&text).unwrap_or(Value::Null), text }
    }

    /// A request by `user` to `/api/{user}{path}`, with credentials and `Content-Type` per `(auth, media)`.
    fn call(
        &self,
        user: &str,
        method: &str,
        path: &str,
        (auth, media): (&Auth, &MediaType),
        extra: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> Reply {
        let mut headers: Vec<(&str, String)> = extra.to_vec();
        if let Some(value) = self.authorization(auth, user) {
            headers.push(("authorization", value));
        }
        match media {
            MediaType::Json(t) => headers.push(("content-type", (*t).to_owned())),
            MediaType::Other(t) => headers.push(("content-type", t.clone())),
            MediaType::Missing => {}
        }
        self.send(method, &self.url(user, path), &headers, body)
    }

    /// A valid request by `user`; `body` is sent as JSON.
    fn valid(&self, user: &str, method: &str, path: &str, extra: &[(&str, String)], body: Option<&Value>) -> Reply {
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.call(user, method, path, (&Auth::Valid, &MediaType::Json("application/json")), extra, bytes.as_deref())
    }

    /// The user's tasks (one page).
    fn list(&self, user: &str, query: &str) -> Result<Vec<Value>, TestCaseError> {
        let reply = self.valid(user, "GET", &format!("/tasks?{query}"), &[], None);
        prop_assert_eq!(reply.status, 200, "list ?{}: {}", query, reply.json);
        Ok(reply.json["items"].as_array().cloned().unwrap_or_default())
    }

    fn assert_no_tasks(&self, user: &str) -> Result<(), TestCaseError> {
        let items = self.list(user, "")?;
        prop_assert!(items.is_empty(), "a refused request wrote tasks: {:?}", items);
        Ok(())
    }

    /// Creates a task; returns it.
    fn create(&self, user: &str, body: &Value) -> Result<Value, TestCaseError> {
        let reply = self.valid(user, "POST", "/tasks", &[], Some(body));
        prop_assert_eq!(reply.status, 201, "create {}: {}", body, reply.json);
        Ok(reply.json)
    }

    /// After every case has run: each user's audit log holds exactly their
    /// intended events, numbered from `seq` 1, so no refused request committed one.
    fn assert_audit(&self, written: &[Written]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for w in written {
            let token = self.stack.token(&w.user);
            let entries = loop {
                let entries = self.stack.audit_entries(&w.user, &token);
                if entries.len() >= w.events.len() || Instant::now() > deadline {
                    break entries;
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            let got: Vec<(String, String, Value)> = entries
                .iter()
                .map(|e| {
                    (
                        e["event_type"].as_str().unwrap_or_default().to_owned(),
                        e["task_id"].as_str().unwrap_or_default().to_owned(),
                        e["data"]["seq"].clone(),
                    )
                })
                .collect();
            let want: Vec<(String, String, Value)> =
                w.events.iter().enumerate().map(|(i, (t, id))| ((*t).to_owned(), id.clone(), json!(i + 1))).collect();
            assert_eq!(got, want, "the audit log of {} holds only the intended events; case: {}", w.user, w.case);
        }
    }
}

/// The inputs `cargo xtask test` sends: the same on every run, so that CI is
/// repeatable. `PROPTEST_RNG_SEED=<n>` explores others.
const DEFAULT_SEED: u64 = 20_261_129;

/// Runs `test` on `cases` values of `strategy`; nothing is persisted. The
/// seed is [`DEFAULT_SEED`] unless `PROPTEST_RNG_SEED` sets it, and a failure names it.
fn check<T: fmt::Debug>(name: &str, cases: u32, strategy: impl Strategy<Value = T>, test: impl Fn(T) -> Result<(), TestCaseError>) {
    let mut config = Config { cases, failure_persistence: None, max_shrink_iters: 64, ..Config::default() };
    let seed = match config.rng_seed {
        RngSeed::Fixed(seed) => seed,
        RngSeed::Random => DEFAULT_SEED,
    };
    config.rng_seed = RngSeed::Fixed(seed);
    let started = Instant::now();
    let result = TestRunner::new(config).run(&strategy, test);
    eprintln!("{name}: {cases} cases in {:.1?} (PROPTEST_RNG_SEED={seed})", started.elapsed());
    if let Err(e) = result {
        panic!("{name}: {e}\nreplay with PROPTEST_RNG_SEED={seed}");
    }
}

/// Asserts a refusal: `expect`, as problem+json; never a 5xx or a 2xx.
fn assert_refused(reply: &Reply, expect: &Expect, case: &dyn fmt::Debug) -> Result<(), TestCaseError> {
    let context = || format!("{case:?}\n  got {} {:?} {}", reply.status, reply.header("content-type"), reply.json);
    prop_assert!(reply.status < 500, "a 5xx for hostile input: {}", context());
    prop_assert!(!(200..300).contains(&reply.status), "hostile input was accepted: {}", context());
    prop_assert_eq!(reply.status, expect.status, "{}", context());
    prop_assert_eq!(reply.header("content-type"), Some("application/problem+json"), "{}", context());
    prop_assert_eq!(reply.json["status"].as_u64(), Some(u64::from(expect.status)), "{}", context());
    prop_assert!(reply.json["detail"].as_str().is_some_and(|d| !d.is_empty()), "{}", context());
    if let Some(field) = &expect.field {
        prop_assert_eq!(reply.json["field"].as_str(), Some(field.as_str()), "{}", context());
    }
    Ok(())
}

fn id(task: &Value) -> String {
    task["id"].as_str().unwrap_or_default().to_owned()
}

// ------------------------------------------------------------ POST

/// One hostile `POST /tasks`.
#[derive(Clone, Debug)]
struct Create {
    body: Body,
    media: MediaType,
    auth: Auth,
    idempotency_key: Option<String>,
}

impl Create {
    /// Checks run in order: credentials, `Idempotency-Key`, media type, size, syntax, rules.
    fn expect(&self) -> Expect {
        if let Some(refusal) = self.auth.refusal() {
            return refusal;
        }
        if self.idempotency_key.is_some() {
            return Expect::new(400, Some("Idempotency-Key"));
        }
        if !matches!(self.media, MediaType::Json(_)) {
            return Expect::new(415, None);
        }
        self.body.expect.clone()
    }
}

fn hostile_create() -> BoxedStrategy<Create> {
    let plain = |body, media, auth, idempotency_key| Create { body, media, auth, idempotency_key };
    prop_oneof![
        10 => (bad_body(false), select(JSON_TYPES)).prop_map(move |(b, t)| plain(b, MediaType::Json(t), Auth::Valid, None)),
        2 => (any_body(false), bad_media_type()).prop_map(move |(b, m)| plain(b, m, Auth::Valid, None)),
        1 => (any_body(false), bad_media_type(), bad_auth()).prop_map(move |(b, m, a)| plain(b, m, a, None)),
        2 => (any_body(false), bad_auth()).prop_map(move |(b, a)| plain(b, MediaType::Json("application/json"), a, None)),
        1 => (any_body(false), bad_idempotency_key()).prop_map(move |(b, k)| plain(b, MediaType::Json("application/json"), Auth::Valid, Some(k))),
    ]
    .boxed()
}

#[test]
fn hostile_creates_are_refused_and_write_nothing() {
    let api = Api::get();
    let written = RefCell::new(Vec::new());
    check("hostile creates", 64, vec(hostile_create(), 1..=3), |creates| {
        let user = fresh_user("hostile-create");
        for c in &creates {
            let mut extra = Vec::new();
            if let Some(key) = &c.idempotency_key {
                extra.push(("idempotency-key", key.clone()));
            }
            let reply = api.call(&user, "POST", "/tasks", (&c.auth, &c.media), &extra, Some(&c.body.bytes));
            assert_refused(&reply, &c.expect(), c)?;
        }
        api.assert_no_tasks(&user)?;
        let sentinel = api.create(&user, &json!({ "title": "sentinel" }))?;
        written.borrow_mut().push(Written { user, events: vec![(CREATED, id(&sentinel))], case: format!("{creates:?}") });
        Ok(())
    });
    api.assert_audit(&written.into_inner());
}

// ------------------------------------------------------------ valid hostile strings

/// A create whose text fields are hostile but may well be valid.
#[derive(Clone, Debug)]
struct Text {
    title: String,
    description: Option<String>,
    tags: Vec<String>,
    media: &'static str,
    /// Pad the body with whitespace to this many bytes (up to the limit).
    pad_to: Option<usize>,
}

fn tag_like() -> BoxedStrategy<String> {
    vec(
        prop_oneof![
            3 => "[a-zA-Z0-9_-]{1,6}",
            1 => select(&[" ", "\t", "  ", "é", "\u{130}", "ß", "Σ", "Ǆ", "ﬃ", "Ⅻ", "٣", "𝔘", "\u{200B}", "\u{202E}", "'", "\0", "日本"][..]).prop_map(String::from),
            1 => select(INJECTIONS).prop_map(String::from),
        ],
        1..5,
    )
    .prop_map(|p| p.concat())
    .boxed()
}

fn hostile_text_case() -> BoxedStrategy<Text> {
    (
        prop_oneof![4 => hostile_text(), 1 => select(INJECTIONS).prop_map(String::from), 1 => (hostile_text(), 190usize..210).prop_map(|(h, n)| format!("{h}{}", "ш".repeat(n)))],
        proptest::option::of(prop_oneof![hostile_text(), vec(hostile_text(), 1..6).prop_map(|p| p.join("\r\n"))]),
        vec(tag_like(), 0..4),
        select(JSON_TYPES),
        proptest::option::weighted(0.2, 65_000usize..=MAX_BODY),
    )
        .prop_map(|(title, description, tags, media, pad_to)| Text { title, description, tags, media, pad_to })
        .boxed()
}

#[test]
fn hostile_strings_that_are_valid_values_are_stored_verbatim() {
    let api = Api::get();
    let written = RefCell::new(Vec::new());
    check("valid hostile strings", 64, hostile_text_case(), |t| {
        let user = fresh_user("hostile-text");
        let mut body = json!({ "title": t.title, "tags": t.tags });
        if let Some(d) = &t.description {
            body["description"] = json!(d);
        }
        let mut bytes = body.to_string().into_bytes();
        if let Some(size) = t.pad_to {
            if bytes.len() < size {
                bytes.resize(size, b' ');
            }
        }
        let expected = match (title_rule(&t.title), t.description.as_deref().map(description_rule).transpose(), tags_rule(&t.tags)) {
            (None, _, _) => Err("title".to_owned()),
            (_, Err(()), _) => Err("description".to_owned()),
            (_, _, Err(field)) => Err(field),
            (Some(title), Ok(description), Ok(tags)) => Ok((title, description.flatten(), tags)),
        };
        let reply = api.call(&user, "POST", "/tasks", (&Auth::Valid, &MediaType::Json(t.media)), &[], Some(&bytes));
        let task = match expected {
            Err(field) => {
                assert_refused(&reply, &Expect::new(422, Some(&field)), &t)?;
                api.assert_no_tasks(&user)?;
                api.create(&user, &json!({ "title": "sentinel" }))?
            }
            Ok((title, description, tags)) => {
                prop_assert_eq!(reply.status, 201, "{:?} was refused: {}", t, reply.json);
                let stored = api.valid(&user, "GET", &format!("/tasks/{}", id(&reply.json)), &[], None);
                prop_assert_eq!(stored.status, 200);
                prop_assert_eq!(&stored.json, &reply.json, "GET returns what POST did");
                prop_assert_eq!(&stored.json["title"], &json!(title), "{:?}", t);
                prop_assert_eq!(&stored.json["description"], &json!(description), "{:?}", t);
                prop_assert_eq!(&stored.json["tags"], &json!(tags), "{:?}", t);
                // The title, as a search, finds the task (and only it).
                let found = api.list(&user, &format!("q={}", pct(&title)))?;
                prop_assert_eq!(found.iter().map(id).collect::<Vec<_>>(), vec![id(&reply.json)], "q={:?}", title);
                reply.json
            }
        };
        written.borrow_mut().push(Written { user, events: vec![(CREATED, id(&task))], case: format!("{t:?}") });
        Ok(())
    });
    api.assert_audit(&written.into_inner());
}

// ------------------------------------------------------------ PUT, PATCH, DELETE, complete

/// How a write names the task.
#[derive(Clone, Debug)]
enum TaskRef {
    /// The existing task.
    Existing,
    /// A hostile segment (sent percent-encoded): never a UUID.
    Hostile(String),
    /// A segment sent as it is.
    Literal(&'static str),
    /// The existing task's id followed by this suffix.
    ExistingWith(String),
    /// A UUID that names no task.
    Unknown(u128),
}

impl TaskRef {
    fn segment(&self, existing: &str) -> String {
        match self {
            TaskRef::Existing => existing.to_owned(),
            TaskRef::Hostile(s) => pct(s),
            TaskRef::Literal(s) => (*s).to_owned(),
            TaskRef::ExistingWith(suffix) => format!("{existing}{}", pct(suffix)),
            TaskRef::Unknown(n) => uuid::Uuid::from_u128(*n).to_string(),
        }
    }
}

fn unknown_task() -> BoxedStrategy<TaskRef> {
    prop_oneof![
        hostile_word().prop_map(TaskRef::Hostile),
        // (An empty segment would be another route.)
        hostile_text().prop_filter("not a UUID", |s| !s.is_empty() && uuid::Uuid::parse_str(s).is_err()).prop_map(TaskRef::Hostile),
        select(&[".", "..", "...", "%2e%2e", "%2F", "%00", "null", "0", "-1", "00000000-0000-0000-0000-00000000000g"][..])
            .prop_map(TaskRef::Literal),
        prop_oneof![hostile_word(), select(&["/", " ", "\0", "/complete/..", "'", "x"][..]).prop_map(String::from)]
            .prop_map(TaskRef::ExistingWith),
        any::<u128>().prop_map(TaskRef::Unknown),
        Just(TaskRef::Unknown(0)),
        Just(TaskRef::Unknown(u128::MAX)),
    ]
    .boxed()
}

/// One hostile write to a user's task.
#[derive(Clone, Debug)]
struct Write {
    method: &'static str,
    /// `""` or `"/complete"`.
    suffix: &'static str,
    task: TaskRef,
    auth: Auth,
    media: MediaType,
    body: Option<Body>,
    if_match: Option<String>,
    /// `?series=<this>` (raw) on DELETE.
    series: Option<String>,
}

/// How the server reads `If-Match`: `None` when it lets the write through.
fn if_match_rule(raw: &str, version: u64) -> Option<Expect> {
    let raw = raw.trim();
    if raw == "*" {
        return None;
    }
    // RFC 9110: a list of `"opaque"` or `W/"opaque"` (etagc: 0x21, 0x23-0x7e, so a comma
    // inside the quotes is part of the tag; empty elements are skipped); only strong tags match.
    let etagc = |b: u8| b == 0x21 || (0x23..=0x7e).contains(&b);
    let mut list = Some(Vec::new());
    let mut rest = raw;
    while let Some(found) = list.as_mut() {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let (weak, quoted) = rest.strip_prefix("W/").map_or((false, rest), |r| (true, r));
        match quoted.strip_prefix('"').and_then(|q| q.split_once('"')) {
            Some((opaque, after))
                if opaque.bytes().all(etagc)
                    && (after.trim_start_matches([' ', '\t']).is_empty() || after.trim_start_matches([' ', '\t']).starts_with(',')) =>
            {
                found.push((weak, opaque));
                rest = after;
            }
            _ => list = None,
        }
    }
    let tags = list;
    match tags {
        Some(tags) if tags.iter().any(|(weak, opaque)| !weak && *opaque == version.to_string()) => None,
        Some(tags) if !tags.is_empty() => Some(Expect::new(412, None)),
        _ => Some(Expect::new(400, Some("If-Match"))),
    }
}

impl Write {
    /// Checks run in order: credentials; then for PUT/PATCH the body (media
    /// type, size, syntax, rules); the id (404); `If-Match` syntax;
    /// `series`; the task's existence (404) and version (412).
    fn expect(&self) -> Expect {
        if let Some(refusal) = self.auth.refusal() {
            return refusal;
        }
        if let Some(body) = &self.body {
            if !matches!(self.media, MediaType::Json(_)) {
                return Expect::new(415, None);
            }
            if body.expect.status != 201 {
                return body.expect.clone();
            }
        }
        if !matches!(self.task, TaskRef::Existing) {
            return Expect::new(404, None);
        }
        let if_match = self.if_match.as_deref().and_then(|v| if_match_rule(v, 1));
        if let Some(e) = if_match.as_ref().filter(|e| e.status == 400) {
            return e.clone();
        }
        if self.series.is_some() {
            return Expect::new(422, Some("series"));
        }
        if_match.unwrap_or(Expect::new(200, None))
    }

    fn path(&self, existing: &str) -> String {
        let mut path = format!("/tasks/{}{}", self.task.segment(existing), self.suffix);
        if let Some(series) = &self.series {
            path += &format!("?series={series}");
        }
        path
    }
}

fn hostile_write() -> BoxedStrategy<Write> {
    let routes: &[(&str, &str)] = &[("PUT", ""), ("PATCH", ""), ("DELETE", ""), ("PATCH", "/complete"), ("GET", "")];
    let base = |method: &'static str, suffix: &'static str| Write {
        method,
        suffix,
        task: TaskRef::Existing,
        auth: Auth::Valid,
        media: MediaType::Json("application/json"),
        body: matches!((method, suffix), ("PUT", _) | ("PATCH", "")).then(|| Body {
            label: "valid".into(),
            bytes: br#"{"title":"changed"}"#.to_vec(),
            expect: Expect::new(201, None),
        }),
        if_match: None,
        series: None,
    };
    let bad_if_match = prop_oneof![
        select(
            &[
                "1",
                "W/\"1\"",
                "\"1",
                "1\"",
                "\"\"",
                "\"-1\"",
                "\"1.0\"",
                "\"0x1\"",
                "\"18446744073709551616\"",
                "\"1\", \"2\"",
                "**",
                "\"2\"",
                "\"0\"",
                "\"999999\""
            ][..]
        )
        .prop_map(String::from),
        any::<u64>().prop_map(|v| format!("\"{v}\"")),
        hostile_text(),
    ]
    .prop_filter("a header value the server refuses", |v| header_safe(v) && if_match_rule(v, 1).is_some());
    let bad_series = prop_oneof![
        hostile_text().prop_map(|s| pct(&s)),
        select(&["", "TRUE", "True", "1", "yes", "true%20", "tru%65", "false%00", "true,true", "%74rue"][..]).prop_map(String::from),
    ];
    prop_oneof![
        4 => (select(&["PUT", "PATCH"][..]), bad_body(false), bad_body(true), select(JSON_TYPES)).prop_map(move |(m, put, patch, t)| Write {
            media: MediaType::Json(t),
            body: Some(if m == "PUT" { put } else { patch }),
            ..base(m, "")
        }),
        1 => (select(&["PUT", "PATCH"][..]), any_body(false), bad_media_type()).prop_map(move |(m, b, media)| Write { media, body: Some(b), ..base(m, "") }),
        2 => (select(routes), bad_auth()).prop_map(move |((m, s), auth)| Write { auth, ..base(m, s) }),
        3 => (select(routes), unknown_task()).prop_map(move |((m, s), task)| Write { task, ..base(m, s) }),
        2 => (select(&routes[..4]), bad_if_match).prop_map(move |((m, s), v)| Write { if_match: Some(v), ..base(m, s) }),
        1 => bad_series.prop_map(move |series| Write { series: Some(series), ..base("DELETE", "") }),
    ]
    .boxed()
}

#[test]
fn hostile_writes_leave_the_task_unchanged() {
    let api = Api::get();
    let written = RefCell::new(Vec::new());
    check("hostile writes", 48, vec(hostile_write(), 1..=4), |writes| {
        let user = fresh_user("hostile-write");
        let task = api.create(
            &user,
            &json!({ "title": "base", "description": "d", "priority": "low", "tags": ["a"], "due_at": "2099-01-01T09:00:00+02:00", "time_zone": "Europe/Paris" }),
        )?;
        let existing = id(&task);
        for w in &writes {
            let mut extra = Vec::new();
            if let Some(v) = &w.if_match {
                extra.push(("if-match", v.clone()));
            }
            let body = w.body.as_ref().map(|b| b.bytes.as_slice());
            let reply = api.call(&user, w.method, &w.path(&existing), (&w.auth, &w.media), &extra, body);
            let expect = w.expect();
            prop_assert!(expect.status >= 400, "the generator made a valid write: {:?}", w);
            assert_refused(&reply, &expect, w)?;
        }
        let now = api.valid(&user, "GET", &format!("/tasks/{existing}"), &[], None);
        prop_assert_eq!(now.status, 200, "{}", now.json);
        prop_assert_eq!(&now.json, &task, "the task is unchanged");
        prop_assert_eq!(api.list(&user, "")?.len(), 1);
        // The sentinel write finds version 1, and its event must be seq 2.
        let sentinel = api.valid(
            &user,
            "PATCH",
            &format!("/tasks/{existing}"),
            &[("if-match", "\"1\"".into())],
            Some(&json!({ "title": "sentinel" })),
        );
        prop_assert_eq!(sentinel.status, 200, "{}", sentinel.json);
        prop_assert_eq!(&sentinel.json["version"], &json!(2));
        written.borrow_mut().push(Written {
            user,
            events: vec![(CREATED, existing.clone()), (UPDATED, existing)],
            case: format!("{writes:?}"),
        });
        Ok(())
    });
    api.assert_audit(&written.into_inner());
}

// ------------------------------------------------------------ list queries

/// What a list query must get.
#[derive(Clone, Debug)]
enum Listing {
    /// 422 naming this parameter.
    Refused(String),
    /// 200; whether the one task is listed (`None`: not checked).
    Listed(Option<bool>),
}

/// A list query: raw `name=value` parts, already encoded.
#[derive(Clone, Debug)]
struct ListQuery {
    parts: Vec<String>,
    expect: Listing,
}

const NEEDLE: &str = "Needle task";
const KNOWN: [&str; 12] =
    ["status", "priority", "tag", "due_before", "due_after", "overdue", "has_due", "q", "sort", "order", "limit", "cursor"];
/// Valid parameters that keep the one (open, undated) task listed.
const HARMLESS: &[(&str, &str)] = &[
    ("status", "all"),
    ("status", "pending"),
    ("sort", "title"),
    ("sort", "due"),
    ("sort", "updated"),
    ("sort", "priority"),
    ("order", "asc"),
    ("order", "desc"),
    ("limit", "1"),
    ("limit", "200"),
    ("has_due", "false"),
    ("overdue", "false"),
    ("tag", ""),
    ("priority", ""),
    ("q", ""),
    ("q", "needle"),
];

/// What `q=<value>` (decoded) does: too long, or whether it finds the task.
fn q_rule(q: &str) -> Listing {
    let q = q.trim();
    if q.chars().count() > 200 {
        Listing::Refused("q".into())
    } else {
        Listing::Listed(Some(q.is_empty() || NEEDLE.to_lowercase().contains(&q.to_lowercase())))
    }
}

/// One hostile parameter: its raw parts and what it gets.
fn hostile_parameter() -> BoxedStrategy<(Vec<String>, Listing)> {
    let not_q = select(&KNOWN[..]).prop_filter("not q", |n| *n != "q");
    let cursor_json = prop_oneof![
        hostile_text().prop_map(|t| json!({ "k": { "created": t }, "i": uuid::Uuid::nil(), "o": "desc" })),
        hostile_text().prop_map(|t| json!({ "k": { "title": t }, "i": uuid::Uuid::nil(), "o": "desc" })),
        hostile_text().prop_map(|t| json!({ "k": { "created": "2026-01-01T00:00:00Z" }, "i": t, "o": "desc" })),
        json_value(),
    ];
    prop_oneof![
        // A known parameter, a value no rule accepts.
        4 => (not_q.clone(), hostile_word()).prop_map(|(n, v)| (vec![format!("{n}={}", pct(&v))], Listing::Refused(n.into()))),
        // Percent-encoding that decodes to garbage.
        1 => (not_q, select(&["%FF", "%FF%FE", "%zz", "%", "%%", "%00", "%C0%AF", "%ED%A0%80", "+", "%2B"][..]))
            .prop_map(|(n, v)| (vec![format!("{n}={v}")], Listing::Refused(n.into()))),
        // Free text: any search up to 200 characters is fine.
        3 => prop_oneof![hostile_text(), hostile_word(), (hostile_text(), 195usize..215).prop_map(|(h, n)| format!("{h}{}", "é".repeat(n)))]
            .prop_map(|q| (vec![format!("q={}", pct(&q))], q_rule(&q))),
        1 => select(&["%FF", "%00", "%zz", "+", "%"][..]).prop_map(|v| (vec![format!("q={v}")], Listing::Listed(None))),
        // Page sizes out of range or not whole numbers.
        2 => prop_oneof![
            select(&["0", "201", "-1", "+1", "1.0", "1e2", "0x10", "99999999999999999999999999", " 1", "1 ", "\u{ff11}", "\u{663}"][..]).prop_map(String::from),
            (201u64..).prop_map(|n| n.to_string()),
        ]
        .prop_map(|v| (vec![format!("limit={}", pct(&v))], Listing::Refused("limit".into()))),
        // An unknown parameter (with a value: an empty one counts as absent).
        2 => (
            prop_oneof![hostile_text(), select(&["Status", "LIMIT", "sort ", "status\0", "page", "offset", "user", "user_id", "__proto__", ""][..]).prop_map(String::from)],
            hostile_text().prop_filter("a value", |v| !v.is_empty()),
        )
            .prop_filter("unknown", |(n, _)| !KNOWN.contains(&n.as_str()))
            .prop_map(|(n, v)| (vec![format!("{}={}", pct(&n), pct(&v))], Listing::Refused(n))),
        // A parameter that may be given once, twice.
        1 => select(&[("status", "all"), ("limit", "5"), ("q", "a"), ("sort", "due"), ("cursor", ""), ("overdue", "false")][..])
            .prop_map(|(n, v)| (vec![format!("{n}={v}"), format!("{n}={v}")], Listing::Refused(n.into()))),
        // Cursors that no list made.
        2 => prop_oneof![
            vec(any::<u8>(), 1..200).prop_map(|b| b64url(&b)),
            cursor_json.prop_map(|v| b64url(v.to_string().as_bytes())),
            (1025usize..1500).prop_map(|n| "A".repeat(n)),
        ]
        .prop_map(|c| (vec![format!("cursor={c}")], Listing::Refused("cursor".into()))),
        // A cursor of the right shape carrying a hostile key: a position like any other.
        1 => hostile_text().prop_map(|t| {
            let cursor = b64url(json!({ "k": { "title": t }, "i": uuid::Uuid::nil(), "o": "asc" }).to_string().as_bytes());
            (vec!["sort=title".into(), "order=asc".into(), format!("cursor={cursor}")], Listing::Listed(None))
        }),
        // An empty or reversed due range.
        1 => select(&["2030-01-01T00:00:00Z", "2029-12-31T23:59:59Z", "2030-01-01T01:00:00+01:00"][..])
            .prop_map(|b| (vec!["due_after=2030-01-01T00%3A00%3A00Z".into(), format!("due_before={}", pct(b))], Listing::Refused("due_before".into()))),
    ]
    .boxed()
}

fn hostile_query() -> BoxedStrategy<ListQuery> {
    (hostile_parameter(), proptest::sample::subsequence(HARMLESS.to_vec(), 0..3), any::<prop::sample::Index>())
        .prop_map(|((parts, expect), harmless, at)| {
            let fixed = parts.iter().any(|p| p.starts_with("sort=title"));
            let names: Vec<&str> = parts.iter().map(|p| p.split('=').next().unwrap_or_default()).collect();
            let mut all = parts.clone();
            let mut seen: Vec<&str> = Vec::new();
            for (n, v) in harmless {
                if fixed || names.contains(&n) || seen.contains(&n) || names.contains(&pct(n).as_str()) {
                    continue;
                }
                seen.push(n);
                all.insert(at.index(all.len() + 1), format!("{n}={v}"));
            }
            ListQuery { parts: all, expect }
        })
        .boxed()
}

#[test]
fn hostile_list_queries_are_refused_or_harmless() {
    let api = Api::get();
    let user = fresh_user("hostile-query");
    let needle = api.create(&user, &json!({ "title": NEEDLE })).unwrap();
    check("hostile list queries", 96, vec(hostile_query(), 1..=3), |queries| {
        for q in &queries {
            let query = q.parts.join("&");
            let reply = api.valid(&user, "GET", &format!("/tasks?{query}"), &[], None);
            match &q.expect {
                Listing::Refused(field) => assert_refused(&reply, &Expect::new(422, Some(field)), q)?,
                Listing::Listed(listed) => {
                    prop_assert_eq!(reply.status, 200, "?{}: {}", query, reply.json);
                    if let Some(listed) = listed {
                        let ids: Vec<String> = reply.json["items"].as_array().map(|a| a.iter().map(id).collect()).unwrap_or_default();
                        let want = if *listed { vec![id(&needle)] } else { vec![] };
                        prop_assert_eq!(ids, want, "?{}", query);
                    }
                }
            }
        }
        Ok(())
    });
    let now = api.valid(&user, "GET", &format!("/tasks/{}", id(&needle)), &[], None);
    assert_eq!(now.json, needle, "listing changes nothing");
    api.assert_audit(&[Written { user, events: vec![(CREATED, id(&needle))], case: "list queries".into() }]);
}

// ------------------------------------------------------------ path segments

/// A request whose user segment is hostile.
#[derive(Clone, Debug)]
struct ForeignPath {
    /// The path's user id (sent percent-encoded).
    user: String,
    method: &'static str,
    path: &'static str,
    /// The token's subject is the hostile id itself (else: the case's valid user).
    own_token: bool,
}

fn hostile_user_path() -> BoxedStrategy<ForeignPath> {
    let routes: &[(&str, &str)] = &[
        ("POST", "/tasks"),
        ("GET", "/tasks"),
        ("GET", "/tags"),
        ("GET", "/tasks/01900000-0000-7000-8000-000000000000"),
        ("PUT", "/tasks/01900000-0000-7000-8000-000000000000"),
        ("PATCH", "/tasks/01900000-0000-7000-8000-000000000000"),
        ("DELETE", "/tasks/01900000-0000-7000-8000-000000000000"),
        ("PATCH", "/tasks/01900000-0000-7000-8000-000000000000/complete"),
    ];
    let ids = prop_oneof![
        hostile_word(),
        hostile_text().prop_filter("a segment", |s| !s.is_empty()),
        (129usize..300).prop_map(|n| "a".repeat(n)),
        select(&["..", ".", "a:b", "a/b", "a b", "ä", "auth0|x", "x@y", "%2e%2e", "ADMIN"][..]).prop_map(String::from),
    ];
    (ids, select(routes), any::<bool>())
        .prop_map(|(user, (method, path), own)| ForeignPath { own_token: own && !user_id_rule(&user), user, method, path })
        .boxed()
}

#[test]
fn hostile_path_segments_are_refused_and_write_nothing() {
    let api = Api::get();
    let written = RefCell::new(Vec::new());
    let cases = (
        vec(hostile_user_path(), 1..=3),
        vec((select(&[("GET", ""), ("PUT", ""), ("PATCH", ""), ("DELETE", ""), ("PATCH", "/complete")][..]), unknown_task()), 1..=3),
    );
    check("hostile path segments", 48, cases, |(foreign, unknown)| {
        let user = fresh_user("hostile-path");
        let body = br#"{"title":"must not be written"}"#;
        for f in &foreign {
            let token = if f.own_token { api.stack.token_with(&f.user, 3600, &api.secret) } else { api.stack.token(&user) };
            let headers = [("authorization", format!("Bearer {token}")), ("content-type", "application/json".into())];
            let with_body = matches!(f.method, "POST" | "PUT") || (f.method == "PATCH" && !f.path.ends_with("/complete"));
            let reply = api.send(f.method, &api.url(&pct(&f.user), f.path), &headers, with_body.then_some(&body[..]));
            assert_refused(&reply, &Expect::new(if f.own_token { 401 } else { 403 }, None), f)?;
        }
        for ((method, suffix), task) in &unknown {
            let path = format!("/tasks/{}{suffix}", task.segment("01900000-0000-7000-8000-000000000000"));
            let with_body = matches!((*method, *suffix), ("PUT", _) | ("PATCH", ""));
            let reply =
                api.call(&user, method, &path, (&Auth::Valid, &MediaType::Json("application/json")), &[], with_body.then_some(&body[..]));
            assert_refused(&reply, &Expect::new(404, None), &(method, &path))?;
        }
        api.assert_no_tasks(&user)?;
        let sentinel = api.create(&user, &json!({ "title": "sentinel" }))?;
        written.borrow_mut().push(Written { user, events: vec![(CREATED, id(&sentinel))], case: format!("{foreign:?} {unknown:?}") });
        Ok(())
    });
    api.assert_audit(&written.into_inner());
}

// ------------------------------------------------------------ MCP

/// What a hostile MCP message must get.
#[derive(Clone, Debug, PartialEq)]
enum McpExpect {
    /// HTTP `status` with the JSON-RPC error `code`.
    Refused(u16, i64),
    /// HTTP 200 with the JSON-RPC error `code`.
    Error(i64),
    /// HTTP 200 with a tool result that has `isError: true`.
    ToolError,
}

/// A hostile message to `POST /mcp`.
#[derive(Clone, Debug)]
struct McpCase {
    label: String,
    bytes: Vec<u8>,
    expect: McpExpect,
}

const MCP_METHODS: [&str; 5] = ["initialize", "ping", "tools/list", "tools/call", "notifications/initialized"];
const MCP_TOOLS: [&str; 7] = ["add_task", "list_tasks", "find_tasks", "complete_task", "delete_task", "update_task", "quick_add"];

fn mcp_case(label: &str, message: &Value, expect: McpExpect) -> McpCase {
    McpCase { label: label.into(), bytes: message.to_string().into_bytes(), expect }
}

fn call_message(tool: &str, arguments: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": tool, "arguments": arguments } })
}

fn hostile_mcp() -> BoxedStrategy<McpCase> {
    let not_json = vec(any::<u8>(), 0..200)
        .prop_filter("not JSON", |b| serde_json::from_slice::<Value>(b).is_err())
        .prop_map(|bytes| McpCase { label: "not JSON".into(), bytes, expect: McpExpect::Refused(400, -32700) });
    let deep = (130usize..2000).prop_map(|n| McpCase {
        label: format!("params nested {n} deep"),
        bytes: format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"x":{}{}}}}}"#, "[".repeat(n), "]".repeat(n)).into_bytes(),
        expect: McpExpect::Refused(400, -32700),
    });
    let batch = (1usize..200, select(&MCP_METHODS[..])).prop_map(|(n, m)| {
        let one = json!({ "jsonrpc": "2.0", "id": 1, "method": m, "params": {} });
        mcp_case(&format!("a batch of {n}"), &Value::Array(vec![one; n]), McpExpect::Refused(400, -32600))
    });
    let bad_envelope = prop_oneof![
        wrong_type(Value::is_string, true).prop_map(|v| mcp_case(
            "jsonrpc",
            &json!({ "jsonrpc": v, "id": 1, "method": "ping" }),
            McpExpect::Refused(400, -32600)
        )),
        wrong_type(|v| v.is_string() || v.as_i64().is_some() || v.as_u64().is_some(), true).prop_map(|v| mcp_case(
            "id",
            &json!({ "jsonrpc": "2.0", "id": v, "method": "ping" }),
            McpExpect::Refused(400, -32600)
        )),
        wrong_type(Value::is_string, true).prop_map(|v| mcp_case(
            "method",
            &json!({ "jsonrpc": "2.0", "id": 1, "method": v }),
            McpExpect::Refused(400, -32600)
        )),
        wrong_type(Value::is_object, false).prop_map(|v| mcp_case(
            "params",
            &json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": v }),
            McpExpect::Refused(400, -32602)
        )),
        json_value().prop_filter("not an object", |v| !v.is_object()).prop_map(|v| mcp_case(
            "not an object",
            &v,
            McpExpect::Refused(400, -32600)
        )),
    ];
    let unknown_method =
        hostile_word().prop_filter("unknown", |m| !MCP_METHODS.contains(&m.as_str()) && !m.starts_with("notifications/")).prop_map(|m| {
            mcp_case("unknown method", &json!({ "jsonrpc": "2.0", "id": 7, "method": m, "params": {} }), McpExpect::Error(-32601))
        });
    let unknown_tool = hostile_word()
        .prop_filter("unknown", |t| !MCP_TOOLS.contains(&t.as_str()))
        .prop_map(|t| mcp_case("unknown tool", &call_message(&t, json!({})), McpExpect::Error(-32602)));
    let bad_arguments = prop_oneof![
        wrong_type(Value::is_string, true).prop_map(|v| mcp_case(
            "title type",
            &call_message("add_task", json!({ "title": v })),
            McpExpect::ToolError
        )),
        wrong_type(Value::is_object, false).prop_filter("not null", |v| !v.is_null()).prop_map(|v| mcp_case(
            "arguments type",
            &call_message("add_task", v),
            McpExpect::ToolError
        )),
        (hostile_word(), json_value())
            .prop_filter("unknown", |(k, _)| ![
                "title",
                "description",
                "priority",
                "tags",
                "due_at",
                "time_zone",
                "reminders",
                "recurrence",
                "user_id"
            ]
            .contains(&k.as_str()))
            .prop_map(|(k, v)| {
                let mut args = Map::new();
                args.insert("title".into(), json!("x"));
                args.insert(k, v);
                mcp_case("unknown argument", &call_message("add_task", Value::Object(args)), McpExpect::ToolError)
            }),
        (201usize..20_000).prop_map(|n| mcp_case(
            "huge title",
            &call_message("add_task", json!({ "title": "a".repeat(n) })),
            McpExpect::ToolError
        )),
        hostile_text().prop_map(|t| mcp_case(
            "hostile task_id",
            &call_message("delete_task", json!({ "task_id": t })),
            McpExpect::ToolError
        )),
        json_value().prop_map(|v| mcp_case(
            "quick_add text type",
            &call_message("quick_add", json!({ "text": [v] })),
            McpExpect::ToolError
        )),
        hostile_word().prop_map(|u| mcp_case(
            "other user_id",
            &call_message("add_task", json!({ "title": "x", "user_id": format!("{u}-other") })),
            McpExpect::ToolError
        )),
    ];
    let huge = (MAX_BODY + 1..MAX_BODY * 3).prop_map(|n| {
        let message = call_message("add_task", json!({ "title": "x", "description": "d".repeat(n) }));
        mcp_case(&format!("{n}-byte message"), &message, McpExpect::Refused(413, -32600))
    });
    prop_oneof![
        2 => not_json,
        1 => deep,
        2 => batch,
        3 => bad_envelope,
        2 => unknown_method,
        2 => unknown_tool,
        4 => bad_arguments,
        1 => huge,
    ]
    .boxed()
}

#[test]
fn hostile_mcp_messages_get_their_json_rpc_error_and_write_nothing() {
    let api = Api::get();
    let url = format!("{}/mcp", api.stack.mcp);
    let written = RefCell::new(Vec::new());
    check("hostile MCP messages", 64, vec(hostile_mcp(), 1..=3), |cases| {
        let user = fresh_user("hostile-mcp");
        let token = api.stack.token(&user);
        for c in &cases {
            let reply = e2e::mcp_post(&url, &token, &c.bytes);
            let context = || format!("{}: got {} {}", c.label, reply.status, reply.json);
            prop_assert!(reply.status < 500, "a 5xx for hostile input: {}", context());
            match &c.expect {
                McpExpect::Refused(status, code) => {
                    prop_assert_eq!(reply.status, *status, "{}", context());
                    prop_assert_eq!(reply.json["error"]["code"].as_i64(), Some(*code), "{}", context());
                }
                McpExpect::Error(code) => {
                    prop_assert_eq!(reply.status, 200, "{}", context());
                    prop_assert_eq!(reply.json["error"]["code"].as_i64(), Some(*code), "{}", context());
                }
                McpExpect::ToolError => {
                    prop_assert_eq!(reply.status, 200, "{}", context());
                    prop_assert_eq!(&reply.json["result"]["isError"], &json!(true), "{}", context());
                    prop_assert!(reply.json["result"]["content"][0]["text"].as_str().is_some_and(|t| !t.is_empty()), "{}", context());
                }
            }
            prop_assert_eq!(reply.json["jsonrpc"].as_str(), Some("2.0"), "{}", context());
        }
        api.assert_no_tasks(&user)?;
        let sentinel = e2e::mcp_post(&url, &token, call_message("add_task", json!({ "title": "sentinel" })).to_string().as_bytes());
        prop_assert_eq!(&sentinel.json["result"]["isError"], &json!(false), "{}", sentinel.json);
        let task_id = sentinel.json["result"]["structuredContent"]["task_id"].as_str().unwrap_or_default().to_owned();
        written.borrow_mut().push(Written { user, events: vec![(CREATED, task_id)], case: format!("{cases:?}") });
        Ok(())
    });
    api.assert_audit(&written.into_inner());
}
