//! Real-time sync: the CPU cost of idle SSE streams and the latency API write
//! -> SSE client.

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::client::{Client, Users};
use super::{cpu, load, Bench, Series};
use crate::stack::Stack;

/// A `change` event as a stream reader saw it: the user's index, the task's
/// id and when it arrived.
type Change = (usize, String, Instant);

/// Open SSE streams for the benchmark: one reader thread per user, which
/// reconnects (with `Last-Event-ID`) when a stream reaches its lifetime and
/// reports every `change` event on `events` until `stop` is set.
struct Streams {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl Streams {
    /// Opens one stream for each of the first `count` users and waits until each has said `ready`.
    fn open(client: &Client, users: &Users, count: usize, events: Sender<Change>) -> Result<Streams> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut handles = Vec::new();
        for i in 0..count {
            let (user, token) = users.get(i);
            let (url, token) = (format!("{}/api/{user}/stream", client.notify), token.to_owned());
            let (stop, events, ready_tx) = (stop.clone(), events.clone(), ready_tx.clone());
            handles.push(std::thread::spawn(move || read_stream(&url, &token, i, &stop, &events, &ready_tx)));
        }
        for _ in 0..count {
            ready_rx.recv_timeout(Duration::from_secs(60)).context("a stream did not open within 60 s")?;
        }
        Ok(Streams { stop, handles })
    }

    /// Stops the readers; each ends at its stream's next line (a heartbeat
    /// or the end of its lifetime), so this does not wait for them.
    fn close(self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.handles);
    }
}

/// Reads the stream of user `i` until `stop`, reconnecting as needed: sends
/// `()` on `ready` at the first `ready` event, then `(i, task id, now)` on
/// `events` at every `change`.
fn read_stream(url: &str, token: &str, i: usize, stop: &AtomicBool, events: &Sender<Change>, ready: &Sender<()>) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut last_id = String::new();
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let mut request = agent.get(url).header("authorization", &format!("Bearer {token}"));
        if !last_id.is_empty() {
            request = request.header("last-event-id", &last_id);
        }
        let Ok(response) = request.call() else {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        let mut reader = std::io::BufReader::new(response.into_body().into_reader());
        let mut line = String::new();
        let (mut event, mut data) = (String::new(), String::new());
        while !stop.load(Ordering::Relaxed) {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let line = line.trim_end();
            if let Some(id) = line.strip_prefix("id: ") {
                last_id = id.to_owned();
            } else if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_owned();
            } else if let Some(part) = line.strip_prefix("data: ") {
                data.push_str(part);
            } else if line.is_empty() && !event.is_empty() {
                if event == "ready" && first {
                    first = false;
                    let _ = ready.send(());
                } else if event == "change" {
                    let task = serde_json::from_str::<Value>(&data).ok().and_then(|d| d["task_id"].as_str().map(str::to_owned));
                    let _ = events.send((i, task.unwrap_or_default(), Instant::now()));
                }
                event.clear();
                data.clear();
            } else if line.is_empty() {
                data.clear();
            }
        }
    }
}

