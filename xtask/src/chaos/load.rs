//! The bounded load: each user runs the same script of writes, retrying
//! through faults until every write is settled exactly once.
//!
//! A create carries an `Idempotency-Key`, so its retry returns the task the
//! first attempt made. A change or delete carries `If-Match`; when an attempt
//! was cut off (transport error or 5xx) and the retry then gets 412 (or 404
//! for a delete), the cut-off attempt committed: the worker reads the task to
//! learn its version. Nobody else writes these tasks, so that is unambiguous.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{SecondsFormat, SubsecRound, Utc};
use serde_json::{json, Value};

/// Script repetitions per user (with one replica per app-id; more faults
/// take more cycles, see `chaos::run`).
pub const CYCLES: usize = 6;
/// Pause between two steps of one user.
const PACE: Duration = Duration::from_millis(1200);
/// How long after its creation a reminder is due.
pub const REMIND_AFTER: chrono::Duration = chrono::Duration::seconds(30);
/// How long one operation may keep retrying before it counts as failed.
const SETTLE_WITHIN: Duration = Duration::from_secs(90);

/// How one HTTP attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// An HTTP status.
    Status(u16),
    /// No HTTP answer: refused, reset or timed out.
    Transport(String),
}

/// One HTTP attempt, for the "no 5xx outside a fault" check.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// What was asked, e.g. `PATCH /tasks/{id}/complete`.
    pub what: String,
    /// When it was sent.
    pub sent: Instant,
    /// When its answer (or error) arrived.
    pub done: Instant,
    /// How it ended.
    pub outcome: Outcome,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Status(status) => write!(f, "{status}"),
            Outcome::Transport(error) => write!(f, "no answer: {error}"),
        }
    }
}

impl Attempt {
    /// A 5xx, or no answer at all.
    pub fn unavailable(&self) -> bool {
        match self.outcome {
            Outcome::Status(s) => s >= 500,
            Outcome::Transport(_) => true,
        }
    }
}

/// A write the API accepted, as the event it must produce: the task, the
/// event type's short name and the task's version in the event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Write {
    /// The task written.
    pub task_id: String,
    /// `created`, `updated`, `completed` or `deleted`.
    pub kind: &'static str,
    /// The task's version after the write (before it, for a delete).
    pub version: u64,
}

/// Everything one user's worker did.
#[derive(Debug, Default)]
pub struct UserLog {
    /// Every HTTP attempt.
    pub attempts: Vec<Attempt>,
    /// Every accepted write.
    pub writes: Vec<Write>,
    /// Reminders set: task id and instant (RFC 3339).
    pub reminders: Vec<(String, chrono::DateTime<Utc>)>,
    /// Completed recurring tasks: series id and the completed occurrence.
    pub completed_series: Vec<(String, u64)>,
    /// Operations that did not settle, with why.
    pub failures: Vec<String>,
}

/// Where todo-api is, and how to reach it.
pub struct Api {
    /// todo-api's base URL.
    pub base: String,
    agent: ureq::Agent,
}

impl Api {
    /// A client of todo-api at `base`, with a 10 s timeout per attempt.
    pub fn new(base: String) -> Api {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(10))).build().into();
        Api { base, agent }
    }

    /// Sends one request; `Err` only for a transport error.
    pub fn send(&self, method: &str, path: &str, token: &str, headers: &[(&str, String)], body: Option<&Value>) -> Result<(u16, Value)> {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {token}"));
        for (k, v) in headers {
            request = request.header(*k, v);
        }
        let result = match body {
            Some(body) => self.agent.run(request.header("content-type", "application/json").body(body.to_string())?),
            None => self.agent.run(request.body(())?),
        };
        let mut response = result?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
}

/// One user's worker.
pub struct Worker<'a> {
    api: &'a Api,
    user: String,
    token: String,
    log: UserLog,
    cycles: usize,
}

