use super::*;
use proptest::prelude::*;

fn head(text: &str) -> Result<Option<(Head, usize)>, HeadError> {
    parse_head(text.as_bytes())
}

#[test]
fn a_websocket_upgrade_head_is_read() {
    let text = "GET /ws?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, framewire.v1\r\n\r\nrest";
    let (h, len) = head(text).unwrap().unwrap();
    assert_eq!(len, text.len() - 4);
    assert_eq!(
        (h.method.as_str(), h.path.as_str(), h.query.as_str()),
        ("GET", "/ws", "x=1")
    );
    assert!(h.http11 && h.keep_alive && h.upgrade_websocket && h.connection_upgrade);
    assert_eq!(h.websocket_key.as_deref(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
    assert_eq!(h.websocket_version.as_deref(), Some("13"));
    assert_eq!(h.websocket_protocols, ["chat", "framewire.v1"]);
    assert!(!h.has_body());
}

#[test]
fn a_partial_head_waits_and_keep_alive_follows_the_version() {
    assert_eq!(head("GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
    let (h, _) = head("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
    assert!(!h.keep_alive && !h.http11);
    let (h, _) = head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(h.keep_alive);
    let (h, _) = head("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(!h.keep_alive);
}

fn status(text: &str) -> u16 {
    head(text).expect_err(text).status
}

#[test]
fn bad_heads_get_the_status_that_says_why() {
    assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), 400,);
    assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
    assert_eq!(status("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
    assert_eq!(status("GET\x01 / HTTP/1.1\r\n\r\n"), 400);
    assert_eq!(status("GET http://x/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(
        status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n"),
        400
    );
    assert_eq!(
        status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"),
        400
    );
    assert_eq!(
        status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
        400
    );
    assert_eq!(
        status(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        ),
        400
    );
    let many = (0..=MAX_HEADERS).fold(String::new(), |mut all, i| {
        use std::fmt::Write;
        let _ = write!(all, "X-{i}: y\r\n");
        all
    });
    assert_eq!(
        status(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")),
        431
    );
    let long = "a".repeat(MAX_HEAD_LEN);
    assert_eq!(
        status(&format!("GET / HTTP/1.1\r\nHost: a\r\nX: {long}")),
        431
    );
    assert_eq!(
        status(&format!("GET / HTTP/1.1\r\nHost: a\r\nX: {long}\r\n\r\n")),
        431
    );
}

#[test]
fn a_response_says_its_length_and_whether_the_connection_stays() {
    let mut out = Vec::new();
    Response::text(404, "no such path").write(true, false, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\nConnection: keep-alive\r\n\r\nno such path\n"
    );
    let mut out = Vec::new();
    Response::text(200, "x").write(false, true, &mut out);
    assert!(
        String::from_utf8(out)
            .unwrap()
            .ends_with("Connection: close\r\n\r\n")
    );
}

proptest! {
    #[test]
    fn any_bytes_give_a_head_a_wait_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        if let Ok(Some((_, len))) = parse_head(&bytes) {
            prop_assert!(len <= bytes.len() && len <= MAX_HEAD_LEN);
        }
    }

    #[test]
    fn a_valid_head_cut_anywhere_waits_until_it_is_whole(cut in 0usize..60) {
        let text = b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n";
        let cut = cut.min(text.len() - 1);
        prop_assert_eq!(parse_head(&text[..cut]), Ok(None));
        prop_assert_eq!(parse_head(text).unwrap().unwrap().1, text.len());
    }
}
