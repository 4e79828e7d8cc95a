//! The HTTP/1.1 listener (`--http`) and what it serves on the worker's event loop: WebSocket
//! sessions (stream sessions whose frames travel as WebSocket messages) and the Prometheus
//! metrics (docs/PROTOCOL.md section 11).

pub(crate) mod exchange;
pub mod form;
pub mod http;
pub(crate) mod http_connection;
pub mod json;
pub(crate) mod metrics;
pub mod plan;
pub(crate) mod routes;
pub mod upgrade;
pub mod websocket;
pub(crate) mod ws_link;

/// The `http_head` fuzz target's check (and its corpus test's): a request head read from
/// arbitrary bytes is whole and within the limits, or an error with a status; never a panic.
///
/// # Panics
/// When the reader breaks its contract.
pub fn fuzz_check_http_head(data: &[u8]) {
    match http::parse_head(data) {
        Ok(Some((head, len))) => {
            assert!(len <= data.len() && len <= http::MAX_HEAD_LEN);
            assert!(head.path.starts_with('/'));
            let _ = upgrade::upgrade(&head);
            check_mapping(&head, &data[len..]);
            assert_eq!(http::parse_head(&data[..len]), Ok(Some((head, len))));
        }
        Ok(None) => assert!(data.len() < http::MAX_HEAD_LEN),
        Err(e) => assert!(matches!(e.status, 400 | 431 | 505)),
    }
}

/// A head of the HTTP mapping, with what follows it as its body, reads as a plan within the
/// mapping's bounds or is refused with a JSON failure; never a panic.
fn check_mapping(head: &http::Head, body: &[u8]) {
    let Some(planned) = plan::plan(head, bytes::Bytes::copy_from_slice(body)) else {
        return;
    };
    match planned {
        Ok(call) => match call.plan {
            plan::Plan::Stream {
                filters,
                unsubscribe,
                wait_ms,
                max,
                ..
            } => {
                assert!(filters.len() + unsubscribe.len() <= plan::MAX_FILTERS);
                assert!(u64::from(wait_ms) <= plan::MAX_WAIT_MS);
                assert!(max as u64 <= plan::MAX_POLL_MESSAGES);
            }
            plan::Plan::Fetch { wait_ms, max, .. } => {
                assert!(u64::from(wait_ms) <= plan::MAX_WAIT_MS);
                assert!(u64::from(max) <= plan::MAX_FETCH);
            }
            _ => {}
        },
        Err(refused) => {
            // 403: a cookie's token in a request from another origin.
            assert!(matches!(refused.status, 400 | 403 | 404 | 405));
            assert!(refused.body.starts_with(b"{\"status\":"));
        }
    }
}

/// The `websocket` fuzz target's check (and its corpus test's): client frames from arbitrary
/// bytes, fed in pieces whose sizes the first byte picks, give messages within the limit or a
/// violation with a close code a server may send, the same as the same bytes fed whole.
///
/// # Panics
/// When the decoder breaks its contract.
pub fn fuzz_check_websocket(data: &[u8]) {
    const LIMIT: usize = 1024;
    let Some((&step, bytes)) = data.split_first() else {
        return;
    };
    let run = |piece: usize| {
        let mut decoder = websocket::Decoder::new(LIMIT);
        let mut seen = Vec::new();
        let mut bytes = bytes.to_vec();
        for chunk in bytes.chunks_mut(piece) {
            let fed = decoder.feed(chunk, |m| {
                let len = match m {
                    websocket::Message::Binary(b) => b.len(),
                    websocket::Message::Text(t) => t.len(),
                    websocket::Message::Ping(p) | websocket::Message::Pong(p) => p.len(),
                    websocket::Message::Close(c) => c.map_or(0, |(_, r)| r.len()),
                };
                assert!(len <= LIMIT);
                seen.push(format!("{m:?}"));
            });
            if let Err(v) = fed {
                assert!(websocket::is_valid_close_code(v.code));
                return (seen, Some(v));
            }
        }
        (seen, None)
    };
    assert_eq!(run(usize::from(step % 16) + 1), run(bytes.len().max(1)));
}
