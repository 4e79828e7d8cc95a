//! What an HTTP request asks the hub for, read from its head and body (docs/PROTOCOL.md section
//! 11.4): a stream of Messages (`/sse`, `/poll`), or one operation (`/publish`, `/request`,
//! `/queue`), with the connect token it presents. Pure: the exchange carries the plan out.

use bytes::Bytes;
use framewire_protocol::wire::Status;

use super::form::{Query, from_hex, percent_decode};
use super::http::{Head, Response};
use super::json;

/// The longest a poll, a queue fetch or a request may be held, in milliseconds.
pub const MAX_WAIT_MS: u64 = 60_000;
/// Messages one poll answers with at most (`max`, default 100).
pub const MAX_POLL_MESSAGES: u64 = 1_000;
/// Deliveries one queue fetch answers with at most (`max`, default 1).
pub const MAX_FETCH: u64 = 100;
/// Filters one stream subscribes to at most.
pub const MAX_FILTERS: usize = 32;

/// Where a stream left off: the session token of its last Welcome and the highest delivery number
/// the client has (docs/PROTOCOL.md section 5.9), written `<token in hex>.<number>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The session token to resume.
    pub token: Vec<u8>,
    /// Every numbered Message up to this one has arrived.
    pub through: u32,
}

impl Cursor {
    /// Reads `<hex>.<decimal>`.
    ///
    /// # Errors
    /// Anything else.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let bad = "a cursor is the session token in hex, a dot and a number";
        let (token, through) = s.trim().rsplit_once('.').ok_or(bad)?;
        let token = from_hex(token).map_err(|_| bad)?;
        if token.is_empty() || token.len() > 255 {
            return Err(bad);
        }
        let through = through
            .parse::<u32>()
            .ok()
            .filter(|_| through.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(bad)?;
        Ok(Self { token, through })
    }

    /// How a cursor is written.
    pub fn write(token: &[u8], through: u32) -> String {
        Self::write_hex(&super::form::to_hex(token), through)
    }

    /// How a cursor is written, from the token already in hex.
    pub fn write_hex(token_hex: &str, through: u32) -> String {
        format!("{token_hex}.{through}")
    }
}

/// What the request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Messages of `filters` (subscribed in a new session, or the session `after` names resumed):
    /// as a Server-Sent Events stream, or as one poll's answer held up to `wait_ms` for a first
    /// Message, with at most `max` of them.
    Stream {
        sse: bool,
        filters: Vec<String>,
        /// Filters a resumed session drops (`unsubscribe=`).
        unsubscribe: Vec<String>,
        after: Option<Cursor>,
        wait_ms: u32,
        max: usize,
    },
    /// A Publish.
    Publish {
        topic: String,
        retain: bool,
        payload: Bytes,
    },
    /// A Request and its Response.
    Request {
        target: String,
        timeout_ms: u32,
        payload: Bytes,
    },
    /// A `QueuePush`.
    Push { queue: String, payload: Bytes },
    /// A `QueueFetch`.
    Fetch {
        queue: String,
        wait_ms: u32,
        max: u16,
    },
    /// A `QueueAck`.
    Ack { queue: String, delivery: u64 },
    /// A `QueueNack`.
    Nack {
        queue: String,
        delivery: u64,
        delay_ms: u32,
    },
}

/// A plan and the connect token presented with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub plan: Plan,
    /// From `Authorization: Bearer`, the cookie `framewire_token`, or the query's `token`, in
    /// that order of preference.
    pub token: Option<Vec<u8>>,
}

/// The prefixes of the operations' paths; the rest of the path is the name.
const OPERATIONS: [&str; 3] = ["/publish/", "/request/", "/queue/"];

fn bad(message: &str) -> Response {
    json::failure(400, "BAD_REQUEST", Status::BAD_REQUEST.0, message)
}

fn method_not_allowed(allow: &'static str) -> Response {
    json::failure(
        405,
        "BAD_REQUEST",
        Status::BAD_REQUEST.0,
        &format!("this path answers {allow}"),
    )
    .with_header("Allow", allow)
}

/// Reads a request to one of the mapping's paths; `None` for a path that is not one.
///
/// # Errors
/// The response for a request that cannot be carried out: `400` (a bad escape, cursor, number or
/// token), `405` (another method), `404` (a path with no name after its prefix).
pub fn plan(head: &Head, body: Bytes) -> Option<Result<Call, Response>> {
    let path = head.path.as_str();
    let stream = path == "/sse" || path == "/poll";
    let operation = OPERATIONS.into_iter().find(|p| path.starts_with(p));
    if !stream && operation.is_none() {
        return None;
    }
    Some(read_call(head, body, operation))
}

