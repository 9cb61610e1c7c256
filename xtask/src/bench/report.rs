//! The report: Markdown tables over every store, and JSON with the same content
//! (plus each series' samples).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::{Series, StoreRun};
use crate::paths;
use crate::stack;

/// The size in bytes of each component's release `.wasm`.
pub fn wasm_sizes() -> Result<Vec<(String, u64)>> {
    stack::components()
        .map(|app| {
            let wasm = paths::root().join(format!("target/wasm32-wasip2/release/{}.wasm", app.replace('-', "_")));
            let bytes = fs::metadata(&wasm).with_context(|| format!("reading {}", wasm.display()))?.len();
            Ok((app.to_string(), bytes))
        })
        .collect()
}

/// Writes `<stem>.md` and `<stem>.json` into `dir`; returns the Markdown.
pub fn write(dir: &Path, stem: &str, runs: &[StoreRun], wasm: &[(String, u64)]) -> Result<String> {
    fs::create_dir_all(dir)?;
    let markdown = format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n{}",
        heading(runs),
        targets_table(runs),
        ceilings_table(runs),
        profile_tables(runs),
        series_table(runs),
        memory_table(runs),
        wasm_table(wasm)
    );
    fs::write(dir.join(format!("{stem}.md")), &markdown)?;
    fs::write(dir.join(format!("{stem}.json")), serde_json::to_string_pretty(&to_json(runs, wasm))?)?;
    Ok(markdown)
}

fn heading(runs: &[StoreRun]) -> String {
    let load = |l: &Option<[f64; 3]>| l.map_or("?".into(), |[a, b, c]| format!("{a:.2} {b:.2} {c:.2}"));
    let stores: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{}{} ({:.1} min; load average {} at the start, {} at the end)",
                r.store,
                if r.quick { " --quick" } else { "" },
                r.seconds / 60.0,
                load(&r.load[0]),
                load(&r.load[1])
            )
        })
        .collect();
    format!(
        "# cargo xtask bench\n\n{} on {} cores, stores: {}.\nLatencies in ms; req/s is the throughput achieved \
         (answered requests per second of the run). The machine may be shared: CPU seconds of the stack's own \
         processes hold regardless; latencies and rates depend on the load average.\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        cores(),
        stores.join(", ")
    )
}

/// Issue 18's targets: goal, measured value, verdict, ceiling and ratio.
fn targets_table(runs: &[StoreRun]) -> String {
    let mut md = String::from(
        "## Targets (issue 18)\n\n| target | store | goal | measured | pass | ceiling | ceiling value | measured / ceiling | how |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for run in runs {
        for o in &run.targets {
            let verdict = match o.pass() {
                Some(true) => "PASS",
                Some(false) => "FAIL",
                None => "not measured",
            };
            let _ = writeln!(
                md,
                "| {} (`{}`) | {} | {} {} | {} | {verdict} | {} | {} | {} | {} |",
                o.target.what,
                o.target.id,
                run.store,
                o.target.goal.text(),
                o.target.unit,
                o.measured.map_or("-".into(), number),
                o.target.ceiling.map_or("-".into(), |c| format!("`{c}`")),
                o.ceiling.map_or("-".into(), number),
                o.ratio().map_or("-".into(), |r| format!("{r:.2}")),
                o.note.replace('|', "/"),
            );
        }
    }
    md.push_str(
        "\nA ratio is measured / ceiling: below 1 for a throughput (the share of the building block's own rate \
         the API reaches), above 1 for a latency or CPU (how many times the building block's own cost).\n",
    );
    md
}

/// The ceilings of each run: what the building blocks do alone.
fn ceilings_table(runs: &[StoreRun]) -> String {
    let mut md = String::from(
        "## Ceilings (same run, same sidecars and store)\n\n| ceiling | store | value | unit | from |\n|---|---|---|---|---|\n",
    );
    for run in runs {
        for c in &run.ceilings {
            let _ = writeln!(md, "| `{}` | {} | {} | {} | {} |", c.key, run.store, number(c.value), c.unit, c.from.replace('|', "/"));
        }
    }
    md
}

