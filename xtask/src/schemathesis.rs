//! schemathesis (pinned, in a venv of the tool cache) against a running stack:
//! every operation of `specs/contracts/openapi.json` (as todo-api serves it), sent to the service its
//! path's `servers` names (the local ports go in as server variables), with
//! every check, a fixed seed and a time budget, authenticated as a fresh user.
//! Any failure fails the run. Settings and the exclusions, each with its
//! reason: `tests/schemathesis/schemathesis.toml`.

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::stack::{hs256_secret, Ports, APPS, WEB};
use crate::{paths, token};

/// The package, pinned.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// The seed of every run, so that CI is repeatable.
const SEED: &str = "42";
/// The time budget of `cargo xtask test`'s run, in seconds.
pub const TEST_SECS: u64 = 90;

/// Runs schemathesis for `seconds` against the stack on `ports`; returns the
/// number of operations it tested.
pub fn run(ports: Ports, seconds: u64) -> Result<u64> {
    let root = paths::root();
    let version = SCHEMATHESIS.rsplit('=').next().unwrap_or_default();
    let bin = paths::pip_venv(&paths::cache().join(format!("schemathesis-{version}")), SCHEMATHESIS)?;
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let user = format!("schemathesis-{}", &run_id[run_id.len() - 10..]);
    let token = token::sign(&user, seconds + 3600, hs256_secret()?.as_bytes())?;
    let out = root.join("target/schemathesis");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    let mut cmd = Command::new(bin.join("st"));
    // schemathesis keeps a cache of earlier failures in `.schemathesis/` of its
    // working directory and replays them: a fresh directory keeps runs repeatable.
    cmd.current_dir(&out);
    cmd.arg("--config-file")
        .arg(root.join("tests/schemathesis/schemathesis.toml"))
        .args(["run", "--checks", "all", "--seed", SEED, "--max-time", &seconds.to_string()])
        .args(["--report", "junit,har", "--report-dir"])
        .arg(&out)
        .arg("--report-junit-path")
        .arg(out.join("junit.xml"))
        // The document as todo-api serves it (built from specs/contracts/openapi.json):
        // schemathesis honours per-path `servers` only for a document it loads by URL.
        .arg(format!("http://127.0.0.1:{}/openapi.json", ports.app(0)))
        .env("SCHEMATHESIS_HOOKS", root.join("tests/schemathesis/hooks.py"))
        .env("SCHEMATHESIS_USER", &user)
        .env("SCHEMATHESIS_TOKEN", token)
        .env("NO_COLOR", "1");
    // The server variables of the document: `{todo_api_port}`, ... (see its `servers`).
    for (i, app) in APPS.iter().enumerate() {
        cmd.env(format!("{}_PORT", app.to_uppercase().replace('-', "_")), ports.app(i).to_string());
    }
    cmd.env(format!("{}_PORT", WEB.to_uppercase()), ports.web().to_string());
    println!("schemathesis: every check, seed {SEED}, {seconds} s, as {user} (reports: {})", out.display());
    let status = cmd.status().context("cannot run schemathesis")?;
    let report = std::fs::read_to_string(out.join("junit.xml")).unwrap_or_default();
    if !status.success() {
        bail!("schemathesis found failures ({status}); each failure above has a curl command to reproduce it");
    }
    let operations = report.matches("<testcase ").count() as u64;
    if operations == 0 {
        bail!("schemathesis tested no operation (see {})", out.display());
    }
    Ok(operations)
}
