//! The `framewire` binary against a server started in-process on port 0: ping, a pub/sub round
//! trip, requests and their failures, a queue long poll, and `bench --json`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use framewire_server::ServerConfig;
use framewire_tests::TestServer;

const DEADLINE: Duration = Duration::from_secs(20);

/// A child process killed if the test ends first.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn framewire(server: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["--server", server];
    all.extend_from_slice(args);
    common::framewire(&all)
}

/// Starts `framewire` in the background; its stdout lines arrive on the returned channel.
fn spawn(server: &str, args: &[&str]) -> (Running, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_framewire"))
        .arg("--server")
        .arg(server)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run framewire");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Running(child), rx)
}

fn finish(mut child: Running) -> i32 {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            return status.code().unwrap_or(-1);
        }
        assert!(start.elapsed() < DEADLINE, "the command did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn ping_over_both_transports() {
    let server = TestServer::start(ServerConfig::default());
    for (addr, udp) in [
        (server.addr().to_string(), false),
        (server.udp_addr().to_string(), true),
    ] {
        let mut args = vec!["ping", "-c", "3"];
        if udp {
            args.push("--udp");
        }
        let (code, out, err) = framewire(&addr, &args);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.matches("pong from").count(), 3, "{out}");
        assert!(out.contains("3 sent, 3 received: min/avg/p99/max"), "{out}");
    }
}

