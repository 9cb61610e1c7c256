//! CPU time of the stack's processes, from `/proc/<pid>/stat`: per process of
//! the stack (its descendants included), over a measured window, and the wait
//! until the stack is back to its idle rate (every consumer has caught up).

use std::collections::HashMap;
use std::fs;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::memory;

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux).
fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|hz| *hz > 0.0)
        .unwrap_or(100.0)
}

/// The CPU ticks of a `/proc/<pid>/stat` line: `utime + stime` of the process
/// (all its threads) plus `cutime + cstime` (the children it has reaped, such
/// as PostgreSQL's ended backends), so that a tree's sum loses nothing when a
/// child exits. The command name may hold spaces and parentheses: fields are
/// counted after its last `)`.
pub fn ticks_of_stat(stat: &str) -> Result<u64> {
    let rest = stat.rsplit_once(')').context("no `)` after the command name")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (field 3) ... utime 14, stime 15, cutime 16, cstime 17.
    let field = |n: usize| -> Result<u64> {
        let text = fields.get(n - 3).with_context(|| format!("stat has no field {n}"))?;
        text.parse::<i64>().ok().and_then(|v| u64::try_from(v).ok()).with_context(|| format!("field {n} is not a tick count: `{text}`"))
    };
    Ok(field(14)? + field(15)? + field(16)? + field(17)?)
}

/// CPU seconds of one process so far (its reaped children included).
pub fn seconds_of(pid: u32) -> Result<f64> {
    Ok(ticks_of_stat(&fs::read_to_string(format!("/proc/{pid}/stat"))?)? as f64 / ticks_per_second())
}

/// Total and idle ticks of the whole machine (first line of `/proc/stat`).
pub fn machine_ticks(proc_stat: &str) -> Result<(u64, u64)> {
    let line = proc_stat.lines().next().filter(|l| l.starts_with("cpu ")).context("/proc/stat has no `cpu` line")?;
    let values: Vec<u64> =
        line.split_whitespace().skip(1).map(str::parse).collect::<Result<_, _>>().context("a `cpu` field is not a number")?;
    if values.len() < 5 {
        bail!("the `cpu` line has {} fields, expected at least 5", values.len());
    }
    // user nice system idle iowait irq softirq steal (guest is already in user).
    let total: u64 = values.iter().take(8).sum();
    Ok((total, values[3] + values[4]))
}

/// Ticks of every process of the stack, each with its descendants, at one instant.
#[derive(Clone)]
pub struct Sample {
    at: Instant,
    /// Name, ticks, processes counted.
    per: Vec<(String, u64, usize)>,
    /// Nanoseconds the stack's live threads have waited for a CPU (run queue).
    wait_ns: u64,
    machine: Option<(u64, u64)>,
}

/// Nanoseconds a thread waited on a run queue: the second field of
/// `/proc/<pid>/task/<tid>/schedstat`.
pub fn wait_of_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Run-queue wait of every thread of `pid`.
fn wait_ns(pid: u32) -> u64 {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
    tasks.filter_map(|t| fs::read_to_string(t.path().join("schedstat")).ok().and_then(|s| wait_of_schedstat(&s))).sum()
}

/// Reads the ticks of each of `processes` (name, PID) and their descendants.
pub fn sample(processes: &[(String, u32)]) -> Sample {
    let children = memory::children_by_parent();
    let mut wait = 0;
    let per = processes
        .iter()
        .map(|(name, pid)| {
            let tree = memory::tree(*pid, &children);
            wait += tree.iter().map(|p| wait_ns(*p)).sum::<u64>();
            let ticks: Vec<u64> = tree
                .into_iter()
                .filter_map(|p| fs::read_to_string(format!("/proc/{p}/stat")).ok().and_then(|s| ticks_of_stat(&s).ok()))
                .collect();
            (name.clone(), ticks.iter().sum(), ticks.len())
        })
        .collect();
    let machine = fs::read_to_string("/proc/stat").ok().and_then(|s| machine_ticks(&s).ok());
    Sample { at: Instant::now(), per, wait_ns: wait, machine }
}

