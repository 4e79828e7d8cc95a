//! Several framewire nodes as one through a real nats-server (docs/PROTOCOL.md section 12):
//! publishes reach subscribers on other nodes once each, in order, with wildcards, over TCP and
//! UDP; a node's own subscribers hear its publishes once (not again through NATS).
//!
//! Ignored by `cargo test --workspace` (nats-server comes from Debian's package); `.ci/run`
//! installs it and runs these with `--ignored`.

use std::time::{Duration, Instant};

use framewire_protocol::wire::{Frame, FrameBody};
use framewire_server::ServerConfig;
use framewire_tests::{DEADLINE, NatsServer, TestClient, TestServer, Via, request};

fn node(nats: &NatsServer, name: &str) -> TestServer {
    TestServer::start(ServerConfig {
        cluster: vec![nats.url.clone()],
        node_name: Some(name.into()),
        ..ServerConfig::default()
    })
}

/// The payload of a Message frame, if `frame` is one.
fn message(frame: &Frame) -> Option<(String, String)> {
    match &frame.body {
        FrameBody::Message(m) => Some((
            m.topic.as_str().to_string(),
            String::from_utf8_lossy(&m.payload).into_owned(),
        )),
        _ => None,
    }
}

/// Publishes probes on `topic` until `to` hears one: the subscription it holds has reached NATS
/// through its node. Probes still on their way are told apart by their payload.
fn until_heard(from: &mut TestClient, to: &mut TestClient, topic: &str, id: &mut u32) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        assert!(
            Instant::now() < deadline,
            "{topic} never reached the other node"
        );
        *id += 1;
        from.publish_ok(*id, topic, b"probe");
        if let Some(f) = to.recv_within(Duration::from_millis(100))
            && message(&f).is_some_and(|(_, p)| p == "probe")
        {
            return;
        }
    }
}

/// The payloads of the Messages `client` receives until `n` of them start with `m`, probes and
/// other frames left out.
fn numbered(client: &mut TestClient, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < n {
        let Some(f) = client.recv_within(DEADLINE) else {
            panic!("only {} of {n} messages arrived: {got:?}", got.len());
        };
        if let Some((_, p)) = message(&f)
            && p.starts_with('m')
        {
            got.push(p);
        }
    }
    got
}

/// Nothing but probes arrives at `client` for a while.
fn hears_no_more(client: &mut TestClient) {
    while let Some(f) = client.recv_within(Duration::from_millis(300)) {
        if let Some((_, p)) = message(&f) {
            assert_eq!(p, "probe", "a message twice, or one it should not get");
        }
    }
}

#[test]
#[ignore = "needs nats-server (Debian's nats-server); .ci/run runs it"]
fn publishes_reach_other_nodes_subscribers_once_each_in_order() {
    let nats = NatsServer::start();
    let (a, b) = (node(&nats, "a"), node(&nats, "b"));
    let mut on_a = TestClient::connect(&a, Via::Tcp);
    on_a.subscribe_ok(1, "room/+/chat");
    on_a.subscribe_ok(2, "dev/#");
    let mut on_b = TestClient::connect(&b, Via::Udp);
    on_b.subscribe_ok(1, "room/1/chat");
    let mut publisher = TestClient::connect(&b, Via::Tcp);
    let mut id = 0;
    until_heard(&mut publisher, &mut on_a, "room/1/chat", &mut id);
    until_heard(&mut publisher, &mut on_a, "dev", &mut id);
    until_heard(&mut publisher, &mut on_a, "dev/7/temp", &mut id);

    let sent: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    for m in &sent {
        id += 1;
        publisher.publish_ok(id, "room/1/chat", m.as_bytes());
    }
    assert_eq!(
        numbered(&mut on_a, 100),
        sent,
        "across the cluster: each once, in order"
    );
    assert_eq!(
        numbered(&mut on_b, 100),
        sent,
        "on the publisher's node, over UDP"
    );
    hears_no_more(&mut on_a);

    // A node's own subscribers hear its clients' publishes from its hub, and not again from NATS.
    let mut local = TestClient::connect(&a, Via::Tcp);
    local.publish_ok(1, "room/2/chat", b"m-local");
    assert_eq!(numbered(&mut on_a, 1), ["m-local"]);
    hears_no_more(&mut on_a);
    local.close();

    // Both nodes say so in sys.stats.
    on_a.send(request(9, "sys.stats"));
    let stats = String::from_utf8_lossy(&on_a.until_response(9).1.payload).into_owned();
    let cluster = stats
        .split("\"cluster\":")
        .nth(1)
        .expect("a cluster section");
    assert!(cluster.starts_with("{\"connected\":1,"), "{cluster}");
    on_a.close();
    on_b.close();
    publisher.close();
}
