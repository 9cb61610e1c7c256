//! Errors as `application/problem+json` (RFC 9457).

use dapr_http::DaprError;
use serde::Serialize;
use spin_sdk::http::Response;
use todo_domain::DomainError;

/// An error response: status, a short title and a precise detail.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// Problem type URI; `about:blank` means the status says it all.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Short summary of the status.
    pub title: &'static str,
    /// HTTP status.
    pub status: u16,
    /// What went wrong, for a human.
    pub detail: String,
    /// The offending input field, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The rule the field broke, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
}

impl Problem {
    /// A problem with `status`, `title` and `detail`.
    pub fn new(status: u16, title: &'static str, detail: impl Into<String>) -> Self {
        Problem { kind: "about:blank", title, status, detail: detail.into(), field: None, rule: None }
    }

    /// 401: no or bad credentials.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Problem::new(401, "Unauthorized", detail)
    }

    /// 403: authenticated, but not allowed here.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(403, "Forbidden", detail)
    }

    /// 404: nothing here (also for another user's resources).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(404, "Not Found", detail)
    }

    /// 415: the body is not JSON.
    pub fn unsupported_media_type() -> Self {
        Problem::new(415, "Unsupported Media Type", "send the body as application/json")
    }

    /// 503: a dependency (the sidecar, the store, the broker) is unavailable.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Problem::new(503, "Service Unavailable", detail)
    }

    /// The HTTP response.
    pub fn into_response(self) -> Response {
        let mut response = crate::json(self.status, &self);
        response.set_header("content-type", "application/problem+json");
        if self.status == 401 {
            response.set_header("www-authenticate", "Bearer");
        }
        response
    }
}

impl From<DomainError> for Problem {
    fn from(e: DomainError) -> Self {
        // Unparseable JSON is a 400; well-formed JSON that breaks a rule is a 422.
        let (status, title) = if e.field == "body" { (400, "Bad Request") } else { (422, "Unprocessable Content") };
        Problem { field: Some(e.field.clone()), rule: Some(e.rule.as_str()), ..Problem::new(status, title, e.to_string()) }
    }
}

/// The `detail` of every 503 from a Dapr failure: Dapr's own answer names
/// components, keys and hosts, so it goes to the log, not to the client.
pub const UNAVAILABLE: &str = "a dependency (state store, broker or secret store) is unavailable; retry later";

impl From<DaprError> for Problem {
    fn from(e: DaprError) -> Self {
        crate::telemetry::warn("a Dapr call failed").error(&e).emit();
        match e {
            DaprError::Conflict => Problem::new(409, "Conflict", "the resource changed concurrently; retry"),
            _ => Problem::unavailable(UNAVAILABLE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dapr_failure_answers_a_stable_503_without_daprs_body() {
        let raw =
            r#"{"errorCode":"ERR_STATE_GET","message":"fail to get ledger:alice from state store statestore: dial tcp 10.0.0.7:5432"}"#;
        for e in [
            DaprError::Status { status: 500, body: raw.into() },
            DaprError::Unreachable("connection refused (os error 111) to 127.0.0.1:3500".into()),
            DaprError::Decode("ledger:alice: missing field `seq`".into()),
        ] {
            let problem = Problem::from(e);
            assert_eq!((problem.status, problem.detail.as_str()), (503, UNAVAILABLE));
        }
        assert_eq!(Problem::from(DaprError::Conflict).status, 409);
    }
}
