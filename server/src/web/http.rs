//! HTTP/1.1 request heads (RFC 9112), read with `httparse` and bounded: the head's bytes, its
//! header count and (by the connection) the time it takes to arrive. Only what the routes use is
//! kept of a head; everything else is checked for syntax and dropped.

use std::fmt::Write;

/// The most bytes a request head may take, request line and headers together.
pub const MAX_HEAD_LEN: usize = 8 * 1024;
/// The most header lines a request may carry.
pub const MAX_HEADERS: usize = 48;

/// The cookie that may carry a connect token (docs/PROTOCOL.md section 11.4).
pub const TOKEN_COOKIE: &str = "framewire_token";

/// What was wrong with a request head: the status to answer with, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadError {
    /// The HTTP status code.
    pub status: u16,
    /// What was wrong, for the log and the response body.
    pub why: &'static str,
}

const fn bad(why: &'static str) -> HeadError {
    HeadError { status: 400, why }
}

/// The parts of a request head the routes look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent facts a head's lines state, not states of one machine"
)]
pub struct Head {
    /// The method, as sent (`GET`, `POST`, ...).
    pub method: String,
    /// The path, before any `?`.
    pub path: String,
    /// The query, after the `?` (empty when there is none).
    pub query: String,
    /// HTTP/1.1 (`true`) or HTTP/1.0.
    pub http11: bool,
    /// Whether the client asked for the connection to stay open (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// A `Host` header was sent.
    pub has_host: bool,
    /// Its value (`host[:port]`).
    pub host: Option<String>,
    /// `Origin`: the page a browser's request comes from (`scheme://host[:port]`, or `null`).
    pub origin: Option<String>,
    /// `Sec-Fetch-Site`: a browser's word on where the request comes from (`same-origin`,
    /// `same-site`, `cross-site`, `none`).
    pub fetch_site: Option<String>,
    /// `Upgrade: websocket`.
    pub upgrade_websocket: bool,
    /// `Connection` names `upgrade`.
    pub connection_upgrade: bool,
    /// `Sec-WebSocket-Key`.
    pub websocket_key: Option<String>,
    /// `Sec-WebSocket-Version`.
    pub websocket_version: Option<String>,
    /// The subprotocols `Sec-WebSocket-Protocol` offers, in order.
    pub websocket_protocols: Vec<String>,
    /// `Content-Length`, if sent.
    pub content_length: Option<u64>,
    /// A `Transfer-Encoding` was sent (bodies are read by length only).
    pub transfer_encoding: bool,
    /// The credentials of `Authorization: Bearer ...` (a connect token in hex).
    pub bearer: Option<String>,
    /// The value of the cookie `framewire_token` (a connect token in hex).
    pub cookie_token: Option<String>,
    /// `Last-Event-ID`: where a reconnecting `EventSource` left off.
    pub last_event_id: Option<String>,
}

impl Head {
    /// Whether a browser says the request comes from a page of another origin than this
    /// server's: by `Sec-Fetch-Site` when it is sent (anything but `same-origin` or `none`, a
    /// typed address), else by an `Origin` that is not `http://` or `https://` followed by the
    /// `Host`. A request with neither (not a browser's, or a plain navigation) is not.
    pub fn is_cross_origin(&self) -> bool {
        if let Some(site) = &self.fetch_site {
            return site != "same-origin" && site != "none";
        }
        let Some(origin) = &self.origin else {
            return false;
        };
        let here = self.host.as_deref().unwrap_or("");
        let page = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        page.is_none_or(|page| !page.eq_ignore_ascii_case(here) || here.is_empty())
    }

    /// Whether the request carries a body.
    pub fn has_body(&self) -> bool {
        self.transfer_encoding || self.content_length.is_some_and(|n| n > 0)
    }
}

