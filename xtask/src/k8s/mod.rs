//! `cargo xtask k8s`: the `spinkube/` manifests on a real Kubernetes control
//! plane with the real SpinKube operator.
//!
//! etcd and kube-apiserver start on loopback; the CRDs (Dapr's, SpinKube's,
//! Strimzi's, from their registry packages) are installed; every manifest is
//! applied server-side (the API server's own schema and CEL validation); the
//! operator runs as its service account; the install scripts run their
//! `kubectl` steps; then what the operator made, Dapr's injector on each pod,
//! and the cross-checks of [`checks`] and [`ingress`] are judged.

mod checks;
mod cluster;
mod facts;
mod generated;
mod ingress;
mod install;
mod scripts;
mod shellcheck;
mod sidecar;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::bootstrap::progress::clock;
use crate::paths;
use checks::Objects;
use cluster::{Cluster, Ports, OPERATOR_USER};

/// The kinds read back from the API server for the checks.
const KINDS: &str = "spinapps,spinappexecutors,runtimeclasses,deployments,services,serviceaccounts,secrets,\
                     configurations.dapr.io,components.dapr.io,subscriptions.dapr.io,ingresses,kafkatopics";

pub use install::{begin, cached};

/// Installs what is missing, then runs the whole check.
pub fn run() -> Result<()> {
    check(install::install(&paths::cache())?)
}

/// Runs the whole check with an installed kit; fails listing every fault found.
pub fn check(kit: install::Kit) -> Result<()> {
    let (root, cache) = (paths::root(), paths::cache());
    let facts = facts::Facts::read(&root)?;
    let scripts_checked = shellcheck::check(&cache, &root, &["xtask/src/k8s/kubectl-shim.sh"])?;
    let started = Instant::now();
    let dir = root.join("target/k8s-check");
    let ports = Ports::from_env()?;
    let mut cluster = Cluster::start(&kit, &dir, ports)?;
    println!("k8s: etcd {} + kube-apiserver {} up in {}", install::ETCD_VERSION, install::KUBERNETES_VERSION, clock(started.elapsed()));

    let mut faults = Vec::new();
    for crd in &kit.crds {
        apply(&cluster, crd, false)?;
    }
    cluster.kubectl(&["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"], None)?;
    let manifests = manifest_files(&root.join("spinkube"))?;
    for file in &manifests {
        // Profiles are alternatives under the same names: the first is applied, the others validated.
        let alternative = file.components().any(|c| c.as_os_str() == "production");
        if let Err(e) = apply(&cluster, file, alternative) {
            faults.push(format!("{e:#}"));
        }
    }
    faults.extend(validation_is_on(&cluster));
    start_operator(&mut cluster, &kit, ports)?;
    let scripts = scripts::run(&kit, &root, cluster.kubeconfig(), cluster.dir())?;
    faults.extend(scripts.faults);
    wait_for_workloads(&mut cluster)?;

    let objects = Objects(cluster.get(KINDS)?);
    faults.extend(generated::workloads(&objects, &facts));
    for check in [checks::secret_scopes, checks::pubsub_scopes, checks::invocation_acls, checks::subscription_routes, checks::environment] {
        faults.extend(check(&objects, &facts));
    }
    faults.extend(checks::topics_declared(&objects, &facts));
    faults.extend(ingress::check(&objects, &facts));
    faults.extend(secret_rbac(&cluster, &objects, &facts)?);
    let daprd = sidecar::inject(&objects, &kit.go, cluster.dir())?;
    faults.extend(sidecar::check(&objects, &daprd));
    drop(cluster);

    println!(
        "k8s: {} manifests applied server-side, {} SpinApps reconciled by spin-operator {}, {} sidecars injected; \
         install scripts: {} kubectl steps ran, {} skipped (see {}); shellcheck clean on {scripts_checked} scripts; check took {}",
        manifests.len(),
        objects.of("SpinApp").count(),
        install::SPIN_OPERATOR_VERSION,
        daprd.len(),
        scripts.ran,
        scripts.skipped.len(),
        dir.join("kubectl-steps.log").display(),
        clock(started.elapsed())
    );
    if !faults.is_empty() {
        bail!("k8s: {} faults:\n  - {}\n(logs: {})", faults.len(), faults.join("\n  - "), dir.display());
    }
    Ok(())
}