#[test]
fn pub_and_sub_round_trip() {
    let server = TestServer::start(ServerConfig::default());
    let addr = server.addr().to_string();
    // A retained message tells the test the subscriber is in place: it is the first line printed.
    let (code, _, err) = framewire(&addr, &["pub", "room/1", "first", "--retain"]);
    assert_eq!(code, 0, "{err}");
    let (sub, lines) = spawn(&addr, &["sub", "room/+", "-n", "2"]);
    assert_eq!(lines.recv_timeout(DEADLINE).expect("a line"), "first");
    let (code, _, err) = framewire(&addr, &["pub", "room/1", "second"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines.recv_timeout(DEADLINE).expect("a line"), "second");
    assert_eq!(finish(sub), 0);
    // Unreliable publishes are fire and forget, and succeed with nobody listening.
    let (code, _, err) = framewire(&addr, &["pub", "room/2", "x", "--unreliable"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn requests_print_the_answer_or_fail_with_the_status() {
    let server = TestServer::start(ServerConfig::default());
    let addr = server.addr().to_string();
    let (code, out, _) = framewire(&addr, &["req", "sys.ping"]);
    assert_eq!((code, out.as_str()), (0, "pong\n"));
    let (code, out, _) = framewire(&addr, &["req", "sys.info"]);
    assert_eq!(code, 0);
    assert!(out.contains("\"server\":\"framewire-server\""), "{out}");
    let (code, _, err) = framewire(&addr, &["req", "nobody.home"]);
    assert_eq!(code, 1);
    assert!(err.contains("no responder"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let (code, _, err) = framewire("127.0.0.1:9", &["req", "sys.ping"]);
    assert_eq!(code, 1);
    assert!(err.contains("unreachable"), "{err}");
    let (code, _, _) = framewire(&addr, &["req"]);
    assert_eq!(code, 2, "a usage error");
    // Several servers (a cluster's nodes): the first that answers.
    let (code, out, _) = framewire(&format!("127.0.0.1:9,{addr}"), &["req", "sys.ping"]);
    assert_eq!((code, out.as_str()), (0, "pong\n"));
    let (code, _, err) = framewire("127.0.0.1:9,nowhere", &["req", "sys.ping"]);
    assert_eq!(code, 2, "a usage error: {err}");
}

#[test]
fn queue_long_poll_returns_with_the_pushed_message() {
    let server = TestServer::start(ServerConfig::default());
    let addr = server.addr().to_string();
    let (fetch, lines) = spawn(&addr, &["queue", "fetch", "jobs", "--wait", "15000"]);
    let (code, _, err) = framewire(&addr, &["queue", "push", "jobs", "job-1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines.recv_timeout(DEADLINE).expect("a line"), "job-1");
    assert_eq!(finish(fetch), 0);
    // Fetched without an ack, it can be acked by id; acked, it is gone.
    framewire(&addr, &["queue", "push", "jobs", "job-2"]);
    let (code, out, _) = framewire(&addr, &["queue", "fetch", "jobs", "--no-ack"]);
    assert_eq!(code, 0);
    let (id, payload) = out.trim_end().split_once('\t').expect("id and payload");
    assert_eq!(payload, "job-2");
    // The fetching session has ended, so job-2 is back in the queue; the ack by id still removes
    // it.
    let (code, _, err) = framewire(&addr, &["queue", "ack", "jobs", id]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = framewire(&addr, &["queue", "fetch", "jobs", "-n", "5"]);
    assert_eq!((code, out.as_str()), (0, ""));
    let (code, _, err) = framewire(&addr, &["queue", "ack", "jobs", id]);
    assert_eq!(code, 1);
    assert!(err.contains("not found"), "{err}");
}

fn field(json: &str, name: &str) -> f64 {
    let at = json
        .find(&format!("\"{name}\":"))
        .unwrap_or_else(|| panic!("{name} in {json}"));
    let rest = &json[at + name.len() + 3..];
    let end = rest.find([',', '}']).expect("a value");
    rest[..end]
        .parse()
        .unwrap_or_else(|_| panic!("{name} in {json}"))
}

#[test]
fn bench_prints_one_json_line() {
    let server = TestServer::start(ServerConfig::default());
    for (addr, extra) in [
        (server.addr().to_string(), vec![]),
        (server.addr().to_string(), vec!["--mode", "pubsub"]),
        (server.udp_addr().to_string(), vec!["--udp"]),
    ] {
        let mut args = vec![
            "bench",
            "--clients",
            "4",
            "--window",
            "8",
            "--duration",
            "0.5",
            "--json",
        ];
        args.extend(extra);
        let (code, out, err) = framewire(&addr, &args);
        assert_eq!(code, 0, "{err}");
        let line = out.trim();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(field(line, "msgs_per_s") > 0.0, "{line}");
        assert!(field(line, "p50_us") <= field(line, "p99_us"), "{line}");
        assert!(field(line, "p99_us") <= field(line, "p999_us"), "{line}");
        assert!(line.contains("\"errors\":0}"), "{line}");
    }
}

/// `framewire token` issues what a server that requires tokens accepts; the token's permissions
/// hold; without one, or with a short key, the failure is one clear line.
#[test]
fn tokens_issued_by_the_tool_open_the_door_and_no_further() {
    let dir = std::env::temp_dir().join(format!("fw-token-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("token.key");
    std::fs::write(&key, [0x42u8; 32]).unwrap();
    let short = dir.join("short.key");
    std::fs::write(&short, [0x42u8; 8]).unwrap();
    let server = TestServer::start(ServerConfig {
        token_key_file: Some(key.clone()),
        require_tokens: true,
        ..ServerConfig::default()
    });
    let addr = server.addr().to_string();
    let key_arg = key.to_string_lossy().into_owned();
    let (code, out, err) = framewire(
        &addr,
        &[
            "token",
            "--key",
            &key_arg,
            "--client",
            "dev-7",
            "--expires",
            "10m",
            "--pub",
            "dev/7/#",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let token = out.trim().to_owned();
    let (code, _, err) = framewire(&addr, &["--token", &token, "pub", "dev/7/temp", "21"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = framewire(&addr, &["--token", &token, "pub", "dev/8/temp", "21"]);
    assert_eq!(code, 1);
    assert!(err.contains("forbidden"), "{err}");
    let (code, out, _) = framewire(&addr, &["--token", &token, "req", "sys.ping"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "pong\n"),
        "sys.* is always allowed"
    );
    let (code, _, err) = framewire(&addr, &["pub", "dev/7/temp", "21"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("authentication failed") && err.contains("token is required"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let udp = server.udp_addr().to_string();
    let (code, _, err) = framewire(&udp, &["--udp", "--token", &token, "pub", "dev/7/x", "1"]);
    assert_eq!(code, 0, "over UDP too: {err}");
    let short_arg = short.to_string_lossy().into_owned();
    let (code, _, err) = framewire(&addr, &["token", "--key", &short_arg, "--client", "x"]);
    assert_eq!(code, 1);
    assert!(err.contains("at least 32"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_client_commands_speak_tls_with_a_ca_a_server_name_and_a_client_certificate() {
    let pki = framewire_tests::TestPki::new("cli");
    let server = TestServer::start(ServerConfig {
        tls_addr: Some("127.0.0.1:0".parse().unwrap()),
        tls_cert: Some(pki.server.cert.clone()),
        tls_key: Some(pki.server.key.clone()),
        tls_client_ca: Some(pki.ca.clone()),
        ..ServerConfig::default()
    });
    let addr = server.tls_addr().to_string();
    let ca = pki.ca.to_string_lossy().into_owned();
    let me = pki.client("cli-user");
    let (cert, key) = (me.cert.to_string_lossy(), me.key.to_string_lossy());
    let (code, out, err) = framewire(
        &addr,
        &[
            "--ca",
            &ca,
            "--server-name",
            "localhost",
            "--cert",
            &cert,
            "--key",
            &key,
            "ping",
            "-c",
            "2",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 sent, 2 received"), "{out}");
    // Without the client certificate the handshake fails, and the command says why.
    let (code, _, err) = framewire(&addr, &["--tls", "--ca", &ca, "ping", "-c", "1"]);
    assert_ne!(code, 0);
    assert!(err.contains("connect to"), "{err}");
    // A name the server's certificate does not carry.
    let (code, _, err) = framewire(
        &addr,
        &["--ca", &ca, "--server-name", "elsewhere.example", "ping"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("certificate"), "{err}");
    // TLS is for TCP.
    let (code, _, err) = framewire(&addr, &["--tls", "--udp", "ping"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_token_issued_with_keys_seals_the_udp_session_of_the_client_commands() {
    let dir = std::env::temp_dir().join(format!("fw-keys-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("token.key");
    std::fs::write(&key, [0x43u8; 32]).unwrap();
    let keys = dir.join("device.keys");
    let server = TestServer::start(ServerConfig {
        token_key_file: Some(key.clone()),
        require_encryption: true,
        ..ServerConfig::default()
    });
    let udp = server.udp_addr().to_string();
    let (key_arg, device_keys) = (
        key.to_string_lossy().into_owned(),
        keys.to_string_lossy().into_owned(),
    );
    let (code, out, err) = framewire(
        &udp,
        &[
            "token",
            "--key",
            &key_arg,
            "--client",
            "dev-8",
            "--pub",
            "dev/8/#",
            "--keys-out",
            &device_keys,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let token = out.trim().to_owned();
    assert_eq!(std::fs::read_to_string(&keys).unwrap().trim().len(), 128);
    let sealed = ["--udp", "--token", &token, "--keys", &device_keys];
    let (code, out, err) = framewire(&udp, &[&sealed[..], &["req", "sys.ping"]].concat());
    assert_eq!((code, out.as_str()), (0, "pong\n"), "{err}");
    let (code, _, err) = framewire(&udp, &[&sealed[..], &["pub", "dev/8/t", "1"]].concat());
    assert_eq!(code, 0, "{err}");
    // The token without its keys: the client says what is missing before it connects.
    let (code, _, err) = framewire(&udp, &["--udp", "--token", &token, "req", "sys.ping"]);
    assert_ne!(code, 0);
    assert!(err.contains("carries keys"), "{err}");
    // A token without keys: this server refuses the session, as it requires encryption.
    let (code, plain, err) = framewire(
        &udp,
        &[
            "token", "--key", &key_arg, "--client", "dev-8", "--pub", "dev/8/#",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = framewire(&udp, &["--udp", "--token", plain.trim(), "req", "sys.ping"]);
    assert_eq!(code, 1);
    assert!(err.contains("sealed"), "{err}");
    // Keys are for UDP.
    let (code, _, err) = framewire(
        &server.addr().to_string(),
        &["--token", &token, "--keys", &device_keys, "req", "sys.ping"],
    );
    assert_eq!(code, 2, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
