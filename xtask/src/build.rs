//! Building the components and checking them against the host contract in `wit/`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};

use crate::bootstrap::Tools;
use crate::paths;
use crate::stack;

/// The world in `wit/` that every component must target.
const WORLD: &str = "todo-chatbot:host/component";

/// Builds every component for `wasm32-wasip2` (release).
pub fn components() -> Result<()> {
    let mut args = vec!["build", "--release", "--target", "wasm32-wasip2"];
    for app in stack::components() {
        args.extend(["-p", app]);
    }
    paths::cargo(&args)
}

/// Runs `wasm-tools component targets` on every built component: a component
/// that imports anything outside the world (a Spin-only interface, say) fails.
/// First proves that the check catches such an import, on a probe component.
pub fn check_targets(tools: &Tools) -> Result<()> {
    let root = paths::root();
    let probe = spin_only_probe(tools)?;
    if targets(tools, &probe)?.is_ok() {
        bail!("the host-contract check accepted a component importing fermyon:spin/key-value");
    }
    for app in stack::components() {
        let wasm = root.join(format!("target/wasm32-wasip2/release/{}.wasm", app.replace('-', "_")));
        if let Err(why) = targets(tools, &wasm)? {
            bail!("{app} does not target {WORLD}:\n{why}");
        }
        println!("{app}: targets {WORLD}");
    }
    println!("a probe importing fermyon:spin/key-value was rejected");
    Ok(())
}

/// `Ok(Ok(()))` when `wasm` targets the world, `Ok(Err(why))` when it does not.
fn targets(tools: &Tools, wasm: &Path) -> Result<Result<(), String>> {
    let out = Command::new(&tools.wasm_tools)
        .args(["component", "targets", "--world", WORLD])
        .arg(paths::root().join("wit"))
        .arg(wasm)
        .output()?;
    Ok(if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) })
}

/// A component that targets the world plus Spin's key-value interface.
fn spin_only_probe(tools: &Tools) -> Result<PathBuf> {
    let dir = paths::root().join("target/host-contract-probe");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("deps/spin"))?;
    for entry in fs::read_dir(paths::root().join("wit/deps"))? {
        let entry = entry?;
        let target = dir.join("deps").join(entry.file_name());
        fs::create_dir_all(&target)?;
        for file in fs::read_dir(entry.path())? {
            let file = file?;
            fs::copy(file.path(), target.join(file.file_name()))?;
        }
    }
    let world = fs::read_to_string(paths::root().join("wit/world.wit"))?;
    fs::write(
        dir.join("world.wit"),
        format!("{world}\nworld spin-only {{\n  include component;\n  import fermyon:spin/key-value@2.0.0;\n}}\n"),
    )?;
    fs::write(
        dir.join("deps/spin/key-value.wit"),
        "package fermyon:spin@2.0.0;\n\ninterface key-value {\n  get: func(key: string) -> option<list<u8>>;\n}\n",
    )?;
    let (core, probe) = (dir.join("core.wasm"), dir.join("probe.wasm"));
    paths::run(
        Command::new(&tools.wasm_tools).args(["component", "embed", "--dummy", "--world", "spin-only"]).arg(&dir).arg("-o").arg(&core),
    )?;
    paths::run(Command::new(&tools.wasm_tools).args(["component", "new"]).arg(&core).arg("-o").arg(&probe))?;
    Ok(probe)
}
