//! `cargo xtask bench`: latency, throughput, CPU and memory of the real local
//! stack, on one state store or on each in turn, judged against issue 18's
//! targets and compared with ceilings measured in the same run.
//!
//! Prints one table and writes it under `target/bench/`: `bench.md` and
//! `bench.json` for the whole run, `bench-<store>.{md,json}` as each store
//! finishes, `bench-latency.svg` (the latency distributions) and
//! `bench-targets.svg` (each target's measured value over its goal). Numbers
//! are measurements of this machine, not assertions. `--quick` shortens the
//! windows, seeds 2,000 tasks instead of 10,000 and skips the reminder,
//! idle-stream and 1,000-task series.

mod api;
mod ceilings;
mod client;
mod cpu;
mod load;
mod memory;
mod plot;
mod reminders;
mod report;
mod scale;
mod streams;
mod targets;

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::bootstrap::Tools;
use crate::stack::{self, Stack, Store};
use crate::{build, paths};

use self::api::Op;
use self::ceilings::Ceiling;
use self::client::{Client, Users};
use self::targets::Outcome;

/// The fixed rates of the open-loop create and list runs, in requests per second.
const RATES: [u32; 2] = [20, 50];

/// The rate of the event-latency targets (creates per second).
const EVENT_RATE: u32 = 100;

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

/// The CPU profile of the saturated create run: every process of the stack.
pub struct Profile {
    /// CPU over the run and the drain after it, per process (gross).
    pub usage: cpu::Usage,
    /// CPU of the idle stack over its own window, per process.
    pub idle: cpu::Usage,
    /// Accepted creates in the run.
    pub creates: usize,
    /// Seconds from the end of the load until the stack was back to its idle rate.
    pub drain_seconds: f64,
    /// The run's creates that audit-service had recorded at the end.
    pub audited: usize,
    /// Whether the stack was back at its idle demand with every create audited
    /// (else the figure misses some consumer work).
    pub drained: bool,
}

impl Profile {
    /// CPU ms per create of `name` net of its idle rate (the whole stack for `None`).
    pub fn net_ms_per_create(&self, name: Option<&str>) -> f64 {
        let (busy, idle) = match name {
            Some(n) => (self.usage.of(n), self.idle.of(n)),
            None => (self.usage.total(), self.idle.total()),
        };
        let idle_rate = if self.idle.seconds > 0.0 { idle / self.idle.seconds } else { 0.0 };
        (busy - idle_rate * self.usage.seconds).max(0.0) * 1000.0 / self.creates.max(1) as f64
    }
}

/// Everything measured on one store.
pub struct StoreRun {
    /// The store of this run.
    pub store: Store,
    /// Whether it was a `--quick` run.
    pub quick: bool,
    /// The series, in the order they ran.
    pub series: Vec<Series>,
    /// Issue 18's targets, judged.
    pub targets: Vec<Outcome>,
    /// The ceilings of this run.
    pub ceilings: Vec<Ceiling>,
    /// The CPU profile of the saturated create run.
    pub profile: Profile,
    /// Peak memory of each process of the stack, read right before it stopped.
    pub memory: Vec<memory::Peak>,
    /// The machine's load averages (1, 5, 15 min) at the start and the end.
    pub load: [Option<[f64; 3]>; 2],
    /// Wall time of the run, start and stop of the stack included.
    pub seconds: f64,
}

/// What every measurement of one store's run needs.
pub struct Bench<'a> {
    /// The stack's HTTP clients.
    pub client: &'a Client,
    /// The stack.
    pub stack: &'a Stack,
    /// Distinguishes this run's users.
    pub run_id: u32,
    /// A `--quick` run.
    pub quick: bool,
    /// The stack's CPU rate when idle, in cores.
    pub idle_cores: f64,
    /// The stack's CPU demand when idle (CPU plus run-queue wait), in cores.
    pub idle_demand: f64,
}

