//! The task routes: parse the request, let the domain decide, commit, respond.

use chrono::Utc;
use component_kit::{auth, json, Problem};
use dapr_http::{DaprError, StateOp};
use spin_sdk::http::{Params, Request, Response};
use todo_domain::{
    Completion, Created, DomainError, IfMatch, ListQuery, NewTask, OccurrenceRequest, QuickAdd, Scan, StoredTask, Task, TaskEvent, TaskId,
    TaskPatch, UserId,
};

use crate::store::{self, Head, IdempotencyRecord};
use crate::{json_body, outbox, Ctx, MAX_ATTEMPTS};

/// Largest accepted `Idempotency-Key`.
const IDEMPOTENCY_KEY_MAX: usize = 128;

fn task_response(status: u16, task: &Task) -> Response {
    let mut response = json(status, task);
    response.set_header("etag", format!("\"{}\"", task.version));
    response
}

/// `201 Created` for `task`, with its ETag and `Location`.
fn created_response(user: &UserId, task: &Task) -> Response {
    let mut response = task_response(201, task);
    response.set_header("location", format!("/api/{user}/tasks/{}", task.id));
    response
}

fn task_id(params: &Params) -> Result<TaskId, Problem> {
    // An id that is not a UUID names no task: 404, like another user's task.
    params.get("id").unwrap_or_default().parse().map_err(|_| Problem::not_found("no such task"))
}

fn too_contended() -> Problem {
    Problem::new(409, "Conflict", "too many concurrent writes for this user; retry")
}

/// The `Idempotency-Key` header: 1–128 visible ASCII characters.
fn idempotency_key(req: &Request) -> Result<Option<String>, Problem> {
    let Some(value) = req.header("idempotency-key") else { return Ok(None) };
    match value.as_str() {
        Some(key) if !key.is_empty() && key.len() <= IDEMPOTENCY_KEY_MAX && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(key.to_owned()))
        }
        _ => Err(Problem {
            field: Some("Idempotency-Key".into()),
            rule: Some("format"),
            ..Problem::new(400, "Bad Request", "Idempotency-Key must be 1-128 visible ASCII characters")
        }),
    }
}

/// `If-Match`: `None` when absent; a malformed value is a 400.
fn if_match(req: &Request) -> Result<Option<IfMatch>, Problem> {
    let Some(value) = req.header("if-match") else { return Ok(None) };
    IfMatch::parse(value.as_str().unwrap_or_default()).map(Some).map_err(|e| Problem {
        status: 400,
        title: "Bad Request",
        ..Problem::from(e)
    })
}

/// `POST /api/{user_id}/tasks`
pub(crate) async fn create(req: Request, params: Params) -> Result<Response, Problem> {
    create_from(req, params, NewTask::from_json).await
}

/// `POST /api/{user_id}/tasks/quick`: a task from a sentence (`todo_domain::quick`).
pub(crate) async fn quick_create(req: Request, params: Params) -> Result<Response, Problem> {
    create_from(req, params, |body| Ok(QuickAdd::from_json(body, Utc::now())?.task)).await
}

/// `POST /api/{user_id}/tasks/quick/preview`: what the sentence means; writes nothing.
pub(crate) async fn quick_preview(req: Request, params: Params) -> Result<Response, Problem> {
    let ctx = Ctx::new();
    ctx.authenticate(&req, &params).await?;
    let now = Utc::now();
    let parsed = QuickAdd::from_json(json_body(&req)?, now)?;
    Ok(json(200, &serde_json::json!({ "now": now, "task": parsed.fields })))
}

/// A create whose body `parse` turns into the new task.
async fn create_from(req: Request, params: Params, parse: impl FnOnce(&[u8]) -> Result<NewTask, DomainError>) -> Result<Response, Problem> {
    let ctx = Ctx::new();
    let user = ctx.authenticate(&req, &params).await?;
    let idempotency = idempotency_key(&req)?;
    let body = json_body(&req)?;
    let new = parse(body)?;
    let fingerprint = store::fingerprint(body);
    let record_key = idempotency.as_ref().map(|key| store::idempotency_key(&user, key));
    for _ in 0..MAX_ATTEMPTS {
        // One read: the head, and the Idempotency-Key's record when there is one.
        let mut head = store::load_head(&ctx, &user, record_key.as_slice()).await?;
        if let Some(record) = head.extra::<IdempotencyRecord>(0)? {
            return replay(&ctx, &user, record.value, Some(&fingerprint)).await;
        }
        let created = head.ledger.value.create_task(&user, new.clone(), Utc::now());
        let mut ops = Vec::new();
        if let Some(key) = &record_key {
            let record = IdempotencyRecord { task_id: created.task.id, fingerprint: fingerprint.clone() };
            ops.push(StateOp::insert(key, &record).ttl(store::IDEMPOTENCY_TTL_SECS));
        }
        if commit_created(&ctx, &user, &head, ops, &created).await? {
            return Ok(created_response(&user, &created.task));
        }
    }
    Err(too_contended())
}

