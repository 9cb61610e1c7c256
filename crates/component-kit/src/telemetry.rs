//! Structured logs: one JSON object a line on stderr, with the level, the
//! app, and (when known) the user, task, event id and the trace id of the
//! request being handled. [`begin`] records the app and the request's trace
//! context once per component instance (one instance serves one request).

use std::sync::OnceLock;

use dapr_http::trace::{self, TraceContext};
use serde_json::{Map, Value};
use spin_sdk::http::Request;

static APP: OnceLock<&'static str> = OnceLock::new();

/// Records `app` and the trace context (`traceparent`, `tracestate`) of `req`,
/// which every later Dapr call, published event and log line carries.
pub fn begin(app: &'static str, req: &Request) {
    let header = |name: &str| req.header(name).and_then(|v| v.as_str());
    let _ = APP.set(app);
    trace::begin(TraceContext::parse(header("traceparent"), header("tracestate")));
}

/// One log line being built.
#[must_use = "a log line is written by `emit`"]
pub struct Line {
    fields: Map<String, Value>,
}

fn line(level: &str, message: impl Into<String>) -> Line {
    let mut fields = Map::new();
    fields.insert("level".into(), level.into());
    fields.insert("app".into(), APP.get().copied().unwrap_or("unknown").into());
    fields.insert("msg".into(), message.into().into());
    if let Some(trace_id) = trace::current().trace_id() {
        fields.insert("trace_id".into(), trace_id.into());
    }
    Line { fields }
}

/// A line at level `info`.
pub fn info(message: impl Into<String>) -> Line {
    line("info", message)
}

/// A line at level `warn`: something failed and will be retried or skipped.
pub fn warn(message: impl Into<String>) -> Line {
    line("warn", message)
}

/// A line at level `error`: something failed for good.
pub fn error(message: impl Into<String>) -> Line {
    line("error", message)
}

impl Line {
    fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.fields.insert(key.into(), value.to_string().into());
        self
    }

    /// The user concerned.
    pub fn user(self, user: impl ToString) -> Self {
        self.with("user", user)
    }

    /// The task concerned.
    pub fn task(self, task: impl ToString) -> Self {
        self.with("task", task)
    }

    /// The event concerned (CloudEvent id).
    pub fn event(self, event_id: impl ToString) -> Self {
        self.with("event_id", event_id)
    }

    /// The error behind it.
    pub fn error(self, error: impl ToString) -> Self {
        self.with("error", error)
    }

    fn render(&self) -> String {
        Value::Object(self.fields.clone()).to_string()
    }

    /// Writes the line to stderr.
    pub fn emit(self) {
        eprintln!("{}", self.render());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_json_object_with_its_fields() {
        let rendered = warn("outbox left pending").user("alice").task("t1").event("e1").error("broker \"down\"\nretrying").render();
        assert!(!rendered.contains('\n'), "one line: {rendered}");
        let json: Value = serde_json::from_str(&rendered).unwrap();
        assert_eq!(json["level"], "warn");
        assert_eq!(json["msg"], "outbox left pending");
        assert_eq!((json["user"].as_str(), json["task"].as_str(), json["event_id"].as_str()), (Some("alice"), Some("t1"), Some("e1")));
        assert_eq!(json["error"], "broker \"down\"\nretrying");
        assert!(json["app"].is_string());
    }
}
