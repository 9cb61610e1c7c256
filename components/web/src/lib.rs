//! `web`: the live task board. Serves the single page at `/` and its files at
//! `/assets/{build}/...`, all embedded in the component, so the board works
//! with no network but the services it talks to. It has no Dapr sidecar: the
//! browser calls todo-api, notify-service and audit-service itself (CORS).

mod assets;
mod page;

use component_kit::{health, Problem, Routes};
use spin_sdk::http::{IntoResponse, Method, Params, Request, Response};
use spin_sdk::http_component;

const APP_ID: &str = "web";
/// Fingerprinted assets never change under their URL.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

#[http_component]
async fn handle(req: Request) -> impl IntoResponse {
    let head = *req.method() == Method::Head;
    let mut router = Routes::new();
    router
        .get("/", |req: Request, _| async move { index(&req) })
        .get("/healthz/web", |_, _| async { health(APP_ID) })
        .get("/assets/:build/*", |req: Request, params: Params| async move { asset(&req, &params) });
    let mut response = router.handle(req).await;
    response.set_header("x-content-type-options", "nosniff");
    if head {
        *response.body_mut() = Vec::new();
    }
    response
}

/// `GET /assets/{build}/{file}`: only this build's assets, so an old page asking
/// for an old build gets a clean 404.
fn asset(req: &Request, params: &Params) -> Response {
    let file = params.wildcard().unwrap_or_default();
    match (params.get("build") == Some(assets::BUILD)).then(|| assets::find(file)).flatten() {
        Some(asset) => cached(req, asset.etag, asset.content_type, IMMUTABLE, asset.body.to_vec()),
        None => Problem::not_found("no such page or asset").into_response(),
    }
}

/// The page: revalidated on every load (`no-cache`), so a new build shows at once.
fn index(req: &Request) -> Response {
    let config = page::Config::from_env();
    let (html, etag) = page::render(&config);
    let mut response = cached(req, &etag, "text/html; charset=utf-8", "no-cache", html.into_bytes());
    response.set_header("content-security-policy", config.csp());
    response.set_header("referrer-policy", "no-referrer");
    response
}

/// A 200 with `body`, or a 304 when the client's `If-None-Match` has `etag`.
fn cached(req: &Request, etag: &str, content_type: &str, cache_control: &str, body: Vec<u8>) -> Response {
    let fresh = req.header("if-none-match").and_then(|v| v.as_str()).is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut builder = Response::builder();
    builder.header("etag", etag).header("cache-control", cache_control);
    if fresh {
        builder.status(304).build()
    } else {
        builder.status(200).header("content-type", content_type).body(body).build()
    }
}
