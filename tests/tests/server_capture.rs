//! `--capture FILE`: the server writes what it receives and sends as pcapng, and the capture
//! reader (`framewire inspect`'s) finds every frame of real TCP and UDP sessions in it, in both
//! directions, with nothing bad, skipped or missing; the file rotates at its size bound.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use framewire_protocol::wire::{Frame, Request, Text};
use framewire_server::ServerConfig;
use framewire_tests::{TestClient, TestServer, Via};
use framewire_tools::capture::{Direction, Inspection, inspect_capture};

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fw-capture-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ping(id: u32) -> Frame {
    Frame::new(Request {
        id,
        timeout_ms: 0,
        target: Text::from("sys.ping"),
        payload: Bytes::new(),
    })
}

fn inspect(path: &Path, port: u16) -> Inspection {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let (inspection, damaged) = inspect_capture(file, port, 1 << 20).unwrap();
    assert_eq!(damaged, None, "{}", path.display());
    inspection
}

#[test]
fn tcp_and_udp_sessions_are_captured_frame_for_frame() {
    let dir = scratch_dir("sessions");
    let file = dir.join("server.pcapng");
    let server = TestServer::start(ServerConfig {
        capture: Some(file.clone()),
        ..ServerConfig::default()
    });
    let mut tcp = TestClient::connect(&server, Via::Tcp);
    tcp.call_ok(1, ping(1));
    tcp.close();
    let mut udp = TestClient::connect(&server, Via::Udp);
    udp.call_ok(2, ping(2));
    udp.close();
    let (tcp_port, udp_port) = (server.addr().port(), server.udp_addr().port());
    server.stop();

    let over_tcp = inspect(&file, tcp_port);
    assert_eq!(over_tcp.connections.len(), 1);
    assert!(over_tcp.connections[0].from_start);
    let s = &over_tcp.summary;
    assert_eq!(
        (s.bad_frames, s.skipped_bytes, s.missing_bytes),
        (0, 0, 0),
        "{s:?}"
    );
    let up = over_tcp.frame_kinds(Direction::ToServer);
    let down = over_tcp.frame_kinds(Direction::ToClient);
    assert_eq!(&up[..2], ["Hello", "Request"], "{up:?}");
    assert_eq!(&down[..2], ["Welcome", "Response"], "{down:?}");
    assert!(up.contains(&"Close".to_string()), "{up:?}");

    let over_udp = inspect(&file, udp_port);
    assert_eq!(over_udp.connections.len(), 1);
    assert_eq!(over_udp.summary.bad_frames, 0);
    let up = over_udp.frame_kinds(Direction::ToServer);
    let down = over_udp.frame_kinds(Direction::ToClient);
    assert!(
        up.contains(&"Hello".to_string()) && up.contains(&"Request".to_string()),
        "{up:?}"
    );
    assert!(down.contains(&"Welcome".to_string()), "{down:?}");
    assert!(down.contains(&"Response".to_string()), "{down:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_capture_rotates_at_its_size_and_keeps_so_many_files() {
    let dir = scratch_dir("rotation");
    let file = dir.join("server.pcapng");
    let server = TestServer::start(ServerConfig {
        capture: Some(file.clone()),
        capture_max_bytes: 4096,
        capture_files: 3,
        ..ServerConfig::default()
    });
    let mut tcp = TestClient::connect(&server, Via::Tcp);
    for id in 1..=100 {
        tcp.call_ok(id, ping(id));
    }
    tcp.close();
    let port = server.addr().port();
    server.stop();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["server.pcapng", "server.pcapng.1", "server.pcapng.2"],
        "the current file and two older ones"
    );
    for name in &names {
        let path = dir.join(name);
        // The bound, plus at most the packet that crossed it.
        assert!(
            std::fs::metadata(&path).unwrap().len() < 4096 + 512,
            "{name}"
        );
        // A file after the first starts mid-connection: the reader finds the frames again. The
        // full (older) files hold round trips; the current one at least the connection's end.
        let inspection = inspect(&path, port);
        let s = &inspection.summary;
        assert_eq!(s.bad_frames, 0, "{name}: {s:?}");
        let wanted = if name.ends_with("pcapng") {
            "CloseAck"
        } else {
            "Request"
        };
        assert!(s.frames_by_kind.contains_key(wanted), "{name}: {s:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