/// Reads a request head from the front of `buf`: `Ok(Some((head, len)))` once the whole head
/// (`len` bytes, the blank line included) is there, `Ok(None)` while more is needed.
///
/// # Errors
/// A head that is malformed (400), too large or with too many headers (431), of an HTTP version
/// other than 1.0 and 1.1 (505), or with headers that contradict each other (400).
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let status = request.parse(buf).map_err(|e| match e {
        httparse::Error::TooManyHeaders => HeadError {
            status: 431,
            why: "too many header lines",
        },
        httparse::Error::Version => HeadError {
            status: 505,
            why: "only HTTP/1.0 and HTTP/1.1 are served",
        },
        _ => bad("a malformed request head"),
    })?;
    let len = match status {
        httparse::Status::Complete(len) if len <= MAX_HEAD_LEN => len,
        httparse::Status::Partial if buf.len() < MAX_HEAD_LEN => return Ok(None),
        _ => {
            return Err(HeadError {
                status: 431,
                why: "a request head above 8 KiB",
            });
        }
    };
    let (Some(method), Some(target), Some(version)) =
        (request.method, request.path, request.version)
    else {
        return Err(bad("a malformed request line"));
    };
    if !target.starts_with('/') {
        return Err(bad("a request target that is not a path"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut head = Head {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        http11: version == 1,
        keep_alive: version == 1,
        ..Head::default()
    };
    for header in request.headers.iter() {
        read_header(&mut head, header.name, header.value)?;
    }
    if head.http11 && !head.has_host {
        return Err(bad("an HTTP/1.1 request without Host"));
    }
    if head.transfer_encoding && head.content_length.is_some() {
        return Err(bad("both Content-Length and Transfer-Encoding"));
    }
    Ok(Some((head, len)))
}

fn read_header(head: &mut Head, name: &str, value: &[u8]) -> Result<(), HeadError> {
    let value = std::str::from_utf8(value)
        .map_err(|_| bad("a header value that is not text"))?
        .trim();
    let tokens = || value.split(',').map(str::trim);
    if name.eq_ignore_ascii_case("host") {
        if head.has_host {
            return Err(bad("two Host headers"));
        }
        head.has_host = true;
        head.host = Some(value.to_string());
    } else if name.eq_ignore_ascii_case("origin") {
        head.origin = Some(value.to_string());
    } else if name.eq_ignore_ascii_case("sec-fetch-site") {
        head.fetch_site = Some(value.to_ascii_lowercase());
    } else if name.eq_ignore_ascii_case("connection") {
        for token in tokens() {
            if token.eq_ignore_ascii_case("close") {
                head.keep_alive = false;
            } else if token.eq_ignore_ascii_case("keep-alive") {
                head.keep_alive = true;
            } else if token.eq_ignore_ascii_case("upgrade") {
                head.connection_upgrade = true;
            }
        }
    } else if name.eq_ignore_ascii_case("upgrade") {
        head.upgrade_websocket |= tokens().any(|t| t.eq_ignore_ascii_case("websocket"));
    } else if name.eq_ignore_ascii_case("sec-websocket-key") {
        head.websocket_key = Some(value.to_string());
    } else if name.eq_ignore_ascii_case("sec-websocket-version") {
        head.websocket_version = Some(value.to_string());
    } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
        for token in tokens().filter(|t| !t.is_empty()) {
            if head.websocket_protocols.len() < MAX_HEADERS {
                head.websocket_protocols.push(token.to_string());
            }
        }
    } else if name.eq_ignore_ascii_case("content-length") {
        let n = value
            .parse::<u64>()
            .ok()
            .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(bad("a Content-Length that is not a number"))?;
        if head.content_length.is_some_and(|m| m != n) {
            return Err(bad("two Content-Length headers that differ"));
        }
        head.content_length = Some(n);
    } else if name.eq_ignore_ascii_case("transfer-encoding") {
        head.transfer_encoding = true;
    } else if name.eq_ignore_ascii_case("authorization") {
        if let Some((scheme, credentials)) = value.split_once(' ')
            && scheme.eq_ignore_ascii_case("bearer")
        {
            head.bearer = Some(credentials.trim().to_string());
        }
    } else if name.eq_ignore_ascii_case("cookie") {
        // RFC 6265 section 5.4: `name=value` pairs separated by `; `.
        for pair in value.split(';') {
            if let Some((n, v)) = pair.trim().split_once('=')
                && n == TOKEN_COOKIE
            {
                head.cookie_token = Some(v.trim_matches('"').to_string());
            }
        }
    } else if name.eq_ignore_ascii_case("last-event-id") {
        head.last_event_id = Some(value.to_string());
    }
    Ok(())
}

/// The reason phrase of the statuses the server answers with.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        401 => "Unauthorized",
        403 => "Forbidden",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

/// A response to write: its status, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header lines besides `Content-Length` and `Connection`.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a plain-text body.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        let mut body = body.into();
        body.push('\n');
        Self {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: body.into_bytes(),
        }
    }

    /// The same response with one more header.
    #[must_use]
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Appends the response to `out`; `keep_alive` decides its `Connection` header. A HEAD
    /// request gets the headers without the body.
    pub fn write(&self, keep_alive: bool, head_only: bool, out: &mut Vec<u8>) {
        let mut text = String::with_capacity(128);
        let _ = write!(
            text,
            "HTTP/1.1 {} {}\r\n",
            self.status,
            reason_phrase(self.status)
        );
        for (name, value) in &self.headers {
            let _ = write!(text, "{name}: {value}\r\n");
        }
        if self.status != 101 {
            let _ = write!(text, "Content-Length: {}\r\n", self.body.len());
            text.push_str(if keep_alive {
                "Connection: keep-alive\r\n"
            } else {
                "Connection: close\r\n"
            });
        }
        text.push_str("\r\n");
        out.extend_from_slice(text.as_bytes());
        if !head_only {
            out.extend_from_slice(&self.body);
        }
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
