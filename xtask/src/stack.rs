//! The local stack: PostgreSQL (optional), Kafka, the Dapr scheduler, and one
//! daprd plus one wasm host per app-id, each with its own log.
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
use crate::paths;

/// The app-ids, in port order: app `i` listens on 3000+i, its daprd on 3500+i
/// (gRPC 3520+i, internal gRPC 3530+i, public 3510+i). Every port of the stack
/// lies below the kernel's ephemeral range (32768+), where an outgoing
/// connection could take it first; the scheduler's 50006 is the architecture's
/// default and starts before the rest.
pub const APPS: [&str; 5] = ["todo-api", "reminder-service", "recurring-service", "audit-service", "notify-service"];
const KAFKA_PORT: u16 = 9092;
const KAFKA_CONTROLLER_PORT: u16 = 9093;
const SCHEDULER_PORT: u16 = 50006;
const POSTGRES_PORT: u16 = 25432;
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
}

struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

/// A running local stack.
pub struct Stack {
    procs: Vec<Proc>,
    run_dir: PathBuf,
    postgres: Option<PathBuf>,
    summary: Vec<(String, String, PathBuf)>,
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

fn http_ok(url: &str) -> bool {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .new_agent();
    matches!(agent.get(url).call(), Ok(r) if r.status().is_success())
}

fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl Stack {
    /// Starts every piece and waits until each is healthy.
    pub fn start(tools: &Tools, store: Store, mode: Mode) -> Result<Stack> {
        let root = paths::root();
        let run_dir = root.join("target/stack").join(match mode {
            Mode::Dev => format!("dev-{store}"),
            Mode::Test => format!("test-{store}"),
        });
        if mode == Mode::Test && run_dir.exists() {
            fs::remove_dir_all(&run_dir).with_context(|| format!("cleaning {}", run_dir.display()))?;
        }
        fs::create_dir_all(run_dir.join("logs"))?;
        for (i, app) in APPS.iter().enumerate() {
            ensure_free(3000 + i as u16, app)?;
            ensure_free(3500 + i as u16, &format!("{app}'s daprd"))?;
        }
        ensure_free(KAFKA_PORT, "Kafka")?;
        ensure_free(SCHEDULER_PORT, "the Dapr scheduler")?;

        let mut stack = Stack { procs: Vec::new(), run_dir, postgres: None, summary: Vec::new() };
        if store == Store::Postgres {
            stack.start_postgres()?;
        }
        stack.start_kafka(tools)?;
        stack.start_scheduler(tools)?;
        for (i, app) in APPS.iter().enumerate() {
            stack.start_host(tools, i, app)?;
        }
        for (i, app) in APPS.iter().enumerate() {
            stack.start_daprd(tools, store, i, app)?;
        }
        for (i, app) in APPS.iter().enumerate() {
            let port = 3500 + i as u16;
            stack.wait(&format!("daprd {app}"), || http_ok(&format!("http://127.0.0.1:{port}/v1.0/healthz")))?;
        }
        Ok(stack)
    }

    fn spawn(&mut self, name: &str, cmd: &mut Command) -> Result<()> {
        let log = self.run_dir.join("logs").join(format!("{name}.log"));
        let out = fs::File::create(&log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {name}: {cmd:?}"))?;
        self.procs.push(Proc { name: name.to_owned(), child, log });
        Ok(())
    }

    /// Waits until `ready`, failing early with the log when the process dies.
    fn wait(&mut self, name: &str, ready: impl Fn() -> bool) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let proc_name = name.replace(' ', "-");
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(p) = self.procs.iter_mut().find(|p| p.name == proc_name || p.name == name) {
                if let Some(status) = p.child.try_wait()? {
                    bail!("{name} exited during start ({status}); log {}:\n{}", p.log.display(), tail(&p.log));
                }
            }
            if Instant::now() > deadline {
                let log = self.run_dir.join("logs").join(format!("{proc_name}.log"));
                bail!("{name} did not become healthy within 120 s; log {}:\n{}", log.display(), tail(&log));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn start_postgres(&mut self) -> Result<()> {
        ensure_free(POSTGRES_PORT, "PostgreSQL")?;
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
            let status = as_pg("initdb")
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "-D"])
                .arg(&data)
                .stdout(Stdio::null())
                .status()?;
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
            .arg(format!("-p {POSTGRES_PORT} -c listen_addresses=127.0.0.1 -k /tmp"))
            .arg("start")
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("PostgreSQL did not start; log {}:\n{}", log.display(), tail(&log));
        }
        self.postgres = Some(data);
        let _ = as_pg("createdb").args(["-h", "127.0.0.1", "-p", &POSTGRES_PORT.to_string(), "-U", "postgres", "todo"]).stderr(Stdio::null()).status();
        self.summary.push(("postgresql".into(), format!("127.0.0.1:{POSTGRES_PORT} db todo"), log));
        Ok(())
    }

