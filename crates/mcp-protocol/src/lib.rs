//! The Model Context Protocol as the `mcp-server` component speaks it, with no I/O.
//!
//! [`rpc`] reads JSON-RPC 2.0 messages and builds answers and errors; [`tools`]
//! holds the tool catalog (`specs/contracts/mcp-tools.json`) and turns a
//! `tools/call` into the todo-api request that carries it out, and todo-api's
//! answer into the tool result.

pub mod rpc;
pub mod tools;

use rpc::RpcError;
use serde_json::{json, Map, Value};

/// Protocol revisions this server speaks, newest first.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
/// The revision a client that sends no `MCP-Protocol-Version` header is taken to speak.
pub const DEFAULT_HEADER_VERSION: &str = "2025-03-26";

/// The revision to answer an `initialize` asking for `requested`: the same
/// when supported, else the newest this server speaks.
pub fn negotiate(requested: Option<&str>) -> &'static str {
    SUPPORTED_VERSIONS.iter().find(|v| Some(**v) == requested).copied().unwrap_or(SUPPORTED_VERSIONS[0])
}

/// Whether `version` (an `MCP-Protocol-Version` header) is one this server speaks.
pub fn is_supported(version: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}

/// `_meta` key of the stateless revision (2026-07-28) carrying the protocol version.
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// Answer at once: a result or an error.
    Answer(Result<Value, RpcError>),
    /// Carry out a tool: its plan, or the message of an `isError` result.
    Tool(Result<tools::Plan, String>),
}

/// Routes a request of `method` with `params` by the token's `subject`.
pub fn route(method: &str, params: Option<&Map<String, Value>>, subject: &str) -> Route {
    if let Some(version) = params.and_then(|p| p.get("_meta")).and_then(|m| m.get(META_VERSION)) {
        if !version.as_str().is_some_and(is_supported) {
            return Route::Answer(Err(unsupported_version(version)));
        }
    }
    let param = |name: &str| params.and_then(|p| p.get(name));
    Route::Answer(Ok(match method {
        "initialize" => initialize(param("protocolVersion").and_then(Value::as_str)),
        "ping" => json!({}),
        "tools/list" => match param("cursor") {
            None | Some(Value::Null) => json!({ "tools": tools::catalog() }),
            Some(_) => {
                return Route::Answer(Err(RpcError::new(
                    rpc::INVALID_PARAMS,
                    "Invalid params: unknown cursor (the tool list has one page)",
                )))
            }
        },
        "tools/call" => {
            let Some(name) = param("name").and_then(Value::as_str) else {
                return Route::Answer(Err(RpcError::new(rpc::INVALID_PARAMS, "Invalid params: name (the tool) is required")));
            };
            let Some(tool) = tools::Tool::named(name) else {
                return Route::Answer(Err(RpcError::new(rpc::INVALID_PARAMS, format!("Unknown tool: {name}"))));
            };
            return Route::Tool(tools::plan(tool, param("arguments"), subject));
        }
        _ => {
            let mut error = RpcError::new(rpc::METHOD_NOT_FOUND, format!("Method not found: {method}"));
            if method == "server/discover" {
                // The stateless revision is not spoken yet: a probing client falls back to `initialize`.
                error.data = Some(json!({ "supportedVersions": SUPPORTED_VERSIONS }));
            }
            return Route::Answer(Err(error));
        }
    }))
}

/// The error for a protocol version this server does not speak (`-32600`,
/// with the versions it does in `data.supported`).
pub fn unsupported_version(version: &Value) -> RpcError {
    RpcError {
        code: rpc::INVALID_REQUEST,
        message: format!("Unsupported protocol version: {version}"),
        data: Some(json!({ "supported": SUPPORTED_VERSIONS, "requested": version })),
    }
}

/// The `initialize` result for a client asking for `requested`.
pub fn initialize(requested: Option<&str>) -> Value {
    json!({
        "protocolVersion": negotiate(requested),
        "capabilities": { "tools": { "listChanged": false } },
        "serverInfo": { "name": "todo-chatbot", "title": "Todo Chatbot tasks", "version": env!("CARGO_PKG_VERSION") },
        "instructions": "Manage the signed-in user's tasks. To act on a task named in words (\"delete the meeting task\"), call find_tasks first and use the task_id it returns. quick_add turns a sentence with dates, #tags, p1-p4 and \"every ...\" into a task.",
    })
}

/// The OAuth protected-resource metadata (RFC 9728) of the MCP endpoint at
/// `base` (`https://host`), naming `authorization_servers` when any are configured.
pub fn resource_metadata(base: &str, authorization_servers: &[&str]) -> Value {
    let mut doc = json!({
        "resource": format!("{base}/mcp"),
        "bearer_methods_supported": ["header"],
        "resource_name": "Todo Chatbot tasks (MCP)",
    });
    if !authorization_servers.is_empty() {
        doc["authorization_servers"] = json!(authorization_servers);
    }
    doc
}