/// `kubectl apply --server-side` of a file (or, for `dry_run`, validation only).
fn apply(cluster: &Cluster, file: &Path, dry_run: bool) -> Result<()> {
    let path = file.to_str().context("non-UTF-8 path")?;
    let mut args = vec!["apply", "--server-side", "--field-manager=xtask-k8s", "-f", path];
    if dry_run {
        args.push("--dry-run=server");
    }
    cluster.kubectl(&args, None).map(drop).with_context(|| format!("applying {}", file.display()))
}

/// A SpinApp the API server must refuse (a string for `replicas`, an unknown
/// field): shows that server-side validation judged the manifests.
const BROKEN_SPINAPP: &str = "apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinApp\nmetadata: {name: broken, namespace: todo}\n\
                              spec: {image: x, executor: containerd-shim-spin, replicas: two, notAField: 1}\n";

fn validation_is_on(cluster: &Cluster) -> Option<String> {
    let accepted = cluster.kubectl(&["apply", "--server-side", "--dry-run=server", "-f", "-"], Some(BROKEN_SPINAPP)).is_ok();
    accepted.then(|| "the API server accepted a broken SpinApp: manifests are not validated".to_owned())
}

/// Every manifest under `spinkube/`, namespaces first.
fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = paths::files_with_ext(dir, "yaml")?;
    files.sort_by_key(|f| (!f.ends_with("namespaces.yaml"), f.clone()));
    Ok(files)
}

/// The operator's ClusterRole from its module, bound to its service account, then the operator.
fn start_operator(cluster: &mut Cluster, kit: &install::Kit, ports: Ports) -> Result<()> {
    let role = kit.operator_module.join("config/rbac/role.yaml");
    cluster.kubectl(&["apply", "--server-side", "-f", role.to_str().context("path")?], None)?;
    let binding = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: spin-operator-manager\n\
         roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: manager-role\n\
         subjects:\n- kind: User\n  name: {OPERATOR_USER}\n  apiGroup: rbac.authorization.k8s.io\n"
    );
    cluster.kubectl(&["apply", "--server-side", "-f", "-"], Some(&binding))?;
    cluster.start_operator(kit, ports)
}

/// Waits (up to a minute) until every SpinApp has its Deployment and Service.
fn wait_for_workloads(cluster: &mut Cluster) -> Result<()> {
    let started = Instant::now();
    loop {
        cluster.alive()?;
        let objects = Objects(cluster.get("spinapps,deployments,services")?);
        let done = objects.of("SpinApp").all(|s| {
            let (ns, name) = (s["metadata"]["namespace"].as_str().unwrap_or(""), s["metadata"]["name"].as_str().unwrap_or(""));
            objects.find("Deployment", ns, name).is_some() && objects.find("Service", ns, name).is_some()
        });
        if done || started.elapsed() > Duration::from_secs(60) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Dapr's Kubernetes secret store reads with the pod's service account: RBAC,
/// as the API server evaluates it, must let each app get every secret it reads.
fn secret_rbac(cluster: &Cluster, objects: &Objects, facts: &facts::Facts) -> Result<Vec<String>> {
    let mut faults = Vec::new();
    for app in objects.apps(facts) {
        let sa = app.spinapp["spec"]["serviceAccountName"].as_str().unwrap_or("default");
        let who = format!("system:serviceaccount:{}:{sa}", app.namespace);
        for secret in &app.component.secrets {
            let answer = cluster.kubectl(&["auth", "can-i", "get", &format!("secret/{secret}"), "-n", app.namespace, "--as", &who], None);
            if !answer.as_deref().is_ok_and(|a| a.trim() == "yes") {
                faults.push(format!("RBAC: {who} ({}) may not get Secret {secret}, which it reads", app.id));
            }
        }
    }
    Ok(faults)
}
