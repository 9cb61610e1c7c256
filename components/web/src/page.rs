//! The page itself: `index.html` with this deployment's settings filled in,
//! and the security headers that go with it.

use component_kit::settings::env_or;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::assets::{BUILD, INDEX};

/// Where the browser finds the services, from the environment. An empty URL
/// means the page's own origin (one host serving every route, as one
/// `spin up` of the whole `spin.toml` does).
pub struct Config {
    todo_api: String,
    notify: String,
    audit: String,
    better_auth: String,
}

impl Config {
    /// `TODO_API_PUBLIC_URL`, `NOTIFY_SERVICE_PUBLIC_URL`,
    /// `AUDIT_SERVICE_PUBLIC_URL` and `BETTER_AUTH_URL` (default: none).
    pub fn from_env() -> Self {
        let url = |name: &str| env_or(name, "").trim().trim_end_matches('/').to_owned();
        Config {
            todo_api: url("TODO_API_PUBLIC_URL"),
            notify: url("NOTIFY_SERVICE_PUBLIC_URL"),
            audit: url("AUDIT_SERVICE_PUBLIC_URL"),
            better_auth: url("BETTER_AUTH_URL"),
        }
    }

    fn json(&self) -> String {
        let config = json!({
            "todo_api_url": self.todo_api, "notify_url": self.notify, "audit_url": self.audit,
            "better_auth_url": self.better_auth,
        });
        // Inside <script type="application/json">: `<` must not open a tag.
        config.to_string().replace('<', "\\u003c")
    }

    /// The Content-Security-Policy: nothing but this origin and the services.
    pub fn csp(&self) -> String {
        let mut connect = vec!["'self'".to_owned()];
        for url in [&self.todo_api, &self.notify, &self.audit, &self.better_auth] {
            if !url.is_empty() && !connect.contains(url) && !url.contains([' ', ';', ',']) {
                connect.push(url.clone());
            }
        }
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src {}; \
             manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            connect.join(" ")
        )
    }
}

/// The page and its strong ETag (over the build and the settings).
pub fn render(config: &Config) -> (String, String) {
    let html = INDEX.replace("%BUILD%", BUILD).replace("%CONFIG%", &config.json());
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(html.as_bytes())[..8]));
    (html, etag)
}
