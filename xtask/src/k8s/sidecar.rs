//! The Dapr sidecar of each generated pod: Dapr's own injector logic
//! (`pkg/injector/patcher`, run by the Go test `xtask/dapr/injector`) patches
//! every Deployment's pod template, and the daprd container it adds is checked
//! against the SpinApp: app-id, app port, config, control-plane addresses,
//! tokens and resources.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

use super::checks::Objects;
use crate::bootstrap::progress::Step;

/// Runs the injector on the pod template of every SpinApp's Deployment;
/// returns the daprd container of each, by SpinApp name.
pub fn inject(objects: &Objects, go: &Path, dir: &Path) -> Result<Map<String, Value>> {
    let templates: Vec<Value> = objects
        .of("SpinApp")
        .filter_map(|s| {
            let (name, ns) = (s["metadata"]["name"].as_str()?, s["metadata"]["namespace"].as_str()?);
            let d = objects.find("Deployment", ns, name)?;
            Some(json!({"name": name, "namespace": ns, "template": d["spec"]["template"]}))
        })
        .collect();
    if templates.is_empty() {
        return Ok(Map::new());
    }
    let (input, output) = (dir.join("pod-templates.json"), dir.join("daprd.json"));
    fs::write(&input, serde_json::to_vec_pretty(&templates)?)?;
    let _ = fs::remove_file(&output);
    let log = dir.join("injector-test.log");
    let step =
        Step::start("dapr injector", &format!("go test xtask/dapr/injector; log: {}", log.display()), "a minute once, seconds cached");
    crate::paths::run_logged(
        Command::new(go)
            // The flags of the daprd build, so its compiled packages are reused.
            .args(["test", "-count=1", "-trimpath", "-gcflags=all=-dwarf=false", "./injector"])
            .current_dir(crate::paths::root().join("xtask/dapr"))
            .env("GONOSUMDB", "*")
            .env("GOFLAGS", "-mod=readonly")
            .env("TODO_POD_TEMPLATES", &input)
            .env("TODO_DAPRD_OUT", &output),
        &log,
        "the Dapr injector test",
    )?;
    step.finish();
    let daprd: Value = serde_json::from_slice(&fs::read(&output).context("the injector test wrote no output")?)?;
    daprd.as_object().cloned().context("injector output is not an object")
}

/// The value after `flag` in the container's args.
fn arg<'a>(container: &'a Value, flag: &str) -> Option<&'a str> {
    let args: Vec<&str> = container["args"].as_array()?.iter().filter_map(Value::as_str).collect();
    args.iter().position(|a| *a == flag).and_then(|i| args.get(i + 1)).copied()
}

/// The Secret an env var of the container comes from, as `name/key`.
fn secret_env(container: &Value, name: &str) -> Option<String> {
    let env = container["env"].as_array()?.iter().find(|e| e["name"] == name)?;
    let r = &env["valueFrom"]["secretKeyRef"];
    Some(format!("{}/{}", r["name"].as_str()?, r["key"].as_str()?))
}

/// Checks each daprd container against its SpinApp's annotations.
pub fn check(objects: &Objects, daprd: &Map<String, Value>) -> Vec<String> {
    let mut faults = Vec::new();
    for app in objects.of("SpinApp") {
        let name = app["metadata"]["name"].as_str().unwrap_or("");
        let annotations = &app["spec"]["podAnnotations"];
        let mut fault = |f: String| faults.push(format!("daprd of {name}: {f}"));
        let Some(container) = daprd.get(name) else {
            fault("the injector added no daprd container".into());
            continue;
        };
        let want = |k: &str| annotations[k].as_str();
        for (flag, key) in [("--app-id", "dapr.io/app-id"), ("--app-port", "dapr.io/app-port"), ("--config", "dapr.io/config")] {
            if arg(container, flag) != want(key) || want(key).is_none() {
                fault(format!("{flag} is {:?}, annotation {key} is {:?}", arg(container, flag), want(key)));
            }
        }
        for flag in ["--control-plane-address", "--sentry-address", "--placement-host-address", "--scheduler-host-address"] {
            if arg(container, flag).is_none_or(|a| !a.contains(".dapr-system.svc.")) {
                fault(format!("{flag} is {:?}, expected a dapr-system service", arg(container, flag)));
            }
        }
        if !container["args"].as_array().is_some_and(|a| a.iter().any(|x| x == "--enable-mtls")) {
            fault("mTLS is off".into());
        }
        for (env, key) in [("APP_API_TOKEN", "dapr.io/app-token-secret"), ("DAPR_API_TOKEN", "dapr.io/api-token-secret")] {
            let expected = want(key).map(|s| format!("{s}/token"));
            if secret_env(container, env) != expected {
                fault(format!("{env} comes from {:?}, annotation {key} says {expected:?}", secret_env(container, env)));
            }
        }
        for (path, key) in
            [("/resources/requests/cpu", "dapr.io/sidecar-cpu-request"), ("/resources/limits/memory", "dapr.io/sidecar-memory-limit")]
        {
            if want(key).is_some() && container.pointer(path).and_then(Value::as_str) != want(key) {
                fault(format!("{path} is {:?}, annotation {key} is {:?}", container.pointer(path), want(key)));
            }
        }
    }
    faults
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects() -> Objects {
        Objects(vec![json!({"kind": "SpinApp", "metadata": {"name": "api"}, "spec": {"podAnnotations": {
            "dapr.io/app-id": "api", "dapr.io/app-port": "80", "dapr.io/config": "api-config", "dapr.io/app-token-secret": "tok"}}})])
    }

    fn daprd(args: &[&str]) -> Map<String, Value> {
        let mut all = vec!["--app-id", "api", "--app-port", "80", "--config", "api-config", "--enable-mtls"];
        for flag in ["--control-plane-address", "--sentry-address", "--placement-host-address", "--scheduler-host-address"] {
            all.extend([flag, "x.dapr-system.svc.cluster.local:443"]);
        }
        all.extend(args);
        let env = json!([{"name": "APP_API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "token"}}}]);
        Map::from_iter([("api".to_string(), json!({"args": all, "env": env}))])
    }

    #[test]
    fn a_matching_sidecar_passes() {
        assert_eq!(check(&objects(), &daprd(&[])), Vec::<String>::new());
    }

    #[test]
    fn a_sidecar_with_another_app_id_fails() {
        let mut d = daprd(&[]);
        d["api"]["args"][1] = json!("other");
        assert!(check(&objects(), &d).iter().any(|f| f.contains("--app-id")));
        assert!(check(&objects(), &Map::new()).iter().any(|f| f.contains("no daprd")));
    }
}
