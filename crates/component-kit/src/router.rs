//! The one router of every component: it finds the path first, then the method,
//! so a path answers a method it does not take (`TRACE` included) with a 405
//! problem naming the path's methods in `Allow`, and a path no route has with a
//! 404 problem. `HEAD` is served by the path's `GET` handler.

use std::future::Future;
use std::pin::Pin;

use spin_sdk::http::{IntoResponse, Method, Params, Request, Response};

use crate::Problem;

type Handler = Box<dyn Fn(Request, Params) -> Pin<Box<dyn Future<Output = Response>>>>;
/// The methods of one path, each with its handler (`None`: answered before the router).
type Methods = Vec<(Method, Option<Handler>)>;

/// Routes by path pattern (Spin's syntax: `/api/:user_id/tasks`, a trailing `*`),
/// each with the methods it takes.
#[derive(Default)]
pub struct Routes {
    paths: Vec<(String, Methods)>,
}

impl Routes {
    /// No routes yet.
    pub fn new() -> Self {
        Routes::default()
    }

    /// `handler` answers `method` on `path`.
    pub fn on<F, Fut, O>(&mut self, method: Method, path: &str, handler: F) -> &mut Self
    where
        F: Fn(Request, Params) -> Fut + 'static,
        Fut: Future<Output = O> + 'static,
        O: IntoResponse + 'static,
    {
        let handler: Handler = Box::new(move |req, params| {
            let fut = handler(req, params);
            Box::pin(async move { fut.await.into_response() })
        });
        self.methods(path).push((method, Some(handler)));
        self
    }

    /// `method` on `path` is answered before the router runs (a streamed
    /// response); it still counts for `Allow`.
    pub fn served_elsewhere(&mut self, method: Method, path: &str) -> &mut Self {
        self.methods(path).push((method, None));
        self
    }

    /// `GET` on `path`.
    pub fn get<F, Fut, O>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Fn(Request, Params) -> Fut + 'static,
        Fut: Future<Output = O> + 'static,
        O: IntoResponse + 'static,
    {
        self.on(Method::Get, path, handler)
    }

    /// `POST` on `path`.
    pub fn post<F, Fut, O>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Fn(Request, Params) -> Fut + 'static,
        Fut: Future<Output = O> + 'static,
        O: IntoResponse + 'static,
    {
        self.on(Method::Post, path, handler)
    }

    fn methods(&mut self, path: &str) -> &mut Methods {
        match self.paths.iter().position(|(p, _)| p == path) {
            Some(i) => &mut self.paths[i].1,
            None => {
                self.paths.push((path.to_owned(), Vec::new()));
                &mut self.paths.last_mut().expect("just pushed").1
            }
        }
    }

    /// The route pattern that serves `path` (Spin's precedence: the most
    /// specific pattern wins) and the captured parameters.
    fn find(&self, path: &str) -> Option<(usize, Params)> {
        let mut finder = routefinder::Router::new();
        for (i, (pattern, _)) in self.paths.iter().enumerate() {
            finder.add(pattern.as_str(), i).expect("route patterns are valid");
        }
        finder.best_match(path).map(|m| (*m.handler(), m.captures().into_owned()))
    }

    /// The `Allow` value of `path`, or `None` when no route has it.
    pub fn allow(&self, path: &str) -> Option<String> {
        self.find(path).map(|(i, _)| self.allow_of(i))
    }

    /// The `Allow` value of the route at `i`.
    fn allow_of(&self, i: usize) -> String {
        let mut names: Vec<String> = Vec::new();
        for (method, handler) in &self.paths[i].1 {
            names.push(method.to_string());
            if *method == Method::Get && handler.is_some() {
                names.push(Method::Head.to_string());
            }
        }
        names.join(", ")
    }

