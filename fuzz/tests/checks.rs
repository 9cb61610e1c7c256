//! The fuzz targets' checks on stable (`cargo xtask test`): over the committed
//! corpus, and over inputs generated from the parsers' real vocabulary, near
//! valid so that most reach the checks that run on accepted input only.

use std::path::Path;

use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Runs `check` on every file of `corpus/<target>/`.
fn corpus(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("corpus directory").map(|e| e.expect("corpus entry").path()).collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    for file in files {
        eprintln!("checking {}", file.display());
        check(&std::fs::read(&file).expect("corpus file"));
    }
}

#[test]
fn task_json_corpus() {
    corpus("task_json", todo_domain_fuzz::task_json);
}

#[test]
fn recurrence_corpus() {
    corpus("recurrence", todo_domain_fuzz::recurrence);
}

#[test]
fn filters_corpus() {
    corpus("filters", todo_domain_fuzz::filters);
}

/// An RFC 3339 instant, mostly valid, including the ends of the 4-digit years.
fn instant() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-](0[0-9]|1[0-4]):(00|30|45))",
        1 => "(0000-01-01T0[0-9]|9999-12-31T2[0-3]):[0-5][0-9]:[0-5][0-9](Z|[+-](0[0-9]|1[0-4]):(00|30))",
        1 => "[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:]{8}[Zz+0-9:-]{0,6})?",
    ]
}

/// An RRULE built from real rule parts and values (and a few wrong ones).
fn rrule() -> impl Strategy<Value = String> {
    let list = |item: BoxedStrategy<String>| proptest::collection::vec(item, 0..4).prop_map(|v| v.join(","));
    let part = prop_oneof![
        "FREQ=(DAILY|WEEKLY|MONTHLY|YEARLY|HOURLY|)".boxed(),
        "INTERVAL=(0|1|2|3|7|52|999|1000|1001|-1|x)".boxed(),
        "COUNT=(0|1|2|3|10|1000|1001)".boxed(),
        instant().prop_map(|t| format!("UNTIL={}", t.replace(['-', ':'], "").chars().take(15).collect::<String>() + "Z")).boxed(),
        list("[+-]?(|0|1|2|5|6|53|54)(MO|TU|WE|TH|FR|SA|SU|XX)".boxed()).prop_map(|v| format!("BYDAY={v}")).boxed(),
        list("[+-]?(0|1|15|28|29|30|31|32)".boxed()).prop_map(|v| format!("BYMONTHDAY={v}")).boxed(),
        list("(0|1|2|4|12|13)".boxed()).prop_map(|v| format!("BYMONTH={v}")).boxed(),
        "(WKST=MO|BYSETPOS=1|FREQ|=)".boxed(),
    ];
    ("(RRULE:|rrule:|)", "FREQ=(DAILY|WEEKLY|MONTHLY|YEARLY)", proptest::collection::vec(part, 0..5), any::<bool>()).prop_map(
        |(prefix, freq, parts, lower)| {
            let raw = format!("{prefix}{}", std::iter::once(freq).chain(parts).collect::<Vec<_>>().join(";"));
            if lower {
                raw.to_lowercase()
            } else {
                raw
            }
        },
    )
}

/// A phrase following the grammar of `todo_domain::phrase`, with slips.
fn phrase() -> impl Strategy<Value = String> {
    let weekdays = proptest::collection::vec("(monday|tue|wednesdays|thu|friday|sat|sundays|funday)", 1..4);
    let ordinals = proptest::collection::vec("(the )?(1st|2nd|3rd|4th|11th|15|22nd|29th|30|31st|32nd|2st|last|last day)", 1..3);
    let core = prop_oneof![
        "days?|weekdays?|weeks?|months?|years?|last day of the month".boxed(),
        ("weeks?", weekdays.clone()).prop_map(|(unit, days)| format!("{unit} on {}", days.join(" and "))).boxed(),
        ("months?", ordinals).prop_map(|(unit, days)| format!("{unit} on the {}", days.join(", "))).boxed(),
        "years? on (january|feb|march|apr|smarch) (1|3rd|28|29|30|31|32)".boxed(),
        weekdays.prop_map(|days| days.join(", ")).boxed(),
    ];
    let end = prop_oneof!["", " for (0|1|2|10|1000|1001) times?", instant().prop_map(|t| format!(" until {}", &t[..10]))];
    ("(every|every!|Every|each)", "( other| 2| 3| 0| 1000| 1001|)", core, end)
        .prop_map(|(every, interval, core, end)| format!("{every}{interval} {core}{end}"))
}