/// [`plan`] for a path of the mapping: an operation's (`operation`, its prefix) or a stream's.
fn read_call(head: &Head, body: Bytes, operation: Option<&str>) -> Result<Call, Response> {
    let query = Query::parse(&head.query).map_err(bad)?;
    let cookie = head
        .bearer
        .is_none()
        .then_some(head.cookie_token.as_deref())
        .flatten();
    if cookie.is_some() && head.is_cross_origin() {
        // A browser sends the page's cookies with a request another site's page makes: the
        // cookie is the user's credential, not that page's (cross-site request forgery).
        return Err(json::failure(
            403,
            "FORBIDDEN",
            Status::FORBIDDEN.0,
            "a token in a cookie is taken from pages of this server's own origin only",
        ));
    }
    let token = head
        .bearer
        .as_deref()
        .or(cookie)
        .or(query.get("token"))
        .map(|t| from_hex(t.trim()).map_err(|_| bad("a connect token is given in hex")))
        .transpose()?;
    let plan = match operation {
        Some(prefix) => operation_plan(head, &query, prefix, body)?,
        None => stream_plan(head, &query)?,
    };
    Ok(Call { plan, token })
}

fn number(query: &Query, name: &str, default: u64, max: u64) -> Result<u64, Response> {
    query.number(name, default, max).map_err(bad)
}

/// `/sse` and `/poll`.
fn stream_plan(head: &Head, query: &Query) -> Result<Plan, Response> {
    if head.method != "GET" {
        return Err(method_not_allowed("GET"));
    }
    let sse = head.path == "/sse";
    // A browser's own reconnect sends the newest place in `Last-Event-ID`, whatever the URL
    // it reconnects to says.
    let after = if sse {
        head.last_event_id.as_deref()
    } else {
        None
    }
    .or(query.get("after"))
    .filter(|s| !s.is_empty())
    .map(|s| Cursor::parse(s).map_err(bad))
    .transpose()?;
    let filters: Vec<String> = query.all("filter").map(str::to_string).collect();
    let unsubscribe: Vec<String> = query.all("unsubscribe").map(str::to_string).collect();
    if filters.len() + unsubscribe.len() > MAX_FILTERS {
        return Err(bad(
            "more than 32 filters (filter= and unsubscribe= together)",
        ));
    }
    if filters.is_empty() && after.is_none() {
        return Err(bad(
            "a stream needs a filter (filter=...) or a cursor (after=...)",
        ));
    }
    Ok(Plan::Stream {
        sse,
        filters,
        unsubscribe,
        after,
        wait_ms: if sse {
            0
        } else {
            number(query, "wait", 0, MAX_WAIT_MS)? as u32
        },
        max: number(query, "max", 100, MAX_POLL_MESSAGES)? as usize,
    })
}