/// Per store: CPU of every process of the stack during the saturated create run.
fn profile_tables(runs: &[StoreRun]) -> String {
    let mut md = String::new();
    for run in runs {
        let p = &run.profile;
        let machine = p.usage.machine_busy_cores.map_or("?".into(), |c| format!("{c:.2}"));
        let _ = write!(
            md,
            "## CPU profile, {} (`create, 8 clients, max rate`: {} creates, {:.1} s incl. {:.1} s drain{}; machine busy {machine} cores, \
             the stack's threads waited {:.1} s for a CPU)\n\n\
             | process | OS processes | CPU s | idle cores | CPU ms per create (net of idle) | share |\n|---|---|---|---|---|---|\n",
            run.store,
            p.creates,
            p.usage.seconds,
            p.drain_seconds,
            if p.drained { "" } else { ", NOT DRAINED" },
            p.usage.wait_seconds
        );
        let total = p.net_ms_per_create(None);
        for (name, secs, count) in &p.usage.per {
            let net = p.net_ms_per_create(Some(name));
            let idle = if p.idle.seconds > 0.0 { p.idle.of(name) / p.idle.seconds } else { 0.0 };
            let share = if total > 0.0 { 100.0 * net / total } else { 0.0 };
            let _ = writeln!(md, "| {name} | {count} | {secs:.2} | {idle:.3} | {net:.2} | {share:.0}% |");
        }
        let _ = writeln!(md, "| all | | {:.2} | {:.3} | {total:.2} | 100% |", p.usage.total(), p.idle.total() / p.idle.seconds.max(1e-9));
        md.push_str(
            "\nCPU is utime+stime of each process and its live descendants plus the children they reaped \
             (cutime+cstime), from `/proc/<pid>/stat`, from the start of the run until the stack's CPU demand (CPU plus \
             run-queue wait) was back at its idle demand and audit-service held every create (every consumer had done \
             its share); the idle rate (measured before the ceilings) is subtracted per process. `postgres` is the \
             postmaster with every backend.\n\n",
        );
    }
    md
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// One row per series and store, the stores of a series next to each other.
fn series_table(runs: &[StoreRun]) -> String {
    let mut md = String::from(
        "| measure | store | n | p50 ms | p95 ms | p99 ms | max ms | req/s | notes |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for name in series_names(runs) {
        for run in runs {
            if let Some(s) = run.series.iter().find(|s| s.name == name) {
                let _ = writeln!(md, "| {name} | {} | {} | {} |", run.store, s.millis.len(), cells(s).join(" | "));
            }
        }
    }
    md.push_str("\nThe idle-streams row is not a latency: its p50 cell is the extra CPU ms per second of the 50 streams.\n");
    md
}

/// The series names in order of first appearance.
pub fn series_names(runs: &[StoreRun]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for s in runs.iter().flat_map(|r| &r.series) {
        if !names.contains(&s.name) {
            names.push(s.name.clone());
        }
    }
    names
}

/// p50, p95, p99, max, req/s and notes of `s`.
fn cells(s: &Series) -> Vec<String> {
    let rate = s.per_second.map_or("-".into(), |r| format!("{r:.1}"));
    let note = s.note.replace('|', "/");
    if !s.latency {
        return vec![number(s.percentile(50.0)), "-".into(), "-".into(), "-".into(), rate, note];
    }
    vec![number(s.percentile(50.0)), number(s.percentile(95.0)), number(s.percentile(99.0)), number(s.max()), rate, note]
}

fn number(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "-".into()
    }
}

