//! JSON-RPC 2.0 messages as MCP uses them: one message per POST (no batches),
//! ids that are strings or integers (never `null`), params that are objects.

use serde_json::{json, Map, Value};

/// Invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Valid JSON that is not a JSON-RPC request (or a batch).
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Bad parameters (also an unknown tool, as MCP says).
pub const INVALID_PARAMS: i64 = -32602;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The code.
    pub code: i64,
    /// A short message.
    pub message: String,
    /// Details, when any.
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into(), data: None }
    }
}

/// A message a client sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request, to be answered.
    Request {
        /// Its id (a string or an integer).
        id: Value,
        /// The method.
        method: String,
        /// The params (an object), when given.
        params: Option<Map<String, Value>>,
    },
    /// A notification (no id): accepted, never answered.
    Notification {
        /// The method.
        method: String,
    },
    /// A response to a request of the server's (which this server never sends): accepted.
    Response,
}

/// Why a body is not a message: the error and the id to answer it with
/// (`null` when the id itself could not be read).
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// The id to answer with.
    pub id: Value,
    /// The error.
    pub error: RpcError,
}

fn refuse(id: Value, code: i64, message: impl Into<String>) -> Refused {
    Refused { id, error: RpcError::new(code, message) }
}

/// Reads one JSON-RPC message.
pub fn parse(body: &[u8]) -> Result<Message, Refused> {
    let value: Value = serde_json::from_slice(body).map_err(|e| refuse(Value::Null, PARSE_ERROR, format!("Parse error: {e}")))?;
    let obj = match value {
        Value::Object(obj) => obj,
        Value::Array(_) => {
            return Err(refuse(Value::Null, INVALID_REQUEST, "Invalid Request: batches are not supported; send one message per request"))
        }
        _ => return Err(refuse(Value::Null, INVALID_REQUEST, "Invalid Request: a message is a JSON object")),
    };
    let id = match obj.get("id") {
        None => None,
        Some(id @ Value::String(_)) => Some(id.clone()),
        Some(id @ Value::Number(n)) if n.is_i64() || n.is_u64() => Some(id.clone()),
        Some(_) => return Err(refuse(Value::Null, INVALID_REQUEST, "Invalid Request: id must be a string or an integer")),
    };
    let answer_id = id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(refuse(answer_id, INVALID_REQUEST, "Invalid Request: jsonrpc must be \"2.0\""));
    }
    let Some(method) = obj.get("method") else {
        if id.is_some() && (obj.contains_key("result") || obj.contains_key("error")) {
            return Ok(Message::Response);
        }
        return Err(refuse(answer_id, INVALID_REQUEST, "Invalid Request: method is required"));
    };
    let Value::String(method) = method else {
        return Err(refuse(answer_id, INVALID_REQUEST, "Invalid Request: method must be a string"));
    };
    let params = match obj.get("params") {
        None | Some(Value::Null) => None,
        Some(Value::Object(p)) => Some(p.clone()),
        Some(_) => return Err(refuse(answer_id, INVALID_PARAMS, "Invalid params: params must be an object")),
    };
    Ok(match id {
        Some(id) => Message::Request { id, method: method.clone(), params },
        None => Message::Notification { method: method.clone() },
    })
}

/// A success answer.
pub fn success(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// An error answer.
pub fn failure(id: &Value, error: &RpcError) -> Value {
    let mut body = json!({ "code": error.code, "message": error.message });
    if let Some(data) = &error.data {
        body["data"] = data.clone();
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code(body: &str) -> i64 {
        parse(body.as_bytes()).unwrap_err().error.code
    }

    #[test]
    fn messages_are_told_apart() {
        let request = parse(br#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#).unwrap();
        assert_eq!(request, Message::Request { id: json!(7), method: "ping".into(), params: None });
        let notification = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(notification, Message::Notification { method: "notifications/initialized".into() });
        assert_eq!(parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap(), Message::Response);
    }

    #[test]
    fn broken_messages_get_their_json_rpc_error() {
        assert_eq!(code("{"), PARSE_ERROR);
        assert_eq!(code(""), PARSE_ERROR);
        assert_eq!(code(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#), INVALID_REQUEST);
        assert_eq!(code("3"), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":3}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#), INVALID_PARAMS);
        // The id is echoed when it could be read.
        assert_eq!(parse(br#"{"jsonrpc":"1.0","id":"x","method":"ping"}"#).unwrap_err().id, json!("x"));
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_are_refused(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&body);
        }
    }
}
