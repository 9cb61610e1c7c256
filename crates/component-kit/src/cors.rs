//! CORS for browser clients (the task board, a frontend on another origin):
//! the allowed origins come from `CORS_ALLOWED_ORIGINS` (comma-separated; `*`
//! for any; default none).

use std::future::Future;

use spin_sdk::http::{Method, Request, Response};

/// Methods answered to a preflight.
pub const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
/// Request headers a browser may send.
pub const ALLOW_HEADERS: &str = "authorization, content-type, if-match, idempotency-key, last-event-id";
/// Response headers a browser's script may read.
pub const EXPOSE_HEADERS: &str = "etag, location, idempotent-replayed";
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

    /// Adds `Access-Control-Allow-Origin` (and `Vary: Origin`) for an allowed origin.
    pub fn decorate(&self, req: &Request, mut response: Response) -> Response {
        if let Some(origin) = self.allowed_origin(req) {
            for (k, v) in self.headers(origin) {
                response.set_header(k, v);
            }
        }
        response
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

/// Serves `req` with CORS: answers a preflight `OPTIONS` itself, else runs
/// `handler` and adds the headers for an allowed origin.
pub async fn serve<F, Fut>(req: Request, handler: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let cors = Cors::from_env();
    if *req.method() == Method::Options {
        return cors.preflight(&req);
    }
    let origin = cors.allowed_origin(&req).map(str::to_owned);
    let mut response = handler(req).await;
    if let Some(origin) = origin {
        for (k, v) in cors.headers(&origin) {
            response.set_header(k, v);
        }
    }
    response
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
}