/// A value of `field`, right or wrong, or any JSON.
fn field_value(field: &'static str) -> BoxedStrategy<Value> {
    let any_json = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
    ];
    let strings = |s: BoxedStrategy<String>, max| proptest::collection::vec(s, 0..max).prop_map(Value::from).boxed();
    let right: BoxedStrategy<Value> = match field {
        "title" | "description" => {
            prop_oneof!["[a-zA-Z ]{1,12}", Just(" \r\n ".to_owned()), "\\PC{0,5}", Just("é".repeat(201))].prop_map(Value::from).boxed()
        }
        "priority" => "(none|low|medium|high|urgent|max|)".prop_map(Value::from).boxed(),
        "tags" => strings("(Home|home|work| a  b |café|a,b|x!|[a-z]{41})".boxed(), 22),
        "due_at" => instant().prop_map(Value::from).boxed(),
        "time_zone" => {
            "(UTC|Europe/Berlin|America/New_York|Australia/Lord_Howe|Asia/Kolkata|europe/paris|Mars/Olympus)".prop_map(Value::from).boxed()
        }
        "reminders" => strings(prop_oneof!["PT(0S|15M|1H|90M)|P(1D|1W|365D|366D|1M)", instant()].boxed(), 7),
        "recurrence" => (proptest::option::of(rrule()), proptest::option::of(phrase()), "(due|completion|start|)")
            .prop_map(|(rrule, text, anchor)| {
                let parts = [("rrule", rrule), ("text", text), ("anchor", Some(anchor).filter(|a| !a.is_empty()))];
                Value::Object(parts.into_iter().filter_map(|(name, v)| Some((name.to_owned(), Value::from(v?)))).collect::<Map<_, _>>())
            })
            .boxed(),
        _ => any::<bool>().prop_map(Value::from).boxed(),
    };
    prop_oneof![6 => right, 1 => any_json].boxed()
}

/// A task body: title mostly present, every other field sometimes, rarely an unknown one.
fn task_body() -> impl Strategy<Value = String> {
    let fields = ["title", "description", "priority", "tags", "due_at", "time_zone", "reminders", "recurrence", "completed", "titel"];
    let weights = [0.9, 0.3, 0.3, 0.3, 0.6, 0.4, 0.4, 0.5, 0.2, 0.02];
    let values: Vec<_> =
        fields.into_iter().zip(weights).map(|(f, w)| proptest::option::weighted(w, field_value(f)).prop_map(move |v| (f, v))).collect();
    values.prop_map(|fields| Value::Object(fields.into_iter().filter_map(|(f, v)| Some((f.to_owned(), v?))).collect()).to_string())
}

/// A list query string from real parameters and values, encoded or not.
fn query_string() -> impl Strategy<Value = String> {
    let param = prop_oneof![
        "status=(all|pending|completed|done|)",
        "priority=(none|low|medium|high|urgent|top)(,(low|urgent))?",
        "tag=(home|work|money|café|Home Office|a!|)(,shopping)?",
        instant().prop_map(|t| format!("due_before={t}")),
        instant().prop_map(|t| format!("due_after={t}")),
        "(overdue|has_due)=(true|false|yes|)",
        "q=(milk|MILK| Taxes |é|x{201}|)",
        "sort=(due|priority|title|created|updated|random)",
        "order=(asc|desc|up)",
        "limit=(0|1|2|3|7|50|200|201|-1|ten|)",
        "cursor=[A-Za-z0-9_-]{0,40}",
        "(stauts=all|=|&)",
    ];
    ("\\??", proptest::collection::vec(param, 0..6), any::<bool>()).prop_map(|(mark, params, encode)| {
        let raw = params.join("&");
        if encode {
            let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
            format!("{mark}{}", form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish())
        } else {
            format!("{mark}{raw}")
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn task_json_generated(body in task_body()) {
        todo_domain_fuzz::task_json(body.as_bytes());
    }

    #[test]
    fn task_json_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        todo_domain_fuzz::task_json(&bytes);
    }

    #[test]
    fn recurrence_rrules(raw in rrule()) {
        todo_domain_fuzz::recurrence(raw.as_bytes());
    }

    #[test]
    fn recurrence_phrases(text in phrase()) {
        todo_domain_fuzz::recurrence(text.as_bytes());
    }

    #[test]
    fn filters_generated(query in query_string()) {
        todo_domain_fuzz::filters(query.as_bytes());
    }
}
