//! A small client for the Dapr sidecar's HTTP API, over `wasi:http`.
//!
//! Only what the services use: state (get, bulk get, transactions with ETags
//! and TTLs), pub/sub publish with metadata, secrets, jobs, service invocation
//! and the sidecar's health. The sidecar's address comes from
//! `DAPR_HTTP_ENDPOINT`, else `http://127.0.0.1:$DAPR_HTTP_PORT` (port 3500 by
//! default), which is also where the sidecar listens inside a Kubernetes pod.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spin_sdk::http::{Method, Request, Response};

pub mod trace;

/// Why a call to the sidecar failed.
#[derive(Debug, thiserror::Error)]
pub enum DaprError {
    /// The sidecar could not be reached.
    #[error("Dapr sidecar unreachable: {0}")]
    Unreachable(String),
    /// A write lost an optimistic-concurrency race (ETag mismatch or first-write conflict).
    #[error("state changed concurrently")]
    Conflict,
    /// The sidecar answered with an error.
    #[error("Dapr answered {status}: {body}")]
    Status {
        /// HTTP status from the sidecar.
        status: u16,
        /// Its error body.
        body: String,
    },
    /// The sidecar's answer could not be decoded.
    #[error("cannot decode Dapr's answer: {0}")]
    Decode(String),
}

/// A stored value that no longer decodes as the type asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// Its key.
    pub key: String,
    /// Why it does not decode.
    pub error: String,
}

/// A stored value with the ETag it was read at.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its ETag, for optimistic concurrency.
    pub etag: Option<String>,
}

/// Decodes the value at `key`, read raw (a bulk read of keys of several types,
/// `get_bulk::<Box<RawValue>>`), as `T`.
pub fn decode<T: DeserializeOwned>(key: &str, raw: &serde_json::value::RawValue) -> Result<T, DaprError> {
    serde_json::from_str(raw.get()).map_err(|e| DaprError::Decode(format!("{key}: {e}")))
}

/// One operation of a state transaction.
#[derive(Debug, Clone)]
pub enum StateOp {
    /// Write `value` at `key`; guarded by `etag` when given.
    Upsert {
        /// State key.
        key: String,
        /// The value, stored as JSON.
        value: Value,
        /// Expected ETag (first-write concurrency).
        etag: Option<String>,
        /// Seconds until the store forgets the key (`ttlInSeconds`); `None`: never.
        ttl_secs: Option<u32>,
    },
    /// Write `value` at `key` only if the key does not exist yet (an expired
    /// key counts as absent).
    Insert {
        /// State key.
        key: String,
        /// The value, stored as JSON.
        value: Value,
        /// Seconds until the store forgets the key (`ttlInSeconds`); `None`: never.
        ttl_secs: Option<u32>,
    },
    /// Remove `key`.
    Delete {
        /// State key.
        key: String,
    },
}

impl StateOp {
    /// An upsert of a serializable value.
    pub fn upsert(key: impl Into<String>, value: &impl Serialize, etag: Option<String>) -> Self {
        StateOp::Upsert { key: key.into(), value: to_value(value), etag, ttl_secs: None }
    }

    /// An insert-if-absent of a serializable value.
    pub fn insert(key: impl Into<String>, value: &impl Serialize) -> Self {
        StateOp::Insert { key: key.into(), value: to_value(value), ttl_secs: None }
    }

    /// The same write, forgotten by the store after `seconds` (Dapr's
    /// `ttlInSeconds` metadata; state.sqlite and state.postgresql v2 honour it).
    /// A delete has no TTL and stays as it is.
    pub fn ttl(mut self, seconds: u32) -> Self {
        if let StateOp::Upsert { ttl_secs, .. } | StateOp::Insert { ttl_secs, .. } = &mut self {
            *ttl_secs = Some(seconds);
        }
        self
    }