/// `/publish/<topic>`, `/request/<target>`, `/queue/<name>`: the name is the rest of the path,
/// percent-decoded.
fn operation_plan(head: &Head, query: &Query, prefix: &str, body: Bytes) -> Result<Plan, Response> {
    let rest = &head.path[prefix.len()..];
    if rest.is_empty() {
        return Err(json::failure(
            404,
            "NOT_FOUND",
            Status::NOT_FOUND.0,
            "a name follows the path's prefix",
        ));
    }
    let (get, post) = (head.method == "GET", head.method == "POST");
    if prefix != "/queue/" && !post {
        return Err(method_not_allowed("POST"));
    }
    if prefix == "/queue/" && !get && !post {
        return Err(method_not_allowed("GET, POST"));
    }
    let name = percent_decode(rest, false).map_err(bad)?;
    Ok(match prefix {
        "/publish/" => Plan::Publish {
            topic: name,
            retain: matches!(query.get("retain"), Some("1" | "true")),
            payload: body,
        },
        "/request/" => Plan::Request {
            target: name,
            timeout_ms: number(query, "timeout", 0, MAX_WAIT_MS)? as u32,
            payload: body,
        },
        _ if get => Plan::Fetch {
            queue: name,
            wait_ms: number(query, "wait", 0, MAX_WAIT_MS)? as u32,
            max: number(query, "max", 1, MAX_FETCH)? as u16,
        },
        _ if query.get("ack").is_some() => Plan::Ack {
            queue: name,
            delivery: number(query, "ack", 0, u64::MAX)?,
        },
        _ if query.get("nack").is_some() => Plan::Nack {
            queue: name,
            delivery: number(query, "nack", 0, u64::MAX)?,
            delay_ms: number(query, "delay", 0, 300_000)? as u32,
        },
        _ => Plan::Push {
            queue: name,
            payload: body,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(head: &Head, body: Bytes) -> Result<Call, Response> {
        plan(head, body).expect("a path of the mapping")
    }

    fn head(method: &str, target: &str) -> Head {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Head {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            http11: true,
            keep_alive: true,
            has_host: true,
            ..Head::default()
        }
    }

    #[test]
    fn streams_read_filters_cursors_and_bounds() {
        let call = plan_of(
            &head(
                "GET",
                "/poll?filter=chat%2Froom&filter=sensors/%2B/temp&wait=2500&after=0a0b.7&unsubscribe=old%2F%23",
            ),
            Bytes::new(),
        )
        .unwrap();
        assert_eq!(
            call.plan,
            Plan::Stream {
                sse: false,
                filters: vec!["chat/room".into(), "sensors/+/temp".into()],
                unsubscribe: vec!["old/#".into()],
                after: Some(Cursor {
                    token: vec![10, 11],
                    through: 7
                }),
                wait_ms: 2500,
                max: 100,
            }
        );
        // EventSource's own reconnect names its place in a header.
        let mut h = head("GET", "/sse?filter=a");
        h.last_event_id = Some("ff.3".into());
        let Plan::Stream { after, .. } = plan_of(&h, Bytes::new()).unwrap().plan else {
            panic!()
        };
        assert_eq!(
            after,
            Some(Cursor {
                token: vec![255],
                through: 3
            })
        );
        for bad in [
            "/poll",
            "/poll?filter=a&wait=60001",
            "/poll?after=xyz.1",
            "/sse?filter=%zz",
        ] {
            assert_eq!(
                plan_of(&head("GET", bad), Bytes::new()).unwrap_err().status,
                400,
                "{bad}"
            );
        }
        assert_eq!(
            plan_of(&head("POST", "/sse?filter=a"), Bytes::new())
                .unwrap_err()
                .status,
            405
        );
    }

    #[test]
    fn operations_take_their_names_from_the_path() {
        let body = Bytes::from_static(b"hi");
        let call = plan_of(&head("POST", "/publish/chat%2Froom?retain=1"), body.clone()).unwrap();
        assert_eq!(
            call.plan,
            Plan::Publish {
                topic: "chat/room".into(),
                retain: true,
                payload: body.clone()
            }
        );
        let call = plan_of(&head("POST", "/queue/jobs?ack=42"), Bytes::new()).unwrap();
        assert_eq!(
            call.plan,
            Plan::Ack {
                queue: "jobs".into(),
                delivery: 42
            }
        );
        let call = plan_of(&head("GET", "/queue/jobs?wait=100&max=5"), Bytes::new()).unwrap();
        assert_eq!(
            call.plan,
            Plan::Fetch {
                queue: "jobs".into(),
                wait_ms: 100,
                max: 5
            }
        );
        assert_eq!(
            plan_of(&head("GET", "/publish/x"), Bytes::new())
                .unwrap_err()
                .status,
            405
        );
        assert_eq!(
            plan_of(&head("POST", "/publish/"), Bytes::new())
                .unwrap_err()
                .status,
            404
        );
    }

    #[test]
    fn the_token_comes_from_a_header_a_cookie_or_the_query() {
        let mut h = head("POST", "/publish/t?token=03");
        assert_eq!(plan_of(&h, Bytes::new()).unwrap().token, Some(vec![3]));
        h.cookie_token = Some("02".into());
        assert_eq!(plan_of(&h, Bytes::new()).unwrap().token, Some(vec![2]));
        h.bearer = Some("01".into());
        assert_eq!(plan_of(&h, Bytes::new()).unwrap().token, Some(vec![1]));
        h.bearer = Some("nothex".into());
        assert_eq!(plan_of(&h, Bytes::new()).unwrap_err().status, 400);
    }

    #[test]
    fn a_cookie_token_is_taken_from_the_servers_own_pages_only() {
        let mut h = head("POST", "/publish/t");
        h.host = Some("127.0.0.1:7480".into());
        h.cookie_token = Some("02".into());
        // No word from a browser (curl), and a page of this origin, by either header.
        for (origin, site) in [
            (None, None),
            (Some("http://127.0.0.1:7480"), None),
            (Some("https://127.0.0.1:7480"), None),
            (None, Some("same-origin")),
            (Some("http://elsewhere.example"), Some("same-origin")),
            (None, Some("none")),
        ] {
            h.origin = origin.map(str::to_string);
            h.fetch_site = site.map(str::to_string);
            assert_eq!(
                plan_of(&h, Bytes::new()).unwrap().token,
                Some(vec![2]),
                "{origin:?} {site:?}"
            );
        }
        // Another page's request carrying the user's cookie is refused...
        for (origin, site) in [
            (Some("http://elsewhere.example"), None),
            (Some("http://127.0.0.1:7481"), None),
            (Some("null"), None),
            (None, Some("cross-site")),
            (None, Some("same-site")),
        ] {
            h.origin = origin.map(str::to_string);
            h.fetch_site = site.map(str::to_string);
            let refused = plan_of(&h, Bytes::new()).unwrap_err();
            assert_eq!(refused.status, 403, "{origin:?} {site:?}");
        }
        // ...unless it says whose token it is itself: a bearer token is no ambient credential.
        h.bearer = Some("01".into());
        assert_eq!(plan_of(&h, Bytes::new()).unwrap().token, Some(vec![1]));
        // A cross-site request without a cookie token is a page using its own token, or none.
        h.bearer = None;
        h.cookie_token = None;
        assert_eq!(plan_of(&h, Bytes::new()).unwrap().token, None);
    }

    #[test]
    fn cursors_go_both_ways() {
        let c = Cursor::write(&[0xab, 0x01], 4_000_000_000);
        assert_eq!(c, "ab01.4000000000");
        assert_eq!(Cursor::parse(&c).unwrap().through, 4_000_000_000);
        for bad in ["", ".1", "ab01", "ab01.", "ab01.-1", "ab01.+1", "ab0.1"] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
    }
}
