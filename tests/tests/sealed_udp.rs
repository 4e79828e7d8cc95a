//! Sealed UDP sessions (docs/PROTOCOL.md section 2.3) through a real server and real sockets, a
//! relay between client and server watching the wire: a client with a version-2 token and its
//! keys gets a sealed session that does everything a plain one does, and nothing it says is
//! readable on the wire; through 20 % loss every message arrives once and in order; a replayed,
//! a tampered and a wrong-key datagram are dropped and counted and end nothing; a server that
//! requires encryption refuses plain TCP and UDP sessions; a Hello whose sealed token does not
//! open gets no answer at all.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use framewire_client::{Client, ClientError, ClientOptions, Reason, Transport};
use framewire_protocol::auth::{ConnectToken, Permissions};
use framewire_protocol::seal::{TokenKeys, check_sealed_compact, is_sealed};
use framewire_protocol::wire::Text;
use framewire_server::ServerConfig;
use framewire_tests::{DEADLINE, Faults, Relay, TestServer};

const KEY: [u8; 32] = [0x3c; 32];
const CLEAN: Faults = Faults {
    loss: 0,
    duplicate: 0,
    reorder: 0,
};

/// The server's token key in a file of its own, removed when this is dropped: a server reads it
/// as it starts, so it need outlive only the start.
struct KeyFile(std::path::PathBuf);

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn key_file(name: &str) -> KeyFile {
    let path = std::env::temp_dir().join(format!("fw-sealed-{}-{name}", std::process::id()));
    std::fs::write(&path, KEY).unwrap();
    KeyFile(path)
}

fn server(name: &str, tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let key = key_file(name);
    let mut config = ServerConfig {
        token_key_file: Some(key.0.clone()),
        ..ServerConfig::default()
    };
    tweak(&mut config);
    TestServer::start(config)
}

fn keys(seed: u8) -> TokenKeys {
    TokenKeys {
        client_to_server: [seed; 32],
        server_to_client: [seed.wrapping_add(1); 32],
    }
}

fn token(keys: Option<&TokenKeys>) -> Bytes {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = ConnectToken {
        client_id: Text::from("sensor-9"),
        expires: now + 600,
        permissions: Permissions {
            publish: vec![Text::from("#")],
            subscribe: vec![Text::from("#")],
            ..Permissions::default()
        },
    };
    match keys {
        Some(k) => claims.sign_with_keys(&KEY, k, [seed_of(k); 24]),
        None => claims.sign(&KEY),
    }
    .unwrap()
    .into()
}

fn seed_of(k: &TokenKeys) -> u8 {
    k.client_to_server[0]
}

fn sealed_options(addr: std::net::SocketAddr, keys: &TokenKeys) -> ClientOptions {
    let mut o = ClientOptions::new(addr, Transport::Udp);
    o.auth_token = Some(token(Some(keys)));
    o.seal_keys = Some(keys.clone());
    o.connect_timeout = Duration::from_secs(10);
    o.reconnect = None;
    o
}

#[test]
fn a_sealed_session_works_as_a_plain_one_and_shows_nothing_on_the_wire() {
    let server = server("wire", |_| {});
    let relay = Relay::start(server.udp_addr(), CLEAN, 1);
    let k = keys(0x41);
    let mut sensor = Client::connect(sealed_options(relay.addr, &k)).unwrap();
    let mut watcher = Client::connect(sealed_options(server.udp_addr(), &keys(0x51))).unwrap();
    watcher.subscribe("dev/#").unwrap();
    sensor.subscribe("dev/echo").unwrap();
    for n in 0..20u32 {
        let payload = format!("secret-telemetry-{n}");
        sensor.publish("dev/9/temp", payload).unwrap();
    }
    for n in 0..20u32 {
        let m = watcher.next_message(DEADLINE).unwrap().unwrap();
        assert_eq!(&m.payload[..], format!("secret-telemetry-{n}").as_bytes());
    }
    watcher.publish("dev/echo", "secret-command").unwrap();
    let m = sensor.next_message(DEADLINE).unwrap().unwrap();
    assert_eq!(&m.payload[..], b"secret-command");
    assert_eq!(
        &sensor.request("sys.ping", "", DEADLINE).unwrap()[..],
        b"pong"
    );
    let up = relay.seen(true);
    let down = relay.seen(false);
    // Hello, Hello with the cookie: in the clear. Everything after: sealed, both ways.
    assert!(
        up.len() > 20 && down.len() > 10,
        "{} up, {} down",
        up.len(),
        down.len()
    );
    assert!(!is_sealed(&up[0]) && !is_sealed(&up[1]));
    assert!(
        up[2..].iter().all(|d| is_sealed(d)),
        "the client's datagrams are sealed"
    );
    assert!(!is_sealed(&down[0]), "the Challenge is plain");
    assert!(
        down[1..].iter().all(|d| is_sealed(d)),
        "the server's datagrams are sealed"
    );
    for d in up.iter().chain(&down) {
        assert!(
            !d.windows(6).any(|w| w == b"secret"),
            "a payload on the wire"
        );
        assert!(
            !d.windows(8).any(|w| w == b"dev/9/te"),
            "a topic on the wire"
        );
    }
    let c = server.counters();
    assert_eq!((c.udp_sealed_forged, c.udp_sealed_replayed), (0, 0));
}