    fn to_json(&self) -> Value {
        let first_write = serde_json::json!({ "concurrency": "first-write", "consistency": "strong" });
        let (mut request, ttl_secs) = match self {
            StateOp::Upsert { key, value, etag, ttl_secs } => {
                let mut request = serde_json::json!({ "key": key, "value": value });
                if let Some(etag) = etag {
                    request["etag"] = Value::String(etag.clone());
                    request["options"] = first_write;
                }
                (request, ttl_secs)
            }
            StateOp::Insert { key, value, ttl_secs } => {
                (serde_json::json!({ "key": key, "value": value, "options": first_write }), ttl_secs)
            }
            StateOp::Delete { key } => return serde_json::json!({ "operation": "delete", "request": { "key": key } }),
        };
        if let Some(ttl) = ttl_secs {
            request["metadata"] = serde_json::json!({ "ttlInSeconds": ttl.to_string() });
        }
        serde_json::json!({ "operation": "upsert", "request": request })
    }
}

fn to_value(value: &impl Serialize) -> Value {
    serde_json::to_value(value).expect("domain types always serialize")
}

/// CloudEvent attributes and Kafka partition key of a publish.
#[derive(Debug, Clone, Default)]
pub struct PublishMeta<'a> {
    /// CloudEvent `id`.
    pub id: &'a str,
    /// CloudEvent `type`.
    pub event_type: &'a str,
    /// CloudEvent `source`.
    pub source: &'a str,
    /// CloudEvent `subject`.
    pub subject: &'a str,
    /// Kafka partition key (the user id, for per-user order).
    pub partition_key: &'a str,
}

/// The Dapr sidecar of this app.
#[derive(Debug, Clone)]
pub struct Dapr {
    endpoint: String,
    api_token: Option<String>,
}

/// One item of a bulk read; its value stays raw JSON until decoded as the
/// type asked for (one parse instead of two, which matters for big reads).
#[derive(Deserialize)]
struct BulkItem {
    key: String,
    data: Option<Box<serde_json::value::RawValue>>,
    etag: Option<String>,
}

