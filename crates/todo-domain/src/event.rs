//! Task lifecycle events, as published on the `task-events` topic.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{EventId, Task, UserId};

/// Kafka topic of task lifecycle events.
pub const TASK_EVENTS_TOPIC: &str = "task-events";

/// The kind of a task lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// A task was created.
    #[serde(rename = "com.todo.task.created.v1")]
    Created,
    /// A task changed (including being reopened).
    #[serde(rename = "com.todo.task.updated.v1")]
    Updated,
    /// A task was completed.
    #[serde(rename = "com.todo.task.completed.v1")]
    Completed,
    /// A task was deleted.
    #[serde(rename = "com.todo.task.deleted.v1")]
    Deleted,
}

impl EventType {
    /// The CloudEvent `type` attribute.
    pub fn cloudevent_type(self) -> &'static str {
        match self {
            EventType::Created => "com.todo.task.created.v1",
            EventType::Updated => "com.todo.task.updated.v1",
            EventType::Completed => "com.todo.task.completed.v1",
            EventType::Deleted => "com.todo.task.deleted.v1",
        }
    }
}

/// The `data` of a task lifecycle CloudEvent.
///
/// `seq` increases by one per event of the same user, so a consumer can order
/// a user's events and notice a gap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEvent {
    /// Also the CloudEvent `id`.
    pub event_id: EventId,
    /// Also the CloudEvent `type`.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The owner of the task; also the Kafka partition key.
    pub user_id: UserId,
    /// Per-user sequence number, starting at 1.
    pub seq: u64,
    /// When the change happened.
    pub time: DateTime<Utc>,
    /// The task after the change (the last state, for a delete).
    pub task: Task,
    /// For `updated` and `completed` events: the fields that changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
}
