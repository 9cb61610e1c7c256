//! CORS for browser clients of every browser-facing service (todo-api,
//! audit-service, notify-service): the allowed origins come from
//! `CORS_ALLOWED_ORIGINS` (comma-separated; `*` for any; default none).
//! Credentials are bearer tokens, never cookies, so no
//! `Access-Control-Allow-Credentials` is sent.

use std::future::Future;

use spin_sdk::http::{Method, Request, Response};

/// Methods answered to a preflight.
pub const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
/// Request headers a browser may send.
pub const ALLOW_HEADERS: &str = "authorization, content-type, idempotency-key, if-match, last-event-id";
/// Response headers a browser's script may read.
pub const EXPOSE_HEADERS: &str = "etag, location, idempotent-replayed, retry-after";
/// How long a browser may cache a preflight answer, in seconds.
pub const MAX_AGE_SECS: u32 = 600;

/// The configured origins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    origins: Vec<String>,
    any: bool,
}

impl Cors {
    /// Parses a comma-separated list of origins (`scheme://host[:port]`);
    /// blanks are ignored, a trailing `/` is dropped, `*` allows any origin.
    pub fn parse(list: &str) -> Self {
        let mut cors = Cors::default();
        for origin in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            if origin == "*" {
                cors.any = true;
            } else {
                cors.origins.push(origin.trim_end_matches('/').to_ascii_lowercase());
            }
        }
        cors
    }

    /// From `CORS_ALLOWED_ORIGINS`.
    pub fn from_env() -> Self {
        Cors::parse(&std::env::var("CORS_ALLOWED_ORIGINS").unwrap_or_default())
    }

    /// Whether `origin` (the request's `Origin` header) may read responses.
    /// Scheme and host compare case-insensitively; the port must match.
    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.trim();
        if origin.is_empty() || origin == "null" {
            return false;
        }
        self.any || self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// The `Origin` of `req` when it is allowed.
    pub fn allowed_origin<'r>(&self, req: &'r Request) -> Option<&'r str> {
        req.header("origin").and_then(|v| v.as_str()).filter(|o| self.allows(o))
    }

    /// The headers of an actual (non-preflight) response to `origin`.
    pub fn headers(&self, origin: &str) -> Vec<(&'static str, String)> {
        vec![
            ("access-control-allow-origin", origin.to_owned()),
            ("access-control-expose-headers", EXPOSE_HEADERS.to_owned()),
            ("vary", "origin".to_owned()),
        ]
    }

    /// The answer to a preflight `OPTIONS`: 204 with the allowed methods and
    /// headers for an allowed origin, 403 otherwise.
    pub fn preflight(&self, req: &Request) -> Response {
        match self.allowed_origin(req) {
            Some(origin) => {
                let mut builder = Response::builder();
                builder.status(204);
                for (k, v) in self.headers(origin) {
                    builder.header(k, v);
                }
                builder
                    .header("access-control-allow-methods", ALLOW_METHODS)
                    .header("access-control-allow-headers", ALLOW_HEADERS)
                    .header("access-control-max-age", MAX_AGE_SECS.to_string())
                    .build()
            }
            None => crate::Problem::forbidden("this origin is not allowed (CORS_ALLOWED_ORIGINS)").into_response(),
        }
    }
}

/// Whether `req` is a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`).
pub fn is_preflight(req: &Request) -> bool {
    *req.method() == Method::Options && req.header("access-control-request-method").is_some()
}

/// The one CORS wrapper of every browser-facing component: answers a
/// preflight from `CORS_ALLOWED_ORIGINS`, or runs `handler` and adds the CORS
/// headers to its answer when the request's origin is allowed.
pub async fn handle<F, Fut>(req: Request, handler: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let cors = Cors::from_env();
    if is_preflight(&req) {
        return cors.preflight(&req);
    }
    let origin = cors.allowed_origin(&req).map(str::to_owned);
    let response = handler(req).await;
    match origin {
        Some(origin) => cors.with_headers(&origin, response),
        None => response,
    }
}

impl Cors {
    /// `response` with the CORS headers for `origin`.
    pub fn with_headers(&self, origin: &str, mut response: Response) -> Response {
        for (k, v) in self.headers(origin) {
            response.set_header(k, v);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_and_default_to_none() {
        let cors = Cors::parse(" https://app.example.com/ , http://localhost:5173,,");
        assert!(cors.allows("https://app.example.com"));
        assert!(cors.allows("HTTPS://App.Example.com"));
        assert!(cors.allows("http://localhost:5173"));
        assert!(!cors.allows("http://localhost:5174"));
        assert!(!cors.allows("https://app.example.com.evil.test"));
        assert!(!cors.allows("http://app.example.com"));
        assert!(!cors.allows("null"));
        assert!(!Cors::parse("").allows("https://app.example.com"));
        assert!(Cors::parse("*").allows("https://anything.test"));
        assert!(!Cors::parse("*").allows(""));
    }

    fn request(method: Method, headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder();
        builder.method(method).uri("/api/alice/tasks");
        for (k, v) in headers {
            builder.header(*k, *v);
        }
        builder.build()
    }

    #[test]
    fn preflights_answer_allowed_origins_only() {
        let cors = Cors::parse("http://localhost:5173");
        let ask = |origin| request(Method::Options, &[("origin", origin), ("access-control-request-method", "PATCH")]);
        assert!(is_preflight(&ask("http://localhost:5173")));
        assert!(!is_preflight(&request(Method::Options, &[("origin", "http://localhost:5173")])));
        let allowed = cors.preflight(&ask("http://localhost:5173"));
        assert_eq!(*allowed.status(), 204);
        let header = |r: &Response, k: &str| r.header(k).and_then(|v| v.as_str()).map(str::to_owned);
        assert_eq!(header(&allowed, "access-control-allow-origin").as_deref(), Some("http://localhost:5173"));
        assert!(header(&allowed, "access-control-allow-methods").unwrap().contains("PATCH"));
        assert!(header(&allowed, "access-control-allow-headers").unwrap().contains("if-match"));
        let refused = cors.preflight(&ask("https://evil.example"));
        assert_eq!(*refused.status(), 403);
        assert!(header(&refused, "access-control-allow-origin").is_none());
        let answer = cors.with_headers("http://localhost:5173", Response::new(200, ()));
        assert!(header(&answer, "access-control-expose-headers").unwrap().contains("etag"));
    }
}
