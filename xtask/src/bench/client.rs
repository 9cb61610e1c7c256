//! HTTP access to the stack under test, as its users.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::stack::{self, Stack};
use crate::token;

/// The services' addresses and one shared connection pool.
pub struct Client {
    agent: ureq::Agent,
    /// Base URL of todo-api.
    pub api: String,
    /// Base URL of audit-service.
    pub audit: String,
    /// Base URL of notify-service.
    pub notify: String,
    /// Base URL of mcp-server.
    pub mcp: String,
    /// Base URL of todo-api's daprd (the ceilings go straight to it).
    pub dapr: String,
    secret: String,
}

impl Client {
    /// A client of `stack`, signing tokens with the development secret.
    pub fn new(stack: &Stack) -> Result<Client> {
        let env: HashMap<String, String> = stack.test_env().into_iter().collect();
        let secret = stack::hs256_secret()?;
        // Enough idle connections for the concurrent loads, so that none pays a new connection.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .max_idle_connections(64)
            .max_idle_connections_per_host(32)
            .build()
            .into();
        Ok(Client {
            agent,
            api: env["TODO_API_URL"].clone(),
            audit: env["AUDIT_SERVICE_URL"].clone(),
            notify: env["NOTIFY_SERVICE_URL"].clone(),
            mcp: env["MCP_SERVER_URL"].clone(),
            dapr: env["TODO_API_DAPR_URL"].clone(),
            secret,
        })
    }

    /// A one-hour token for `user`.
    pub fn token(&self, user: &str) -> Result<String> {
        token::sign(user, 3600, self.secret.as_bytes())
    }

    /// Creates a task; fails unless the API answers `201`.
    pub fn create(&self, user: &str, token: &str, body: &Value) -> Result<Value> {
        self.create_keyed(user, token, body, None)
    }

    /// [`Client::create`] with an `Idempotency-Key`, so that a retry creates one task.
    pub fn create_keyed(&self, user: &str, token: &str, body: &Value, key: Option<&str>) -> Result<Value> {
        let mut request = self.agent.post(format!("{}/api/{user}/tasks", self.api)).header("authorization", &format!("Bearer {token}"));
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let mut response = request.send_json(body)?;
        if response.status() != 201 {
            let body = response.body_mut().read_to_string()?;
            // The problem's `detail` when there is one: the rest is boilerplate.
            let detail = serde_json::from_str::<Value>(&body).ok().and_then(|p| p["detail"].as_str().map(str::to_owned));
            bail!("create answered {}: {}", response.status(), detail.unwrap_or(body));
        }
        Ok(response.body_mut().read_json()?)
    }

    /// Calls the MCP tool `tool` (`tools/call` on `/mcp`); fails unless the tool succeeded.
    pub fn mcp_tool(&self, token: &str, tool: &str, arguments: &Value) -> Result<Value> {
        let message = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": tool, "arguments": arguments } });
        let mut response = self
            .agent
            .post(format!("{}/mcp", self.mcp))
            .header("authorization", &format!("Bearer {token}"))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .send_json(&message)?;
        let answer: Value = response.body_mut().read_json()?;
        if answer["result"]["isError"] != json!(false) {
            bail!("tools/call {tool} answered {answer}");
        }
        Ok(answer["result"]["structuredContent"].clone())
    }

    /// POSTs `body` to `url` without credentials (a sidecar); fails unless it answers 2xx.
    pub fn post_ok(&self, url: &str, body: &Value) -> Result<Vec<u8>> {
        let mut response = self.agent.post(url).send_json(body)?;
        let bytes = response.body_mut().read_to_vec()?;
        if !response.status().is_success() {
            bail!("POST {url} answered {}: {:.200}", response.status(), String::from_utf8_lossy(&bytes));
        }
        Ok(bytes)
    }

    /// GETs `url` without credentials; fails unless it answers 2xx.
    pub fn get_ok(&self, url: &str) -> Result<()> {
        let mut response = self.agent.get(url).call()?;
        response.body_mut().read_to_vec()?;
        if !response.status().is_success() {
            bail!("GET {url} answered {}", response.status());
        }
        Ok(())
    }

    /// The first 500 entries of type `event_type` in `user`'s audit log.
    pub fn audit_entries(&self, user: &str, token: &str, event_type: &str) -> Result<Vec<Value>> {
        let page = self.get(&format!("{}/audit/{user}?type={event_type}&limit=500", self.audit), token)?;
        Ok(page["items"].as_array().cloned().unwrap_or_default())
    }

    /// GETs `url` as JSON; fails unless it answers `200`.
    pub fn get(&self, url: &str, token: &str) -> Result<Value> {
        let mut response = self.agent.get(url).header("authorization", &format!("Bearer {token}")).call()?;
        if response.status() != 200 {
            bail!("GET {url} answered {}", response.status());
        }
        Ok(response.body_mut().read_json()?)
    }
}

/// A set of bench users with their tokens.
pub struct Users {
    names: Vec<String>,
    tokens: Vec<String>,
}

impl Users {
    /// `count` users named `<prefix>-<i>`.
    pub fn new(client: &Client, prefix: &str, count: usize) -> Result<Users> {
        let names: Vec<String> = (0..count).map(|u| format!("{prefix}-{u}")).collect();
        let tokens = names.iter().map(|u| client.token(u)).collect::<Result<_>>()?;
        Ok(Users { names, tokens })
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// The name and token of user `i` (modulo the count).
    pub fn get(&self, i: usize) -> (&str, &str) {
        let i = i % self.names.len();
        (&self.names[i], &self.tokens[i])
    }

    /// Gives every user `tasks` high-priority tasks.
    pub fn seed(&self, client: &Client, tasks: usize) -> Result<()> {
        for (user, token) in self.names.iter().zip(&self.tokens) {
            for i in 0..tasks {
                client.create(user, token, &json!({ "title": format!("seed {i}"), "priority": "high" }))?;
            }
        }
        Ok(())
    }
}
