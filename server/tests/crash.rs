//! The durability contract under SIGKILL (docs/PROTOCOL.md section 10): clients push and
//! acknowledge over TCP and UDP while the server is killed at random moments, again and again.
//! After every restart, every push the server confirmed is there unless an ack for it was sent,
//! no message whose ack was confirmed comes back, and nothing appears that was never pushed.
//! Retained messages survive too, and sessions: a client resumes its session after the restart
//! with the messages kept for it, and a device's will is published for it.

#[allow(dead_code, reason = "each test binary uses part of the helper")]
mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::ServerProcess;
use framewire_client::{Client, ClientOptions, LastWill, PublishOptions, Reconnect, Transport};

const QUEUE: &str = "crash";
const KILLS: u32 = 22;

/// What the clients know of each payload.
#[derive(Debug, Default)]
struct Ledger {
    /// Pushes sent (confirmed or not).
    pushed: HashSet<String>,
    /// Pushes the server confirmed.
    confirmed: HashSet<String>,
    /// Acks sent (confirmed or not).
    ack_sent: HashSet<String>,
    /// Acks the server confirmed.
    acked: HashSet<String>,
}

fn options(addr: SocketAddr, transport: Transport) -> ClientOptions {
    let mut o = ClientOptions::new(addr, transport);
    o.reconnect = None;
    o.connect_timeout = Duration::from_secs(5);
    o.request_timeout = Duration::from_secs(1);
    o.client_name = Some("crash-test".into());
    o
}

/// Pushes and acknowledges until the connection fails (the server was killed).
fn load(addr: SocketAddr, transport: Transport, tag: &str, ledger: &Mutex<Ledger>) -> u64 {
    let Ok(mut client) = Client::connect(options(addr, transport)) else {
        return 0;
    };
    let mut n = 0u64;
    loop {
        let payload = format!("{tag}-{n}");
        n += 1;
        ledger.lock().unwrap().pushed.insert(payload.clone());
        if client.queue_push(QUEUE, payload.clone()).is_err() {
            return n;
        }
        ledger.lock().unwrap().confirmed.insert(payload);
        if n.is_multiple_of(2) {
            let Ok(got) = client.queue_fetch(QUEUE, 3, Duration::ZERO) else {
                return n;
            };
            for d in got {
                let text = String::from_utf8_lossy(&d.payload).into_owned();
                ledger.lock().unwrap().ack_sent.insert(text.clone());
                if client.queue_ack(QUEUE, d.delivery_id).is_err() {
                    return n;
                }
                ledger.lock().unwrap().acked.insert(text);
            }
        }
    }
}

/// Everything in the queue now, fetched by a session that then closes (so it all stays queued).
fn contents(addr: SocketAddr) -> Vec<String> {
    let mut client = Client::connect(options(addr, Transport::Tcp)).expect("connects");
    client.timeout = Duration::from_secs(10);
    let mut all = Vec::new();
    loop {
        let got = client
            .queue_fetch(QUEUE, 1000, Duration::ZERO)
            .expect("fetches");
        if got.is_empty() {
            break;
        }
        all.extend(
            got.iter()
                .map(|d| String::from_utf8_lossy(&d.payload).into_owned()),
        );
    }
    client.close();
    all
}

