//! Tokens minted by the real `better-auth` package (its JWT plugin, through
//! its HTTP handler, as a browser gets them) open every protected route of
//! todo-api, audit-service and notify-service; forged, foreign and stale ones
//! are refused and write nothing; a rotated key works without a restart; and
//! browsers' CORS preflights are answered from `CORS_ALLOWED_ORIGINS`.

use std::time::Duration;

use e2e::better_auth::{b64url, parts, BetterAuth};
use e2e::{eventually, get, send, send_json, Reply, Stack};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

fn url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is set by `cargo xtask test`"))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn assert_refused(reply: &Reply, status: u16, what: &str) {
    assert_eq!(reply.status, status, "{what}: {:?}", reply.json);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"), "{what}");
}

/// Status of `method path` on `base` with `token`, and JSON `body` when given.
fn call(base: &str, method: &str, path: &str, token: &str, body: Option<&Value>) -> Reply {
    match body {
        Some(body) => send_json(method, &format!("{base}{path}"), token, body),
        None => send(method, &format!("{base}{path}"), &[("authorization", &format!("Bearer {token}"))], None),
    }
}

/// The status line of `GET path` on notify-service's stream, without reading
/// the endless body.
fn stream_status(path: &str, token: &str) -> u16 {
    use std::io::{Read, Write};
    let base = url("NOTIFY_SERVICE_URL");
    let authority = base.trim_start_matches("http://");
    let mut socket = std::net::TcpStream::connect(authority).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(socket, "GET {path} HTTP/1.1\r\nhost: {authority}\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    socket.read_exact(&mut head).unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

/// Every protected route of the three browser-facing services answers `token` for `user`.
fn every_route_accepts(user: &str, token: &str) {
    let (api, audit, notify) = (url("TODO_API_URL"), url("AUDIT_SERVICE_URL"), url("NOTIFY_SERVICE_URL"));
    let created = call(&api, "POST", &format!("/api/{user}/tasks"), token, Some(&json!({ "title": "Pay rent", "tags": ["home"] })));
    assert_eq!(created.status, 201, "{:?}", created.json);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let task = format!("/api/{user}/tasks/{id}");
    for (method, path, body, status) in [
        ("GET", format!("/api/{user}/tasks"), None, 200),
        ("GET", format!("/api/{user}/tags"), None, 200),
        ("GET", task.clone(), None, 200),
        ("PUT", task.clone(), Some(json!({ "title": "Pay the rent" })), 200),
        ("PATCH", task.clone(), Some(json!({ "priority": "high" })), 200),
        ("PATCH", format!("{task}/complete"), None, 200),
        ("DELETE", task.clone(), None, 204),
    ] {
        let reply = call(&api, method, &path, token, body.as_ref());
        assert_eq!(reply.status, status, "{method} {path}: {:?}", reply.json);
    }
    // The five events (created, 2 updated, completed, deleted) reach the audit log.
    let audited = eventually(Duration::from_secs(30), || {
        let reply = call(&audit, "GET", &format!("/audit/{user}"), token, None);
        assert_eq!(reply.status, 200, "{:?}", reply.json);
        (reply.json["items"].as_array().map_or(0, Vec::len) >= 5).then_some(())
    });
    assert!(audited.is_some(), "five audit entries for {user}");
    assert_eq!(call(&audit, "GET", &format!("/audit/{user}/verify"), token, None).json["intact"], true);
    assert_eq!(call(&notify, "GET", &format!("/api/{user}/changes"), token, None).status, 200);
    assert_eq!(call(&notify, "GET", &format!("/api/{user}/notifications"), token, None).status, 200);
    assert_eq!(call(&notify, "POST", &format!("/api/{user}/stream-token"), token, None).status, 201);
    // Past authentication, an unknown notification is 404 (not 401/403).
    assert_eq!(call(&notify, "POST", &format!("/api/{user}/notifications/none/read"), token, None).status, 404);
    assert_eq!(stream_status(&format!("/api/{user}/stream"), token), 200);
}

#[test]
fn eddsa_and_rs256_tokens_open_every_protected_route() {
    let _stack = Stack::get();
    let auth = BetterAuth::from_env();
    for alg in ["EdDSA", "RS256"] {
        let session = auth.sign_up();
        let token = auth.token(&session, alg);
        let (header, claims) = parts(&token);
        // The token as Better Auth issues it: kid, iss = aud = its base URL, 15 minutes.
        assert_eq!(header["alg"], alg);
        assert!(header["kid"].is_string());
        assert_eq!((claims["iss"].as_str(), claims["aud"].as_str()), (Some(auth.url.as_str()), Some(auth.url.as_str())));
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
        assert_eq!(claims["sub"].as_str().unwrap().len(), 32);
        every_route_accepts(&session.user, &token);
    }
}

#[test]
fn forged_foreign_and_stale_tokens_are_refused_and_write_nothing() {
    let stack = Stack::get();
    let auth = BetterAuth::from_env();
    let me = auth.sign_up();
    let other = auth.sign_up();
    let good = auth.token(&me, "EdDSA");
    let (header, _) = parts(&good);
    let kid = header["kid"].as_str().unwrap().to_owned();
    let claims = |extra: Value| {
        let mut c = json!({ "sub": me.user, "iss": auth.url, "aud": auth.url, "iat": now(), "exp": now() + 600 });
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        c
    };
    let unsigned = |alg: &str| {
        let h = b64url(json!({ "alg": alg, "kid": kid, "typ": "JWT" }).to_string().as_bytes());
        format!("{h}.{}.", b64url(claims(json!({})).to_string().as_bytes()))
    };
    let hs256_with = |secret: &[u8]| {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(kid.clone());
        encode(&h, &claims(json!({})), &EncodingKey::from_secret(secret).unwrap()).unwrap()
    };
    // A key of our own under a kid the JWKS does not have.
    let unknown_kid = {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some("not-in-the-jwks".into());
        let key = EncodingKey::from_ed_pem(include_bytes!("../../../crates/component-kit/testdata/ed25519-test-only.pem")).unwrap();
        encode(&h, &claims(json!({})), &key).unwrap()
    };
    let jwks = auth.jwks();
    let public = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid.as_str()).unwrap().clone();
    let x = public["x"].as_str().unwrap().to_owned();
    use base64::Engine;
    let raw_x = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&x).unwrap();
    let cases: Vec<(&str, String, u16)> = vec![
        ("wrong iss", auth.sign("EdDSA", &claims(json!({ "iss": "http://evil.example" }))), 401),
        ("wrong aud", auth.sign("EdDSA", &claims(json!({ "aud": "http://evil.example" }))), 401),
        ("expired", auth.sign("EdDSA", &claims(json!({ "iat": now() - 1000, "exp": now() - 120 }))), 401),
        ("not yet valid", auth.sign("EdDSA", &claims(json!({ "nbf": now() + 600 }))), 401),
        ("another user's token", auth.token(&other, "EdDSA"), 403),
        ("unknown kid", unknown_kid, 401),
        ("alg none", unsigned("none"), 401),
        ("alg ES512", unsigned("ES512"), 401),
        ("HS256 keyed with the public JWK", hs256_with(public.to_string().as_bytes()), 401),
        ("HS256 keyed with the public key's x", hs256_with(x.as_bytes()), 401),
        ("HS256 keyed with the raw public key", hs256_with(&raw_x), 401),
    ];
    let (api, audit, notify) = (url("TODO_API_URL"), url("AUDIT_SERVICE_URL"), url("NOTIFY_SERVICE_URL"));
    let user = &me.user;
    for (what, token, status) in &cases {
        let body = json!({ "title": format!("must not exist: {what}") });
        assert_refused(&call(&api, "POST", &format!("/api/{user}/tasks"), token, Some(&body)), *status, what);
        assert_refused(&call(&api, "GET", &format!("/api/{user}/tasks"), token, None), *status, what);
        assert_refused(&call(&audit, "GET", &format!("/audit/{user}"), token, None), *status, what);
        assert_refused(&call(&notify, "POST", &format!("/api/{user}/stream-token"), token, None), *status, what);
        eprintln!("{what}: {status}");
    }
    // Nothing was written: no task, no audit entry, no feed entry.
    let listed = get(&format!("{api}/api/{user}/tasks"), &good);
    assert_eq!((listed.status, &listed.json["items"]), (200, &json!([])), "{:?}", listed.json);
    std::thread::sleep(Duration::from_secs(2));
    assert!(stack.audit_entries(user, &good).is_empty());
    assert_eq!(get(&format!("{notify}/api/{user}/changes"), &good).json["items"], json!([]));
}

