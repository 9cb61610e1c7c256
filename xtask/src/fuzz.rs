//! `cargo xtask fuzz [target] [--seconds N]`: runs the fuzz targets of
//! `fuzz/` with cargo-fuzz on nightly, N seconds each, and reports what they found.
//!
//! New inputs go to `fuzz/target/corpus/<target>/`; the committed seeds in
//! `fuzz/corpus/<target>/` are read but never grown, and `fuzz/dict/<target>.dict`
//! lists the parser's tokens. Crashes are written to `fuzz/artifacts/<target>/`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::{bootstrap, paths};

/// cargo-fuzz, which builds the targets with libFuzzer.
pub const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// The fuzz targets (`[[bin]]`s of `fuzz/Cargo.toml`).
const TARGETS: [&str; 3] = ["task_json", "recurrence", "filters"];
/// Seconds per target without `--seconds`.
const SECONDS_DEFAULT: u64 = 60;
/// An input that runs longer than this many seconds is a finding.
const TIMEOUT_SECS: u64 = 30;

/// What one run of a target found.
struct Outcome {
    runs: Option<u64>,
    execs_per_sec: Option<u64>,
    /// The input that crashed or timed out, if one did.
    artifact: Option<String>,
}

/// Runs the named target, or all of them, for `--seconds` each.
pub fn run(args: &[String]) -> Result<()> {
    let (targets, seconds) = parse_args(args)?;
    let nightly = nightly_bin()?;
    let cache = paths::cache();
    fs::create_dir_all(cache.join("logs"))?;
    let cargo_fuzz = bootstrap::cargo_install(&cache, "cargo-fuzz", CARGO_FUZZ_VERSION, "cargo-fuzz")?;
    let mut crashed = Vec::new();
    for target in targets {
        let outcome = fuzz(&cargo_fuzz, &nightly, target, seconds)?;
        let count = |n: Option<u64>| n.map_or("?".to_owned(), |n| n.to_string());
        match &outcome.artifact {
            None => println!("{target}: {} runs ({} exec/s) in {seconds} s, no crash", count(outcome.runs), count(outcome.execs_per_sec)),
            Some(artifact) => {
                println!("{target}: CRASH after {} runs; input: {artifact}", count(outcome.runs));
                println!("  to keep it as a stable regression test: copy it into fuzz/corpus/{target}/ and run");
                println!("  cargo test --manifest-path fuzz/Cargo.toml");
                crashed.push(format!("{target} ({artifact})"));
            }
        }
    }
    if !crashed.is_empty() {
        bail!("fuzzing found crashes: {}", crashed.join(", "));
    }
    Ok(())
}

fn parse_args(args: &[String]) -> Result<(Vec<&'static str>, u64)> {
    let (mut targets, mut seconds) = (TARGETS.to_vec(), SECONDS_DEFAULT);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--seconds" {
            let value = args.next().context("--seconds needs a number")?;
            seconds = value.parse().ok().filter(|s| *s > 0).with_context(|| format!("--seconds {value}: not a positive number"))?;
        } else if let Some(target) = TARGETS.iter().find(|t| *t == arg) {
            targets = vec![target];
        } else {
            bail!("unknown fuzz target `{arg}`; the targets are {}", TARGETS.join(", "));
        }
    }
    Ok((targets, seconds))
}

/// The bin directory of the nightly toolchain, installed if missing.
fn nightly_bin() -> Result<PathBuf> {
    let which = || {
        let out = Command::new("rustup").args(["which", "--toolchain", "nightly", "cargo"]).stderr(Stdio::null()).output();
        out.ok().filter(|o| o.status.success()).map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
    };
    let cargo = match which() {
        Some(cargo) => cargo,
        None => {
            println!("installing the nightly toolchain (cargo-fuzz needs it)");
            paths::run(Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))
                .context("`rustup` is required to install the nightly toolchain (https://rustup.rs)")?;
            which().context("the nightly toolchain was installed but has no cargo")?
        }
    };
    Ok(cargo.parent().context("cargo has a directory")?.to_path_buf())
}

/// Runs `target` for `seconds`, its output in `fuzz/target/logs/<target>.log`.
fn fuzz(cargo_fuzz: &Path, nightly: &Path, target: &str, seconds: u64) -> Result<Outcome> {
    let fuzz_dir = paths::root().join("fuzz");
    let scratch = fuzz_dir.join("target/corpus").join(target);
    let logs = fuzz_dir.join("target/logs");
    fs::create_dir_all(&scratch)?;
    fs::create_dir_all(&logs)?;
    let log = logs.join(format!("{target}.log"));
    println!("fuzzing {target} for {seconds} s (log: {})", log.display());
    let path = std::env::join_paths(
        std::iter::once(nightly.to_path_buf()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )?;
    let status = Command::new(cargo_fuzz)
        .args(["fuzz", "run", "--fuzz-dir", "fuzz", "--features", "fuzz", "--sanitizer", "none", "--debug-assertions", target])
        .arg(&scratch)
        .arg(fuzz_dir.join("corpus").join(target))
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={TIMEOUT_SECS}"))
        .arg("-print_final_stats=1")
        .arg(format!("-dict={}", fuzz_dir.join("dict").join(format!("{target}.dict")).display()))
        .env("PATH", path)
        .env("RUSTUP_TOOLCHAIN", "nightly")
        .current_dir(paths::root())
        .stdin(Stdio::null())
        .stdout(fs::File::create(&log)?)
        .stderr(fs::File::create(&log)?.try_clone()?)
        .status()
        .with_context(|| format!("cannot run {}", cargo_fuzz.display()))?;
    let output = fs::read_to_string(&log)?;
    let stat = |name: &str| output.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok());
    let artifact = output
        .lines()
        .rev()
        .filter_map(|l| l.split_once("Test unit written to ").map(|(_, path)| path.trim().to_owned()))
        .find(|path| !path.contains("slow-unit-"));
    if !status.success() && artifact.is_none() {
        bail!("fuzzing {target} failed ({status}); see {}", log.display());
    }
    // The final stats are printed on a clean exit; after a crash, the last progress line (`#1234\t...`) counts.
    let progress = || output.lines().rev().find_map(|l| l.strip_prefix('#')?.split(['\t', ' ']).next()?.parse().ok());
    let runs = stat("stat::number_of_executed_units:").or_else(progress);
    Ok(Outcome { runs, execs_per_sec: stat("stat::average_exec_per_sec:"), artifact })
}
