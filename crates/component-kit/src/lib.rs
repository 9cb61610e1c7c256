//! What every Todo component shares: settings, authentication of users and of
//! the Dapr sidecar, and `application/problem+json` errors (RFC 9457).

pub mod auth;
pub mod cors;
pub mod delivery;
pub mod jwks;
pub mod log;
pub mod problem;
pub mod router;
pub mod settings;
pub mod stream_token;
pub mod telemetry;

pub use problem::Problem;
pub use router::Routes;
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

/// The health route's answer: the component's name, for `GET /healthz/<app-id>`
/// (liveness: the component answers).
pub fn health(app_id: &str) -> Response {
    json(200, &serde_json::json!({ "status": "ok", "app_id": app_id }))
}

/// The readiness route's answer, for `GET /readyz/<app-id>`: 200 when the
/// component's Dapr sidecar is up with its components, else a 503 problem.
pub async fn readiness(app_id: &str) -> Response {
    match dapr_http::Dapr::from_env().healthy().await {
        Ok(()) => json(200, &serde_json::json!({ "status": "ready", "app_id": app_id, "sidecar": "ok" })),
        Err(e) => {
            telemetry::warn("not ready: the sidecar is not").error(e).emit();
            Problem::unavailable("the Dapr sidecar is not ready").into_response()
        }
    }
}
