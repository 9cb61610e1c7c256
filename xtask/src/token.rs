//! `cargo xtask token <user>`: a development JWT signed with the local stack's
//! HS256 secret (`BETTER_AUTH_SECRET` when set, else `dapr/secrets.dev.json`).

use anyhow::{Context, Result};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

use crate::stack::hs256_secret;

/// Prints a token for the user named in `args` (`--ttl SECONDS`, default 1 day).
pub fn print(args: &[String]) -> Result<()> {
    let user = args.first().filter(|a| !a.starts_with("--")).context("usage: cargo xtask token <user> [--ttl SECONDS]")?;
    let ttl = match args.iter().position(|a| a == "--ttl") {
        Some(i) => args.get(i + 1).context("--ttl needs a number of seconds")?.parse().context("--ttl must be a number")?,
        None => 86_400,
    };
    let secret = hs256_secret()?;
    println!("{}", sign(user, ttl, secret.as_bytes())?);
    Ok(())
}

/// An HS256 token for `user`, valid for `ttl` seconds.
pub fn sign(user: &str, ttl: u64, secret: &[u8]) -> Result<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let claims = serde_json::json!({ "sub": user, "iat": now, "nbf": now, "exp": now + ttl, "iss": "todo-chatbot-dev" });
    Ok(encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret)?)?)
}