impl Bench<'_> {
    /// A load window: `seconds`, or half of it in a quick run.
    pub fn window(&self, seconds: u64) -> Duration {
        Duration::from_secs(if self.quick { seconds.div_ceil(2) } else { seconds })
    }

    /// A CPU meter over every process of the stack, started now.
    pub fn meter(&self) -> cpu::Meter {
        cpu::Meter::start(self.stack.processes())
    }

    /// Waits until the stack is back to its idle demand (at most `limit`):
    /// the usage since `meter` started and how long the wait took.
    pub fn settle(&self, meter: &cpu::Meter, limit: Duration) -> (cpu::Usage, Option<Duration>) {
        meter.finish(self.idle_demand, limit)
    }

    /// CPU ms of the stack per operation over `usage`, net of its idle rate.
    pub fn net_cpu_ms(&self, usage: &cpu::Usage, count: usize) -> f64 {
        (usage.total() - self.idle_cores * usage.seconds).max(0.0) * 1000.0 / count.max(1) as f64
    }
}

/// Runs the benchmarks on each of `stores` in turn (one stack at a time) and
/// writes the report.
pub fn run(tools: &Tools, stores: &[Store], quick: bool) -> Result<()> {
    build::components()?;
    let dir = paths::root().join("target/bench");
    let wasm = report::wasm_sizes()?;
    let mut runs = Vec::new();
    for &store in stores {
        println!("\n== bench on the {store} store{} ==", if quick { " (quick)" } else { "" });
        let run = bench_store(tools, store, quick)?;
        println!("{store}: done in {:.0} s", run.seconds);
        report::write(&dir, &format!("bench-{store}"), std::slice::from_ref(&run), &wasm)?;
        runs.push(run);
    }
    let markdown = report::write(&dir, "bench", &runs, &wasm)?;
    plot::write(&dir.join("bench-latency.svg"), &runs)?;
    plot::targets(&dir.join("bench-targets.svg"), &runs)?;
    println!("\n{markdown}");
    println!("written to {} (bench.md, bench.json, bench-latency.svg, bench-targets.svg, bench-<store>.*)", dir.display());
    Ok(())
}

/// Starts the stack on `store`, measures every series, reads the peak memory
/// and stops the stack.
fn bench_store(tools: &Tools, store: Store, quick: bool) -> Result<StoreRun> {
    let started = Instant::now();
    let load_start = cpu::load_average();
    let stack = Stack::start(tools, store, stack::Mode::Bench)?;
    println!("stack up in {:.0} s; each line below ends a series", started.elapsed().as_secs_f64());
    let client = Client::new(&stack)?;
    let mut bench = Bench { client: &client, stack: &stack, run_id: std::process::id(), quick, idle_cores: 0.0, idle_demand: 0.0 };
    let measured = measure(&mut bench, store)?;
    let memory = memory::peaks(&stack.processes());
    drop(stack);
    let load = [load_start, cpu::load_average()];
    Ok(StoreRun { store, quick, memory, load, seconds: started.elapsed().as_secs_f64(), ..measured })
}

