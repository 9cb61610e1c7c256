//! The signing keys of a Better Auth server: a JSON Web Key Set, from its URL
//! or from the Dapr secret store, and the key a token names by `kid`.
//!
//! A Spin instance lives for one request, so memory cannot cache the set: it
//! is cached in the service's Dapr state store (`auth:jwks`, with a TTL).
//! While the copy is fresh ([`FRESH_SECS`]) no request fetches it; a token
//! naming a `kid` the copy lacks triggers one refetch, at most once per
//! [`REFETCH_COOLDOWN_SECS`] (so made-up `kid`s cannot flood the auth
//! server), and a rotated key works without a restart. When a fetch fails a
//! copy up to [`MAX_STALE_SECS`] old still serves; with none, 503.

use dapr_http::Dapr;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spin_sdk::http::{Method, Request, Response};

use crate::settings::JwksSource;
use crate::{Problem, Settings};

/// How long a fetched key set is used without fetching it again.
pub const FRESH_SECS: i64 = 300;
/// The shortest time between two fetches caused by unknown `kid`s.
pub const REFETCH_COOLDOWN_SECS: i64 = 5;
/// How old a cached key set may be and still serve while the auth server is unreachable.
pub const MAX_STALE_SECS: i64 = 3600;
/// The largest key set accepted, in bytes.
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// State key of the cached key set (no user id has a `:`, so no user key collides).
const CACHE_KEY: &str = "auth:jwks";

/// The algorithms a key from a JWKS may verify. Never `none`, never HS*: a
/// public key is no shared secret. (ES512 is not offered by `jsonwebtoken`.)
pub const ALLOWED: [Algorithm; 9] = [
    Algorithm::EdDSA,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// A parsed key set. Keys that do not parse (an unknown `kty`, say) are left
/// out rather than failing the whole set.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

impl KeySet {
    /// Parses a JWKS document (`{"keys": [...]}`).
    pub fn parse(document: &Value) -> Result<KeySet, String> {
        let keys = document.get("keys").and_then(Value::as_array).ok_or("a JWKS document needs a `keys` array")?;
        let parsed = keys.iter().filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok());
        Ok(KeySet { keys: parsed.filter(|k| !matches!(k.algorithm, AlgorithmParameters::Other(_))).collect() })
    }

    /// The key named `kid`; without a `kid`, the only key of a one-key set.
    pub fn find(&self, kid: Option<&str>) -> Option<&Jwk> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.common.key_id.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
    }

    fn has(&self, kid: Option<&str>) -> bool {
        self.find(kid).is_some()
    }
}

/// The key that verifies a token signed with `alg`: `alg` must be allowed,
/// match the key's own `alg` (when it states one) and fit its type and curve.
pub fn decoding_key(jwk: &Jwk, alg: Algorithm) -> Result<DecodingKey, Problem> {
    let refuse = |why: &str| Err(Problem::unauthorized(format!("tokens signed with {alg:?} are not accepted: {why}")));
    if !ALLOWED.contains(&alg) {
        return refuse("not an allowed algorithm");
    }
    if jwk.common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature) {
        return refuse("the key is not a signing key");
    }
    if jwk.common.key_algorithm.is_some_and(|a| a != KeyAlgorithm::from(alg)) {
        return refuse("the key is for another algorithm");
    }
    let fits = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(p) => alg == Algorithm::EdDSA && p.curve == EllipticCurve::Ed25519,
        AlgorithmParameters::EllipticCurve(p) => {
            matches!((alg, &p.curve), (Algorithm::ES256, EllipticCurve::P256) | (Algorithm::ES384, EllipticCurve::P384))
        }
        AlgorithmParameters::RSA(_) => jsonwebtoken::AlgorithmFamily::Rsa.algorithms().contains(&alg),
        // A symmetric or unknown key never verifies a token, whatever it claims.
        AlgorithmParameters::OctetKey(_) | AlgorithmParameters::Other(_) => false,
        _ => false,
    };
    if !fits {
        return refuse("the key's type does not fit");
    }
    DecodingKey::from_jwk(jwk).map_err(|e| Problem::unauthorized(format!("unusable key in the JWKS: {e}")))
}