    /// Answers `req`: its route's handler, else a 405 or 404 problem.
    pub async fn handle(&self, req: Request) -> Response {
        let Some((i, params)) = self.find(req.path()) else {
            return Problem::not_found("no such route").into_response();
        };
        let wanted = if *req.method() == Method::Head { Method::Get } else { req.method().clone() };
        match self.paths[i].1.iter().find(|(m, _)| *m == wanted) {
            Some((_, Some(handler))) => handler(req, params).await,
            _ => self.method_not_allowed(i),
        }
    }

    fn method_not_allowed(&self, i: usize) -> Response {
        let allow = self.allow_of(i);
        let mut response = Problem::new(405, "Method Not Allowed", format!("this route takes {allow}")).into_response();
        response.set_header("allow", allow);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Routes {
        let mut routes = Routes::new();
        routes
            .get("/api/:user_id/tasks", |_, _| async { Response::new(200, "list") })
            .post("/api/:user_id/tasks", |_, _| async { Response::new(201, "created") })
            .post("/api/:user_id/tasks/quick", |_, _| async { Response::new(201, "quick") })
            .get("/api/:user_id/tasks/:id", |_, p: Params| async move { Response::new(200, p.get("id").unwrap_or_default().to_owned()) })
            .on(Method::Delete, "/api/:user_id/tasks/:id", |_, _| async { Response::new(204, "") })
            .served_elsewhere(Method::Get, "/api/:user_id/stream");
        routes
    }

    fn send(routes: &Routes, method: Method, path: &str) -> Response {
        let req = Request::builder().method(method).uri(path).build();
        // The handlers here never wait: one poll finishes them.
        let mut fut = std::pin::pin!(routes.handle(req));
        match fut.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
            std::task::Poll::Ready(response) => response,
            std::task::Poll::Pending => panic!("a test handler waited"),
        }
    }

    fn header(response: &Response, name: &str) -> String {
        response.header(name).and_then(|v| v.as_str()).unwrap_or_default().to_owned()
    }

    #[test]
    fn a_route_answers_its_methods_and_head_is_get() {
        let routes = routes();
        assert_eq!(*send(&routes, Method::Get, "/api/alice/tasks").status(), 200);
        assert_eq!(*send(&routes, Method::Post, "/api/alice/tasks").status(), 201);
        assert_eq!(*send(&routes, Method::Head, "/api/alice/tasks").status(), 200);
        let task = send(&routes, Method::Get, "/api/alice/tasks/abc");
        assert_eq!(task.body(), b"abc", "parameters are captured");
    }

    #[test]
    fn the_most_specific_path_decides_the_methods() {
        let routes = routes();
        // `quick` is a literal segment: not the task `:id` route, whose GET and DELETE do not apply.
        let response = send(&routes, Method::Get, "/api/alice/tasks/quick");
        assert_eq!(*response.status(), 405);
        assert_eq!(header(&response, "allow"), "POST");
        assert_eq!(routes.allow("/api/alice/tasks/7").as_deref(), Some("GET, HEAD, DELETE"));
    }

    #[test]
    fn an_unsupported_method_is_a_405_problem_with_allow() {
        let routes = routes();
        for method in [Method::Trace, Method::Put, Method::Patch, Method::Options, Method::Other("PROPFIND".into())] {
            let response = send(&routes, method.clone(), "/api/alice/tasks");
            assert_eq!(*response.status(), 405, "{method}");
            assert_eq!(header(&response, "allow"), "GET, HEAD, POST");
            assert_eq!(header(&response, "content-type"), "application/problem+json");
            let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
            assert_eq!(body["status"], 405);
        }
        // A route answered elsewhere counts for Allow; other methods are refused.
        let response = send(&routes, Method::Post, "/api/alice/stream");
        assert_eq!((*response.status(), header(&response, "allow")), (405, "GET".to_owned()));
    }

    #[test]
    fn a_path_no_route_has_is_a_404_problem() {
        let response = send(&routes(), Method::Trace, "/nowhere");
        assert_eq!(*response.status(), 404);
        assert_eq!(header(&response, "content-type"), "application/problem+json");
    }
}