/// 50 SSE streams (one per user): the CPU they cost while idle (notify-service's
/// wasm host and its daprd, 10 s without streams vs 10 s with them), then the
/// latency API write -> SSE client with them open.
pub fn measure(client: &Client, stack: &Stack, run_id: u32) -> Result<Vec<Series>> {
    let pids = [stack.pid("host-notify-service").context("no notify host")?, stack.pid("daprd-notify-service").context("no notify daprd")?];
    let window = Duration::from_secs(10);
    let measure = || -> Result<(f64, f64)> {
        let before = (cpu::seconds_of(pids[0])?, cpu::seconds_of(pids[1])?);
        std::thread::sleep(window);
        Ok((cpu::seconds_of(pids[0])? - before.0, cpu::seconds_of(pids[1])? - before.1))
    };
    std::thread::sleep(Duration::from_secs(3)); // let earlier deliveries settle
    let idle = measure()?;
    let users = Users::new(client, &format!("bench-stream-{run_id}"), 50)?;
    let (tx, rx) = mpsc::channel();
    let streams = Streams::open(client, &users, users.len(), tx)?;
    std::thread::sleep(Duration::from_secs(1));
    let open = measure()?;
    let secs = window.as_secs_f64();
    let (host, daprd) = ((open.0 - idle.0) / secs, (open.1 - idle.1) / secs);
    let note = format!(
        "CPU over {secs:.0} s: no streams host {:.2} s + daprd {:.2} s; 50 idle streams host {:.2} s + daprd {:.2} s; \
         extra per stream: host {:.2} ms/s + daprd {:.2} ms/s ({:.1}% of a core for 50)",
        idle.0,
        idle.1,
        open.0,
        open.1,
        host * 1000.0 / 50.0,
        daprd * 1000.0 / 50.0,
        (host + daprd) * 100.0
    );
    // Not a latency: the extra CPU milliseconds per second of all 50 streams (host + daprd).
    let cpu = Series {
        latency: false,
        ..Series::latency("50 idle SSE streams: extra CPU ms per s (host+daprd)", vec![(host + daprd) * 1000.0], note)
    };

    while rx.try_recv().is_ok() {}
    let mut millis = Vec::new();
    for i in 0..100 {
        let u = (i * 7) % users.len();
        let (user, token) = users.get(u);
        let start = Instant::now();
        client.create(user, token, &json!({ "title": format!("stream {i}") }))?;
        loop {
            let (who, _, at) = rx.recv_timeout(Duration::from_secs(30)).context("a change did not reach its stream within 30 s")?;
            if who == u {
                millis.push(at.duration_since(start).as_secs_f64() * 1000.0);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    streams.close();
    let latency = Series::latency(
        "real-time sync: POST -> SSE client",
        millis,
        "100 sequential creates, 50 streams open (one per user); a stream polls its feed head every 150 ms",
    );
    Ok(vec![latency, cpu])
}

/// Creates at `rate` per second (open loop, one create per user per second,
/// streams open for the first [`RATE_STREAMS`] users): the create latency from
/// the intended send time, write -> audit entry (the entry's `recorded_at`,
/// read back after the run, so the bench adds no polling while it runs) and
/// write -> SSE client (on the streams' users' creates).
pub fn at_rate(bench: &Bench, rate: u32) -> Result<Vec<Series>> {
    let client = bench.client;
    let users = Users::new(client, &format!("bench-rate{rate}-{}", bench.run_id), rate as usize)?;
    let (tx, rx) = mpsc::channel();
    let streams = Streams::open(client, &users, RATE_STREAMS, tx)?;
    std::thread::sleep(Duration::from_secs(1));
    let offsets = load::schedule(f64::from(rate), bench.window(10))?;
    let started = Instant::now();
    let shots = load::open_loop(&offsets, 64, |i| {
        let (user, token) = users.get(i);
        let task = client.create(user, token, &json!({ "title": format!("rate {i}") }))?;
        task["id"].as_str().map(str::to_owned).context("a created task without an id")
    });
    let seconds = started.elapsed().as_secs_f64();
    let results = shots.iter().map(|s| s.result.as_ref().map(|_| s.latency_ms()).map_err(|e| anyhow::anyhow!("{e:#}"))).collect();
    let note = format!(
        "{} creates, open loop over {} users in {seconds:.1} s, {RATE_STREAMS} SSE streams open; latency from the intended send time",
        offsets.len(),
        users.len()
    );
    let creates = super::api::tally(format!("create at {rate} req/s (open loop, from intended send)"), results, seconds, note)?;

    // SSE: every accepted create of a streamed user, matched by task id.
    let mut waiting: std::collections::HashMap<String, Instant> = shots
        .iter()
        .enumerate()
        .filter(|(i, _)| i % users.len() < RATE_STREAMS)
        .filter_map(|(_, s)| s.result.as_ref().ok().map(|id| (id.clone(), s.sent)))
        .collect();
    let expected = waiting.len();
    let mut sse = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !waiting.is_empty() && Instant::now() < deadline {
        let Ok((_, task, at)) = rx.recv_timeout(Duration::from_secs(1)) else { continue };
        if let Some(sent) = waiting.remove(&task) {
            sse.push(at.duration_since(sent).as_secs_f64() * 1000.0);
        }
    }
    streams.close();
    let sse_note =
        format!("{} of {expected} creates of the {RATE_STREAMS} streamed users seen on their stream; from the POST's send", sse.len());
    let sse = Series { failed: waiting.len(), ..Series::latency(format!("write -> SSE client at {rate} creates/s"), sse, sse_note) };

    let sent: std::collections::HashMap<&str, chrono::DateTime<chrono::Utc>> =
        shots.iter().filter_map(|s| s.result.as_ref().ok().map(|id| (id.as_str(), s.sent_wall))).collect();
    let audit = audit_delays(client, &users, &sent)?;
    let missing = sent.len() - audit.len();
    let audit_note = format!(
        "{} of {} accepted creates audited; `recorded_at` of the entry minus the POST's send (wall clock)",
        audit.len(),
        sent.len()
    );
    let audit = Series { failed: missing, ..Series::latency(format!("write -> audit entry at {rate} creates/s"), audit, audit_note) };
    Ok(vec![creates, audit, sse])
}

/// How many of the rate run's users have a stream open.
const RATE_STREAMS: usize = 20;

/// For each task of `sent` (id -> send time), the ms until audit-service
/// recorded its `created` entry; waits up to 60 s for the last entries.
fn audit_delays(client: &Client, users: &Users, sent: &std::collections::HashMap<&str, chrono::DateTime<chrono::Utc>>) -> Result<Vec<f64>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut millis = Vec::new();
        for u in 0..users.len() {
            let (user, token) = users.get(u);
            for entry in client.audit_entries(user, token, "com.todo.task.created.v1")? {
                let recorded = entry["recorded_at"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
                if let (Some(at), Some(recorded)) = (entry["task_id"].as_str().and_then(|id| sent.get(id)), recorded) {
                    millis.push((recorded.with_timezone(&chrono::Utc) - *at).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0);
                }
            }
        }
        if millis.len() >= sent.len() || Instant::now() > deadline {
            return Ok(millis);
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}
