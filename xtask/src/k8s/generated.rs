//! What the SpinKube operator made of each SpinApp, against the SpinApp and
//! `spin.toml`: a Deployment and a Service per app-id, the image, the component
//! selection, the replicas, the `dapr.io/*` annotations, environment, probes,
//! resources, runtime class and service account.

use serde_json::Value;

use super::checks::Objects;
use super::facts::Facts;

/// The Dapr annotations every app needs, and what each must be.
fn dapr_annotations(objects: &Objects, namespace: &str, component: &str, annotations: &Value) -> Vec<String> {
    let mut faults = Vec::new();
    let get = |k: &str| annotations[k].as_str();
    for (key, want) in [("dapr.io/enabled", "true"), ("dapr.io/app-id", component), ("dapr.io/app-port", "80")] {
        if get(key) != Some(want) {
            faults.push(format!("annotation {key} is {:?}, expected {want:?}", get(key)));
        }
    }
    match get("dapr.io/config") {
        Some(c) if objects.find("Configuration", namespace, c).is_some() => {}
        other => faults.push(format!("annotation dapr.io/config {other:?} names no Dapr Configuration in {namespace}")),
    }
    for key in ["dapr.io/app-token-secret", "dapr.io/api-token-secret"] {
        if let Some(secret) = get(key) {
            if objects.find("Secret", namespace, secret).is_none_or(|s| s["data"]["token"].is_null()) {
                faults.push(format!("annotation {key} names Secret {secret}, which has no key `token`"));
            }
        }
    }
    if get("dapr.io/app-token-secret").is_none() {
        faults.push("no dapr.io/app-token-secret: the app cannot tell Dapr's calls from anyone's".into());
    }
    faults
}

