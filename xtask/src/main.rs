//! `cargo xtask`: everything needed to build, run and test the Todo platform.
//!
//! ```text
//! cargo xtask doctor                    what is installed, what is missing, how to fix it
//! cargo xtask bootstrap                 install pinned tools into the cache
//! cargo xtask build                     build every component for wasm32-wasip2
//! cargo xtask dev [--store sqlite|postgres] [--better-auth] [--replicas N]
//!                                       run the whole local stack (with a Better Auth server, N replicas per app-id)
//! cargo xtask test                      unit tests, end-to-end on both stores, the board in Chromium, chaos
//! cargo xtask board [--store ...]       the board's browser suite alone, on a fresh stack
//! cargo xtask bench [--store ...] [--quick]  issue 18's targets, ceilings, CPU profile, memory; both stores by default
//! cargo xtask chaos [--store ...] [--replicas 2]   load while killing parts (one replica at a time); check invariants
//! cargo xtask fuzz [target] [--seconds N]   fuzz the domain parsers (nightly)
//! cargo xtask k8s                       spinkube/ on a real API server with the SpinKube operator
//! cargo xtask openapi                   write the domain's rules and each path's servers into the OpenAPI document
//! cargo xtask schemathesis [--seconds N]   fuzz every documented operation of the running dev stack
//! cargo xtask token <user> [--ttl SECS] print a development JWT
//! ```

mod bench;
mod better_auth;
mod board;
mod bootstrap;
mod build;
mod chaos;
mod doctor;
mod front;
mod fuzz;
mod k8s;
mod lint;
mod mcp_clients;
mod openapi;
mod paths;
mod schemathesis;
mod stack;
#[cfg(test)]
mod tidy;
mod token;

use anyhow::{Context, Result};

use crate::stack::Store;

