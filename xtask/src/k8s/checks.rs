//! Cross-checks of the objects the API server holds against what the code
//! does ([`Facts`]). Each returns the faults it found, one line each.
//!
//! - secrets: every secret a component reads is allowed by its app's
//!   Configuration secret scope, and nothing else is;
//! - pub/sub: every topic an app publishes (its code, and the dead-letter
//!   topics Dapr publishes for its subscriptions) or subscribes to is allowed
//!   by the component's `publishingScopes` / `subscriptionScopes`, exactly;
//! - invocation: an app's access-control policy admits exactly the app-ids
//!   whose code invokes it;
//! - subscription routes: every route a Subscription delivers to is an HTTP
//!   route of that app's component in `spin.toml` and a path of its router;
//! - environment: every setting a component reads whose default is empty or
//!   loopback (CORS origins, auth URLs, ...) is set for it on the cluster.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::facts::{Component, Facts};

/// The objects read back from the API server.
pub struct Objects(pub Vec<Value>);

impl Objects {
    /// Objects of `kind`.
    pub fn of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.0.iter().filter(move |o| o["kind"] == kind)
    }

    /// The object of `kind` named `name` in `namespace`.
    pub fn find<'a>(&'a self, kind: &'a str, namespace: &str, name: &str) -> Option<&'a Value> {
        self.of(kind).find(|o| o["metadata"]["name"] == name && o["metadata"]["namespace"] == namespace)
    }

    /// The Dapr apps: one per SpinApp.
    pub fn apps<'a>(&'a self, facts: &'a Facts) -> Vec<App<'a>> {
        self.of("SpinApp")
            .filter_map(|s| {
                let annotation = |k: &str| s["spec"]["podAnnotations"][k].as_str();
                Some(App {
                    id: annotation("dapr.io/app-id")?,
                    namespace: s["metadata"]["namespace"].as_str()?,
                    config: annotation("dapr.io/config"),
                    component: facts.components.get(s["spec"]["components"][0].as_str()?)?,
                    spinapp: s,
                })
            })
            .collect()
    }
}

/// A Dapr app-id and what runs under it.
pub struct App<'a> {
    pub id: &'a str,
    pub namespace: &'a str,
    pub config: Option<&'a str>,
    pub component: &'a Component,
    pub spinapp: &'a Value,
}

fn strs(v: &Value) -> BTreeSet<String> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
}

fn metadata<'a>(component: &'a Value, name: &str) -> Option<&'a str> {
    component["spec"]["metadata"].as_array()?.iter().find(|m| m["name"] == name)?["value"].as_str()
}

/// Says where `have` and `want` differ, as a fault about `what`.
fn compare(faults: &mut Vec<String>, what: &str, have: &BTreeSet<String>, want: &BTreeSet<String>) {
    let missing: Vec<_> = want.difference(have).collect();
    let extra: Vec<_> = have.difference(want).collect();
    if !missing.is_empty() {
        faults.push(format!("{what}: lacks {missing:?}"));
    }
    if !extra.is_empty() {
        faults.push(format!("{what}: grants {extra:?}, which the code never uses"));
    }
}

/// Secrets against each app's Configuration `spec.secrets.scopes`.
pub fn secret_scopes(objects: &Objects, facts: &Facts) -> Vec<String> {
    let mut faults = Vec::new();
    for app in objects.apps(facts) {
        let store = app.component.default_of("SECRET_STORE").unwrap_or("secretstore");
        let Some(config) = app.config.and_then(|c| objects.find("Configuration", app.namespace, c)) else {
            faults.push(format!("{}: no Dapr Configuration {:?}", app.id, app.config));
            continue;
        };
        let component = objects.find("Component", app.namespace, store);
        if !app.component.secrets.is_empty()
            && component.is_none_or(|c| !strs(&c["scopes"]).is_empty() && !strs(&c["scopes"]).contains(app.id))
        {
            faults.push(format!("{}: reads secrets from {store}, which is not a secret store scoped to it", app.id));
        }
        let scope = config["spec"]["secrets"]["scopes"].as_array().into_iter().flatten().find(|s| s["storeName"] == store);
        let what = format!("{} (Configuration {}) secret scope of {store}", app.id, config["metadata"]["name"].as_str().unwrap_or(""));
        match scope {
            None => faults.push(format!("{what}: missing, so every secret of the store is readable")),
            Some(scope) if scope["defaultAccess"] != "deny" => faults.push(format!("{what}: defaultAccess is not deny")),
            Some(scope) => compare(&mut faults, &what, &strs(&scope["allowedSecrets"]), &app.component.secrets),
        }
    }
    faults
}