#[test]
fn a_rotated_key_works_without_a_restart() {
    let _stack = Stack::get();
    let auth = BetterAuth::from_env();
    let session = auth.sign_up();
    let api = url("TODO_API_URL");
    let tasks = format!("{api}/api/{}/tasks", session.user);
    let before = auth.token(&session, "ES256");
    assert_eq!(get(&tasks, &before).status, 200);
    let new_kid = auth.rotate();
    let after = auth.token(&session, "ES256");
    assert_eq!(parts(&after).0["kid"], new_kid.as_str(), "Better Auth signs with the new key");
    assert_ne!(parts(&before).0["kid"], parts(&after).0["kid"]);
    // The services refetch the JWKS for the new kid (at most once per 5 s).
    let accepted = eventually(Duration::from_secs(15), || (get(&tasks, &after).status == 200).then_some(()));
    assert!(accepted.is_some(), "a token of the rotated key is accepted: {:?}", get(&tasks, &after).json);
    // The old key is still published, so its tokens still pass.
    assert_eq!(get(&tasks, &before).status, 200);
    assert_eq!(get(&format!("{}/audit/{}", url("AUDIT_SERVICE_URL"), session.user), &after).status, 200);
}

#[test]
fn cors_preflights_and_responses_follow_the_allowed_origins() {
    let _stack = Stack::get();
    let allowed = e2e::allowed_origin();
    let auth = BetterAuth::from_env();
    let session = auth.sign_up();
    let token = auth.token(&session, "EdDSA");
    let user = &session.user;
    for (base, path) in [
        (url("TODO_API_URL"), format!("/api/{user}/tasks")),
        (url("AUDIT_SERVICE_URL"), format!("/audit/{user}")),
        (url("NOTIFY_SERVICE_URL"), format!("/api/{user}/changes")),
    ] {
        let preflight = |origin: &str| {
            let headers = [
                ("origin", origin),
                ("access-control-request-method", "PATCH"),
                ("access-control-request-headers", "authorization, content-type, if-match"),
            ];
            send("OPTIONS", &format!("{base}{path}"), &headers, None)
        };
        let ok = preflight(&allowed);
        assert_eq!(ok.status, 204, "{base}{path}: {:?}", ok.json);
        assert_eq!(ok.header("access-control-allow-origin"), Some(allowed.as_str()));
        assert!(ok.header("access-control-allow-methods").unwrap().contains("PATCH"));
        assert!(ok.header("access-control-allow-headers").unwrap().contains("authorization"));
        let evil = preflight("https://evil.example");
        assert_eq!(evil.status, 403);
        assert!(evil.header("access-control-allow-origin").is_none());
        // The actual request: readable by the allowed origin only.
        let auth_header = format!("Bearer {token}");
        let read = send("GET", &format!("{base}{path}"), &[("authorization", &auth_header), ("origin", &allowed)], None);
        assert_eq!(read.status, 200);
        assert_eq!(read.header("access-control-allow-origin"), Some(allowed.as_str()));
        assert!(read.header("access-control-expose-headers").unwrap().contains("etag"));
        let foreign = send("GET", &format!("{base}{path}"), &[("authorization", &auth_header), ("origin", "https://evil.example")], None);
        assert!(foreign.header("access-control-allow-origin").is_none());
        // Refusals carry the headers too, so a page can read why.
        let refused = send("GET", &format!("{base}{path}"), &[("origin", &allowed)], None);
        assert_eq!((refused.status, refused.header("access-control-allow-origin")), (401, Some(allowed.as_str())));
    }
}
