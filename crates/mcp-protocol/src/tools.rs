//! The tools: their catalog, and how a call becomes todo-api requests and
//! todo-api's answers a tool result.
//!
//! Every tool is carried out by todo-api's HTTP API (through Dapr service
//! invocation, with the caller's bearer token), so an agent's change follows
//! exactly the rules, events, audit entries and reminders of a REST change.
//! Bad arguments and refused changes are tool results with `isError: true`,
//! so the model can read them and try again.

use serde_json::{json, Map, Value};
use todo_domain::TaskId;

/// The catalog: `specs/contracts/mcp-tools.json`.
const CATALOG: &str = include_str!("../../../specs/contracts/mcp-tools.json");

/// The tools, as `tools/list` returns them.
pub fn catalog() -> Vec<Value> {
    let doc: Value = serde_json::from_str(CATALOG).expect("the tool catalog is JSON");
    doc["tools"].as_array().expect("the catalog lists tools").clone()
}

/// An HTTP method todo-api takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

/// One request to todo-api: `path` is relative to `/api/{user_id}/`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The method.
    pub verb: Verb,
    /// Path (and query) under `/api/{user_id}/`.
    pub path: String,
    /// The JSON body, for POST and PATCH.
    pub body: Option<Value>,
}

/// The tools this server has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `add_task`
    AddTask,
    /// `list_tasks`
    ListTasks,
    /// `find_tasks`
    FindTasks,
    /// `complete_task`
    CompleteTask,
    /// `delete_task`
    DeleteTask,
    /// `update_task`
    UpdateTask,
    /// `quick_add`
    QuickAdd,
}

impl Tool {
    /// The tool named `name`, if there is one.
    pub fn named(name: &str) -> Option<Tool> {
        Some(match name {
            "add_task" => Tool::AddTask,
            "list_tasks" => Tool::ListTasks,
            "find_tasks" => Tool::FindTasks,
            "complete_task" => Tool::CompleteTask,
            "delete_task" => Tool::DeleteTask,
            "update_task" => Tool::UpdateTask,
            "quick_add" => Tool::QuickAdd,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Tool::AddTask => "add_task",
            Tool::ListTasks => "list_tasks",
            Tool::FindTasks => "find_tasks",
            Tool::CompleteTask => "complete_task",
            Tool::DeleteTask => "delete_task",
            Tool::UpdateTask => "update_task",
            Tool::QuickAdd => "quick_add",
        }
    }
}

/// What a call does: the requests, in order (each runs only if the one
/// before succeeded), for the tool.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The tool.
    pub tool: Tool,
    /// The requests.
    pub calls: Vec<Call>,
}

/// A tool result with `isError: true` and `message` as its text.
pub fn error_result(message: impl Into<String>) -> Value {
    json!({ "content": [{ "type": "text", "text": message.into() }], "isError": true })
}

/// A tool result: `structured` as `structuredContent` and as JSON text.
pub fn ok_result(structured: Value) -> Value {
    json!({ "content": [{ "type": "text", "text": structured.to_string() }], "structuredContent": structured, "isError": false })
}

