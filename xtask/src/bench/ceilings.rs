//! The ceilings: what the building blocks do on their own, measured in the
//! same run against the same sidecars and store, so that each target can be
//! read as a ratio to what is possible on this machine at this moment.
//!
//! - a 2-upsert state transaction straight to todo-api's daprd (the commit of
//!   a create: task and index in one transaction), sequential and 8 clients,
//!   with the CPU of the whole stack per transaction;
//! - a publish straight to todo-api's daprd (to `task-events-dlq`, which no
//!   local service consumes), sequential and 8 clients;
//! - a bulk get of 50 keys (what a page of 50 needs at least), sequential;
//! - an empty request to the wasm host (`GET /healthz/todo-api`).

use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};

use super::api::tally;
use super::load::{closed_loop, sequential};
use super::{Bench, Series};

/// A ceiling's value in this run.
pub struct Ceiling {
    /// Stable key, named by [`super::targets::Target::ceiling`].
    pub key: &'static str,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
    /// Which measurement it comes from.
    pub from: String,
}

/// The ceilings of one run, and the series they come from.
pub struct Ceilings {
    /// Every ceiling.
    pub rows: Vec<Ceiling>,
}

impl Ceilings {
    /// The value of `key`, if it was measured.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.rows.iter().find(|c| c.key == key).map(|c| c.value)
    }
}

/// Sequential requests per ceiling.
const SEQUENTIAL: usize = 200;

/// A value the size of a task document.
fn task_like(k: usize, seq: usize) -> Value {
    json!({
        "id": format!("0190c0de-0000-7000-8000-{k:06}{seq:06}"), "user_id": format!("bench-ceiling-{k}"),
        "title": format!("ceiling {seq}"), "description": "", "priority": "none", "tags": [], "due_at": null,
        "time_zone": "UTC", "reminders": [], "recurrence": null, "completed": false, "completed_at": null,
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "version": 1,
    })
}

/// Measures every ceiling; returns them and their series.
pub fn measure(bench: &Bench) -> Result<(Ceilings, Vec<Series>)> {
    let client = bench.client;
    let state = format!("{}/v1.0/state/statestore", client.dapr);
    let txn = |k: usize, seq: usize| -> Result<()> {
        let key = |part: &str| format!("bench-ceiling-{k}-{}-{part}", seq % 50);
        let ops = json!({ "operations": [
            { "operation": "upsert", "request": { "key": key("task"), "value": task_like(k, seq) } },
            { "operation": "upsert", "request": { "key": key("index"), "value": { "ids": [task_like(k, seq)["id"]], "seq": seq } } },
        ]});
        client.post_ok(&format!("{state}/transaction"), &ops).map(drop)
    };
    let publish_url = |k: usize| format!("{}/v1.0/publish/pubsub/task-events-dlq?metadata.partitionKey=bench-ceiling-{k}", client.dapr);
    let publish = |k: usize, seq: usize| client.post_ok(&publish_url(k), &json!({ "ceiling": seq, "data": task_like(k, seq) })).map(drop);
    let healthz = |_: usize, _: usize| client.get_ok(&format!("{}/healthz/todo-api", client.api));
    let window = bench.window(5);
    let note_seq = format!("{SEQUENTIAL} sequential requests");
    let note_closed = |seconds: f64| format!("8 clients, closed loop, {seconds:.1} s");

    let mut series = Vec::new();
    let txn_seq = Series::latency(
        "ceiling: 2-upsert state transaction to todo-api's daprd, sequential",
        sequential(SEQUENTIAL, |i| txn(99, i))?,
        &note_seq,
    );
    let meter = bench.meter();
    let (results, seconds) = closed_loop(8, window, txn);
    let (usage, _) = bench.settle(&meter, Duration::from_secs(60));
    let txn_8 = tally("ceiling: 2-upsert state transaction to todo-api's daprd, 8 clients".into(), results, seconds, note_closed(seconds))?;
    let cpu_per_txn = bench.net_cpu_ms(&usage, txn_8.millis.len());

    let pub_seq =
        Series::latency("ceiling: publish to todo-api's daprd, sequential", sequential(SEQUENTIAL, |i| publish(99, i))?, &note_seq);
    let (results, seconds) = closed_loop(8, window, publish);
    let pub_8 = tally("ceiling: publish to todo-api's daprd, 8 clients".into(), results, seconds, note_closed(seconds))?;

    let keys: Vec<String> = (0..50).map(|i| format!("bench-ceiling-99-{i}-task")).collect();
    let bulk = |_: usize| client.post_ok(&format!("{state}/bulk"), &json!({ "keys": keys, "parallelism": 10 })).map(drop);
    let bulk_seq =
        Series::latency("ceiling: bulk get of 50 keys from todo-api's daprd, sequential", sequential(SEQUENTIAL, bulk)?, &note_seq);

    let health_seq =
        Series::latency("ceiling: GET /healthz/todo-api (wasm host), sequential", sequential(SEQUENTIAL, |i| healthz(0, i))?, &note_seq);
    let (results, seconds) = closed_loop(8, window, healthz);
    let health_8 = tally("ceiling: GET /healthz/todo-api (wasm host), 8 clients".into(), results, seconds, note_closed(seconds))?;

    let row = |key, value, unit, from: &Series| Ceiling { key, value, unit, from: from.name.clone() };
    let rows = vec![
        row("txn_1_client_p50", txn_seq.percentile(50.0), "ms", &txn_seq),
        row("txn_1_client_p95", txn_seq.percentile(95.0), "ms", &txn_seq),
        row("txn_1_client_p99", txn_seq.percentile(99.0), "ms", &txn_seq),
        row("txn_8_clients_rps", txn_8.per_second.unwrap_or(f64::NAN), "req/s", &txn_8),
        row("txn_8_clients_p50", txn_8.percentile(50.0), "ms", &txn_8),
        Ceiling {
            key: "cpu_per_txn",
            value: cpu_per_txn,
            unit: "ms",
            from: format!("{}: stack CPU (net of idle) per transaction, {:.2} CPU s gross", txn_8.name, usage.total()),
        },
        row("publish_1_client_p50", pub_seq.percentile(50.0), "ms", &pub_seq),
        row("publish_1_client_p95", pub_seq.percentile(95.0), "ms", &pub_seq),
        row("publish_8_clients_rps", pub_8.per_second.unwrap_or(f64::NAN), "req/s", &pub_8),
        Ceiling {
            key: "txn_publish_1_client_p50",
            value: txn_seq.percentile(50.0) + pub_seq.percentile(50.0),
            unit: "ms",
            from: "transaction p50 + publish p50, sequential: the two sidecar calls of a create".into(),
        },
        Ceiling {
            key: "event_path_p95",
            value: 2.0 * txn_seq.percentile(95.0) + pub_seq.percentile(95.0),
            unit: "ms",
            from: "2 x transaction p95 + publish p95, sequential: the write's commit, its publish, the consumer's commit".into(),
        },
        row("bulk_get_50_p95", bulk_seq.percentile(95.0), "ms", &bulk_seq),
        row("healthz_1_client_p50", health_seq.percentile(50.0), "ms", &health_seq),
        row("healthz_1_client_p99", health_seq.percentile(99.0), "ms", &health_seq),
        row("healthz_8_clients_rps", health_8.per_second.unwrap_or(f64::NAN), "req/s", &health_8),
    ];
    series.extend([txn_seq, txn_8, pub_seq, pub_8, bulk_seq, health_seq, health_8]);
    Ok((Ceilings { rows }, series))
}