#[test]
fn replayed_tampered_and_wrong_key_datagrams_are_dropped_counted_and_end_nothing() {
    let server = server("tamper", |_| {});
    let relay = Relay::start(server.udp_addr(), CLEAN, 2);
    let mut sensor = Client::connect(sealed_options(relay.addr, &keys(0x61))).unwrap();
    sensor.subscribe("t").unwrap();
    sensor.publish("t", "one").unwrap();
    assert!(sensor.next_message(DEADLINE).unwrap().is_some());
    let last = relay.seen(true).pop().expect("a datagram from the client");
    assert!(is_sealed(&last));
    relay.send_to_server(&last);
    server.counted(|c| c.udp_sealed_replayed == 1);
    let mut tampered = last.clone();
    let at = tampered.len() - 20;
    tampered[at] ^= 0x40;
    // A number it has not seen, so that the tag, not the window, refuses it.
    renumber(&mut tampered, 100);
    relay.send_to_server(&tampered);
    server.counted(|c| c.udp_sealed_forged == 1);
    // Sealed under another session's keys, sent under this session's id.
    let relay2 = Relay::start(server.udp_addr(), CLEAN, 3);
    let mut other = Client::connect(sealed_options(relay2.addr, &keys(0x71))).unwrap();
    other.publish("x", "y").unwrap();
    let mut foreign = relay2.seen(true).pop().unwrap();
    // Sealed compact datagrams (version 4): the connection id in bytes 1 to 4.
    foreign[1..5].copy_from_slice(&last[1..5]);
    let (_, (pn, _)) = check_sealed_compact(&last).unwrap();
    let (_, (theirs, _)) = check_sealed_compact(&foreign).unwrap();
    renumber(&mut foreign, pn.wrapping_sub(theirs).wrapping_add(90));
    relay.send_to_server(&foreign);
    server.counted(|c| c.udp_sealed_forged == 2);
    // The session goes on.
    sensor.publish("t", "two").unwrap();
    let m = sensor.next_message(DEADLINE).unwrap().unwrap();
    assert_eq!(&m.payload[..], b"two");
    let stats = sensor.request("sys.stats", "", DEADLINE).unwrap();
    let stats = String::from_utf8_lossy(&stats);
    assert!(
        stats.contains("\"udp_sealed_forged\":2,\"udp_sealed_replayed\":1"),
        "{stats}"
    );
}

/// Moves a sealed compact datagram's packet number `ahead` on, within its field (which is how its
/// receiver restores it: ahead of what it has opened, for `ahead` below half the field's range).
fn renumber(datagram: &mut [u8], ahead: u32) {
    let (_, (pn, len)) = check_sealed_compact(datagram).expect("sealed compact");
    let bytes = pn.wrapping_add(ahead).to_be_bytes();
    datagram[5..5 + len].copy_from_slice(&bytes[4 - len..]);
}

#[test]
fn a_sealed_session_through_20_percent_loss_is_exactly_once_and_in_order() {
    const MESSAGES: u32 = 200;
    let faults = Faults {
        loss: 20,
        duplicate: 5,
        reorder: 10,
    };
    let server = server("lossy", |_| {});
    let (sub_link, pub_link) = (
        Relay::start(server.udp_addr(), faults, 4),
        Relay::start(server.udp_addr(), faults, 5),
    );
    let mut subscriber = Client::connect(sealed_options(sub_link.addr, &keys(0x81))).unwrap();
    subscriber.timeout = Duration::from_secs(20);
    subscriber.subscribe("lossy/#").unwrap();
    let mut publisher = Client::connect(sealed_options(pub_link.addr, &keys(0x91))).unwrap();
    publisher.timeout = Duration::from_secs(20);
    for n in 0..MESSAGES {
        publisher
            .publish("lossy/feed", n.to_be_bytes().to_vec())
            .unwrap();
    }
    for n in 0..MESSAGES {
        let m = subscriber
            .next_message(DEADLINE)
            .unwrap()
            .unwrap_or_else(|| panic!("message {n} never came"));
        assert_eq!(&m.payload[..], n.to_be_bytes(), "in order, once");
    }
    assert!(
        subscriber
            .next_message(Duration::from_millis(300))
            .unwrap()
            .is_none(),
        "nothing twice"
    );
    assert!(sub_link.dropped.load(std::sync::atomic::Ordering::Relaxed) > 0);
    // Duplicates the relay made are replays to the session: dropped before they are opened.
    let c = server.counters();
    assert_eq!(c.udp_sealed_forged, 0, "{c:?}");
}

