//! The API under load: event delivery, create and list at fixed rates and in a
//! closed loop, and a filtered list over 1,000 tasks.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use super::client::{Client, Users};
use super::load;
use super::Series;

/// Concurrent clients of the closed-loop runs.
pub const CLIENTS: usize = 8;

/// A request of the load runs.
#[derive(Clone, Copy)]
pub enum Op {
    /// Create a task.
    Create,
    /// List a user's tasks (20 seeded, first page of 50).
    List,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::List => "list (20 tasks, limit 50)",
        }
    }

    /// Sends request `seq` as user `user` of `users`; its latency in ms.
    fn send(self, client: &Client, users: &Users, user: usize, seq: usize) -> Result<f64> {
        let (name, token) = users.get(user);
        let start = Instant::now();
        match self {
            Op::Create => client.create(name, token, &json!({ "title": format!("load {seq}") })).map(drop)?,
            Op::List => client.get(&format!("{}/api/{name}/tasks?limit=50", client.api), token).map(drop)?,
        }
        Ok(start.elapsed().as_secs_f64() * 1000.0)
    }
}

/// POST -> the audit service has the event, 20 times in a row.
pub fn event_delivery(client: &Client, run_id: u32) -> Result<Series> {
    let user = format!("bench-delivery-{run_id}");
    let token = client.token(&user)?;
    let audit_url = format!("{}/audit/{user}?limit=500", client.audit);
    let mut millis = Vec::new();
    for i in 0..20 {
        let start = Instant::now();
        client.create(&user, &token, &json!({ "title": format!("delivery {i}") }))?;
        loop {
            let page = client.get(&audit_url, &token)?;
            if page["items"].as_array().map_or(0, Vec::len) > i {
                break;
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("event {i} did not reach the audit service within 30 s");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        millis.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(Series::latency("event delivery: POST -> audit entry", millis, "20 sequential creates, audit polled every 2 ms"))
}

/// A create through MCP (`tools/call add_task`) next to a REST create, 50
/// sequential pairs on one user, interleaved so both see the same machine.
pub fn mcp_add_task(client: &Client, run_id: u32) -> Result<Vec<Series>> {
    let user = format!("bench-mcp-{run_id}");
    let token = client.token(&user)?;
    let (mut rest, mut mcp) = (Vec::new(), Vec::new());
    for i in 0..50 {
        let start = Instant::now();
        client.create(&user, &token, &json!({ "title": format!("rest {i}") }))?;
        rest.push(start.elapsed().as_secs_f64() * 1000.0);
        let start = Instant::now();
        client.mcp_tool(&token, "add_task", &json!({ "title": format!("mcp {i}") }))?;
        mcp.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let note = "50 sequential, interleaved with the other on one user";
    Ok(vec![
        Series::latency("create, sequential: REST POST", rest, note),
        Series::latency("create, sequential: MCP tools/call add_task", mcp, note),
    ])
}

/// Open loop: `rate` requests per second for `window`, each due on its
/// schedule whether or not the earlier ones have answered (64 workers),
/// round-robin over `users`; latency from the intended send time.
pub fn fixed_rate(client: &Client, users: &Users, op: Op, rate: u32, window: Duration) -> Result<Series> {
    let offsets = load::schedule(f64::from(rate), window)?;
    let start = Instant::now();
    let shots = load::open_loop(&offsets, 64, |i| op.send(client, users, i, i));
    let seconds = start.elapsed().as_secs_f64();
    let results = shots.iter().map(|s| s.result.as_ref().map(|_| s.latency_ms()).map_err(|e| anyhow!("{e:#}"))).collect();
    let note =
        format!("{} requests, open loop, over {} users in {seconds:.1} s; latency from the intended send time", offsets.len(), users.len());
    tally(format!("{} at {rate} req/s", op.label()), results, seconds, note)
}

/// Closed loop: [`CLIENTS`] clients, each sending its next request as soon as
/// the last one answered, for `window`. Client `k` uses only users `k`,
/// `k + CLIENTS`, ..., so that two creates never race on one user's ledger
/// (when `users` holds a multiple of [`CLIENTS`]).
pub fn closed_loop(client: &Client, users: &Users, op: Op, window: Duration) -> Result<Series> {
    let (results, seconds) = load::closed_loop(CLIENTS, window, |k, seq| op.send(client, users, k + CLIENTS * seq, seq).map(drop));
    let note = format!("{CLIENTS} clients, closed loop, over {} users for {seconds:.1} s", users.len());
    tally(format!("{}, {CLIENTS} clients, max rate", op.label()), results, seconds, note)
}

/// The series of a load run: latencies of the successes, throughput over
/// `seconds`; an error if every request failed.
pub fn tally(name: String, results: Vec<Result<f64>>, seconds: f64, note: String) -> Result<Series> {
    let mut millis = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(ms) => millis.push(ms),
            Err(e) => errors.push(e),
        }
    }
    let note = match errors.first() {
        None => note,
        Some(_) if millis.is_empty() => bail!("{name}: every request failed, first: {:#}", errors[0]),
        Some(first) => format!("{note}; {} failed, first: {:.120}", errors.len(), format!("{first:#}")),
    };
    Ok(Series { per_second: Some(millis.len() as f64 / seconds), failed: errors.len(), note, ..Series::latency(name, millis, "") })
}

/// List with filters and sort for one user holding 1,000 tasks.
pub fn filtered_list(client: &Client, run_id: u32) -> Result<Series> {
    let user = format!("bench-thousand-{run_id}");
    let token = client.token(&user)?;
    let priorities = ["none", "low", "medium", "high", "urgent"];
    for i in 0..1000 {
        let body = json!({
            "title": format!("task {i} {}", if i % 7 == 0 { "invoice" } else { "chore" }),
            "priority": priorities[i % priorities.len()],
            "tags": [format!("t{}", i % 10)],
            "due_at": format!("2030-01-{:02}T09:00:00Z", 1 + i % 28),
        });
        client.create(&user, &token, &body).with_context(|| format!("seeding task {i}"))?;
    }
    let url = format!("{}/api/{user}/tasks?status=pending&priority=high&priority=urgent&tag=t3&q=chore&sort=due&limit=50", client.api);
    let mut millis = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        client.get(&url, &token)?;
        millis.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(Series::latency("list with filters, 1,000 tasks", millis, "50 sequential requests: status, priority x2, tag, q, sort=due"))
}

/// How many `created` entries audit-service holds for `users`.
pub fn audited(client: &Client, users: &Users) -> Result<usize> {
    let mut count = 0;
    for u in 0..users.len() {
        let (user, token) = users.get(u);
        count += client.audit_entries(user, token, "com.todo.task.created.v1")?.len();
    }
    Ok(count)
}