/// Peak RSS per process, a column per store, and their sum.
fn memory_table(runs: &[StoreRun]) -> String {
    let mut processes: Vec<&str> = Vec::new();
    for peak in runs.iter().flat_map(|r| &r.memory) {
        if !processes.contains(&peak.process.as_str()) {
            processes.push(&peak.process);
        }
    }
    let columns: Vec<String> = runs.iter().map(|r| format!("{} peak RSS MiB", r.store)).collect();
    let mut md = format!("| process | {} |\n|---|{}\n", columns.join(" | "), "---|".repeat(runs.len()));
    for process in processes {
        let cells: Vec<String> = runs
            .iter()
            .map(|r| match r.memory.iter().find(|p| p.process == process) {
                Some(p) if p.processes > 1 => format!("{:.1} ({} processes)", p.mib, p.processes),
                Some(p) if p.processes == 1 => format!("{:.1}", p.mib),
                _ => "-".into(),
            })
            .collect();
        let _ = writeln!(md, "| {process} | {} |", cells.join(" | "));
    }
    let totals: Vec<String> = runs.iter().map(|r| format!("{:.1}", r.memory.iter().map(|p| p.mib).sum::<f64>())).collect();
    let _ = writeln!(md, "| all (sum of peaks) | {} |", totals.join(" | "));
    md.push_str(
        "\nPeak RSS is `VmHWM` from `/proc/<pid>/status`, read right before the stack stops. `postgres` sums the \
         postmaster and its children alive then (backends and background workers); each counts the shared buffers it \
         touched, so that sum is an upper bound. The bench client itself is not included.\n",
    );
    md
}

fn wasm_table(wasm: &[(String, u64)]) -> String {
    let mut md = String::from("| component | .wasm bytes |\n|---|---|\n");
    for (app, bytes) in wasm {
        let _ = writeln!(md, "| {app} | {bytes} |");
    }
    md
}

fn to_json(runs: &[StoreRun], wasm: &[(String, u64)]) -> Value {
    let runs: Vec<Value> = runs
        .iter()
        .map(|run| {
            json!({
                "store": run.store.to_string(),
                "seconds": run.seconds,
                "quick": run.quick,
                "load_average": { "start": run.load[0], "end": run.load[1] },
                "targets": run.targets.iter().map(|o| json!({
                    "id": o.target.id, "what": o.target.what, "unit": o.target.unit, "goal": o.target.goal.text(),
                    "measured": o.measured, "pass": o.pass(), "ceiling": o.target.ceiling, "ceiling_value": o.ceiling,
                    "ratio": o.ratio(), "note": o.note,
                })).collect::<Vec<_>>(),
                "ceilings": run.ceilings.iter().map(|c| json!({ "key": c.key, "value": c.value, "unit": c.unit, "from": c.from })).collect::<Vec<_>>(),
                "cpu_profile": {
                    "creates": run.profile.creates,
                    "seconds": run.profile.usage.seconds,
                    "drain_seconds": run.profile.drain_seconds,
                    "machine_busy_cores": run.profile.usage.machine_busy_cores,
                    "net_ms_per_create": run.profile.net_ms_per_create(None),
                    "processes": run.profile.usage.per.iter().map(|(name, secs, count)| json!({
                        "process": name, "os_processes": count, "cpu_seconds": secs,
                        "idle_cpu_seconds": run.profile.idle.of(name), "idle_seconds": run.profile.idle.seconds,
                        "net_ms_per_create": run.profile.net_ms_per_create(Some(name)),
                    })).collect::<Vec<_>>(),
                },
                "series": run.series.iter().map(series_json).collect::<Vec<_>>(),
                "memory": run.memory.iter().map(|p| json!({ "process": p.process, "peak_rss_mib": p.mib, "processes": p.processes })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "generated": chrono::Utc::now().to_rfc3339(),
        "cores": cores(),
        "stores": runs,
        "wasm": wasm.iter().map(|(app, bytes)| json!({ "component": app, "bytes": bytes })).collect::<Vec<_>>(),
    })
}

fn series_json(s: &Series) -> Value {
    json!({
        "name": s.name,
        "latency": s.latency,
        "n": s.millis.len(),
        "failed": s.failed,
        "p50_ms": s.percentile(50.0),
        "p95_ms": s.percentile(95.0),
        "p99_ms": s.percentile(99.0),
        "max_ms": s.max(),
        "per_second": s.per_second,
        "note": s.note,
        "samples_ms": s.millis,
    })
}
