//! A small real SMTP server on loopback for the tests: it speaks RFC 5321 (EHLO,
//! MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT) to lettre over TCP, keeps
//! what it receives, and can be told to hang or to refuse, or be stopped and started
//! again on the same port — what a test of a flaky mail server needs. (mailin-embedded
//! was considered: its server cannot be stopped, and its TLS pulls in aws-lc.)

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Accept every mail.
    Accept,
    /// Accept the connection and never say anything.
    Hang,
    /// Answer `reply` (e.g. "451 4.3.0 try later") to MAIL FROM.
    RejectMail(String),
    /// Answer `reply` to RCPT TO.
    RejectRcpt(String),
    /// Answer RCPT TO of each listed address with its reply (e.g. "550 5.1.1 no
    /// such user"), and accept everyone else.
    RefuseSome(Vec<(String, String)>),
    /// Accept the mail, then wait this long before answering the final dot (a slow
    /// server that has already queued it).
    SlowDataEnd(Duration),
}

/// One mail as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub rcpt: Vec<String>,
    pub data: String,
}

impl Received {
    /// The value of a header (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut lines = head.split("\r\n").peekable();
        while let Some(line) = lines.next() {
            let Some((key, rest)) = line.split_once(':') else {
                continue;
            };
            if key.eq_ignore_ascii_case(name) {
                let mut value = rest.trim().to_string();
                while let Some(next) = lines.peek() {
                    if !next.starts_with([' ', '\t']) {
                        break;
                    }
                    value.push(' ');
                    value.push_str(next.trim());
                    lines.next();
                }
                return Some(value);
            }
        }
        None
    }

    pub fn message_id(&self) -> String {
        self.header("Message-ID").expect("a Message-ID")
    }
}

struct Shared {
    behaviour: Mutex<Behaviour>,
    received: Mutex<Vec<Received>>,
    connections: Mutex<usize>,
}

/// A running server.
pub struct SmtpServer {
    pub port: u16,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SmtpServer {
    /// A server on a free loopback port.
    pub fn start(behaviour: Behaviour) -> SmtpServer {
        Self::start_on(0, behaviour)
    }

    /// A server on `port` (0: any free port).
    pub fn start_on(port: u16, behaviour: Behaviour) -> SmtpServer {
        let listener = bind(port);
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(behaviour),
            received: Mutex::new(Vec::new()),
            connections: Mutex::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = shared.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                listener.set_nonblocking(true).unwrap();
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream.set_nonblocking(false).unwrap();
                            *shared.connections.lock().unwrap() += 1;
                            let shared = shared.clone();
                            let stop = stop.clone();
                            std::thread::spawn(move || {
                                let _ = session(stream, &shared, &stop);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        SmtpServer {
            port,
            shared,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        *self.shared.connections.lock().unwrap()
    }

    /// Waits until at least `n` mails arrived (or panics after `timeout`).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} mails within {timeout:?}, got {}",
                received.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops listening; the port is free again afterwards.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bind(port: u16) -> TcpListener {
    // The port of a stopped server may linger for a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => return listener,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("cannot listen on 127.0.0.1:{port}: {e}"),
        }
    }
}

fn session(stream: TcpStream, shared: &Shared, stop: &AtomicBool) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let behaviour = shared.behaviour.lock().unwrap().clone();
    if behaviour == Behaviour::Hang {
        // Say nothing until the client gives up (or the server stops).
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        return Ok(());
    }
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut say = |text: &str| writer.write_all(format!("{text}\r\n").as_bytes());
    say("220 capsule-test ESMTP ready")?;
    let mut from = String::new();
    let mut rcpt = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                say("250-capsule-test greets you")?;
                say("250-8BITMIME")?;
                say("250 SMTPUTF8")?;
            }
            "HELO" => say("250 capsule-test")?,
            "MAIL" => match &behaviour {
                Behaviour::RejectMail(reply) => say(reply)?,
                _ => {
                    from = address(command);
                    rcpt.clear();
                    say("250 2.1.0 OK")?;
                }
            },
            "RCPT" => match &behaviour {
                Behaviour::RejectRcpt(reply) => say(reply)?,
                Behaviour::RefuseSome(list)
                    if list
                        .iter()
                        .any(|(a, _)| a.eq_ignore_ascii_case(&address(command))) =>
                {
                    let (_, reply) = list
                        .iter()
                        .find(|(a, _)| a.eq_ignore_ascii_case(&address(command)))
                        .unwrap();
                    say(reply)?
                }
                _ => {
                    rcpt.push(address(command));
                    say("250 2.1.5 OK")?;
                }
            },
            "DATA" => {
                say("354 End data with <CR><LF>.<CR><LF>")?;
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if reader.read_line(&mut l)? == 0 {
                        return Ok(());
                    }
                    if l == ".\r\n" || l == ".\n" {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                }
                shared.received.lock().unwrap().push(Received {
                    from: from.clone(),
                    rcpt: std::mem::take(&mut rcpt),
                    data,
                });
                if let Behaviour::SlowDataEnd(delay) = &behaviour {
                    std::thread::sleep(*delay);
                }
                say("250 2.0.0 OK: queued")?;
            }
            "RSET" => {
                rcpt.clear();
                say("250 OK")?;
            }
            "NOOP" => say("250 OK")?,
            "QUIT" => {
                say("221 Bye")?;
                return Ok(());
            }
            _ => say("502 5.5.2 command not recognised")?,
        }
    }
}

/// The address between `<` and `>` of `MAIL FROM:<a>` or `RCPT TO:<a>`.
fn address(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(a, _)| a.to_string())
        .unwrap_or_default()
}
