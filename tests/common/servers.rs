//! Real git servers on 127.0.0.1 for tests that must see identity come from the server:
//! `git http-backend` behind nginx + fcgiwrap with basic auth (`REMOTE_USER`), and
//! gitolite over a private sshd (`GL_USER`).
//!
//! Each server runs from its own temp folder (config, keys, pid, logs), as child
//! processes of the test that are killed on drop; nothing is installed or started
//! system-wide. `start` returns `None` (after one visible "skipped:" line) when a tool
//! is missing, and panics instead under `CI`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use tempfile::TempDir;

use super::{find_tool, git, require_tool, run_ok, stdout};

/// A free loopback port (a race with other processes is possible but harmless: the
/// server then fails to start and the test says so).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A child process killed (with its process group) when dropped.
pub struct Running {
    child: Child,
    name: &'static str,
}

impl Running {
    pub fn spawn(name: &'static str, cmd: &mut Command) -> Running {
        use std::os::unix::process::CommandExt;
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Running { child, name }
    }

    /// Waits until `port` accepts connections; panics with `log` if the process
    /// exits first.
    pub fn wait_for_port(&mut self, port: u16, log: &Path) {
        for _ in 0..400 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            self.assert_running(log);
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!(
            "{} did not listen on 127.0.0.1:{port}: {}",
            self.name,
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }

    fn wait_for_file(&mut self, file: &Path, log: &Path) {
        for _ in 0..400 {
            if file.exists() {
                return;
            }
            self.assert_running(log);
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("{} did not create {}", self.name, file.display());
    }

    fn assert_running(&mut self, log: &Path) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}): {}",
                self.name,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // The whole group: fcgiwrap and sshd fork children of their own.
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    stdout(&run_ok(Command::new("id").arg("-u"))).trim() == "0"
}

/// `git http-backend` behind nginx (basic auth from an htpasswd file) and fcgiwrap,
/// serving every repository under `root` at `http://127.0.0.1:<port>/git/<repo>`.
pub struct HttpGit {
    // Field order is drop order: nginx first, then fcgiwrap, then the folder.
    _nginx: Running,
    _fcgiwrap: Running,
    pub port: u16,
    pub dir: TempDir,
}

impl HttpGit {
    /// `users` are (name, password) pairs for the htpasswd file.
    pub fn start(root: &Path, users: &[(&str, &str)]) -> Option<HttpGit> {
        if !(require_tool("nginx", "nginx")
            && require_tool("fcgiwrap", "fcgiwrap")
            && require_tool("openssl", "openssl"))
        {
            return None;
        }
        let dir = TempDir::new().unwrap();
        let d = dir.path();
        let mut htpasswd = String::new();
        for (user, password) in users {
            let hash = run_ok(Command::new("openssl").args(["passwd", "-apr1", password]));
            htpasswd.push_str(&format!("{user}:{}\n", stdout(&hash).trim()));
        }
        std::fs::write(d.join("htpasswd"), htpasswd).unwrap();
        std::fs::create_dir_all(d.join("tmp")).unwrap();

        let socket = d.join("fcgiwrap.sock");
        let fcgi_log = d.join("fcgiwrap.log");
        // A clean environment: what the CGI (and so the hook) sees comes from nginx.
        let mut fcgiwrap = Running::spawn(
            "fcgiwrap",
            Command::new(find_tool("fcgiwrap").unwrap())
                .env_clear()
                .env("PATH", "/usr/local/bin:/usr/bin:/bin")
                .args(["-c", "2", "-s"])
                .arg(format!("unix:{}", socket.display()))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&fcgi_log).unwrap()),
        );
        fcgiwrap.wait_for_file(&socket, &fcgi_log);

        let port = free_port();
        let exec_path = stdout(&run_ok(git(root).arg("--exec-path")))
            .trim()
            .to_string();
        let p = |name: &str| d.join(name).display().to_string();
        // master_process off: one process, so killing it stops the server. Running as
        // root, nginx then keeps root's identity and can reach the private socket.
        let config = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {pid};
