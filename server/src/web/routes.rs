//! What each path of the HTTP listener answers (docs/PROTOCOL.md section 11.1).

use framewire_protocol::session::Instant;

use super::http::{Head, Response};
use super::{metrics, upgrade};
use crate::shared::Shared;

/// What a request gets.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A response; the connection then reads the next request (or closes).
    Respond(Response),
    /// `101 Switching Protocols`: the connection becomes a WebSocket session.
    Upgrade(Response),
}

/// Answers one request.
pub(crate) fn answer(head: &Head, shared: &Shared, now: Instant) -> Answer {
    let reading = head.method == "GET" || head.method == "HEAD";
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
        "/metrics" => Answer::Respond(
            Response::text(405, "/metrics answers GET").with_header("Allow", "GET, HEAD"),
        ),
        _ => Answer::Respond(Response::text(
            404,
            "no such path: the server serves /ws (WebSocket) and /metrics",
        )),
    }
}
