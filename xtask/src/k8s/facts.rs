//! What each component does, read from `spin.toml` and its source: its routes
//! (Spin's triggers and its own router's paths), its fixed environment, the settings it reads, the secrets it reads, the
//! topics it publishes, the app-ids it invokes.
//!
//! The source is read as text, by the calls into the shared crates:
//! `publish(<pubsub>, <TOPIC>, ..)` and `invoke_*(<APP_ID>, ..)` (constants are
//! resolved across the workspace), settings by `env_or("NAME", default)` and
//! `std::env::var("NAME")` in the component and in the `component-kit` modules
//! it uses, secrets by the `component-kit` calls in [`SECRET_READERS`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// `component-kit` calls that read secrets, and the settings naming them.
pub const SECRET_READERS: &[(&str, &[&str])] = &[
    ("auth::user(", &["JWT_SECRET_NAME", "BETTER_AUTH_JWKS_SECRET"]),
    ("stream_token::", &["JWT_SECRET_NAME"]),
    ("auth::dapr_only(", &["APP_API_TOKEN_SECRET"]),
    ("delivery::", &["APP_API_TOKEN_SECRET"]),
];

/// A setting (environment variable) a component reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub name: String,
    /// The code's default; `None` when unset means empty (the feature is off).
    pub default: Option<String>,
}

/// One component of `spin.toml`.
#[derive(Debug, Clone, Default)]
pub struct Component {
    pub id: String,
    /// Its HTTP trigger routes.
    pub routes: Vec<String>,
    /// The paths its own router serves (`router.<method>("<path>", ..)`), `/*` as `/...`.
    pub handlers: Vec<String>,
    /// Keys of `[component.<id>] environment`.
    pub environment: BTreeSet<String>,
    pub settings: Vec<Setting>,
    /// Secret names read from the secret store named by `SECRET_STORE`.
    pub secrets: BTreeSet<String>,
    pub publishes: BTreeSet<String>,
    pub invokes: BTreeSet<String>,
}

impl Component {
    /// The value a setting has when nothing sets it.
    pub fn default_of(&self, name: &str) -> Option<&str> {
        self.settings.iter().find(|s| s.name == name).and_then(|s| s.default.as_deref())
    }
}

/// Every component, by id, plus the application variables of `spin.toml`.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub components: BTreeMap<String, Component>,
    pub variables: BTreeSet<String>,
}

impl Facts {
    /// Reads `spin.toml` and the sources under `root`.
    pub fn read(root: &Path) -> Result<Facts> {
        let text = fs::read_to_string(root.join("spin.toml")).context("reading spin.toml")?;
        let manifest: toml::Value = toml::from_str(&text).context("spin.toml is not valid TOML")?;
        let consts = constants(root)?;
        let kit = root.join("crates/component-kit/src");
        let mut facts = Facts {
            variables: manifest.get("variables").and_then(toml::Value::as_table).map(|t| t.keys().cloned().collect()).unwrap_or_default(),
            ..Facts::default()
        };
        let tables = manifest.get("component").and_then(toml::Value::as_table).context("spin.toml has no [component.*]")?;
        for (id, table) in tables {
            let dir = root.join("components").join(id).join("src");
            if !dir.is_dir() {
                bail!("component {id}: no source at {}", dir.display());
            }
            let own = read_sources(&dir)?;
            let mut text = own.clone();
            // The component-kit modules it uses, and the Dapr client every component uses.
            for (module, source) in modules(&kit)? {
                if own.contains(&format!("{module}::")) || uses_module(&own, &module) {
                    text.push_str(&source);
                }
            }
            text.push_str(&read_sources(&root.join("crates/dapr-http/src"))?);
            let mut component = Component {
                id: id.clone(),
                environment: table
                    .get("environment")
                    .and_then(toml::Value::as_table)
                    .map(|t| t.keys().cloned().collect())
                    .unwrap_or_default(),
                settings: settings(&text),
                ..Component::default()
            };
            // Every component reads `Settings::from_env`.
            for setting in settings(&read_sources(&kit.join("settings.rs"))?) {
                if !component.settings.iter().any(|s| s.name == setting.name) {
                    component.settings.push(setting);
                }
            }
            for (call, names) in SECRET_READERS {
                if own.contains(call) {
                    let secrets: Vec<String> = names.iter().filter_map(|n| component.default_of(n)).map(str::to_owned).collect();
                    component.secrets.extend(secrets);
                }
            }
            component.publishes = call_args(&own, ".publish", 1).iter().map(|a| resolve(a, &consts)).collect::<Result<_>>()?;
            // `component_kit::Routes`: `.get("/path", ..)`, `.post(..)`, `.on(Method::Put, "/path", ..)`.
            component.handlers = [(".get", 0), (".post", 0), (".on", 1), (".served_elsewhere", 1)]
                .into_iter()
                .flat_map(|(call, index)| call_args(&own, call, index))
                .filter_map(|a| a.strip_prefix("\"/")?.strip_suffix('"').map(|p| format!("/{}", p.replace("/*", "/..."))))
                .collect();
            component.invokes = call_args(&own, ".invoke_", 0).iter().map(|a| resolve(a, &consts)).collect::<Result<_>>()?;
            facts.components.insert(id.clone(), component);
        }
        for (route, id) in http_triggers(&manifest) {
            if let Some(c) = facts.components.get_mut(&id) {
                c.routes.push(route);
            }
        }
        Ok(facts)
    }
}

/// `(route, component)` of each `[[trigger.http]]`.
fn http_triggers(manifest: &toml::Value) -> Vec<(String, String)> {
    let triggers = manifest.get("trigger").and_then(|t| t.get("http")).and_then(toml::Value::as_array);
    triggers
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t.get("route")?.as_str()?.to_owned(), t.get("component")?.as_str()?.to_owned())))
        .collect()
}

