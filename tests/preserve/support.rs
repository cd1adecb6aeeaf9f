//! What tests/preserve.rs needs from outside capsule: the standard validators (found,
//! or skipped with one line) and a stand-in for DataCite's REST API.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::common::{find_tool, skip_or_fail};

/// A Python module, or a skip line (a failure under CI).
pub fn python_has(module: &str, package: &str) -> bool {
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    found
        || skip_or_fail(
            &format!("needs the Python module {module}"),
            &format!("{module} is not installed"),
            &format!("install it: pip install {package}"),
        )
}

/// An installed command-line tool, or a skip line (a failure under CI).
pub fn pip_tool(names: &[&str], package: &str) -> Option<PathBuf> {
    names.iter().find_map(|n| find_tool(n)).or_else(|| {
        skip_or_fail(
            &format!("needs {}", names[0]),
            &format!("{} is not installed", names[0]),
            &format!("install it: pip install {package}"),
        );
        None
    })
}

/// Runs rocrate-validator without a network: rdflib and the validator fetch the
/// RO-Crate JSON-LD context from w3id.org; here it is read from the copy the `rocrate`
/// package ships (RO-Crate 1.3's context, whose terms include every 1.2 term).
pub const ROC_OFFLINE: &str = r#"
import json, os, sys
import rocrate
import rdflib.plugins.shared.jsonld.context as ctx
from rocrate_validator.utils import http
path = os.path.join(os.path.dirname(rocrate.__file__), "data", "ro-crate.jsonld")
CONTEXT = {"@context": json.load(open(path))["@context"]}
original = ctx.source_to_json
def local(source, *args, **kwargs):
    if isinstance(source, str) and source.startswith("https://w3id.org/ro/crate/"):
        return CONTEXT, None
    return original(source, *args, **kwargs)
ctx.source_to_json = local
class Answer:
    status_code = 200
    headers = {"Content-Type": "application/ld+json"}
    def json(self):
        return CONTEXT
def get(self, url, *args, **kwargs):
    if url.startswith("https://w3id.org/ro/crate/"):
        return Answer()
    return self.__getattr__("get")(url, *args, **kwargs)
http.HttpRequester.get = get
from rocrate_validator.cli import cli
sys.argv = ["rocrate-validator"] + sys.argv[1:]
sys.exit(cli())
"#;

/// A DataCite stand-in: the part of the REST API `capsule doi` uses.
#[derive(Default)]
pub struct DataCite {
    /// (method, path, status) of every request.
    pub log: Vec<(String, String, u16)>,
    /// DOI -> state.
    pub dois: BTreeMap<String, String>,
    /// PUT bodies by DOI (the last one).
    pub metadata: BTreeMap<String, Value>,
    /// Every accepted PUT: the DOI and its `event`, if any.
    pub updates: Vec<(String, Option<String>)>,
    /// Answer the next request only after this long.
    pub slow_once: bool,
    /// Refuse the next PUT with a validation error.
    pub reject_put_once: bool,
}

pub fn start_datacite(password: &str) -> (u16, Arc<Mutex<DataCite>>, Arc<tiny_http::Server>) {
    use base64::Engine;
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let port = server.server_addr().to_ip().unwrap().port();
    let state = Arc::new(Mutex::new(DataCite::default()));
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("TEST.CAPSULE:{password}"))
    );
    let (srv, st) = (server.clone(), state.clone());
    std::thread::spawn(move || {
        for mut request in srv.incoming_requests() {
            let mut body = String::new();
            let _ = request.as_reader().read_to_string(&mut body);
            let method = request.method().to_string();
            let path = request.url().to_string();
            let auth = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Authorization"))
                .map(|h| h.value.to_string());
            let slow = std::mem::take(&mut st.lock().unwrap().slow_once);
            if slow {
                std::thread::sleep(std::time::Duration::from_millis(2500));
            }
            let (status, answer) = {
                let mut s = st.lock().unwrap();
                let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let doi = body["data"]["attributes"]["doi"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let result = if auth.as_deref() != Some(expected.as_str()) {
                    (
                        401,
                        json!({"errors": [{"status": "401", "title": "Bad credentials."}]}),
                    )
                } else if method == "POST" && path == "/dois" {
                    if s.dois.contains_key(&doi) {
                        (
                            422,
                            json!({"errors": [{"source": "doi", "title": "This DOI has already been taken", "uid": doi}]}),
                        )
                    } else {
                        s.dois.insert(doi.clone(), "draft".into());
                        (
                            201,
                            json!({"data": {"id": doi, "type": "dois", "attributes": {"doi": doi, "state": "draft"}}}),
                        )
                    }
                } else if method == "PUT" && path.starts_with("/dois/") {
                    let target = path["/dois/".len()..].to_string();
                    if std::mem::take(&mut s.reject_put_once) {
                        (
                            422,
                            json!({"errors": [{"source": "creators", "title": "can't be blank"}]}),
                        )
                    } else if !s.dois.contains_key(&target) || target != doi {
                        (
                            404,
                            json!({"errors": [{"status": "404", "title": "The resource you are looking for doesn't exist."}]}),
                        )
                    } else {
                        // DataCite's state machine: publish -> findable, hide ->
                        // registered (only from findable), none: metadata only.
                        let event = body["data"]["attributes"]["event"]
                            .as_str()
                            .map(str::to_string);
                        let state = s.dois[&target].clone();
                        let next = match (event.as_deref(), state.as_str()) {
                            (Some("publish"), _) => Some("findable"),
                            (Some("hide"), "findable") => Some("registered"),
                            (Some("register"), "draft") => Some("registered"),
                            (None, _) => Some(state.as_str()),
                            _ => None,
                        }
                        .map(str::to_string);
                        match next {
                            Some(next) => {
                                s.dois.insert(target.clone(), next.clone());
                                s.metadata
                                    .insert(target.clone(), body["data"]["attributes"].clone());
                                s.updates.push((target.clone(), event));
                                (
                                    200,
                                    json!({"data": {"id": target, "type": "dois", "attributes": {"state": next}}}),
                                )
                            }
                            None => (
                                422,
                                json!({"errors": [{"source": "event", "title": format!("Cannot {} a {state} DOI", event.unwrap_or_default())}]}),
                            ),
                        }
                    }
                } else {
                    (404, json!({"errors": [{"title": "not found"}]}))
                };
                s.log.push((method, path, result.0));
                result
            };
            let response = tiny_http::Response::from_string(answer.to_string())
                .with_status_code(status)
                .with_header(
                    tiny_http::Header::from_bytes("Content-Type", "application/vnd.api+json")
                        .unwrap(),
                );
            let _ = request.respond(response);
        }
    });
    (port, state, server)
}
