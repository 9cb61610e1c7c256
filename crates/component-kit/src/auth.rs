//! Who is calling: users (JWT bearer tokens) and the Dapr sidecar (app API token).
//!
//! Tokens are HS256 with a shared secret (what the existing frontend's auth
//! issues), or EdDSA / RS256 verified with a configured public key (PEM). Keys
//! come from the Dapr secret store on every request: a Spin instance lives for
//! one request, so there is no cache to go stale.

use dapr_http::Dapr;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
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
    let alg = decode_header(token).map_err(|e| Problem::unauthorized(format!("invalid token: {e}")))?.alg;
    let key_name = match alg {
        Algorithm::HS256 => &settings.jwt_secret,
        Algorithm::EdDSA | Algorithm::RS256 => &settings.jwt_public_key,
        other => return Err(Problem::unauthorized(format!("tokens signed with {other:?} are not accepted"))),
    };
    let key = dapr.secret(&settings.secret_store, key_name).await?;
    let key = match (alg, key) {
        (_, Some(key)) => key,
        (Algorithm::HS256, None) => return Err(Problem::unavailable(format!("secret `{key_name}` is not configured"))),
        (_, None) => return Err(Problem::unauthorized(format!("{alg:?} tokens are not accepted: no public key is configured"))),
    };
    let subject = verify(token, alg, key.as_bytes())?;
    if subject.as_str() != path_user {
        return Err(Problem::forbidden("the token's subject does not own this path"));
    }
    Ok(subject)
}

/// Verifies a token signed with `alg` (`key`: the HS256 secret, or the PEM
/// public key for EdDSA and RS256): signature, `exp` (required) and `nbf`
/// (when present). Returns the subject.
pub fn verify(token: &str, alg: Algorithm, key: &[u8]) -> Result<UserId, Problem> {
    let key = match alg {
        Algorithm::HS256 => DecodingKey::from_secret(key),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(key),
        Algorithm::RS256 => DecodingKey::from_rsa_pem(key),
        other => return Err(Problem::unauthorized(format!("tokens signed with {other:?} are not accepted"))),
    }
    .map_err(|e| key_error(alg, key, e))?;
    let mut validation = Validation::new(alg);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let data = decode::<Claims>(token, &key, &validation).map_err(|e| Problem::unauthorized(format!("invalid token: {e}")))?;
    UserId::parse(&data.claims.sub).map_err(|e| Problem::unauthorized(format!("invalid token subject: {e}")))
}

/// Why the configured public key cannot check a token claiming `alg`. There is
/// one public key: a key for the other algorithm refuses the token (401); a
/// key for neither is a misconfiguration (503).
fn key_error(alg: Algorithm, pem: &[u8], e: jsonwebtoken::errors::Error) -> Problem {
    let other_fits = match alg {
        Algorithm::EdDSA => DecodingKey::from_rsa_pem(pem).is_ok(),
        _ => DecodingKey::from_ed_pem(pem).is_ok(),
    };
    if other_fits {
        Problem::unauthorized(format!("tokens signed with {alg:?} are not accepted: the configured key is for another algorithm"))
    } else {
        Problem::unavailable(format!("unusable JWT key: {e}"))
    }
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

    fn verify_hs256(token: &str, secret: &[u8]) -> Result<UserId, Problem> {
        verify(token, Algorithm::HS256, secret)
    }

    // Test-only key pairs, generated for these tests; they protect nothing.
    const ED_PRIVATE: &[u8] = include_bytes!("../testdata/ed25519-test-only.pem");
    const ED_PUBLIC: &[u8] = include_bytes!("../testdata/ed25519-test-only.pub");
    const RSA_PRIVATE: &[u8] = include_bytes!("../testdata/rsa-test-only.pem");
    const RSA_PUBLIC: &[u8] = include_bytes!("../testdata/rsa-test-only.pub");

    #[test]
    fn eddsa_and_rs256_tokens_verify_with_their_public_keys() {
        let claims = json!({"sub": "dave", "exp": now() + 60});
        let ed = encode(&Header::new(Algorithm::EdDSA), &claims, &EncodingKey::from_ed_pem(ED_PRIVATE).unwrap()).unwrap();
        let rsa = encode(&Header::new(Algorithm::RS256), &claims, &EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap()).unwrap();
        assert_eq!(verify(&ed, Algorithm::EdDSA, ED_PUBLIC).unwrap().as_str(), "dave");
        assert_eq!(verify(&rsa, Algorithm::RS256, RSA_PUBLIC).unwrap().as_str(), "dave");
        // A token checked with the other key, or claiming another algorithm, fails.
        assert_eq!(verify(&ed, Algorithm::RS256, RSA_PUBLIC).unwrap_err().status, 401);
        assert_eq!(verify(&rsa, Algorithm::EdDSA, ED_PUBLIC).unwrap_err().status, 401);
        // A token claiming the algorithm the configured key is not for is refused,
        // whatever it carries; a key for neither is the operator's problem.
        assert_eq!(verify(&ed, Algorithm::RS256, ED_PUBLIC).unwrap_err().status, 401);
        assert_eq!(verify(&rsa, Algorithm::EdDSA, RSA_PUBLIC).unwrap_err().status, 401);
        assert_eq!(verify(&ed, Algorithm::EdDSA, b"not a key").unwrap_err().status, 503);
        let expired = json!({"sub": "dave", "exp": now() - 3600});
        let old = encode(&Header::new(Algorithm::EdDSA), &expired, &EncodingKey::from_ed_pem(ED_PRIVATE).unwrap()).unwrap();
        assert_eq!(verify(&old, Algorithm::EdDSA, ED_PUBLIC).unwrap_err().status, 401);
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
