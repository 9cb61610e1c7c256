//! The install scripts (`spinkube/scripts/`), run as the install guide orders
//! them, against the test API server. `kubectl` is a logging wrapper
//! (`kubectl-shim.sh`): what needs a kubelet, a controller or a download is
//! skipped and logged, everything else runs for real. Helm installs (Dapr,
//! Strimzi, the operator, kwasm) are out of reach offline: `helm` and `spin`
//! are no-ops that log what they were asked.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::install::{Kit, SPIN_OPERATOR_VERSION};

/// In the install guide's order.
const SCRIPTS: &[&str] = &["setup-strimzi.sh", "setup-dapr.sh", "setup-spinkube.sh", "deploy.sh"];

/// How long one script may take (deploy.sh waits up to 2 minutes for Deployments).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// What the scripts did.
pub struct Outcome {
    /// kubectl steps that ran against the API server.
    pub ran: usize,
    /// Steps skipped, with why (`reason\tcommand`). Steps that failed are in the
    /// log too; a script decides what a failed probe means (exit status).
    pub skipped: Vec<String>,
    pub faults: Vec<String>,
}

fn write_exe(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Runs every script; `kubeconfig` is the admin's.
pub fn run(kit: &Kit, root: &Path, kubeconfig: &Path, dir: &Path) -> Result<Outcome> {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin)?;
    let log = dir.join("kubectl-steps.log");
    fs::write(&log, "")?;
    write_exe(&bin.join("kubectl"), include_str!("kubectl-shim.sh"))?;
    for tool in ["helm", "spin"] {
        write_exe(
            &bin.join(tool),
            &format!("#!/bin/sh\nprintf 'skipped (no {tool} offline)\\t{tool} %s\\n' \"$*\" >>\"$TODO_KUBECTL_LOG\"\n"),
        )?;
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut faults = Vec::new();
    for script in SCRIPTS {
        let out = dir.join(format!("{script}.log"));
        let mut child = Command::new("bash")
            .arg(root.join("spinkube/scripts").join(script))
            .env("PATH", &path)
            .env("KUBECONFIG", kubeconfig)
            .env("TODO_KUBECTL_LOG", &log)
            .env("TODO_REAL_KUBECTL", &kit.kubectl)
            .env("TODO_SPIN_OPERATOR_MODULE", &kit.operator_module)
            .env("TODO_SPIN_OPERATOR_VERSION", SPIN_OPERATOR_VERSION)
            .env("TODO_SKIP_BUILD", "1")
            .env("TODO_IMAGE", "registry.example/todo-chatbot:check")
            .env("TODO_PROFILE", "minikube")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out)?)
            .stderr(fs::File::create(&out)?.try_clone()?)
            .spawn()?;
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if started.elapsed() > SCRIPT_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        if !status.is_some_and(|s| s.success()) {
            let said = fs::read_to_string(&out).unwrap_or_default();
            let tail: Vec<&str> = said.lines().rev().take(3).collect();
            faults.push(format!("scripts/{script} failed ({status:?}): {}", tail.into_iter().rev().collect::<Vec<_>>().join(" | ")));
        }
    }
    let steps = fs::read_to_string(&log)?;
    let ran = steps.lines().filter(|l| l.starts_with("ran\t")).count();
    let skipped = steps.lines().filter(|l| l.starts_with("skipped")).map(str::to_owned).collect();
    Ok(Outcome { ran, skipped, faults })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the shim with `args` over a fake kubectl that prints its arguments.
    fn shim(args: &[&str]) -> (String, String) {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("kubectl-shim-test-{}-{run}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        write_exe(&dir.join("kubectl"), include_str!("kubectl-shim.sh")).unwrap();
        write_exe(&dir.join("real"), "#!/bin/sh\necho \"$@\"\n").unwrap();
        let log = dir.join("steps.log");
        fs::write(&log, "").unwrap();
        let out = Command::new(dir.join("kubectl"))
            .args(args)
            .env("TODO_KUBECTL_LOG", &log)
            .env("TODO_REAL_KUBECTL", dir.join("real"))
            .env("TODO_SPIN_OPERATOR_MODULE", "/mod")
            .env("TODO_SPIN_OPERATOR_VERSION", "0.6.1")
            .output()
            .unwrap();
        let result = (String::from_utf8_lossy(&out.stdout).into_owned(), fs::read_to_string(&log).unwrap());
        fs::remove_dir_all(&dir).unwrap();
        result
    }

    #[test]
    fn release_assets_are_the_module_files_and_node_steps_are_skipped() {
        let url = "https://github.com/spinframework/spin-operator/releases/download/v0.6.1/spin-operator.shim-executor.yaml";
        let (ran, log) = shim(&["apply", "-n", "todo", "-f", url]);
        assert_eq!(ran.trim(), "apply -n todo -f /mod/config/samples/spin-shim-executor.yaml");
        assert!(log.starts_with("ran\t"), "{log}");
        let (ran, log) = shim(&["rollout", "status", "deploy/x"]);
        assert!(ran.is_empty() && log.starts_with("skipped (needs nodes)"), "{log}");
        let (ran, _) = shim(&["wait", "--for=condition=Established", "crd/x"]);
        assert_eq!(ran.trim(), "wait --for=condition=Established crd/x");
        let (ran, log) = shim(&["wait", "kafka/todo", "--for=condition=Ready"]);
        assert!(ran.is_empty() && log.starts_with("skipped (needs a controller)"), "{log}");
        let (_, log) = shim(&["apply", "-f", "https://github.com/spinframework/spin-operator/releases/download/v0.6.1/other.yaml"]);
        assert!(log.starts_with("FAILED unknown release asset"), "{log}");
    }
}
