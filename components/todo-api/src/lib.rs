//! `todo-api`: the HTTP API of the Todo platform and the only writer of task state.
//!
//! Every change commits the task, the user's ledger and the change's event (in
//! the outbox) in one Dapr state transaction, then publishes the event at once.

mod outbox;
mod store;

use chrono::Utc;
use component_kit::{auth, health, json, Problem, Settings};
use dapr_http::{Dapr, DaprError};
use spin_sdk::http::{IntoResponse, Params, Request, Response, Router};
use spin_sdk::http_component;
use todo_domain::{NewTask, UserId};

/// Dapr app-id and CloudEvent `source` of this service.
pub(crate) const APP_ID: &str = "todo-api";
/// Largest accepted request body.
const MAX_BODY: usize = 64 * 1024;
/// Attempts at a write that loses optimistic-concurrency races.
const MAX_ATTEMPTS: usize = 8;

#[http_component]
async fn handle(req: Request) -> impl IntoResponse {
    let mut router = Router::new();
    router.get("/healthz/todo-api", |_: Request, _: Params| health(APP_ID));
    router.post_async("/api/:user_id/tasks", |req, params| respond(create_task(req, params)));
    router.get_async("/api/:user_id/tasks", |req, params| respond(list_tasks(req, params)));
    router.handle_async(req).await
}

/// Shared handles of one request.
struct Ctx {
    dapr: Dapr,
    settings: Settings,
}

impl Ctx {
    fn new() -> Self {
        Ctx { dapr: Dapr::from_env(), settings: Settings::from_env() }
    }

    async fn authenticate(&self, req: &Request, params: &Params) -> Result<UserId, Problem> {
        auth::user(req, params.get("user_id").unwrap_or_default(), &self.dapr, &self.settings).await
    }
}

async fn respond(handler: impl std::future::Future<Output = Result<Response, Problem>>) -> Response {
    handler.await.unwrap_or_else(Problem::into_response)
}

fn json_body(req: &Request) -> Result<&[u8], Problem> {
    let content_type = req.header("content-type").and_then(|v| v.as_str()).unwrap_or_default();
    if !content_type.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/json") {
        return Err(Problem::unsupported_media_type());
    }
    if req.body().len() > MAX_BODY {
        return Err(Problem::new(413, "Content Too Large", format!("the body exceeds {MAX_BODY} bytes")));
    }
    Ok(req.body())
}

/// `POST /api/{user_id}/tasks`
async fn create_task(req: Request, params: Params) -> Result<Response, Problem> {
    let ctx = Ctx::new();
    let user = ctx.authenticate(&req, &params).await?;
    let new = NewTask::from_json(json_body(&req)?)?;
    for _ in 0..MAX_ATTEMPTS {
        let mut ledger = store::load_ledger(&ctx, &user).await?;
        let (task, event) = ledger.value.create_task(&user, new.clone(), Utc::now());
        match store::commit(&ctx, &user, &ledger, &[store::put_task(&task)], &event).await {
            Ok(()) => {
                outbox::flush(&ctx, &user, &ledger.value).await;
                let mut response = json(201, &task);
                response.set_header("location", format!("/api/{}/tasks/{}", user, task.id));
                response.set_header("etag", format!("\"{}\"", task.version));
                return Ok(response);
            }
            Err(DaprError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Problem::new(409, "Conflict", "too many concurrent writes for this user; retry"))
}

/// `GET /api/{user_id}/tasks`
async fn list_tasks(req: Request, params: Params) -> Result<Response, Problem> {
    let ctx = Ctx::new();
    let user = ctx.authenticate(&req, &params).await?;
    let ledger = store::load_ledger(&ctx, &user).await?;
    let tasks = store::load_tasks(&ctx, &user, &ledger.value.tasks).await?;
    outbox::flush(&ctx, &user, &ledger.value).await;
    Ok(json(200, &serde_json::json!({ "items": tasks, "next_cursor": null })))
}
