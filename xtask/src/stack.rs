//! The local stack: PostgreSQL (optional), Kafka, the Dapr scheduler, one
//! daprd plus one wasm host per app-id (or N of each with `--replicas N`,
//! behind a round-robin [`Front`] on the app's port that skips replicas
//! that are not ready), and the board's host
//! (no sidecar), each with its own log.
//!
//! Dropping a [`Stack`] stops everything it started, newest first.

use std::fmt;
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::bootstrap::{self, Host, Tools};
use crate::front::{Backend, Front};
use crate::{better_auth, paths};

/// The app-ids, in port order: app `i` listens on 3000+i, its daprd on 3500+i
/// (gRPC 3520+i, internal gRPC 3530+i, public 3510+i, metrics 3540+i, profile
/// 3550+i), all shifted by [`Ports`]' offset. Every port of the stack lies
/// below the kernel's ephemeral range (32768+), where an outgoing connection,
/// or its TIME_WAIT, could hold it: so the local scheduler listens on 3560,
/// not on the cluster's 50006, and can be restarted while the stack is busy.
pub const APPS: [&str; 6] = ["todo-api", "reminder-service", "recurring-service", "audit-service", "notify-service", "mcp-server"];

/// The most replicas per app-id (`--replicas`): their ports must fit in the
/// stack's blocks (see [`Ports::replica_host`] and [`Ports::replica_dapr`]).
pub const MAX_REPLICAS: usize = 4;

/// The component that serves the task board: a host without a Dapr sidecar
/// (the browser calls the services itself), on 3006 + offset.
pub const WEB: &str = "web";
/// The port index of [`WEB`] (3000 + 6).
const WEB_INDEX: usize = 6;

/// Whether `component` runs next to a Dapr sidecar (every one but [`WEB`]).
pub fn has_sidecar(component: &str) -> bool {
    component != WEB
}

/// Every component of `spin.toml`: the Dapr apps, then the sidecar-less hosts.
pub fn components() -> impl Iterator<Item = &'static str> {
    APPS.into_iter().chain([WEB])
}

/// The stack's ports: the defaults plus `TODO_PORT_OFFSET` (e.g. 100), so that
/// two stacks can run side by side, plus [`FRESH_STACK_SHIFT`] for the stacks
/// of `test`, `bench` and `chaos`, so that they run while `cargo xtask dev` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    offset: u16,
}

/// How far the fresh stacks (`test`, `bench`, `chaos`) lie above the dev stack:
/// app 4000+i, daprd 4500+i, scheduler 4560, Kafka 10092, ...
pub const FRESH_STACK_SHIFT: u16 = 1000;

impl Ports {
    /// The ports of a `mode` stack, shifted by `TODO_PORT_OFFSET` (default 0).
    pub fn from_env(mode: Mode) -> Result<Ports> {
        Ports::new(mode, std::env::var("TODO_PORT_OFFSET").ok().as_deref())
    }

    /// The ports of `cargo xtask dev` without `TODO_PORT_OFFSET` (app 3000+i).
    pub fn default_dev() -> Ports {
        Ports { offset: 0 }
    }

    fn new(mode: Mode, offset: Option<&str>) -> Result<Ports> {
        let offset: u16 = match offset {
            Some(v) if !v.is_empty() => v.parse().context("TODO_PORT_OFFSET must be a number such as 100")?,
            _ => 0,
        };
        // Each stack's ports lie in 3000+o..3006+o, 3090+o, 3500+o..3560+o, 9092+o..9093+o
        // and 2xxxx+o (each of those +1000 for a fresh stack): offsets of whole
        // hundreds up to 400 never overlap, with each other or across the shift.
        if offset % 100 != 0 || offset > 400 {
            bail!("TODO_PORT_OFFSET must be 0, 100, 200, 300 or 400");
        }
        let shift = if mode == Mode::Dev { 0 } else { FRESH_STACK_SHIFT };
        Ok(Ports { offset: offset + shift })
    }

    /// The label of a run directory: empty for the default ports.
    fn suffix(self, mode: Mode) -> String {
        match self.offset - if mode == Mode::Dev { 0 } else { FRESH_STACK_SHIFT } {
            0 => String::new(),
            user => format!("-p{user}"),
        }
    }

    fn at(self, base: u16, index: usize) -> u16 {
        base + index as u16 + self.offset
    }

