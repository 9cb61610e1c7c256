//! The suite's Better Auth server (`tests/better-auth`, the real `better-auth`
//! package with its JWT plugin), used as a browser uses one: sign up through
//! its HTTP handler, then `GET {basePath}/token` with the session cookie.

use serde_json::{json, Value};

use crate::{fresh_user, send, Reply};

/// Where each signing algorithm's Better Auth instance is mounted.
pub fn base_path(alg: &str) -> &'static str {
    match alg {
        "EdDSA" => "/api/auth",
        "RS256" => "/rs256/api/auth",
        "ES256" => "/es256/api/auth",
        other => panic!("the test server has no {other} instance"),
    }
}

/// The Better Auth server the stack trusts (`BETTER_AUTH_URL`).
pub struct BetterAuth {
    /// Its base URL: the `iss` and `aud` of its tokens.
    pub url: String,
}

/// A signed-up user: Better Auth's user id and session cookie.
pub struct Session {
    /// The user id (`sub` of the tokens).
    pub user: String,
    cookie: String,
}

impl BetterAuth {
    /// From `BETTER_AUTH_URL`, which `cargo xtask test` sets.
    pub fn from_env() -> BetterAuth {
        BetterAuth { url: std::env::var("BETTER_AUTH_URL").expect("BETTER_AUTH_URL is set by `cargo xtask test`") }
    }

    /// Signs up a new user with email and password, as a browser's form does.
    pub fn sign_up(&self) -> Session {
        let email = format!("{}@example.test", fresh_user("ba"));
        let body = json!({ "email": email, "password": "correct-horse-battery-staple", "name": "Test User" });
        let url = format!("{}/api/auth/sign-up/email", self.url);
        let reply = send("POST", &url, &[("origin", &self.url)], Some(("application/json", body.to_string().as_bytes())));
        assert_eq!(reply.status, 200, "sign-up: {:?}", reply.json);
        let cookie = reply.header("set-cookie").expect("a session cookie").split(';').next().unwrap().to_owned();
        Session { user: reply.json["user"]["id"].as_str().expect("a user id").to_owned(), cookie }
    }

    /// The JWT of `session` from the instance signing with `alg`.
    pub fn token(&self, session: &Session, alg: &str) -> String {
        let reply = send("GET", &format!("{}{}/token", self.url, base_path(alg)), &[("cookie", &session.cookie)], None);
        assert_eq!(reply.status, 200, "GET /token: {:?}", reply.json);
        reply.json["token"].as_str().expect("a token").to_owned()
    }

    /// A token that Better Auth signs (`signJWT`, its real keys) with `payload`
    /// as given: for wrong issuers, audiences and times.
    pub fn sign(&self, alg: &str, payload: &Value) -> String {
        let body = json!({ "alg": alg, "payload": payload }).to_string();
        let reply = send("POST", &format!("{}/test/sign", self.url), &[], Some(("application/json", body.as_bytes())));
        assert_eq!(reply.status, 200, "sign: {:?}", reply.json);
        reply.json["token"].as_str().unwrap().to_owned()
    }

    /// Adds a new ES256 key (a new `kid`); the ES256 instance signs with it from now on.
    pub fn rotate(&self) -> String {
        let reply: Reply = send("POST", &format!("{}/test/rotate", self.url), &[], None);
        assert_eq!(reply.status, 201, "rotate: {:?}", reply.json);
        reply.json["kid"].as_str().unwrap().to_owned()
    }

    /// The published key set.
    pub fn jwks(&self) -> Value {
        send("GET", &format!("{}/api/auth/jwks", self.url), &[], None).json
    }
}

/// The decoded header and claims of a JWT.
pub fn parts(token: &str) -> (Value, Value) {
    use base64::Engine;
    let mut it = token.split('.').map(|p| {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).expect("base64url");
        serde_json::from_slice::<Value>(&bytes).expect("JSON")
    });
    (it.next().unwrap(), it.next().unwrap())
}

/// `bytes` in base64url without padding.
pub fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
