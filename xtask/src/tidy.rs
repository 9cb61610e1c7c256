//! Tests that keep the house tidy, so that no one has to remember: every Rust
//! file opens with a `//!` line, nothing the project runs reads the steering
//! folder beside the clone, and every dependency's license is on the allow-list.

use std::path::PathBuf;
use std::process::Command;

use crate::paths;

/// Licenses a dependency may be used under (SPDX ids). An `OR` expression
/// passes when one side does.
const ALLOWED_LICENSES: &[&str] = &[
    "Apache-2.0",
    "MIT",
    "MIT-0",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "Zlib",
    "Unicode-3.0",
    "Unlicense",
    "BSL-1.0",
    "CC0-1.0",
    "MPL-2.0",
];

/// `WITH` exceptions that keep a license on the list.
const ALLOWED_EXCEPTIONS: &[&str] = &["LLVM-exception"];

/// Files under version control, relative to the root.
fn tracked_files() -> Vec<PathBuf> {
    let out = Command::new("git").args(["ls-files", "-z"]).current_dir(paths::root()).output().expect("git ls-files");
    assert!(out.status.success(), "git ls-files failed");
    out.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()).map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned())).collect()
}

/// Whether a license expression (as in Cargo.toml) is allowed.
fn license_allowed(expression: &str) -> Result<bool, String> {
    let expr = spdx::Expression::parse_mode(expression, spdx::ParseMode::LAX).map_err(|e| e.to_string())?;
    Ok(expr.evaluate(|req| {
        let license_ok = req.license.id().is_some_and(|id| ALLOWED_LICENSES.contains(&id.name));
        let exception_ok = req.addition.as_ref().is_none_or(|a| match a {
            spdx::AdditionItem::Spdx(id) => ALLOWED_EXCEPTIONS.contains(&id.name),
            spdx::AdditionItem::Other(_) => false,
        });
        license_ok && exception_ok
    }))
}

/// Where `text` reads the steering folder: a user's clone has none.
fn reads_steering_folder(text: &str) -> bool {
    let folder = concat!("..", "/shared");
    let variable = concat!("TODO_", "SHARED_DIR");
    text.contains(folder) || text.contains(variable)
}

#[test]
fn every_rust_file_opens_with_a_doc_line() {
    let mut missing = Vec::new();
    for file in tracked_files().into_iter().filter(|f| f.extension().is_some_and(|e| e == "rs")) {
        let text = std::fs::read_to_string(paths::root().join(&file)).expect("tracked file reads");
        if !text.trim_start().starts_with("//!") {
            missing.push(file.display().to_string());
        }
    }
    assert!(missing.is_empty(), "these files do not open with a `//!` line saying what they are: {missing:?}");
}

#[test]
fn nothing_the_project_runs_reads_the_steering_folder() {
    let mut readers = Vec::new();
    for file in tracked_files().into_iter().filter(|f| !f.extension().is_some_and(|e| e == "md")) {
        if let Ok(text) = std::fs::read_to_string(paths::root().join(&file)) {
            if reads_steering_folder(&text) {
                readers.push(file.display().to_string());
            }
        }
    }
    assert!(readers.is_empty(), "a user's clone has no steering folder beside it, yet these read it: {readers:?}");
}

#[test]
fn the_steering_folder_check_sees_a_read() {
    assert!(reads_steering_folder(&format!("let crds = root.join(\"{}/crds\");", concat!("..", "/shared"))));
    assert!(!reads_steering_folder("let crds = cache.join(\"crds\");"));
}

#[test]
fn every_dependency_license_is_allowed() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(paths::root())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata is JSON");
    let mut refused = Vec::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let name = format!("{} {}", package["name"].as_str().unwrap_or("?"), package["version"].as_str().unwrap_or("?"));
        match package["license"].as_str() {
            None => refused.push(format!("{name}: no license expression")),
            Some(license) => match license_allowed(license) {
                Ok(true) => {}
                Ok(false) => refused.push(format!("{name}: {license}")),
                Err(why) => refused.push(format!("{name}: {license:?} does not parse ({why})")),
            },
        }
    }
    assert!(refused.is_empty(), "dependencies under licenses not on the allow-list: {refused:#?}");
}

#[test]
fn the_license_check_refuses_what_is_not_listed() {
    assert_eq!(license_allowed("MIT OR Apache-2.0"), Ok(true));
    assert_eq!(license_allowed("Apache-2.0 WITH LLVM-exception"), Ok(true));
    assert_eq!(license_allowed("MIT OR GPL-3.0-only"), Ok(true));
    assert_eq!(license_allowed("GPL-3.0-only"), Ok(false));
    assert_eq!(license_allowed("(MIT OR Apache-2.0) AND AGPL-3.0-only"), Ok(false));
    assert_eq!(license_allowed("Apache-2.0 WITH Classpath-exception-2.0"), Ok(false));
}
