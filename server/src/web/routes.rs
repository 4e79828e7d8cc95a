//! What each path of the HTTP listener answers (docs/PROTOCOL.md section 11.1).

use framewire_protocol::session::Instant;

use bytes::Bytes;

use super::http::{Head, Response};
use super::{metrics, plan, upgrade};
use crate::shared::Shared;

/// The demo page (a chat room and a live chart) and the browser client it loads, built into the
/// binary so that the server on its defaults serves them with no files around it.
const DEMO_PAGE: &str = include_str!("../../../client/web/index.html");
const BROWSER_CLIENT: &str = include_str!("../../../client/web/framewire.js");

fn asset(content_type: &str, body: &str) -> Response {
    Response {
        status: 200,
        headers: vec![
            ("Content-Type", content_type.into()),
            ("Cache-Control", "no-cache".into()),
        ],
        body: body.as_bytes().to_vec(),
    }
}

/// What a request gets.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A response; the connection then reads the next request (or closes).
    Respond(Response),
    /// `101 Switching Protocols`: the connection becomes a WebSocket session.
    Upgrade(Response),
    /// A request of the HTTP mapping (section 11.4): answered by an exchange with the hub.
    Exchange(plan::Call),
}

/// Answers one request; `body` is what it carried.
pub(crate) fn answer(head: &Head, body: Bytes, shared: &Shared, now: Instant) -> Answer {
    let reading = head.method == "GET" || head.method == "HEAD";
    match plan::plan(head, body) {
        Some(Ok(call)) => return Answer::Exchange(call),
        Some(Err(refused)) => return Answer::Respond(refused),
        None => {}
    }
    match head.path.as_str() {
        "/ws" => match upgrade::upgrade(head) {
            Ok(switching) => Answer::Upgrade(switching),
            Err(refused) => Answer::Respond(refused),
        },
        "/metrics" if reading => {
            let text = metrics::render(&shared.hub().sys_view(now));
            Answer::Respond(Response {
                status: 200,
                headers: vec![("Content-Type", metrics::CONTENT_TYPE.into())],
                body: text.into_bytes(),
            })
        }
        "/" | "/index.html" if reading => {
            Answer::Respond(asset("text/html; charset=utf-8", DEMO_PAGE))
        }
        "/framewire.js" if reading => {
            Answer::Respond(asset("text/javascript; charset=utf-8", BROWSER_CLIENT))
        }
        "/metrics" | "/" | "/index.html" | "/framewire.js" => Answer::Respond(
            Response::text(405, "this path answers GET").with_header("Allow", "GET, HEAD"),
        ),
        _ => Answer::Respond(Response::text(
            404,
            "no such path: the server serves / (a demo page), /framewire.js, /ws (WebSocket), /sse, \
             /poll, /publish/, /request/, /queue/ and /metrics",
        )),
    }
}
