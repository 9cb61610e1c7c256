//! `cargo fmt --check` and `cargo clippy -D warnings` over everything the
//! workspace builds: host crates natively, the components for `wasm32-wasip2`.

use anyhow::Result;

use crate::{paths, stack};

/// Fails unless the tree is formatted (`rustfmt.toml`) and clippy finds nothing.
pub fn check() -> Result<()> {
    paths::cargo(&["fmt", "--all", "--check"])?;
    let mut host = vec!["clippy", "--workspace", "--all-targets"];
    let mut components = vec!["clippy", "--target", "wasm32-wasip2", "--all-targets"];
    for app in stack::APPS {
        host.extend(["--exclude", app]);
        components.extend(["-p", app]);
    }
    for args in [host, components] {
        paths::cargo(&[&args[..], &["--", "-D", "warnings"]].concat())?;
    }
    Ok(())
}
