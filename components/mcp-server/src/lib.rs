//! `mcp-server`: the agents' door, Model Context Protocol over Streamable HTTP.
//!
//! `POST /mcp` takes one JSON-RPC message and answers it as `application/json`
//! (202 with no body for a notification); `GET` and `DELETE` are 405: the
//! server is stateless (no `Mcp-Session-Id`, no stream), so any request works
//! on any instance. Every request needs the same bearer token as the REST
//! API; without one the answer is 401 naming the protected-resource metadata
//! (`/.well-known/oauth-protected-resource`, RFC 9728). Tools run through
//! todo-api by Dapr service invocation with the caller's token, so only
//! todo-api writes task state. The protocol itself is `mcp_protocol`.

use base64::Engine as _;
use component_kit::cors::Cors;
use component_kit::settings::env_or;
use component_kit::{auth, health, readiness, Problem, Routes, Settings};
use dapr_http::Dapr;
use mcp_protocol::rpc::{self, Message, RpcError};
use mcp_protocol::tools::{self, Plan, Verb};
use mcp_protocol::Route;
use serde_json::Value;
use spin_sdk::http::{IntoResponse, Method, Request, Response};
use spin_sdk::http_component;

const APP_ID: &str = "mcp-server";
/// The Dapr app-id of the only writer of task state.
const TODO_API: &str = "todo-api";
/// Largest accepted message.
const MAX_BODY: usize = 64 * 1024;

#[http_component]
async fn handle(req: Request) -> impl IntoResponse {
    let mut router = Routes::new();
    router
        .get("/healthz/mcp-server", |_, _| async { health(APP_ID) })
        .get("/readyz/mcp-server", |_, _| readiness(APP_ID))
        .get("/.well-known/oauth-protected-resource", |req: Request, _| async move { metadata(&req) })
        .get("/.well-known/oauth-protected-resource/*", |req: Request, _| async move { metadata(&req) })
        .post("/mcp", |req, _| mcp(req));
    router.handle(req).await
}

/// The public base URL: `MCP_PUBLIC_URL`, else the scheme and authority the
/// request was sent to (the host gives them as the URI, or as `Host`).
fn base_url(req: &Request) -> String {
    if let Some(url) = std::env::var("MCP_PUBLIC_URL").ok().filter(|v| !v.is_empty()) {
        return url.trim_end_matches('/').to_owned();
    }
    if let Some((scheme, rest)) = req.uri().split_once("://") {
        return format!("{scheme}://{}", rest.split('/').next().unwrap_or_default());
    }
    format!("http://{}", req.header("host").and_then(|v| v.as_str()).unwrap_or("localhost"))
}

/// `GET /.well-known/oauth-protected-resource`: the authorization servers are
/// `MCP_AUTHORIZATION_SERVERS` (comma-separated), else the Better Auth issuer
/// the tokens are checked against (`BETTER_AUTH_URL`).
fn metadata(req: &Request) -> Response {
    let issuer = Settings::from_env().better_auth.map(|b| b.issuer).unwrap_or_default();
    let servers = env_or("MCP_AUTHORIZATION_SERVERS", &issuer);
    let servers: Vec<&str> = servers.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    component_kit::json(200, &mcp_protocol::resource_metadata(&base_url(req), &servers))
}

/// A JSON-RPC answer with HTTP `status`.
fn answer(status: u16, body: &Value) -> Response {
    Response::builder().status(status).header("content-type", "application/json").body(body.to_string()).build()
}

fn refuse(status: u16, message: &str) -> Response {
    answer(status, &rpc::failure(&Value::Null, &RpcError::new(rpc::INVALID_REQUEST, message)))
}

