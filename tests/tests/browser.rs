//! A real browser on the demo page: headless Chromium (Debian's `chromium`), driven through the
//! `DevTools` protocol by `tests/browser/drive.mjs`, loads `/` from the server, and its chat and
//! chart exchange messages with a TCP client and a UDP client over `framewire.js`: over the
//! WebSocket, then with WebSocket blocked (Server-Sent Events and HTTP POST), then with
//! `EventSource` blocked too (long polling); each time its connection drops and the client resumes
//! its session by itself, missing nothing published meanwhile; and once more loaded over HTTPS,
//! its session a WebSocket over TLS (Chromium trusting the test certificate alone); and each time
//! an unsubscribe reaches the server's session. Needs
//! `chromium` and `node`, which `cargo test --workspace` cannot assume, so `.ci/run` runs it with
//! `--ignored`. With `FRAMEWIRE_SCREENSHOT=PATH` it saves a picture of the page there
//! (`docs/browser-demo.png` was made so).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use framewire_protocol::wire::FrameBody;
use framewire_server::ServerConfig;
use framewire_tests::http::HttpConn;
use framewire_tests::{DEADLINE, TestClient, TestPki, TestServer, Via};

/// The driver process and its line protocol (see tests/browser/drive.mjs).
struct Browser {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Browser {
    /// Opens `url` with the page's `blocked` globals removed (`websocket`, `eventsource`),
    /// trusting the certificate in `trust` (a PEM file) if given.
    fn open(url: &str, blocked: &str, trust: Option<&std::path::Path>) -> Self {
        let mut command = Command::new("node");
        if let Some(cert) = trust {
            command.env("FRAMEWIRE_TRUST_CERT", cert);
        }
        let mut child = command
            .arg("--experimental-websocket")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/browser/drive.mjs"))
            .arg(url)
            .arg(blocked)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node runs");
        let input = child.stdin.take().expect("stdin");
        let output = BufReader::new(child.stdout.take().expect("stdout"));
        let mut browser = Self {
            child,
            input,
            output,
        };
        assert_eq!(browser.line(), "subscribed");
        browser
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.output
            .read_line(&mut line)
            .expect("a line from the driver");
        line.trim_end().to_string()
    }

    /// Sends a command; the JSON of its answer.
    fn ask(&mut self, command: &str) -> String {
        writeln!(self.input, "{command}").expect("send a command");
        let answer = self.line();
        answer
            .strip_prefix("ok ")
            .unwrap_or_else(|| panic!("{command}: {answer}"))
            .to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.input, "quit");
        let _ = self.child.wait();
    }
}

/// Waits (each frame within the deadline) until `c` hears a Message with `payload`; the other
/// clients' lines may come before it.
fn hears(c: &mut TestClient, payload: &str) {
    loop {
        if let FrameBody::Message(m) = c.recv().body
            && m.payload == payload.as_bytes()
        {
            return;
        }
    }
}

/// The subscriptions the server holds now, from its metrics.
fn subscriptions(server: &TestServer) -> u64 {
    gauge(server, "framewire_subscriptions")
}

/// A gauge of the server's metrics.
fn gauge(server: &TestServer, name: &str) -> u64 {
    let metrics = HttpConn::connect(server.http_addr())
        .call("GET", "/metrics", "", b"")
        .text();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a gauge {name}"))
}

/// How the page is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

/// The demo page in Chromium with `blocked` removed from it talks with a TCP and a UDP client
/// over `transport`, and resumes its session after its connection drops.
/// WebSocket closes the server has sent.
fn websocket_closes(server: &TestServer) -> u64 {
    server.counters().websocket_closes.iter().sum()
}

/// Waits until the server has taken the page's WebSocket close (and answered it) and parked the
/// page's session, or the page is back. A message it writes into a closing WebSocket is lost to
/// the page (the browser drops what arrives after its close), and the page's session does not
/// confirm what it receives (docs/PROTOCOL.md section 5.9): only what is published after the
/// session is parked is kept for the resume. (The close is counted when the server answers it,
/// a moment before the connection ends and the hub parks the session: publishing then raced it.)
fn until_parked(
    server: &TestServer,
    tcp: &mut TestClient,
    page: &mut Browser,
    (closes, parked, welcomes): (u64, u64, u32),
) {
    let deadline = std::time::Instant::now() + DEADLINE;
    while websocket_closes(server) == closes {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never took the close"
        );
        let _ = tcp.recv_within(Duration::from_millis(5));
    }
    loop {
        if gauge(server, "framewire_parked_sessions") > parked {
            return;
        }
        let back: u32 = page
            .ask("eval framewireDemo.client.welcomes")
            .parse()
            .unwrap();
        if back > welcomes {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the session was never parked"
        );
        let _ = tcp.recv_within(Duration::from_millis(5));
    }
}