/// The Deployment and Service of every SpinApp.
pub fn workloads(objects: &Objects, facts: &Facts) -> Vec<String> {
    let mut faults = Vec::new();
    for app in objects.of("SpinApp") {
        let (name, ns) = (app["metadata"]["name"].as_str().unwrap_or(""), app["metadata"]["namespace"].as_str().unwrap_or(""));
        let mut fault = |f: String| faults.push(format!("SpinApp {ns}/{name}: {f}"));
        let spec = &app["spec"];
        let components: Vec<&str> = spec["components"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let [component] = components.as_slice() else {
            fault(format!("spec.components must select exactly one component, has {components:?}"));
            continue;
        };
        let Some(facts) = facts.components.get(*component) else {
            fault(format!("component {component} is no [component.<id>] of spin.toml"));
            continue;
        };
        if name != *component {
            fault(format!("its name must be its component id {component}"));
        }
        let Some(deployment) = objects.find("Deployment", ns, name) else {
            fault("the operator made no Deployment".into());
            continue;
        };
        if !deployment["metadata"]["ownerReferences"].as_array().into_iter().flatten().any(|o| o["kind"] == "SpinApp" && o["name"] == name)
        {
            fault("its Deployment is not owned by it".into());
        }
        let d = &deployment["spec"];
        if spec["enableAutoscaler"] != true && d["replicas"] != spec["replicas"] {
            fault(format!("Deployment replicas {} != spec.replicas {}", d["replicas"], spec["replicas"]));
        }
        let pod = &d["template"]["spec"];
        let executor = objects.find("SpinAppExecutor", ns, spec["executor"].as_str().unwrap_or(""));
        let runtime_class = executor.map(|e| &e["spec"]["deploymentConfig"]["runtimeClassName"]);
        if runtime_class.is_some_and(|rc| pod["runtimeClassName"] != *rc) {
            fault(format!("pod runtimeClassName {} is not the executor's {:?}", pod["runtimeClassName"], runtime_class));
        }
        if let Some(rc) = pod["runtimeClassName"].as_str() {
            if !objects.of("RuntimeClass").any(|r| r["metadata"]["name"] == rc) {
                fault(format!("RuntimeClass {rc} does not exist"));
            }
        }
        if pod["serviceAccountName"] != spec["serviceAccountName"]
            || objects.find("ServiceAccount", ns, pod["serviceAccountName"].as_str().unwrap_or("")).is_none()
        {
            fault(format!(
                "pod service account {} is not spec.serviceAccountName {} or does not exist",
                pod["serviceAccountName"], spec["serviceAccountName"]
            ));
        }
        let containers = pod["containers"].as_array().cloned().unwrap_or_default();
        let [container] = containers.as_slice() else {
            fault(format!("pod has {} containers, expected the app's one", containers.len()));
            continue;
        };
        if container["image"] != spec["image"] {
            fault(format!("container image {} != spec.image {}", container["image"], spec["image"]));
        }
        let env = |k: &str| container["env"].as_array().into_iter().flatten().find(|e| e["name"] == k).and_then(|e| e["value"].as_str());
        if env("SPIN_COMPONENTS_TO_RETAIN") != Some(*component) {
            fault(format!("SPIN_COMPONENTS_TO_RETAIN is {:?}, expected {component:?}", env("SPIN_COMPONENTS_TO_RETAIN")));
        }
        let port =
            container["ports"].as_array().into_iter().flatten().find(|p| p["name"] == "http-app").map(|p| p["containerPort"].clone());
        let app_port = pod_annotation(d, "dapr.io/app-port");
        if port.as_ref().and_then(Value::as_i64).map(|p| p.to_string()) != app_port.map(str::to_owned) {
            fault(format!("container port http-app {port:?} is not dapr.io/app-port {app_port:?}"));
        }
        if container["resources"] != spec["resources"] || container["resources"]["limits"]["memory"].is_null() {
            fault(format!(
                "container resources {} != spec.resources {} (a memory limit is required)",
                container["resources"], spec["resources"]
            ));
        }
        for probe in ["readinessProbe", "livenessProbe"] {
            let path = container[probe]["httpGet"]["path"].as_str();
            let served = path.is_some_and(|p| facts.routes.iter().any(|r| super::checks::route_matches(r, p)));
            let probe_port = &container[probe]["httpGet"]["port"];
            let on_app_port = probe_port == "http-app" || port.as_ref() == Some(probe_port);
            if !served || !on_app_port {
                fault(format!("{probe} {:?} is not a route of {component} on the app port", container[probe]["httpGet"]));
            }
        }
        for f in dapr_annotations(objects, ns, component, &d["template"]["metadata"]["annotations"]) {
            fault(f);
        }
        let labels = &d["template"]["metadata"]["labels"];
        match objects.find("Service", ns, name) {
            None => fault("the operator made no Service".into()),
            Some(svc) => {
                let selector = svc["spec"]["selector"].as_object().cloned().unwrap_or_default();
                if selector.is_empty() || selector.iter().any(|(k, v)| labels[k] != *v) {
                    fault(format!("Service selector {selector:?} does not select the pods {labels}"));
                }
                let ports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
                if !ports.iter().any(|p| p["port"] == 80 && p["targetPort"] == "http-app") {
                    fault(format!("Service ports {ports:?} do not map 80 to http-app"));
                }
            }
        }
    }
    faults
}

fn pod_annotation<'a>(deployment_spec: &'a Value, key: &str) -> Option<&'a str> {
    deployment_spec["template"]["metadata"]["annotations"][key].as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objects(edit: impl FnOnce(&mut Value)) -> Objects {
        let spec = json!({"image": "img", "components": ["api"], "replicas": 2, "executor": "shim", "serviceAccountName": "sa",
            "resources": {"limits": {"memory": "256Mi"}}});
        let annotations = json!({"dapr.io/enabled": "true", "dapr.io/app-id": "api", "dapr.io/app-port": "80",
            "dapr.io/config": "api-config", "dapr.io/app-token-secret": "tok"});
        let probe = json!({"httpGet": {"path": "/healthz/api", "port": "http-app"}});
        let mut deployment = json!({"kind": "Deployment", "metadata": {"name": "api", "namespace": "ns", "ownerReferences": [{"kind": "SpinApp", "name": "api"}]},
            "spec": {"replicas": 2, "template": {"metadata": {"labels": {"core.spinkube.dev/app.api.status": "ready"}, "annotations": annotations},
            "spec": {"runtimeClassName": "wasm", "serviceAccountName": "sa", "containers": [{"image": "img",
                "env": [{"name": "SPIN_COMPONENTS_TO_RETAIN", "value": "api"}], "ports": [{"name": "http-app", "containerPort": 80}],
                "resources": {"limits": {"memory": "256Mi"}}, "readinessProbe": probe, "livenessProbe": probe}]}}}});
        edit(&mut deployment);
        let meta = |kind: &str, name: &str| json!({"kind": kind, "metadata": {"name": name, "namespace": "ns"}});
        let mut secret = meta("Secret", "tok");
        secret["data"] = json!({"token": "eA=="});
        let mut executor = meta("SpinAppExecutor", "shim");
        executor["spec"] = json!({"deploymentConfig": {"runtimeClassName": "wasm"}});
        let mut service = meta("Service", "api");
        service["spec"] =
            json!({"selector": {"core.spinkube.dev/app.api.status": "ready"}, "ports": [{"port": 80, "targetPort": "http-app"}]});
        let mut spinapp = meta("SpinApp", "api");
        spinapp["spec"] = spec;
        Objects(vec![
            spinapp,
            deployment,
            service,
            secret,
            executor,
            meta("Configuration", "api-config"),
            meta("ServiceAccount", "sa"),
            json!({"kind": "RuntimeClass", "metadata": {"name": "wasm"}}),
        ])
    }

    fn facts() -> Facts {
        let mut facts = crate::k8s::checks::tests::facts();
        facts.components.get_mut("api").unwrap().routes.push("/healthz/api".into());
        facts
    }

    #[test]
    fn a_faithful_deployment_passes() {
        assert_eq!(workloads(&objects(|_| {}), &facts()), Vec::<String>::new());
    }

    #[test]
    fn each_difference_is_a_fault() {
        type Edit = fn(&mut Value);
        let cases: [(&str, Edit); 6] = [
            ("replicas", |d| d["spec"]["replicas"] = json!(1)),
            ("container image", |d| d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("other")),
            ("SPIN_COMPONENTS_TO_RETAIN", |d| d["spec"]["template"]["spec"]["containers"][0]["env"] = json!([])),
            ("dapr.io/config", |d| d["spec"]["template"]["metadata"]["annotations"]["dapr.io/config"] = json!("nope")),
            ("readinessProbe", |d| d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = json!("/healthz")),
            ("container resources", |d| d["spec"]["template"]["spec"]["containers"][0]["resources"] = json!({})),
        ];
        for (what, edit) in cases {
            let faults = workloads(&objects(edit), &facts());
            assert!(faults.iter().any(|f| f.contains(what)), "{what}: {faults:?}");
        }
    }
}