fn check(round: u32, found: &[String], ledger: &Ledger) {
    let found_set: HashSet<&String> = found.iter().collect();
    assert_eq!(
        found_set.len(),
        found.len(),
        "round {round}: a message twice"
    );
    for f in found {
        assert!(
            ledger.pushed.contains(f),
            "round {round}: {f:?} was never pushed"
        );
        assert!(
            !ledger.acked.contains(f),
            "round {round}: {f:?} came back after its ack was confirmed"
        );
    }
    let missing: Vec<&String> = ledger
        .confirmed
        .iter()
        .filter(|p| !ledger.ack_sent.contains(*p) && !found_set.contains(p))
        .collect();
    assert!(
        missing.is_empty(),
        "round {round}: {} confirmed pushes lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
}

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fw-crash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A small deterministic generator for the kill delays.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn confirmed_pushes_and_acks_survive_sigkill_at_random_moments_over_tcp_and_udp() {
    let dir = data_dir("queue");
    let dir_arg = dir.to_string_lossy().into_owned();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut totals = (0u64, 0usize);
    for round in 0..=KILLS {
        let mut server = ServerProcess::start_with_udp(&[
            "--data-dir",
            &dir_arg,
            "--threads",
            "2",
            "--fsync",
            "always",
        ]);
        server.discard_log();
        let found = contents(server.addr);
        check(round, &found, &ledger.lock().unwrap());
        totals.1 = found.len();
        if round == KILLS {
            break;
        }
        let udp = server.udp_addr.expect("UDP is served");
        let workers: Vec<_> = [(server.addr, Transport::Tcp), (udp, Transport::Udp)]
            .into_iter()
            .enumerate()
            .map(|(i, (addr, transport))| {
                let ledger = Arc::clone(&ledger);
                std::thread::spawn(move || load(addr, transport, &format!("r{round}c{i}"), &ledger))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(30 + next(&mut seed) % 250));
        server.kill();
        for w in workers {
            totals.0 += w.join().expect("a load thread");
        }
    }
    let ledger = ledger.lock().unwrap();
    assert!(
        ledger.confirmed.len() > 500 && ledger.acked.len() > 100,
        "the load did real work: {} confirmed pushes, {} confirmed acks",
        ledger.confirmed.len(),
        ledger.acked.len()
    );
    eprintln!(
        "{KILLS} kills: {} pushes sent, {} confirmed, {} acks confirmed, {} left queued",
        totals.0,
        ledger.confirmed.len(),
        ledger.acked.len(),
        totals.1
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn retained_messages_survive_a_sigkill() {
    let dir = data_dir("retained");
    let dir_arg = dir.to_string_lossy().into_owned();
    let mut server = ServerProcess::start_with(None, &["--data-dir", &dir_arg]);
    server.discard_log();
    let mut client = Client::connect(options(server.addr, Transport::Tcp)).expect("connects");
    let retain = PublishOptions {
        retain: true,
        ..PublishOptions::default()
    };
    for (topic, payload) in [
        ("dev/7/online", "yes"),
        ("dev/8/online", "yes"),
        ("dev/8/online", ""),
    ] {
        client
            .publish_with(topic, payload, retain)
            .expect("confirmed");
    }
    server.kill();
    let mut server = ServerProcess::start_with(None, &["--data-dir", &dir_arg]);
    server.discard_log();
    let mut client = Client::connect(options(server.addr, Transport::Tcp)).expect("connects");
    client.subscribe("dev/#").expect("subscribes");
    let m = client
        .next_message(Duration::from_secs(5))
        .expect("a message")
        .expect("the retained one");
    assert_eq!(
        (m.topic.as_str(), &m.payload[..]),
        ("dev/7/online", &b"yes"[..])
    );
    assert!(m.retained);
    assert!(
        client
            .next_message(Duration::from_millis(200))
            .expect("no error")
            .is_none(),
        "the cleared one stays cleared"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client that reconnects at once, with its session token, when its server goes.
fn resuming(addr: SocketAddr, transport: Transport) -> ClientOptions {
    let mut o = options(addr, transport);
    o.reconnect = Some(Reconnect {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        ..Reconnect::default()
    });
    o
}

fn payloads(client: &mut Client, n: usize) -> Vec<String> {
    (0..n)
        .map_while(|_| client.next_message(Duration::from_secs(5)).ok().flatten())
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect()
}

#[test]
fn sessions_resume_after_a_sigkill_with_the_messages_kept_for_them_and_wills_are_published() {
    let dir = data_dir("sessions");
    let dir_arg = dir.to_string_lossy().into_owned();
    let flags = ["--data-dir", dir_arg.as_str(), "--fsync", "always"];
    let mut server = ServerProcess::start_with_udp(&flags);
    server.discard_log();
    let (tcp, udp) = (server.addr, server.udp_addr.expect("UDP is served"));
    // Subscribers over both transports, live when the server dies, and one whose connection
    // dropped before (parked); a device with a will.
    let mut subscribers: Vec<Client> = [(tcp, Transport::Tcp), (udp, Transport::Udp)]
        .into_iter()
        .map(|(addr, transport)| {
            let mut c = Client::connect(resuming(addr, transport)).expect("connects");
            c.subscribe("news/#").expect("subscribed, on disk");
            c
        })
        .collect();
    let mut device = options(tcp, Transport::Tcp);
    device.last_will = Some(LastWill {
        retain: true,
        channel: 0,
        topic: "dev/7/online".into(),
        payload: "offline".into(),
    });
    let mut device = Client::connect(device).expect("connects");
    // The Welcome does not wait for the will's record; a confirmed subscribe, after it, does.
    device.subscribe("cmd/7").expect("subscribed, on disk");
    server.kill();
    drop(device);

    let mut server = ServerProcess::start_on(tcp, udp, &flags);
    server.discard_log();
    // Published before the subscribers are back: the server keeps it for their sessions.
    let mut publisher = Client::connect(options(tcp, Transport::Tcp)).expect("connects");
    for n in 0..3 {
        publisher
            .publish(&format!("news/{n}"), format!("while away {n}"))
            .expect("confirmed");
    }
    for (i, s) in subscribers.iter_mut().enumerate() {
        // A client that had to subscribe again would not see these: they came before.
        assert_eq!(
            payloads(s, 3),
            ["while away 0", "while away 1", "while away 2"],
            "subscriber {i} resumed with the messages kept for it"
        );
        publisher.publish("news/live", "after").expect("sent");
        assert_eq!(
            payloads(s, 1),
            ["after"],
            "subscriber {i} is subscribed again"
        );
    }
    let mut watcher = Client::connect(options(tcp, Transport::Tcp)).expect("connects");
    watcher.subscribe("dev/+/online").expect("subscribes");
    let will = watcher
        .next_message(Duration::from_secs(5))
        .expect("no error")
        .expect("the device's will, retained");
    assert_eq!(
        (will.topic.as_str(), &will.payload[..]),
        ("dev/7/online", &b"offline"[..])
    );

    // Parked when the server dies a second time: it still resumes, with what came meanwhile.
    let mut parked = Client::connect(resuming(tcp, Transport::Tcp)).expect("connects");
    parked.subscribe("alerts").expect("subscribes");
    server.kill();
    let mut server = ServerProcess::start_on(tcp, udp, &flags);
    server.discard_log();
    let mut publisher = Client::connect(options(tcp, Transport::Tcp)).expect("connects");
    publisher.publish("alerts", "fire").expect("confirmed");
    server.kill();
    let mut server = ServerProcess::start_on(tcp, udp, &flags);
    server.discard_log();
    assert_eq!(
        payloads(&mut parked, 1),
        ["fire"],
        "kept across a second SIGKILL"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corruption_in_the_middle_stops_the_server_with_its_offset_unless_salvaging() {
    let dir = data_dir("corrupt");
    let dir_arg = dir.to_string_lossy().into_owned();
    let mut server = ServerProcess::start_with(None, &["--data-dir", &dir_arg]);
    server.discard_log();
    let mut client = Client::connect(options(server.addr, Transport::Tcp)).expect("connects");
    for n in 0..10 {
        client
            .queue_push(QUEUE, format!("job-{n:02}"))
            .expect("confirmed");
    }
    server.kill();
    // A bit flipped in the payload of the fifth record: ten records of the same length follow
    // the 16-byte header.
    let segment = dir.join("0000000000000001.fwlog");
    let mut bytes = std::fs::read(&segment).expect("the segment");
    let record = (bytes.len() - 16) / 10;
    let at = 16 + 4 * record + record - 6;
    bytes[at] ^= 0x08;
    std::fs::write(&segment, &bytes).expect("written back");
    let mut refused = ServerProcess::start_with(None, &["--data-dir", &dir_arg]);
    let line = refused.wait_for_line("corrupt record");
    assert!(
        line.contains(&format!("offset {}", 16 + 4 * record))
            && line.contains("--salvage true")
            && line.contains("cannot start"),
        "{line}"
    );
    assert!(!refused.wait_exit().success());
    let mut server =
        ServerProcess::start_with(None, &["--data-dir", &dir_arg, "--salvage", "true"]);
    server.discard_log();
    let found = contents(server.addr);
    let expected: Vec<String> = (0..10)
        .filter(|&n| n != 4)
        .map(|n| format!("job-{n:02}"))
        .collect();
    assert_eq!(found, expected, "the other nine kept, in order");
    let _ = std::fs::remove_dir_all(&dir);
}
