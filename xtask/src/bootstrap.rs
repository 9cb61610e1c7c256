//! Installs the pinned tools into the cache, once; later runs reuse them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::paths::{self, run};

/// wasmtime-cli, the wasm host when `spin` is not on PATH.
pub const WASMTIME_VERSION: &str = "48.0.8";
/// wasm-tools, for `component targets`.
pub const WASM_TOOLS_VERSION: &str = "1.240.0";
/// daprd and the scheduler, built from the `github.com/dapr/dapr` module.
pub const DAPR_VERSION: &str = "1.18.3";
/// Apache Kafka (single KRaft node from Maven Central jars).
pub const KAFKA_VERSION: &str = "4.1.1";

/// The wasm host that serves the components.
#[derive(Debug, Clone)]
pub enum Host {
    /// `spin up --component-id <id>`.
    Spin(PathBuf),
    /// `wasmtime serve`.
    Wasmtime(PathBuf),
}

/// Paths of the installed tools.
#[derive(Debug, Clone)]
pub struct Tools {
    pub host: Host,
    pub wasm_tools: PathBuf,
    pub daprd: PathBuf,
    pub scheduler: PathBuf,
    pub kafka_libs: PathBuf,
    pub java: PathBuf,
}

impl Tools {
    /// Installs whatever is missing and returns where everything is.
    pub fn install() -> Result<Tools> {
        let cache = paths::cache();
        fs::create_dir_all(cache.join("logs"))?;
        let go = require("go", "Go 1.26+ (https://go.dev/dl, or your package manager)")?;
        let java = require("java", "a Java 17+ runtime (e.g. `apt-get install openjdk-17-jre-headless`)")?;
        let mvn = require("mvn", "Apache Maven (e.g. `apt-get install maven`)")?;
        wasm_target()?;

        // The Go build and the Maven download overlap the cargo installs.
        let dapr = std::thread::spawn({
            let cache = cache.clone();
            move || dapr(&go, &cache)
        });
        let kafka = std::thread::spawn({
            let cache = cache.clone();
            move || kafka(&mvn, &cache)
        });
        let host = match which("spin") {
            Some(spin) => Host::Spin(spin),
            None => Host::Wasmtime(cargo_install(&cache, "wasmtime-cli", WASMTIME_VERSION, "wasmtime")?),
        };
        let wasm_tools = cargo_install(&cache, "wasm-tools", WASM_TOOLS_VERSION, "wasm-tools")?;
        let (daprd, scheduler) = dapr.join().expect("dapr build thread")?;
        let kafka_libs = kafka.join().expect("kafka download thread")?;
        Ok(Tools { host, wasm_tools, daprd, scheduler, kafka_libs, java })
    }
}

/// Finds `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

fn require(name: &str, how: &str) -> Result<PathBuf> {
    which(name).with_context(|| format!("`{name}` is required but not on PATH; install {how}"))
}

fn wasm_target() -> Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == "wasm32-wasip2") => Ok(()),
        Ok(_) => run(Command::new("rustup").args(["target", "add", "wasm32-wasip2"])),
        Err(_) => bail!("`rustup` is required to add the wasm32-wasip2 target (https://rustup.rs)"),
    }
}

/// `cargo install --locked <krate>@<version>` into `<cache>/<krate>-<version>`.
pub fn cargo_install(cache: &Path, krate: &str, version: &str, bin: &str) -> Result<PathBuf> {
    let root = cache.join(format!("{krate}-{version}"));
    let path = root.join("bin").join(bin);
    if path.is_file() {
        return Ok(path);
    }
    let log = cache.join("logs").join(format!("{krate}-install.log"));
    println!("installing {krate} {version} (a few minutes, once; log: {})", log.display());
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["install", "--locked", &format!("{krate}@{version}"), "--root"])
        .arg(&root)
        .stdout(fs::File::create(&log)?)
        .stderr(fs::File::create(&log)?.try_clone()?)
        .status()?;
    if !status.success() || !path.is_file() {
        bail!("installing {krate} {version} failed; see {}", log.display());
    }
    Ok(path)
}

