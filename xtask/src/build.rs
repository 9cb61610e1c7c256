//! Building the components and checking them against the host contract in `wit/`.

use std::process::Command;

use anyhow::{bail, Result};

use crate::bootstrap::Tools;
use crate::paths;
use crate::stack::APPS;

/// The world in `wit/` that every component must target.
const WORLD: &str = "todo-chatbot:host/component";

/// Builds every component for `wasm32-wasip2` (release).
pub fn components() -> Result<()> {
    let mut args = vec!["build", "--release", "--target", "wasm32-wasip2"];
    for app in APPS {
        args.extend(["-p", app]);
    }
    paths::cargo(&args)
}

/// Runs `wasm-tools component targets` on every built component: a component
/// that imports anything outside the world (a Spin-only interface, say) fails.
pub fn check_targets(tools: &Tools) -> Result<()> {
    let root = paths::root();
    for app in APPS {
        let wasm = root.join(format!("target/wasm32-wasip2/release/{}.wasm", app.replace('-', "_")));
        let out = Command::new(&tools.wasm_tools)
            .args(["component", "targets", "--world", WORLD])
            .arg(root.join("wit"))
            .arg(&wasm)
            .output()?;
        if !out.status.success() {
            bail!("{app} does not target {WORLD}:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        println!("{app}: targets {WORLD}");
    }
    Ok(())
}