    fn start_kafka(&mut self, tools: &Tools) -> Result<()> {
        let dir = self.run_dir.join("kafka");
        let props = dir.join("server.properties");
        fs::create_dir_all(&dir)?;
        fs::write(
            &props,
            include_str!("kafka.properties")
                .replace("KAFKA_PORT", &KAFKA_PORT.to_string())
                .replace("CONTROLLER_PORT", &KAFKA_CONTROLLER_PORT.to_string())
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
        self.spawn("kafka", java("kafka.Kafka").arg(&props))?;
        self.wait("kafka", || port_open(KAFKA_PORT))?;
        for topic in TOPICS {
            let out = java("org.apache.kafka.tools.TopicCommand")
                .args(["--bootstrap-server", &format!("127.0.0.1:{KAFKA_PORT}"), "--create", "--if-not-exists"])
                .args(["--topic", topic, "--partitions", "3", "--replication-factor", "1"])
                .output()?;
            if !out.status.success() {
                bail!("creating Kafka topic {topic} failed:\n{}", String::from_utf8_lossy(&out.stderr));
            }
        }
        self.summary.push(("kafka".into(), format!("127.0.0.1:{KAFKA_PORT}"), self.run_dir.join("logs/kafka.log")));
        Ok(())
    }

    fn start_scheduler(&mut self, tools: &Tools) -> Result<()> {
        let data = self.run_dir.join("scheduler");
        fs::create_dir_all(&data)?;
        self.spawn(
            "scheduler",
            Command::new(&tools.scheduler)
                .args(["--port", &SCHEDULER_PORT.to_string(), "--listen-address", "127.0.0.1"])
                .args(["--healthz-port", "28080", "--healthz-listen-address", "127.0.0.1"])
                .args(["--metrics-port", "29090", "--metrics-listen-address", "127.0.0.1"])
                .args(["--etcd-client-port", "23790", "--id", "scheduler-0"])
                .args(["--etcd-initial-cluster", "scheduler-0=http://127.0.0.1:23800"])
                .args(["--etcd-client-listen-address", "127.0.0.1", "--etcd-data-dir"])
                .arg(&data)
                .args(["--identity-directory-write"])
                .arg(data.join("identity"))
                .current_dir(&self.run_dir),
        )?;
        self.wait("scheduler", || http_ok("http://127.0.0.1:28080/healthz"))?;
        self.summary.push(("scheduler".into(), format!("127.0.0.1:{SCHEDULER_PORT}"), self.run_dir.join("logs/scheduler.log")));
        Ok(())
    }

    fn start_host(&mut self, tools: &Tools, index: usize, app: &str) -> Result<()> {
        let root = paths::root();
        let port = 3000 + index;
        let env = [("DAPR_HTTP_ENDPOINT".to_string(), format!("http://127.0.0.1:{}", 3500 + index))];
        let mut cmd = match &tools.host {
            Host::Wasmtime(wasmtime) => {
                let wasm = root.join(format!("target/wasm32-wasip2/release/{}.wasm", app.replace('-', "_")));
                let mut cmd = Command::new(wasmtime);
                cmd.args(["serve", "-S", "cli", "--addr", &format!("127.0.0.1:{port}")]);
                for (k, v) in &env {
                    cmd.args(["--env", &format!("{k}={v}")]);
                }
                cmd.arg(wasm);
                cmd
            }
            Host::Spin(spin) => {
                let mut cmd = Command::new(spin);
                cmd.args(["up", "--from"]).arg(root.join("spin.toml"));
                cmd.args(["--component-id", app, "--listen", &format!("127.0.0.1:{port}")]);
                for (k, v) in &env {
                    cmd.args(["--env", &format!("{k}={v}")]);
                }
                cmd
            }
        };
        let name = format!("host-{app}");
        self.spawn(&name, cmd.current_dir(&root))?;
        self.wait(&name, || http_ok(&format!("http://127.0.0.1:{port}/healthz/{app}")))?;
        self.summary.push((name.clone(), format!("http://127.0.0.1:{port}"), self.run_dir.join(format!("logs/{name}.log"))));
        Ok(())
    }

    fn start_daprd(&mut self, tools: &Tools, store: Store, index: usize, app: &str) -> Result<()> {
        let root = paths::root();
        let i = index as u16;
        let secrets = root.join("dapr/secrets.dev.json");
        let app_token = dev_secret(&secrets, "app-api-token")?;
        let name = format!("daprd-{app}");
        self.spawn(
            &name,
            Command::new(&tools.daprd)
                .args(["--app-id", app, "--app-port", &(3000 + i).to_string(), "--app-protocol", "http"])
                .args(["--app-channel-address", "127.0.0.1"])
                .args(["--dapr-http-port", &(3500 + i).to_string(), "--dapr-grpc-port", &(3520 + i).to_string()])
                .args(["--dapr-internal-grpc-port", &(3530 + i).to_string(), "--dapr-public-port", &(3510 + i).to_string()])
                .args(["--metrics-port", &(9190 + i).to_string(), "--profile-port", &(7780 + i).to_string()])
                .args(["--dapr-listen-addresses", "127.0.0.1"])
                .args(["--scheduler-host-address", &format!("127.0.0.1:{SCHEDULER_PORT}")])
                .arg("--resources-path")
                .arg(root.join("dapr/resources"))
                .arg("--resources-path")
                .arg(root.join("dapr/profiles").join(store.to_string()))
                .arg("--config")
                .arg(root.join("dapr/config.yaml"))
                .args(["--log-level", "info"])
                .env("APP_API_TOKEN", app_token)
                .env("TODO_SECRETS_FILE", &secrets)
                .env("TODO_KAFKA_BROKERS", format!("127.0.0.1:{KAFKA_PORT}"))
                .env("TODO_SQLITE_FILE", self.run_dir.join("state.db"))
                .env(
                    "TODO_PG_CONNECTION",
                    format!("host=127.0.0.1 port={POSTGRES_PORT} user=postgres dbname=todo sslmode=disable"),
                )
                .current_dir(&self.run_dir),
        )?;
        self.summary.push((name.clone(), format!("http://127.0.0.1:{}", 3500 + i), self.run_dir.join(format!("logs/{name}.log"))));
        Ok(())
    }

    /// Prints where every piece listens and logs.
    pub fn print_summary(&self) {
        println!("\nThe stack is up ({}):", self.run_dir.display());
        for (name, address, log) in &self.summary {
            println!("  {name:<28} {address:<40} log: {}", log.display());
        }
    }

    /// Environment for the end-to-end suite.
    pub fn test_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("TODO_E2E".to_string(), "1".to_string()),
            ("TODO_SECRETS_FILE".to_string(), paths::root().join("dapr/secrets.dev.json").display().to_string()),
            ("TODO_CONTRACTS_DIR".to_string(), paths::root().join("specs/contracts").display().to_string()),
        ];
        for (i, app) in APPS.iter().enumerate() {
            let var = app.to_uppercase().replace('-', "_");
            env.push((format!("{var}_URL"), format!("http://127.0.0.1:{}", 3000 + i)));
            env.push((format!("{var}_DAPR_URL"), format!("http://127.0.0.1:{}", 3500 + i)));
        }
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
            for p in &mut stack.procs {
                if let Ok(Some(status)) = p.child.try_wait() {
                    eprintln!("{} exited ({status}); log {}:\n{}", p.name, p.log.display(), tail(&p.log));
                    return;
                }
            }
        }
    }
}

/// A value from the development secrets file (`dapr/secrets.dev.json`).
pub fn dev_secret(file: &Path, key: &str) -> Result<String> {
    let text = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    json.get(key).and_then(|v| v.as_str()).map(str::to_owned).with_context(|| format!("{} has no `{key}`", file.display()))
}

impl Drop for Stack {
    fn drop(&mut self) {
        while let Some(mut p) = self.procs.pop() {
            let _ = Command::new("kill").args(["-TERM", &p.child.id().to_string()]).stderr(Stdio::null()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = p.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = p.child.kill();
            let _ = p.child.wait();
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