/// Plans `tool` with `arguments` for the token's `subject`. `Err` is the
/// message of an `isError` result (bad arguments; nothing is sent).
pub fn plan(tool: Tool, arguments: Option<&Value>, subject: &str) -> Result<Plan, String> {
    let empty = Map::new();
    let args = match arguments {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(args)) => args,
        Some(_) => return Err("arguments must be an object".into()),
    };
    check_keys(tool, args)?;
    if let Some(user) = args.get("user_id") {
        if user.as_str() != Some(subject) {
            return Err("user_id must be the signed-in user's id (the bearer token's subject); it may be left out".into());
        }
    }
    let body = || -> Map<String, Value> {
        args.iter().filter(|(k, _)| !["user_id", "task_id", "series"].contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    let calls = match tool {
        Tool::AddTask => vec![post("tasks", task_body(body()))],
        Tool::QuickAdd => vec![post("tasks/quick", Value::Object(body()))],
        Tool::ListTasks => vec![get(format!("tasks{}", query(args, None)?))],
        Tool::FindTasks => {
            let words =
                args.get("query").and_then(Value::as_str).filter(|q| !q.trim().is_empty()).ok_or("query must be a non-empty string")?;
            vec![get(format!("tasks{}", query(args, Some(words))?))]
        }
        Tool::CompleteTask => vec![Call { verb: Verb::Patch, path: task_path(args)?, body: Some(json!({ "completed": true })) }],
        Tool::UpdateTask => {
            let fields = task_body(body());
            if fields.as_object().is_some_and(Map::is_empty) {
                return Err("give at least one field to change".into());
            }
            vec![Call { verb: Verb::Patch, path: task_path(args)?, body: Some(fields) }]
        }
        Tool::DeleteTask => {
            let path = task_path(args)?;
            let series = match args.get("series") {
                None | Some(Value::Null) | Some(Value::Bool(false)) => "",
                Some(Value::Bool(true)) => "?series=true",
                Some(_) => return Err("series must be true or false".into()),
            };
            vec![get(path.clone()), Call { verb: Verb::Delete, path: format!("{path}{series}"), body: None }]
        }
    };
    Ok(Plan { tool, calls })
}

fn post(path: &str, body: Value) -> Call {
    Call { verb: Verb::Post, path: path.into(), body: Some(body) }
}

fn get(path: String) -> Call {
    Call { verb: Verb::Get, path, body: None }
}

/// Refuses arguments the tool's `inputSchema` does not have, and missing required ones.
fn check_keys(tool: Tool, args: &Map<String, Value>) -> Result<(), String> {
    let tools = catalog();
    let schema = &tools.iter().find(|t| t["name"] == tool.name()).expect("every tool is in the catalog")["inputSchema"];
    let known = schema["properties"].as_object().expect("input schemas have properties");
    if let Some(unknown) = args.keys().find(|k| !known.contains_key(*k)) {
        let names: Vec<&str> = known.keys().map(String::as_str).collect();
        return Err(format!("unknown argument `{unknown}`; {} takes {}", tool.name(), names.join(", ")));
    }
    for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if args.get(required).is_none_or(Value::is_null) {
            return Err(format!("argument `{required}` is required"));
        }
    }
    Ok(())
}

/// The REST body of a task's fields: a recurrence given as a phrase becomes `{"text": ...}`.
fn task_body(mut fields: Map<String, Value>) -> Value {
    if let Some(Value::String(text)) = fields.get("recurrence") {
        let text = text.clone();
        fields.insert("recurrence".into(), json!({ "text": text }));
    }
    Value::Object(fields)
}

