//! Helpers for the end-to-end suite: where the stack is, tokens, HTTP, polling
//! and contract validation. `cargo xtask test` starts the stack and sets the
//! environment; run alone (`cargo test --workspace`), every end-to-end test
//! fails with [`NO_STACK`] instead of passing without having run.

pub mod better_auth;

use std::time::{Duration, Instant};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::Value;

/// Why an end-to-end test fails outside `cargo xtask test`.
pub const NO_STACK: &str = "no stack: the end-to-end suite runs against the stack that `cargo xtask test` starts";

/// Where the running stack is, from the environment `cargo xtask test` sets.
pub struct Stack {
    /// todo-api's address.
    pub api: String,
    /// audit-service's address.
    pub audit: String,
    /// todo-api's daprd.
    pub api_dapr: String,
    /// mcp-server's address (its endpoint is `{mcp}/mcp`).
    pub mcp: String,
    jwt_secret: String,
    app_token: String,
    contracts: std::path::PathBuf,
}

impl Stack {
    /// The stack that `cargo xtask test` started. Outside it there is none,
    /// and the test fails: a test that did not run must not pass.
    pub fn get() -> Stack {
        if std::env::var("TODO_E2E").is_err() {
            panic!("{NO_STACK}");
        }
        let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
        let secrets: Value = serde_json::from_str(&std::fs::read_to_string(var("TODO_SECRETS_FILE")).unwrap()).unwrap();
        Stack {
            api: var("TODO_API_URL"),
            audit: var("AUDIT_SERVICE_URL"),
            api_dapr: var("TODO_API_DAPR_URL"),
            mcp: var("MCP_SERVER_URL"),
            jwt_secret: secrets["jwt-hs256-secret"].as_str().unwrap().to_owned(),
            app_token: secrets["app-api-token"].as_str().unwrap().to_owned(),
            contracts: var("TODO_CONTRACTS_DIR").into(),
        }
    }

    /// A valid token for `user`.
    pub fn token(&self, user: &str) -> String {
        self.token_with(user, 3600, &self.jwt_secret)
    }

    /// A token for `user` expiring in `ttl` seconds (negative: already expired), signed with `secret`.
    pub fn token_with(&self, user: &str, ttl: i64, secret: &str) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let claims = serde_json::json!({ "sub": user, "iat": now - 120, "exp": now + ttl });
        encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()).unwrap()).unwrap()
    }

    /// The token the sidecar presents on Dapr-only routes.
    pub fn app_token(&self) -> &str {
        &self.app_token
    }

    /// The user's audit entries (first page of `GET /audit/{user}`).
    pub fn audit_entries(&self, user: &str, token: &str) -> Vec<Value> {
        let reply = get(&format!("{}/audit/{user}", self.audit), token);
        assert_eq!(reply.status, 200, "{:?}", reply.json);
        reply.json["items"].as_array().cloned().unwrap_or_default()
    }

    /// Publishes `cloudevent` as-is on `topic` through todo-api's sidecar, keyed
    /// by `user`: what a redelivery, or another service's event, looks like.
    pub fn publish_cloudevent(&self, topic: &str, user: &str, cloudevent: &Value) {
        let reply = send(
            "POST",
            &format!("{}/v1.0/publish/pubsub/{topic}?metadata.partitionKey={user}", self.api_dapr),
            &[],
            Some(("application/cloudevents+json", cloudevent.to_string().as_bytes())),
        );
        assert_eq!(reply.status, 204, "publish on {topic}: {:?}", reply.json);
    }

    /// Validates `instance` against the JSON Schema at `specs/contracts/<path>`.
    pub fn assert_matches_contract(&self, path: &str, instance: &Value) {
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(self.contracts.join(path)).unwrap()).unwrap();
        let validator = jsonschema::options().should_validate_formats(true).build(&schema).unwrap();
        let errors: Vec<String> = validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{instance} breaks {path}: {errors:?}");
    }
}

