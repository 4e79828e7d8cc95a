//! The WebSocket opening handshake, the server's side (RFC 6455 section 4.2): which requests may
//! become WebSocket connections, and the `101 Switching Protocols` that makes them so.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::http::{Head, Response};

/// The subprotocol framewire's WebSocket sessions speak (docs/PROTOCOL.md section 11.2).
pub const SUBPROTOCOL: &str = "framewire.v1";
/// The only WebSocket version there is.
const VERSION: &str = "13";
/// The GUID a server appends to the client's key (RFC 6455 section 1.3).
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`: base64 of the SHA-1 of the key and
/// the GUID.
pub fn accept_key(key: &str) -> String {
    let mut input = Vec::with_capacity(key.len() + ACCEPT_GUID.len());
    input.extend_from_slice(key.as_bytes());
    input.extend_from_slice(ACCEPT_GUID.as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    STANDARD.encode(digest.as_ref())
}

/// Answers a request for `/ws`: the `101` that upgrades it, or the error that says why not.
///
/// # Errors
/// The response to send instead: `405` for a method other than GET, `426` for a request that is
/// not a WebSocket upgrade or asks for another version, `400` for a missing or malformed key.
pub fn upgrade(head: &Head) -> Result<Response, Response> {
    if head.method != "GET" {
        return Err(
            Response::text(405, "a WebSocket is opened with GET").with_header("Allow", "GET")
        );
    }
    if !head.http11 || !head.upgrade_websocket || !head.connection_upgrade {
        return Err(Response::text(
            426,
            "this path serves WebSocket: send Upgrade: websocket and Connection: Upgrade over HTTP/1.1",
        )
        .with_header("Upgrade", "websocket"));
    }
    if head.websocket_version.as_deref() != Some(VERSION) {
        return Err(Response::text(426, "only WebSocket version 13 is served")
            .with_header("Sec-WebSocket-Version", VERSION));
    }
    let key = head
        .websocket_key
        .as_deref()
        .filter(|k| STANDARD.decode(k).is_ok_and(|bytes| bytes.len() == 16))
        .ok_or_else(|| Response::text(400, "Sec-WebSocket-Key must be 16 bytes in base64"))?;
    let mut response = Response {
        status: 101,
        headers: vec![
            ("Upgrade", "websocket".into()),
            ("Connection", "Upgrade".into()),
            ("Sec-WebSocket-Accept", accept_key(key)),
        ],
        body: Vec::new(),
    };
    if head.websocket_protocols.iter().any(|p| p == SUBPROTOCOL) {
        response
            .headers
            .push(("Sec-WebSocket-Protocol", SUBPROTOCOL.into()));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws_head() -> Head {
        Head {
            method: "GET".into(),
            path: "/ws".into(),
            http11: true,
            keep_alive: true,
            has_host: true,
            upgrade_websocket: true,
            connection_upgrade: true,
            websocket_key: Some("dGhlIHNhbXBsZSBub25jZQ==".into()),
            websocket_version: Some("13".into()),
            ..Head::default()
        }
    }

    #[test]
    fn the_rfc_example_key_gets_the_rfc_example_accept() {
        // RFC 6455 section 1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let ok = upgrade(&ws_head()).unwrap();
        assert_eq!(ok.status, 101);
        assert!(ok.headers.contains(&(
            "Sec-WebSocket-Accept",
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into()
        )));
        assert!(
            !ok.headers
                .iter()
                .any(|(n, _)| *n == "Sec-WebSocket-Protocol")
        );
    }

    #[test]
    fn the_subprotocol_is_agreed_when_offered() {
        let head = Head {
            websocket_protocols: vec!["chat".into(), SUBPROTOCOL.into()],
            ..ws_head()
        };
        let ok = upgrade(&head).unwrap();
        assert!(
            ok.headers
                .contains(&("Sec-WebSocket-Protocol", SUBPROTOCOL.into()))
        );
    }

    #[test]
    fn requests_that_are_not_upgrades_are_told_what_is_missing() {
        let status = |head: Head| upgrade(&head).unwrap_err().status;
        assert_eq!(
            status(Head {
                method: "POST".into(),
                ..ws_head()
            }),
            405
        );
        assert_eq!(
            status(Head {
                upgrade_websocket: false,
                ..ws_head()
            }),
            426
        );
        assert_eq!(
            status(Head {
                connection_upgrade: false,
                ..ws_head()
            }),
            426
        );
        assert_eq!(
            status(Head {
                http11: false,
                ..ws_head()
            }),
            426
        );
        assert_eq!(
            status(Head {
                websocket_version: Some("8".into()),
                ..ws_head()
            }),
            426
        );
        assert_eq!(
            status(Head {
                websocket_key: None,
                ..ws_head()
            }),
            400
        );
        assert_eq!(
            status(Head {
                websocket_key: Some("c2hvcnQ=".into()),
                ..ws_head()
            }),
            400
        );
    }
}
