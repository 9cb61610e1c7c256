//! The Better Auth test server (`tests/better-auth`): the real `better-auth`
//! package, pinned by its lockfile, installed with `npm ci` into the tool
//! cache once per lockfile and linked as the project's `node_modules`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::{bootstrap, paths};

/// The test server's own secret (it encrypts its private keys with it).
const TEST_SECRET: &str = "DEVELOPMENT-ONLY-better-auth-test-server-secret";

/// Installs the server's packages when its lockfile changed and returns its directory.
pub fn install() -> Result<PathBuf> {
    let project = paths::root().join("tests/better-auth");
    let lock = fs::read(project.join("package-lock.json")).context("reading tests/better-auth/package-lock.json")?;
    let digest = Sha256::digest(&lock);
    let dir = paths::cache().join("better-auth").join(hex::encode(&digest[..8]));
    if !dir.join(".installed").is_file() {
        let npm = bootstrap::which("npm").context("`npm` (Node.js 20+) is required for the Better Auth test server; install Node.js 20")?;
        println!("bootstrap: npm ci (better-auth, tests/better-auth/package-lock.json)");
        fs::create_dir_all(&dir)?;
        for file in ["package.json", "package-lock.json"] {
            fs::copy(project.join(file), dir.join(file))?;
        }
        paths::run(Command::new(npm).args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"]).current_dir(&dir))?;
        fs::write(dir.join(".installed"), "")?;
    }
    link(&dir.join("node_modules"), &project.join("node_modules"))?;
    Ok(project)
}

/// Points `link` (ignored by git) at the cached `node_modules`.
fn link(target: &Path, link: &Path) -> Result<()> {
    if fs::read_link(link).is_ok_and(|t| t == target) {
        return Ok(());
    }
    if fs::symlink_metadata(link).is_ok() {
        if link.is_dir() && !link.is_symlink() {
            fs::remove_dir_all(link)?;
        } else {
            fs::remove_file(link)?;
        }
    }
    std::os::unix::fs::symlink(target, link).with_context(|| format!("linking {}", link.display()))
}

/// The command that serves it on 127.0.0.1:`port`.
pub fn command(project: &Path, port: u16) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg("server.mjs")
        .env("PORT", port.to_string())
        .env("BETTER_AUTH_URL", format!("http://127.0.0.1:{port}"))
        .env("BETTER_AUTH_SECRET", TEST_SECRET)
        .current_dir(project);
    cmd
}
