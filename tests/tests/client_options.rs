//! The client's configuration at work against a real server: the servers to try in turn, and a
//! connect token fetched afresh before every attempt.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use framewire_client::{Client, ClientEvent, ClientOptions, Reconnect, Timeouts, TokenRefresh};
use framewire_protocol::auth::{ConnectToken, Permissions};
use framewire_protocol::wire::Text;
use framewire_server::ServerConfig;
use framewire_tests::{DEADLINE, TcpCut, TestServer};

/// A TCP address with nothing listening.
fn closed_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[test]
fn a_client_tries_the_next_server_when_one_does_not_answer() {
    let server = TestServer::start(ServerConfig::default());
    let options = ClientOptions::builder(closed_port())
        .also_try(server.addr())
        .build()
        .unwrap();
    let mut c = Client::connect(options).expect("the second server");
    let pong = c.request("sys.ping", "", DEADLINE).unwrap();
    assert_eq!(&pong[..], b"pong");
    // None answers: the round's last failure is the answer.
    let options = ClientOptions::builder(closed_port())
        .also_try(closed_port())
        .build()
        .unwrap();
    assert!(Client::connect(options).is_err());
}

const KEY: [u8; 32] = [0x3c; 32];

fn fresh_token() -> Bytes {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    ConnectToken {
        client_id: Text::from("meter-9"),
        expires: now + 60,
        permissions: Permissions {
            publish: vec![Text::from("meters/9/#")],
            subscribe: vec![Text::from("meters/9/#")],
            ..Permissions::default()
        },
    }
    .sign(&KEY)
    .unwrap()
    .into()
}

/// A server that requires tokens; the client has none of its own, only a source of fresh ones,
/// asked before the first connect and again before the reconnect after its connection is reset.
#[test]
fn a_fresh_token_is_fetched_before_every_attempt() {
    let key = std::env::temp_dir().join(format!("fw-client-options-{}", std::process::id()));
    std::fs::write(&key, KEY).unwrap();
    let server = TestServer::start(ServerConfig {
        token_key_file: Some(key.clone()),
        require_tokens: true,
        ..ServerConfig::default()
    });
    let cut = TcpCut::start(server.addr());
    let fetched = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&fetched);
    let options = ClientOptions::builder(cut.addr)
        .token_refresh(TokenRefresh::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Some(fresh_token())
        }))
        .reconnect(Reconnect {
            initial: Duration::from_millis(10),
            ..Reconnect::default()
        })
        .timeouts(Timeouts {
            request: DEADLINE,
            ..Timeouts::default()
        })
        .build()
        .unwrap();
    let mut c = Client::connect(options).expect("admitted with the fetched token");
    assert_eq!(fetched.load(Ordering::SeqCst), 1);
    c.publish("meters/9/kwh", "1.5").unwrap();
    cut.cut();
    // The next call drives the reconnect, with a token fetched for it.
    c.publish("meters/9/kwh", "1.6").unwrap();
    assert_eq!(fetched.load(Ordering::SeqCst), 2);
    assert!(
        c.connection_events()
            .iter()
            .any(|e| matches!(e, ClientEvent::Connected { .. })),
    );
    let _ = std::fs::remove_file(key);
}
