//! A Kubernetes control plane on loopback: etcd and kube-apiserver (RBAC on,
//! the `controller-runtime/pkg/envtest` flags as the model), and `kubectl`
//! against it. No kubelet: objects are stored and validated, never run.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::install::Kit;

/// Who the operator runs as: its service account, as the Helm chart installs it.
pub const OPERATOR_USER: &str = "system:serviceaccount:spin-operator:spin-operator-controller-manager";

/// The loopback ports: etcd client and peer, the API server, the operator's
/// metrics and health endpoints. `TODO_K8S_PORT` fixes the block's first port;
/// by default the first free block of ten from 26150 up to 26990 is taken, so
/// that checks of two work trees can run at once.
#[derive(Clone, Copy)]
pub struct Ports(u16);

impl Ports {
    pub fn from_env() -> Result<Ports> {
        match std::env::var("TODO_K8S_PORT") {
            Ok(p) if !p.trim().is_empty() => Ok(Ports(p.trim().parse().context("TODO_K8S_PORT must be a port number")?)),
            _ => (26150..=26990).step_by(10).map(Ports).find(|p| p.free()).context("no free block of ports in 26150-26999"),
        }
    }

    fn all(self) -> [u16; 5] {
        [self.etcd(), self.etcd_peer(), self.apiserver(), self.operator_metrics(), self.operator_health()]
    }

    fn free(self) -> bool {
        self.all().iter().all(|&port| TcpListener::bind(("127.0.0.1", port)).is_ok())
    }

    fn etcd(self) -> u16 {
        self.0
    }
    fn etcd_peer(self) -> u16 {
        self.0 + 1
    }
    fn apiserver(self) -> u16 {
        self.0 + 2
    }
    pub fn operator_metrics(self) -> u16 {
        self.0 + 3
    }
    pub fn operator_health(self) -> u16 {
        self.0 + 4
    }
}

