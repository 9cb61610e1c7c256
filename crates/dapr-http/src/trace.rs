//! The W3C trace context (`traceparent`, `tracestate`) of the request being
//! handled, which every call to the sidecar and every published CloudEvent
//! carries, so that one trace spans API -> Kafka -> consumers.
//!
//! A wasm component instance serves one request, so the context is set once
//! per instance, when the request arrives ([`begin`]).

use std::sync::OnceLock;

static CURRENT: OnceLock<TraceContext> = OnceLock::new();

/// A request's trace context; each part only when well-formed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceContext {
    /// `traceparent`: `00-<trace id>-<parent id>-<flags>`.
    pub traceparent: Option<String>,
    /// `tracestate`, passed on only along with a `traceparent`.
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The context of the headers `traceparent` and `tracestate`: a malformed
    /// `traceparent` (W3C Trace Context level 1) is dropped, and `tracestate` with it.
    pub fn parse(traceparent: Option<&str>, tracestate: Option<&str>) -> Self {
        let traceparent = traceparent.map(str::trim).filter(|t| well_formed(t)).map(str::to_owned);
        let tracestate = tracestate
            .map(str::trim)
            .filter(|s| traceparent.is_some() && !s.is_empty() && s.len() <= 512 && s.is_ascii())
            .map(str::to_owned);
        TraceContext { traceparent, tracestate }
    }

    /// The 32-hex-digit trace id.
    pub fn trace_id(&self) -> Option<&str> {
        self.traceparent.as_deref().map(|t| &t[3..35])
    }

    /// The headers to send along.
    pub fn headers(&self) -> Vec<(&'static str, &str)> {
        let mut headers = Vec::new();
        if let Some(t) = &self.traceparent {
            headers.push(("traceparent", t.as_str()));
        }
        if let Some(s) = &self.tracestate {
            headers.push(("tracestate", s.as_str()));
        }
        headers
    }
}

fn well_formed(t: &str) -> bool {
    let parts: Vec<&str> = t.split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    parts.len() == 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && hex(parts[1], 32)
        && parts[1].bytes().any(|b| b != b'0')
        && hex(parts[2], 16)
        && parts[2].bytes().any(|b| b != b'0')
        && hex(parts[3], 2)
}

/// Sets this instance's trace context (the first call wins).
pub fn begin(context: TraceContext) {
    let _ = CURRENT.set(context);
}

/// This instance's trace context (empty before [`begin`]).
pub fn current() -> TraceContext {
    CURRENT.get().cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_well_formed_context_is_kept_and_a_malformed_one_dropped() {
        let ctx = TraceContext::parse(Some(PARENT), Some("congo=t61rcWkgMzE"));
        assert_eq!(ctx.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(ctx.headers(), [("traceparent", PARENT), ("tracestate", "congo=t61rcWkgMzE")]);
        for bad in [
            "",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736\r\nx: y-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(Some(bad), Some("a=b")), TraceContext::default(), "{bad:?}");
        }
    }
}
