//! A CAP-like REST server on loopback for `capsule import cap`'s tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// A CAP-like REST server on loopback: routes by path and query, a bearer token, and
/// optionally a limit of answers after which it stops (the port then refuses). It
/// logs every request's URL and `Authorization` header.
/// Every request answered: its URL and its `Authorization` header.
type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

pub struct Cap {
    pub port: u16,
    routes: Arc<Mutex<HashMap<String, Answer>>>,
    log: Log,
}

#[derive(Clone)]
struct Answer {
    status: u16,
    body: Vec<u8>,
    location: Option<String>,
}

impl Cap {
    pub fn start(answers: Option<usize>) -> Cap {
        Cap::start_with(answers, Some("Bearer t0ken"))
    }

    /// Another server (file storage, or a host a link must not lead to): answers
    /// without asking for a token.
    pub fn start_open() -> Cap {
        Cap::start_with(None, None)
    }

    fn start_with(answers: Option<usize>, auth: Option<&'static str>) -> Cap {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let routes: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let log: Log = Arc::default();
        let (table, seen) = (routes.clone(), log.clone());
        std::thread::spawn(move || {
            for (served, request) in server.incoming_requests().enumerate() {
                if answers.is_some_and(|n| served >= n) {
                    break; // the server goes away: the listener is dropped with it
                }
                let given = request
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.as_str().to_string());
                seen.lock()
                    .unwrap()
                    .push((request.url().to_string(), given.clone()));
                let answer = if auth.is_some() && given.as_deref() != auth {
                    Answer {
                        status: 401,
                        body:
                            br#"{"message": "The server could not verify that you are authorized"}"#
                                .to_vec(),
                        location: None,
                    }
                } else {
                    table
                        .lock()
                        .unwrap()
                        .get(request.url())
                        .cloned()
                        .unwrap_or(Answer {
                            status: 404,
                            body: b"{}".to_vec(),
                            location: None,
                        })
                };
                let mut response =
                    tiny_http::Response::from_data(answer.body).with_status_code(answer.status);
                if let Some(to) = answer.location {
                    response.add_header(
                        tiny_http::Header::from_bytes("Location", to.as_bytes()).unwrap(),
                    );
                }
                let _ = request.respond(response);
            }
        });
        Cap { port, routes, log }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn answer(&self, path: &str, status: u16, body: &[u8], location: Option<String>) {
        self.routes.lock().unwrap().insert(
            path.into(),
            Answer {
                status,
                body: body.to_vec(),
                location,
            },
        );
    }

    pub fn route(&self, path: &str, body: Value) {
        self.answer(path, 200, body.to_string().as_bytes(), None);
    }

    /// The requests answered so far: URL and `Authorization` header.
    pub fn requests(&self) -> Vec<(String, Option<String>)> {
        self.log.lock().unwrap().clone()
    }
}
