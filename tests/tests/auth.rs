//! Connect tokens through a real server: a server that requires them refuses a client without one,
//! with a forged or an expired one, over TCP and UDP, and keeps no session for it; a valid token
//! opens a session whose permissions hold. The key file's problems stop the server with a clear
//! error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use framewire_client::{Client, ClientError, ClientOptions, Error, Transport};
use framewire_protocol::auth::{ConnectToken, Permissions};
use framewire_protocol::wire::{Reason, Status, Text};
use framewire_server::{Server, ServerConfig};
use framewire_tests::TestServer;

const KEY: [u8; 32] = [0x5a; 32];

fn key_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("fw-auth-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn token(key: &[u8], expires_in: i64) -> Bytes {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    ConnectToken {
        client_id: Text::from("lamp-3"),
        expires: now.saturating_add_signed(expires_in),
        permissions: Permissions {
            publish: vec![Text::from("lamps/3/#")],
            subscribe: vec![Text::from("lamps/3/cmd")],
            ..Permissions::default()
        },
    }
    .sign(key)
    .unwrap()
    .into()
}

fn connect(
    server: &TestServer,
    transport: Transport,
    token: Option<Bytes>,
) -> Result<Client, ClientError> {
    let addr = match transport {
        Transport::Tcp => server.addr(),
        Transport::Udp => server.udp_addr(),
    };
    let mut o = ClientOptions::new(addr, transport);
    o.auth_token = token;
    o.connect_timeout = Duration::from_secs(3);
    Client::connect(o)
}

fn refused(r: Result<Client, ClientError>) -> String {
    match r {
        Err(ClientError::Rejected { reason, message }) => {
            assert_eq!(reason, Reason::AUTH_FAILED);
            message.as_str().to_owned()
        }
        other => panic!("expected a refusal: {other:?}"),
    }
}

#[test]
fn a_server_that_requires_tokens_lets_in_only_valid_ones() {
    let key = key_file("good", &KEY);
    let server = TestServer::start(ServerConfig {
        token_key_file: Some(key.clone()),
        require_tokens: true,
        ..ServerConfig::default()
    });
    for transport in [Transport::Tcp, Transport::Udp] {
        assert!(refused(connect(&server, transport, None)).contains("required"));
        assert!(
            refused(connect(&server, transport, Some(token(&[1; 32], 60)))).contains("signature")
        );
        assert!(refused(connect(&server, transport, Some(token(&KEY, -1)))).contains("expired"));
        let mut c = connect(&server, transport, Some(token(&KEY, 60))).expect("a valid token");
        c.subscribe("lamps/3/cmd").unwrap();
        c.publish("lamps/3/state", "on").unwrap();
        match c.publish("lamps/4/state", "on") {
            Err(Error::Status { status, .. }) => assert_eq!(status, Status::FORBIDDEN),
            other => panic!("{other:?}"),
        }
        let stats = c.request("sys.stats", "", Duration::from_secs(2)).unwrap();
        let stats = String::from_utf8_lossy(&stats);
        let section = match transport {
            Transport::Tcp => stats.split("\"tcp\":").nth(1),
            Transport::Udp => stats.split("\"udp\":").nth(1),
        };
        assert!(
            section.is_some_and(|s| s.starts_with("{\"sessions\":1,")),
            "refused handshakes keep no session: {stats}"
        );
        assert!(stats.contains("\"forbidden\":"), "{stats}");
        c.close();
    }
    std::fs::remove_file(key).unwrap();
}

#[test]
fn key_file_problems_stop_the_server_with_a_clear_error() {
    let any = "127.0.0.1:0".parse().unwrap();
    let base = ServerConfig {
        tcp_addr: Some(any),
        udp_addr: None,
        http_addr: None,
        ..ServerConfig::default()
    };
    let missing = ServerConfig {
        token_key_file: Some("/nonexistent/fw-token.key".into()),
        ..base.clone()
    };
    let e = Server::bind(&missing).unwrap_err().to_string();
    assert!(e.contains("/nonexistent/fw-token.key"), "{e}");
    let short = key_file("short", b"too short");
    let e = Server::bind(&ServerConfig {
        token_key_file: Some(short.clone()),
        ..base.clone()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("at least 32"), "{e}");
    let e = Server::bind(&ServerConfig {
        require_tokens: true,
        ..base
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("token_key_file"), "{e}");
    std::fs::remove_file(short).unwrap();
}
