//! `reminder-service`: one Dapr job per task reminder, on its own sidecar.
//!
//! It consumes `task-events` in bulk (`/internal/reminder/task-events`) into a
//! projection of each task with reminders (key `reminder:{user}:{task_id}`, see
//! `todo_domain::reminder::Projection`), schedules and cancels the jobs the
//! domain plans, and on `POST /job/{name}` re-checks the projection and
//! publishes `com.todo.reminder.due.v1` on `reminders`. No polling.
//!
//! Order of writes: the projection first (ETag-guarded), jobs only once that
//! write won, so a handler that loses a race (a rebalance, a second replica)
//! never deletes a job the winner keeps. After its cancels a handler re-reads
//! the projection and puts back any cancelled job a newer projection lists.
//! A crash after the write leaves jobs missing; the redelivered event finds
//! the projection at its `seq` and schedules every listed job again
//! (scheduling overwrites, deleting a missing job succeeds).

use chrono::{DateTime, SecondsFormat, Utc};
use component_kit::delivery::{self, Outcome};
use component_kit::{auth, health, readiness, telemetry, Problem, Routes, Settings};
use dapr_http::{Dapr, DaprError, JobRetry, PublishMeta, StateOp, Versioned};
use spin_sdk::http::{IntoResponse, Params, Request, Response};
use spin_sdk::http_component;
use todo_domain::reminder::{self, Firing, JobData, Projection, REMINDERS_TOPIC, REMINDER_DUE_TYPE};
use todo_domain::{TaskEvent, TaskId, UserId};

const APP_ID: &str = "reminder-service";
/// Attempts at a projection write that loses a race.
const MAX_ATTEMPTS: usize = 16;
/// Re-reads (25 ms apart) of a projection that lags the job's event.
const PROJECTION_WAITS: usize = 20;
/// A reminder whose firing fails (broker down, sidecar restarting) is tried
/// again every 2 s for an hour; the scheduler's default gives up after 3 s.
const JOB_RETRY: JobRetry = JobRetry { interval_secs: 2, max_retries: 1800 };

#[http_component]
async fn handle(req: Request) -> impl IntoResponse {
    telemetry::begin(APP_ID, &req);
    let mut router = Routes::new();
    router
        .get("/healthz/reminder-service", |_, _| async { health(APP_ID) })
        .get("/readyz/reminder-service", |_, _| readiness(APP_ID))
        .post("/internal/reminder/task-events", |req, _| task_events(req))
        .post("/job/:name", job);
    router.handle(req).await
}