/// A key set as cached in the state store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cached {
    /// Where it was fetched from.
    pub url: String,
    /// When (Unix seconds).
    pub fetched_at: i64,
    /// The JWKS document.
    pub jwks: Value,
}

/// What to do with the cached copy for a token naming `kid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Use the copy (it is fresh, and has the key or was fetched moments ago).
    UseCached,
    /// Fetch the set, falling back to the copy when that fails.
    Fetch,
}

/// The decision, from the copy's age and whether it holds the key.
pub fn plan(age_secs: Option<i64>, has_key: bool) -> Plan {
    match age_secs {
        // Missing, or from the future (a clock jumped): fetch.
        None => Plan::Fetch,
        Some(age) if !(0..FRESH_SECS).contains(&age) => Plan::Fetch,
        Some(age) if has_key || age < REFETCH_COOLDOWN_SECS => Plan::UseCached,
        Some(_) => Plan::Fetch,
    }
}

/// The key set that should hold the key of a token naming `kid`.
pub async fn keys_for(kid: Option<&str>, source: &JwksSource, dapr: &Dapr, settings: &Settings) -> Result<KeySet, Problem> {
    match source {
        JwksSource::Secret(name) => {
            let document = dapr
                .secret(&settings.secret_store, name)
                .await?
                .ok_or_else(|| Problem::unavailable(format!("secret `{name}` (the JWKS) is not configured")))?;
            let parsed = serde_json::from_str(&document).map_err(|e| e.to_string()).and_then(|v| KeySet::parse(&v));
            parsed.map_err(|e| {
                eprintln!("the JWKS in secret `{name}` is unusable: {e}");
                Problem::unavailable(format!("the JWKS in secret `{name}` is unusable"))
            })
        }
        JwksSource::Url(url) => from_url(kid, url, dapr, &settings.state_store).await,
    }
}

async fn from_url(kid: Option<&str>, url: &str, dapr: &Dapr, store: &str) -> Result<KeySet, Problem> {
    let now = chrono::Utc::now().timestamp();
    let cached = match dapr.get_state::<Cached>(store, CACHE_KEY).await {
        Ok(found) => found.map(|v| v.value).filter(|c| c.url == url),
        Err(e) => {
            eprintln!("cannot read the cached JWKS: {e}");
            None
        }
    };
    let cached = cached.and_then(|c| KeySet::parse(&c.jwks).ok().map(|keys| (now - c.fetched_at, keys)));
    if let Some((age, keys)) = &cached {
        if plan(Some(*age), keys.has(kid)) == Plan::UseCached {
            return Ok(keys.clone());
        }
    }
    match fetch(url).await {
        Ok(jwks) => {
            let keys = KeySet::parse(&jwks).expect("fetch checks the document");
            let entry = Cached { url: url.to_owned(), fetched_at: now, jwks };
            if let Err(e) = dapr.save_with_ttl(store, CACHE_KEY, &entry, MAX_STALE_SECS as u32).await {
                eprintln!("cannot cache the JWKS: {e}");
            }
            Ok(keys)
        }
        Err(e) => {
            eprintln!("cannot fetch the JWKS from {url}: {e}");
            match cached {
                Some((age, keys)) if age < MAX_STALE_SECS => Ok(keys),
                _ => Err(Problem::unavailable("the auth server's signing keys (JWKS) cannot be fetched; retry later")),
            }
        }
    }
}

