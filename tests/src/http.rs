//! A small blocking HTTP/1.1 client for the tests of the HTTP listener: requests on a keep-alive
//! connection, responses read by their `Content-Length`, and Server-Sent Events read one by one,
//! each wait bounded by [`DEADLINE`].

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Instant;

use crate::DEADLINE;
use crate::duplex::{Duplex, https_client_config};

/// One connection to the HTTP (or HTTPS) listener.
#[derive(Debug)]
pub struct HttpConn {
    stream: Duplex,
    /// What has arrived and is not yet taken.
    buf: Vec<u8>,
}

/// A response: its status, head (status line and headers) and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn tcp_to(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the HTTP listener");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    stream
}

/// One event of an event stream: its `id`, `event` and `data` fields (a comment: `data` empty,
/// `comment` set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub comment: bool,
}

impl HttpConn {
    /// Connects to `addr`.
    ///
    /// # Panics
    /// If it cannot.
    pub fn connect(addr: SocketAddr) -> Self {
        Self {
            stream: Duplex::Plain(tcp_to(addr)),
            buf: Vec::new(),
        }
    }

    /// Connects to the HTTPS listener at `addr`, trusting the CA in `ca`; the TLS handshake
    /// happens with the first request.
    ///
    /// # Panics
    /// If it cannot connect.
    pub fn connect_tls(addr: SocketAddr, ca: &Path) -> Self {
        let stream = Duplex::tls(tcp_to(addr), https_client_config(ca)).expect("start TLS");
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// The stream under it (to ask TLS what it agreed on).
    pub fn stream(&self) -> &Duplex {
        &self.stream
    }

    /// Sends raw bytes.
    ///
    /// # Panics
    /// If the write fails.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.send_raw_result(bytes).expect("send");
    }

    /// Sends raw bytes and flushes them (under TLS, completing the handshake first).
    ///
    /// # Errors
    /// The write, or the TLS handshake, fails.
    pub fn send_raw_result(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Sends a request with these extra header lines (each ending `\r\n`) and body.
    pub fn send(&mut self, method: &str, target: &str, headers: &str, body: &[u8]) {
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n{headers}\r\n",
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.send_raw(&request);
    }

    /// Sends a request and reads its response.
    pub fn call(&mut self, method: &str, target: &str, headers: &str, body: &[u8]) -> HttpResponse {
        self.send(method, target, headers, body);
        self.response()
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        let n = self
            .stream
            .read(&mut chunk)
            .expect("read within the deadline");
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// The head of the next response (status line and headers), once whole.
    ///
    /// # Panics
    /// If the connection closes first.
    pub fn response_head(&mut self) -> (u16, String) {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end + 4]).into_owned();
                self.buf.drain(..end + 4);
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .expect("a status line");
                return (status, head);
            }
            assert!(self.fill() > 0, "closed before a whole response head");
        }
    }

    /// The next response, read by its `Content-Length`.
    ///
    /// # Panics
    /// If it has none, or the connection closes first.
    pub fn response(&mut self) -> HttpResponse {
        let (status, head) = self.response_head();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.trim().parse().ok())
            .expect("a Content-Length");
        while self.buf.len() < len {
            assert!(self.fill() > 0, "closed before a whole body");
        }
        let body = self.buf.drain(..len).collect();
        HttpResponse { status, head, body }
    }

    /// The next event of an event stream whose head has been read.
    ///
    /// # Panics
    /// If none comes within [`DEADLINE`].
    pub fn event(&mut self) -> SseEvent {
        let start = Instant::now();
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                let mut event = SseEvent::default();
                for line in text.lines() {
                    if line.starts_with(':') {
                        event.comment = true;
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        event.id = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event.event = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data.push_str(v);
                    }
                }
                return event;
            }
            assert!(start.elapsed() < DEADLINE, "no event in time");
            assert!(self.fill() > 0, "the event stream ended");
        }
    }

    /// The next event that carries a Message (skipping the session event, `retry:` and comments).
    pub fn message_event(&mut self) -> SseEvent {
        loop {
            let e = self.event();
            if e.data.contains("\"topic\"") {
                return e;
            }
        }
    }
}

/// The string value of `"name":"..."` in a JSON body (enough for the tests' flat fields).
pub fn json_str(body: &str, name: &str) -> Option<String> {
    let at = body.find(&format!("\"{name}\":\""))? + name.len() + 4;
    let end = body[at..].find('"')?;
    Some(body[at..at + end].to_string())
}
