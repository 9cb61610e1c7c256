//! Bad input and bad credentials get a clear 4xx and change nothing.

use e2e::{fresh_user, get, send, send_json, Stack};
use serde_json::json;

fn assert_problem(reply: &e2e::Reply, status: u16) {
    assert_eq!(reply.status, status, "{:?}", reply.json);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    assert_eq!(reply.json["status"], status);
    assert!(reply.json["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

fn assert_no_tasks(stack: &Stack, user: &str) {
    let listed = get(&format!("{}/api/{user}/tasks", stack.api), &stack.token(user));
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json["items"], json!([]), "nothing was written");
}

#[test]
fn missing_or_bad_tokens_are_401_and_another_users_path_is_403() {
    let stack = Stack::get();
    let user = fresh_user("auth");
    let url = format!("{}/api/{user}/tasks", stack.api);
    let body = json!({ "title": "x" }).to_string();

    let none = send("POST", &url, &[], Some(("application/json", body.as_bytes())));
    assert_problem(&none, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    assert_problem(&send_json("POST", &url, &stack.token_with(&user, 3600, "wrong-key"), &json!({ "title": "x" })), 401);
    assert_problem(
        &send_json(
            "POST",
            &url,
            &stack.token_with(&user, -3600, "DEVELOPMENT-ONLY-local-stack-jwt-key-not-a-real-secret"),
            &json!({ "title": "x" }),
        ),
        401,
    );
    assert_problem(&send_json("POST", &url, "garbage", &json!({ "title": "x" })), 401);
    assert_problem(&send_json("POST", &url, &stack.token("someone-else"), &json!({ "title": "x" })), 403);
    assert_problem(&get(&url, &stack.token("someone-else")), 403);
    assert_problem(&get(&format!("{}/audit/{user}", stack.audit), &stack.token("someone-else")), 403);
    assert_no_tasks(&stack, &user);
}

#[test]
fn bad_bodies_are_4xx_naming_the_field_and_write_nothing() {
    let stack = Stack::get();
    let user = fresh_user("input");
    let token = stack.token(&user);
    let auth = format!("Bearer {token}");
    let url = format!("{}/api/{user}/tasks", stack.api);
    let post = |content_type: &str, body: &[u8]| send("POST", &url, &[("authorization", &auth)], Some((content_type, body)));

    assert_problem(&post("application/json", b"{\"title\":"), 400);
    assert_problem(&post("text/plain", br#"{"title":"x"}"#), 415);
    assert_problem(&post("application/json", &vec![b' '; 70 * 1024]), 413);
    for (body, field, rule) in [
        (json!({ "title": "   " }), "title", "too_short"),
        (json!({ "title": "x".repeat(201) }), "title", "too_long"),
        (json!({ "title": 42 }), "title", "format"),
        (json!({}), "title", "required"),
        (json!({ "title": "x", "owner": "mallory" }), "owner", "unknown_field"),
    ] {
        let reply = post("application/json", body.to_string().as_bytes());
        assert_problem(&reply, 422);
        assert_eq!((reply.json["field"].as_str(), reply.json["rule"].as_str()), (Some(field), Some(rule)), "{body}");
    }
    assert_no_tasks(&stack, &user);
}

#[test]
fn unknown_routes_and_methods_are_problems_too() {
    let stack = Stack::get();
    let user = fresh_user("routes");
    let auth = format!("Bearer {}", stack.token(&user));
    assert_problem(&send("GET", &format!("{}/api/{user}/nope", stack.api), &[("authorization", &auth)], None), 404);
    assert_problem(&send("DELETE", &format!("{}/api/{user}/tasks", stack.api), &[("authorization", &auth)], None), 405);
    assert_no_tasks(&stack, &user);
}
