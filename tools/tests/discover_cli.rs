//! LAN discovery (docs/PROTOCOL.md section 4.12): `framewire discover` and the server's answers,
//! on loopback (a broadcast to `127.255.255.255` reaches a server bound to `0.0.0.0`), and across
//! a LAN of network namespaces (`lan_*`: needs root and iproute2; `.ci/run` runs them with
//! `--ignored`).

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;

use framewire_protocol::discovery::{self, DISCOVERY_OVERHEAD};
use framewire_protocol::samples;
use framewire_protocol::wire::{Datagram, Frame, FrameBody};
use framewire_server::ServerConfig;
use framewire_tests::TestServer;
#[cfg(target_os = "linux")]
use framewire_tests::netns::Lan;

fn discover_json(command: &mut Command) -> (bool, Vec<String>, String) {
    let out = command.output().expect("framewire runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.success(),
        stdout.lines().map(str::to_string).collect(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn framewire() -> Command {
    Command::new(env!("CARGO_BIN_EXE_framewire"))
}

/// `framewire discover --to SERVER --json --wait 200`, and `more`.
fn discover_at(server: SocketAddr, more: &[&str]) -> (bool, Vec<String>, String) {
    let to = server.to_string();
    let mut command = framewire();
    command.args(["discover", "--to", &to, "--json", "--wait", "200"]);
    discover_json(command.args(more))
}

/// A server bound to every address of the machine (so a broadcast reaches it), on two workers
/// (so two sockets hear each broadcast).
fn server_on_any_address(config: ServerConfig) -> TestServer {
    let mut config = config;
    config.threads = 2;
    let any = SocketAddr::from(([0, 0, 0, 0], 0));
    TestServer::start_on(config, any, any)
}

fn named(name: &str) -> ServerConfig {
    ServerConfig {
        node_name: Some(name.into()),
        ..ServerConfig::default()
    }
}

#[test]
fn a_broadcast_on_loopback_finds_the_server_once_with_its_addresses() {
    let server = server_on_any_address(named("edge-lo"));
    let port = server.udp_addr().port();
    let tcp = server.addr().port();
    let http = server.http_addr();
    let (ok, lines, err) = discover_json(framewire().args([
        "discover",
        "--to",
        &format!("127.255.255.255:{port}"),
        "--json",
        "--wait",
        "400",
    ]));
    assert!(ok, "{err}");
    assert_eq!(
        lines,
        [format!(
            "{{\"name\":\"edge-lo\",\"from\":\"127.0.0.1:{port}\",\"truncated\":false,\
             \"tcp\":\"127.0.0.1:{tcp}\",\"udp\":\"127.0.0.1:{port}\",\"http\":\"{http}\"}}"
        )],
        "the unspecified hosts are the answer's"
    );
    // Three sends (one and two resends), each heard by both workers' sockets: one answer.
    let c = server.counted(|c| c.discovery.answered + c.discovery.repeated == 6);
    assert_eq!((c.discovery.answered, c.discovery.repeated), (1, 5));
}

/// Sends a Hello after what came before and waits for its Challenge: the server answers one
/// address's datagrams in order, so every answer due to the earlier ones has come by then.
fn answers_before_a_challenge(socket: &UdpSocket, server: SocketAddr) -> Vec<Vec<u8>> {
    let hello = samples::datagram(0, 0, &[samples::hello(0x5eed, 1200)], 0);
    socket.send_to(&hello, server).unwrap();
    socket
        .set_read_timeout(Some(framewire_tests::DEADLINE))
        .unwrap();
    let mut answers = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        let (n, _) = socket.recv_from(&mut buf).expect("the Challenge comes");
        let d = Datagram::parse(bytes::Bytes::copy_from_slice(&buf[..n])).unwrap();
        let frame = Frame::parse(d.frames().next().unwrap()).unwrap();
        if matches!(frame.body, FrameBody::Challenge(_)) {
            return answers;
        }
        answers.push(buf[..n].to_vec());
    }
}

#[test]
fn answers_are_shorter_than_their_requests_once_each_and_within_the_rate() {
    let server = TestServer::start(ServerConfig {
        discovery_rate: 3,
        ..named("edge-rate")
    });
    let to = server.udp_addr();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Too small for even the name; then five nonces, the first twice.
    socket
        .send_to(&discovery::request(1, DISCOVERY_OVERHEAD + 8), to)
        .unwrap();
    for nonce in [10, 10, 11, 12, 13, 14] {
        socket.send_to(&discovery::request(nonce, 200), to).unwrap();
    }
    let answers = answers_before_a_challenge(&socket, to);
    let nonces: Vec<u64> = answers
        .iter()
        .map(|a| {
            assert!(a.len() < 200, "an answer of {} bytes to 200", a.len());
            discovery::read_answer(a).unwrap().nonce
        })
        .collect();
    // The too-small request took a token of the rate too: 1, 10 and 11 did.
    assert_eq!(nonces, [10, 11]);
    let d = server.counters().discovery;
    assert_eq!(
        (d.answered, d.repeated, d.rate_limited, d.too_small),
        (2, 1, 3, 1)
    );
}

#[test]
fn a_server_with_discovery_off_does_not_answer() {
    let server = TestServer::start(ServerConfig {
        discovery: false,
        ..named("edge-quiet")
    });
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .send_to(&discovery::request(5, 512), server.udp_addr())
        .unwrap();
    assert!(answers_before_a_challenge(&socket, server.udp_addr()).is_empty());
    let (ok, lines, err) = discover_at(server.udp_addr(), &[]);
    assert!(!ok && lines.is_empty(), "{lines:?}");
    assert!(err.contains("no server answered"), "{err}");
}

#[test]
fn a_small_request_gets_the_lines_that_fit_and_says_so() {
    let server = TestServer::start(named("edge-small"));
    // The packet header, the frame, the nonce and the CRC, the name line and part of the TCP
    // line: the TCP line does not fit.
    let size = DISCOVERY_OVERHEAD + "name=edge-small\n".len() + 10 + 1;
    let (ok, lines, err) = discover_at(server.udp_addr(), &["--size", &size.to_string()]);
    assert!(ok, "{err}");
    assert_eq!(
        lines,
        [format!(
            "{{\"name\":\"edge-small\",\"from\":\"{}\",\"truncated\":true}}",
            server.udp_addr()
        )]
    );
    assert!(err.contains("larger --size"), "{err}");
}

#[test]
fn an_advertised_address_is_named_in_place_of_the_bound_one() {
    let server = TestServer::start(ServerConfig {
        advertise: vec![("udp", "203.0.113.7:7400".parse().unwrap())],
        http_addr: None,
        ..named("edge-nat")
    });
    let (ok, lines, err) = discover_at(server.udp_addr(), &[]);
    assert!(ok, "{err}");
    assert_eq!(
        lines,
        [format!(
            "{{\"name\":\"edge-nat\",\"from\":\"{}\",\"truncated\":false,\
             \"tcp\":\"{}\",\"udp\":\"203.0.113.7:7400\"}}",
            server.udp_addr(),
            server.addr()
        )]
    );
}

#[test]
fn discover_refuses_a_size_out_of_range() {
    let out = framewire()
        .args(["discover", "--size", "20"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Two servers on hosts 0 and 1 of a LAN, on port 7400 of every address, as two machines would
/// be; `framewire discover` on host 2.
#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root and iproute2 (network namespaces); .ci/run runs it"]
fn lan_a_broadcast_finds_every_server_on_the_network_and_their_addresses_work() {
    let lan = Lan::new("fwd", 3).expect("a LAN of network namespaces (root, iproute2)");
    let mut servers = Vec::new();
    for (i, name) in ["lan-a", "lan-b"].into_iter().enumerate() {
        let server = lan
            .on_host(i, move || {
                let any = SocketAddr::from(([0, 0, 0, 0], 7400));
                let mut config = named(name);
                config.threads = 2;
                config.http_addr = None;
                TestServer::start_on(config, any, any)
            })
            .expect("host's namespace");
        servers.push(server);
    }
    let framewire = env!("CARGO_BIN_EXE_framewire");
    let line = |i: usize, name: &str| {
        let a = Lan::address(i);
        format!(
            "{{\"name\":\"{name}\",\"from\":\"{a}:7400\",\"truncated\":false,\
             \"tcp\":\"{a}:7400\",\"udp\":\"{a}:7400\"}}"
        )
    };
    let want = [line(0, "lan-a"), line(1, "lan-b")];
    // The limited broadcast (the default target), and the LAN's own broadcast address.
    for to in [None, Some(format!("{}:7400", Lan::broadcast()))] {
        let mut command = lan.command(2, framewire);
        command.args(["discover", "--json", "--wait", "500"]);
        if let Some(to) = &to {
            command.args(["--to", to]);
        }
        let (ok, mut lines, err) = discover_json(&mut command);
        assert!(ok, "{to:?}: {err}");
        lines.sort();
        assert_eq!(lines, want, "{to:?}");
    }
    for (i, server) in servers.iter().enumerate() {
        // Two discovers of three sends, each heard by both workers' sockets: two answers.
        let c = server.counted(|c| c.discovery.answered + c.discovery.repeated == 12);
        assert_eq!(c.discovery.answered, 2, "server {i}");
        // What the answer named takes a client.
        let out = lan
            .command(2, framewire)
            .args([
                "--server",
                &format!("{}:7400", Lan::address(i)),
                "req",
                "sys.ping",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