/// `app=t1,t2;app2=` as a map; an app that is absent is unrestricted.
fn parse_scopes(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    text.split(';')
        .filter_map(|entry| entry.split_once('='))
        .map(|(app, topics)| {
            (app.trim().to_owned(), topics.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect())
        })
        .collect()
}

/// Topics against the pub/sub component's publishing and subscription scopes.
pub fn pubsub_scopes(objects: &Objects, facts: &Facts) -> Vec<String> {
    let mut faults = Vec::new();
    let apps = objects.apps(facts);
    for pubsub in objects.of("Component").filter(|c| c["spec"]["type"].as_str().is_some_and(|t| t.starts_with("pubsub."))) {
        let (name, namespace) = (pubsub["metadata"]["name"].as_str().unwrap_or(""), pubsub["metadata"]["namespace"].as_str().unwrap_or(""));
        let publishing = parse_scopes(metadata(pubsub, "publishingScopes").unwrap_or(""));
        let subscription = parse_scopes(metadata(pubsub, "subscriptionScopes").unwrap_or(""));
        let scoped = strs(&pubsub["scopes"]);
        for app in apps.iter().filter(|a| a.namespace == namespace) {
            if !scoped.is_empty() && !scoped.contains(app.id) {
                // Dapr does not load the component for this app-id at all.
                if app.component.default_of("PUBSUB").unwrap_or("pubsub") == name && !app.component.publishes.is_empty() {
                    faults.push(format!("pub/sub {name} is not scoped to {}, which publishes {:?}", app.id, app.component.publishes));
                }
                continue;
            }
            let subscriptions: Vec<&Value> = objects
                .of("Subscription")
                .filter(|s| s["metadata"]["namespace"] == namespace && s["spec"]["pubsubname"] == name)
                .filter(|s| strs(&s["scopes"]).contains(app.id))
                .collect();
            let mut publishes: BTreeSet<String> = if app.component.default_of("PUBSUB").unwrap_or("pubsub") == name {
                app.component.publishes.clone()
            } else {
                BTreeSet::new()
            };
            publishes.extend(subscriptions.iter().filter_map(|s| s["spec"]["deadLetterTopic"].as_str()).map(str::to_owned));
            let subscribes: BTreeSet<String> =
                subscriptions.iter().filter_map(|s| s["spec"]["topic"].as_str()).map(str::to_owned).collect();
            for (field, scopes, want) in [("publishingScopes", &publishing, &publishes), ("subscriptionScopes", &subscription, &subscribes)]
            {
                let what = format!("pub/sub {name} {field} of {}", app.id);
                match scopes.get(app.id) {
                    None => faults.push(format!("{what}: no entry, so it may use every topic")),
                    Some(have) => compare(&mut faults, &what, have, want),
                }
            }
        }
    }
    faults
}

