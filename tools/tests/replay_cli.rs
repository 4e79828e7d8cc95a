//! `framewire replay` as operators run it: the tcpdump fixture against a fresh server exits 0 with
//! a report of what matched; against a server that changed it exits 1 and names the differences;
//! `--json` reports the same for machines; bad arguments are usage errors.

mod common;

use std::path::Path;

use common::framewire;
use framewire_server::ServerConfig;
use framewire_tests::TestServer;

fn fixture() -> String {
    fixture_named("lo.pcap")
}

fn fixture_named(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn a_fresh_server_answers_as_captured() {
    let server = TestServer::start_one_port(&ServerConfig::default());
    let target = server.addr().to_string();
    let (code, out, err) = framewire(&["replay", &fixture(), "--target", &target, "--max"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("replayed 6 sessions"), "{out}");
    assert!(out.contains("frames sent: 10 (0 not sent"), "{out}");
    assert!(
        out.contains("17 expected, 17 matched, 0 mismatched, 0 missing, 0 unexpected"),
        "{out}"
    );
    assert!(out.contains("latency to a response or echo: p50 "), "{out}");
    assert!(out.contains("(10 answers)"), "{out}");
    assert!(!out.contains("differences:"), "{out}");
    // Not a terminal: no progress bar.
    assert!(err.is_empty(), "{err}");
}

/// A tcpdump capture whose UDP packets each hold a run of datagrams (sent in one call): each is
/// split and replayed, TCP and UDP sessions alike, with no difference.
#[test]
fn a_capture_of_datagram_runs_replays_with_no_difference() {
    let server = TestServer::start_one_port(&ServerConfig::default());
    let target = server.addr().to_string();
    let capture = fixture_named("offload.pcap");
    let (code, out, err) = framewire(&["replay", &capture, "--target", &target, "--max"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("replayed 6 sessions"), "{out}");
    assert!(out.contains("frames sent: 8 (0 not sent"), "{out}");
    assert!(
        out.contains("18 expected, 18 matched, 0 mismatched, 0 missing, 0 unexpected"),
        "{out}"
    );
    let (code, text, _) = framewire(&["inspect", &capture]);
    assert_eq!(code, 0);
    assert!(
        text.contains("one packet holding 2 datagrams of "),
        "{text}"
    );
    assert!(text.contains("0 bad frames"), "{text}");
    assert!(text.contains("12 UDP packets each held a run"), "{text}");
}

#[test]
fn a_changed_server_fails_the_replay_with_its_differences() {
    let mut config = ServerConfig::default();
    config.hub.max_name_len = 5;
    let server = TestServer::start_one_port(&config);
    let target = server.addr().to_string();
    let (code, out, _) = framewire(&[
        "replay",
        &fixture(),
        "--target",
        &target,
        "--speed",
        "10",
        "--timeout",
        "500",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2 mismatched, 1 missing"), "{out}");
    assert!(out.contains("differences:"), "{out}");
    assert!(out.contains("name too long"), "{out}");

    let (code, json, _) = framewire(&[
        "replay",
        &fixture(),
        "--target",
        &target,
        "--max",
        "--timeout",
        "500",
        "--json",
    ]);
    assert_eq!(code, 1, "{json}");
    let json = json.trim();
    assert!(json.starts_with('{') && json.ends_with('}'), "{json}");
    for field in [
        "\"sessions\":6",
        "\"expected\":17",
        "\"matched\":14",
        "\"mismatched\":2",
        "\"missing\":1",
        "\"transport\":\"tcp\"",
    ] {
        assert!(json.contains(field), "{field} in {json}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let f = fixture();
    for args in [
        vec!["replay", f.as_str()],
        vec![
            "replay",
            f.as_str(),
            "--target",
            "127.0.0.1:1",
            "--max",
            "--speed",
            "2",
        ],
        vec![
            "replay",
            f.as_str(),
            "--target",
            "127.0.0.1:1",
            "--speed",
            "0",
        ],
    ] {
        let (code, _, err) = framewire(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    let (code, _, err) = framewire(&["replay", "no-such-file.pcap", "--target", "127.0.0.1:1"]);
    assert_eq!(code, 1);
    assert!(err.contains("no-such-file.pcap"), "{err}");
}
