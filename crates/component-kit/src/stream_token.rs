//! Short-lived stream tokens: browsers' `EventSource` cannot send headers, so
//! `POST /api/{user_id}/stream-token` (with the normal bearer JWT) returns an
//! HS256 token with `aud: "stream"`, the user as subject and a 60 s lifetime,
//! which the stream accepts as `?token=`. User tokens are refused there, and
//! stream tokens are refused as bearer tokens (`auth::verify` rejects any
//! `aud`), so a token leaked from a URL opens streams for a minute and nothing else.

use chrono::{DateTime, Utc};
use dapr_http::Dapr;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use spin_sdk::http::Request;
use todo_domain::feed::{StreamClaims, STREAM_TOKEN_AUDIENCE};
use todo_domain::UserId;

use crate::{auth, Problem, Settings};

/// Signs the claims of a stream token for `user` with the HS256 `secret`.
pub fn sign(user: &UserId, now: DateTime<Utc>, secret: &[u8]) -> Result<(String, StreamClaims), Problem> {
    let claims = StreamClaims::new(user, now);
    let key = EncodingKey::from_secret(secret).map_err(|e| Problem::unavailable(format!("unusable JWT key: {e}")))?;
    let token = encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(|e| Problem::unavailable(format!("cannot sign a stream token: {e}")))?;
    Ok((token, claims))
}

/// Verifies a stream token (HS256, `aud: "stream"`, not expired, 5 s
/// leeway); returns its subject.
pub fn verify(token: &str, secret: &[u8]) -> Result<UserId, Problem> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 5;
    validation.set_audience(&[STREAM_TOKEN_AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "sub", "aud"]);
    let key = DecodingKey::from_secret(secret).map_err(|e| Problem::unavailable(format!("unusable JWT key: {e}")))?;
    let data = decode::<StreamClaims>(token, &key, &validation).map_err(|e| Problem::unauthorized(format!("invalid stream token: {e}")))?;
    UserId::parse(&data.claims.sub).map_err(|e| Problem::unauthorized(format!("invalid token subject: {e}")))
}

/// The HS256 key from the secret store.
pub async fn secret(dapr: &Dapr, settings: &Settings) -> Result<String, Problem> {
    dapr.secret(&settings.secret_store, &settings.jwt_secret)
        .await?
        .ok_or_else(|| Problem::unavailable(format!("secret `{}` is not configured", settings.jwt_secret)))
}

/// Who opens a stream: the bearer JWT when an `Authorization` header is
/// present (non-browser clients), else the `?token=` stream token. Its
/// subject must own `path_user` (401 / 403 as for every user route).
pub async fn stream_user(req: &Request, path_user: &str, token: Option<&str>, dapr: &Dapr, settings: &Settings) -> Result<UserId, Problem> {
    if req.header("authorization").is_some() {
        return auth::user(req, path_user, dapr, settings).await;
    }
    let token = token.ok_or_else(|| Problem::unauthorized("a bearer token or a `?token=` stream token is required"))?;
    let subject = verify(token, secret(dapr, settings).await?.as_bytes())?;
    if subject.as_str() != path_user {
        return Err(Problem::forbidden("the token's subject does not own this path"));
    }
    Ok(subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserId {
        UserId::parse("alice").unwrap()
    }

    #[test]
    fn stream_tokens_verify_only_as_stream_tokens() {
        let (token, claims) = sign(&user(), Utc::now(), b"k").unwrap();
        assert_eq!(claims.aud, "stream");
        assert_eq!(verify(&token, b"k").unwrap().as_str(), "alice");
        assert_eq!(verify(&token, b"other").unwrap_err().status, 401);
        // Not usable as a normal bearer token.
        assert_eq!(auth::verify(&token, Algorithm::HS256, b"k").unwrap_err().status, 401);
    }

    #[test]
    fn user_tokens_and_expired_stream_tokens_are_refused() {
        let now = Utc::now().timestamp();
        let user_token = encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({ "sub": "alice", "exp": now + 600 }),
            &EncodingKey::from_secret(b"k").unwrap(),
        )
        .unwrap();
        assert_eq!(verify(&user_token, b"k").unwrap_err().status, 401);
        let (old, _) = sign(&user(), Utc::now() - chrono::Duration::seconds(120), b"k").unwrap();
        assert_eq!(verify(&old, b"k").unwrap_err().status, 401);
    }
}