#[test]
fn a_server_that_requires_encryption_refuses_plain_sessions() {
    let server = server("require", |c| c.require_encryption = true);
    let refused = |r: Result<Client, ClientError>| match r {
        Err(ClientError::Rejected { reason, message }) => {
            assert_eq!(reason, Reason::AUTH_FAILED);
            message.as_str().to_owned()
        }
        other => panic!("expected a refusal: {other:?}"),
    };
    let mut plain_udp = ClientOptions::new(server.udp_addr(), Transport::Udp);
    plain_udp.auth_token = Some(token(None));
    plain_udp.reconnect = None;
    assert!(refused(Client::connect(plain_udp)).contains("sealed"));
    let mut plain_tcp = ClientOptions::new(server.addr(), Transport::Tcp);
    plain_tcp.reconnect = None;
    assert!(refused(Client::connect(plain_tcp)).contains("TLS"));
    let mut sealed = Client::connect(sealed_options(server.udp_addr(), &keys(0xa1))).unwrap();
    assert_eq!(
        &sealed.request("sys.ping", "", DEADLINE).unwrap()[..],
        b"pong"
    );
    // Keys the server did not seal into the token: it cannot open what the client seals.
    // Keys other than the token's: the client cannot open the sealed Welcome, and the handshake
    // times out (a forged Welcome looks the same to it).
    let mut wrong = sealed_options(server.udp_addr(), &keys(0xb1));
    wrong.seal_keys = Some(keys(0xc1));
    wrong.connect_timeout = Duration::from_secs(1);
    assert!(matches!(Client::connect(wrong), Err(ClientError::TimedOut)));
}

#[test]
fn a_hello_whose_sealed_token_does_not_open_gets_no_answer() {
    let server = server("unopened", |_| {});
    let k = keys(0xd1);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |expires| ConnectToken {
        client_id: Text::from("sensor-9"),
        expires,
        permissions: Permissions::default(),
    };
    // Sealed and signed under another server's key, and one with its mac broken.
    let elsewhere: Bytes = claims(now + 600)
        .sign_with_keys(&[0x77; 32], &k, [1; 24])
        .unwrap()
        .into();
    let mut broken = token(Some(&k)).to_vec();
    let last = broken.len() - 1;
    broken[last] ^= 1;
    for (what, bad) in [
        ("another key", elsewhere.clone()),
        ("a broken mac", broken.into()),
    ] {
        let mut o = sealed_options(server.udp_addr(), &k);
        o.auth_token = Some(bad);
        o.connect_timeout = Duration::from_millis(800);
        // No Reject: the client hears nothing and times out, as from a server that is not there.
        assert!(
            matches!(Client::connect(o), Err(ClientError::TimedOut)),
            "{what}"
        );
    }
    // An honest token that expired opens: its holder is told why.
    let expired: Bytes = claims(now - 5)
        .sign_with_keys(&KEY, &k, [2; 24])
        .unwrap()
        .into();
    let mut o = sealed_options(server.udp_addr(), &k);
    o.auth_token = Some(expired);
    assert!(matches!(
        Client::connect(o),
        Err(ClientError::Rejected {
            reason: Reason::AUTH_FAILED,
            ..
        })
    ));
    // Over TCP (no spoofed addresses) the unopened token is refused with a Reject, as always.
    let mut tcp = ClientOptions::new(server.addr(), Transport::Tcp);
    tcp.auth_token = Some(elsewhere);
    tcp.reconnect = None;
    assert!(matches!(
        Client::connect(tcp),
        Err(ClientError::Rejected {
            reason: Reason::AUTH_FAILED,
            ..
        })
    ));
    // Nothing was kept: the server still takes a good sealed session.
    let mut good = Client::connect(sealed_options(server.udp_addr(), &k)).unwrap();
    assert_eq!(
        &good.request("sys.ping", "", DEADLINE).unwrap()[..],
        b"pong"
    );
}

