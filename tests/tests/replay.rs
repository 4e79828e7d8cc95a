//! `framewire replay`'s engine against real servers: the tcpdump fixtures and a server's own
//! capture of sessions that use everything a replay must rewrite (a resumed session's token, the
//! id of a request routed to a service, a queue delivery acknowledged from another session, UDP
//! fragments) replay against a fresh server with no difference; a server whose behaviour changed
//! is caught, each difference named.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::wire::{
    Data, Frame, FrameBody, HelloOptions, LastWill, Publish, QueueAck, QueueFetch, QueuePush,
    Register, Request, Response, Status, Subscribe, Text,
};
use framewire_server::ServerConfig;
use framewire_tests::{TestClient, TestServer, Via};
use framewire_tools::capture::inspect_capture;
use framewire_tools::replay::{Pace, ReplayConfig, Report, Script, replay};

const LOCAL: [u8; 4] = [127, 0, 0, 1];

fn script_of(path: &Path, port: u16) -> Script {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let (inspection, damaged) = inspect_capture(file, port, 1 << 20).unwrap();
    assert_eq!(damaged, None, "{}", path.display());
    let bad: Vec<_> = inspection
        .records
        .iter()
        .filter(|r| matches!(r.what, framewire_tools::capture::Seen::Bad(_)))
        .collect();
    assert!(bad.is_empty(), "{}: {bad:#?}", path.display());
    Script::from_inspection(&inspection)
}

fn fixture(name: &str) -> Script {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tools/tests/fixtures")
        .join(name);
    script_of(&path, 7400)
}

fn run(script: &Script, server: &TestServer, pace: Pace) -> Report {
    let config = ReplayConfig {
        target: server.addr(),
        pace,
        timeout: Duration::from_millis(1500),
        token: None,
        seal_keys: None,
    };
    let mut last = (0, 0);
    let report = replay(script, &config, &mut |done, total| last = (done, total)).unwrap();
    assert_eq!(last.0, last.1, "progress reached the end");
    report
}

fn assert_clean(report: &Report) {
    let t = &report.tally;
    assert!(
        report.is_clean(),
        "{t:?}, {} not sent: {:#?}",
        report.frames_not_sent,
        report.differences
    );
    assert_eq!(t.matched, t.expected);
}

#[test]
fn the_tcpdump_fixtures_replay_without_a_difference() {
    let server = TestServer::start_one_port(&ServerConfig::default());
    for name in ["lo.pcap", "any.pcap"] {
        let script = fixture(name);
        // 4 TCP and 2 UDP sessions: 3 pings, a subscribe, a publish and its delivery, a
        // request; then 3 pings and a request over UDP.
        assert_eq!(script.sessions.len(), 6, "{name}");
        assert_eq!(script.frames_to_send(), 10, "{name}");
        assert_eq!(script.frames_expected(), 17, "{name}");
        for pace in [Pace::Max, Pace::Speed(8.0)] {
            let report = run(&script, &server, pace);
            assert_clean(&report);
            assert_eq!(report.frames_sent, 10);
            assert_eq!(report.tally.expected, 17);
            assert_eq!(report.latency_us.len(), 10, "one round trip per request");
        }
    }
}

#[test]
fn the_captured_timing_is_kept_at_the_speed_given() {
    let server = TestServer::start_one_port(&ServerConfig::default());
    let script = fixture("lo.pcap");
    let span = script.steps.last().unwrap().time;
    assert!(span > Duration::from_millis(400), "{span:?}");
    let report = run(&script, &server, Pace::Speed(2.0));
    assert_clean(&report);
    assert!(
        report.elapsed >= span / 2,
        "{:?} < {span:?} / 2",
        report.elapsed
    );
}

#[test]
fn a_server_that_changed_is_caught_difference_by_difference() {
    // Names of at most 5 bytes: the fixtures' subscribe and publish ("fixtures/#", "fixtures/a")
    // are refused, so the message is never delivered.
    let mut config = ServerConfig::default();
    config.hub.max_name_len = 5;
    let server = TestServer::start_one_port(&config);
    let report = run(&fixture("lo.pcap"), &server, Pace::Max);
    let t = &report.tally;
    assert!(!report.is_clean());
    assert_eq!(
        (t.expected, t.matched, t.mismatched, t.missing),
        (17, 14, 2, 1),
        "{t:?}"
    );
    let what: Vec<&str> = report
        .differences
        .iter()
        .map(|(_, _, d)| d.what.as_str())
        .collect();
    assert_eq!(what.len(), 3, "{what:?}");
    assert_eq!(
        what.iter().filter(|w| w.contains("name too long")).count(),
        2,
        "{what:?}"
    );
    assert!(
        what.iter()
            .any(|w| w.starts_with("missing Message \"fixtures/a\"")),
        "{what:?}"
    );
}

#[test]
fn nothing_listening_is_every_answer_missing() {
    // A server started and stopped: its port is closed.
    let server = TestServer::start_one_port(&ServerConfig::default());
    let config = ReplayConfig {
        target: server.addr(),
        pace: Pace::Max,
        timeout: Duration::from_millis(200),
        token: None,
        seal_keys: None,
    };
    server.stop();
    let report = replay(&fixture("lo.pcap"), &config, &mut |_, _| {}).unwrap();
    assert!(!report.is_clean());
    assert_eq!(report.tally.matched, 0);
    assert_eq!(report.tally.missing, 17);
}

fn call(c: &mut TestClient, id: u32, body: impl Into<FrameBody>) -> Vec<Frame> {
    c.call_ok(
        id,
        Frame {
            channel: 0,
            seq: None,
            body: body.into(),
        },
    )
}

fn request(id: u32, target: &str, payload: &'static [u8]) -> Request {
    Request {
        id,
        timeout_ms: 0,
        target: Text::from(target),
        payload: Bytes::from_static(payload),
    }
}

