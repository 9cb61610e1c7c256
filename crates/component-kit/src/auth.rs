//! Who is calling: users (JWT bearer tokens) and the Dapr sidecar (app API token).
//!
//! A user token is either signed by a Better Auth server (`BETTER_AUTH_URL`):
//! EdDSA, ES256/ES384, RS256/384/512 or PS256/384/512 with the key its `kid`
//! names in that server's JWKS ([`crate::jwks`]), `iss` and `aud` as
//! configured; or HS256 with the shared secret (`BETTER_AUTH_SECRET`, read
//! from the Dapr secret store on every request). `exp` is required, `nbf`
//! checked, both with [`LEEWAY_SECS`] of clock skew; `alg: none` and HS* with a
//! public key never pass.

use dapr_http::Dapr;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use spin_sdk::http::Request;
use todo_domain::UserId;

use crate::settings::BetterAuth;
use crate::{jwks, Problem, Settings};

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

/// Checks the bearer token and that its subject owns `path_user`.
///
/// 401 without a valid token, 403 when the token belongs to another user,
/// 503 when the keys to check it cannot be had.
pub async fn user(req: &Request, path_user: &str, dapr: &Dapr, settings: &Settings) -> Result<UserId, Problem> {
    let token = bearer(req).ok_or_else(|| Problem::unauthorized("an `Authorization: Bearer <JWT>` header is required"))?;
    owns(verify_token(token, dapr, settings).await?, path_user)
}

/// The subject, when it is `path_user`; 403 otherwise.
pub fn owns(subject: UserId, path_user: &str) -> Result<UserId, Problem> {
    if subject.as_str() == path_user {
        Ok(subject)
    } else {
        Err(Problem::forbidden("the token's subject does not own this path"))
    }
}

/// Verifies a user token however it reached the service; returns its subject.
pub async fn verify_token(token: &str, dapr: &Dapr, settings: &Settings) -> Result<UserId, Problem> {
    let header = decode_header(token).map_err(|e| Problem::unauthorized(format!("invalid token: {e}")))?;
    match header.alg {
        Algorithm::HS256 => {
            let key = dapr
                .secret(&settings.secret_store, &settings.jwt_secret)
                .await?
                .ok_or_else(|| Problem::unavailable(format!("secret `{}` is not configured", settings.jwt_secret)))?;
            verify_hs256(token, key.as_bytes(), settings.better_auth.as_ref())
        }
        alg if jwks::ALLOWED.contains(&alg) => {
            let trusted = settings.better_auth.as_ref().ok_or_else(|| {
                Problem::unauthorized(format!("{alg:?} tokens are not accepted: no Better Auth server is configured (BETTER_AUTH_URL)"))
            })?;
            let kid = header.kid.as_deref();
            let keys = jwks::keys_for(kid, &trusted.jwks, dapr, settings).await?;
            let jwk = keys.find(kid).ok_or_else(|| Problem::unauthorized("the token's key (`kid`) is not in the auth server's JWKS"))?;
            verify_signed(token, alg, &jwks::decoding_key(jwk, alg)?, trusted)
        }
        other => Err(Problem::unauthorized(format!("tokens signed with {other:?} are not accepted"))),
    }
}

/// Verifies an HS256 token signed with `secret`. An `aud` is refused unless it
/// is the Better Auth server's (so stream tokens never pass as user tokens).
pub fn verify_hs256(token: &str, secret: &[u8], trusted: Option<&BetterAuth>) -> Result<UserId, Problem> {
    let key = DecodingKey::from_secret(secret).map_err(|e| Problem::unavailable(format!("unusable JWT key: {e}")))?;
    let mut validation = validation(Algorithm::HS256, &["exp", "sub"]);
    if let Some(trusted) = trusted {
        validation.set_audience(&[&trusted.audience]);
    }
    check(token, &key, &validation)
}

/// Verifies a token of the Better Auth server `trusted`, signed with `alg` by `key`.
pub fn verify_signed(token: &str, alg: Algorithm, key: &DecodingKey, trusted: &BetterAuth) -> Result<UserId, Problem> {
    let mut validation = validation(alg, &["exp", "sub", "iss", "aud"]);
    validation.set_issuer(&[&trusted.issuer]);
    validation.set_audience(&[&trusted.audience]);
    check(token, key, &validation)
}

