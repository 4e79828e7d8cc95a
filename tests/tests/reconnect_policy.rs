//! The reconnect policy's limits (issue: a reconnect policy with limits): a client gives up after
//! so many failed attempts in a row, or after so long without a connection, says so with a last
//! `Disconnected { retry_in: None }`, and is closed; a connection in between starts the count again.

use std::time::{Duration, Instant};

use framewire_client::{ClientEvent, ClientOptions, Connection, Reconnect, Transport};
use framewire_server::ServerConfig;
use framewire_tests::{TestServer, drive_until};

/// A TCP address with nothing listening.
fn closed_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn policy(max_attempts: Option<u32>, give_up_after: Option<Duration>) -> Reconnect {
    Reconnect {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(40),
        max_attempts,
        give_up_after,
        ..Reconnect::default()
    }
}

fn retries(events: &[ClientEvent]) -> Vec<bool> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Disconnected { retry_in, .. } => Some(retry_in.is_some()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_client_gives_up_after_its_attempts_and_is_closed() {
    let mut o = ClientOptions::new(closed_port(), Transport::Tcp);
    o.reconnect = Some(policy(Some(3), None));
    let mut conn = Connection::new(o, Instant::now()).unwrap();
    let mut events = Vec::new();
    drive_until(&mut conn, &mut events, &|e| {
        retries(e).last() == Some(&false)
    });
    assert_eq!(retries(&events), [true, true, false], "{events:?}");
    assert!(conn.is_closed());
}

#[test]
fn a_client_gives_up_after_its_time_without_a_connection() {
    let mut o = ClientOptions::new(closed_port(), Transport::Tcp);
    o.reconnect = Some(policy(None, Some(Duration::from_millis(200))));
    let start = Instant::now();
    let mut conn = Connection::new(o, start).unwrap();
    let mut events = Vec::new();
    drive_until(&mut conn, &mut events, &|e| {
        retries(e).last() == Some(&false)
    });
    assert!(start.elapsed() >= Duration::from_millis(200));
    let attempts = retries(&events);
    assert!(attempts.len() >= 4, "backoff capped at 40 ms: {attempts:?}");
    assert!(conn.is_closed());
}

/// A connection resets the count: after the server goes, the client has its attempts again.
#[test]
fn a_connection_starts_the_count_again() {
    let server = TestServer::start(ServerConfig::default());
    let mut o = ClientOptions::new(server.addr(), Transport::Tcp);
    o.reconnect = Some(policy(Some(2), None));
    let mut conn = Connection::new(o, Instant::now()).unwrap();
    let mut events = Vec::new();
    drive_until(&mut conn, &mut events, &|e| {
        e.iter().any(|e| matches!(e, ClientEvent::Connected { .. }))
    });
    server.stop();
    drive_until(&mut conn, &mut events, &|e| {
        retries(e).last() == Some(&false)
    });
    assert_eq!(retries(&events), [true, false], "{events:?}");
}
