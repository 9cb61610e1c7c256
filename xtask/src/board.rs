//! The board's browser suite (`web/e2e/board.mjs`): Debian's Chromium driven by
//! playwright-core, against a running [`Stack`]. The script asks for faults on
//! its stdout (`xtask:kill <process>`, `xtask:restart <process>`); this side
//! does them with [`Stack::kill`] / [`Stack::restart`] and answers `done`.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::bootstrap::{self, Tools};
use crate::stack::{hs256_secret, Mode, Stack, Store};
use crate::{paths, token};

/// `cargo xtask board [--store ...]`: a fresh stack, then the browser suite.
pub fn run_alone(tools: &Tools, store: Store) -> Result<u64> {
    let mut stack = Stack::start(tools, store, Mode::Test)?;
    run(&mut stack)
}

/// Runs the suite against `stack`; returns the number of steps passed.
pub fn run(stack: &mut Stack) -> Result<u64> {
    let root = paths::root();
    let chromium = bootstrap::chromium()?;
    install_packages(&root.join("web"))?;
    let out = root.join("target/web-e2e");
    let _ = fs::remove_dir_all(&out);
    let secret = hs256_secret()?;
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let user = |who: &str| format!("board-{who}-{}", &run_id[run_id.len() - 10..]);
    let (a, b) = (user("a"), user("b"));
    let mut child = Command::new("node")
        .arg("e2e/board.mjs")
        .current_dir(root.join("web"))
        .envs(stack.test_env())
        .env("CHROMIUM", &chromium)
        .env("BOARD_OUT_DIR", &out)
        .env("BOARD_TOKEN_A", token::sign(&a, 3600, secret.as_bytes())?)
        .env("BOARD_TOKEN_B", token::sign(&b, 3600, secret.as_bytes())?)
        .env("BOARD_USER_A", &a)
        .env("BOARD_USER_B", &b)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run node (Node.js 20+ is required for the board's browser tests)")?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut passed = 0;
    for line in BufReader::new(child.stdout.take().expect("piped stdout")).lines() {
        let line = line?;
        println!("{line}");
        if line.starts_with("ok - ") {
            passed += 1;
        }
        let Some(request) = line.strip_prefix("xtask:") else { continue };
        let answer = match request.split_once(' ') {
            Some(("kill", name)) => stack.kill(name),
            Some(("restart", name)) => stack.restart(name),
            _ => Err(anyhow::anyhow!("unknown request {request:?}")),
        };
        let reply = match answer {
            Ok(()) => "done".to_owned(),
            Err(e) => format!("error: {e:#}").replace('\n', " "),
        };
        writeln!(stdin, "{reply}")?;
    }
    drop(stdin);
    let status = child.wait()?;
    if !status.success() || passed == 0 {
        bail!("the board's browser suite failed ({status}); screenshots and report in {}", out.display());
    }
    println!("board: screenshots and report.json in {}", out.display());
    Ok(passed)
}

/// `npm ci` in `web/` unless its `node_modules` matches the lockfile.
fn install_packages(web: &Path) -> Result<()> {
    let lock = fs::read(web.join("package-lock.json")).context("web/package-lock.json is missing")?;
    let stamp = web.join("node_modules/.installed-lock");
    if fs::read(&stamp).is_ok_and(|s| s == lock) {
        return Ok(());
    }
    bootstrap::which("npm").context("`npm` is required for the board's browser tests: install Node.js 20+ with npm")?;
    println!("installing the board's test packages (npm ci in web/)");
    paths::run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(web))?;
    fs::write(&stamp, lock)?;
    Ok(())
}