/// Commits a create (the task, the page it sealed, `ops`) with the head and
/// its event, then publishes. `Ok(false)` when the head changed concurrently.
async fn commit_created(ctx: &Ctx, user: &UserId, head: &Head, mut ops: Vec<StateOp>, created: &Created) -> Result<bool, Problem> {
    ops.push(store::put_task(&created.task));
    if let Some((n, page)) = &created.sealed {
        ops.push(store::put_page(user, *n, page));
    }
    commit(ctx, user, head, &ops, &created.event).await
}

/// The answer to a retried create: the task that `record` names. With
/// `fingerprint`, the body must be unchanged (a client's `Idempotency-Key`);
/// without, the key alone decides (an occurrence record names exactly one
/// task, whatever the body), and a task deleted since is still "already created".
async fn replay(ctx: &Ctx, user: &UserId, record: IdempotencyRecord, fingerprint: Option<&str>) -> Result<Response, Problem> {
    if fingerprint.is_some_and(|f| f != record.fingerprint) {
        return Err(Problem::new(422, "Unprocessable Content", "this Idempotency-Key was used with a different body"));
    }
    let Some(task) = store::load_task(ctx, user, record.task_id).await? else {
        if fingerprint.is_none() {
            return Ok(json(200, &serde_json::json!({ "status": "already_created", "task_id": record.task_id })));
        }
        return Err(Problem::not_found("the task created with this Idempotency-Key was deleted"));
    };
    let mut response = created_response(user, &task.value);
    response.set_header("idempotent-replayed", "true");
    Ok(response)
}

/// `GET /api/{user_id}/tasks`: filters, sort and cursor pagination. Reads the
/// head, the index pages the page needs, and the page's tasks.
pub(crate) async fn list(req: Request, params: Params) -> Result<Response, Problem> {
    let ctx = Ctx::new();
    let user = ctx.authenticate(&req, &params).await?;
    let query = ListQuery::parse(req.query())?;
    let head = store::load_head(&ctx, &user, &[]).await?;
    outbox::flush(&ctx, &user, &head, None).await;
    let mut scan = Scan::new(&query, &head.ledger.value, Utc::now());
    loop {
        let batch = scan.next_batch();
        if batch.is_empty() {
            break;
        }
        for (n, page) in batch.iter().zip(store::load_pages(&ctx, &user, &batch).await?) {
            scan.feed(*n, page);
        }
    }
    let (ids, next_cursor) = scan.finish();
    let (tasks, unreadable) = store::load_tasks(&ctx, &user, &ids).await?;
    let items: Vec<Task> = tasks.into_iter().map(|t| t.task).collect();
    let mut body = serde_json::json!({ "items": items, "next_cursor": next_cursor });
    if !unreadable.is_empty() {
        body["unreadable"] = serde_json::json!(unreadable);
    }
    Ok(json(200, &body))
}

/// `GET /api/{user_id}/tags`: every tag of the user's tasks with its count,
/// from the index.
pub(crate) async fn tags(req: Request, params: Params) -> Result<Response, Problem> {
    let ctx = Ctx::new();
    let user = ctx.authenticate(&req, &params).await?;
    let head = store::load_head(&ctx, &user, &[]).await?;
    let summaries = store::all_summaries(&ctx, &user, &head.ledger.value).await?;
    let items: Vec<_> = todo_domain::index::tag_counts(&summaries)
        .into_iter()
        .map(|(tag, count)| serde_json::json!({ "tag": tag, "count": count }))
        .collect();
    Ok(json(200, &serde_json::json!({ "items": items })))
}

/// `GET /api/{user_id}/tasks/{id}`
pub(crate) async fn get(req: Request, params: Params) -> Result<Response, Problem> {
    let ctx = Ctx::new();
    let user = ctx.authenticate(&req, &params).await?;
    let id = task_id(&params)?;
    let task = store::load_task(&ctx, &user, id).await?.ok_or_else(|| Problem::not_found("no such task"))?;
    Ok(task_response(200, &task.value.task))
}