/// Builds daprd and the scheduler from our Go module `xtask/dapr`, keyed by a
/// hash of its sources so that a change rebuilds.
fn dapr(go: &Path, cache: &Path) -> Result<(PathBuf, PathBuf)> {
    let module = paths::root().join("xtask/dapr");
    let mut hash = Sha256::new();
    for file in ["go.mod", "go.sum", "cmd/daprd/main.go", "cmd/scheduler/main.go"] {
        hash.update(fs::read(module.join(file)).with_context(|| format!("reading xtask/dapr/{file}"))?);
    }
    let dir = cache.join(format!("dapr-{DAPR_VERSION}-{}", &hex::encode(hash.finalize())[..12]));
    let (daprd, scheduler) = (dir.join("daprd"), dir.join("scheduler"));
    if daprd.is_file() && scheduler.is_file() {
        return Ok((daprd, scheduler));
    }
    let log = cache.join("logs").join("dapr-build.log");
    println!("building daprd and scheduler {DAPR_VERSION} from source (several minutes, once; log: {})", log.display());
    let status = Command::new(go)
        .args(["build", "-trimpath", "-ldflags"])
        .arg(format!("-s -w -X github.com/dapr/dapr/pkg/buildinfo.version={DAPR_VERSION}"))
        .arg("-o")
        .arg(format!("{}/", dir.display()))
        .args(["./cmd/daprd", "./cmd/scheduler"])
        .current_dir(&module)
        // Every module's hash is pinned in go.sum; some are not in the public checksum database.
        .env("GONOSUMDB", "*")
        .env("GOFLAGS", "-mod=readonly")
        .stdout(fs::File::create(&log)?)
        .stderr(fs::File::create(&log)?.try_clone()?)
        .status()?;
    if !status.success() {
        bail!("building Dapr failed; see {}", log.display());
    }
    Ok((daprd, scheduler))
}

/// Downloads the Kafka broker's jars (and the topic tool's) with Maven.
fn kafka(mvn: &Path, cache: &Path) -> Result<PathBuf> {
    let dir = cache.join(format!("kafka-{KAFKA_VERSION}"));
    let libs = dir.join("libs");
    if dir.join(".complete").is_file() {
        return Ok(libs);
    }
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("pom.xml"), include_str!("kafka-pom.xml").replace("KAFKA_VERSION", KAFKA_VERSION))?;
    let log = cache.join("logs").join("kafka-download.log");
    println!("downloading Apache Kafka {KAFKA_VERSION} jars (once; log: {})", log.display());
    let status = Command::new(mvn)
        .args(["-B", "-q", "dependency:copy-dependencies", "-DincludeScope=runtime", "-DoutputDirectory=libs"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&log)?)
        .stderr(fs::File::create(&log)?.try_clone()?)
        .status()?;
    if !status.success() {
        bail!("downloading Kafka failed; see {}", log.display());
    }
    fs::write(dir.join(".complete"), KAFKA_VERSION)?;
    Ok(libs)
}

/// The PostgreSQL server binaries (Debian's package; installed when missing).
pub fn postgres_bin() -> Result<PathBuf> {
    let find = || -> Option<PathBuf> {
        let mut dirs: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql").ok()?.flatten().map(|e| e.path().join("bin")).collect();
        dirs.sort();
        dirs.into_iter().rev().find(|d| d.join("initdb").is_file())
    };
    if let Some(bin) = find() {
        return Ok(bin);
    }
    if which("apt-get").is_none() {
        bail!("PostgreSQL server is missing; install it (Debian/Ubuntu: `apt-get install postgresql`)");
    }
    println!("installing PostgreSQL (apt-get install postgresql)");
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
    let apt = |args: &[&str]| {
        let mut cmd = Command::new(sudo.first().copied().unwrap_or("apt-get"));
        if !sudo.is_empty() {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut cmd)
    };
    apt(&["update", "-q"])?;
    apt(&["install", "-y", "-q", "postgresql"])?;
    find().context("PostgreSQL was installed but initdb was not found under /usr/lib/postgresql")
}

/// Whether this process runs as root (PostgreSQL refuses to run as root).
pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}
