//! `cargo xtask chaos`: a bounded load on the real stack while a wasm host,
//! a daprd, the Dapr scheduler and the Kafka broker (and more) are killed and
//! restarted one at a time; afterwards every invariant is checked. With
//! `--replicas 2` every app-id runs two hosts and two sidecars, and one
//! replica at a time is killed (its host or its sidecar) while the other serves.
//!
//! Prints what it checked with the counts, writes the same as Markdown and
//! JSON under `target/chaos/`, and fails if any check failed.

mod checks;
mod load;

use std::collections::HashMap;
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::bootstrap::Tools;
use crate::stack::{self, Stack, Store};
use crate::{build, paths, token};
use checks::{Fault, Observed};
use load::{Api, UserLog, Worker};

/// Users writing at the same time.
const USERS: usize = 6;
/// The processes killed (SIGKILL) and restarted, in order.
const TARGETS: [&str; 6] = ["host-todo-api", "daprd-todo-api", "scheduler", "kafka", "host-audit-service", "daprd-reminder-service"];
/// With replicas: one replica of a process at a time, a host or a sidecar of
/// each consumer and of todo-api, plus the single scheduler and broker.
const REPLICA_TARGETS: [&str; 9] = [
    "host-todo-api",
    "daprd-todo-api-2",
    "scheduler",
    "kafka",
    "host-audit-service-2",
    "daprd-audit-service",
    "daprd-reminder-service-2",
    "host-notify-service",
    "daprd-recurring-service-2",
];
/// How long a killed process stays down.
const DOWN: Duration = Duration::from_secs(5);
/// Calm between two faults.
const CALM: Duration = Duration::from_secs(7);

/// Runs the load and the faults on `store`, then the checks; returns how
/// many checks passed (all of them, or an error).
pub fn run(tools: &Tools, store: Store, replicas: usize) -> Result<u64> {
    build::components()?;
    let mut stack = Stack::start_with(tools, store, stack::Mode::Chaos, false, replicas)?;
    let targets: &[&str] = if replicas > 1 { &REPLICA_TARGETS } else { &TARGETS };
    // The load lasts as long as the faults: a cycle takes about 10 s.
    let cycles = load::CYCLES * targets.len() / TARGETS.len();
    let env: HashMap<String, String> = stack.test_env().into_iter().collect();
    let secret = stack::hs256_secret()?;
    let api = Api::new(env["TODO_API_URL"].clone());
    let run_id = std::process::id();
    let users: Vec<String> = (0..USERS).map(|u| format!("chaos-{run_id}-{u}")).collect();
    let tokens: Vec<String> = users.iter().map(|u| token::sign(u, 7200, secret.as_bytes())).collect::<Result<_>>()?;

    println!(
        "\n== chaos: {USERS} users x {cycles} cycles of 8 writes, {replicas} replica(s) per app-id, killing {} ==",
        targets.join(", ")
    );
    let started = Instant::now();
    let (logs, faults) = std::thread::scope(|scope| {
        let workers: Vec<_> = users
            .iter()
            .zip(&tokens)
            .map(|(user, token)| {
                let worker = Worker::new(&api, user.clone(), token.clone(), cycles);
                scope.spawn(move || worker.run())
            })
            .collect();
        let faults = inject(&mut stack, targets, started);
        let logs: Vec<UserLog> = workers.into_iter().map(|w| w.join().expect("chaos worker")).collect();
        (logs, faults)
    });
    let faults = faults?;
    println!("load done after {:.0} s", started.elapsed().as_secs_f64());

    let audit = Api::new(env["AUDIT_SERVICE_URL"].clone());
    let notify = Api::new(env["NOTIFY_SERVICE_URL"].clone());
    settle(&audit, &users, &tokens, &logs)?;
    let mut topic = kafka_events(tools, &stack.kafka_bootstrap())?;
    let mut observed = Vec::new();
    for (user, token) in users.iter().zip(&tokens) {
        observed.push(Observed {
            audit: pages(&audit, &format!("/audit/{user}"), token, "limit=500", "after")?,
            feed: pages(&notify, &format!("/api/{user}/changes"), token, "limit=500", "after")?,
            tasks: pages(&api, &format!("/api/{user}/tasks"), token, "status=all&limit=200", "cursor")?,
            kafka: topic.remove(user.as_str()).unwrap_or_default(),
        });
    }
    drop(stack);
    let results = checks::all(&logs, &observed, &faults);
    report(store, replicas, &tools.host.describe(), &faults, started, &results)
}

/// Kills and restarts each target in turn, with calm in between.
fn inject(stack: &mut Stack, targets: &[&str], started: Instant) -> Result<Vec<Fault>> {
    std::thread::sleep(CALM);
    let mut faults = Vec::new();
    for &target in targets {
        let killed = Instant::now();
        stack.kill(target)?;
        std::thread::sleep(DOWN);
        stack.restart(target)?;
        let back = Instant::now();
        println!(
            "  t={:>5.1} s  killed {target:<24} ready again after {:.1} s",
            killed.duration_since(started).as_secs_f64(),
            back.duration_since(killed).as_secs_f64()
        );
        faults.push(Fault { target: target.to_owned(), killed, back });
        std::thread::sleep(CALM);
    }
    Ok(faults)
}