/// `POST /mcp`.
async fn mcp(req: Request) -> Response {
    if let Some(origin) = req.header("origin").and_then(|v| v.as_str()) {
        let public = std::env::var("MCP_PUBLIC_URL").ok();
        if !mcp_protocol::origin_allowed(origin, public.as_deref(), Cors::from_env().allows(origin)) {
            return refuse(403, "this Origin is not allowed (CORS_ALLOWED_ORIGINS)");
        }
    }
    let (dapr, settings) = (Dapr::from_env(), Settings::from_env());
    let subject = match authenticate(&req, &dapr, &settings).await {
        Ok(subject) => subject,
        Err(response) => return response,
    };
    let content_type = req.header("content-type").and_then(|v| v.as_str()).unwrap_or_default();
    if !content_type.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/json") {
        return refuse(415, "send the message as application/json");
    }
    let accept = req.header("accept").and_then(|v| v.as_str()).unwrap_or("*/*").to_ascii_lowercase();
    if !["application/json", "*/*", "application/*"].iter().any(|t| accept.contains(t)) {
        return refuse(406, "this server answers application/json; list it in Accept");
    }
    if req.body().len() > MAX_BODY {
        return refuse(413, &format!("a message is at most {MAX_BODY} bytes"));
    }
    if let Some(version) = req.header("mcp-protocol-version").and_then(|v| v.as_str()) {
        if !mcp_protocol::is_supported(version) {
            return answer(400, &rpc::failure(&Value::Null, &mcp_protocol::unsupported_version(&Value::String(version.to_owned()))));
        }
    }
    let (id, method, params) = match rpc::parse(req.body()) {
        Ok(Message::Request { id, method, params }) => (id, method, params),
        Ok(Message::Notification { .. } | Message::Response) => return Response::builder().status(202).build(),
        Err(refused) => return answer(400, &rpc::failure(&refused.id, &refused.error)),
    };
    let result = match mcp_protocol::route(&method, params.as_ref(), &subject) {
        Route::Answer(Ok(result)) => result,
        Route::Answer(Err(error)) => return answer(200, &rpc::failure(&id, &error)),
        Route::Tool(Err(message)) => tools::error_result(message),
        Route::Tool(Ok(plan)) => run(&plan, &req, &subject, &dapr).await,
    };
    answer(200, &rpc::success(&id, result))
}

/// The caller: the subject of a valid bearer token (checked by the component
/// kit, as on every REST route). `Err` is the 401 (or 503) to answer.
async fn authenticate(req: &Request, dapr: &Dapr, settings: &Settings) -> Result<String, Response> {
    let given = req.header("authorization").is_some();
    let unauthorized = |detail: &str| {
        let mut response = Problem::unauthorized(detail).into_response();
        response.set_header("www-authenticate", mcp_protocol::www_authenticate(&base_url(req), given));
        response
    };
    let claimed = claimed_subject(req).ok_or_else(|| unauthorized("an `Authorization: Bearer <JWT>` header with a subject is required"))?;
    match auth::user(req, &claimed, dapr, settings).await {
        Ok(user) => Ok(user.as_str().to_owned()),
        Err(problem) if problem.status == 401 || problem.status == 403 => Err(unauthorized(&problem.detail)),
        Err(problem) => Err(problem.into_response()),
    }
}

/// The `sub` a bearer token claims, unverified: `auth::user` then verifies
/// the token and that it is this subject's.
fn claimed_subject(req: &Request) -> Option<String> {
    let header = req.header("authorization")?.as_str()?;
    let token = header.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))?.1.trim();
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get("sub")?.as_str().map(str::to_owned)
}

/// Carries out `plan` against todo-api, with the caller's token.
async fn run(plan: &Plan, req: &Request, subject: &str, dapr: &Dapr) -> Value {
    let authorization = req.header("authorization").and_then(|v| v.as_str()).unwrap_or_default();
    let mut answers = Vec::with_capacity(plan.calls.len());
    for call in &plan.calls {
        let verb = match call.verb {
            Verb::Get => Method::Get,
            Verb::Post => Method::Post,
            Verb::Patch => Method::Patch,
            Verb::Delete => Method::Delete,
        };
        let path = format!("api/{}/{}", dapr_http::encode(subject), call.path);
        let body = call.body.as_ref().map(|b| b.to_string().into_bytes());
        match dapr.invoke_with(TODO_API, verb, &path, &[("authorization", authorization)], body).await {
            Ok((status, bytes)) => {
                answers.push((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)));
                if !(200..300).contains(&status) {
                    break;
                }
            }
            Err(e) => {
                eprintln!("invoking todo-api: {e}");
                return tools::error_result("the task service is unreachable; retry later");
            }
        }
    }
    tools::result(plan, &answers)
}