    /// Every port of the stack (apps, sidecars, scheduler, Kafka, PostgreSQL).
    #[cfg(test)]
    fn all(self) -> Vec<u16> {
        let mut ports: Vec<u16> =
            (0..APPS.len()).flat_map(|i| [3000, 3500, 3510, 3520, 3530, 3540, 3550].map(|base| self.at(base, i))).collect();
        ports.extend([3090, 3560, 9092, 9093, 25432, 28080, 29090, 23790, 23800].map(|base| self.at(base, 0)));
        for (i, r) in (0..APPS.len()).flat_map(|i| (0..MAX_REPLICAS).map(move |r| (i, r))) {
            ports.push(self.replica_host(i, r));
            if r > 0 {
                ports.extend(self.replica_dapr(i, r));
            }
        }
        ports
    }
    /// Component HTTP port of app `i`: its host's, or with replicas its front's.
    pub fn app(self, i: usize) -> u16 {
        self.at(3000, i)
    }
    /// The host of replica `r` of app `i` when the app has several: 3010+10r+i
    /// (up to 3040+i; the front holds 3000+i).
    fn replica_host(self, i: usize, r: usize) -> u16 {
        self.at(3010 + 10 * r as u16, i)
    }
    /// daprd's HTTP, gRPC and internal gRPC ports of replica `r` >= 1 of app
    /// `i`: 5000+30(r-1)+i, +10, +20 (replica 0 keeps 3500+i, 3520+i, 3530+i).
    /// Replicas have no public, metrics or profile port.
    fn replica_dapr(self, i: usize, r: usize) -> [u16; 3] {
        let base = 5000 + 30 * (r as u16 - 1);
        [self.at(base, i), self.at(base + 10, i), self.at(base + 20, i)]
    }
    /// The board's port (3006 + offset); its origin is what the services allow (CORS).
    pub fn web(self) -> u16 {
        self.app(WEB_INDEX)
    }
    /// The board's origins: what `CORS_ALLOWED_ORIGINS` lists for the stack.
    fn web_origins(self) -> String {
        format!("http://127.0.0.1:{0},http://localhost:{0}", self.web())
    }
    /// daprd HTTP port of app `i` (of its first replica).
    pub fn dapr(self, i: usize) -> u16 {
        self.at(3500, i)
    }
    fn kafka(self) -> u16 {
        self.at(9092, 0)
    }
    fn kafka_controller(self) -> u16 {
        self.at(9093, 0)
    }
    fn scheduler(self) -> u16 {
        self.at(3560, 0)
    }
    fn postgres(self) -> u16 {
        self.at(25432, 0)
    }
    /// The Better Auth test server (`cargo xtask test`, `cargo xtask dev --better-auth`).
    pub fn better_auth(self) -> u16 {
        self.at(3090, 0)
    }
}

/// Settings of the browser-facing components that a developer may set for
/// `cargo xtask dev` and that the wasm hosts pass on (their names are Better
/// Auth's and the components'; see `component_kit::settings`).
const PASSED_SETTINGS: [&str; 7] = [
    "BETTER_AUTH_URL",
    "BETTER_AUTH_ISSUER",
    "BETTER_AUTH_AUDIENCE",
    "BETTER_AUTH_JWKS_URL",
    "BETTER_AUTH_JWKS_SECRET",
    "CORS_ALLOWED_ORIGINS",
    "DAPR_ONLY_ROUTES_OPEN",
];

/// The browser origin the test stack allows (a frontend's dev server).
pub const TEST_CORS_ORIGIN: &str = "http://localhost:5173";
const TOPICS: [&str; 4] = ["task-events", "reminders", "task-events-dlq", "reminders-dlq"];

/// The state store profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// `state.sqlite`, the embedded default.
    Sqlite,
    /// `state.postgresql` v2 on a local PostgreSQL, as in production.
    Postgres,
}

impl FromStr for Store {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sqlite" => Ok(Store::Sqlite),
            "postgres" | "postgresql" => Ok(Store::Postgres),
            other => bail!("unknown store `{other}`: use sqlite or postgres"),
        }
    }
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Store::Sqlite => "sqlite",
            Store::Postgres => "postgres",
        })
    }
}

/// Whether the stack keeps its data between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `cargo xtask dev`: data kept under `target/stack/dev-<store>`.
    Dev,
    /// `cargo xtask test`: a fresh, empty stack under `target/stack/test-<store>`.
    Test,
    /// `cargo xtask bench`: a fresh, empty stack under `target/stack/bench-<store>`.
    Bench,
    /// `cargo xtask chaos`: a fresh, empty stack under `target/stack/chaos-<store>`.
    Chaos,
}

/// How to tell that a process is ready to serve.
enum Probe {
    /// `GET` answers 2xx.
    Http(String),
    /// The TCP port accepts connections.
    Port(u16),
}

impl Probe {
    fn ready(&self) -> bool {
        match self {
            Probe::Http(url) => http_ok(url),
            Probe::Port(port) => port_open(*port),
        }
    }
}

/// What started a process, so that it can be started again.
struct Launch {
    program: std::ffi::OsString,
    args: Vec<std::ffi::OsString>,
    env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    cwd: Option<PathBuf>,
}

impl Launch {
    fn of(cmd: &Command) -> Launch {
        Launch {
            program: cmd.get_program().to_owned(),
            args: cmd.get_args().map(ToOwned::to_owned).collect(),
            env: cmd.get_envs().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))).collect(),
            cwd: cmd.get_current_dir().map(Path::to_path_buf),
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd
    }
}

struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    launch: Launch,
    probe: Probe,
}

/// A running local stack.
pub struct Stack {
    procs: Vec<Proc>,
    run_dir: PathBuf,
    postgres: Option<PathBuf>,
    summary: Vec<(String, String, PathBuf)>,
    ports: Ports,
    /// What the wasm hosts pass to the components (see [`PASSED_SETTINGS`]).
    settings: Vec<(String, String)>,
    /// Hosts and sidecars per app-id.
    replicas: usize,
    /// The fronts of replicated apps (none with one replica).
    fronts: Vec<Front>,
}

