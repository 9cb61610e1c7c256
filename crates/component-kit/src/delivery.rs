//! Deliveries from Dapr (pub/sub messages, job callbacks): who may make them,
//! how to read them, how to answer.

use dapr_http::Dapr;
use spin_sdk::http::{Request, Response};
use todo_domain::TaskEvent;

use crate::{auth, json, Settings};

/// `200 {"status": <s>}`: Dapr's pub/sub answer (`SUCCESS`, or `DROP` to send
/// the message to the dead-letter topic), or a job callback's outcome.
pub fn status(s: &str) -> Response {
    json(200, &serde_json::json!({ "status": s }))
}

/// The `data` of a task-event CloudEvent delivered by Dapr. `Err` is the answer
/// to give: 401 when the caller is not the sidecar, `DROP` when the event can
/// never be read.
pub async fn task_event(req: &Request, dapr: &Dapr, settings: &Settings) -> Result<TaskEvent, Response> {
    auth::dapr_only(req, dapr, settings).await.map_err(crate::Problem::into_response)?;
    serde_json::from_slice::<serde_json::Value>(req.body())
        .map_err(|e| e.to_string())
        .and_then(|ce| serde_json::from_value::<TaskEvent>(ce.get("data").cloned().unwrap_or_default()).map_err(|e| e.to_string()))
        .map_err(|e| {
            crate::telemetry::warn("dropping a task event that cannot be read").error(e).emit();
            status("DROP")
        })
}
