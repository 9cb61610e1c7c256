//! Settings from WASI environment variables, each with a safe default.

/// Reads `name`, falling back to `default` when unset or empty.
pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

/// Reads `name`; `None` when unset or blank.
fn env_opt(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Names of the Dapr components and secrets a service uses, and whom it trusts.
///
/// The component names are the same in every environment; the components
/// behind them differ (SQLite or PostgreSQL, local file or Kubernetes secrets).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `STATE_STORE` (default `statestore`).
    pub state_store: String,
    /// `PUBSUB` (default `pubsub`).
    pub pubsub: String,
    /// `SECRET_STORE` (default `secretstore`).
    pub secret_store: String,
    /// `JWT_SECRET_NAME`: the secret holding the HS256 key, Better Auth's
    /// `BETTER_AUTH_SECRET` (default `jwt-hs256-secret`).
    pub jwt_secret: String,
    /// The Better Auth server whose JWTs (EdDSA, ES256, RS256, PS256 with a
    /// `kid`) are accepted; `None` when `BETTER_AUTH_URL` is unset.
    pub better_auth: Option<BetterAuth>,
    /// `APP_API_TOKEN_SECRET`: secret holding the token Dapr presents to the app
    /// (default `app-api-token`).
    pub app_token_secret: String,
    /// `DAPR_ONLY_ROUTES_OPEN=true`: a developer's explicit choice to leave
    /// Dapr-only routes open when `APP_API_TOKEN_SECRET` is empty. Without
    /// it, an empty secret name closes them (401).
    pub dapr_only_routes_open: bool,
}

/// Where a Better Auth server publishes its keys and what its tokens claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BetterAuth {
    /// `iss` of its tokens: `BETTER_AUTH_ISSUER`, default `BETTER_AUTH_URL`.
    pub issuer: String,
    /// `aud` of its tokens: `BETTER_AUTH_AUDIENCE`, default `BETTER_AUTH_URL`.
    pub audience: String,
    /// Where the keys come from.
    pub jwks: JwksSource,
}

/// The source of a JSON Web Key Set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// Fetched over HTTP: `BETTER_AUTH_JWKS_URL`, default `{BETTER_AUTH_URL}/api/auth/jwks`.
    Url(String),
    /// A JWKS document in the Dapr secret store, under the secret named by
    /// `BETTER_AUTH_JWKS_SECRET` (it wins over the URL when set).
    Secret(String),
}

impl BetterAuth {
    /// From a base URL and optional overrides (the environment's values).
    pub fn new(
        base_url: &str,
        issuer: Option<String>,
        audience: Option<String>,
        jwks_url: Option<String>,
        jwks_secret: Option<String>,
    ) -> Self {
        let base = base_url.trim().trim_end_matches('/').to_owned();
        let jwks = match (jwks_secret, jwks_url) {
            (Some(secret), _) => JwksSource::Secret(secret),
            (None, Some(url)) => JwksSource::Url(url),
            (None, None) => JwksSource::Url(format!("{base}/api/auth/jwks")),
        };
        BetterAuth { issuer: issuer.unwrap_or_else(|| base.clone()), audience: audience.unwrap_or(base), jwks }
    }

    fn from_env() -> Option<Self> {
        let base = env_opt("BETTER_AUTH_URL")?;
        Some(BetterAuth::new(
            &base,
            env_opt("BETTER_AUTH_ISSUER"),
            env_opt("BETTER_AUTH_AUDIENCE"),
            env_opt("BETTER_AUTH_JWKS_URL"),
            env_opt("BETTER_AUTH_JWKS_SECRET"),
        ))
    }
}

impl Settings {
    /// Settings from the environment.
    pub fn from_env() -> Self {
        Settings {
            state_store: env_or("STATE_STORE", "statestore"),
            pubsub: env_or("PUBSUB", "pubsub"),
            secret_store: env_or("SECRET_STORE", "secretstore"),
            jwt_secret: env_or("JWT_SECRET_NAME", "jwt-hs256-secret"),
            better_auth: BetterAuth::from_env(),
            app_token_secret: std::env::var("APP_API_TOKEN_SECRET").unwrap_or_else(|_| "app-api-token".to_owned()),
            dapr_only_routes_open: env_opt("DAPR_ONLY_ROUTES_OPEN").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn better_auth_defaults_follow_its_base_url() {
        let auth = BetterAuth::new("http://127.0.0.1:4100/", None, None, None, None);
        assert_eq!(auth.issuer, "http://127.0.0.1:4100");
        assert_eq!(auth.audience, "http://127.0.0.1:4100");
        assert_eq!(auth.jwks, JwksSource::Url("http://127.0.0.1:4100/api/auth/jwks".into()));
        let custom =
            BetterAuth::new("https://a.test", Some("i".into()), Some("a".into()), Some("https://k.test/j".into()), Some("s".into()));
        assert_eq!((custom.issuer.as_str(), custom.audience.as_str()), ("i", "a"));
        assert_eq!(custom.jwks, JwksSource::Secret("s".into()));
    }
}