/// Where `instance` breaks `#/components/schemas/{name}` of the OpenAPI document.
pub fn openapi_errors(name: &str, instance: &Value) -> Vec<String> {
    let mut schema: Value = serde_json::from_str(include_str!("../../../specs/contracts/openapi.json")).unwrap();
    schema["$ref"] = serde_json::json!(format!("#/components/schemas/{name}"));
    let validator = jsonschema::options().should_validate_formats(true).build(&schema).unwrap();
    validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

/// Asserts that `instance` matches `#/components/schemas/{name}` of the OpenAPI document.
pub fn assert_matches_openapi(name: &str, instance: &Value) {
    let errors = openapi_errors(name, instance);
    assert!(errors.is_empty(), "{instance} breaks the OpenAPI schema {name}: {errors:?}");
}

/// A fresh user id, so that tests never see each other's data.
pub fn fresh_user(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// A response reduced to what the tests look at.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Null` when empty or not JSON).
    pub json: Value,
    /// The body as text.
    pub text: String,
}

impl Reply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Sends a request; `body` is sent as-is with `content_type` when given.
pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Option<(&str, &[u8])>) -> Reply {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into();
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let result = match body {
        Some((content_type, bytes)) => agent.run(request.header("content-type", content_type).body(bytes.to_vec()).unwrap()),
        None => agent.run(request.body(()).unwrap()),
    };
    let mut response = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    Reply { status, headers, json: serde_json::from_str(&text).unwrap_or(Value::Null), text }
}

/// Posts `cloudevents` to a subscription route as Dapr's bulk subscribe
/// delivers them (`{"entries": [{"entryId", "event", ...}], ...}`, entry ids
/// `"0"`, `"1"`, ...), with the app API token `app_token`. Returns the reply
/// and each entry's status in order (`None` where the reply names none).
pub fn deliver_bulk(url: &str, app_token: &str, topic: &str, cloudevents: &[Value]) -> (Reply, Vec<Option<String>>) {
    let entries: Vec<Value> = cloudevents
        .iter()
        .enumerate()
        .map(|(i, event)| {
            serde_json::json!({ "entryId": i.to_string(), "event": event, "metadata": {}, "contentType": "application/cloudevents+json" })
        })
        .collect();
    let body = serde_json::json!({ "id": uuid::Uuid::now_v7().to_string(), "type": "com.dapr.event.sent", "topic": topic,
        "pubsubname": "pubsub", "metadata": {}, "entries": entries })
    .to_string();
    let reply = send("POST", url, &[("dapr-api-token", app_token)], Some(("application/json", body.as_bytes())));
    let statuses = (0..cloudevents.len())
        .map(|i| {
            let (id, mut listed) = (i.to_string(), reply.json["statuses"].as_array().into_iter().flatten());
            listed.find(|s| s["entryId"].as_str() == Some(id.as_str())).and_then(|s| s["status"].as_str()).map(str::to_owned)
        })
        .collect();
    (reply, statuses)
}

/// Writes `value` at `key` through the sidecar at `dapr`, behind its app's
/// back (Dapr adds the app-id prefix): a tampered or outdated document.
pub fn put_state(dapr: &str, key: &str, value: &Value) {
    let body = serde_json::json!([{ "key": key, "value": value }]).to_string();
    let written = send("POST", &format!("{dapr}/v1.0/state/statestore"), &[], Some(("application/json", body.as_bytes())));
    assert_eq!(written.status, 204, "writing {key}: {:?}", written.json);
}

/// Sends JSON with a bearer token.
pub fn send_json(method: &str, url: &str, token: &str, body: &Value) -> Reply {
    let auth = format!("Bearer {token}");
    send(method, url, &[("authorization", &auth)], Some(("application/json", body.to_string().as_bytes())))
}

/// GET with a bearer token.
pub fn get(url: &str, token: &str) -> Reply {
    let auth = format!("Bearer {token}");
    send("GET", url, &[("authorization", &auth)], None)
}

/// POSTs `body` (sent as-is) to the MCP endpoint `url` with a bearer token,
/// as a Streamable HTTP client does.
pub fn mcp_post(url: &str, token: &str, body: &[u8]) -> Reply {
    let auth = format!("Bearer {token}");
    let headers =
        [("authorization", auth.as_str()), ("accept", "application/json, text/event-stream"), ("mcp-protocol-version", "2025-11-25")];
    send("POST", url, &headers, Some(("application/json", body)))
}

/// Polls `probe` until it returns `Some`, for at most `limit`.
pub fn eventually<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One origin the stack's browser-facing services allow: the first of
/// `CORS_ALLOWED_ORIGINS` (a comma-separated list) that `cargo xtask test` sets.
pub fn allowed_origin() -> String {
    let origins = std::env::var("CORS_ALLOWED_ORIGINS").expect("CORS_ALLOWED_ORIGINS is set by `cargo xtask test`");
    origins.split(',').map(str::trim).find(|o| !o.is_empty()).expect("CORS_ALLOWED_ORIGINS names an origin").to_owned()
}
