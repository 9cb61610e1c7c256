//! Who is calling: users (JWT bearer tokens) and the Dapr sidecar (app API token).
//!
//! Keys come from the Dapr secret store on every request: a Spin instance lives
//! for one request, so there is no cache to go stale.

use dapr_http::Dapr;
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use spin_sdk::http::Request;
use todo_domain::UserId;

use crate::{Problem, Settings};

/// Seconds of clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

/// Checks the bearer token and that its subject owns `path_user`.
///
/// 401 without a valid token, 403 when the token belongs to another user.
pub async fn user(req: &Request, path_user: &str, dapr: &Dapr, settings: &Settings) -> Result<UserId, Problem> {
    let token = bearer(req).ok_or_else(|| Problem::unauthorized("an `Authorization: Bearer <JWT>` header is required"))?;
    let secret = dapr
        .secret(&settings.secret_store, &settings.jwt_secret)
        .await?
        .ok_or_else(|| Problem::unavailable(format!("secret `{}` is not configured", settings.jwt_secret)))?;
    let subject = verify_hs256(token, secret.as_bytes())?;
    if subject.as_str() != path_user {
        return Err(Problem::forbidden("the token's subject does not own this path"));
    }
    Ok(subject)
}

/// Verifies an HS256 token (signature, `exp` required, `nbf` when present) and
/// returns its subject.
pub fn verify_hs256(token: &str, secret: &[u8]) -> Result<UserId, Problem> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let key = DecodingKey::from_secret(secret).map_err(|e| Problem::unavailable(format!("unusable JWT key: {e}")))?;
    let data = decode::<Claims>(token, &key, &validation)
        .map_err(|e| Problem::unauthorized(format!("invalid token: {e}")))?;
    UserId::parse(&data.claims.sub).map_err(|e| Problem::unauthorized(format!("invalid token subject: {e}")))
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.header("authorization")?.as_str()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Admits only the Dapr sidecar on routes that only Dapr calls (subscriptions,
/// jobs, service invocation), by the `dapr-api-token` header it sends when the
/// app API token is configured. Fails closed when the secret is missing.
pub async fn dapr_only(req: &Request, dapr: &Dapr, settings: &Settings) -> Result<(), Problem> {
    if settings.app_token_secret.is_empty() {
        return Ok(());
    }
    let expected = dapr
        .secret(&settings.secret_store, &settings.app_token_secret)
        .await?
        .ok_or_else(|| Problem::unavailable(format!("secret `{}` is not configured", settings.app_token_secret)))?;
    let presented = req.header("dapr-api-token").and_then(|v| v.as_str()).unwrap_or_default();
    if constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(Problem::unauthorized("this route accepts only calls from the Dapr sidecar"))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }

    fn token(claims: serde_json::Value, secret: &[u8]) -> String {
        encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret).unwrap()).unwrap()
    }

    #[test]
    fn valid_token_yields_its_subject() {
        let t = token(json!({"sub": "alice", "exp": now() + 60}), b"k");
        assert_eq!(verify_hs256(&t, b"k").unwrap().as_str(), "alice");
    }

    #[test]
    fn bad_tokens_are_401() {
        let cases = [
            token(json!({"sub": "alice", "exp": now() + 60}), b"other-key"),
            token(json!({"sub": "alice", "exp": now() - 3600}), b"k"),
            token(json!({"sub": "alice"}), b"k"),
            token(json!({"sub": "alice", "exp": now() + 7200, "nbf": now() + 3600}), b"k"),
            token(json!({"sub": "a:b", "exp": now() + 60}), b"k"),
            "not.a.jwt".to_owned(),
        ];
        for t in cases {
            assert_eq!(verify_hs256(&t, b"k").unwrap_err().status, 401, "{t}");
        }
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
