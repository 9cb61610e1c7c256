//! Stream tokens: browsers' `EventSource` cannot send headers, so
//! `POST /api/{user_id}/stream-token` (with the normal bearer JWT) returns an
//! HS256 token with `aud: "stream"` and the user as subject, which the stream
//! accepts as `?token=`: for 60 s to open a stream, and for an hour to re-open
//! one that `EventSource` reconnects (same URL, plus `Last-Event-ID`), so a
//! page's stream outlives the token it started with. User tokens are refused
//! there, and stream tokens are refused as bearer tokens (an `aud` of
//! "stream" never passes `auth`), so a token leaked from a URL only reads that
//! user's feed, and not for long.

use chrono::{DateTime, Utc};
use dapr_http::Dapr;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use spin_sdk::http::Request;
use todo_domain::feed::{StreamClaims, StreamQuery, STREAM_TOKEN_AUDIENCE};
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

/// Seconds of clock skew tolerated.
const LEEWAY_SECS: i64 = 5;

/// Verifies a stream token (HS256, `aud: "stream"`) for a new stream or, when
/// `reconnecting`, for an `EventSource` reconnect ([`StreamClaims::admits`]);
/// returns its subject.
pub fn verify(token: &str, secret: &[u8], reconnecting: bool, now: DateTime<Utc>) -> Result<UserId, Problem> {
    let mut validation = Validation::new(Algorithm::HS256);
    // The lifetime is the domain's rule (`admits`), not only `exp`.
    validation.validate_exp = false;
    validation.set_audience(&[STREAM_TOKEN_AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "sub", "aud"]);
    let key = DecodingKey::from_secret(secret).map_err(|e| Problem::unavailable(format!("unusable JWT key: {e}")))?;
    let data = decode::<StreamClaims>(token, &key, &validation).map_err(|e| Problem::unauthorized(format!("invalid stream token: {e}")))?;
    if !data.claims.admits(now.timestamp(), reconnecting, LEEWAY_SECS) {
        return Err(Problem::unauthorized("the stream token has expired; get a new one from POST /api/{user_id}/stream-token"));
    }
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
pub async fn stream_user(req: &Request, path_user: &str, query: &StreamQuery, dapr: &Dapr, settings: &Settings) -> Result<UserId, Problem> {
    if req.header("authorization").is_some() {
        return auth::user(req, path_user, dapr, settings).await;
    }
    let token = query.token.as_deref().ok_or_else(|| Problem::unauthorized("a bearer token or a `?token=` stream token is required"))?;
    auth::owns(verify(token, secret(dapr, settings).await?.as_bytes(), query.reconnecting, Utc::now())?, path_user)
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
        assert_eq!(verify(&token, b"k", false, Utc::now()).unwrap().as_str(), "alice");
        assert_eq!(verify(&token, b"other", false, Utc::now()).unwrap_err().status, 401);
        // Not usable as a normal bearer token.
        assert_eq!(auth::verify_hs256(&token, b"k", None).unwrap_err().status, 401);
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
        assert_eq!(verify(&user_token, b"k", true, Utc::now()).unwrap_err().status, 401);
        let (old, _) = sign(&user(), Utc::now() - chrono::Duration::seconds(120), b"k").unwrap();
        assert_eq!(verify(&old, b"k", false, Utc::now()).unwrap_err().status, 401);
        // An EventSource reconnect re-opens the stream with it, for an hour.
        assert_eq!(verify(&old, b"k", true, Utc::now()).unwrap().as_str(), "alice");
        let (ancient, _) = sign(&user(), Utc::now() - chrono::Duration::seconds(3700), b"k").unwrap();
        assert_eq!(verify(&ancient, b"k", true, Utc::now()).unwrap_err().status, 401);
    }
}
