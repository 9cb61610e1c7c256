//! The MCP server through the real stack: the Streamable HTTP transport, its
//! authentication, the official SDK clients (Python `mcp`, TypeScript
//! `@modelcontextprotocol/sdk`) driving every tool, with the effects checked
//! through the REST API and the audit log, and the official conformance runner.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use e2e::{eventually, fresh_user, get, mcp_post, send, Stack};
use serde_json::{json, Value};

fn endpoint(stack: &Stack) -> String {
    format!("{}/mcp", stack.mcp)
}

fn rpc(stack: &Stack, token: &str, method: &str, params: Value) -> Value {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    let reply = mcp_post(&endpoint(stack), token, body.to_string().as_bytes());
    assert_eq!(reply.status, 200, "{method}: {:?}", reply.json);
    assert_eq!(reply.json["id"], 1, "{method}: {:?}", reply.json);
    reply.json
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the suite with `cargo xtask test`"))
}

#[test]
fn requests_without_a_valid_token_get_401_naming_the_resource_metadata() {
    let stack = Stack::get();
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let without = send("POST", &endpoint(&stack), &[("accept", "application/json, text/event-stream")], Some(("application/json", body)));
    assert_eq!(without.status, 401);
    let challenge = without.header("www-authenticate").expect("a 401 names its challenge").to_owned();
    let host = stack.mcp.trim_start_matches("http://");
    assert_eq!(challenge, format!("Bearer resource_metadata=\"http://{host}/.well-known/oauth-protected-resource\""));
    for token in [
        stack.token_with("alice", -3600, "DEVELOPMENT-ONLY-local-stack-jwt-key-not-a-real-secret"),
        stack.token_with("alice", 600, "wrong-key"),
        "x.y.z".into(),
    ] {
        let reply = mcp_post(&endpoint(&stack), &token, body);
        assert_eq!(reply.status, 401, "{token}: {:?}", reply.json);
        assert!(reply.header("www-authenticate").is_some_and(|c| c.contains("resource_metadata=") && c.contains("invalid_token")));
    }
    let metadata = send("GET", &format!("{}/.well-known/oauth-protected-resource", stack.mcp), &[], None);
    assert_eq!(metadata.status, 200);
    assert_eq!(metadata.json["resource"], format!("http://{host}/mcp"));
    assert_eq!(metadata.json["bearer_methods_supported"], json!(["header"]));
    let suffixed = send("GET", &format!("{}/.well-known/oauth-protected-resource/mcp", stack.mcp), &[], None);
    assert_eq!(suffixed.json, metadata.json);
}

