//! Where things are: the workspace, the tool cache, and running cargo.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// The tool cache: `TODO_CACHE_DIR`, else `$XDG_CACHE_HOME/todo-chatbot`, else
/// `~/.cache/todo-chatbot`. Outside the work tree, so clean clones reuse it.
pub fn cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("TODO_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".cache"));
    base.join("todo-chatbot")
}

/// Runs `cargo <args>` in the workspace.
pub fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo).args(args).current_dir(root()))
}

/// Runs `cargo test <args>`, echoing its output, and returns the number of
/// tests passed as counted from its `test result:` lines.
pub fn cargo_test(args: &[&str], env: &[(String, String)]) -> Result<u64> {
    use std::io::{BufRead, BufReader};
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(cargo)
        .arg("test")
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run cargo test {}", args.join(" ")))?;
    let mut passed = 0;
    for line in BufReader::new(child.stdout.take().expect("piped stdout")).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += rest.split(". ").nth(1).and_then(|p| p.split(' ').next()).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("`cargo test {}` failed ({status})", args.join(" "));
    }
    Ok(passed)
}

/// A venv at `venv` with the pinned `requirement` (`name==x.y.z`) installed by
/// pip; reused while its marker names the same requirement. Returns the venv's
/// `bin/` directory.
pub fn pip_venv(venv: &std::path::Path, requirement: &str) -> Result<PathBuf> {
    let bin = venv.join("bin");
    let marker = venv.join(".installed");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == requirement) && bin.join("python").is_file() {
        return Ok(bin);
    }
    if venv.exists() {
        std::fs::remove_dir_all(venv).with_context(|| format!("removing half-installed {}", venv.display()))?;
    }
    println!("installing {requirement} into {}", venv.display());
    run(Command::new("python3").args(["-m", "venv"]).arg(venv))
        .context("`python3 -m venv` failed (Debian: apt-get install python3-venv)")?;
    run(Command::new(bin.join("python")).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        requirement,
    ]))
    .with_context(|| format!("pip install {requirement} failed"))?;
    std::fs::write(&marker, requirement)?;
    Ok(bin)
}

/// Runs a command to completion, failing with its name and status.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

/// Every file under `dir` (recursively) whose name ends in `.{ext}`, sorted.
pub fn files_with_ext(dir: &std::path::Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))?.flatten() {
            let p = entry.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Runs `cmd` with its output into `log`; fails with `what` and the log's path.
pub fn run_logged(cmd: &mut Command, log: &std::path::Path, what: &str) -> Result<()> {
    let status = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(log)?)
        .stderr(std::fs::File::create(log)?.try_clone()?)
        .status()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{what} failed ({status}); see {}", log.display());
    }
    Ok(())
}