fn the_demo_page_talks_with_tcp_and_udp_clients(blocked: &str, transport: &str, scheme: Scheme) {
    let pki = (scheme == Scheme::Https).then(|| TestPki::new("browser"));
    let config = match &pki {
        Some(pki) => ServerConfig {
            https_addr: Some("127.0.0.1:0".parse().unwrap()),
            tls_cert: Some(pki.server.cert.clone()),
            tls_key: Some(pki.server.key.clone()),
            ..ServerConfig::default()
        },
        None => ServerConfig::default(),
    };
    let server = TestServer::start(config);
    let mut tcp = TestClient::connect(&server, Via::Tcp);
    let mut udp = TestClient::connect(&server, Via::Udp);
    for c in [&mut tcp, &mut udp] {
        c.subscribe_ok(1, "chat/room");
    }
    let url = match scheme {
        Scheme::Http => format!("http://{}/", server.http_addr()),
        Scheme::Https => format!("https://{}/", server.https_addr()),
    };
    let mut page = Browser::open(&url, blocked, pki.as_ref().map(|p| p.server.cert.as_path()));
    if scheme == Scheme::Https {
        // The page found its session's URL from where it was loaded.
        assert!(
            page.ask("eval framewireDemo.client.url")
                .starts_with("\"wss://"),
            "a WebSocket over TLS"
        );
    }
    assert_eq!(
        page.ask("eval framewireDemo.client.transport"),
        format!("\"{transport}\"")
    );

    // Native clients to the browser: a chat line from each, and telemetry from the UDP one.
    tcp.publish_ok(2, "chat/room", b"tcp-client: hello from TCP");
    udp.publish_ok(2, "chat/room", b"udp-client: hello from UDP");
    for (i, t) in (0..30)
        .map(|i| 21.0 + f64::from(i).sin() * 0.8 + f64::from(i) * 0.05)
        .enumerate()
    {
        let reading = format!("{t:.2}");
        udp.publish_ok(
            10 + i as u32,
            "sensors/greenhouse-7/temp",
            reading.as_bytes(),
        );
    }
    page.ask("wait framewireDemo.chat.length >= 2 && framewireDemo.readings.length >= 30");
    let chat =
        page.ask("eval JSON.stringify(framewireDemo.chat.map(l => l.who + ': ' + l.text).sort())");
    assert_eq!(
        chat,
        r#""[\"tcp-client: hello from TCP\",\"udp-client: hello from UDP\"]""#
    );
    // The browser to the native clients.
    page.ask("eval framewireDemo.say('hello from Chromium')");
    hears(&mut tcp, "browser: hello from Chromium");
    hears(&mut udp, "browser: hello from Chromium");

    // The connection drops; framewire.js reconnects with backoff and resumes the session (its
    // token over WebSocket, its cursor over HTTP), whose subscriptions the server kept, and what
    // was published meanwhile arrives.
    let welcomes: u32 = page
        .ask("eval framewireDemo.client.welcomes")
        .parse()
        .unwrap();
    let before = (
        websocket_closes(&server),
        gauge(&server, "framewire_parked_sessions"),
        welcomes,
    );
    page.ask("eval framewireDemo.client.reconnect()");
    if transport == "websocket" {
        until_parked(&server, &mut tcp, &mut page, before);
    }
    tcp.publish_ok(3, "chat/room", b"tcp-client: still there?");
    page.ask(&format!(
        "wait framewireDemo.client.welcomes > {welcomes} && framewireDemo.state === 'connected'"
    ));
    page.ask("wait framewireDemo.chat.some(l => l.text === 'still there?')");
    assert_eq!(
        page.ask("eval framewireDemo.chat.filter(l => l.text === 'still there?').length"),
        "1",
        "once"
    );
    page.ask("eval framewireDemo.say('yes, resumed')");
    hears(&mut tcp, "browser: yes, resumed");
    let upgrades = server.counters().http_responses(101);
    assert_eq!(upgrades, if transport == "websocket" { 2 } else { 0 });
    if scheme == Scheme::Https {
        assert!(
            server.counters().tls_handshakes >= 2,
            "the page and its sessions over TLS"
        );
    }

    // Unsubscribing is the server's business too, over every transport: its session drops the
    // filter (over HTTP the stream reopens from its cursor with `unsubscribe=`).
    let before = subscriptions(&server);
    page.ask("eval framewireDemo.client.unsubscribe('sensors/+/temp').then(() => true)");
    assert_eq!(subscriptions(&server), before - 1);
    page.ask("eval framewireDemo.say('after the unsubscribe')");
    hears(&mut tcp, "browser: after the unsubscribe");

    if transport == "websocket"
        && let Ok(path) = std::env::var("FRAMEWIRE_SCREENSHOT")
    {
        page.ask(&format!("screenshot {path}"));
    }
}

#[test]
#[ignore = "needs chromium and node; .ci/run runs it"]
fn over_websocket() {
    the_demo_page_talks_with_tcp_and_udp_clients("", "websocket", Scheme::Http);
}

#[test]
#[ignore = "needs chromium and node; .ci/run runs it"]
fn over_https_and_a_websocket_over_tls() {
    the_demo_page_talks_with_tcp_and_udp_clients("", "websocket", Scheme::Https);
}

#[test]
#[ignore = "needs chromium and node; .ci/run runs it"]
fn with_websocket_blocked_over_server_sent_events_and_http_posts() {
    the_demo_page_talks_with_tcp_and_udp_clients("websocket", "sse", Scheme::Http);
}

#[test]
#[ignore = "needs chromium and node; .ci/run runs it"]
fn with_websocket_and_eventsource_blocked_over_long_polling() {
    the_demo_page_talks_with_tcp_and_udp_clients("websocket,eventsource", "poll", Scheme::Http);
}