/// GETs a JWKS document: 200, JSON with a `keys` array, at most [`MAX_JWKS_BYTES`].
async fn fetch(url: &str) -> Result<Value, String> {
    let request = Request::builder().method(Method::Get).uri(url).header("accept", "application/json").build();
    let response: Response = spin_sdk::http::send(request).await.map_err(|e| e.to_string())?;
    if *response.status() != 200 {
        return Err(format!("status {}", response.status()));
    }
    if response.body().len() > MAX_JWKS_BYTES {
        return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
    }
    let document: Value = serde_json::from_slice(response.body()).map_err(|e| format!("not JSON: {e}"))?;
    KeySet::parse(&document)?;
    Ok(document)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ed_jwk(kid: &str) -> Value {
        json!({ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": kid, "x": "kLT8hA3re6ov9qejVrzMiFdpGC6u40jfzmH7GveTXXo" })
    }

    #[test]
    fn keys_are_found_by_kid_and_unknown_types_are_skipped() {
        let set = KeySet::parse(&json!({ "keys": [ed_jwk("a"), { "kty": "weird", "kid": "b" }, ed_jwk("c")] })).unwrap();
        assert!(set.find(Some("a")).is_some() && set.find(Some("c")).is_some());
        assert!(set.find(Some("b")).is_none() && set.find(Some("zzz")).is_none());
        // Without a kid only a one-key set answers.
        assert!(set.find(None).is_none());
        assert!(KeySet::parse(&json!({ "keys": [ed_jwk("a")] })).unwrap().find(None).is_some());
        assert!(KeySet::parse(&json!({ "nokeys": [] })).is_err());
    }

    #[test]
    fn a_key_verifies_only_the_algorithm_it_fits() {
        let jwk: Jwk = serde_json::from_value(ed_jwk("a")).unwrap();
        assert!(decoding_key(&jwk, Algorithm::EdDSA).is_ok());
        for alg in [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256, Algorithm::PS256] {
            assert_eq!(decoding_key(&jwk, alg).unwrap_err().status, 401, "{alg:?}");
        }
        // The key's own `alg` must match; so must `use` when given.
        let mut other = ed_jwk("a");
        other["alg"] = json!("RS256");
        assert_eq!(decoding_key(&serde_json::from_value(other).unwrap(), Algorithm::EdDSA).unwrap_err().status, 401);
        let mut enc = ed_jwk("a");
        enc["use"] = json!("enc");
        assert_eq!(decoding_key(&serde_json::from_value(enc).unwrap(), Algorithm::EdDSA).unwrap_err().status, 401);
        // A symmetric key in a JWKS is never used, not even for HS256.
        let oct: Jwk = serde_json::from_value(json!({ "kty": "oct", "kid": "s", "k": "c2VjcmV0" })).unwrap();
        assert_eq!(decoding_key(&oct, Algorithm::HS256).unwrap_err().status, 401);
        // A P-256 key verifies ES256 only.
        let p256: Jwk = serde_json::from_value(json!({
            "kty": "EC", "crv": "P-256", "kid": "e",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        }))
        .unwrap();
        assert!(decoding_key(&p256, Algorithm::ES256).is_ok());
        assert_eq!(decoding_key(&p256, Algorithm::ES384).unwrap_err().status, 401);
    }

    #[test]
    fn the_cache_is_used_while_fresh_and_refetched_once_for_an_unknown_kid() {
        assert_eq!(plan(None, false), Plan::Fetch);
        assert_eq!(plan(Some(10), true), Plan::UseCached);
        assert_eq!(plan(Some(FRESH_SECS - 1), true), Plan::UseCached);
        assert_eq!(plan(Some(FRESH_SECS), true), Plan::Fetch);
        // Unknown kid: refetch, unless the copy was fetched moments ago.
        assert_eq!(plan(Some(REFETCH_COOLDOWN_SECS), false), Plan::Fetch);
        assert_eq!(plan(Some(REFETCH_COOLDOWN_SECS - 1), false), Plan::UseCached);
        // A copy from the future is not trusted to be fresh.
        assert_eq!(plan(Some(-30), true), Plan::Fetch);
    }
}