/// What a write to one task does.
enum Change {
    /// A PUT or PATCH (boxed: it is far larger than a completion).
    Patch(Box<TaskPatch>),
    /// `PATCH .../complete`: toggle, or set (idempotent).
    Complete(Completion),
}

/// `PUT /api/{user_id}/tasks/{id}`: replaces every client-set field.
pub(crate) async fn replace(req: Request, params: Params) -> Result<Response, Problem> {
    change(req, params, |req| Ok(Change::Patch(Box::new(TaskPatch::from(NewTask::from_json(json_body(req)?)?))))).await
}

/// `PATCH /api/{user_id}/tasks/{id}`: changes the fields given.
pub(crate) async fn patch(req: Request, params: Params) -> Result<Response, Problem> {
    change(req, params, |req| Ok(Change::Patch(Box::new(TaskPatch::from_json(json_body(req)?)?)))).await
}

/// `PATCH /api/{user_id}/tasks/{id}/complete`: without a body completes or
/// reopens; with `{"completed": true|false}` sets that state (safe to retry).
pub(crate) async fn complete(req: Request, params: Params) -> Result<Response, Problem> {
    change(req, params, |req| {
        let body = if req.body().is_empty() { None } else { Some(json_body(req)?) };
        Ok(Change::Complete(Completion::from_body(body)?))
    })
    .await
}

/// `series:{user}:{series_id}`: the tombstone of a series ended by
/// `DELETE ...?series=true`; no occurrence of it is created any more.
fn series_key(user: &UserId, series: TaskId) -> String {
    format!("series:{user}:{series}")
}

/// `?series=true|false` of `DELETE` (other parameters are ignored, as before).
fn series_param(req: &Request) -> Result<bool, Problem> {
    let mut series = false;
    for pair in req.query().split('&') {
        if let Some(value) = pair.strip_prefix("series=") {
            series = match value {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(Problem {
                        field: Some("series".into()),
                        rule: Some("format"),
                        ..Problem::new(422, "Unprocessable Content", "series must be true or false")
                    })
                }
            };
        }
    }
    Ok(series)
}

/// `DELETE /api/{user_id}/tasks/{id}[?series=true]`. With `series=true` the
/// task's series also ends: a tombstone, committed with the delete, stops
/// every later occurrence (completed occurrences stay as history).
pub(crate) async fn delete(req: Request, params: Params) -> Result<Response, Problem> {
    let ctx = Ctx::new();
    let user = ctx.authenticate(&req, &params).await?;
    let id = task_id(&params)?;
    let expected = if_match(&req)?;
    let end_series = series_param(&req)?;
    for _ in 0..MAX_ATTEMPTS {
        let (mut head, task, mut page) = load_for_change(&ctx, &user, id).await?;
        check_version(expected.as_ref(), &task)?;
        let series = task.series_id.filter(|_| end_series);
        let now = Utc::now();
        let n = task.page;
        let event = head.ledger.value.delete_task(task, page.as_mut(), now);
        let mut ops = vec![StateOp::Delete { key: store::task_key(&user, id) }];
        if let (Some(n), Some(page)) = (n, &page) {
            ops.push(store::put_page(&user, n, page));
        }
        if let Some(series) = series {
            let tombstone = serde_json::json!({ "ended_at": now, "deleted_task": id });
            ops.push(StateOp::upsert(series_key(&user, series), &tombstone, None));
        }
        if commit(&ctx, &user, &head, &ops, &event).await? {
            return Ok(Response::builder().status(204).build());
        }
    }
    Err(too_contended())
}

/// The head and task `id` (one read), and the sealed index page that holds
/// the task's summary when it is not on the tail; 404 when there is no such task.
async fn load_for_change(ctx: &Ctx, user: &UserId, id: TaskId) -> Result<(Head, StoredTask, Option<todo_domain::IndexPage>), Problem> {
    let head = store::load_head(ctx, user, &[store::task_key(user, id)]).await?;
    let mut task = head.extra::<StoredTask>(0)?.ok_or_else(|| Problem::not_found("no such task"))?.value;
    let page = store::page_of(ctx, user, &head.ledger.value, &mut task).await?;
    Ok((head, task, page))
}

