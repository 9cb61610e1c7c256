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
    let markdown = format!("{}\n{}\n{}\n{}", heading(runs), series_table(runs), memory_table(runs), wasm_table(wasm));
    fs::write(dir.join(format!("{stem}.md")), &markdown)?;
    fs::write(dir.join(format!("{stem}.json")), serde_json::to_string_pretty(&to_json(runs, wasm))?)?;
    Ok(markdown)
}

fn heading(runs: &[StoreRun]) -> String {
    let stores: Vec<String> = runs.iter().map(|r| format!("{} ({:.1} min)", r.store, r.seconds / 60.0)).collect();
    format!(
        "# cargo xtask bench\n\n{} on {} cores, stores: {}.\nLatencies in ms; req/s is the throughput achieved \
         (answered requests per second of the run).\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        cores(),
        stores.join(", ")
    )
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