/// A service registered on `service`, asked by `asker` (request id `id`), answering `answer`.
fn routed_request(
    asker: &mut TestClient,
    service: &mut TestClient,
    id: u32,
    name: &str,
    answer: &'static [u8],
) {
    asker.send(Frame::new(request(id, name, b"hi")));
    let FrameBody::Request(routed) = service.recv().body else {
        panic!("the service got no request");
    };
    service.send(Frame::new(Response {
        id: routed.id,
        status: Status::OK,
        payload: Bytes::from_static(answer),
    }));
    let (_, r) = asker.until_response(id);
    assert_eq!(&r.payload[..], answer);
}

/// Pushes onto `queue` and fetches it back: the delivery id.
fn push_and_fetch(c: &mut TestClient, queue: &str, payload: &'static [u8]) -> u64 {
    call(
        c,
        1,
        QueuePush {
            id: 1,
            queue: Text::from(queue),
            payload: Bytes::from_static(payload),
        },
    );
    let before = call(
        c,
        2,
        QueueFetch {
            id: 2,
            max: 1,
            wait_ms: 0,
            queue: Text::from(queue),
        },
    );
    match &before[..] {
        [
            Frame {
                body: FrameBody::QueueDelivery(d),
                ..
            },
        ] => d.delivery_id,
        other => panic!("expected one delivery: {other:?}"),
    }
}

/// Sessions that exercise every rewrite, against `server` (capturing).
fn sessions_worth_replaying(server: &TestServer) {
    let from = IpAddr::from(LOCAL);
    // A watcher learns from a device's last will when the device's session has ended.
    let mut watcher = TestClient::connect(server, Via::Tcp);
    call(
        &mut watcher,
        1,
        Subscribe {
            id: 1,
            filter: Text::from("will/#"),
        },
    );
    let will = LastWill {
        retain: false,
        channel: 0,
        topic: Text::from("will/device"),
        payload: Bytes::from_static(b"gone"),
    };
    let options = HelloOptions::builder().last_will(&will).build().unwrap();
    let (mut device, welcomed) = TestClient::connect_with(server, Via::Tcp, from, 2, options);
    call(
        &mut device,
        1,
        Subscribe {
            id: 1,
            filter: Text::from("room/#"),
        },
    );
    device.vanish();
    assert!(matches!(watcher.recv().body, FrameBody::Message(_)));
    call(
        &mut watcher,
        2,
        Publish {
            retain: false,
            id: 2,
            topic: Text::from("room/1"),
            payload: Bytes::from_static(b"kept for the device"),
        },
    );
    // The device comes back with its token, over UDP this time, and gets what it missed.
    let options = HelloOptions::builder()
        .resume_token(&welcomed.token)
        .build()
        .unwrap();
    let (mut device, back) = TestClient::connect_with(server, Via::Udp, from, 3, options);
    assert!(back.resumed);
    assert!(matches!(device.recv().body, FrameBody::Message(_)));
    call(&mut device, 5, request(5, "sys.time", b""));
    call(&mut device, 6, request(6, "sys.info", b""));
    // A request routed to a service, which answers under the id the server chose.
    let mut service = TestClient::connect_from(server, Via::Udp, from, 4);
    call(
        &mut service,
        1,
        Register {
            id: 1,
            service: Text::from("echo"),
        },
    );
    routed_request(&mut watcher, &mut service, 7, "echo", b"hi back");
    // A delivery fetched in one session and acknowledged in another.
    let mut worker = TestClient::connect_from(server, Via::Udp, from, 5);
    let delivery_id = push_and_fetch(&mut worker, "jobs", b"job 1");
    worker.close();
    call(
        &mut watcher,
        8,
        QueueAck {
            id: 8,
            delivery_id,
            queue: Text::from("jobs"),
        },
    );
    // A message too large for one datagram, both ways.
    let big = Bytes::from(vec![0x5a; 5000]);
    device.send(Frame::new(Data {
        payload: big.clone(),
    }));
    let FrameBody::Data(echo) = device.recv().body else {
        panic!("no echo");
    };
    assert_eq!(echo.payload, big);
    for c in [watcher, device, service] {
        c.close();
    }
}

#[test]
fn a_servers_own_capture_replays_with_every_rewrite() {
    let dir = std::env::temp_dir().join(format!("fw-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file: PathBuf = dir.join("server.pcapng");
    let captured = TestServer::start_one_port(&ServerConfig {
        capture: Some(file.clone()),
        ..ServerConfig::default()
    });
    let port = captured.addr().port();
    sessions_worth_replaying(&captured);
    captured.stop();
    let script = script_of(&file, port);
    assert_eq!(script.sessions.len(), 5);
    assert_eq!(script.skipped_connections, 0);

    // The target has served others first, so its delivery ids and routed request ids are not
    // the captured server's, and its session tokens never are.
    let target = TestServer::start_one_port(&ServerConfig::default());
    let mut other = TestClient::connect(&target, Via::Tcp);
    let mut other_service = TestClient::connect(&target, Via::Tcp);
    call(
        &mut other_service,
        1,
        Register {
            id: 1,
            service: Text::from("warm-up"),
        },
    );
    for id in 10..13 {
        routed_request(&mut other, &mut other_service, id, "warm-up", b"ok");
        push_and_fetch(&mut other, "warm-up", b"x");
    }
    let report = run(&script, &target, Pace::Max);
    assert_clean(&report);
    assert!(report.tally.expected >= 15, "{:?}", report.tally);
    // A round trip for each of the 10 operations answered with a Response, and the Data's echo.
    assert_eq!(report.latency_us.len(), 11);
    let _ = std::fs::remove_dir_all(&dir);
}