#[test]
fn a_refreshed_token_brings_its_keys_to_the_next_sealed_handshake() {
    let server = server("refresh", |_| {});
    let (old, new) = (keys(0x31), keys(0x41));
    // The options carry a token and its keys; the refresh, asked before the first attempt, hands
    // a newer token sealed with other keys, and those keys with it.
    let mut o = sealed_options(server.udp_addr(), &old);
    let fresh = new.clone();
    o.token_refresh = Some(framewire_client::TokenRefresh::sealed(move || {
        Some((token(Some(&fresh)), fresh.clone()))
    }));
    let mut c = Client::connect(o).expect("sealed with the refreshed token's keys");
    assert_eq!(&c.request("sys.ping", "", DEADLINE).unwrap()[..], b"pong");
    // A refresh of the token alone keeps the old keys: the server seals with the new token's,
    // the client cannot open its Welcome, and the handshake times out.
    let mut o = sealed_options(server.udp_addr(), &old);
    let fresh = new.clone();
    o.token_refresh = Some(framewire_client::TokenRefresh::new(move || {
        Some(token(Some(&fresh)))
    }));
    o.connect_timeout = Duration::from_millis(800);
    assert!(matches!(Client::connect(o), Err(ClientError::TimedOut)));
}

#[test]
fn the_servers_capture_of_a_sealed_session_holds_its_frames_in_the_clear() {
    use framewire_tools::capture::{Direction, inspect_capture};
    let file =
        std::env::temp_dir().join(format!("fw-sealed-capture-{}.pcapng", std::process::id()));
    // One port for TCP and UDP, as a replay targets one address.
    let server = TestServer::start_one_port(&ServerConfig {
        // The temporary key file lives until the server has started (the end of the statement).
        token_key_file: Some(key_file("capture").0.clone()),
        capture: Some(file.clone()),
        ..ServerConfig::default()
    });
    let port = server.udp_addr().port();
    let mut sensor = Client::connect(sealed_options(server.udp_addr(), &keys(0xd1))).unwrap();
    sensor.subscribe("cap/#").unwrap();
    sensor.publish("cap/1", "captured-in-the-clear").unwrap();
    assert!(sensor.next_message(DEADLINE).unwrap().is_some());
    sensor.close();
    server.stop();
    let reader = std::io::BufReader::new(std::fs::File::open(&file).unwrap());
    let (inspection, damaged) = inspect_capture(reader, port, 1 << 20).unwrap();
    assert_eq!(damaged, None);
    let s = &inspection.summary;
    assert_eq!((s.bad_frames, s.skipped_bytes), (0, 0), "{s:?}");
    let (up, down) = (
        inspection.frame_kinds(Direction::ToServer),
        inspection.frame_kinds(Direction::ToClient),
    );
    for kind in ["Hello", "Subscribe", "Publish"] {
        assert!(up.iter().any(|k| k == kind), "{kind} in {up:?}");
    }
    for kind in ["Challenge", "Welcome", "Message"] {
        assert!(down.iter().any(|k| k == kind), "{kind} in {down:?}");
    }
    // And it replays: against a server that checks no tokens (so seals nothing), and against
    // one that requires encryption given a token and its keys; the same answers both times.
    let script = framewire_tools::replay::Script::from_inspection(&inspection);
    let replayed = |target: &TestServer, credentials: Option<(Bytes, TokenKeys)>| {
        let (token, seal_keys) = credentials.unzip();
        let config = framewire_tools::replay::ReplayConfig {
            target: target.addr(),
            pace: framewire_tools::replay::Pace::Max,
            timeout: Duration::from_millis(1500),
            token,
            seal_keys,
        };
        framewire_tools::replay::replay(&script, &config, &mut |_, _| {}).unwrap()
    };
    let plain = TestServer::start_one_port(&ServerConfig::default());
    let sealing = TestServer::start_one_port(&ServerConfig {
        token_key_file: Some(key_file("replayed").0.clone()),
        require_encryption: true,
        ..ServerConfig::default()
    });
    let k = keys(0xd3);
    for report in [
        replayed(&plain, None),
        replayed(&sealing, Some((token(Some(&k)), k.clone()))),
    ] {
        assert!(
            report.is_clean(),
            "{:?} {:#?}",
            report.tally,
            report.differences
        );
        assert!(report.tally.matched > 0);
    }
    // Without the keys, the captured token's sealed Welcome cannot be opened: nothing answers.
    let unsealed = replayed(&sealing, None);
    assert!(
        !unsealed.is_clean() && unsealed.tally.matched == 0,
        "{:?}",
        unsealed.tally
    );
    let _ = std::fs::remove_file(&file);
}
