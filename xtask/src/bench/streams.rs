//! Real-time sync: the CPU cost of idle SSE streams and the latency API write
//! -> SSE client.

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;

use super::client::{Client, Users};
use super::Series;
use crate::stack::Stack;

/// Open SSE streams for the benchmark: one reader thread per user, which
/// reconnects (with `Last-Event-ID`) when a stream reaches its lifetime and
/// reports every `change` event on `events` until `stop` is set.
struct Streams {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl Streams {
    /// Opens one stream per user and waits until each has said `ready`.
    fn open(client: &Client, users: &Users, events: Sender<(usize, Instant)>) -> Result<Streams> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut handles = Vec::new();
        for i in 0..users.len() {
            let (user, token) = users.get(i);
            let (url, token) = (format!("{}/api/{user}/stream", client.notify), token.to_owned());
            let (stop, events, ready_tx) = (stop.clone(), events.clone(), ready_tx.clone());
            handles.push(std::thread::spawn(move || read_stream(&url, &token, i, &stop, &events, &ready_tx)));
        }
        for _ in 0..users.len() {
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
/// `()` on `ready` at the first `ready` event, then `(i, now)` on `events` at
/// every `change`.
fn read_stream(url: &str, token: &str, i: usize, stop: &AtomicBool, events: &Sender<(usize, Instant)>, ready: &Sender<()>) {
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
        let mut event = String::new();
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
            } else if line.is_empty() && !event.is_empty() {
                if event == "ready" && first {
                    first = false;
                    let _ = ready.send(());
                } else if event == "change" {
                    let _ = events.send((i, Instant::now()));
                }
                event.clear();
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
        let before = (cpu_seconds(pids[0])?, cpu_seconds(pids[1])?);
        std::thread::sleep(window);
        Ok((cpu_seconds(pids[0])? - before.0, cpu_seconds(pids[1])? - before.1))
    };
    std::thread::sleep(Duration::from_secs(3)); // let earlier deliveries settle
    let idle = measure()?;
    let users = Users::new(client, &format!("bench-stream-{run_id}"), 50)?;
    let (tx, rx) = mpsc::channel();
    let streams = Streams::open(client, &users, tx)?;
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
            let (who, at) = rx.recv_timeout(Duration::from_secs(30)).context("a change did not reach its stream within 30 s")?;
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

/// CPU seconds (user + system) of a process so far, from /proc/<pid>/stat.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces): state is field 3.
    let rest = stat.rsplit_once(')').context("unexpected /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0) // USER_HZ is 100 on Linux
}
