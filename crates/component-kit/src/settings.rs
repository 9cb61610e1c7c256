//! Settings from WASI environment variables, each with a safe default.

/// Reads `name`, falling back to `default` when unset or empty.
pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

/// Names of the Dapr components and secrets a service uses.
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
    /// `JWT_SECRET_NAME`: secret holding the HS256 key (default `jwt-hs256-secret`).
    pub jwt_secret: String,
    /// `JWT_PUBLIC_KEY_SECRET`: secret holding the PEM public key for EdDSA and
    /// RS256 tokens (default `jwt-public-key`); absent means only HS256 is accepted.
    pub jwt_public_key: String,
    /// `APP_API_TOKEN_SECRET`: secret holding the token Dapr presents to the app
    /// (default `app-api-token`); empty disables the check.
    pub app_token_secret: String,
}

impl Settings {
    /// Settings from the environment.
    pub fn from_env() -> Self {
        Settings {
            state_store: env_or("STATE_STORE", "statestore"),
            pubsub: env_or("PUBSUB", "pubsub"),
            secret_store: env_or("SECRET_STORE", "secretstore"),
            jwt_secret: env_or("JWT_SECRET_NAME", "jwt-hs256-secret"),
            jwt_public_key: env_or("JWT_PUBLIC_KEY_SECRET", "jwt-public-key"),
            app_token_secret: std::env::var("APP_API_TOKEN_SECRET").unwrap_or_else(|_| "app-api-token".to_owned()),
        }
    }
}