fn projection_key(user: &UserId, task: TaskId) -> String {
    format!("reminder:{user}:{task}")
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Dapr pub/sub delivery of task events, in bulk: per entry `SUCCESS` once
/// the jobs and the projection match the event (or the event is stale),
/// `DROP` for an event that can never be handled, `RETRY` for a transient
/// failure (delivered again, with the user's later events of the batch).
async fn task_events(req: Request) -> Response {
    let (dapr, settings) = (Dapr::from_env(), Settings::from_env());
    let batch = match delivery::Batch::receive(&req, &dapr, &settings, delivery::task_event).await {
        Ok(batch) => batch,
        Err(answer) => return answer,
    };
    let (dapr, settings) = (&dapr, &settings);
    let outcomes = delivery::each_group(batch.groups(delivery::task_event_user), |group| {
        delivery::in_order(group, move |event| async move {
            match project(dapr, settings, event).await {
                Ok(()) => Outcome::Success,
                Err(e) => {
                    telemetry::warn("reminder projection failed; Dapr will deliver again")
                        .user(&event.user_id)
                        .event(event.event_id)
                        .error(e)
                        .emit();
                    Outcome::Retry
                }
            }
        })
    })
    .await;
    batch.answer(outcomes)
}

async fn project(dapr: &Dapr, settings: &Settings, event: &TaskEvent) -> Result<(), DaprError> {
    if !reminder::concerns(event) {
        return Ok(());
    }
    let store = &settings.state_store;
    let key = projection_key(&event.user_id, event.task.id);
    for _ in 0..MAX_ATTEMPTS {
        let current: Option<Versioned<Projection>> = dapr.get_state(store, &key).await?;
        let (etag, projection) = match current {
            Some(v) => (v.etag, v.value),
            None => (None, Projection::default()),
        };
        let Some(plan) = projection.apply(event, Utc::now()) else {
            // Stale, or a redelivery of the event the projection is at: its
            // jobs may be missing after a crash, so put them back.
            return schedule(dapr, &projection.restore(event, Utc::now())).await;
        };
        let write = match etag {
            Some(etag) => StateOp::upsert(&key, &plan.next, Some(etag)),
            None => StateOp::insert(&key, &plan.next),
        };
        match dapr.transact(store, &[write]).await {
            Err(DaprError::Conflict) => continue,
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        schedule(dapr, &plan.schedule).await?;
        for name in &plan.cancel {
            dapr.delete_job(name).await?;
        }
        if !plan.cancel.is_empty() {
            if let Some(latest) = dapr.get_state::<Projection>(store, &key).await? {
                schedule(dapr, &latest.value.wanted(&plan.cancel, Utc::now())).await?;
            }
        }
        return Ok(());
    }
    Err(DaprError::Conflict)
}

/// Schedules (or overwrites) `jobs` on the sidecar.
async fn schedule(dapr: &Dapr, jobs: &[reminder::JobSpec]) -> Result<(), DaprError> {
    for job in jobs {
        dapr.schedule_job(&job.name, &rfc3339(job.due_time), &job.data, true, JOB_RETRY).await?;
    }
    Ok(())
}

/// A job callback from the sidecar. 2xx finishes the job; anything else
/// makes the scheduler retry it (its failure policy).
async fn job(req: Request, params: Params) -> Response {
    let (dapr, settings) = (Dapr::from_env(), Settings::from_env());
    if let Err(problem) = auth::dapr_only(&req, &dapr, &settings).await {
        return problem.into_response();
    }
    let name = params.get("name").unwrap_or_default().to_owned();
    let data: JobData = match serde_json::from_slice(req.body()) {
        Ok(data) => data,
        Err(e) => {
            telemetry::warn(format!("job {name}: finishing a job whose data cannot be read")).error(e).emit();
            return delivery::status("SKIPPED");
        }
    };
    match fire(&dapr, &settings, &name, &data).await {
        Ok(outcome) => delivery::status(outcome),
        Err(e) => Problem::from(e).into_response(),
    }
}

async fn fire(dapr: &Dapr, settings: &Settings, name: &str, data: &JobData) -> Result<&'static str, DaprError> {
    let store = &settings.state_store;
    let key = projection_key(&data.user_id, data.task_id);
    let mut waits = 0;
    for _ in 0..MAX_ATTEMPTS + PROJECTION_WAITS {
        let current: Option<Versioned<Projection>> = dapr.get_state(store, &key).await?;
        match reminder::on_fire(current.as_ref().map(|v| &v.value), name, data, Utc::now()) {
            // The projection is written before its jobs, so this is a job of
            // a projection that lost a race or a store read lagging behind:
            // wait a little here rather than for the scheduler's retry.
            Firing::NotYetProjected if waits < PROJECTION_WAITS => {
                waits += 1;
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            Firing::NotYetProjected => {
                return Err(DaprError::Status {
                    status: 503,
                    body: format!("job {name}: the task event that scheduled it is not projected yet"),
                })
            }
            Firing::Skip(why) => {
                telemetry::info(format!("job {name}: skipped: {why}")).user(&data.user_id).task(data.task_id).emit();
                return Ok("SKIPPED");
            }
            Firing::Early(at) => {
                dapr.schedule_job(name, &rfc3339(at), data, true, JOB_RETRY).await?;
                return Ok("RESCHEDULED");
            }
            Firing::Fire(due) => {
                let (id, task, user) = (due.event_id.to_string(), due.task_id.to_string(), due.user_id.to_string());
                let meta = PublishMeta { id: &id, event_type: REMINDER_DUE_TYPE, source: APP_ID, subject: &task, partition_key: &user };
                dapr.publish(&settings.pubsub, REMINDERS_TOPIC, &due, &meta).await?;
                let Some(Versioned { value: mut projection, etag }) = current else { unreachable!("on_fire fires only with a projection") };
                projection.mark_fired(name);
                match dapr.transact(store, &[StateOp::upsert(&key, &projection, etag)]).await {
                    Err(DaprError::Conflict) => continue,
                    Err(e) => return Err(e),
                    Ok(()) => return Ok("FIRED"),
                }
            }
        }
    }
    Err(DaprError::Conflict)
}
