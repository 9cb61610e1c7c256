//! `recurring-service`: serves its health route; its event handling arrives with its issue.

use component_kit::health;
use spin_sdk::http::{IntoResponse, Params, Request, Router};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> impl IntoResponse {
    let mut router = Router::new();
    router.get("/healthz/recurring-service", |_: Request, _: Params| health("recurring-service"));
    router.handle(req)
}
