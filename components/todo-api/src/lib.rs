//! `todo-api`: the HTTP API of the Todo platform and the only writer of task state.
//!
//! Every change commits the task, the user's ledger and the change's event (in
//! the outbox) in one Dapr state transaction, then publishes the event at once
//! (or, when that fails, the relay job does: see `outbox`).

mod outbox;
mod routes;
mod store;

use component_kit::{auth, cors, health, readiness, telemetry, Problem, Routes, Settings};
use dapr_http::Dapr;
use spin_sdk::http::{IntoResponse, Method, Params, Request, Response};
use spin_sdk::http_component;
use todo_domain::UserId;

/// Dapr app-id and CloudEvent `source` of this service.
pub(crate) const APP_ID: &str = "todo-api";
/// Largest accepted request body.
const MAX_BODY: usize = 64 * 1024;
/// Attempts at a write that loses optimistic-concurrency races.
pub(crate) const MAX_ATTEMPTS: usize = 8;

#[http_component]
async fn handle(req: Request) -> impl IntoResponse {
    cors::handle(req, route).await
}

async fn route(req: Request) -> Response {
    telemetry::begin(APP_ID, &req);
    let mut router = Routes::new();
    router
        .get("/healthz/todo-api", |_, _| async { health(APP_ID) })
        .get("/readyz/todo-api", |_, _| readiness(APP_ID))
        .get("/openapi.json", |_, _| async { openapi() })
        .post("/api/:user_id/tasks", |req, params| respond(routes::create(req, params)))
        .get("/api/:user_id/tasks", |req, params| respond(routes::list(req, params)))
        .post("/api/:user_id/tasks/quick", |req, params| respond(routes::quick_create(req, params)))
        .post("/api/:user_id/tasks/quick/preview", |req, params| respond(routes::quick_preview(req, params)))
        .get("/api/:user_id/tags", |req, params| respond(routes::tags(req, params)))
        .get("/api/:user_id/tasks/:id", |req, params| respond(routes::get(req, params)))
        .on(Method::Put, "/api/:user_id/tasks/:id", |req, params| respond(routes::replace(req, params)))
        .on(Method::Patch, "/api/:user_id/tasks/:id", |req, params| respond(routes::patch(req, params)))
        .on(Method::Delete, "/api/:user_id/tasks/:id", |req, params| respond(routes::delete(req, params)))
        .on(Method::Patch, "/api/:user_id/tasks/:id/complete", |req, params| respond(routes::complete(req, params)))
        // Dapr service invocation only (recurring-service): the next occurrence of a series.
        .post("/internal/todo/:user_id/occurrences", |req, params| respond(routes::create_occurrence(req, params)))
        // The Dapr job that publishes outboxes left behind by a failed publish.
        .post(&format!("/job/{}", outbox::RELAY), outbox::relay_job);
    router.handle(req).await
}

/// The OpenAPI document of this API (`specs/contracts/openapi.json`).
fn openapi() -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(include_str!("../../../specs/contracts/openapi.json"))
        .build()
}

/// Shared handles of one request.
pub(crate) struct Ctx {
    pub(crate) dapr: Dapr,
    pub(crate) settings: Settings,
}

impl Ctx {
    fn new() -> Self {
        Ctx { dapr: Dapr::from_env(), settings: Settings::from_env() }
    }

    /// The caller, who must own the path's `user_id`.
    async fn authenticate(&self, req: &Request, params: &Params) -> Result<UserId, Problem> {
        auth::user(req, params.get("user_id").unwrap_or_default(), &self.dapr, &self.settings).await
    }
}

async fn respond(handler: impl std::future::Future<Output = Result<Response, Problem>>) -> Response {
    handler.await.unwrap_or_else(Problem::into_response)
}

/// The body of a JSON request: 415 unless it is JSON, 413 when too large.
pub(crate) fn json_body(req: &Request) -> Result<&[u8], Problem> {
    let content_type = req.header("content-type").and_then(|v| v.as_str()).unwrap_or_default();
    if !content_type.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/json") {
        return Err(Problem::unsupported_media_type());
    }
    if req.body().len() > MAX_BODY {
        return Err(Problem::new(413, "Content Too Large", format!("the body exceeds {MAX_BODY} bytes")));
    }
    Ok(req.body())
}
