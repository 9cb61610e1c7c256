//! Progress of a long install step: what runs, how long it has run, what to expect.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a running step says it is still running.
const HEARTBEAT: Duration = Duration::from_secs(60);

/// Whether any step has run in this process (so something was installed).
static ANY_STARTED: AtomicBool = AtomicBool::new(false);

/// Whether this process installed anything so far.
pub fn any_started() -> bool {
    ANY_STARTED.load(Ordering::Relaxed)
}

/// One named step of the bootstrap. Says when it starts, every minute while it
/// runs, and when it ends, with the elapsed time.
pub struct Step {
    name: String,
    started: Instant,
    stop: Option<Sender<()>>,
    heartbeat: Option<JoinHandle<()>>,
}

impl Step {
    /// Announces `name` with what it does and how long it usually takes.
    pub fn start(name: &str, doing: &str, expect: &str) -> Step {
        ANY_STARTED.store(true, Ordering::Relaxed);
        println!("bootstrap: {name}: {doing} ({expect})");
        let (stop, stopped) = mpsc::channel::<()>();
        let started = Instant::now();
        let label = name.to_string();
        let heartbeat = std::thread::spawn(move || loop {
            match stopped.recv_timeout(HEARTBEAT) {
                Err(RecvTimeoutError::Timeout) => println!("bootstrap: {label}: still running, {} so far", clock(started.elapsed())),
                _ => return,
            }
        });
        Step { name: name.to_string(), started, stop: Some(stop), heartbeat: Some(heartbeat) }
    }

    /// Ends the step and returns its duration.
    pub fn finish(mut self) -> Duration {
        self.halt();
        let took = self.started.elapsed();
        println!("bootstrap: {}: done in {}", self.name, clock(took));
        took
    }

    fn halt(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        self.halt();
    }
}

/// `m:ss`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_minutes_and_seconds() {
        assert_eq!(clock(Duration::from_secs(0)), "0:00");
        assert_eq!(clock(Duration::from_secs(75)), "1:15");
        assert_eq!(clock(Duration::from_secs(3600)), "60:00");
    }
}
