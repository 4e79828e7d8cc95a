//! A second WebSocket implementation against the server's `/ws`: Debian's `python3-wsproto`
//! (`tests/peers/wsproto_peer.py`) opens the WebSocket, carries a session's frames, pings and
//! closes; a TCP client on the same hub hears what it published. Needs `/usr/bin/python3` with
//! `python3-wsproto`, which `cargo test --workspace` cannot assume, so `.ci/run` runs it with
//! `--ignored`.

use bytes::{Bytes, BytesMut};
use framewire_protocol::wire::{
    Frame, FrameBody, Hello, HelloOptions, Publish, Subscribe, Text, VERSION,
    encode_stream_frame_into,
};
use framewire_server::ServerConfig;
use framewire_tests::{TestClient, TestServer, Via};

/// A frame as a WebSocket message carries it (its version byte and body), in hex.
fn message_hex(frame: &Frame) -> String {
    let mut stream = BytesMut::new();
    encode_stream_frame_into(frame, &mut stream).expect("encodes");
    stream[4..stream.len() - 4]
        .iter()
        .fold(String::new(), |mut hex, b| {
            use std::fmt::Write;
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

fn frame_of(hex: &str) -> Frame {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    assert_eq!(bytes[0], VERSION);
    Frame::parse(Bytes::copy_from_slice(&bytes[1..])).expect("a frame")
}

#[test]
#[ignore = "needs /usr/bin/python3 with python3-wsproto; .ci/run runs it"]
fn a_wsproto_client_holds_a_session_and_publishes_to_a_tcp_subscriber() {
    let server = TestServer::start(ServerConfig::default());
    let mut tcp = TestClient::connect(&server, Via::Tcp);
    tcp.call_ok(
        1,
        Frame::new(Subscribe {
            id: 1,
            filter: Text::from("py/#"),
        }),
    );
    let frames = [
        Frame::new(Hello::new(0, HelloOptions::new())),
        Frame::new(Subscribe {
            id: 1,
            filter: Text::from("py/#"),
        }),
        Frame::new(Publish {
            retain: false,
            id: 2,
            topic: Text::from("py/x"),
            payload: Bytes::from_static(b"hello from wsproto"),
        }),
    ];
    let http = server.http_addr();
    let out = std::process::Command::new("/usr/bin/python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/peers/wsproto_peer.py"
        ))
        .args([http.ip().to_string(), http.port().to_string(), "4".into()])
        .args(frames.iter().map(message_hex))
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.pop(), Some("closed"), "{stdout}");
    let got: Vec<Frame> = lines.iter().map(|l| frame_of(l)).collect();
    assert!(matches!(got[0].body, FrameBody::Welcome(_)), "{got:?}");
    assert!(
        got.iter().any(
            |f| matches!(&f.body, FrameBody::Message(m) if &m.payload[..] == b"hello from wsproto")
        ),
        "{got:?}"
    );
    let heard = loop {
        if let FrameBody::Message(m) = tcp.recv().body {
            break m;
        }
    };
    assert_eq!(heard.topic.as_str(), "py/x");
    assert_eq!(&heard.payload[..], b"hello from wsproto");
    let closed = server.counted(|c| c.websocket_closes(1000) == 1);
    assert_eq!(closed.http_responses(101), 1);
}