fn main() {
    if let Err(e) = run(std::env::args().skip(1).collect()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let (cmd, rest) = args.split_first().map(|(c, r)| (c.as_str(), r)).unwrap_or(("help", &[]));
    match cmd {
        "bootstrap" => bootstrap::Tools::install().map(drop),
        "bench" => {
            // Without --store: each store in turn, in one report.
            let stores = if rest.iter().any(|a| a == "--store") { vec![parse_store(rest)?] } else { vec![Store::Sqlite, Store::Postgres] };
            bench::run(&bootstrap::Tools::install()?, &stores, rest.iter().any(|a| a == "--quick"))
        }
        "board" => {
            let store = parse_store(rest)?;
            let tools = bootstrap::Tools::begin()?;
            build::components()?;
            board::run_alone(&tools.ready()?, store).map(drop)
        }
        "build" => build::components(),
        "chaos" => chaos::run(&bootstrap::Tools::install()?, parse_store(rest)?, parse_replicas(rest)?).map(drop),
        "dev" => dev(rest),
        "doctor" => doctor::run(),
        "fuzz" => fuzz::run(rest),
        "k8s" => k8s::run(),
        "openapi" => openapi::write(),
        "schemathesis" => {
            let seconds = match rest.iter().position(|a| a == "--seconds") {
                Some(i) => rest.get(i + 1).context("--seconds needs a number")?.parse().context("--seconds must be a number")?,
                None => schemathesis::TEST_SECS,
            };
            schemathesis::run(stack::Ports::from_env(stack::Mode::Dev)?, seconds).map(drop)
        }
        "test" => test(rest),
        "token" => token::print(rest),
        _ => {
            println!("{}", include_str!("usage.txt"));
            Ok(())
        }
    }
}

fn parse_store(args: &[String]) -> Result<Store> {
    match args.iter().position(|a| a == "--store") {
        None => Ok(Store::Sqlite),
        Some(i) => args.get(i + 1).context("--store needs a value: sqlite or postgres")?.parse(),
    }
}

/// `--replicas N` (default 1): hosts and sidecars per app-id.
fn parse_replicas(args: &[String]) -> Result<usize> {
    match args.iter().position(|a| a == "--replicas") {
        None => Ok(1),
        Some(i) => args.get(i + 1).context("--replicas needs a number")?.parse().context("--replicas needs a number such as 2"),
    }
}

/// `cargo xtask dev`: the whole stack in the foreground until Ctrl-C; with
/// `--better-auth`, also the Better Auth test server, which the stack trusts.
fn dev(args: &[String]) -> Result<()> {
    let store = parse_store(args)?;
    let tools = bootstrap::Tools::begin()?;
    build::components()?;
    let tools = tools.ready()?;
    let better_auth = args.iter().any(|a| a == "--better-auth");
    let stack = stack::Stack::start_with(&tools, store, stack::Mode::Dev, better_auth, parse_replicas(args)?)?;
    stack.print_summary();
    let secret = stack::hs256_secret()?;
    let token = token::sign("alice", 86_400, secret.as_bytes())?;
    println!("\nThe task board, signed in as alice for a day (development token):\n  {}/#token={token}", stack.web_url());
    println!("\nPress Ctrl-C to stop everything.");
    stack.wait_for_interrupt();
    Ok(())
}

/// `cargo xtask test`: `cargo fmt --check` and clippy, unit tests, the Kubernetes
/// check, then the end-to-end suite against the real stack on each store.
fn test(args: &[String]) -> Result<()> {
    let stores = match args.iter().position(|a| a == "--store") {
        Some(_) => vec![parse_store(args)?],
        None => vec![Store::Sqlite, Store::Postgres],
    };
    // The tools install in the background while the workspace compiles and its unit tests run;
    // the Kubernetes kit's (first run only) at low priority, needed only at the end.
    let tools = bootstrap::Tools::begin()?;
    let kit = k8s::begin(&paths::cache());
    lint::check()?;
    let mut unit_args = vec!["--workspace", "--exclude", "e2e"];
    for app in stack::components() {
        unit_args.extend(["--exclude", app]);
    }
    let mut passed = paths::cargo_test(&unit_args, &[])?;
    // The fuzz targets' checks on stable; the fuzz crate is outside the workspace.
    passed += paths::cargo_test(&["--manifest-path", "fuzz/Cargo.toml"], &[])?;
    build::components()?;
    let tools = tools.ready()?;
    build::check_targets(&tools)?;
    let clients = mcp_clients::install(&paths::cache())?;
    for (n, &store) in stores.iter().enumerate() {
        println!("\n== end-to-end suite on the {store} store ==");
        let mut stack = stack::Stack::start(&tools, store, stack::Mode::Test)?;
        let env: Vec<(String, String)> = stack.test_env().into_iter().chain(clients.iter().cloned()).collect();
        let mut result = paths::cargo_test(&["-p", "e2e", "--tests", "--", "--test-threads=4"], &env);
        // The board in Chromium and the contract fuzzer, on the first store's stack.
        if n == 0 {
            result = result.and_then(|p| {
                println!("\n== the board in Chromium on the {store} store ==");
                Ok(p + board::run(&mut stack)?)
            });
            result = result.and_then(|p| {
                println!("\n== schemathesis against the OpenAPI document on the {store} store ==");
                Ok(p + schemathesis::run(stack::Ports::from_env(stack::Mode::Test)?, schemathesis::TEST_SECS)?)
            });
        }
        drop(stack);
        passed += result.with_context(|| format!("end-to-end suite failed on the {store} store"))?;
    }
    // Every invariant under kill -9 of each kind of process, on the first store.
    println!("\n== chaos on the {} store ==", stores[0]);
    passed += chaos::run(&tools, stores[0], 1)?;
    println!("\n== spinkube/ on a Kubernetes control plane ==");
    k8s::check(kit.ready()?)?;
    // A plain closing line for CI: every runner above stops at its first failure.
    println!("\nxtask: {passed} passed, 0 failed");
    Ok(())
}
