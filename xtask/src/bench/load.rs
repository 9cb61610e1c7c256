//! Load drivers: an open loop on a fixed schedule (latency from the intended
//! send time, so a slow answer cannot hide the requests queued behind it) and
//! a closed loop of concurrent clients.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};

/// One request of an open loop.
pub struct Shot<T> {
    /// When the schedule said to send it.
    pub intended: Instant,
    /// When it was sent (later than `intended` when every worker was busy).
    pub sent: Instant,
    /// `sent` on the wall clock, to compare with times the services record.
    pub sent_wall: DateTime<Utc>,
    /// When its answer was read.
    pub done: Instant,
    /// What the request returned.
    pub result: Result<T>,
}

impl<T> Shot<T> {
    /// Milliseconds from the intended send time to the answer.
    pub fn latency_ms(&self) -> f64 {
        self.done.duration_since(self.intended).as_secs_f64() * 1000.0
    }
}

/// The send offsets of `rate` requests per second for `window`: request `i`
/// at `i / rate` seconds.
pub fn schedule(rate: f64, window: Duration) -> Result<Vec<Duration>> {
    if !(rate.is_finite() && rate > 0.0) {
        bail!("a rate must be a positive number of requests per second, not {rate}");
    }
    let count = (rate * window.as_secs_f64()).round() as usize;
    Ok((0..count).map(|i| Duration::from_secs_f64(i as f64 / rate)).collect())
}

/// Sends request `i` at `start + offsets[i]` from a pool of `workers` threads
/// (a request whose time has come while every worker waits for an answer goes
/// out as soon as one is free, and its latency still counts from its intended
/// time). Returns the shots in schedule order.
pub fn open_loop<T: Send>(offsets: &[Duration], workers: usize, send: impl Fn(usize) -> Result<T> + Sync) -> Vec<Shot<T>> {
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let shots: Mutex<Vec<(usize, Shot<T>)>> = Mutex::new(Vec::with_capacity(offsets.len()));
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(offset) = offsets.get(i) else { break };
                let intended = start + *offset;
                if let Some(wait) = intended.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let (sent, sent_wall) = (Instant::now(), Utc::now());
                let result = send(i);
                let shot = Shot { intended, sent, sent_wall, done: Instant::now(), result };
                shots.lock().expect("shots").push((i, shot));
            });
        }
    });
    let mut shots = shots.into_inner().expect("shots");
    shots.sort_by_key(|(i, _)| *i);
    shots.into_iter().map(|(_, s)| s).collect()
}

/// `clients` threads, each sending its next request (`send(client, seq)`) as
/// soon as the last one answered, until `window` has passed. Returns each
/// request's latency in ms (or error) and the seconds the run took.
pub fn closed_loop(clients: usize, window: Duration, send: impl Fn(usize, usize) -> Result<()> + Sync) -> (Vec<Result<f64>>, f64) {
    let start = Instant::now();
    let send = &send;
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|k| {
                scope.spawn(move || {
                    let mut results = Vec::new();
                    while start.elapsed() < window {
                        let began = Instant::now();
                        results.push(send(k, results.len()).map(|()| began.elapsed().as_secs_f64() * 1000.0));
                    }
                    results
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("bench thread")).collect()
    });
    (results, start.elapsed().as_secs_f64())
}

/// `count` requests one after another: each one's latency in ms, or the first error.
pub fn sequential(count: usize, send: impl Fn(usize) -> Result<()>) -> Result<Vec<f64>> {
    (0..count)
        .map(|i| {
            let began = Instant::now();
            send(i).map(|()| began.elapsed().as_secs_f64() * 1000.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spaces_requests_evenly() {
        let offsets = schedule(100.0, Duration::from_secs(2)).unwrap();
        assert_eq!(offsets.len(), 200);
        assert_eq!(offsets[0], Duration::ZERO);
        assert_eq!(offsets[150], Duration::from_millis(1500));
        assert!(schedule(0.0, Duration::from_secs(1)).is_err());
        assert!(schedule(f64::NAN, Duration::from_secs(1)).is_err());
        assert!(schedule(-5.0, Duration::from_secs(1)).is_err());
    }

    /// One worker, 100 req/s, each answer takes at least 30 ms: the tenth
    /// request (due at 90 ms) cannot be sent before 270 ms, and its latency
    /// counts that wait. Only lower bounds are asserted: a loaded machine
    /// makes everything slower, never faster.
    #[test]
    fn latency_counts_from_the_intended_time_when_the_workers_fall_behind() {
        let offsets = schedule(100.0, Duration::from_millis(100)).unwrap();
        let slow = |i| {
            std::thread::sleep(Duration::from_millis(30));
            Ok(i)
        };
        let shots = open_loop(&offsets, 1, slow);
        assert_eq!(shots.iter().map(|s| *s.result.as_ref().unwrap()).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        let last = &shots[9];
        let queued = last.sent.duration_since(last.intended);
        assert!(queued >= Duration::from_millis(180), "sent {queued:?} after its time");
        let service = last.done.duration_since(last.sent).as_secs_f64() * 1000.0;
        assert!(last.latency_ms() >= service + 180.0, "from the intended time: {} ms, service {service} ms", last.latency_ms());
        // With a worker per request, they leave on time: far less queueing in total.
        let waited = |shots: &[Shot<usize>]| shots.iter().map(|s| s.sent.duration_since(s.intended)).sum::<Duration>();
        let parallel = open_loop(&offsets, 10, slow);
        assert!(waited(&parallel) * 2 < waited(&shots), "{:?} vs {:?}", waited(&parallel), waited(&shots));
    }

    #[test]
    fn a_closed_loop_keeps_every_client_busy() {
        let (results, seconds) = closed_loop(4, Duration::from_millis(200), |_, _| {
            std::thread::sleep(Duration::from_millis(10));
            Ok(())
        });
        assert!(seconds >= 0.2);
        // Each client sends at least once, and at most 200 ms / 10 ms + 1 times.
        assert!((4..=84).contains(&results.len()), "4 clients x up to 21 each: {}", results.len());
        assert!(sequential(3, |i| if i == 1 { bail!("boom") } else { Ok(()) }).is_err());
    }
}