impl Dapr {
    /// The sidecar named by `DAPR_HTTP_ENDPOINT` / `DAPR_HTTP_PORT`, with
    /// `DAPR_API_TOKEN` when the sidecar requires one.
    pub fn from_env() -> Self {
        let endpoint = std::env::var("DAPR_HTTP_ENDPOINT").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| {
            let port = std::env::var("DAPR_HTTP_PORT").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "3500".into());
            format!("http://127.0.0.1:{port}")
        });
        let api_token = std::env::var("DAPR_API_TOKEN").ok().filter(|s| !s.is_empty());
        Dapr { endpoint: endpoint.trim_end_matches('/').to_owned(), api_token }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Response, DaprError> {
        self.send(method, path, &[], body).await
    }

    async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Result<Response, DaprError> {
        let mut builder = Request::builder();
        builder.method(method).uri(format!("{}{}", self.endpoint, path));
        if let Some(token) = &self.api_token {
            builder.header("dapr-api-token", token);
        }
        for (name, value) in headers {
            builder.header(*name, *value);
        }
        // The incoming request's W3C trace context goes along on every call.
        for (name, value) in trace::current().headers() {
            builder.header(name, value);
        }
        if let Some(body) = body {
            builder.header("content-type", "application/json").body(body);
        }
        spin_sdk::http::send(builder.build()).await.map_err(|e| DaprError::Unreachable(e.to_string()))
    }

    async fn call_ok(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Response, DaprError> {
        let response = self.call(method, path, body).await?;
        let status = *response.status();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let body = String::from_utf8_lossy(response.body()).into_owned();
        // ETag mismatches say so; PostgreSQL v2 reports a lost insert-if-absent
        // (first-write without ETag) as "no item was updated".
        if status == 409 || body.contains("etag mismatch") || body.contains("no item was updated") {
            return Err(DaprError::Conflict);
        }
        Err(DaprError::Status { status, body })
    }

    /// Reads one key; `None` when it does not exist.
    pub async fn get_state<T: DeserializeOwned>(&self, store: &str, key: &str) -> Result<Option<Versioned<T>>, DaprError> {
        let path = format!("/v1.0/state/{store}/{}?consistency=strong", encode(key));
        let response = self.call_ok(Method::Get, &path, None).await?;
        if *response.status() == 204 || response.body().is_empty() {
            return Ok(None);
        }
        let etag = response.header("etag").and_then(|v| v.as_str()).map(str::to_owned);
        let value = serde_json::from_slice(response.body()).map_err(|e| DaprError::Decode(format!("{key}: {e}")))?;
        Ok(Some(Versioned { value, etag }))
    }

    /// Reads many keys at once, in the order asked; missing keys are `None`.
    /// One value that does not decode fails the whole read.
    pub async fn get_bulk<T: DeserializeOwned>(&self, store: &str, keys: &[String]) -> Result<Vec<Option<Versioned<T>>>, DaprError> {
        self.get_bulk_each(store, keys)
            .await?
            .into_iter()
            .map(|item| item.transpose().map_err(|u| DaprError::Decode(format!("{}: {}", u.key, u.error))))
            .collect()
    }

    /// Reads many keys at once, in the order asked, decoding each on its own:
    /// missing keys are `None`, a value that no longer decodes (a rule
    /// tightened since it was written, a tampered document) is `Some(Err)`,
    /// so that one bad document does not hide the others.
    pub async fn get_bulk_each<T: DeserializeOwned>(
        &self,
        store: &str,
        keys: &[String],
    ) -> Result<Vec<Option<Result<Versioned<T>, Unreadable>>>, DaprError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let body = serde_json::to_vec(&serde_json::json!({ "keys": keys, "parallelism": 8 })).expect("keys serialize");
        let response = self.call_ok(Method::Post, &format!("/v1.0/state/{store}/bulk"), Some(body)).await?;
        let items: Vec<BulkItem> = serde_json::from_slice(response.body()).map_err(|e| DaprError::Decode(e.to_string()))?;
        let mut by_key: std::collections::HashMap<String, BulkItem> = items.into_iter().map(|item| (item.key.clone(), item)).collect();
        Ok(keys
            .iter()
            .map(|key| match by_key.remove(key) {
                Some(BulkItem { data: Some(data), etag, .. }) if data.get() != "null" => Some(
                    serde_json::from_str(data.get())
                        .map(|value| Versioned { value, etag })
                        .map_err(|e| Unreadable { key: key.clone(), error: e.to_string() }),
                ),
                _ => None,
            })
            .collect())
    }

    /// Commits all operations atomically, or none of them.
    pub async fn transact(&self, store: &str, ops: &[StateOp]) -> Result<(), DaprError> {
        let operations: Vec<Value> = ops.iter().map(StateOp::to_json).collect();
        let body = serde_json::to_vec(&serde_json::json!({ "operations": operations })).expect("ops serialize");
        self.call_ok(Method::Post, &format!("/v1.0/state/{store}/transaction"), Some(body)).await?;
        Ok(())
    }

    /// Saves `value` at `key` (last write wins), expiring after `ttl_secs`
    /// (Dapr's `ttlInSeconds`): for caches, never for data.
    pub async fn save_with_ttl(&self, store: &str, key: &str, value: &impl Serialize, ttl_secs: u32) -> Result<(), DaprError> {
        let item = serde_json::json!([{ "key": key, "value": to_value(value), "metadata": { "ttlInSeconds": ttl_secs.to_string() } }]);
        let body = serde_json::to_vec(&item).expect("state items serialize");
        self.call_ok(Method::Post, &format!("/v1.0/state/{store}"), Some(body)).await?;
        Ok(())
    }

    /// Publishes `data` as the `data` of a CloudEvent that Dapr builds.
    /// The CloudEvent carries the current trace context (`traceparent`, `tracestate`).
    pub async fn publish(&self, pubsub: &str, topic: &str, data: &impl Serialize, meta: &PublishMeta<'_>) -> Result<(), DaprError> {
        let trace = trace::current();
        let query = [
            ("metadata.partitionKey", meta.partition_key),
            ("metadata.cloudevent.id", meta.id),
            ("metadata.cloudevent.type", meta.event_type),
            ("metadata.cloudevent.source", meta.source),
            ("metadata.cloudevent.subject", meta.subject),
            ("metadata.cloudevent.traceparent", trace.traceparent.as_deref().unwrap_or_default()),
            ("metadata.cloudevent.tracestate", trace.tracestate.as_deref().unwrap_or_default()),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
        let body = serde_json::to_vec(data).map_err(|e| DaprError::Decode(e.to_string()))?;
        self.call_ok(Method::Post, &format!("/v1.0/publish/{pubsub}/{topic}?{query}"), Some(body)).await?;
        Ok(())
    }

    /// Whether the sidecar is up with its components loaded
    /// (`GET /v1.0/healthz/outbound`, which does not wait for this app).
    pub async fn healthy(&self) -> Result<(), DaprError> {
        self.call_ok(Method::Get, "/v1.0/healthz/outbound", None).await.map(drop)
    }

    /// Reads the secret `name` from `store` (the value under the key of the same name).
    pub async fn secret(&self, store: &str, name: &str) -> Result<Option<String>, DaprError> {
        let response = self.call(Method::Get, &format!("/v1.0/secrets/{store}/{}", encode(name)), None).await?;
        match *response.status() {
            200..=299 => {
                let map: std::collections::HashMap<String, String> =
                    serde_json::from_slice(response.body()).map_err(|e| DaprError::Decode(e.to_string()))?;
                Ok(map.get(name).cloned())
            }
            // local.file answers 500 with ERR_SECRET_GET for a missing key; Kubernetes answers 404/403.
            status => {
                let body = String::from_utf8_lossy(response.body()).into_owned();
                if status == 404 || body.contains("not found") {
                    Ok(None)
                } else {
                    Err(DaprError::Status { status, body })
                }
            }
        }
    }
}