/// A process we started; killed (by its own pid) when dropped.
struct Process {
    name: String,
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The running control plane. Stops when dropped.
pub struct Cluster {
    dir: PathBuf,
    admin: PathBuf,
    kubectl: PathBuf,
    // Dropped in reverse start order: the API server before etcd.
    processes: Vec<Process>,
}

impl Cluster {
    /// Starts etcd and kube-apiserver with state under `dir` (emptied first).
    pub fn start(kit: &Kit, dir: &Path, ports: Ports) -> Result<Cluster> {
        if !ports.free() {
            bail!("a port of {:?} is taken; set TODO_K8S_PORT to another block", ports.all());
        }
        if dir.exists() {
            fs::remove_dir_all(dir)?;
        }
        fs::create_dir_all(dir.join("pki"))?;
        let mut cluster =
            Cluster { dir: dir.to_path_buf(), admin: dir.join("admin.kubeconfig"), kubectl: kit.kubectl.clone(), processes: Vec::new() };
        let etcd_url = format!("http://127.0.0.1:{}", ports.etcd());
        let peer_url = format!("http://127.0.0.1:{}", ports.etcd_peer());
        cluster.spawn(
            "etcd",
            Command::new(&kit.etcd)
                .arg("--data-dir")
                .arg(dir.join("etcd"))
                .args(["--listen-client-urls", &etcd_url, "--advertise-client-urls", &etcd_url])
                .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &format!("default={peer_url}"), "--unsafe-no-fsync", "--log-level", "warn"]),
        )?;
        // Static tokens: the admin (system:masters) and the operator's service account.
        fs::write(
            dir.join("tokens.csv"),
            format!(
                "admin-token,admin,admin,\"system:masters\"\noperator-token,{OPERATOR_USER},operator,\"system:serviceaccounts,system:serviceaccounts:spin-operator\"\n"
            ),
        )?;
        let sa_key = dir.join("pki/sa.key");
        crate::paths::run(Command::new("openssl").args(["genrsa", "-out"]).arg(&sa_key).arg("2048").stderr(Stdio::null()))
            .context("`openssl` is needed to make the service-account signing key")?;
        let url = format!("https://127.0.0.1:{}", ports.apiserver());
        cluster.spawn(
            "kube-apiserver",
            Command::new(&kit.apiserver)
                .args(["--etcd-servers", &etcd_url, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1"])
                .args(["--secure-port", &ports.apiserver().to_string(), "--cert-dir"])
                .arg(dir.join("pki"))
                .args(["--authorization-mode", "RBAC", "--token-auth-file"])
                .arg(dir.join("tokens.csv"))
                .args(["--service-account-issuer", &url, "--service-account-key-file"])
                .arg(&sa_key)
                .arg("--service-account-signing-key-file")
                .arg(&sa_key)
                .args(["--service-cluster-ip-range", "10.0.0.0/24", "--allow-privileged=true"])
                .args(["--disable-admission-plugins", "ServiceAccount", "--profiling=false", "--endpoint-reconciler-type=none"]),
        )?;
        // The API server signs its own serving certificate; the kubeconfigs trust exactly it.
        let ca = dir.join("pki/apiserver.crt");
        let started = Instant::now();
        while !ca.is_file() {
            cluster.alive()?;
            if started.elapsed() > Duration::from_secs(60) {
                bail!("kube-apiserver wrote no serving certificate in 60 s; see {}", dir.join("kube-apiserver.log").display());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        for (file, token) in [("admin.kubeconfig", "admin-token"), ("operator.kubeconfig", "operator-token")] {
            fs::write(dir.join(file), kubeconfig(&url, &ca, token))?;
        }
        cluster.wait_ready()?;
        Ok(cluster)
    }

    fn spawn(&mut self, name: &str, cmd: &mut Command) -> Result<()> {
        let log = fs::File::create(self.dir.join(format!("{name}.log")))?;
        let child =
            cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).spawn().with_context(|| format!("cannot start {name}"))?;
        self.processes.push(Process { name: name.to_string(), child });
        Ok(())
    }

    /// Starts the SpinKube operator as its service account.
    pub fn start_operator(&mut self, kit: &Kit, ports: Ports) -> Result<()> {
        let kubeconfig = self.dir.join("operator.kubeconfig");
        self.spawn(
            "spin-operator",
            Command::new(&kit.operator)
                .env("KUBECONFIG", kubeconfig)
                .arg(format!("--metrics-bind-address=127.0.0.1:{}", ports.operator_metrics()))
                .arg(format!("--health-probe-bind-address=127.0.0.1:{}", ports.operator_health()))
                .args(["--metrics-secure=false", "--leader-elect=false"]),
        )
    }

    /// Fails when a process we started has exited.
    pub fn alive(&mut self) -> Result<()> {
        for p in &mut self.processes {
            if let Some(status) = p.child.try_wait()? {
                bail!("{} exited ({status}); see {}", p.name, self.dir.join(format!("{}.log", p.name)).display());
            }
        }
        Ok(())
    }

    fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        loop {
            self.alive()?;
            if self.kubectl_cmd().args(["get", "--raw", "/readyz"]).output().is_ok_and(|o| o.status.success()) {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(90) {
                bail!("kube-apiserver is not ready after 90 s; see {}", self.dir.join("kube-apiserver.log").display());
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.admin
    }

    /// Where the processes log and the state lives.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn kubectl_cmd(&self) -> Command {
        let mut cmd = Command::new(&self.kubectl);
        cmd.arg("--kubeconfig").arg(&self.admin).arg("--request-timeout=60s");
        cmd
    }

    /// Runs kubectl as the admin with `input` on stdin; its stdout, or its error.
    pub fn kubectl(&self, args: &[&str], input: Option<&str>) -> Result<String> {
        let mut child = self
            .kubectl_cmd()
            .args(args)
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run kubectl")?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(text.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("kubectl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The objects of `kinds` (comma-separated) in every namespace.
    pub fn get(&self, kinds: &str) -> Result<Vec<Value>> {
        let list: Value = serde_json::from_str(&self.kubectl(&["get", kinds, "--all-namespaces", "-o", "json"], None)?)?;
        Ok(list.get("items").and_then(Value::as_array).cloned().unwrap_or_default())
    }
}

fn kubeconfig(url: &str, ca: &Path, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {url}\n    certificate-authority: {}\n\
         users:\n- name: user\n  user:\n    token: {token}\ncontexts:\n- name: local\n  context:\n    cluster: local\n    user: user\n\
         current-context: local\n",
        ca.display()
    )
}