/// Every series, in order: the idle stack and the ceilings first, then the
/// lists (they cause no events), then the creates at growing load (the
/// saturated one with the CPU profile), the event latencies at 100 creates/s,
/// the big user, a developer's load; the reminders and the SSE streams last,
/// as a closed stream keeps polling on the server until its next heartbeat.
fn measure(bench: &mut Bench, store: Store) -> Result<StoreRun> {
    let started = Instant::now();
    let mut series = Vec::new();
    let mut done = |s: Series| {
        println!("{:>5.0} s  {}", started.elapsed().as_secs_f64(), s.name);
        series.push(s);
    };
    let (client, run_id, window) = (bench.client, bench.run_id, bench.window(10));

    std::thread::sleep(Duration::from_secs(3)); // the start's own work settles
    let meter = bench.meter();
    std::thread::sleep(bench.window(10));
    let idle = meter.now();
    bench.idle_cores = idle.total() / idle.seconds;
    bench.idle_demand = idle.demand_cores();
    println!(
        "{:>5.0} s  idle stack: {:.3} cores ({:.3} with run-queue wait)",
        started.elapsed().as_secs_f64(),
        bench.idle_cores,
        bench.idle_demand
    );
    let bench = &*bench;
    let (ceilings, ceiling_series) = ceilings::measure(bench)?;
    ceiling_series.into_iter().for_each(&mut done);

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
    bench.settle(&bench.meter(), Duration::from_secs(120));
    let writers = Users::new(client, &format!("bench-createmax-{run_id}"), 5 * api::CLIENTS)?;
    let meter = bench.meter();
    let saturated = api::closed_loop(client, &writers, Op::Create, window)?;
    let load_end = Instant::now();
    // Drained: back at the idle demand, and audit-service has every event.
    let mut usage = bench.settle(&meter, Duration::from_secs(300));
    let mut audited = api::audited(client, &writers)?;
    for _ in 0..10 {
        if audited >= saturated.millis.len() {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
        usage = bench.settle(&meter, Duration::from_secs(60));
        audited = api::audited(client, &writers)?;
    }
    let drained = usage.1.is_some() && audited >= saturated.millis.len();
    let profile = Profile {
        creates: saturated.millis.len(),
        drain_seconds: load_end.elapsed().as_secs_f64(),
        usage: usage.0,
        idle,
        audited,
        drained,
    };
    done(saturated);
    streams::at_rate(bench, EVENT_RATE)?.into_iter().for_each(&mut done);
    if !bench.quick {
        done(api::filtered_list(client, run_id)?);
    }
    let (tasks, budget) = if bench.quick { (2_000, 90) } else { (10_000, 600) };
    let big = scale::big_user(bench, tasks, Duration::from_secs(budget))?;
    big.series.iter().for_each(|s| println!("{:>5.0} s  {}", started.elapsed().as_secs_f64(), s.name));
    let (big_seeded, big_seed_seconds, big_ratio) = (big.seeded, big.seed_seconds, big.create_ratio);
    series.extend(big.series);
    let mut done = |s: Series| {
        println!("{:>5.0} s  {}", started.elapsed().as_secs_f64(), s.name);
        series.push(s);
    };
    done(scale::developer(bench)?);
    if !bench.quick {
        done(reminders::lateness(client, run_id)?);
        streams::measure(client, bench.stack, run_id)?.into_iter().for_each(done);
    }
    let judged = judge(store, &series, &ceilings, &profile, (big_seeded, big_seed_seconds, big_ratio));
    Ok(StoreRun {
        store,
        quick: bench.quick,
        series,
        targets: judged,
        ceilings: ceilings.rows,
        profile,
        memory: Vec::new(),
        load: [None, None],
        seconds: 0.0,
    })
}

/// Each target of `store` with its measured value, taken from the series
/// (by their stable names), the profile and the big user's seeding.
fn judge(store: Store, series: &[Series], ceilings: &ceilings::Ceilings, profile: &Profile, big: (usize, f64, f64)) -> Vec<Outcome> {
    let find = |name: &str| series.iter().find(|s| s.name == name);
    let pct = |name: &str, p: f64| -> (Option<f64>, String) {
        match find(name) {
            Some(s) => (Some(s.percentile(p)), format!("p{p} of `{name}` (n={}, {} failed)", s.millis.len(), s.failed)),
            None => (None, format!("`{name}` was not measured")),
        }
    };
    let rate = |p: f64| format!("create at {} req/s (open loop, from intended send)", p);
    targets::for_store(store)
        .into_iter()
        .map(|target| {
            let (measured, note) = match target.id {
                "cpu_per_create" => (
                    Some(profile.net_ms_per_create(None)),
                    format!(
                        "{:.2} CPU s over {:.1} s (load + {:.1} s drain) for {} creates ({} audited{}), net of the idle rate; {:.1} ms gross",
                        profile.usage.total(),
                        profile.usage.seconds,
                        profile.drain_seconds,
                        profile.creates,
                        profile.audited,
                        if profile.drained { "" } else { "; NOT DRAINED: consumer work missing" },
                        profile.usage.total() * 1000.0 / profile.creates.max(1) as f64
                    ),
                ),
                "create_8_clients" => match find("create, 8 clients, max rate") {
                    Some(s) => (s.per_second, format!("`{}`: p50 {:.1} ms, p99 {:.1} ms", s.name, s.percentile(50.0), s.percentile(99.0))),
                    None => (None, "not measured".into()),
                },
                "create_p99_at_100" => pct(&rate(f64::from(EVENT_RATE)), 99.0),
                "create_sequential_p50" => pct("create, sequential: REST POST", 50.0),
                "audit_p95_at_100" => pct(&format!("write -> audit entry at {EVENT_RATE} creates/s"), 95.0),
                "sse_p95_at_100" => pct(&format!("write -> SSE client at {EVENT_RATE} creates/s"), 95.0),
                "big_user_tasks" => (Some(big.0 as f64), format!("seeded through the API in {:.0} s (4 concurrent creates)", big.1)),
                "big_page_default_p95" => pct("big user: page of 50, default sort", 95.0),
                "big_page_filter_p95" => pct("big user: page of 50, priority=high", 95.0),
                "big_page_search_p95" => pct("big user: page of 50, q=invoice", 95.0),
                "big_create_vs_small" => {
                    (Some(big.2), "p50 of `big user: create, sequential` / p50 of `10-task user: create, sequential`".into())
                }
                "dev_load_max" => match find("single developer: 5 creates/s + 5 lists/s") {
                    Some(s) => (Some(s.max()), s.note.clone()),
                    None => (None, "not measured".into()),
                },
                other => (None, format!("no measurement for `{other}`")),
            };
            let ceiling = target.ceiling.and_then(|key| ceilings.get(key));
            Outcome { target, measured, ceiling, note }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_over_the_sorted_samples() {
        let s = Series::latency("x", (1..=100).rev().map(f64::from).collect(), "");
        assert_eq!(s.percentile(50.0), 51.0);
        assert_eq!(s.percentile(95.0), 95.0);
        assert_eq!(s.percentile(99.0), 99.0);
        assert_eq!(s.percentile(100.0), 100.0);
        assert_eq!(s.max(), 100.0);
        assert_eq!(Series::latency("one", vec![7.0], "").percentile(99.0), 7.0);
    }

    #[test]
    fn no_samples_give_no_percentile() {
        let empty = Series::latency("x", Vec::new(), "");
        assert!(empty.percentile(50.0).is_nan() && empty.max().is_nan());
    }

    fn usage(seconds: f64, per: &[(&str, f64)]) -> cpu::Usage {
        cpu::Usage { seconds, per: per.iter().map(|(n, s)| (n.to_string(), *s, 1)).collect(), machine_busy_cores: None, wait_seconds: 0.0 }
    }

    #[test]
    fn cpu_per_create_is_net_of_the_idle_rate() {
        // Idle: 0.2 s over 10 s (0.02 cores); busy: 4.4 s over 20 s for 1,000 creates.
        let profile = Profile {
            usage: usage(20.0, &[("kafka", 1.4), ("daprd-todo-api", 3.0)]),
            idle: usage(10.0, &[("kafka", 0.2)]),
            creates: 1000,
            drain_seconds: 2.0,
            audited: 1000,
            drained: true,
        };
        assert!((profile.net_ms_per_create(None) - 4.0).abs() < 1e-9);
        assert!((profile.net_ms_per_create(Some("kafka")) - 1.0).abs() < 1e-9);
        assert!((profile.net_ms_per_create(Some("daprd-todo-api")) - 3.0).abs() < 1e-9);
        let none = Profile { creates: 0, ..profile };
        assert!(none.net_ms_per_create(None).is_finite(), "no creates does not divide by zero");
    }
}
