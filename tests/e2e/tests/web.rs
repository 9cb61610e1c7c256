//! The board's component over HTTP (content types, caching, security headers,
//! nothing external) and CORS for its origin on the services it calls. The
//! board itself, in a browser, is `web/e2e/board.mjs`.

use e2e::{fresh_user, get, send, Stack};
use serde_json::Value;

fn web_url() -> String {
    std::env::var("WEB_URL").expect("WEB_URL is set by `cargo xtask test`")
}

fn notify_url() -> String {
    std::env::var("NOTIFY_SERVICE_URL").expect("NOTIFY_SERVICE_URL is set by `cargo xtask test`")
}

/// The `/assets/{build}/...` URLs that the page links to.
fn linked_assets(html: &str) -> Vec<String> {
    html.split(['"', '\''])
        .filter(|s| s.starts_with("/assets/"))
        .map(str::to_owned)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[test]
fn the_page_is_served_with_its_settings_and_revalidated() {
    let stack = Stack::get();
    let page = send("GET", &format!("{}/", web_url()), &[], None);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("script-src 'self'") && csp.contains(&stack.api) && csp.contains("frame-ancestors 'none'"), "{csp}");
    // The settings tell the browser where the services are.
    let config = page.text.split(r#"<script id="config" type="application/json">"#).nth(1).and_then(|r| r.split("</script>").next());
    let config: Value = serde_json::from_str(config.expect("the config block")).unwrap();
    assert_eq!(config["todo_api_url"], stack.api.as_str());
    assert_eq!(config["audit_url"], stack.audit.as_str());
    assert_eq!(config["notify_url"], notify_url().as_str());
    // A second load with the ETag is a 304 without a body.
    let etag = page.header("etag").expect("an ETag").to_owned();
    let again = send("GET", &format!("{}/", web_url()), &[("if-none-match", &etag)], None);
    assert_eq!((again.status, again.text.as_str()), (304, ""));
    let other = send("GET", &format!("{}/", web_url()), &[("if-none-match", "\"other\"")], None);
    assert_eq!(other.status, 200);
}

#[test]
fn assets_are_immutable_typed_and_local() {
    Stack::get();
    let page = send("GET", &format!("{}/", web_url()), &[], None);
    let assets = linked_assets(&page.text);
    assert!(assets.len() >= 4, "the page links its assets: {assets:?}");
    let mut seen_types = std::collections::BTreeSet::new();
    for path in &assets {
        let asset = send("GET", &format!("{}{path}", web_url()), &[], None);
        assert_eq!(asset.status, 200, "{path}");
        assert_eq!(asset.header("cache-control"), Some("public, max-age=31536000, immutable"), "{path}");
        let want = match path.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("unexpected asset type {other:?} at {path}"),
        };
        assert_eq!(asset.header("content-type"), Some(want), "{path}");
        seen_types.insert(want);
        // Works offline: nothing is fetched from anywhere else.
        let text = asset.text.replace("http://www.w3.org/2000/svg", "");
        assert!(!text.contains("http://") && !text.contains("https://"), "{path} refers to another host");
        let etag = asset.header("etag").expect("an ETag").to_owned();
        assert_eq!(send("GET", &format!("{}{path}", web_url()), &[("if-none-match", &etag)], None).status, 304);
    }
    assert_eq!(seen_types.len(), 3, "scripts, a stylesheet and the icon");
    // Another build's assets, an unknown file, a path outside: a clean 404.
    let js = assets.iter().find(|a| a.ends_with("/app.js")).expect("app.js");
    let build = js.split('/').nth(2).unwrap();
    for missing in ["/assets/0000000000/app.js".to_owned(), format!("/assets/{build}/nope.js"), format!("/assets/{build}/../Cargo.toml")] {
        let r = send("GET", &format!("{}{missing}", web_url()), &[], None);
        assert_eq!(r.status, 404, "{missing}");
        assert_eq!(r.header("content-type"), Some("application/problem+json"), "{missing}");
    }
    let head = send("HEAD", &format!("{}{js}", web_url()), &[], None);
    assert_eq!((head.status, head.text.as_str()), (200, ""));
    let post = send("POST", &format!("{}/", web_url()), &[], Some(("text/plain", b"x")));
    assert_eq!((post.status, post.header("allow")), (405, Some("GET, HEAD")));
    assert_eq!(send("GET", &format!("{}/healthz/web", web_url()), &[], None).json["app_id"], "web");
}

#[test]
fn the_services_answer_cors_for_the_board_only() {
    let stack = Stack::get();
    let origin = web_url();
    let user = fresh_user("cors");
    let token = stack.token(&user);
    for (url, method) in [
        (format!("{}/api/{user}/tasks/0190c4f2-0000-7000-8000-000000000000", stack.api), "PATCH"),
        (format!("{}/api/{user}/tasks", stack.api), "POST"),
        (format!("{}/audit/{user}/verify", stack.audit), "GET"),
        (format!("{}/api/{user}/stream-token", notify_url()), "POST"),
    ] {
        let preflight = send(
            "OPTIONS",
            &url,
            &[
                ("origin", &origin),
                ("access-control-request-method", method),
                ("access-control-request-headers", "authorization, if-match"),
            ],
            None,
        );
        assert_eq!(preflight.status, 204, "{url}");
        assert_eq!(preflight.header("access-control-allow-origin"), Some(origin.as_str()), "{url}");
        let methods = preflight.header("access-control-allow-methods").unwrap_or_default();
        assert!(methods.contains(method), "{url}: {methods}");
        assert!(preflight.header("access-control-allow-headers").unwrap_or_default().contains("if-match"), "{url}");
        let evil = send("OPTIONS", &url, &[("origin", "https://evil.example"), ("access-control-request-method", method)], None);
        assert_eq!(evil.status, 403, "{url}");
        assert!(evil.header("access-control-allow-origin").is_none(), "{url}");
    }
    // An actual response carries the origin and exposes the ETag; another origin gets nothing.
    let auth = format!("Bearer {token}");
    let created = send(
        "POST",
        &format!("{}/api/{user}/tasks", stack.api),
        &[("authorization", &auth), ("origin", &origin)],
        Some(("application/json", br#"{"title":"from the board"}"#)),
    );
    assert_eq!(created.status, 201);
    assert_eq!(created.header("access-control-allow-origin"), Some(origin.as_str()));
    assert!(created.header("access-control-expose-headers").unwrap_or_default().contains("etag"));
    let audit =
        send("GET", &format!("{}/audit/{user}", stack.audit), &[("authorization", &auth), ("origin", "https://evil.example")], None);
    assert_eq!(audit.status, 200);
    assert!(audit.header("access-control-allow-origin").is_none());
    // Errors carry the header too, so the page can read them.
    let refused = send("GET", &format!("{}/api/{user}/tasks", stack.api), &[("origin", &origin)], None);
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("access-control-allow-origin"), Some(origin.as_str()));
    assert_eq!(get(&format!("{}/api/{user}/tasks", stack.api), &token).status, 200);
}