/// Each app's access-control policy against the app-ids that invoke it.
pub fn invocation_acls(objects: &Objects, facts: &Facts) -> Vec<String> {
    let mut faults = Vec::new();
    let apps = objects.apps(facts);
    for callee in &apps {
        let callers: BTreeSet<String> = apps.iter().filter(|a| a.component.invokes.contains(callee.id)).map(|a| a.id.to_owned()).collect();
        let Some(config) = callee.config.and_then(|c| objects.find("Configuration", callee.namespace, c)) else {
            continue; // reported by secret_scopes
        };
        let acl = &config["spec"]["accessControl"];
        let what = format!("{} access control (Configuration {})", callee.id, config["metadata"]["name"].as_str().unwrap_or(""));
        if acl.is_null() || acl["defaultAction"] != "deny" {
            faults.push(format!("{what}: defaultAction is not deny, so every app-id may invoke it"));
            continue;
        }
        let allowed: BTreeSet<String> = acl["policies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["namespace"] == callee.namespace)
            .filter(|p| p["defaultAction"] == "allow" || p["operations"].as_array().into_iter().flatten().any(|o| o["action"] == "allow"))
            .filter_map(|p| p["appId"].as_str().map(str::to_owned))
            .collect();
        let mut local = Vec::new();
        compare(&mut local, &what, &allowed, &callers);
        faults.extend(local.into_iter().map(|f| f.replace("grants", "admits").replace("lacks", "refuses callers")));
    }
    faults
}

/// Whether the Spin route pattern `pattern` (`:name` segments, a trailing
/// `/...` wildcard) serves `path`.
pub fn route_matches(pattern: &str, path: &str) -> bool {
    let (pattern, wildcard) = match pattern.strip_suffix("/...") {
        Some(prefix) => (prefix, true),
        None => (pattern, false),
    };
    let (p, s): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    (s.len() == p.len() || wildcard && s.len() > p.len()) && p.iter().zip(&s).all(|(a, b)| a == b || a.starts_with(':') && !b.is_empty())
}

/// Subscription routes against the subscribing component's `spin.toml` routes;
/// and bulk delivery on, since the handlers take only bulk deliveries
/// (`component_kit::delivery`).
pub fn subscription_routes(objects: &Objects, facts: &Facts) -> Vec<String> {
    let mut faults = Vec::new();
    let apps = objects.apps(facts);
    for sub in objects.of("Subscription") {
        let name = sub["metadata"]["name"].as_str().unwrap_or("");
        let spec = &sub["spec"];
        if spec["bulkSubscribe"]["enabled"] != true {
            faults.push(format!("Subscription {name}: bulkSubscribe is not enabled, but its handler takes only bulk deliveries"));
        }
        let mut routes: Vec<&str> = [&spec["routes"]["default"], &spec["route"]].into_iter().filter_map(Value::as_str).collect();
        routes.extend(spec["routes"]["rules"].as_array().into_iter().flatten().filter_map(|r| r["path"].as_str()));
        let scopes = strs(&sub["scopes"]);
        if scopes.is_empty() {
            faults.push(format!("Subscription {name}: no scopes, so every app-id subscribes"));
        }
        for id in &scopes {
            let Some(app) = apps.iter().find(|a| a.id == id && a.namespace == sub["metadata"]["namespace"]) else {
                faults.push(format!("Subscription {name}: scope {id:?} is no app-id of a SpinApp"));
                continue;
            };
            for route in &routes {
                if !app.component.routes.iter().any(|r| route_matches(r, route)) {
                    faults.push(format!("Subscription {name}: route {route} is no route of component {} in spin.toml", app.component.id));
                } else if !app.component.handlers.iter().any(|h| route_matches(h, route)) {
                    faults.push(format!("Subscription {name}: route {route} is served by no handler of component {}", app.component.id));
                }
            }
        }
    }
    faults
}

/// Whether a setting's default is wrong on a cluster: empty (feature off) or
/// loopback. `DAPR_*` settings address the pod's own sidecar, where loopback is right.
fn needs_cluster_value(name: &str, default: Option<&str>) -> bool {
    !name.starts_with("DAPR_") && default.is_none_or(|d| d.contains("127.0.0.1") || d.contains("localhost"))
}

/// Settings against the environment each app gets on the cluster: the
/// component's `spin.toml` environment, application variables, and the
/// `SPIN_VARIABLE_*` the operator sets from `spec.variables`.
pub fn environment(objects: &Objects, facts: &Facts) -> Vec<String> {
    let mut faults = Vec::new();
    for app in objects.apps(facts) {
        let name = app.spinapp["metadata"]["name"].as_str().unwrap_or("");
        let deployment = objects.find("Deployment", app.namespace, name);
        let env: BTreeSet<String> = deployment
            .and_then(|d| d["spec"]["template"]["spec"]["containers"].as_array())
            .into_iter()
            .flatten()
            .flat_map(|c| c["env"].as_array().into_iter().flatten().filter_map(|e| e["name"].as_str().map(str::to_owned)))
            .collect();
        for setting in app.component.settings.iter().filter(|s| needs_cluster_value(&s.name, s.default.as_deref())) {
            let covered = app.component.environment.contains(&setting.name)
                || facts.variables.contains(&setting.name.to_lowercase())
                || env.contains(&format!("SPIN_VARIABLE_{}", setting.name));
            if !covered {
                faults.push(format!(
                    "{}: component {} reads {} (default {:?}) but nothing sets it on the cluster",
                    app.id,
                    app.component.id,
                    setting.name,
                    setting.default.as_deref().unwrap_or("")
                ));
            }
        }
    }
    faults
}

/// Every topic an app uses (published, subscribed, dead-letter) is a KafkaTopic.
pub fn topics_declared(objects: &Objects, facts: &Facts) -> Vec<String> {
    let declared: BTreeSet<&str> =
        objects.of("KafkaTopic").filter_map(|t| t["spec"]["topicName"].as_str().or(t["metadata"]["name"].as_str())).collect();
    let mut used: BTreeSet<String> = objects.apps(facts).iter().flat_map(|a| a.component.publishes.iter().cloned()).collect();
    for sub in objects.of("Subscription") {
        used.extend(["topic", "deadLetterTopic"].iter().filter_map(|f| sub["spec"][f].as_str()).map(str::to_owned));
    }
    used.iter().filter(|t| !declared.contains(t.as_str())).map(|t| format!("topic {t} is used but no KafkaTopic declares it")).collect()
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::k8s::facts::Setting;
    use serde_json::json;

    /// Two apps: `api` (reads secret `key`, publishes `events`, is invoked by
    /// `worker`) and `worker` (subscribes to `events`, invokes `api`).
    pub fn facts() -> Facts {
        let component = |id: &str| Component {
            id: id.into(),
            routes: vec![format!("/internal/{id}/..."), format!("/healthz/{id}")],
            handlers: vec![format!("/internal/{id}/events")],
            settings: vec![Setting { name: "SECRET_STORE".into(), default: Some("secrets".into()) }],
            ..Component::default()
        };
        let mut api = component("api");
        api.secrets.insert("key".into());
        api.publishes.insert("events".into());
        api.settings.push(Setting { name: "PUBSUB".into(), default: Some("pubsub".into()) });
        let mut worker = component("worker");
        worker.invokes.insert("api".into());
        Facts { components: [("api".into(), api), ("worker".into(), worker)].into(), variables: BTreeSet::new() }
    }

    fn spinapp(id: &str) -> Value {
        json!({"kind": "SpinApp", "metadata": {"name": id, "namespace": "ns"}, "spec": {"components": [id],
            "podAnnotations": {"dapr.io/app-id": id, "dapr.io/config": format!("{id}-config")}}})
    }

    fn config(id: &str, secrets: Value, policies: Value) -> Value {
        json!({"kind": "Configuration", "metadata": {"name": format!("{id}-config"), "namespace": "ns"}, "spec": {
            "secrets": {"scopes": [{"storeName": "secrets", "defaultAccess": "deny", "allowedSecrets": secrets}]},
            "accessControl": {"defaultAction": "deny", "policies": policies}}})
    }

    /// Manifests consistent with [`facts`].
    pub fn good() -> Vec<Value> {
        vec![
            spinapp("api"),
            spinapp("worker"),
            config("api", json!(["key"]), json!([{"appId": "worker", "defaultAction": "allow", "namespace": "ns"}])),
            config("worker", json!([]), json!([])),
            json!({"kind": "Component", "metadata": {"name": "pubsub", "namespace": "ns"}, "spec": {"type": "pubsub.kafka", "metadata": [
                {"name": "publishingScopes", "value": "api=events;worker=events-dlq"},
                {"name": "subscriptionScopes", "value": "api=;worker=events"}]}}),
            json!({"kind": "Component", "metadata": {"name": "secrets", "namespace": "ns"}, "spec": {"type": "secretstores.kubernetes"}, "scopes": ["api", "worker"]}),
            json!({"kind": "Subscription", "metadata": {"name": "worker-events", "namespace": "ns"}, "scopes": ["worker"],
                "spec": {"pubsubname": "pubsub", "topic": "events", "deadLetterTopic": "events-dlq", "routes": {"default": "/internal/worker/events"},
                         "bulkSubscribe": {"enabled": true}}}),
        ]
    }

    fn all(objects: &Objects, facts: &Facts) -> Vec<String> {
        [secret_scopes, pubsub_scopes, invocation_acls, subscription_routes, environment].iter().flat_map(|c| c(objects, facts)).collect()
    }

    /// `good()` with `edit` applied to the first object of `kind`.
    fn broken(kind: &str, edit: impl FnOnce(&mut Value)) -> Objects {
        let mut objects = good();
        edit(objects.iter_mut().find(|o| o["kind"] == kind).unwrap());
        Objects(objects)
    }

    #[test]
    fn consistent_manifests_pass() {
        assert_eq!(all(&Objects(good()), &facts()), Vec::<String>::new());
    }

    #[test]
    fn a_secret_outside_the_scope_fails() {
        let objects = broken("Configuration", |c| c["spec"]["secrets"]["scopes"][0]["allowedSecrets"] = json!(["other"]));
        let faults = secret_scopes(&objects, &facts());
        assert!(faults.iter().any(|f| f.contains("lacks [\"key\"]")), "{faults:?}");
        assert!(faults.iter().any(|f| f.contains("grants [\"other\"]")), "{faults:?}");
        let mut objects = good();
        objects.iter_mut().find(|o| o["metadata"]["name"] == "secrets").unwrap()["scopes"] = json!(["worker"]);
        let objects = Objects(objects);
        assert!(secret_scopes(&objects, &facts()).iter().any(|f| f.contains("not a secret store scoped to it")));
    }

    #[test]
    fn a_topic_outside_the_pubsub_scopes_fails() {
        let objects = broken("Component", |c| c["spec"]["metadata"][0]["value"] = json!("worker=events-dlq"));
        let faults = pubsub_scopes(&objects, &facts());
        assert!(faults.iter().any(|f| f.contains("publishingScopes of api: no entry")), "{faults:?}");
        let objects = broken("Subscription", |s| s["spec"]["topic"] = json!("reminders"));
        let faults = pubsub_scopes(&objects, &facts());
        assert!(faults.iter().any(|f| f.contains("subscriptionScopes of worker: lacks [\"reminders\"]")), "{faults:?}");
    }

    #[test]
    fn an_acl_that_differs_from_the_calls_fails() {
        let objects = broken("Configuration", |c| c["spec"]["accessControl"]["policies"] = json!([]));
        let faults = invocation_acls(&objects, &facts());
        assert!(faults.iter().any(|f| f.contains("api access control") && f.contains("refuses callers [\"worker\"]")), "{faults:?}");
        let objects = broken("Configuration", |c| c["spec"]["accessControl"]["defaultAction"] = json!("allow"));
        assert!(invocation_acls(&objects, &facts()).iter().any(|f| f.contains("every app-id may invoke it")));
    }

    #[test]
    fn a_subscription_route_missing_from_spin_toml_fails() {
        let objects = broken("Subscription", |s| s["spec"]["routes"]["default"] = json!("/internal/api/events"));
        let faults = subscription_routes(&objects, &facts());
        assert!(faults.iter().any(|f| f.contains("route /internal/api/events is no route of component worker")), "{faults:?}");
    }

    #[test]
    fn a_setting_nothing_sets_fails() {
        let mut facts = facts();
        let api = facts.components.get_mut("api").unwrap();
        api.settings.push(Setting { name: "CORS_ALLOWED_ORIGINS".into(), default: None });
        api.settings.push(Setting { name: "AUTH_URL".into(), default: Some("http://127.0.0.1:4100".into()) });
        api.settings.push(Setting { name: "DAPR_API_TOKEN".into(), default: None });
        let faults = environment(&Objects(good()), &facts);
        assert_eq!(faults.len(), 2, "{faults:?}");
        let mut objects = good();
        objects.push(
            json!({"kind": "Deployment", "metadata": {"name": "api", "namespace": "ns"}, "spec": {"template": {"spec": {"containers": [
            {"env": [{"name": "SPIN_VARIABLE_CORS_ALLOWED_ORIGINS"}, {"name": "SPIN_VARIABLE_AUTH_URL"}]}]}}}}),
        );
        assert_eq!(environment(&Objects(objects), &facts), Vec::<String>::new());
    }

    /// Every document of `spinkube/**/*.yaml`, as the API server would hold it.
    fn repo_manifests() -> Vec<Value> {
        use serde::Deserialize;
        let files = crate::paths::files_with_ext(&crate::paths::root().join("spinkube"), "yaml").unwrap();
        let mut docs = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let value = serde_json::to_value(serde_yaml::Value::deserialize(doc).unwrap()).unwrap();
                if !value.is_null() {
                    docs.push(value);
                }
            }
        }
        docs
    }

    /// The repository's manifests with `edit` applied to the object of `kind` named `name`.
    fn repo_broken(kind: &str, name: &str, edit: impl FnOnce(&mut Value)) -> Objects {
        let mut docs = repo_manifests();
        edit(docs.iter_mut().find(|d| d["kind"] == kind && d["metadata"]["name"] == name).unwrap());
        Objects(docs)
    }

    #[test]
    fn the_repository_manifests_pass_and_each_break_is_caught() {
        let facts = Facts::read(&crate::paths::root()).unwrap();
        let manifest_checks = [secret_scopes, pubsub_scopes, invocation_acls, subscription_routes, topics_declared];
        let faults: Vec<String> = manifest_checks.iter().flat_map(|c| c(&Objects(repo_manifests()), &facts)).collect();
        assert_eq!(faults, Vec::<String>::new());
        let scope = repo_broken("Configuration", "todo-api-config", |c| {
            c["spec"]["secrets"]["scopes"][0]["allowedSecrets"] = json!(["app-api-token"])
        });
        assert!(secret_scopes(&scope, &facts).iter().any(|f| f.contains("todo-api") && f.contains("jwt-hs256-secret")));
        let pubsub = repo_broken("Component", "pubsub", |c| {
            c["spec"]["metadata"].as_array_mut().unwrap().retain(|m| m["name"] != "publishingScopes")
        });
        // One fault per app scoped to pub/sub (mcp-server and the sidecar-less board are not).
        let scoped = repo_manifests()
            .iter()
            .find(|d| d["kind"] == "Component" && d["metadata"]["name"] == "pubsub")
            .and_then(|c| c["scopes"].as_array().map(Vec::len))
            .unwrap();
        assert_eq!(pubsub_scopes(&pubsub, &facts).len(), scoped);
        let acl = repo_broken("Configuration", "todo-api-config", |c| {
            c["spec"]["accessControl"]["policies"]
                .as_array_mut()
                .unwrap()
                .push(json!({"appId": "reminder-service", "defaultAction": "allow", "namespace": "todo"}))
        });
        assert!(invocation_acls(&acl, &facts).iter().any(|f| f.contains("admits [\"reminder-service\"]")));
        let route = repo_broken("Subscription", "audit-service-reminders", |s| {
            s["spec"]["routes"]["default"] = json!("/internal/auditing/reminders")
        });
        assert!(subscription_routes(&route, &facts).iter().any(|f| f.contains("/internal/auditing/reminders is no route")));
        let handler =
            repo_broken("Subscription", "audit-service-reminders", |s| s["spec"]["routes"]["default"] = json!("/internal/audit/reminder"));
        assert!(subscription_routes(&handler, &facts).iter().any(|f| f.contains("/internal/audit/reminder is served by no handler")));
        let single = repo_broken("Subscription", "audit-service-reminders", |s| s["spec"]["bulkSubscribe"]["enabled"] = json!(false));
        assert!(subscription_routes(&single, &facts).iter().any(|f| f.contains("audit-service-reminders: bulkSubscribe is not enabled")));
        let topic = repo_broken("Subscription", "audit-service-reminders", |s| s["spec"]["deadLetterTopic"] = json!("reminders-dead"));
        assert!(topics_declared(&topic, &facts).iter().any(|f| f.contains("reminders-dead")));
    }

    #[test]
    fn spin_routes_match_like_spin() {
        assert!(route_matches("/internal/audit/...", "/internal/audit/task-events"));
        assert!(route_matches("/api/:user_id/changes", "/api/alice/changes"));
        assert!(!route_matches("/api/:user_id/changes", "/api/alice/changes/x"));
        assert!(!route_matches("/internal/audit/...", "/internal/auditx"));
    }
}
