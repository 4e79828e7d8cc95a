//! Request/response through a real server, over TCP and UDP: the built-in methods, services that
//! clients register (round robin, deadlines, no responder), and a responder that disconnects.

use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::wire::{Frame, FrameBody, Register, Request, Response, Status, Text};
use framewire_server::ServerConfig;
use framewire_tests::{BOTH, TestClient, TestServer, Via};

fn request(id: u32, target: &str, payload: &'static [u8], timeout_ms: u32) -> Frame {
    Frame::new(Request {
        id,
        timeout_ms,
        target: Text::from(target),
        payload: Bytes::from_static(payload),
    })
}

fn ask(c: &mut TestClient, id: u32, target: &str, timeout_ms: u32) -> Response {
    c.send(request(id, target, b"?", timeout_ms));
    c.until_response(id).1
}

fn register(c: &mut TestClient, id: u32, name: &str) {
    c.call_ok(
        id,
        Frame::new(Register {
            id,
            service: Text::from(name),
        }),
    );
}

/// Waits for a routed request and returns it.
fn next_request(c: &mut TestClient) -> Request {
    match c.recv().body {
        FrameBody::Request(r) => r,
        other => panic!("expected a routed request: {other:?}"),
    }
}

#[test]
fn built_in_methods_over_both_transports() {
    let server = TestServer::start(ServerConfig::default());
    for via in BOTH {
        let mut c = TestClient::connect(&server, via);
        let pong = ask(&mut c, 1, "sys.ping", 0);
        assert_eq!((pong.status, &pong.payload[..]), (Status::OK, &b"pong"[..]));
        let time = ask(&mut c, 2, "sys.time", 0);
        let micros: u64 = std::str::from_utf8(&time.payload).unwrap().parse().unwrap();
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        assert!(micros.abs_diff(wall) < 5_000_000, "{micros} vs {wall}");
        let info = ask(&mut c, 3, "sys.info", 0);
        let info = String::from_utf8(info.payload.to_vec()).unwrap();
        assert!(info.contains("\"max_connections\":10000"), "{info}");
        let stats = ask(&mut c, 4, "sys.stats", 0);
        let stats = String::from_utf8(stats.payload.to_vec()).unwrap();
        let mine = if via == Via::Tcp {
            "\"tcp\":{\"sessions\":1,"
        } else {
            "\"udp\":{\"sessions\":1,"
        };
        assert!(stats.contains(mine), "{stats}");
        assert_eq!(ask(&mut c, 5, "sys.bogus", 0).status, Status::NOT_FOUND);
        assert_eq!(
            ask(&mut c, 6, "nobody.home", 0).status,
            Status::NO_RESPONDER
        );
    }
}

/// A requester on one transport, two responders (one on each): requests alternate between them,
/// pipelined, and every response comes back under the requester's id.
#[test]
fn requests_route_round_robin_across_transports() {
    let server = TestServer::start(ServerConfig::default());
    for requester_via in BOTH {
        let mut tcp_side = TestClient::connect(&server, Via::Tcp);
        let mut udp_side = TestClient::connect(&server, Via::Udp);
        // A name per round: the last round's UDP responder stays registered until its session
        // times out.
        let name = format!("echo.upper.{requester_via:?}");
        register(&mut tcp_side, 1, &name);
        register(&mut udp_side, 1, &name);
        let mut requester = TestClient::connect(&server, requester_via);
        for id in 10..14 {
            requester.send(request(id, &name, b"hi", 0));
        }
        let mut answered = [0u32; 2];
        for (i, responder) in [&mut tcp_side, &mut udp_side].into_iter().enumerate() {
            for _ in 0..2 {
                let r = next_request(responder);
                assert_eq!(&r.payload[..], b"hi");
                responder.send(Frame::new(Response {
                    id: r.id,
                    status: Status::OK,
                    payload: Bytes::from(format!("HI from {i}")),
                }));
                answered[i] += 1;
            }
        }
        assert_eq!(answered, [2, 2], "round robin");
        let mut ids = Vec::new();
        for _ in 0..4 {
            match requester.recv().body {
                FrameBody::Response(r) => {
                    assert_eq!(r.status, Status::OK);
                    assert!(r.payload.starts_with(b"HI from "));
                    ids.push(r.id);
                }
                other => panic!("{other:?}"),
            }
        }
        ids.sort_unstable();
        assert_eq!(ids, vec![10, 11, 12, 13]);
    }
}

#[test]
fn a_request_times_out_and_the_late_response_is_dropped() {
    let server = TestServer::start(ServerConfig::default());
    for via in BOTH {
        let mut responder = TestClient::connect(&server, via);
        register(&mut responder, 1, "slow");
        let mut requester = TestClient::connect(&server, via);
        let started = std::time::Instant::now();
        requester.send(request(7, "slow", b"", 200));
        let routed = next_request(&mut responder);
        assert_eq!(routed.timeout_ms, 200, "the provider learns the deadline");
        let (_, r) = requester.until_response(7);
        assert_eq!(r.status, Status::TIMEOUT);
        assert!(started.elapsed() >= Duration::from_millis(200));
        responder.send(Frame::new(Response {
            id: routed.id,
            status: Status::OK,
            payload: Bytes::new(),
        }));
        assert!(
            requester.recv_within(Duration::from_millis(200)).is_none(),
            "a late response goes nowhere"
        );
    }
}

/// The responder's connection drops while a request waits on it: the requester hears
/// `RESPONDER_GONE` at once (TCP: the socket closes; UDP: the session's idle timeout).
#[test]
fn a_routed_request_whose_responder_disconnects() {
    let config = ServerConfig {
        idle_timeout_ms: 1_000,
        heartbeat_interval_ms: 200,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    for via in BOTH {
        let mut responder = TestClient::connect(&server, via);
        register(&mut responder, 1, "flaky");
        let mut requester = TestClient::connect(&server, Via::Tcp);
        requester.send(request(3, "flaky", b"", 60_000));
        let _ = next_request(&mut responder);
        responder.vanish();
        let (_, r) = requester.until_response(3);
        assert_eq!(r.status, Status::RESPONDER_GONE, "{via:?}");
        assert_eq!(
            ask(&mut requester, 4, "flaky", 0).status,
            Status::NO_RESPONDER
        );
    }
}