fn validation(alg: Algorithm, required: &[&str]) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(required);
    validation
}

fn check(token: &str, key: &DecodingKey, validation: &Validation) -> Result<UserId, Problem> {
    let data = decode::<Claims>(token, key, validation).map_err(|e| Problem::unauthorized(format!("invalid token: {e}")))?;
    UserId::parse(&data.claims.sub).map_err(|e| Problem::unauthorized(format!("invalid token subject: {e}")))
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.header("authorization")?.as_str()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Admits only the Dapr sidecar on routes that only Dapr calls (subscriptions,
/// jobs, service invocation), by the `dapr-api-token` header it sends when the
/// app API token is configured. Fails closed: a missing secret is a 503, and
/// an empty `APP_API_TOKEN_SECRET` a 401, unless a developer explicitly set
/// `DAPR_ONLY_ROUTES_OPEN=true`.
pub async fn dapr_only(req: &Request, dapr: &Dapr, settings: &Settings) -> Result<(), Problem> {
    let Some(secret) = app_token_secret(settings)? else { return Ok(()) };
    let expected = dapr
        .secret(&settings.secret_store, secret)
        .await?
        .ok_or_else(|| Problem::unavailable(format!("secret `{secret}` is not configured")))?;
    let presented = req.header("dapr-api-token").and_then(|v| v.as_str()).unwrap_or_default();
    if constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(Problem::unauthorized("this route accepts only calls from the Dapr sidecar"))
    }
}

/// The secret that holds the app API token; `None` only when a developer opened
/// Dapr-only routes explicitly; 401 when no secret is named and they did not.
fn app_token_secret(settings: &Settings) -> Result<Option<&str>, Problem> {
    match (settings.app_token_secret.as_str(), settings.dapr_only_routes_open) {
        ("", true) => Ok(None),
        ("", false) => Err(Problem::unauthorized(
            "this route accepts only calls from the Dapr sidecar, and no app API token is configured (APP_API_TOKEN_SECRET)",
        )),
        (name, _) => Ok(Some(name)),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }

    fn token(claims: serde_json::Value, secret: &[u8]) -> String {
        encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret).unwrap()).unwrap()
    }

    fn verify_hs(token: &str, secret: &[u8]) -> Result<UserId, Problem> {
        verify_hs256(token, secret, None)
    }

    // Test-only key pairs, generated for these tests; they protect nothing.
    const ED_PRIVATE: &[u8] = include_bytes!("../testdata/ed25519-test-only.pem");
    const RSA_PRIVATE: &[u8] = include_bytes!("../testdata/rsa-test-only.pem");
    const EC_PRIVATE: &[u8] = include_bytes!("../testdata/p256-test-only.pem");

    fn better_auth() -> BetterAuth {
        BetterAuth::new("http://127.0.0.1:4100", None, None, None, None)
    }

    /// A token as Better Auth signs it, and the public JWK that checks it.
    fn signed(alg: Algorithm, claims: serde_json::Value) -> (String, DecodingKey) {
        let key = match alg {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(ED_PRIVATE),
            Algorithm::ES256 => EncodingKey::from_ec_pem(EC_PRIVATE),
            _ => EncodingKey::from_rsa_pem(RSA_PRIVATE),
        }
        .unwrap();
        let mut header = Header::new(alg);
        header.kid = Some("k1".into());
        let jwk = Jwk::from_encoding_key(&key, alg).unwrap();
        (encode(&header, &claims, &key).unwrap(), jwks::decoding_key(&jwk, alg).unwrap())
    }

    fn claims(extra: serde_json::Value) -> serde_json::Value {
        let mut c = json!({ "sub": "dave", "iss": "http://127.0.0.1:4100", "aud": "http://127.0.0.1:4100",
                            "iat": now(), "exp": now() + 900, "email": "dave@example.test" });
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        c
    }

    #[test]
    fn better_auth_tokens_verify_with_their_jwk() {
        for alg in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256, Algorithm::PS256] {
            let (token, key) = signed(alg, claims(json!({})));
            assert_eq!(verify_signed(&token, alg, &key, &better_auth()).unwrap().as_str(), "dave", "{alg:?}");
        }
    }

    #[test]
    fn wrong_issuer_audience_or_time_is_401() {
        let refused = [
            json!({ "iss": "http://evil.test" }),
            json!({ "aud": "http://evil.test" }),
            json!({ "aud": ["http://evil.test"] }),
            json!({ "exp": now() - 120 }),
            json!({ "nbf": now() + 600 }),
            json!({ "sub": "a:b" }),
        ];
        for extra in refused {
            let (token, key) = signed(Algorithm::EdDSA, claims(extra.clone()));
            assert_eq!(verify_signed(&token, Algorithm::EdDSA, &key, &better_auth()).unwrap_err().status, 401, "{extra}");
        }
        // Within the leeway an expired token still passes; iss and aud are required.
        let (late, key) = signed(Algorithm::EdDSA, claims(json!({ "exp": now() - 5 })));
        assert!(verify_signed(&late, Algorithm::EdDSA, &key, &better_auth()).is_ok());
        let mut bare = claims(json!({}));
        bare.as_object_mut().unwrap().remove("iss");
        let (no_iss, key) = signed(Algorithm::EdDSA, bare);
        assert_eq!(verify_signed(&no_iss, Algorithm::EdDSA, &key, &better_auth()).unwrap_err().status, 401);
    }

    #[test]
    fn a_token_checked_with_another_algorithm_fails() {
        let (ed, _) = signed(Algorithm::EdDSA, claims(json!({})));
        let (_, rsa_key) = signed(Algorithm::RS256, claims(json!({})));
        assert_eq!(verify_signed(&ed, Algorithm::RS256, &rsa_key, &better_auth()).unwrap_err().status, 401);
    }

    #[test]
    fn valid_hs256_token_yields_its_subject() {
        let t = token(json!({"sub": "alice", "exp": now() + 60}), b"k");
        assert_eq!(verify_hs(&t, b"k").unwrap().as_str(), "alice");
        // An `aud` passes only when it is the configured Better Auth server's.
        let with_aud = token(json!({"sub": "alice", "exp": now() + 60, "aud": "http://127.0.0.1:4100"}), b"k");
        assert_eq!(verify_hs(&with_aud, b"k").unwrap_err().status, 401);
        assert!(verify_hs256(&with_aud, b"k", Some(&better_auth())).is_ok());
        let stream = token(json!({"sub": "alice", "exp": now() + 60, "aud": "stream"}), b"k");
        assert_eq!(verify_hs256(&stream, b"k", Some(&better_auth())).unwrap_err().status, 401);
    }

    #[test]
    fn bad_hs256_tokens_are_401() {
        let cases = [
            token(json!({"sub": "alice", "exp": now() + 60}), b"other-key"),
            token(json!({"sub": "alice", "exp": now() - 3600}), b"k"),
            token(json!({"sub": "alice"}), b"k"),
            token(json!({"sub": "alice", "exp": now() + 7200, "nbf": now() + 3600}), b"k"),
            token(json!({"sub": "a:b", "exp": now() + 60}), b"k"),
            "not.a.jwt".to_owned(),
        ];
        for t in cases {
            assert_eq!(verify_hs(&t, b"k").unwrap_err().status, 401, "{t}");
        }
    }

    #[test]
    fn the_subject_must_own_the_path() {
        let alice = UserId::parse("alice").unwrap();
        assert!(owns(alice.clone(), "alice").is_ok());
        assert_eq!(owns(alice, "bob").unwrap_err().status, 403);
    }

    #[test]
    fn dapr_only_routes_fail_closed_without_an_app_token() {
        let mut settings = Settings::from_env();
        settings.app_token_secret = String::new();
        settings.dapr_only_routes_open = false;
        assert_eq!(app_token_secret(&settings).unwrap_err().status, 401);
        settings.dapr_only_routes_open = true;
        assert_eq!(app_token_secret(&settings).unwrap(), None);
        settings.app_token_secret = "app-api-token".into();
        assert_eq!(app_token_secret(&settings).unwrap(), Some("app-api-token"));
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