#[test]
fn the_transport_is_stateless_json_rpc_over_http() {
    let stack = Stack::get();
    let user = fresh_user("mcp-transport");
    let token = stack.token(&user);
    let init = json!({ "jsonrpc": "2.0", "id": "i", "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "e2e", "version": "1" } } });
    let reply = mcp_post(&endpoint(&stack), &token, init.to_string().as_bytes());
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("mcp-session-id"), None, "stateless: no session");
    assert_eq!(reply.json["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(reply.json["result"]["capabilities"]["tools"]["listChanged"], false);
    // No handshake is needed: any request works on its own.
    let listed = rpc(&stack, &token, "tools/list", json!({}));
    assert_eq!(listed["result"]["tools"].as_array().map(Vec::len), Some(7));
    assert_eq!(rpc(&stack, &token, "ping", json!({}))["result"], json!({}));
    let note = mcp_post(&endpoint(&stack), &token, br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    assert_eq!((note.status, note.json.clone()), (202, Value::Null));
    for method in ["GET", "DELETE"] {
        let auth = format!("Bearer {token}");
        let reply = send(method, &endpoint(&stack), &[("authorization", &auth)], None);
        assert_eq!((reply.status, reply.header("allow")), (405, Some("POST")), "{method}");
    }
    assert_eq!(rpc(&stack, &token, "resources/list", json!({}))["error"]["code"], -32601);
    let discover = rpc(&stack, &token, "server/discover", json!({}));
    assert_eq!(discover["error"]["code"], -32601, "a 2026-07-28 client probing falls back to initialize");
    assert_eq!(rpc(&stack, &token, "tools/call", json!({ "name": "drop_database" }))["error"]["code"], -32602);
    // A version the server does not speak, in the header: 400 with a JSON-RPC error.
    let auth = format!("Bearer {token}");
    let future = send(
        "POST",
        &endpoint(&stack),
        &[("authorization", &auth), ("mcp-protocol-version", "2026-07-28")],
        Some(("application/json", br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#)),
    );
    assert_eq!((future.status, future.json["error"]["code"].clone()), (400, json!(-32600)), "{:?}", future.json);
    // A foreign Origin (DNS rebinding) is refused.
    let evil = send(
        "POST",
        &endpoint(&stack),
        &[("authorization", &auth), ("origin", "http://evil.example")],
        Some(("application/json", br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#)),
    );
    assert_eq!(evil.status, 403);
    // Another user's id as an argument is refused as a tool error.
    let other = rpc(&stack, &token, "tools/call", json!({ "name": "list_tasks", "arguments": { "user_id": "someone-else" } }));
    assert_eq!(other["result"]["isError"], true, "{other}");
}

/// Runs a client script; its stdout (last line) is the JSON of what it saw.
fn run_client(program: &str, args: &[&str], user: &str, token: &str, stack: &Stack) -> Value {
    let dir = PathBuf::from(var("TODO_MCP_CLIENTS_DIR"));
    let out = Command::new(program)
        .args(args)
        .current_dir(&dir)
        .env("MCP_URL", endpoint(stack))
        .env("MCP_TOKEN", token)
        .env("MCP_USER", user)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{program} {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{program} printed no JSON ({e}):\n{stdout}"))
}

/// What both SDK scenarios must have done, checked in their output, the REST API and the audit log.
fn check_scenario(stack: &Stack, user: &str, token: &str, seen: &Value) {
    let names = ["add_task", "complete_task", "delete_task", "find_tasks", "list_tasks", "quick_add", "update_task"];
    assert_eq!(seen["tools"], json!(names), "{seen}");
    let (first, second) = (seen["first"].as_str().unwrap().to_owned(), seen["second"].as_str().unwrap().to_owned());
    let mut pending: Vec<&str> = seen["pending"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    pending.sort_unstable();
    let mut want_pending = vec![first.as_str(), second.as_str()];
    want_pending.sort_unstable();
    assert_eq!(pending, want_pending, "list_tasks status=pending");
    assert_eq!(seen["found"], json!([first]), "find_tasks query=meeting");
    assert_eq!(seen["updated_title"], "Team meeting agenda");
    assert_eq!(seen["completed"], true);
    assert_eq!(seen["deleted_status"], "deleted");
    assert_eq!(seen["bad_args"]["isError"], true);
    assert!(seen["bad_args"]["text"].as_str().unwrap().contains("title"), "{seen}");
    assert_eq!(seen["missing"]["isError"], true);
    assert!(seen["missing"]["text"].as_str().unwrap().contains("not found"), "{seen}");
    assert_eq!(seen["unknown_tool_code"], -32602);
    let quick = &seen["quick_task"];
    assert_eq!(
        (quick["title"].as_str(), quick["priority"].as_str(), quick["time_zone"].as_str()),
        (Some("Call mom"), Some("urgent"), Some("Europe/Paris"))
    );
    assert_eq!(quick["tags"], json!(["family"]));
    let due = quick["due_at"].as_str().unwrap();
    assert!(due.ends_with("T17:00:00Z") || due.ends_with("T16:00:00Z"), "6pm in Paris: {due}");

    // The changes landed: through the REST API...
    let listed = get(&format!("{}/api/{user}/tasks", stack.api), token);
    let items = listed.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!((items[0]["id"].as_str(), items[0]["completed"].as_bool()), (Some(second.as_str()), Some(true)));
    assert_eq!(get(&format!("{}/api/{user}/tasks/{first}", stack.api), token).status, 404);
    // ...and as events, the same as REST changes make.
    let want = [
        (first.as_str(), "com.todo.task.created.v1"),
        (second.as_str(), "com.todo.task.created.v1"),
        (first.as_str(), "com.todo.task.updated.v1"),
        (second.as_str(), "com.todo.task.completed.v1"),
        (first.as_str(), "com.todo.task.deleted.v1"),
    ];
    let entries = eventually(Duration::from_secs(30), || {
        let entries = stack.audit_entries(user, token);
        (entries.len() >= want.len()).then_some(entries)
    })
    .expect("the audit log recorded every MCP change within 30 s");
    let got: Vec<(String, String)> =
        entries.iter().map(|e| (e["task_id"].as_str().unwrap().to_owned(), e["event_type"].as_str().unwrap().to_owned())).collect();
    let want: Vec<(String, String)> = want.iter().map(|(t, e)| (t.to_string(), e.to_string())).collect();
    assert_eq!(got, want);
    assert!(entries.iter().all(|e| e["actor"] == user));
}

/// Runs the SDK scenario `script` with the program in `$program_var` as a fresh user; what it saw, checked.
fn sdk_scenario(prefix: &str, program_var: &str, script: &str) -> Value {
    let stack = Stack::get();
    let user = fresh_user(prefix);
    let token = stack.token(&user);
    let seen = run_client(&var(program_var), &[script], &user, &token, &stack);
    check_scenario(&stack, &user, &token, &seen);
    seen
}

#[test]
fn the_python_sdk_client_drives_every_tool() {
    let seen = sdk_scenario("mcp-py", "TODO_MCP_PYTHON", "py_client.py");
    assert_eq!(seen["protocol"], "2025-11-25");
}

#[test]
fn the_typescript_sdk_client_drives_every_tool() {
    let seen = sdk_scenario("mcp-ts", "TODO_NODE22", "ts_client.mjs");
    assert_eq!(seen["server"]["name"], "todo-chatbot");
}

/// The conformance runner cannot send a bearer token, so it talks to a small
/// proxy that adds one, as a client configured with a token would.
fn token_proxy(target: String, token: String) -> u16 {
    let port: u16 = std::env::var("TODO_MCP_PROXY_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(0);
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("binding the token proxy");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (target, token) = (target.clone(), token.clone());
            std::thread::spawn(move || forward(stream, &target, &token));
        }
    });
    port
}

fn forward(stream: TcpStream, target: &str, token: &str) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("GET").to_owned(), parts.next().unwrap_or("/").to_owned());
        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let length: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let bearer = format!("Bearer {token}");
        let mut pass: Vec<(&str, &str)> = headers
            .iter()
            .filter(|(k, _)| {
                !["content-length", "connection", "authorization", "host", "content-type", "transfer-encoding"].contains(&k.as_str())
            })
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        pass.push(("authorization", &bearer));
        let content_type =
            headers.iter().find(|(k, _)| k == "content-type").map(|(_, v)| v.clone()).unwrap_or_else(|| "application/json".into());
        let reply =
            send(&method, &format!("{target}{path}"), &pass, (!body.is_empty()).then_some((content_type.as_str(), body.as_slice())));
        let text = if reply.json.is_null() { String::new() } else { reply.json.to_string() };
        let mut out = format!("HTTP/1.1 {} X\r\ncontent-length: {}\r\n", reply.status, text.len());
        for (k, v) in &reply.headers {
            if ["content-type", "www-authenticate", "allow", "mcp-session-id"].contains(&k.as_str()) {
                out += &format!("{k}: {v}\r\n");
            }
        }
        out += "\r\n";
        let mut stream = reader.get_ref();
        if stream.write_all(out.as_bytes()).and_then(|_| stream.write_all(text.as_bytes())).is_err() {
            return;
        }
    }
}

#[test]
fn the_official_conformance_runner_passes_or_expects_each_server_scenario() {
    let stack = Stack::get();
    let user = fresh_user("mcp-conformance");
    let port = token_proxy(stack.mcp.clone(), stack.token(&user));
    let dir = PathBuf::from(var("TODO_MCP_CLIENTS_DIR"));
    let results = dir.join("../../target/mcp-conformance");
    let out = Command::new(var("TODO_NODE22"))
        .arg("node_modules/@modelcontextprotocol/conformance/dist/index.js")
        .args([
            "server",
            "--url",
            &format!("http://127.0.0.1:{port}/mcp"),
            "--expected-failures",
            "conformance-expected-failures.yml",
            "-o",
        ])
        .arg(&results)
        .current_dir(&dir)
        .output()
        .expect("running the conformance runner");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "conformance: an unexpected failure or a stale expected failure:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