/// The name of replica `r` of a process (`host-todo-api`, `daprd-todo-api`):
/// the first keeps the plain name, the others get `-2`, `-3`, ...
pub fn replica_name(name: &str, r: usize) -> String {
    if r == 0 {
        name.to_owned()
    } else {
        format!("{name}-{}", r + 1)
    }
}

fn ensure_free(port: u16, what: &str) -> Result<()> {
    if TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(200)).is_ok() {
        bail!("port {port} (for {what}) is already in use; is another stack still running? Stop it and retry.");
    }
    Ok(())
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(200)).is_ok()
}

/// Whether `GET url` answers 2xx (within 2 s).
pub(crate) fn http_ok(url: &str) -> bool {
    let agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(2))).http_status_as_error(false).build().new_agent();
    matches!(agent.get(url).call(), Ok(r) if r.status().is_success())
}

fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl Stack {
    /// Starts every piece and waits until each is healthy; the test stack
    /// with the Better Auth test server.
    pub fn start(tools: &Tools, store: Store, mode: Mode) -> Result<Stack> {
        Stack::start_with(tools, store, mode, mode == Mode::Test, 1)
    }

    /// [`Stack::start`], with the Better Auth test server (`tests/better-auth`)
    /// when `better_auth` (the hosts then trust it, `BETTER_AUTH_URL`), and
    /// `replicas` hosts and sidecars per app-id (1..=[`MAX_REPLICAS`]).
    pub fn start_with(tools: &Tools, store: Store, mode: Mode, better_auth: bool, replicas: usize) -> Result<Stack> {
        if !(1..=MAX_REPLICAS).contains(&replicas) {
            bail!("--replicas must be 1 to {MAX_REPLICAS}");
        }
        let root = paths::root();
        let ports = Ports::from_env(mode)?;
        let suffix = ports.suffix(mode);
        let run_dir = root.join("target/stack").join(match mode {
            Mode::Dev => format!("dev-{store}{suffix}"),
            Mode::Test => format!("test-{store}{suffix}"),
            Mode::Bench => format!("bench-{store}{suffix}"),
            Mode::Chaos => format!("chaos-{store}{suffix}"),
        });
        if mode != Mode::Dev && run_dir.exists() {
            fs::remove_dir_all(&run_dir).with_context(|| format!("cleaning {}", run_dir.display()))?;
        }
        fs::create_dir_all(run_dir.join("logs"))?;
        for (i, app) in APPS.iter().enumerate() {
            ensure_free(ports.app(i), app)?;
            ensure_free(ports.dapr(i), &format!("{app}'s daprd"))?;
            for r in (0..replicas).filter(|_| replicas > 1) {
                ensure_free(ports.replica_host(i, r), &replica_name(app, r))?;
                if r > 0 {
                    ensure_free(ports.replica_dapr(i, r)[0], &format!("{}'s daprd", replica_name(app, r)))?;
                }
            }
        }
        ensure_free(ports.web(), WEB)?;
        ensure_free(ports.kafka(), "Kafka")?;
        ensure_free(ports.scheduler(), "the Dapr scheduler")?;

        let mut settings: Vec<(String, String)> =
            PASSED_SETTINGS.iter().filter_map(|k| Some((k.to_string(), std::env::var(k).ok().filter(|v| !v.is_empty())?))).collect();
        if better_auth {
            // The bundled Better Auth server is trusted, and nothing else.
            settings.retain(|(k, _)| !k.starts_with("BETTER_AUTH_"));
            settings.push(("BETTER_AUTH_URL".into(), format!("http://127.0.0.1:{}", ports.better_auth())));
        }
        if mode == Mode::Test {
            // A frontend's origin, for the CORS tests.
            settings.retain(|(k, _)| k != "CORS_ALLOWED_ORIGINS");
            settings.push(("CORS_ALLOWED_ORIGINS".into(), TEST_CORS_ORIGIN.into()));
        }
        // The board calls the services from the browser: its origins are always allowed.
        match settings.iter_mut().find(|(k, _)| k == "CORS_ALLOWED_ORIGINS") {
            Some((_, origins)) => *origins = format!("{origins},{}", ports.web_origins()),
            None => settings.push(("CORS_ALLOWED_ORIGINS".into(), ports.web_origins())),
        }
        let mut stack =
            Stack { procs: Vec::new(), run_dir, postgres: None, summary: Vec::new(), ports, settings, replicas, fronts: Vec::new() };
        stack.write_secrets()?;
        if better_auth {
            stack.start_better_auth()?;
        }
        if store == Store::Postgres {
            stack.start_postgres()?;
        }
        stack.start_kafka(tools)?;
        stack.start_scheduler(tools)?;
        for (i, app) in APPS.iter().enumerate() {
            for r in 0..replicas {
                let mut env = vec![("DAPR_HTTP_ENDPOINT".to_string(), format!("http://127.0.0.1:{}", stack.dapr_port(i, r)))];
                env.extend(stack.settings.iter().cloned());
                stack.start_host(tools, app, r, stack.host_port(i, r), &env)?;
            }
            if replicas > 1 {
                let backends = (0..replicas)
                    .map(|r| ports.replica_host(i, r))
                    .map(|port| Backend { port, ready_url: Some(format!("http://127.0.0.1:{port}/readyz/{app}")) })
                    .collect();
                stack.fronts.push(Front::start(ports.app(i), backends)?);
                stack.summary.push((format!("front-{app}"), format!("http://127.0.0.1:{}", ports.app(i)), PathBuf::from("-")));
            }
        }
        // The board's page tells the browser where the services are.
        let public = |i: usize| format!("http://127.0.0.1:{}", ports.app(i));
        let index = |app: &str| APPS.iter().position(|a| *a == app).expect("an app-id");
        let env = vec![
            ("TODO_API_PUBLIC_URL".to_string(), public(index("todo-api"))),
            ("NOTIFY_SERVICE_PUBLIC_URL".to_string(), public(index("notify-service"))),
            ("AUDIT_SERVICE_PUBLIC_URL".to_string(), public(index("audit-service"))),
        ];
        stack.start_host(tools, WEB, 0, ports.web(), &env)?;
        // The first sidecar creates the state store's tables; five at once on a
        // fresh PostgreSQL race on `CREATE TABLE IF NOT EXISTS` and one fails.
        stack.start_daprd(tools, store, 0, 0, APPS[0])?;
        stack.wait(&format!("daprd-{}", APPS[0]))?;
        let sidecars = || APPS.iter().enumerate().flat_map(|(i, app)| (0..replicas).map(move |r| (i, r, *app)));
        for (i, r, app) in sidecars().skip(1) {
            stack.start_daprd(tools, store, i, r, app)?;
        }
        for (_, r, app) in sidecars() {
            stack.wait(&replica_name(&format!("daprd-{app}"), r))?;
        }
        Ok(stack)
    }

    /// The port of replica `r`'s host of app `i`.
    fn host_port(&self, i: usize, r: usize) -> u16 {
        if self.replicas == 1 {
            self.ports.app(i)
        } else {
            self.ports.replica_host(i, r)
        }
    }

    /// The HTTP port of replica `r`'s daprd of app `i`.
    fn dapr_port(&self, i: usize, r: usize) -> u16 {
        if r == 0 {
            self.ports.dapr(i)
        } else {
            self.ports.replica_dapr(i, r)[0]
        }
    }

    fn spawn(&mut self, name: &str, cmd: &mut Command, probe: Probe) -> Result<()> {
        let log = self.run_dir.join("logs").join(format!("{name}.log"));
        let child = start_logged(cmd, &log, false).with_context(|| format!("cannot start {name}: {cmd:?}"))?;
        self.procs.push(Proc { name: name.to_owned(), child, log, launch: Launch::of(cmd), probe });
        Ok(())
    }

    fn proc_mut(&mut self, name: &str) -> Result<&mut Proc> {
        self.procs.iter_mut().find(|p| p.name == name).with_context(|| format!("the stack has no process `{name}`"))
    }

    /// Waits until `name` is ready, failing early with its log when it dies.
    fn wait(&mut self, name: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let p = self.proc_mut(name)?;
        loop {
            if p.probe.ready() {
                return Ok(());
            }
            if let Some(status) = p.child.try_wait()? {
                bail!("{name} exited during start ({status}); log {}:\n{}", p.log.display(), tail(&p.log));
            }
            if Instant::now() > deadline {
                bail!("{name} did not become healthy within 120 s; log {}:\n{}", p.log.display(), tail(&p.log));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills `name` (e.g. `kafka`, `scheduler`, `host-todo-api`,
    /// `daprd-audit-service`) with SIGKILL, as a crash would.
    pub fn kill(&mut self, name: &str) -> Result<()> {
        let p = self.proc_mut(name)?;
        kill_group(&mut p.child).with_context(|| format!("killing {name}"))
    }

    /// Starts `name` again with the command that first started it (its log
    /// continues) and waits until it is ready.
    pub fn restart(&mut self, name: &str) -> Result<()> {
        let p = self.proc_mut(name)?;
        p.child = start_logged(&mut p.launch.command(), &p.log, true).with_context(|| format!("cannot restart {name}"))?;
        self.wait(name)
    }

    /// `<run_dir>/secrets.json`, the local secret store: the development
    /// secrets, with the HS256 key replaced by `BETTER_AUTH_SECRET` when set.
    fn write_secrets(&self) -> Result<()> {
        let text = fs::read_to_string(paths::root().join("dapr/secrets.dev.json"))?;
        let mut secrets: serde_json::Value = serde_json::from_str(&text)?;
        secrets["jwt-hs256-secret"] = serde_json::Value::String(hs256_secret()?);
        fs::write(self.secrets_file(), serde_json::to_string_pretty(&secrets)?)?;
        Ok(())
    }

    fn secrets_file(&self) -> PathBuf {
        self.run_dir.join("secrets.json")
    }

    /// The Better Auth test server (`tests/better-auth`) that the suite signs up with.
    fn start_better_auth(&mut self) -> Result<()> {
        let port = self.ports.better_auth();
        ensure_free(port, "the Better Auth test server")?;
        let mut cmd = better_auth::command(&better_auth::install()?, port);
        self.spawn("better-auth", &mut cmd, Probe::Http(format!("http://127.0.0.1:{port}/test/health")))?;
        self.wait("better-auth")?;
        self.summary.push(("better-auth".into(), format!("http://127.0.0.1:{port}"), self.run_dir.join("logs/better-auth.log")));
        Ok(())
    }

    fn start_postgres(&mut self) -> Result<()> {
        let port = self.ports.postgres();
        ensure_free(port, "PostgreSQL")?;
        let bin = bootstrap::postgres_bin()?;
        let data = self.run_dir.join("postgres");
        let log = self.run_dir.join("logs/postgres.log");
        // PostgreSQL refuses to run as root: run it as the `postgres` user then.
        let as_pg = |program: &str| -> Command {
            let path = bin.join(program);
            if bootstrap::is_root() {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", "postgres", "--"]).arg(path);
                cmd
            } else {
                Command::new(path)
            }
        };
        if !data.join("PG_VERSION").is_file() {
            fs::create_dir_all(&data)?;
            if bootstrap::is_root() {
                paths::run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&data))?;
                paths::run(Command::new("chown").args(["postgres:postgres"]).arg(self.run_dir.join("logs")))?;
                // The postgres user must be able to reach the data directory.
                let mut dir = self.run_dir.clone();
                while let Some(parent) = dir.parent().map(Path::to_path_buf) {
                    let _ = Command::new("chmod").arg("o+x").arg(&dir).status();
                    dir = parent;
                }
            }
            let status =
                as_pg("initdb").args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "-D"]).arg(&data).stdout(Stdio::null()).status()?;
            if !status.success() {
                bail!("initdb failed for {}", data.display());
            }
        }
        let status = as_pg("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-o"])
            .arg(format!("-p {port} -c listen_addresses=127.0.0.1 -k /tmp"))
            .arg("start")
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("PostgreSQL did not start; log {}:\n{}", log.display(), tail(&log));
        }
        self.postgres = Some(data);
        let _ =
            as_pg("createdb").args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "todo"]).stderr(Stdio::null()).status();
        self.summary.push(("postgresql".into(), format!("127.0.0.1:{port} db todo"), log));
        Ok(())
    }

    fn start_kafka(&mut self, tools: &Tools) -> Result<()> {
        let dir = self.run_dir.join("kafka");
        let props = dir.join("server.properties");
        fs::create_dir_all(&dir)?;
        fs::write(
            &props,
            include_str!("kafka.properties")
                .replace("KAFKA_PORT", &self.ports.kafka().to_string())
                .replace("CONTROLLER_PORT", &self.ports.kafka_controller().to_string())
                .replace("LOG_DIR", &dir.join("data").display().to_string()),
        )?;
        fs::write(dir.join("log4j2.yaml"), include_str!("kafka-log4j2.yaml"))?;
        let classpath = format!("{}/*", tools.kafka_libs.display());
        let java = |main: &str| {
            let mut cmd = Command::new(&tools.java);
            cmd.args(["-Xms256m", "-Xmx512m"])
                .arg(format!("-Dlog4j2.configurationFile={}", dir.join("log4j2.yaml").display()))
                .args(["-cp", &classpath, main]);
            cmd
        };
        if !dir.join("data/meta.properties").is_file() {
            let out = java("kafka.tools.StorageTool")
                .args(["format", "--ignore-formatted", "-t", "MkU3OEVBNTcwNTJENDM2Qg", "-c"])
                .arg(&props)
                .output()?;
            if !out.status.success() {
                bail!("formatting Kafka storage failed:\n{}", String::from_utf8_lossy(&out.stderr));
            }
        }
        let kafka = self.ports.kafka();
        self.spawn("kafka", java("kafka.Kafka").arg(&props), Probe::Port(kafka))?;
        self.wait("kafka")?;
        for topic in TOPICS {
            let out = java("org.apache.kafka.tools.TopicCommand")
                .args(["--bootstrap-server", &format!("127.0.0.1:{kafka}"), "--create", "--if-not-exists"])
                .args(["--topic", topic, "--partitions", "3", "--replication-factor", "1"])
                .output()?;
            if !out.status.success() {
                bail!("creating Kafka topic {topic} failed:\n{}", String::from_utf8_lossy(&out.stderr));
            }
        }
        self.summary.push(("kafka".into(), format!("127.0.0.1:{kafka}"), self.run_dir.join("logs/kafka.log")));
        Ok(())
    }

    fn start_scheduler(&mut self, tools: &Tools) -> Result<()> {
        let data = self.run_dir.join("scheduler");
        fs::create_dir_all(&data)?;
        let p = |base: u16| self.ports.at(base, 0).to_string();
        let (healthz, scheduler) = (p(28080), self.ports.scheduler());
        self.spawn(
            "scheduler",
            Command::new(&tools.scheduler)
                .args(["--port", &scheduler.to_string(), "--listen-address", "127.0.0.1"])
                .args(["--healthz-port", &healthz, "--healthz-listen-address", "127.0.0.1"])
                .args(["--metrics-port", &p(29090), "--metrics-listen-address", "127.0.0.1"])
                .args(["--etcd-client-port", &p(23790), "--id", "scheduler-0"])
                .args(["--etcd-initial-cluster", &format!("scheduler-0=http://127.0.0.1:{}", p(23800))])
                .args(["--etcd-client-listen-address", "127.0.0.1", "--etcd-data-dir"])
                .arg(&data)
                .args(["--identity-directory-write"])
                .arg(data.join("identity"))
                .current_dir(&self.run_dir),
            Probe::Http(format!("http://127.0.0.1:{healthz}/healthz")),
        )?;
        self.wait("scheduler")?;
        self.summary.push(("scheduler".into(), format!("127.0.0.1:{scheduler}"), self.run_dir.join("logs/scheduler.log")));
        Ok(())
    }

    /// Starts the wasm host of component `app` on `port` with `env`.
    fn start_host(&mut self, tools: &Tools, app: &str, replica: usize, port: u16, env: &[(String, String)]) -> Result<()> {
        let root = paths::root();
        let mut cmd = match &tools.host {
            Host::Wasmtime(wasmtime) => {
                let wasm = root.join(format!("target/wasm32-wasip2/release/{}.wasm", app.replace('-', "_")));
                let mut cmd = Command::new(wasmtime);
                cmd.args(["serve", "-S", "cli", "--addr", &format!("127.0.0.1:{port}")]);
                for (k, v) in env {
                    cmd.args(["--env", &format!("{k}={v}")]);
                }
                cmd.arg(wasm);
                cmd
            }
            Host::Spin(spin) => {
                let mut cmd = Command::new(spin);
                cmd.args(["up", "--from"]).arg(root.join("spin.toml"));
                cmd.args(["--component-id", app, "--listen", &format!("127.0.0.1:{port}")]);
                for (k, v) in env {
                    cmd.args(["--env", &format!("{k}={v}")]);
                }
                // Spin lets a component reach only its allowed hosts: the JWKS's among them.
                if let Some((_, url)) = env.iter().find(|(k, _)| k == "BETTER_AUTH_URL") {
                    cmd.args(["--variable", &format!("better_auth_origin={}", origin(url))]);
                }
                cmd
            }
        };
        let name = replica_name(&format!("host-{app}"), replica);
        self.spawn(&name, cmd.current_dir(&root), Probe::Http(format!("http://127.0.0.1:{port}/healthz/{app}")))?;
        self.wait(&name)?;
        self.summary.push((name.clone(), format!("http://127.0.0.1:{port}"), self.run_dir.join(format!("logs/{name}.log"))));
        Ok(())
    }

    /// Starts daprd of replica `replica` of app `index`, next to that replica's host.
    fn start_daprd(&mut self, tools: &Tools, store: Store, index: usize, replica: usize, app: &str) -> Result<()> {
        let root = paths::root();
        let ports = self.ports;
        let port = |base: u16| ports.at(base, index).to_string();
        let secrets = self.secrets_file();
        let app_token = dev_secret(&secrets, "app-api-token")?;
        let name = replica_name(&format!("daprd-{app}"), replica);
        let http = self.dapr_port(index, replica);
        let mut cmd = Command::new(&tools.daprd);
        cmd.args(["--app-id", app, "--app-port", &self.host_port(index, replica).to_string(), "--app-protocol", "http"])
            .args(["--app-channel-address", "127.0.0.1"]);
        if replica == 0 {
            cmd.args(["--dapr-http-port", &port(3500), "--dapr-grpc-port", &port(3520)])
                .args(["--dapr-internal-grpc-port", &port(3530), "--dapr-public-port", &port(3510)])
                .args(["--metrics-port", &port(3540), "--profile-port", &port(3550)]);
        } else {
            let [http, grpc, internal] = ports.replica_dapr(index, replica).map(|p| p.to_string());
            cmd.args(["--dapr-http-port", &http, "--dapr-grpc-port", &grpc, "--dapr-internal-grpc-port", &internal])
                .arg("--enable-metrics=false");
        }
        cmd.args(["--dapr-listen-addresses", "127.0.0.1"])
            .args(["--scheduler-host-address", &format!("127.0.0.1:{}", ports.scheduler())])
            .arg("--resources-path")
            .arg(root.join("dapr/resources"))
            .arg("--resources-path")
            .arg(root.join("dapr/profiles").join(store.to_string()))
            .arg("--config")
            .arg(root.join("dapr/config.yaml"))
            .args(["--log-level", "info"])
            .env("APP_API_TOKEN", app_token)
            .env("TODO_SECRETS_FILE", &secrets)
            .env("TODO_KAFKA_BROKERS", format!("127.0.0.1:{}", ports.kafka()))
            .env("TODO_SQLITE_FILE", self.run_dir.join("state.db"))
            .env("TODO_PG_CONNECTION", format!("host=127.0.0.1 port={} user=postgres dbname=todo sslmode=disable", ports.postgres()))
            .current_dir(&self.run_dir);
        self.spawn(&name, &mut cmd, Probe::Http(format!("http://127.0.0.1:{http}/v1.0/healthz")))?;
        self.record_command(&name)?;
        self.summary.push((name.clone(), format!("http://127.0.0.1:{http}"), self.run_dir.join(format!("logs/{name}.log"))));
        Ok(())
    }

    /// Writes `<run_dir>/cmd/<name>.json`: the process's program, arguments,
    /// explicit environment, working directory, log and PID, so that a test
    /// can restart it (kill the PID, spawn the same command). A test that does
    /// writes the new PID to `<run_dir>/cmd/<name>.pid`; the stack then stops
    /// that process too, and does not treat the first one's exit as a failure.
    fn record_command(&self, name: &str) -> Result<()> {
        let proc = self.procs.iter().find(|p| p.name == name).context("recording an unknown process")?;
        let Launch { program, args, env, cwd } = &proc.launch;
        let text = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
        let env: serde_json::Map<String, serde_json::Value> =
            env.iter().map(|(k, v)| (text(k), serde_json::Value::String(text(v)))).collect();
        let record = serde_json::json!({
            "program": text(program),
            "args": args.iter().map(|a| text(a)).collect::<Vec<_>>(),
            "env": env,
            "cwd": cwd.as_ref().map(|d| d.display().to_string()),
            "log": proc.log.display().to_string(),
            "pid": proc.child.id(),
        });
        let dir = self.run_dir.join("cmd");
        fs::create_dir_all(&dir)?;
        let _ = fs::remove_file(dir.join(format!("{name}.pid")));
        fs::write(dir.join(format!("{name}.json")), serde_json::to_string_pretty(&record)?)?;
        Ok(())
    }

    /// Whether a test restarted `name` (see [`Stack::record_command`]).
    fn restarted(&self, name: &str) -> bool {
        self.run_dir.join("cmd").join(format!("{name}.pid")).is_file()
    }

    /// Prints where every piece listens and logs.
    pub fn print_summary(&self) {
        println!("\nThe stack is up ({}):", self.run_dir.display());
        for (name, address, log) in &self.summary {
            println!("  {name:<28} {address:<40} log: {}", log.display());
        }
    }

    /// The PID of the process `name` (e.g. `host-notify-service`, `daprd-notify-service`).
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.procs.iter().find(|p| p.name == name).map(|p| p.child.id())
    }

    /// Every process of the stack with its PID, PostgreSQL's postmaster included.
    pub fn processes(&self) -> Vec<(String, u32)> {
        let mut all: Vec<(String, u32)> = self.procs.iter().map(|p| (p.name.clone(), p.child.id())).collect();
        let postmaster = self.postgres.as_ref().and_then(|data| fs::read_to_string(data.join("postmaster.pid")).ok());
        if let Some(pid) = postmaster.and_then(|text| text.lines().next().and_then(|l| l.trim().parse().ok())) {
            all.push(("postgres".into(), pid));
        }
        all
    }

    /// The board's address.
    pub fn web_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.web())
    }

    /// The Kafka broker's `host:port`.
    pub fn kafka_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.ports.kafka())
    }

    /// Environment for the end-to-end suite.
    pub fn test_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("TODO_E2E".to_string(), "1".to_string()),
            ("TODO_SECRETS_FILE".to_string(), self.secrets_file().display().to_string()),
            ("TODO_CONTRACTS_DIR".to_string(), paths::root().join("specs/contracts").display().to_string()),
            ("TODO_STACK_DIR".to_string(), self.run_dir.display().to_string()),
        ];
        // For fault tests that pause the broker (SIGSTOP/SIGCONT).
        if let Some(kafka) = self.procs.iter().find(|p| p.name == "kafka") {
            env.push(("TODO_KAFKA_PID".to_string(), kafka.child.id().to_string()));
        }
        env.extend(self.settings.iter().cloned());
        for (i, app) in APPS.iter().enumerate() {
            let var = app.to_uppercase().replace('-', "_");
            env.push((format!("{var}_URL"), format!("http://127.0.0.1:{}", self.ports.app(i))));
            env.push((format!("{var}_DAPR_URL"), format!("http://127.0.0.1:{}", self.ports.dapr(i))));
        }
        env.push(("WEB_URL".to_string(), self.web_url()));
        env
    }

    /// Blocks until Ctrl-C; the stack is stopped when it is dropped.
    pub fn wait_for_interrupt(self) {
        let (tx, rx) = std::sync::mpsc::channel();
        ctrlc::set_handler(move || {
            let _ = tx.send(());
        })
        .expect("installing the Ctrl-C handler");
        let mut stack = self;
        loop {
            if rx.recv_timeout(Duration::from_millis(500)).is_ok() {
                println!("\nstopping the stack...");
                return;
            }
            let restarted: Vec<String> = stack.procs.iter().filter(|p| stack.restarted(&p.name)).map(|p| p.name.clone()).collect();
            for p in &mut stack.procs {
                if restarted.contains(&p.name) {
                    continue;
                }
                if let Ok(Some(status)) = p.child.try_wait() {
                    eprintln!("{} exited ({status}); log {}:\n{}", p.name, p.log.display(), tail(&p.log));
                    return;
                }
            }
        }
    }
}

