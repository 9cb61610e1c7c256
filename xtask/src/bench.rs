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
    series.push(reminder_lateness(&client, run_id)?);
    let notify = env["NOTIFY_SERVICE_URL"].clone();
    series.extend(streams(&client, &notify, &stack, run_id)?);
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

/// 200 reminders due within the same minute: how late each fired (`fired_at` in
/// the reminder event minus its `remind_at`), read back from the audit logs.
fn reminder_lateness(client: &Client, run_id: u32) -> Result<Series> {
    use chrono::{DateTime, SecondsFormat, Utc};
    let users: Vec<String> = (0..20).map(|u| format!("bench-reminder-{run_id}-{u}")).collect();
    let tokens: Vec<String> = users.iter().map(|u| client.token(u)).collect::<Result<_>>()?;
    let minute = Utc::now() + chrono::Duration::seconds(30);
    for i in 0..200usize {
        let remind_at = minute + chrono::Duration::milliseconds(i as i64 * 300);
        let body = json!({
            "title": format!("reminder {i}"),
            "due_at": (remind_at + chrono::Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Millis, true),
            "reminders": [remind_at.to_rfc3339_opts(SecondsFormat::Millis, true)],
        });
        client.create(&users[i % users.len()], &tokens[i % users.len()], &body)?;
    }
    let deadline = Instant::now() + Duration::from_secs(150);
    let instant = |v: &Value| v.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc));
    loop {
        let mut millis = Vec::new();
        for (user, token) in users.iter().zip(&tokens) {
            let page = client.get(&format!("{}/audit/{user}?type=com.todo.reminder.due.v1&limit=500", client.audit), token)?;
            for entry in page["items"].as_array().into_iter().flatten() {
                if let (Some(fired), Some(due)) = (instant(&entry["data"]["fired_at"]), instant(&entry["data"]["remind_at"])) {
                    millis.push((fired - due).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0);
                }
            }
        }
        if millis.len() >= 200 {
            let early = millis.iter().filter(|m| **m < 0.0).count();
            return Ok(Series {
                name: "reminder lateness (fired_at - remind_at)".into(),
                note: format!("200 reminders due within one minute over 20 users; {early} early; {} fired", millis.len()),
                millis,
            });
        }
        if Instant::now() > deadline {
            bail!("only {} of 200 reminders fired within 150 s", millis.len());
        }
        std::thread::sleep(Duration::from_secs(2));
    }
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

/// Open SSE streams for the benchmark: one reader thread per user, which
/// reconnects (with `Last-Event-ID`) when a stream reaches its lifetime and
/// reports every `change` event on `events` until `stop` is set.
struct Streams {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Streams {
    fn open(client: &Client, notify: &str, users: &[String], events: std::sync::mpsc::Sender<(usize, Instant)>) -> Result<Streams> {
        use std::io::BufRead;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let mut handles = Vec::new();
        for (i, user) in users.iter().enumerate() {
            let (url, token) = (format!("{notify}/api/{user}/stream"), client.token(user)?);
            let (stop, events, ready_tx) = (stop.clone(), events.clone(), ready_tx.clone());
            handles.push(std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                let mut last_id = String::new();
                let mut first = true;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut request = agent.get(&url).header("authorization", &format!("Bearer {token}"));
                    if !last_id.is_empty() {
                        request = request.header("last-event-id", &last_id);
                    }
                    let Ok(response) = request.call() else {
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    };
                    let mut reader = std::io::BufReader::new(response.into_body().into_reader());
                    let mut line = String::new();
                    let mut event = String::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        let line = line.trim_end();
                        if let Some(id) = line.strip_prefix("id: ") {
                            last_id = id.to_owned();
                        } else if let Some(name) = line.strip_prefix("event: ") {
                            event = name.to_owned();
                        } else if line.is_empty() && !event.is_empty() {
                            if event == "ready" && first {
                                first = false;
                                let _ = ready_tx.send(());
                            } else if event == "change" {
                                let _ = events.send((i, Instant::now()));
                            }
                            event.clear();
                        }
                    }
                }
            }));
        }
        for _ in users {
            ready_rx.recv_timeout(Duration::from_secs(60)).context("a stream did not open within 60 s")?;
        }
        Ok(Streams { stop, handles })
    }

    /// Stops the readers; each ends at its stream's next line (a heartbeat
    /// or the end of its lifetime), so this does not wait for them.
    fn close(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(self.handles);
    }
}

/// 50 SSE streams (one per user): the CPU they cost while idle (notify-service's
/// wasm host and its daprd, 10 s without streams vs 10 s with them), then the
/// latency API write -> SSE client with them open.
fn streams(client: &Client, notify: &str, stack: &Stack, run_id: u32) -> Result<Vec<Series>> {
    let pids = [stack.pid("host-notify-service").context("no notify host")?, stack.pid("daprd-notify-service").context("no notify daprd")?];
    let window = Duration::from_secs(10);
    let measure = || -> Result<(f64, f64)> {
        let before = (cpu_seconds(pids[0])?, cpu_seconds(pids[1])?);
        std::thread::sleep(window);
        Ok((cpu_seconds(pids[0])? - before.0, cpu_seconds(pids[1])? - before.1))
    };
    std::thread::sleep(Duration::from_secs(3)); // let earlier deliveries settle
    let idle = measure()?;
    let users: Vec<String> = (0..50).map(|u| format!("bench-stream-{run_id}-{u}")).collect();
    let tokens: Vec<String> = users.iter().map(|u| client.token(u)).collect::<Result<_>>()?;
    let (tx, rx) = std::sync::mpsc::channel();
    let streams = Streams::open(client, notify, &users, tx)?;
    std::thread::sleep(Duration::from_secs(1));
    let open = measure()?;
    let secs = window.as_secs_f64();
    let (host, daprd) = ((open.0 - idle.0) / secs, (open.1 - idle.1) / secs);
    let note = format!(
        "CPU over {secs:.0} s: no streams host {:.2} s + daprd {:.2} s; 50 idle streams host {:.2} s + daprd {:.2} s; \
         extra per stream: host {:.2} ms/s + daprd {:.2} ms/s ({:.1}% of a core for 50)",
        idle.0, idle.1, open.0, open.1, host * 1000.0 / 50.0, daprd * 1000.0 / 50.0, (host + daprd) * 100.0
    );
    // The "ms" columns hold the extra CPU milliseconds per second of all 50 streams (host + daprd).
    let cpu = Series { name: "50 idle SSE streams: extra CPU ms per s (host+daprd)".into(), millis: vec![(host + daprd) * 1000.0], note };

    while rx.try_recv().is_ok() {}
    let mut millis = Vec::new();
    for i in 0..100 {
        let u = (i * 7) % users.len();
        let start = Instant::now();
        client.create(&users[u], &tokens[u], &json!({ "title": format!("stream {i}") }))?;
        loop {
            let (who, at) = rx.recv_timeout(Duration::from_secs(30)).context("a change did not reach its stream within 30 s")?;
            if who == u {
                millis.push(at.duration_since(start).as_secs_f64() * 1000.0);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    streams.close();
    let latency = Series {
        name: "real-time sync: POST -> SSE client".into(),
        millis,
        note: "100 sequential creates, 50 streams open (one per user); a stream polls its feed head every 150 ms".into(),
    };
    Ok(vec![latency, cpu])
}

/// CPU seconds (user + system) of a process so far, from /proc/<pid>/stat.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces): state is field 3.
    let rest = stat.rsplit_once(')').context("unexpected /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0) // USER_HZ is 100 on Linux
}
