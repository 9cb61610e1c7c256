//! `cargo xtask bench`: latency and throughput of the real local stack.
//!
//! Prints one table and writes it as Markdown and JSON under `target/bench/`.
//! Numbers are measurements of this machine, not assertions.

use std::fs;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::bootstrap::Tools;
use crate::stack::{self, Stack, Store, APPS};
use crate::{build, paths, token};

/// One measured series.
struct Series {
    name: String,
    millis: Vec<f64>,
    note: String,
}

impl Series {
    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.millis.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
        sorted.get(rank).copied().unwrap_or(f64::NAN)
    }
}

struct Client {
    agent: ureq::Agent,
    api: String,
    audit: String,
    secret: String,
}

impl Client {
    fn token(&self, user: &str) -> Result<String> {
        token::sign(user, 3600, self.secret.as_bytes())
    }

    fn create(&self, user: &str, token: &str, body: &Value) -> Result<Value> {
        let mut response = self
            .agent
            .post(format!("{}/api/{user}/tasks", self.api))
            .header("authorization", &format!("Bearer {token}"))
            .send_json(body)?;
        if response.status() != 201 {
            bail!("create answered {}: {}", response.status(), response.body_mut().read_to_string()?);
        }
        Ok(response.body_mut().read_json()?)
    }

    fn get(&self, url: &str, token: &str) -> Result<Value> {
        let mut response = self.agent.get(url).header("authorization", &format!("Bearer {token}")).call()?;
        if response.status() != 200 {
            bail!("GET {url} answered {}", response.status());
        }
        Ok(response.body_mut().read_json()?)
    }
}

/// Runs the benchmarks on `store` and writes the report.
pub fn run(tools: &Tools, store: Store) -> Result<()> {
    build::components()?;
    let stack = Stack::start(tools, store, stack::Mode::Bench)?;
    let env: std::collections::HashMap<String, String> = stack.test_env().into_iter().collect();
    let secret = stack::dev_secret(&paths::root().join("dapr/secrets.dev.json"), "jwt-hs256-secret")?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let client = Client { agent, api: env["TODO_API_URL"].clone(), audit: env["AUDIT_SERVICE_URL"].clone(), secret };
    let run_id = std::process::id();

    let mut series = vec![event_delivery(&client, run_id)?];
    series.push(fixed_rate(&client, &format!("bench-create-{run_id}"), 20, 200, true)?);
    series.push(fixed_rate(&client, &format!("bench-list-{run_id}"), 20, 200, false)?);
    series.push(filtered_list(&client, run_id)?);
    drop(stack);
    report(store, &series)
}

/// POST -> the audit service has the event, 20 times in a row.
fn event_delivery(client: &Client, run_id: u32) -> Result<Series> {
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
    Ok(Series { name: "event delivery: POST -> audit entry".into(), millis, note: "20 sequential creates, audit polled every 2 ms".into() })
}

/// `count` creates (or lists) at `rate` per second, open loop, over 10 users.
fn fixed_rate(client: &Client, prefix: &str, rate: u32, count: u32, create: bool) -> Result<Series> {
    let users: Vec<String> = (0..10).map(|u| format!("{prefix}-{u}")).collect();
    let tokens: Vec<String> = users.iter().map(|u| client.token(u)).collect::<Result<_>>()?;
    if !create {
        for (user, token) in users.iter().zip(&tokens) {
            for i in 0..20 {
                client.create(user, token, &json!({ "title": format!("seed {i}"), "priority": "high" }))?;
            }
        }
    }
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = Instant::now();
    let results: Vec<Result<f64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..count)
            .map(|i| {
                let (user, token) = (&users[i as usize % users.len()], &tokens[i as usize % users.len()]);
                scope.spawn(move || {
                    let due = start + interval * i;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let sent = Instant::now();
                    if create {
                        client.create(user, token, &json!({ "title": format!("rate {i}") }))?;
                    } else {
                        client.get(&format!("{}/api/{user}/tasks?limit=50", client.api), token)?;
                    }
                    Ok(sent.elapsed().as_secs_f64() * 1000.0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("bench thread")).collect()
    });
    let millis = results.into_iter().collect::<Result<Vec<f64>>>()?;
    let seconds = start.elapsed().as_secs_f64();
    let what = if create { "create" } else { "list (20 tasks, limit 50)" };
    Ok(Series {
        name: format!("{what} at {rate} req/s"),
        note: format!("{count} requests over 10 users in {seconds:.1} s ({:.1} req/s achieved)", f64::from(count) / seconds),
        millis,
    })
}

/// List with filters and sort for one user holding 1,000 tasks.
fn filtered_list(client: &Client, run_id: u32) -> Result<Series> {
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
    Ok(Series { name: "list with filters, 1,000 tasks".into(), millis, note: "50 sequential requests: status, priority x2, tag, q, sort=due".into() })
}

fn report(store: Store, series: &[Series]) -> Result<()> {
    let dir = paths::root().join("target/bench");
    fs::create_dir_all(&dir)?;
    let mut md = format!("# cargo xtask bench ({store} store)\n\n| measure | n | p50 ms | p95 ms | p99 ms | max ms | notes |\n|---|---|---|---|---|---|---|\n");
    let mut rows = Vec::new();
    for s in series {
        let max = s.millis.iter().copied().fold(0.0, f64::max);
        md.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |\n",
            s.name,
            s.millis.len(),
            s.percentile(50.0),
            s.percentile(95.0),
            s.percentile(99.0),
            max,
            s.note
        ));
        rows.push(json!({ "name": s.name, "n": s.millis.len(), "p50_ms": s.percentile(50.0), "p95_ms": s.percentile(95.0),
            "p99_ms": s.percentile(99.0), "max_ms": max, "note": s.note }));
    }
    md.push_str("\n| component | .wasm bytes |\n|---|---|\n");
    let mut sizes = Vec::new();
    for app in APPS {
        let wasm = paths::root().join(format!("target/wasm32-wasip2/release/{}.wasm", app.replace('-', "_")));
        let bytes = fs::metadata(&wasm)?.len();
        md.push_str(&format!("| {app} | {bytes} |\n"));
        sizes.push(json!({ "component": app, "bytes": bytes }));
    }
    println!("\n{md}");
    fs::write(dir.join(format!("bench-{store}.md")), &md)?;
    fs::write(
        dir.join(format!("bench-{store}.json")),
        serde_json::to_string_pretty(&json!({ "store": store.to_string(), "series": rows, "wasm": sizes }))?,
    )?;
    println!("written to {}", dir.display());
    Ok(())
}