/// CPU used between two samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Usage {
    /// Wall seconds between the samples.
    pub seconds: f64,
    /// CPU seconds per process of the stack (descendants included), with the
    /// number of OS processes counted at the end; sorted by CPU, largest first.
    pub per: Vec<(String, f64, usize)>,
    /// Busy cores of the whole machine on average (every user's load), if known.
    pub machine_busy_cores: Option<f64>,
    /// Seconds the stack's threads waited for a CPU (other load on the machine).
    pub wait_seconds: f64,
}

impl Usage {
    /// CPU seconds of the whole stack.
    pub fn total(&self) -> f64 {
        self.per.iter().map(|(_, s, _)| s).sum()
    }

    /// What the stack asked of the CPUs, in cores: CPU used plus run-queue wait
    /// (a process starved by other load still shows its demand).
    pub fn demand_cores(&self) -> f64 {
        if self.seconds > 0.0 {
            (self.total() + self.wait_seconds) / self.seconds
        } else {
            0.0
        }
    }

    /// CPU seconds of `name`, 0 when absent.
    pub fn of(&self, name: &str) -> f64 {
        self.per.iter().find(|(n, _, _)| n == name).map_or(0.0, |(_, s, _)| *s)
    }
}

/// The CPU used from `before` to `after` (a process missing from `before`
/// counts from zero, one gone from `after` counts nothing).
pub fn usage(before: &Sample, after: &Sample, hz: f64) -> Usage {
    let start: HashMap<&str, u64> = before.per.iter().map(|(n, t, _)| (n.as_str(), *t)).collect();
    let mut per: Vec<(String, f64, usize)> = after
        .per
        .iter()
        .map(|(name, ticks, count)| {
            (name.clone(), ticks.saturating_sub(start.get(name.as_str()).copied().unwrap_or(0)) as f64 / hz, *count)
        })
        .collect();
    per.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let seconds = after.at.duration_since(before.at).as_secs_f64();
    let machine_busy_cores = match (before.machine, after.machine) {
        (Some((t0, i0)), Some((t1, i1))) if t1 > t0 && seconds > 0.0 => {
            let busy = (t1 - t0).saturating_sub(i1.saturating_sub(i0)) as f64 / hz;
            Some(busy / seconds)
        }
        _ => None,
    };
    let wait_seconds = after.wait_ns.saturating_sub(before.wait_ns) as f64 / 1e9;
    Usage { seconds, per, machine_busy_cores, wait_seconds }
}

/// Measures `processes` across a window: [`Meter::start`], the load, then
/// [`Meter::finish`] after the stack is quiet again.
pub struct Meter {
    hz: f64,
    processes: Vec<(String, u32)>,
    start: Sample,
}

impl Meter {
    /// Takes the first sample now.
    pub fn start(processes: Vec<(String, u32)>) -> Meter {
        let start = sample(&processes);
        Meter { hz: ticks_per_second(), processes, start }
    }

    /// CPU used since the start, without waiting.
    pub fn now(&self) -> Usage {
        usage(&self.start, &sample(&self.processes), self.hz)
    }

    /// Waits until the stack's CPU demand (CPU used plus run-queue wait) has
    /// been at most `idle_demand` (its demand when idle, [`Usage::demand_cores`])
    /// plus a margin for two seconds in a row, so that every consumer has done
    /// its share of the window's events; then the usage since the start, and
    /// how long the wait took (`None` when it gave up after `limit`, said on stderr).
    pub fn finish(&self, idle_demand: f64, limit: Duration) -> (Usage, Option<Duration>) {
        let began = Instant::now();
        let mut last = sample(&self.processes);
        let mut quiet = 0;
        while quiet < 2 {
            if began.elapsed() > limit {
                eprintln!("warning: the stack did not return to its idle CPU demand within {} s", limit.as_secs());
                return (usage(&self.start, &last, self.hz), None);
            }
            std::thread::sleep(Duration::from_secs(1));
            let next = sample(&self.processes);
            quiet = if is_quiet(usage(&last, &next, self.hz).demand_cores(), idle_demand) { quiet + 1 } else { 0 };
            last = next;
        }
        (usage(&self.start, &last, self.hz), Some(began.elapsed()))
    }
}