/// How the scheduler retries a job whose callback fails: every
/// `interval_secs` seconds, at most `max_retries` times, then the job is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobRetry {
    /// Seconds between two attempts.
    pub interval_secs: u32,
    /// Attempts after the first.
    pub max_retries: u32,
}

/// Dapr Jobs API (stable `v1.0` of Dapr 1.18). Jobs live on the scheduler and
/// are delivered only to the app-id that scheduled them, as `POST /job/{name}`.
impl Dapr {
    /// Schedules the one-shot job `name` at `due_time` (RFC 3339 with offset)
    /// with `data` as the body of its callback, retried as `retry` says. With
    /// `overwrite`, a job of the same name is replaced, so scheduling again is
    /// idempotent.
    pub async fn schedule_job(
        &self,
        name: &str,
        due_time: &str,
        data: &impl Serialize,
        overwrite: bool,
        retry: JobRetry,
    ) -> Result<(), DaprError> {
        let body = serde_json::json!({
            "dueTime": due_time,
            "data": to_value(data),
            "overwrite": overwrite,
            "failurePolicy": { "constant": { "interval": format!("{}s", retry.interval_secs), "maxRetries": retry.max_retries } },
        });
        let body = serde_json::to_vec(&body).map_err(|e| DaprError::Decode(e.to_string()))?;
        self.call_ok(Method::Post, &format!("/v1.0/jobs/{}", encode(name)), Some(body)).await?;
        Ok(())
    }