/// Waits until every due reminder could have fired and each user's audit log
/// holds at least the expected task events, then a little longer for late
/// copies. It only reads the audit log: an outbox left pending by a fault must
/// reach the consumers through the relay job, not through a request sent here.
fn settle(audit: &Api, users: &[String], tokens: &[String], logs: &[UserLog]) -> Result<()> {
    let last_reminder = logs.iter().flat_map(|l| &l.reminders).map(|(_, at)| *at).max();
    if let Some(wait) = last_reminder.and_then(|at| (at + chrono::Duration::seconds(10) - chrono::Utc::now()).to_std().ok()) {
        println!("waiting {:.0} s for the last reminder to be due", wait.as_secs_f64());
        std::thread::sleep(wait);
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    for ((user, token), log) in users.iter().zip(tokens).zip(logs) {
        let expected = log.writes.len() + log.completed_series.len() + log.reminders.len();
        loop {
            let entries = pages(audit, &format!("/audit/{user}"), token, "limit=500", "after")?;
            if entries.len() >= expected {
                break;
            }
            if Instant::now() > deadline {
                println!("  {user}: only {} of {expected} audit entries after waiting; checking anyway", entries.len());
                break;
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }
    std::thread::sleep(Duration::from_secs(5));
    Ok(())
}

/// Every page of a `{items, next_cursor}` collection.
fn pages(api: &Api, path: &str, token: &str, query: &str, cursor_param: &str) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}?{query}&{cursor_param}={c}"),
            None => format!("{path}?{query}"),
        };
        let (status, page) = api.send("GET", &url, token, &[], None)?;
        if status != 200 {
            bail!("GET {url} answered {status}: {page}");
        }
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(items),
        }
    }
}

/// Every message on `task-events`, read from the beginning, by user.
fn kafka_events(tools: &Tools, bootstrap: &str) -> Result<HashMap<String, Vec<Value>>> {
    let out = Command::new(&tools.java)
        .args(["-Xmx256m", "-cp", &format!("{}/*", tools.kafka_libs.display()), "org.apache.kafka.tools.consumer.ConsoleConsumer"])
        .args(["--bootstrap-server", bootstrap, "--topic", "task-events", "--from-beginning", "--timeout-ms", "10000"])
        .output()
        .context("running Kafka's console consumer")?;
    let mut by_user: HashMap<String, Vec<Value>> = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else { continue };
        if let Some(user) = event["data"]["user_id"].as_str() {
            by_user.entry(user.to_owned()).or_default().push(event);
        }
    }
    if by_user.is_empty() {
        bail!("read no events from task-events:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(by_user)
}

fn report(store: Store, replicas: usize, host: &str, faults: &[Fault], started: Instant, results: &[checks::Check]) -> Result<u64> {
    let mut md = format!(
        "# cargo xtask chaos ({store} store, {replicas} replica(s) per app-id)\n\nwasm host: {host}\n\n| fault | killed at | ready again after |\n|---|---|---|\n"
    );
    for f in faults {
        md.push_str(&format!(
            "| kill -9 {} | t={:.1} s | {:.1} s |\n",
            f.target,
            f.killed.duration_since(started).as_secs_f64(),
            f.back.duration_since(f.killed).as_secs_f64()
        ));
    }
    md.push_str("\n| check | result | counts |\n|---|---|---|\n");
    for c in results {
        md.push_str(&format!("| {} | {} | {} |\n", c.name, if c.passed { "ok" } else { "FAILED" }, c.detail));
    }
    println!("\n{md}");
    let dir = paths::root().join("target/chaos");
    fs::create_dir_all(&dir)?;
    let name = if replicas > 1 { format!("chaos-{store}-replicas{replicas}") } else { format!("chaos-{store}") };
    fs::write(dir.join(format!("{name}.md")), &md)?;
    let json = json!({
        "store": store.to_string(),
        "replicas": replicas,
        "host": host,
        "faults": faults.iter().map(|f| json!({ "target": f.target, "killed_at_s": f.killed.duration_since(started).as_secs_f64(),
            "ready_after_s": f.back.duration_since(f.killed).as_secs_f64() })).collect::<Vec<_>>(),
        "checks": results.iter().map(|c| json!({ "name": c.name, "passed": c.passed, "detail": c.detail })).collect::<Vec<_>>(),
    });
    fs::write(dir.join(format!("{name}.json")), serde_json::to_string_pretty(&json)?)?;
    let failed: Vec<&str> = results.iter().filter(|c| !c.passed).map(|c| c.name).collect();
    if !failed.is_empty() {
        bail!("{} of {} chaos checks failed: {}", failed.len(), results.len(), failed.join("; "));
    }
    println!("xtask chaos: all {} checks passed", results.len());
    Ok(results.len() as u64)
}