fn task_path(args: &Map<String, Value>) -> Result<String, String> {
    let id: TaskId = args
        .get("task_id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or("task_id must be a task's id (a UUID, from list_tasks or find_tasks)")?;
    Ok(format!("tasks/{id}"))
}

/// The list query of `list_tasks` / `find_tasks` (`?status=...&tag=...`).
fn query(args: &Map<String, Value>, words: Option<&str>) -> Result<String, String> {
    let mut out = form_urlencoded::Serializer::new(String::new());
    if let Some(words) = words {
        out.append_pair("q", words);
    }
    for (key, value) in args {
        let name = match key.as_str() {
            "user_id" | "query" => continue,
            "tags" => "tag",
            other => other,
        };
        match (name, value) {
            (_, Value::Null) => {}
            ("priority" | "tag", Value::Array(items)) => {
                for item in items {
                    out.append_pair(name, item.as_str().ok_or_else(|| format!("{key} must be a list of strings"))?);
                }
            }
            ("overdue" | "has_due", Value::Bool(b)) => {
                out.append_pair(name, if *b { "true" } else { "false" });
            }
            ("limit", Value::Number(n)) if n.is_u64() => {
                out.append_pair(name, &n.to_string());
            }
            ("limit", _) => return Err("limit must be an integer from 1 to 200".into()),
            ("overdue" | "has_due", _) => return Err(format!("{key} must be true or false")),
            (_, Value::String(s)) => {
                out.append_pair(name, s);
            }
            _ => return Err(format!("{key} has the wrong type; see the tool's inputSchema")),
        }
    }
    let query = out.finish();
    Ok(if query.is_empty() { query } else { format!("?{query}") })
}

/// The tool result from todo-api's answers to the plan's calls (`(status,
/// body)` each; fewer than planned when one failed, the last being the failure).
pub fn result(plan: &Plan, answers: &[(u16, Value)]) -> Value {
    let Some((status, body)) = answers.last() else { return error_result("nothing was done") };
    if !(200..300).contains(status) {
        return error_result(refusal(*status, body));
    }
    let changed =
        |status: &str, task: &Value| ok_result(json!({ "task_id": task["id"], "status": status, "title": task["title"], "task": task }));
    match plan.tool {
        Tool::AddTask | Tool::QuickAdd => changed("created", body),
        Tool::CompleteTask => changed("completed", body),
        Tool::UpdateTask => changed("updated", body),
        Tool::DeleteTask => changed("deleted", &answers[0].1),
        Tool::ListTasks | Tool::FindTasks => ok_result(json!({ "tasks": body["items"], "next_cursor": body["next_cursor"] })),
    }
}

/// What an error answer of todo-api (problem+json) tells the agent.
fn refusal(status: u16, problem: &Value) -> String {
    let detail = problem["detail"].as_str().unwrap_or("the request was refused");
    match (status, problem["field"].as_str()) {
        (404, _) => format!("not found: {detail}"),
        (400 | 422, Some(field)) => format!("invalid {field}: {detail}"),
        (s, _) if s >= 500 => format!("the task service is unavailable ({s}); retry later"),
        (s, _) => format!("refused ({s}): {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "alice";
    const ID: &str = "0190b0a8-0000-7000-8000-000000000001";

    fn planned(tool: &str, args: Value) -> Result<Plan, String> {
        plan(Tool::named(tool).unwrap(), Some(&args), ALICE)
    }

    #[test]
    fn every_catalog_entry_is_a_tool_with_schemas_and_annotations() {
        let tools = catalog();
        assert_eq!(tools.len(), 7);
        for tool in &tools {
            let name = tool["name"].as_str().unwrap();
            assert_eq!(Tool::named(name).map(Tool::name), Some(name));
            assert!(tool["description"].as_str().is_some_and(|d| d.len() > 20), "{name}");
            assert_eq!(tool["inputSchema"]["type"], "object", "{name}");
            assert_eq!(tool["outputSchema"]["type"], "object", "{name}");
            for hint in ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"] {
                assert!(tool["annotations"][hint].is_boolean(), "{name} {hint}");
            }
            jsonschema::validator_for(&tool["inputSchema"]).unwrap();
            jsonschema::validator_for(&tool["outputSchema"]).unwrap();
        }
        let read_only: Vec<_> = tools.iter().filter(|t| t["annotations"]["readOnlyHint"] == true).map(|t| t["name"].clone()).collect();
        assert_eq!(read_only, [json!("list_tasks"), json!("find_tasks")]);
    }

    #[test]
    fn calls_become_todo_api_requests() {
        let add =
            planned("add_task", json!({ "title": "t", "recurrence": "every day", "due_at": "2026-01-01T09:00:00Z", "user_id": ALICE }))
                .unwrap();
        assert_eq!(
            add.calls,
            [post("tasks", json!({ "title": "t", "recurrence": { "text": "every day" }, "due_at": "2026-01-01T09:00:00Z" }))]
        );
        let find = planned(
            "find_tasks",
            json!({ "query": "team meeting", "status": "pending", "tags": ["a b", "c"], "limit": 5, "overdue": false }),
        )
        .unwrap();
        assert_eq!(find.calls[0].path, "tasks?q=team+meeting&limit=5&overdue=false&status=pending&tag=a+b&tag=c");
        let delete = planned("delete_task", json!({ "task_id": ID, "series": true })).unwrap();
        assert_eq!((delete.calls[0].verb, delete.calls[1].verb), (Verb::Get, Verb::Delete));
        assert_eq!(delete.calls[1].path, format!("tasks/{ID}?series=true"));
        let complete = planned("complete_task", json!({ "task_id": ID })).unwrap();
        assert_eq!(complete.calls[0].body, Some(json!({ "completed": true })));
        assert_eq!(planned("list_tasks", json!({})).unwrap().calls[0].path, "tasks");
    }

    #[test]
    fn bad_arguments_are_refused_before_anything_is_sent() {
        for (tool, args, says) in [
            ("add_task", json!({}), "title"),
            ("add_task", json!({ "title": "t", "colour": "red" }), "colour"),
            ("add_task", json!({ "title": "t", "user_id": "mallory" }), "user_id"),
            ("complete_task", json!({ "task_id": "../../audit" }), "task_id"),
            ("complete_task", json!({ "task_id": 3 }), "task_id"),
            ("delete_task", json!({ "task_id": ID, "series": "yes" }), "series"),
            ("list_tasks", json!({ "limit": "ten" }), "limit"),
            ("list_tasks", json!({ "priority": [1] }), "priority"),
            ("list_tasks", json!({ "overdue": "yes" }), "overdue"),
            ("find_tasks", json!({ "query": "  " }), "query"),
            ("update_task", json!({ "task_id": ID }), "field"),
        ] {
            let why = planned(tool, args.clone()).unwrap_err();
            assert!(why.contains(says), "{tool} {args}: {why}");
        }
        assert!(plan(Tool::AddTask, Some(&json!([1])), ALICE).unwrap_err().contains("object"));
    }

    #[test]
    fn answers_become_results() {
        let task = json!({ "id": ID, "title": "t" });
        let add = planned("add_task", json!({ "title": "t" })).unwrap();
        let ok = result(&add, &[(201, task.clone())]);
        assert_eq!(ok["structuredContent"], json!({ "task_id": ID, "status": "created", "title": "t", "task": task }));
        assert_eq!(
            ok["content"][0]["text"].as_str().map(|t| serde_json::from_str::<Value>(t).unwrap()),
            Some(ok["structuredContent"].clone())
        );
        let refused = result(&add, &[(422, json!({ "detail": "at most 200 characters", "field": "title" }))]);
        assert_eq!(refused["isError"], true);
        assert_eq!(refused["content"][0]["text"], "invalid title: at most 200 characters");
        let delete = planned("delete_task", json!({ "task_id": ID })).unwrap();
        assert_eq!(result(&delete, &[(200, task.clone()), (204, Value::Null)])["structuredContent"]["status"], "deleted");
        assert_eq!(result(&delete, &[(404, json!({ "detail": "no such task" }))])["content"][0]["text"], "not found: no such task");
    }

    #[test]
    fn results_match_the_output_schemas() {
        let tools = catalog();
        let task =
            json!({ "id": ID, "user_id": ALICE, "title": "t", "completed": false, "created_at": "x", "updated_at": "x", "version": 1 });
        for (name, answers) in [
            ("add_task", vec![(201, task.clone())]),
            ("list_tasks", vec![(200, json!({ "items": [task], "next_cursor": null }))]),
            ("delete_task", vec![(200, task.clone()), (204, Value::Null)]),
        ] {
            let schema = &tools.iter().find(|t| t["name"] == name).unwrap()["outputSchema"];
            let args = if name == "delete_task" {
                json!({ "task_id": ID })
            } else if name == "add_task" {
                json!({ "title": "t" })
            } else {
                json!({})
            };
            let out = result(&planned(name, args).unwrap(), &answers);
            assert!(jsonschema::is_valid(schema, &out["structuredContent"]), "{name}: {out}");
        }
    }
}
