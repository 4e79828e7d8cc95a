//! The replay's script and matcher on hand-made inspections, without a server: what is sent and
//! what is expected, UDP resends taken once, a shutting-down server's Close not expected, and how
//! answers are paired, compared and tallied.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::wire::{
    Close, Data, Frame, FrameBody, Hello, HelloOptions, Reason, Request, Response, Status, Text,
    Welcome,
};
use framewire_tools::capture::{Carrier, Connection, Direction, Inspection, Record, Seen};
use framewire_tools::replay::{Action, Matcher, Outcome, Script};

const CLIENT: &str = "127.0.0.1:40000";
const SERVER: &str = "127.0.0.1:7400";

fn hello() -> Frame {
    Frame::new(Hello::new(7, HelloOptions::new()))
}

fn welcome() -> Frame {
    Frame::new(Welcome {
        resumed: false,
        version: 1,
        connection_id: 9,
        idle_timeout_ms: 30_000,
        max_frame_len: 65_536,
        heartbeat_interval_ms: 10_000,
        missed: 0,
        session_token: Bytes::from_static(b"captured token"),
    })
}

fn data(payload: &'static [u8], seq: Option<u32>) -> Frame {
    Frame {
        channel: 1,
        seq,
        body: FrameBody::Data(Data {
            payload: Bytes::from_static(payload),
        }),
    }
}

fn request(id: u32, target: &str) -> Frame {
    Frame::new(Request {
        id,
        timeout_ms: 0,
        target: Text::from(target),
        payload: Bytes::new(),
    })
}

fn response(id: u32, status: Status, payload: &'static [u8]) -> Frame {
    Frame::new(Response {
        id,
        status,
        payload: Bytes::from_static(payload),
    })
}

/// One connection over `carrier`, and these records on it (a millisecond apart).
fn inspection(carrier: Carrier, seen: Vec<(Direction, Seen)>) -> Inspection {
    let client: SocketAddr = CLIENT.parse().unwrap();
    Inspection {
        connections: vec![Connection {
            carrier,
            client,
            server: SERVER.parse().unwrap(),
            from_start: true,
        }],
        records: seen
            .into_iter()
            .enumerate()
            .map(|(i, (direction, what))| Record {
                time: Duration::from_millis(i as u64),
                connection: 0,
                direction,
                what,
            })
            .collect(),
        ..Inspection::default()
    }
}

fn up(frame: Frame) -> (Direction, Seen) {
    (Direction::ToServer, Seen::Frame { frame, wire_len: 0 })
}

fn down(frame: Frame) -> (Direction, Seen) {
    (Direction::ToClient, Seen::Frame { frame, wire_len: 0 })
}

fn actions(script: &Script) -> Vec<String> {
    script
        .steps
        .iter()
        .map(|s| match &s.action {
            Action::Connect => "connect".to_string(),
            Action::Send(f) => format!("send {}", f.kind()),
            Action::Expect(f) => format!("expect {}", f.kind()),
            Action::Close(r) => format!("close {r}"),
            Action::Vanish => "vanish".to_string(),
        })
        .collect()
}

#[test]
fn udp_resends_are_taken_once_and_a_shutting_down_server_is_not_expected() {
    let script = Script::from_inspection(&inspection(
        Carrier::Udp,
        vec![
            up(hello()),
            up(hello()),
            down(welcome()),
            up(data(b"a", Some(0))),
            // The lone-message copy, and a later resend: the same channel and sequence number.
            up(data(b"a", Some(0))),
            down(data(b"a", Some(0))),
            up(data(b"a", Some(0))),
            down(data(b"a", Some(0))),
            down(Frame::new(Close {
                reason: Reason::GOING_AWAY,
                message: Text::from("shutting down"),
            })),
        ],
    ));
    assert_eq!(script.sessions.len(), 1);
    assert_eq!(
        actions(&script),
        ["connect", "expect Welcome", "send Data", "expect Data"]
    );
}

#[test]
fn a_tcp_client_that_vanishes_is_dropped_and_what_follows_is_not_compared() {
    let script = Script::from_inspection(&inspection(
        Carrier::Tcp,
        vec![
            up(hello()),
            down(welcome()),
            up(data(b"1", None)),
            up(data(b"2", None)),
            down(data(b"1", None)),
            (Direction::ToServer, Seen::End),
        ],
    ));
    assert_eq!(
        actions(&script),
        [
            "connect",
            "expect Welcome",
            "send Data",
            "send Data",
            "expect Data",
            "vanish"
        ]
    );
    let mut m = Matcher::new(&script);
    m.connected(0, &Bytes::from_static(b"new token"), false, 0);
    assert_eq!(m.received(0, &data(b"1", None)), Some(4));
    // The captured server never answered "2": the client had gone. The target did.
    assert_eq!(m.received(0, &data(b"2", None)), None);
    let t = m.tally();
    assert_eq!(
        (t.matched, t.unexpected, t.after_vanish),
        (2, 0, 1),
        "{t:?}"
    );
    assert!(m.differences().is_empty());
}

#[test]
fn answers_pair_by_id_and_compare_by_rule() {
    let script = Script::from_inspection(&inspection(
        Carrier::Tcp,
        vec![
            up(hello()),
            down(welcome()),
            up(request(1, "sys.time")),
            up(request(2, "sys.ping")),
            up(request(3, "sys.stats")),
            down(response(2, Status::OK, b"pong")),
            down(response(1, Status::OK, b"1700000000000000")),
            down(response(3, Status::OK, b"{\"tcp\":{}}")),
            up(Frame::new(Close {
                reason: Reason::NORMAL,
                message: Text::from(""),
            })),
        ],
    ));
    let mut m = Matcher::new(&script);
    m.connected(0, &Bytes::from_static(b"t"), false, 0);
    for step in &script.steps {
        if let Action::Send(frame) = &step.action {
            let mut frame = frame.clone();
            m.rewrite(0, &mut frame);
        }
    }
    // Out of the captured order, another time, other stats: all alike by their rules.
    assert!(
        m.received(0, &response(1, Status::OK, b"1800000000000000"))
            .is_some()
    );
    assert!(
        m.received(0, &response(3, Status::OK, b"{\"udp\":{}}"))
            .is_some()
    );
    // A different payload for a deterministic target is a mismatch.
    let step = m.received(0, &response(2, Status::OK, b"ping")).unwrap();
    assert_eq!(m.outcome(step), Outcome::Mismatched);
    // Nothing captured under this id.
    assert_eq!(m.received(0, &response(9, Status::OK, b"")), None);
    let t = m.tally();
    assert_eq!(
        (t.expected, t.matched, t.mismatched, t.unexpected),
        (4, 3, 1, 1),
        "{t:?}"
    );
    let what: Vec<&str> = m.differences().iter().map(|d| d.what.as_str()).collect();
    assert_eq!(
        what,
        [
            "Response id 2 ok (0) \"pong\", now Response id 2 ok (0) \"ping\"",
            "unexpected Response id 9 ok (0) \"\""
        ]
    );
}

#[test]
fn a_connection_captured_without_its_hello_is_skipped() {
    let script = Script::from_inspection(&inspection(
        Carrier::Tcp,
        vec![
            up(request(1, "sys.ping")),
            down(response(1, Status::OK, b"pong")),
        ],
    ));
    assert!(script.sessions.is_empty());
    assert!(script.steps.is_empty());
    assert_eq!(script.skipped_connections, 1);
}