/// Whether a CPU demand (in cores) is back to the idle demand: at most 1.5
/// times it plus 5% of a core (tick jitter across a dozen processes, and
/// the wait of idle timers on a loaded machine).
pub fn is_quiet(cores: f64, idle_cores: f64) -> bool {
    cores <= idle_cores * 1.5 + 0.05
}

/// The 1-, 5- and 15-minute load averages of the machine (`/proc/loadavg`).
pub fn load_average() -> Option<[f64; 3]> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    let mut values = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([values.next()??, values.next()??, values.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real `/proc/<pid>/stat` line of a process named `daprd (x) y`.
    const STAT: &str = "4242 (daprd (x) y) S 1 4242 4242 0 -1 4194560 12020 0 0 0 731 245 17 3 20 0 14 0 9071 \
                        1427693568 9544 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn ticks_count_the_process_and_its_reaped_children() {
        assert_eq!(ticks_of_stat(STAT).unwrap(), 731 + 245 + 17 + 3);
    }

    #[test]
    fn a_broken_stat_line_is_an_error_not_zero() {
        assert!(ticks_of_stat("4242 daprd S 1").is_err(), "no parentheses");
        assert!(ticks_of_stat("4242 (daprd) S 1 4242 4242 0 -1 4194560 12020 0 0 0").is_err(), "truncated");
        assert!(ticks_of_stat(&STAT.replace(" 731 ", " seven ")).is_err(), "utime not a number");
        assert!(ticks_of_stat(&STAT.replace(" 17 3 ", " -17 3 ")).is_err(), "negative ticks");
    }

    #[test]
    fn the_machine_line_gives_total_and_idle() {
        let text = "cpu  100 5 50 800 40 1 2 2 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(machine_ticks(text).unwrap(), (1000, 840));
        assert!(machine_ticks("intr 1 2 3").is_err());
        assert!(machine_ticks("cpu  1 x 3 4 5").is_err());
    }

    fn at(start: Instant, secs: u64, per: &[(&str, u64)], machine: (u64, u64)) -> Sample {
        Sample {
            at: start + Duration::from_secs(secs),
            per: per.iter().map(|(n, t)| (n.to_string(), *t, 1)).collect(),
            wait_ns: secs * 100_000_000,
            machine: Some(machine),
        }
    }

    #[test]
    fn usage_is_the_difference_per_process_largest_first() {
        let t = Instant::now();
        let before = at(t, 0, &[("kafka", 1000), ("daprd-todo-api", 500), ("gone", 7)], (10_000, 9_000));
        let after = at(t, 10, &[("kafka", 1100), ("daprd-todo-api", 800), ("new", 50)], (12_000, 9_500));
        let u = usage(&before, &after, 100.0);
        assert_eq!(u.seconds, 10.0);
        let names: Vec<&str> = u.per.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, ["daprd-todo-api", "kafka", "new"]);
        assert_eq!(u.of("daprd-todo-api"), 3.0);
        assert_eq!(u.of("new"), 0.5);
        assert!((u.total() - 4.5).abs() < 1e-9);
        // 2,000 ticks of which 500 idle over 10 s: 1.5 busy cores.
        assert_eq!(u.machine_busy_cores, Some(1.5));
        // 4.5 CPU s + 1 s waiting for a CPU over 10 s.
        assert!((u.demand_cores() - 0.55).abs() < 1e-9);
    }

    #[test]
    fn the_run_queue_wait_is_the_second_schedstat_field() {
        assert_eq!(wait_of_schedstat("202550338 61517173 631\n"), Some(61_517_173));
        assert_eq!(wait_of_schedstat("202550338"), None);
        assert_eq!(wait_of_schedstat("a b c"), None);
    }

    #[test]
    fn quiet_means_back_near_the_idle_rate() {
        assert!(is_quiet(0.1, 0.04));
        assert!(!is_quiet(0.5, 0.04));
        assert!(is_quiet(0.0, 0.0));
    }
}