impl<'a> Worker<'a> {
    /// A worker for `user`, authenticated with `token`, that runs the script `cycles` times.
    pub fn new(api: &'a Api, user: String, token: String, cycles: usize) -> Worker<'a> {
        Worker { api, user, token, log: UserLog::default(), cycles }
    }

    /// Runs the script its number of times and returns what happened.
    pub fn run(mut self) -> UserLog {
        for cycle in 0..self.cycles {
            if let Err(e) = self.cycle(cycle) {
                self.log.failures.push(format!("{} cycle {cycle}: {e:#}", self.user));
            }
        }
        self.log
    }

    /// create A, create a task with a reminder, edit A, create a daily task,
    /// complete it, complete A, create B, delete B.
    fn cycle(&mut self, cycle: usize) -> Result<()> {
        let a = self.create(json!({ "title": format!("chaos {cycle} a"), "priority": "high", "tags": ["chaos"] }))?;
        std::thread::sleep(PACE);
        let now = Utc::now();
        let remind_at = (now + REMIND_AFTER).trunc_subsecs(3); // as sent: milliseconds
        let reminder = self.create(json!({
            "title": format!("chaos {cycle} reminder"),
            "due_at": (now + chrono::Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Millis, true),
            "reminders": [remind_at.to_rfc3339_opts(SecondsFormat::Millis, true)],
        }))?;
        self.log.reminders.push((text(&reminder, "id")?, remind_at));
        std::thread::sleep(PACE);
        let a = self.change("PATCH", &a, "", Some(json!({ "title": format!("chaos {cycle} a edited") })), "updated")?;
        std::thread::sleep(PACE);
        let tomorrow = (now + chrono::Duration::days(1)).date_naive().and_hms_opt(9, 0, 0).context("09:00")?.and_utc();
        let daily = self.create(json!({
            "title": format!("chaos {cycle} daily"),
            "due_at": tomorrow.to_rfc3339_opts(SecondsFormat::Secs, true),
            "recurrence": { "rrule": "FREQ=DAILY" },
        }))?;
        std::thread::sleep(PACE);
        let daily = self.change("PATCH", &daily, "/complete", None, "completed")?;
        let occurrence = daily["occurrence"].as_u64().context("a recurring task without occurrence")?;
        self.log.completed_series.push((text(&daily, "series_id")?, occurrence));
        std::thread::sleep(PACE);
        self.change("PATCH", &a, "/complete", None, "completed")?;
        std::thread::sleep(PACE);
        let b = self.create(json!({ "title": format!("chaos {cycle} b") }))?;
        std::thread::sleep(PACE);
        self.delete(&b)?;
        std::thread::sleep(PACE);
        Ok(())
    }

    /// Sends until an answer other than 5xx or 409 arrives, or
    /// [`SETTLE_WITHIN`] passes. `expected` tells whether that answer's status
    /// is a success, given whether an earlier attempt was cut off (so that it
    /// may have committed); any other answer is an error.
    fn settle(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&Value>,
        expected: impl Fn(u16, bool) -> bool,
    ) -> Result<(u16, Value)> {
        let deadline = Instant::now() + SETTLE_WITHIN;
        let mut cut_off = false;
        let mut backoff = Duration::from_millis(200);
        loop {
            let sent = Instant::now();
            let result = self.api.send(method, &format!("/api/{}{path}", self.user), &self.token, headers, body);
            let outcome = match &result {
                Ok((status, _)) => Outcome::Status(*status),
                Err(e) => Outcome::Transport(format!("{e:#}")),
            };
            let what = format!("{method} {}", path.split('/').filter(|s| s.len() < 30).collect::<Vec<_>>().join("/"));
            let attempt = Attempt { what, sent, done: Instant::now(), outcome };
            let unavailable = attempt.unavailable();
            self.log.attempts.push(attempt);
            match result {
                Ok((status, json)) if !unavailable && status != 409 => {
                    if expected(status, cut_off) {
                        return Ok((status, json));
                    }
                    bail!("{method} {path} answered {status}: {json}");
                }
                _ => {}
            }
            cut_off |= unavailable;
            if Instant::now() > deadline {
                let last = self.log.attempts.last().map(|a| a.outcome.to_string()).unwrap_or_default();
                bail!("{method} {path} did not settle within {} s (last: {last})", SETTLE_WITHIN.as_secs());
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    fn create(&mut self, body: Value) -> Result<Value> {
        let key = uuid::Uuid::now_v7().to_string();
        let (_, task) = self.settle("POST", "/tasks", &[("idempotency-key", key)], Some(&body), |status, _| status == 201)?;
        self.accept(&task, "created")?;
        Ok(task)
    }

    /// PATCH (with `suffix` `""` or `/complete`) under `If-Match`.
    fn change(&mut self, method: &str, task: &Value, suffix: &str, body: Option<Value>, kind: &'static str) -> Result<Value> {
        let id = text(task, "id")?;
        let version = task["version"].as_u64().context("a task without version")?;
        let path = format!("/tasks/{id}{suffix}");
        let if_match = [("if-match", format!("\"{version}\""))];
        let (status, json) =
            self.settle(method, &path, &if_match, body.as_ref(), |status, cut_off| status == 200 || (status == 412 && cut_off))?;
        let changed = if status == 412 { self.read(&id)? } else { json };
        if changed["version"].as_u64() != Some(version + 1) {
            bail!("{method} {path}: expected version {} after the change, found {}", version + 1, changed["version"]);
        }
        self.accept(&changed, kind)?;
        Ok(changed)
    }

    fn delete(&mut self, task: &Value) -> Result<()> {
        let id = text(task, "id")?;
        let version = task["version"].as_u64().context("a task without version")?;
        let path = format!("/tasks/{id}");
        let if_match = [("if-match", format!("\"{version}\""))];
        self.settle("DELETE", &path, &if_match, None, |status, cut_off| status == 204 || (status == 404 && cut_off))?;
        self.log.writes.push(Write { task_id: id, kind: "deleted", version });
        Ok(())
    }

    fn read(&mut self, id: &str) -> Result<Value> {
        let (_, task) = self.settle("GET", &format!("/tasks/{id}"), &[], None, |status, _| status == 200)?;
        Ok(task)
    }

    fn accept(&mut self, task: &Value, kind: &'static str) -> Result<()> {
        let version = task["version"].as_u64().context("a task without version")?;
        self.log.writes.push(Write { task_id: text(task, "id")?, kind, version });
        Ok(())
    }
}

/// A string field of `value`.
pub fn text(value: &Value, field: &str) -> Result<String> {
    value[field].as_str().map(str::to_owned).with_context(|| format!("no `{field}` in {value}"))
}
