//! `recurring-service`: completing a recurring task creates its next occurrence.
//!
//! It consumes `task-events` in bulk (`/internal/recurring/task-events`, Dapr
//! subscription `recurring-task-events`). On `com.todo.task.completed.v1` of a
//! recurring task, the domain (`todo_domain::occurrence`) computes the next
//! occurrence, and the service asks `todo-api` to create it through Dapr
//! service invocation (`POST /internal/todo/{user_id}/occurrences`). It keeps
//! no state: the request is a function of the event (the due date counts from
//! the event's `completed_at`, never from the clock), and todo-api creates it
//! under the occurrence record `occurrence:{user}:{series_id}:{occurrence}`, so a
//! redelivery, a concurrent delivery or a re-completion creates nothing more.

use component_kit::delivery::{self, Outcome};
use component_kit::{health, readiness, telemetry, Routes, Settings};
use dapr_http::Dapr;
use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;
use todo_domain::{EventType, OccurrenceRequest, TaskEvent};

const APP_ID: &str = "recurring-service";
/// The Dapr app-id of the only writer of task state.
const TODO_API: &str = "todo-api";

#[http_component]
async fn handle(req: Request) -> impl IntoResponse {
    telemetry::begin(APP_ID, &req);
    let mut router = Routes::new();
    router
        .get("/healthz/recurring-service", |_, _| async { health(APP_ID) })
        .get("/readyz/recurring-service", |_, _| readiness(APP_ID))
        .post("/internal/recurring/task-events", |req, _| task_events(req));
    router.handle(req).await
}

/// Dapr pub/sub delivery of task events, in bulk: per entry `SUCCESS` once
/// the next occurrence exists (or none is due), `DROP` for an event or
/// request that can never succeed, `RETRY` for a transient failure (Dapr
/// delivers it again, bounded, with the user's later events of the batch).
async fn task_events(req: Request) -> Response {
    let (dapr, settings) = (Dapr::from_env(), Settings::from_env());
    let batch = match delivery::Batch::receive(&req, &dapr, &settings, delivery::task_event).await {
        Ok(batch) => batch,
        Err(answer) => return answer,
    };
    let dapr = &dapr;
    let outcomes = delivery::each_group(batch.groups(delivery::task_event_user), |group| {
        delivery::in_order(group, move |event| next_occurrence(dapr, event))
    })
    .await;
    batch.answer(outcomes)
}

/// Creates the next occurrence of a completed recurring task.
async fn next_occurrence(dapr: &Dapr, event: &TaskEvent) -> Outcome {
    if event.event_type != EventType::Completed {
        return Outcome::Success;
    }
    let request = match OccurrenceRequest::next_of(&event.task) {
        Ok(Some(request)) => request,
        Ok(None) => return Outcome::Success,
        Err(end) => {
            eprintln!(
                "series {} of user {} ends after occurrence {}: {end}",
                event.task.series_id.unwrap_or(event.task.id),
                event.user_id,
                event.task.occurrence.unwrap_or(1)
            );
            return Outcome::Success;
        }
    };
    let method = format!("internal/todo/{}/occurrences", dapr_http::encode(event.user_id.as_str()));
    let refused = |what: &str, code: u16, body: &[u8]| {
        telemetry::warn(format!("todo-api answered {code} for occurrence {} of {}: {what}", request.occurrence, request.series_id))
            .user(&event.user_id)
            .task(event.task.id)
            .event(event.event_id)
            .error(String::from_utf8_lossy(body))
            .emit();
    };
    match dapr.invoke_post(TODO_API, &method, &request).await {
        Ok((200..=299, _)) => Outcome::Success,
        Ok((code @ (400 | 413 | 415 | 422), body)) => {
            refused("dropping the event", code, &body);
            Outcome::Drop
        }
        Ok((code, body)) => {
            refused("retrying", code, &body);
            Outcome::Retry
        }
        Err(e) => {
            telemetry::warn("todo-api cannot be reached; retrying").user(&event.user_id).event(event.event_id).error(e).emit();
            Outcome::Retry
        }
    }
}