/// Whether a request with `Origin: origin` may be served (DNS-rebinding
/// protection): a loopback origin (`localhost`, `127.0.0.1`, `[::1]`, any
/// port), the origin of `public_url`, or one `listed` (`CORS_ALLOWED_ORIGINS`).
pub fn origin_allowed(origin: &str, public_url: Option<&str>, listed: bool) -> bool {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().map(|h| format!("[{h}]")).unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default().to_owned(),
    };
    let loopback = matches!(scheme, "http" | "https") && matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]");
    let public = public_url.is_some_and(|u| {
        let u = u.trim_end_matches('/').to_ascii_lowercase();
        let base = u.split_once("://").map(|(s, rest)| format!("{s}://{}", rest.split('/').next().unwrap_or_default()));
        base.as_deref() == Some(origin.as_str())
    });
    loopback || public || listed
}

/// `WWW-Authenticate` of a 401 on the MCP endpoint at `base`: the bearer
/// scheme and where the protected-resource metadata is (RFC 9728 §5.1).
pub fn www_authenticate(base: &str, token_given: bool) -> String {
    let mut value = format!("Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource\"");
    if token_given {
        value += ", error=\"invalid_token\"";
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(method: &str, params: Value) -> Result<Value, RpcError> {
        match route(method, params.as_object(), "alice") {
            Route::Answer(a) => a,
            Route::Tool(t) => panic!("{method} planned a tool: {t:?}"),
        }
    }

    #[test]
    fn initialize_negotiates_the_version() {
        assert_eq!(answer("initialize", json!({ "protocolVersion": "2025-06-18" })).unwrap()["protocolVersion"], "2025-06-18");
        assert_eq!(answer("initialize", json!({ "protocolVersion": "2026-07-28" })).unwrap()["protocolVersion"], "2025-11-25");
        assert_eq!(answer("initialize", json!({})).unwrap()["capabilities"]["tools"]["listChanged"], false);
    }

    #[test]
    fn methods_and_tools_that_do_not_exist_are_json_rpc_errors() {
        assert_eq!(answer("resources/list", json!({})).unwrap_err().code, rpc::METHOD_NOT_FOUND);
        let discover = answer("server/discover", json!({})).unwrap_err();
        assert_eq!((discover.code, discover.data.unwrap()["supportedVersions"][0].clone()), (rpc::METHOD_NOT_FOUND, json!("2025-11-25")));
        assert_eq!(answer("tools/call", json!({ "name": "rm_rf" })).unwrap_err().code, rpc::INVALID_PARAMS);
        assert_eq!(answer("tools/call", json!({})).unwrap_err().code, rpc::INVALID_PARAMS);
        assert_eq!(answer("tools/list", json!({ "cursor": "x" })).unwrap_err().code, rpc::INVALID_PARAMS);
        let stateless = json!({ "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28" } });
        assert_eq!(answer("tools/list", stateless).unwrap_err().code, rpc::INVALID_REQUEST);
        assert_eq!(answer("ping", json!({})).unwrap(), json!({}));
    }

    #[test]
    fn bad_tool_arguments_are_tool_errors() {
        let routed = route("tools/call", json!({ "name": "add_task", "arguments": { "title": 3, "x": 1 } }).as_object(), "alice");
        assert!(matches!(routed, Route::Tool(Err(_))), "{routed:?}");
    }

    #[test]
    fn only_loopback_public_or_listed_origins_are_served() {
        for ok in ["http://localhost:5173", "http://127.0.0.1:3005", "https://[::1]:8443", "HTTP://LOCALHOST"] {
            assert!(origin_allowed(ok, None, false), "{ok}");
        }
        for bad in
            ["http://evil.example.com", "http://localhost.evil.example", "http://127.0.0.1.evil.example", "null", "", "file://localhost"]
        {
            assert!(!origin_allowed(bad, None, false), "{bad}");
        }
        assert!(origin_allowed("https://todo.example", Some("https://todo.example/"), false));
        assert!(!origin_allowed("https://todo.example.evil", Some("https://todo.example"), false));
        assert!(origin_allowed("https://app.example", None, true));
    }

    #[test]
    fn the_metadata_names_the_resource_and_the_authorization_server() {
        let doc = resource_metadata("https://todo.example", &["https://auth.example"]);
        assert_eq!(doc["resource"], "https://todo.example/mcp");
        assert_eq!(doc["authorization_servers"], json!(["https://auth.example"]));
        assert!(resource_metadata("http://h", &[]).get("authorization_servers").is_none());
        assert_eq!(
            www_authenticate("http://h", true),
            "Bearer resource_metadata=\"http://h/.well-known/oauth-protected-resource\", error=\"invalid_token\""
        );
    }
}