/// `scheme://host[:port]` of `url`.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    url[after_scheme..].find('/').map_or(url, |i| &url[..after_scheme + i])
}

/// The HS256 key of user tokens: `BETTER_AUTH_SECRET` when set, else the
/// development secret of `dapr/secrets.dev.json`.
pub fn hs256_secret() -> Result<String> {
    match std::env::var("BETTER_AUTH_SECRET") {
        Ok(secret) if !secret.is_empty() => Ok(secret),
        _ => dev_secret(&paths::root().join("dapr/secrets.dev.json"), "jwt-hs256-secret"),
    }
}

/// A value from a secrets file (`dapr/secrets.dev.json`, or a stack's copy).
pub fn dev_secret(file: &Path, key: &str) -> Result<String> {
    let text = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    json.get(key).and_then(|v| v.as_str()).map(str::to_owned).with_context(|| format!("{} has no `{key}`", file.display()))
}

impl Drop for Stack {
    fn drop(&mut self) {
        for entry in fs::read_dir(self.run_dir.join("cmd")).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "pid") {
                if let Some(pid) = fs::read_to_string(&path).ok().and_then(|t| t.trim().parse::<u32>().ok()) {
                    stop_pid(pid);
                }
                let _ = fs::remove_file(&path);
            }
        }
        while let Some(mut p) = self.procs.pop() {
            signal_group(&p.child, "TERM");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = p.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = kill_group(&mut p.child);
        }
        if let (Some(data), Ok(bin)) = (&self.postgres, bootstrap::postgres_bin()) {
            let mut cmd = if bootstrap::is_root() {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join("pg_ctl"));
                c
            } else {
                Command::new(bin.join("pg_ctl"))
            };
            let _ = cmd.arg("-D").arg(data).args(["-m", "fast", "stop"]).stdout(Stdio::null()).status();
        }
    }
}