error_log {error_log} info;
events {{ worker_connections 64; }}
http {{
    access_log {access_log};
    client_body_temp_path {tmp}/body;
    fastcgi_temp_path {tmp}/fastcgi;
    proxy_temp_path {tmp}/proxy;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        location ~ ^/git(/.*)$ {{
            auth_basic "capsule test archive";
            auth_basic_user_file {htpasswd};
            fastcgi_pass unix:{socket};
            fastcgi_param SCRIPT_FILENAME {exec_path}/git-http-backend;
            fastcgi_param GIT_PROJECT_ROOT {root};
            fastcgi_param GIT_HTTP_EXPORT_ALL "";
            fastcgi_param PATH_INFO $1;
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param CONTENT_TYPE $content_type;
            fastcgi_param CONTENT_LENGTH $content_length;
            fastcgi_param SERVER_PROTOCOL $server_protocol;
            fastcgi_param GATEWAY_INTERFACE CGI/1.1;
            fastcgi_param REMOTE_ADDR $remote_addr;
            fastcgi_param REMOTE_USER $remote_user;
            fastcgi_param PATH /usr/local/bin:/usr/bin:/bin;
            fastcgi_param GIT_CONFIG_NOSYSTEM 1;
            fastcgi_param NO_COLOR 1;
        }}
    }}
}}
"#,
            pid = p("nginx.pid"),
            error_log = p("error.log"),
            access_log = p("access.log"),
            tmp = p("tmp"),
            htpasswd = p("htpasswd"),
            socket = socket.display(),
            root = root.display(),
        );
        let nginx = spawn_nginx(d, port, &config);
        Some(HttpGit {
            _nginx: nginx,
            _fcgiwrap: fcgiwrap,
            port,
            dir,
        })
    }

    /// The URL of `repo` without credentials.
    pub fn url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/git/{repo}", self.port)
    }

    /// The URL of `repo` with basic-auth credentials in it.
    pub fn url_as(&self, user: &str, password: &str, repo: &str) -> String {
        format!(
            "http://{user}:{password}@127.0.0.1:{}/git/{repo}",
            self.port
        )
    }

    /// The status line of a plain GET of `path` (e.g. `/git/a.git/info/refs`), with
    /// optional `user:password` basic auth.
    pub fn status_of(&self, path: &str, auth: Option<&str>) -> String {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n");
        if let Some(auth) = auth {
            request.push_str(&format!("Authorization: Basic {}\r\n", base64(auth)));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.lines().next().unwrap_or("").to_string()
    }
}

fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes `config` as `d/nginx.conf` and runs nginx on it in the foreground (its
/// stderr in `d/stderr.log`, its error log in `d/error.log`), once it answers on `port`.
fn spawn_nginx(d: &Path, port: u16, config: &str) -> Running {
    std::fs::write(d.join("nginx.conf"), config).unwrap();
    let error_log = d.join("error.log");
    let mut nginx = Running::spawn(
        "nginx",
        Command::new(find_tool("nginx").unwrap())
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .arg("-e")
            .arg(&error_log)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("stderr.log")).unwrap()),
    );
    nginx.wait_for_port(port, &error_log);
    nginx
}

/// nginx alone, run from a temp folder with the `http { }` block that `http` writes
/// for its port and folder (temp paths are set already); killed on drop. For tests
/// that put a configuration of their own in front of a site.
pub struct Nginx {
    _nginx: Running,
    pub port: u16,
    pub dir: TempDir,
}

impl Nginx {
    pub fn start(http: impl FnOnce(u16, &Path) -> String) -> Option<Nginx> {
        if !require_tool("nginx", "nginx") {
            return None;
        }
        let dir = TempDir::new().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("tmp")).unwrap();
        let port = free_port();
        let body = http(port, d);
        let p = |name: &str| d.join(name).display().to_string();
        let config = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {pid};\nerror_log {error_log} info;\nevents {{ worker_connections 64; }}\nhttp {{\n    client_body_temp_path {tmp}/body;\n    fastcgi_temp_path {tmp}/fastcgi;\n    proxy_temp_path {tmp}/proxy;\n    uwsgi_temp_path {tmp}/uwsgi;\n    scgi_temp_path {tmp}/scgi;\n{body}\n}}\n",
            pid = p("nginx.pid"),
            error_log = p("error.log"),
            tmp = p("tmp"),
        );
        let nginx = spawn_nginx(d, port, &config);
        Some(Nginx {
            _nginx: nginx,
            port,
            dir,
        })
    }

    /// A plain `GET` of `path` over HTTP/1.0 with extra header lines: the status,
    /// the header (lower-cased names) and the body.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        HttpResponse {
            status,
            headers,
            body: body.to_string(),
        }
    }
}

/// What [`Nginx::get`] received.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// gitolite under a temp HOME, reached over a private sshd on a loopback port.
///
/// sshd logs in as the account running the tests, with gitolite's own
/// `authorized_keys` (forced `gitolite-shell <user>` commands) and `HOME` pointing at
/// the temp HOME, so gitolite sets `GL_USER` from the key that connects.
pub struct Gitolite {
    _sshd: Running,
    pub port: u16,
    pub home: PathBuf,
    login: String,
    pub dir: TempDir,
}

