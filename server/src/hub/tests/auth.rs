//! Connect tokens through the hub: required, checked, bound to an address; permissions on
//! every operation; resume only for the same identity.

use framewire_protocol::auth::{ConnectToken, Permissions};
use framewire_protocol::session::Admission;
use framewire_protocol::wire::Reason;

use super::sessions::token_of;
use super::*;

const KEY: &[u8] = b"a key of at least thirty-two bytes, for tests";
/// 2026-11-27 as seconds since the UNIX epoch (the hub's wall clock at zero in these tests).
const NOW_UNIX: u64 = 1_795_737_600;

fn guarded() -> Hub {
    let info = ServerInfo {
        unix_micros_at_zero: NOW_UNIX * 1_000_000,
        auth: AuthConfig {
            key: Some(KEY.into()),
            require: true,
            acl: Vec::new(),
        },
        ..ServerInfo::default()
    };
    Hub::new(HubConfig::default(), info, Arc::default())
}

fn token(client: &str, expires: u64, key: &[u8]) -> Vec<u8> {
    let t = |s: &str| Text::from(s);
    ConnectToken {
        client_id: t(client),
        expires,
        permissions: Permissions {
            publish: vec![t("dev/7/#")],
            subscribe: vec![t("cmd/7/+")],
            request: vec![t("time.*")],
            serve: vec![t("sensor.7")],
            queue: vec![t("jobs")],
        },
    }
    .sign(key)
    .unwrap()
}

fn with_token(token: &[u8]) -> Hello {
    hello(HelloOptions::builder().auth_token(token).build().unwrap())
}

fn refusal(r: Result<Admission, framewire_protocol::session::Refusal>) -> String {
    let e = r.expect_err("refused");
    assert_eq!(e.reason, Reason::AUTH_FAILED);
    e.message.as_str().to_owned()
}

#[test]
fn tokens_are_required_checked_and_bound_to_their_first_address() {
    let mut h = guarded();
    let other: std::net::IpAddr = [127, 0, 0, 9].into();
    assert!(refusal(h.admit(t(0), A, &hello(HelloOptions::new()), LOCAL)).contains("required"));
    let expired = token("dev7", NOW_UNIX - 1, KEY);
    assert!(refusal(h.admit(t(0), A, &with_token(&expired), LOCAL)).contains("expired"));
    let forged = token(
        "dev7",
        NOW_UNIX + 60,
        b"not the server's key, but as long as one",
    );
    assert!(refusal(h.admit(t(0), A, &with_token(&forged), LOCAL)).contains("signature"));
    let good = token("dev7", NOW_UNIX + 60, KEY);
    assert!(h.admit(t(0), A, &with_token(&good), LOCAL).is_ok());
    assert!(refusal(h.admit(t(0), B, &with_token(&good), other)).contains("another address"));
    assert!(
        h.admit(t(0), C, &with_token(&good), LOCAL).is_ok(),
        "same address: a reconnect"
    );
    assert_eq!(h.stats().auth_refused, 4);
    assert_eq!(
        h.stats().tcp.sessions,
        2,
        "refused handshakes open no session"
    );
}

/// A guarded hub with client `A` admitted under a token for "dev7".
fn guarded_with_dev7() -> Hub {
    let mut h = guarded();
    h.admit(
        t(0),
        A,
        &with_token(&token("dev7", NOW_UNIX + 60, KEY)),
        LOCAL,
    )
    .unwrap();
    h
}

#[test]
fn every_operation_is_checked_against_the_token() {
    let mut h = guarded_with_dev7();
    publish(&mut h, A, 1, "dev/7/temp", b"21", false);
    publish(&mut h, A, 2, "dev/8/temp", b"21", false);
    subscribe(&mut h, A, 3, "cmd/7/reboot");
    subscribe(&mut h, A, 4, "cmd/#");
    register(&mut h, A, 5, "sensor.7");
    register(&mut h, A, 6, "sensor.8");
    request(&mut h, t(0), A, 7, "sys.ping", 0);
    request(&mut h, t(0), A, 8, "admin.reset", 0);
    push(&mut h, t(0), A, 9, b"job");
    let out = drain(&mut h);
    for (id, status) in [
        (1, Status::OK),
        (2, Status::FORBIDDEN),
        (3, Status::OK),
        (4, Status::FORBIDDEN),
        (5, Status::OK),
        (6, Status::FORBIDDEN),
        (7, Status::OK),
        (8, Status::FORBIDDEN),
        (9, Status::OK),
    ] {
        assert_eq!(status_of(&out, A, id), Some(status), "operation {id}");
    }
    assert_eq!(h.stats().forbidden, 4);
}

#[test]
fn a_session_resumes_only_for_the_identity_that_opened_it() {
    let mut h = guarded();
    let alice = with_token(&token("alice", NOW_UNIX + 60, KEY));
    h.admit(t(0), A, &alice, LOCAL).unwrap();
    subscribe(&mut h, A, 1, "cmd/7/x");
    drain(&mut h);
    let session = token_of(&h, A);
    h.session_ended(t(1), A, false);
    let mallory_token = token("mallory", NOW_UNIX + 60, KEY);
    let mallory = hello(
        HelloOptions::builder()
            .auth_token(&mallory_token)
            .resume_token(&session)
            .build()
            .unwrap(),
    );
    assert!(!h.admit(t(2), B, &mallory, LOCAL).unwrap().resumed);
    let alice_again = hello(
        HelloOptions::builder()
            .auth_token(&token("alice", NOW_UNIX + 60, KEY))
            .resume_token(&session)
            .build()
            .unwrap(),
    );
    assert!(h.admit(t(3), C, &alice_again, LOCAL).unwrap().resumed);
}

/// A worker asking where a Publish goes is told whether the publisher's token allows it, and
/// the answer moves with a new policy.
#[test]
fn a_workers_route_says_whether_the_token_allows_the_topic() {
    let mut h = guarded_with_dev7();
    let route =
        |h: &Hub, topic: &str| h.local_route(A, &Text::from(topic), 0, ChannelKind::Unreliable);
    assert!(route(&h, "dev/7/temp").allowed);
    let forbidden = route(&h, "dev/8/temp");
    assert!(!forbidden.allowed);
    h.reconfigure_auth(AuthConfig::default());
    assert_ne!(route(&h, "dev/8/temp").epoch, forbidden.epoch);
}
