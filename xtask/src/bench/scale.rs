//! Lists that must not grow with the user (a user with 10,000 tasks) and a
//! single developer's load (the embedded store must not queue for seconds).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use serde_json::{json, Value};

use super::client::Users;
use super::load;
use super::{Bench, Series};

/// Seeding threads for the big user: concurrent creates on one user contend
/// on its index, so more threads than this only add retries.
const SEEDERS: usize = 4;

/// The body of the big user's task `i`: every fifth `high`, one in seven
/// titled `invoice` (what the text search finds), ten tags, due dates over a month.
fn seed_body(i: usize) -> Value {
    let priorities = ["none", "low", "medium", "high", "urgent"];
    json!({
        "title": format!("task {i} {}", if i % 7 == 0 { "invoice" } else { "chore" }),
        "priority": priorities[i % priorities.len()],
        "tags": [format!("t{}", i % 10)],
        "due_at": format!("2030-01-{:02}T09:00:00Z", 1 + i % 28),
    })
}

/// What the big-user run found.
pub struct BigUser {
    /// Its series: the three pages, and the creates of both users.
    pub series: Vec<Series>,
    /// Tasks the big user holds.
    pub seeded: usize,
    /// Seconds the seeding took.
    pub seed_seconds: f64,
    /// The big user's create p50 over the small user's.
    pub create_ratio: f64,
}

/// Seeds one user with up to `tasks` tasks within `budget` ([`SEEDERS`]
/// concurrent creates, each retried with its `Idempotency-Key`), another
/// with 10, lets the events drain, then times pages of 50 (default sort, a
/// filter, a text search) and creates of both users, interleaved.
pub fn big_user(bench: &Bench, tasks: usize, budget: Duration) -> Result<BigUser> {
    let client = bench.client;
    let users = Users::new(client, &format!("bench-big-{}", bench.run_id), 2)?;
    let ((big, big_token), (small, small_token)) = (users.get(0), users.get(1));
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..SEEDERS {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= tasks || started.elapsed() > budget {
                    break;
                }
                let key = format!("seed-{i}");
                let created = (0..8).any(|attempt| {
                    std::thread::sleep(Duration::from_millis(20 * attempt));
                    client.create_keyed(big, big_token, &seed_body(i), Some(&key)).is_ok()
                });
                if created {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let seeded = done.into_inner();
    let seed_seconds = started.elapsed().as_secs_f64();
    for i in 0..10 {
        client.create(small, small_token, &seed_body(i))?;
    }
    bench.settle(&bench.meter(), Duration::from_secs(300)); // the consumers catch up first
    let pages = if bench.quick { 20 } else { 40 };
    let page = |query: &str| -> Result<Vec<f64>> {
        let url = format!("{}/api/{big}/tasks?{query}", client.api);
        load::sequential(pages, |_| client.get(&url, big_token).map(drop))
    };
    let note = format!("{pages} sequential requests; the user holds {seeded} tasks (seeded in {seed_seconds:.0} s)");
    let mut series = vec![
        Series::latency("big user: page of 50, default sort", page("limit=50")?, &note),
        Series::latency("big user: page of 50, priority=high", page("priority=high&limit=50")?, &note),
        Series::latency("big user: page of 50, q=invoice", page("q=invoice&limit=50")?, &note),
    ];
    let (mut on_big, mut on_small) = (Vec::new(), Vec::new());
    for i in 0..20 {
        for (user, token, millis) in [(big, big_token, &mut on_big), (small, small_token, &mut on_small)] {
            let began = Instant::now();
            client.create(user, token, &json!({ "title": format!("probe {i}") }))?;
            millis.push(began.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let note = |holds: usize| format!("20 sequential, interleaved with the other user's; the user holds {holds} tasks");
    let big_create = Series::latency("big user: create, sequential", on_big, note(seeded));
    let small_create = Series::latency("10-task user: create, sequential", on_small, note(10));
    let create_ratio = big_create.percentile(50.0) / small_create.percentile(50.0);
    series.extend([big_create, small_create]);
    Ok(BigUser { series, seeded, seed_seconds, create_ratio })
}

/// A single developer on the embedded store: one user, 5 creates and 5 lists
/// per second (open loop, alternating) for 20 s; latency from the intended
/// send time, so a request that waited behind others counts its wait.
pub fn developer(bench: &Bench) -> Result<Series> {
    let client = bench.client;
    let users = Users::new(client, &format!("bench-developer-{}", bench.run_id), 1)?;
    users.seed(client, 20)?;
    let (user, token) = users.get(0);
    let offsets = load::schedule(10.0, bench.window(20))?;
    let started = Instant::now();
    let shots = load::open_loop(&offsets, 16, |i| {
        if i % 2 == 0 {
            client.create(user, token, &json!({ "title": format!("dev {i}") })).map(drop)
        } else {
            client.get(&format!("{}/api/{user}/tasks?limit=50", client.api), token).map(drop)
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let queued = shots.iter().filter(|s| s.latency_ms() > 1000.0).count();
    let results = shots.iter().map(|s| s.result.as_ref().map(|()| s.latency_ms()).map_err(|e| anyhow!("{e:#}"))).collect();
    let note = format!("{} requests on one user in {seconds:.1} s, open loop; {queued} took over 1 s", offsets.len());
    super::api::tally("single developer: 5 creates/s + 5 lists/s".into(), results, seconds, note)
}