impl Gitolite {
    /// Sets gitolite up with an `admin` key and one key per user (not yet in any
    /// repository's rules; see [`Gitolite::add_repo`]).
    pub fn start(users: &[&str]) -> Option<Gitolite> {
        if !(require_tool("gitolite", "gitolite3")
            && require_tool("sshd", "openssh-server")
            && require_tool("ssh", "openssh-client")
            && require_tool("ssh-keygen", "openssh-client"))
        {
            return None;
        }
        if is_root() && !Path::new("/run/sshd").is_dir() {
            // sshd started as root needs its privilege separation folder, which the
            // system service would create.
            super::skip_or_fail(
                "needs sshd",
                "/run/sshd does not exist",
                "create it: mkdir -p /run/sshd",
            );
            return None;
        }
        let dir = TempDir::new().unwrap();
        let d = dir.path();
        let home = d.join("home");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(d.join("keys")).unwrap();
        for name in users.iter().chain(&["admin", "stranger"]) {
            run_ok(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                    .arg(d.join("keys").join(name)),
            );
        }
        run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join("host_key")),
        );
        let gitolite = Gitolite::command_in(&home, "setup")
            .arg("-pk")
            .arg(d.join("keys/admin.pub"))
            .output()
            .unwrap();
        assert!(gitolite.status.success(), "gitolite setup: {gitolite:?}");
        for user in users {
            std::fs::copy(
                d.join("keys").join(format!("{user}.pub")),
                home.join(".gitolite/keydir").join(format!("{user}.pub")),
            )
            .unwrap();
        }

        let login = stdout(&run_ok(Command::new("id").arg("-un")))
            .trim()
            .to_string();
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {pid}\nAuthorizedKeysFile {home}/.ssh/authorized_keys\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nAllowUsers {login}\nSetEnv HOME={home}\nLogLevel VERBOSE\n",
            host_key = d.join("host_key").display(),
            pid = d.join("sshd.pid").display(),
            home = home.display(),
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let host_key = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        let mut fields = host_key.split_whitespace();
        std::fs::write(
            d.join("known_hosts"),
            format!(
                "[127.0.0.1]:{port} {} {}\n",
                fields.next().unwrap(),
                fields.next().unwrap()
            ),
        )
        .unwrap();
        let log = d.join("sshd.log");
        let mut sshd = Running::spawn(
            "sshd",
            Command::new(find_tool("sshd").unwrap())
                .env_clear()
                .env("PATH", "/usr/local/bin:/usr/bin:/bin")
                .args(["-D", "-e", "-f"])
                .arg(d.join("sshd_config"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap()),
        );
        sshd.wait_for_port(port, &log);
        let server = Gitolite {
            _sshd: sshd,
            port,
            home,
            login,
            dir,
        };
        Some(server)
    }

    /// `gitolite <subcommand>` as the server account sees it (HOME = the temp HOME).
    fn command_in(home: &Path, subcommand: &str) -> Command {
        let mut cmd = Command::new("gitolite");
        cmd.env_clear()
            .env("HOME", home)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .arg(subcommand);
        cmd
    }

    /// `gitolite <subcommand>` on this server.
    pub fn gitolite(&self, args: &[&str]) -> Output {
        let mut cmd = Gitolite::command_in(&self.home, args[0]);
        cmd.args(&args[1..]).output().unwrap()
    }

    /// The server-side path of repository `name`.
    pub fn repo_path(&self, name: &str) -> PathBuf {
        self.home.join("repositories").join(format!("{name}.git"))
    }

    /// Appends `rules` to gitolite.conf and runs `gitolite setup` again, as a server
    /// admin does (it recompiles the rules, rewrites authorized_keys and re-links
    /// gitolite's own hooks into every repository).
    pub fn configure(&self, rules: &str) {
        let conf = self.home.join(".gitolite/conf/gitolite.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str(rules);
        std::fs::write(&conf, text).unwrap();
        let out = self.gitolite(&["setup"]);
        assert!(out.status.success(), "gitolite setup: {out:?}");
    }

    pub fn url(&self, repo: &str) -> String {
        format!("ssh://{}@127.0.0.1:{}/{repo}", self.login, self.port)
    }

    /// The `GIT_SSH_COMMAND` that connects with `user`'s key and checks the host key.
    pub fn ssh_command(&self, user: &str) -> String {
        let d = self.dir.path();
        format!(
            "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={} -i {}",
            d.join("known_hosts").display(),
            d.join("keys").join(user).display()
        )
    }
}