/// Spawns `cmd` with stdout and stderr into `log` (appended to, or truncated),
/// as the leader of its own process group: `spin up` serves from a child
/// process (`spin trigger http`), which must go down with it.
fn start_logged(cmd: &mut Command, log: &Path, append: bool) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    let out = fs::OpenOptions::new().create(true).write(true).append(append).truncate(!append).open(log)?;
    Ok(cmd.stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out).process_group(0).spawn()?)
}

/// Sends `signal` (e.g. `TERM`) to the process group that `child` leads.
fn signal_group(child: &Child, signal: &str) {
    let _ = Command::new("kill").args([&format!("-{signal}"), "--", &format!("-{}", child.id())]).stderr(Stdio::null()).status();
}

/// Kills (SIGKILL) the process group that `child` leads, children included,
/// and reaps `child`.
fn kill_group(child: &mut Child) -> Result<()> {
    signal_group(child, "KILL");
    child.wait()?;
    Ok(())
}

/// Stops a process this stack did not spawn itself (one a test respawned):
/// SIGTERM, then SIGKILL after 10 s.
fn stop_pid(pid: u32) {
    let alive = || Command::new("kill").args(["-0", &pid.to_string()]).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).stderr(Stdio::null()).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).stderr(Stdio::null()).status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_stacks_and_the_dev_stack_share_no_port() {
        let offsets = ["0", "100", "200", "300", "400"];
        let mut seen = std::collections::HashMap::new();
        for mode in [Mode::Dev, Mode::Test] {
            for offset in offsets {
                let ports = Ports::new(mode, Some(offset)).unwrap();
                for port in ports.all() {
                    if let Some(other) = seen.insert(port, (mode, offset)) {
                        panic!("port {port} of {mode:?}+{offset} is also {other:?}'s");
                    }
                }
            }
        }
        assert_eq!(Ports::new(Mode::Test, None).unwrap(), Ports::new(Mode::Chaos, Some("")).unwrap());
        assert_ne!(Ports::new(Mode::Test, None).unwrap().app(0), Ports::new(Mode::Dev, None).unwrap().app(0));
        assert_eq!(Ports::new(Mode::Chaos, Some("300")).unwrap().suffix(Mode::Chaos), "-p300");
        assert!(Ports::new(Mode::Dev, Some("50")).is_err());
    }

    /// A host whose server runs in a child process (as `spin up` does) frees
    /// its port when the stack kills it.
    #[test]
    fn killing_a_host_frees_the_port_its_child_serves() {
        let port = 38_000 + (std::process::id() % 2000) as u16;
        let log = std::env::temp_dir().join(format!("xtask-kill-group-{port}.log"));
        let server = format!("python3 -m http.server --bind 127.0.0.1 {port} & wait");
        let mut parent = start_logged(Command::new("sh").args(["-c", &server]), &log, false).unwrap();
        let deadline = Instant::now() + Duration::from_secs(90);
        while !port_open(port) {
            assert!(Instant::now() < deadline, "the child never listened: {}", tail(&log));
            std::thread::sleep(Duration::from_millis(50));
        }
        kill_group(&mut parent).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while port_open(port) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let still_open = port_open(port);
        // Do not leave an orphan behind when the check fails: its group outlives the leader.
        signal_group(&parent, "KILL");
        let _ = fs::remove_file(&log);
        assert!(!still_open, "port {port} is still served after the kill");
    }

    #[test]
    fn an_origin_drops_the_path() {
        assert_eq!(super::origin("https://auth.example.com/base/path"), "https://auth.example.com");
        assert_eq!(super::origin("http://127.0.0.1:4100"), "http://127.0.0.1:4100");
    }
}
