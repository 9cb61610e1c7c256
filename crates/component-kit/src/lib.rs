//! What every Todo component shares: settings, authentication of users and of
//! the Dapr sidecar, and `application/problem+json` errors (RFC 9457).

pub mod auth;
pub mod cors;
pub mod delivery;
pub mod jwks;
pub mod log;
pub mod problem;
pub mod settings;
pub mod stream_token;

pub use problem::Problem;
pub use settings::Settings;

use spin_sdk::http::Response;

/// A JSON response with `status`.
pub fn json<T: serde::Serialize>(status: u16, body: &T) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).expect("response bodies serialize"))
        .build()
}

/// The health route's answer: the component's name, for `GET /healthz/<app-id>`.
pub fn health(app_id: &str) -> Response {
    json(200, &serde_json::json!({ "status": "ok", "app_id": app_id }))
}