/// All `*.rs` under `path` (or the file itself), concatenated.
fn read_sources(path: &Path) -> Result<String> {
    let files = if path.is_file() { vec![path.to_path_buf()] } else { crate::paths::files_with_ext(path, "rs")? };
    let mut text = String::new();
    for f in files {
        text.push_str(&fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?);
        text.push('\n');
    }
    Ok(text)
}

/// `(module name, source)` of each top-level module file of a crate.
fn modules(src: &Path) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(src)?.flatten() {
        let p = entry.path();
        if let Some(stem) = p.file_stem().and_then(|s| s.to_str()).filter(|s| *s != "lib") {
            out.push((stem.to_owned(), read_sources(&p)?));
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a `use component_kit::{..}` line names `module`.
fn uses_module(source: &str, module: &str) -> bool {
    source
        .lines()
        .filter(|l| l.trim_start().starts_with("use component_kit"))
        .any(|l| l.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|word| word == module))
}

/// Every `const NAME: &str = "value";` of the workspace's crates and components.
fn constants(root: &Path) -> Result<BTreeMap<String, String>> {
    let mut text = read_sources(&root.join("crates"))?;
    text.push_str(&read_sources(&root.join("components"))?);
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.trim_start().trim_start_matches("pub ").trim_start_matches("pub(crate) ").strip_prefix("const ") else {
            continue;
        };
        if let Some((name, value)) = rest.split_once(": &str = \"") {
            if let Some(value) = value.strip_suffix("\";") {
                out.insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }
    Ok(out)
}

/// A call's argument: a string literal, or a constant's value.
fn resolve(arg: &str, consts: &BTreeMap<String, String>) -> Result<String> {
    let arg = arg.trim().trim_start_matches('&');
    if let Some(lit) = arg.strip_prefix('"').and_then(|a| a.strip_suffix('"')) {
        return Ok(lit.to_owned());
    }
    let name = arg.rsplit("::").next().unwrap_or(arg);
    consts.get(name).cloned().with_context(|| format!("cannot resolve {arg:?} to a string constant"))
}

/// Argument `index` of every method call whose name starts with `method`
/// (`.invoke_` matches `.invoke_post(`).
fn call_args(source: &str, method: &str, index: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(method) {
        rest = &rest[at + method.len()..];
        let Some(open) = rest.find('(') else { break };
        let args = &rest[open + 1..];
        let mut depth = 0;
        let mut current = String::new();
        let mut all = Vec::new();
        for c in args.chars() {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' if depth == 0 => break,
                ')' | ']' | '}' => depth -= 1,
                ',' if depth == 0 => {
                    all.push(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            }
            current.push(c);
        }
        all.push(current);
        if let Some(arg) = all.get(index) {
            out.push(arg.trim().to_owned());
        }
    }
    out
}

/// Settings read by `env_or("NAME", "default")` or `std::env::var("NAME")`; a
/// default is the first string literal after the name on its line.
fn settings(source: &str) -> Vec<Setting> {
    let mut out: Vec<Setting> = Vec::new();
    for line in source.lines() {
        for call in ["env_or(\"", "env::var(\""] {
            let mut rest = line;
            while let Some(at) = rest.find(call) {
                rest = &rest[at + call.len()..];
                let Some((name, after)) = rest.split_once('"') else { break };
                let default = after.split_once('"').and_then(|(_, lit)| lit.split_once('"')).map(|(d, _)| d.to_owned());
                let setting = Setting { name: name.to_owned(), default: default.filter(|d| !d.is_empty()) };
                if !out.iter().any(|s| s.name == setting.name) {
                    out.push(setting);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_keep_their_defaults() {
        let src = r#"
            let a = env_or("STATE_STORE", "statestore");
            let b = std::env::var("CORS_ALLOWED_ORIGINS").unwrap_or_default();
            let c = std::env::var("APP_API_TOKEN_SECRET").unwrap_or_else(|_| "app-api-token".to_owned());
        "#;
        let s = settings(src);
        assert_eq!(s[0], Setting { name: "STATE_STORE".into(), default: Some("statestore".into()) });
        assert_eq!(s[1], Setting { name: "CORS_ALLOWED_ORIGINS".into(), default: None });
        assert_eq!(s[2].default.as_deref(), Some("app-api-token"));
    }

    #[test]
    fn calls_resolve_constants_and_skip_definitions() {
        let consts = BTreeMap::from([("TOPIC".to_string(), "task-events".to_string())]);
        let src = "pub async fn publish(&self, pubsub: &str) {}\n dapr.publish(&s.pubsub, TOPIC, &x, &meta).await;\n d.invoke_post(\"todo-api\", &m, &b)";
        let topics: Vec<String> = call_args(src, ".publish", 1).iter().map(|a| resolve(a, &consts).unwrap()).collect();
        assert_eq!(topics, ["task-events"]);
        assert_eq!(call_args(src, ".invoke_", 0), ["\"todo-api\""]);
        assert!(resolve("UNKNOWN", &consts).is_err());
    }

    #[test]
    fn the_workspace_reads_as_expected() {
        let facts = Facts::read(&crate::paths::root()).unwrap();
        let todo = &facts.components["todo-api"];
        assert!(todo.publishes.contains("task-events"), "{todo:?}");
        assert!(todo.secrets.contains("app-api-token"), "{todo:?}");
        assert!(facts.components["recurring-service"].invokes.contains("todo-api"));
        assert!(todo.routes.iter().any(|r| r.starts_with("/api/")));
        assert!(facts.components["audit-service"].handlers.contains(&"/internal/audit/reminders".to_string()));
    }
}
