//! `cargo xtask doctor`: one screen on what is installed, what is missing, and
//! the one command that fixes it.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::bootstrap::{self, DAPR_VERSION, KAFKA_VERSION, PREREQUISITES, WASMTIME_VERSION, WASM_TOOLS_VERSION};
use crate::paths;

/// One line of the report.
struct Line {
    what: String,
    ok: bool,
    detail: String,
}

/// Prints the report. Exits 0 either way: it only tells.
pub fn run() -> Result<()> {
    let cache = paths::cache();
    let mut lines = Vec::new();
    let mut missing_prerequisite = Vec::new();
    for (name, how) in PREREQUISITES {
        match bootstrap::which(name) {
            Some(path) => lines.push(Line { what: name.into(), ok: true, detail: version_of(&path, name) }),
            None => {
                missing_prerequisite.push(how);
                lines.push(Line { what: name.into(), ok: false, detail: format!("not on PATH: install {how}") });
            }
        }
    }
    lines.push(match bootstrap::has_wasm_target() {
        Some(true) => Line { what: "rust target wasm32-wasip2".into(), ok: true, detail: "installed".into() },
        Some(false) => Line { what: "rust target wasm32-wasip2".into(), ok: false, detail: "missing (bootstrap adds it)".into() },
        None => {
            missing_prerequisite.push("rustup (https://rustup.rs)");
            Line { what: "rustup".into(), ok: false, detail: "not on PATH: install rustup (https://rustup.rs)".into() }
        }
    });
    lines.push(match bootstrap::which("spin") {
        Some(spin) => Line { what: "wasm host: spin".into(), ok: true, detail: version_of(&spin, "spin") },
        None => cached(format!("wasm host: wasmtime {WASMTIME_VERSION}"), &bootstrap::tool_path(&cache, "wasmtime", WASMTIME_VERSION)),
    });
    lines.push(cached(format!("wasm-tools {WASM_TOOLS_VERSION}"), &bootstrap::tool_path(&cache, "wasm-tools", WASM_TOOLS_VERSION)));
    lines.push(cached(format!("daprd + scheduler {DAPR_VERSION}"), &bootstrap::dapr_dir(&cache)?.join("daprd")));
    lines.push(cached(format!("kafka {KAFKA_VERSION} jars"), &bootstrap::kafka_dir(&cache).join(".complete")));
    for (what, path) in crate::k8s::cached(&cache)? {
        lines.push(cached(format!("{what} (cargo xtask k8s)"), &path));
    }
    lines.push(match bootstrap::installed_postgres() {
        Some(bin) => Line { what: "postgresql (--store postgres)".into(), ok: true, detail: bin.display().to_string() },
        None => {
            Line { what: "postgresql (--store postgres)".into(), ok: false, detail: "missing (installed with apt-get on first use)".into() }
        }
    });

    println!("tool cache: {}\n", cache.display());
    for line in &lines {
        println!("  {} {:<34} {}", if line.ok { "ok     " } else { "MISSING" }, line.what, line.detail);
    }
    println!();
    if !missing_prerequisite.is_empty() {
        println!("First install: {}.", missing_prerequisite.join("; "));
        println!("Then run `cargo xtask bootstrap` for the rest.");
    } else if lines.iter().any(|l| !l.ok) {
        println!("Fix: `cargo xtask bootstrap` (about 15 minutes on a fresh 2-core machine: the Go build of daprd is the long pole;");
        println!("`cargo xtask dev` and `cargo xtask test` run it themselves; `cargo xtask k8s` installs its own tools).");
    } else {
        println!("Everything is installed: `cargo xtask dev` starts the stack, `cargo xtask test` runs every test.");
    }
    Ok(())
}

/// A tool the bootstrap puts into the cache at `path`.
fn cached(what: String, path: &Path) -> Line {
    if path.is_file() {
        Line { what, ok: true, detail: path.display().to_string() }
    } else {
        Line { what, ok: false, detail: "not in the cache yet".into() }
    }
}

/// The first line `<tool> --version` prints (Java prints it on stderr), or its path.
fn version_of(path: &Path, name: &str) -> String {
    let flag = if name == "go" { "version" } else { "--version" };
    Command::new(path)
        .arg(flag)
        .output()
        .ok()
        .and_then(|o| {
            let text = if o.stdout.is_empty() { o.stderr } else { o.stdout };
            String::from_utf8_lossy(&text).lines().next().map(without_ansi)
        })
        .unwrap_or_else(|| path.display().to_string())
}

/// `line` without ANSI escape sequences (Maven colours its banner).
fn without_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn ansi_sequences_are_dropped() {
        assert_eq!(super::without_ansi("\x1b[1mApache Maven 3.8.7\x1b[m"), "Apache Maven 3.8.7");
        assert_eq!(super::without_ansi("go version go1.26.8"), "go version go1.26.8");
    }
}
