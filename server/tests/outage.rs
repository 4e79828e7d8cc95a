//! A scripted outage, over both transports, against the real binary: a device that only publishes,
//! an operator that subscribes, the server stopped (SIGTERM) or killed (SIGKILL) and started again
//! on the same port. The device publishes again within a second of the server's return (every
//! call drives the reconnect), and the operator's reliable stream has no gap but the readings the
//! new server never received (publishes refused while it was down). Every wait has a deadline.

#[allow(dead_code, reason = "each test binary uses part of the helper")]
mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use framewire_client::{
    Client, ClientError, ClientEvent, ClientOptions, Error, Reconnect, Transport,
};

use common::{DEADLINE, ServerProcess};

/// A port free for both TCP and UDP on 127.0.0.1 (the server is started on it twice).
fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn start(addr: SocketAddr) -> ServerProcess {
    let at = addr.to_string();
    let mut server = ServerProcess::start_with(None, &["--tcp", &at, "--udp", &at]);
    server.discard_log();
    server
}

fn options(addr: SocketAddr, transport: Transport) -> ClientOptions {
    let mut o = ClientOptions::new(addr, transport);
    o.reconnect = Some(Reconnect {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        ..Reconnect::default()
    });
    o
}

fn reading(n: u32) -> String {
    format!("reading {n}")
}

/// The operator's readings until it has seen `last`, in the order they came.
fn readings_until(operator: &mut Client, last: u32) -> Vec<u32> {
    let mut got = Vec::new();
    let start = Instant::now();
    while got.last() != Some(&last) {
        assert!(start.elapsed() < DEADLINE, "readings so far: {got:?}");
        if let Some(m) = operator.next_message(Duration::from_millis(100)).unwrap() {
            let text = String::from_utf8_lossy(&m.payload).into_owned();
            if let Some(n) = text.strip_prefix("reading ") {
                got.push(n.parse().unwrap());
            }
        }
    }
    got
}

fn outage(signal: &str, device_via: Transport, operator_via: Transport) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut server = start(addr);
    let mut operator = Client::connect(options(addr, operator_via)).unwrap();
    operator.subscribe("telemetry").unwrap();
    let mut device = Client::connect(options(addr, device_via)).unwrap();
    device.timeout = Duration::from_millis(300);
    for n in 0..10 {
        device.publish("telemetry", reading(n)).unwrap();
    }
    assert_eq!(
        readings_until(&mut operator, 9),
        (0..10).collect::<Vec<_>>()
    );

    let killed = Command::new("kill")
        .args([signal, &server.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    server.wait_exit();

    // While the server is down, a publish fails with a typed error, and is never sent later.
    let mut n = 10;
    for _ in 0..3 {
        match device.publish("telemetry", reading(n)) {
            Err(Error::Client(ClientError::NotConnected | ClientError::Unreachable(_))) => {}
            other => panic!("publish during the outage: {other:?}"),
        }
        n += 1;
    }
    let down = device.connection_events();
    assert!(
        down.iter().any(|e| matches!(
            e,
            ClientEvent::Disconnected {
                retry_in: Some(_),
                ..
            }
        )),
        "{down:?}"
    );

    let _server = start(addr);
    let back = Instant::now();
    // The operator first: its subscription is restored (the new server knows nothing of it) once
    // a publish of its own is accepted behind it. A publish that went out on the dead session
    // fails (its connection ended under it) and is tried again, as an application would.
    let mut tries = 0;
    while let Err(e) = operator.publish("telemetry/marker", "back") {
        tries += 1;
        assert!(tries < 10, "the operator cannot publish: {e}");
    }
    // The device publishes again within a second of the server's return.
    let first = loop {
        assert!(back.elapsed() < DEADLINE, "the device never came back");
        let result = device.publish("telemetry", reading(n));
        n += 1;
        if result.is_ok() {
            break n - 1;
        }
    };
    let again = back.elapsed();
    assert!(
        again < Duration::from_secs(1),
        "{signal} {device_via:?}: the device published again {again:?} after the server's return"
    );
    let up = device.connection_events();
    assert!(
        up.iter()
            .any(|e| matches!(e, ClientEvent::Connected { resumed: false, .. })),
        "{up:?}"
    );
    for _ in 0..10 {
        device.publish("telemetry", reading(n)).unwrap();
        n += 1;
    }
    // No gap: every reading the new server accepted, in order, none twice.
    let after = readings_until(&mut operator, n - 1);
    assert_eq!(
        after,
        (first..n).collect::<Vec<_>>(),
        "{signal} device {device_via:?} operator {operator_via:?}"
    );
}

#[test]
fn a_device_and_an_operator_ride_out_a_sigterm() {
    outage("-TERM", Transport::Udp, Transport::Tcp);
    outage("-TERM", Transport::Tcp, Transport::Udp);
}

/// SIGKILL: no Close reaches anyone. The TCP side sees its connection end; the UDP side, whose
/// datagrams the restarted server does not know, is told at once by the server's Reset.
#[test]
fn a_device_and_an_operator_ride_out_a_sigkill() {
    outage("-KILL", Transport::Udp, Transport::Tcp);
    outage("-KILL", Transport::Tcp, Transport::Udp);
}