/// Commits `ops` with the head and `event`, then publishes the user's
/// outbox. `Ok(false)` when the head changed concurrently: the caller retries.
async fn commit(ctx: &Ctx, user: &UserId, head: &Head, ops: &[StateOp], event: &TaskEvent) -> Result<bool, Problem> {
    match store::commit(ctx, user, head, ops, event).await {
        Ok(()) => {
            outbox::flush(ctx, user, head, Some(event)).await;
            Ok(true)
        }
        Err(DaprError::Conflict) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// 412 when `If-Match` names no current version of the task (RFC 9110).
fn check_version(expected: Option<&IfMatch>, task: &Task) -> Result<(), Problem> {
    match expected {
        Some(condition) if !condition.matches(task.version) => {
            Err(Problem::new(412, "Precondition Failed", format!("the task is at version {} (ETag \"{}\")", task.version, task.version)))
        }
        _ => Ok(()),
    }
}

/// A write to one task. The caller is authenticated before the body is read,
/// so a stranger learns nothing about the body's rules.
async fn change(req: Request, params: Params, parse: impl FnOnce(&Request) -> Result<Change, Problem>) -> Result<Response, Problem> {
    let ctx = Ctx::new();
    let user = ctx.authenticate(&req, &params).await?;
    let change = parse(&req)?;
    let id = task_id(&params)?;
    let expected = if_match(&req)?;
    for _ in 0..MAX_ATTEMPTS {
        let (mut head, mut task, mut page) = load_for_change(&ctx, &user, id).await?;
        check_version(expected.as_ref(), &task)?;
        let patch = match &change {
            Change::Patch(patch) => TaskPatch::clone(patch),
            Change::Complete(completion) => completion.patch(&task),
        };
        let Some(event) = head.ledger.value.change_task(&mut task, page.as_mut(), patch, Utc::now())? else {
            return Ok(task_response(200, &task));
        };
        let mut ops = vec![store::put_task(&task)];
        if let (Some(n), Some(page)) = (task.page, &page) {
            ops.push(store::put_page(&user, n, page));
        }
        if commit(&ctx, &user, &head, &ops, &event).await? {
            return Ok(task_response(200, &task));
        }
    }
    Err(too_contended())
}

/// `POST /internal/todo/{user_id}/occurrences` (Dapr service invocation from
/// recurring-service): creates the next occurrence of a series once. The
/// record `occurrence:{user}:{series_id}:{occurrence}` (apart from the
/// clients' `Idempotency-Key` records) names the task, so a redelivered or
/// concurrent request gets the task the first one created (201,
/// `idempotent-replayed: true`; `200 already_created` if it was deleted since). A series ended by `DELETE ...?series=true` gets
/// `200 {"status": "series_ended"}` and nothing is created. The tombstone is
/// read in the same bulk read as the ledger (one `SELECT` on both stores, so
/// one snapshot) and the commit is guarded by the ledger's ETag, so a
/// concurrent delete either precedes the check or makes this commit retry.
pub(crate) async fn create_occurrence(req: Request, params: Params) -> Result<Response, Problem> {
    let ctx = Ctx::new();
    auth::dapr_only(&req, &ctx.dapr, &ctx.settings).await?;
    let user = UserId::parse(params.get("user_id").unwrap_or_default())?;
    let body = json_body(&req)?;
    let (request, new) = OccurrenceRequest::from_json(body)?;
    let key = store::occurrence_key(&user, request.series_id, request.occurrence);
    let fingerprint = store::fingerprint(body);
    for _ in 0..MAX_ATTEMPTS {
        // One read: the head, the occurrence's record and the series' tombstone.
        let mut head = store::load_head(&ctx, &user, &[key.clone(), series_key(&user, request.series_id)]).await?;
        if let Some(record) = head.extra::<IdempotencyRecord>(0)? {
            return replay(&ctx, &user, record.value, None).await;
        }
        if head.extra::<serde_json::Value>(1)?.is_some() {
            return Ok(json(200, &serde_json::json!({ "status": "series_ended", "series_id": request.series_id })));
        }
        let created = head.ledger.value.create_occurrence(&user, &request, new.clone(), Utc::now());
        let record = IdempotencyRecord { task_id: created.task.id, fingerprint: fingerprint.clone() };
        if commit_created(&ctx, &user, &head, vec![StateOp::insert(&key, &record)], &created).await? {
            return Ok(created_response(&user, &created.task));
        }
    }
    Err(too_contended())
}
