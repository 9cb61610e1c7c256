//! `cargo xtask bench`: latency, throughput and memory of the real local stack,
//! on one state store or on each in turn.
//!
//! Prints one table and writes it under `target/bench/`: `bench.md` and
//! `bench.json` for the whole run, `bench-<store>.{md,json}` as each store
//! finishes, and `bench-latency.svg` (the latency distributions). Numbers are
//! measurements of this machine, not assertions.

mod api;
mod client;
mod memory;
mod plot;
mod reminders;
mod report;
mod streams;

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::bootstrap::Tools;
use crate::stack::{self, Stack, Store};
use crate::{build, paths};

use self::api::Op;
use self::client::{Client, Users};

/// The fixed rates of the open-loop create and list runs, in requests per second.
const RATES: [u32; 2] = [20, 50];

/// One measured series.
pub struct Series {
    /// What was measured; the same on every store, so it keys the rows and the plot.
    pub name: String,
    /// The samples: latencies in ms, or (when `latency` is false) one other value in ms.
    pub millis: Vec<f64>,
    /// Whether `millis` are latencies, plotted as a distribution.
    pub latency: bool,
    /// Requests per second achieved, for the series that drive a load.
    pub per_second: Option<f64>,
    /// Requests that failed (not in `millis`).
    pub failed: usize,
    /// How it was measured.
    pub note: String,
}

impl Series {
    /// A latency series without a throughput.
    fn latency(name: impl Into<String>, millis: Vec<f64>, note: impl Into<String>) -> Series {
        Series { name: name.into(), millis, latency: true, per_second: None, failed: 0, note: note.into() }
    }

    /// The `p`-th percentile (nearest rank), NaN without samples.
    pub fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.millis.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
        sorted.get(rank).copied().unwrap_or(f64::NAN)
    }

    /// The largest sample, NaN without samples.
    pub fn max(&self) -> f64 {
        self.millis.iter().copied().reduce(f64::max).unwrap_or(f64::NAN)
    }
}

/// Everything measured on one store.
pub struct StoreRun {
    /// The store of this run.
    pub store: Store,
    /// The series, in the order they ran.
    pub series: Vec<Series>,
    /// Peak memory of each process of the stack, read right before it stopped.
    pub memory: Vec<memory::Peak>,
    /// Wall time of the run, start and stop of the stack included.
    pub seconds: f64,
}

/// Runs the benchmarks on each of `stores` in turn (one stack at a time) and
/// writes the report.
pub fn run(tools: &Tools, stores: &[Store]) -> Result<()> {
    build::components()?;
    let dir = paths::root().join("target/bench");
    let wasm = report::wasm_sizes()?;
    let mut runs = Vec::new();
    for &store in stores {
        println!("\n== bench on the {store} store ==");
        let run = bench_store(tools, store)?;
        println!("{store}: done in {:.0} s", run.seconds);
        report::write(&dir, &format!("bench-{store}"), std::slice::from_ref(&run), &wasm)?;
        runs.push(run);
    }
    let markdown = report::write(&dir, "bench", &runs, &wasm)?;
    plot::write(&dir.join("bench-latency.svg"), &runs)?;
    println!("\n{markdown}");
    println!("written to {} (bench.md, bench.json, bench-latency.svg, bench-<store>.*)", dir.display());
    Ok(())
}

/// Starts the stack on `store`, measures every series, reads the peak memory
/// and stops the stack.
fn bench_store(tools: &Tools, store: Store) -> Result<StoreRun> {
    let started = Instant::now();
    let stack = Stack::start(tools, store, stack::Mode::Bench)?;
    println!("stack up in {:.0} s; each line below ends a series", started.elapsed().as_secs_f64());
    let client = Client::new(&stack)?;
    let series = measure(&client, &stack, std::process::id())?;
    let memory = memory::peaks(&stack.processes());
    drop(stack);
    Ok(StoreRun { store, series, memory, seconds: started.elapsed().as_secs_f64() })
}

/// Every series, in order: the lists first (they cause no events), then the
/// creates at growing load, whose backlog of events drains during the 1,000
/// creates that seed the filtered list; the SSE streams last, as a closed
/// stream keeps polling on the server until its next heartbeat.
fn measure(client: &Client, stack: &Stack, run_id: u32) -> Result<Vec<Series>> {
    let window = Duration::from_secs(10);
    let started = Instant::now();
    let mut series = Vec::new();
    let mut done = |s: Series| {
        println!("{:>5.0} s  {}", started.elapsed().as_secs_f64(), s.name);
        series.push(s);
    };
    done(api::event_delivery(client, run_id)?);
    api::mcp_add_task(client, run_id)?.into_iter().for_each(&mut done);
    let readers = Users::new(client, &format!("bench-list-{run_id}"), 10)?;
    readers.seed(client, 20)?;
    std::thread::sleep(Duration::from_secs(3)); // let the seeding's events settle
    for rate in RATES {
        done(api::fixed_rate(client, &readers, Op::List, rate, window)?);
    }
    done(api::closed_loop(client, &readers, Op::List, window)?);
    for rate in RATES {
        // One create per user per second: the rate, not one user's ledger, is under test.
        let writers = Users::new(client, &format!("bench-create{rate}-{run_id}"), rate as usize)?;
        done(api::fixed_rate(client, &writers, Op::Create, rate, window)?);
    }
    let writers = Users::new(client, &format!("bench-createmax-{run_id}"), 5 * api::CLIENTS)?;
    done(api::closed_loop(client, &writers, Op::Create, window)?);
    done(api::filtered_list(client, run_id)?);
    done(reminders::lateness(client, run_id)?);
    streams::measure(client, stack, run_id)?.into_iter().for_each(done);
    Ok(series)
}