    /// Deletes the job `name`; a job that does not exist (never scheduled,
    /// already fired, already deleted) counts as deleted.
    pub async fn delete_job(&self, name: &str) -> Result<(), DaprError> {
        match self.call_ok(Method::Delete, &format!("/v1.0/jobs/{}", encode(name)), None).await {
            Ok(_) => Ok(()),
            Err(DaprError::Status { status, body }) if status == 404 || is_job_not_found(&body) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Dapr service invocation (`/v1.0/invoke/{app_id}/method/{method}`): the
/// sidecar resolves `app_id` (mDNS locally, Kubernetes DNS on a cluster) and
/// the target's sidecar adds its app API token.
impl Dapr {
    /// POSTs `body` (JSON) to `method` of `app_id`; returns the status and body
    /// whatever the status, so the caller decides what a 4xx means. Fails only
    /// when the sidecar cannot be reached.
    pub async fn invoke_post(&self, app_id: &str, method: &str, body: &impl Serialize) -> Result<(u16, Vec<u8>), DaprError> {
        let body = serde_json::to_vec(body).map_err(|e| DaprError::Decode(e.to_string()))?;
        self.invoke_with(app_id, Method::Post, method, &[], Some(body)).await
    }

    /// Sends `verb` to `method` (path and query) of `app_id` with extra
    /// `headers` (e.g. the caller's `Authorization`, which Dapr forwards) and
    /// an optional JSON body; returns the status and body whatever the status.
    pub async fn invoke_with(
        &self,
        app_id: &str,
        verb: Method,
        method: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Vec<u8>), DaprError> {
        let path = format!("/v1.0/invoke/{}/method/{}", encode(app_id), method.trim_start_matches('/'));
        let response = self.send(verb, &path, headers, body).await?;
        Ok((*response.status(), response.body().to_vec()))
    }
}

/// Whether a Jobs API error body says the job does not exist.
fn is_job_not_found(body: &str) -> bool {
    let body = body.to_ascii_lowercase();
    body.contains("not found") || body.contains("notfound") || body.contains("not_found")
}

/// Percent-encodes a path segment or query value (RFC 3986 unreserved kept).
pub fn encode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_keeps_unreserved_only() {
        assert_eq!(encode("a|b:c d/é"), "a%7Cb%3Ac%20d%2F%C3%A9");
    }

    #[test]
    fn transaction_ops_carry_concurrency_options() {
        let guarded = StateOp::upsert("k", &1, Some("e1".into())).to_json();
        assert_eq!(guarded["request"]["etag"], "e1");
        assert_eq!(guarded["request"]["options"]["concurrency"], "first-write");
        let insert = StateOp::insert("k", &1).to_json();
        assert!(insert["request"].get("etag").is_none());
        assert_eq!(insert["request"]["options"]["concurrency"], "first-write");
        let blind = StateOp::upsert("k", &1, None).to_json();
        assert!(blind["request"].get("options").is_none());
        assert_eq!(StateOp::Delete { key: "k".into() }.to_json()["operation"], "delete");
    }

    #[test]
    fn writes_with_a_ttl_carry_ttl_in_seconds() {
        let insert = StateOp::insert("k", &1).ttl(86_400).to_json();
        assert_eq!(insert["request"]["metadata"]["ttlInSeconds"], "86400");
        assert_eq!(insert["request"]["options"]["concurrency"], "first-write");
        let upsert = StateOp::upsert("k", &1, Some("e".into())).ttl(60).to_json();
        assert_eq!(
            (&upsert["request"]["metadata"]["ttlInSeconds"], &upsert["request"]["etag"]),
            (&serde_json::json!("60"), &serde_json::json!("e"))
        );
        assert!(StateOp::upsert("k", &1, None).to_json()["request"].get("metadata").is_none(), "no TTL: kept for good");
        assert_eq!(StateOp::Delete { key: "k".into() }.ttl(5).to_json(), StateOp::Delete { key: "k".into() }.to_json());
    }

    #[test]
    fn missing_jobs_are_recognized() {
        assert!(is_job_not_found(r#"{"errorCode":"ERR_JOBS_NOT_FOUND","message":"job not found: x"}"#));
        assert!(!is_job_not_found(r#"{"errorCode":"ERR_DELETE_JOB","message":"connection refused"}"#));
    }
}
