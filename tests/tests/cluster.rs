//! Several framewire nodes as one through a real nats-server (docs/PROTOCOL.md section 12):
//! publishes reach subscribers on the other nodes (two of them, three nodes in all) once each, in
//! order, with wildcards, over TCP and UDP; a node's own subscribers hear its publishes once (not
//! again through NATS); requests reach responders on every node; a node rides out NATS going
//! away, and through nats-server restarting under load; a client moves to another node when its
//! node goes, also one that was told of one node and learned the others.
//!
//! Ignored by `cargo test --workspace` (nats-server comes from Debian's package); `.ci/run`
//! installs it and runs these with `--ignored`.

use std::time::{Duration, Instant};

use framewire_server::ServerConfig;
use framewire_tests::{
    DEADLINE, NatsServer, TestClient, TestServer, Via, request, sys_stat, topic_and_payload,
};

fn node(nats: &NatsServer, name: &str) -> TestServer {
    TestServer::start(ServerConfig {
        cluster: vec![nats.url.clone()],
        node_name: Some(name.into()),
        ..ServerConfig::default()
    })
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
            && topic_and_payload(&f).is_some_and(|(_, p)| p == "probe")
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
        if let Some((_, p)) = topic_and_payload(&f)
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
        if let Some((_, p)) = topic_and_payload(&f) {
            assert_eq!(p, "probe", "a message twice, or one it should not get");
        }
    }
}

#[test]
#[ignore = "needs nats-server (Debian's nats-server); .ci/run runs it"]
fn publishes_reach_other_nodes_subscribers_once_each_in_order() {
    let nats = NatsServer::start();
    let (a, b, c) = (node(&nats, "a"), node(&nats, "b"), node(&nats, "c"));
    let mut on_a = TestClient::connect(&a, Via::Tcp);
    on_a.subscribe_ok(1, "room/+/chat");
    on_a.subscribe_ok(2, "dev/#");
    // Overlapping filters: two NATS subscriptions match room/1/chat, the session gets it once.
    on_a.subscribe_ok(3, "room/1/+");
    let mut on_b = TestClient::connect(&b, Via::Udp);
    on_b.subscribe_ok(1, "room/1/chat");
    // A third node, over UDP too.
    let mut on_c = TestClient::connect(&c, Via::Udp);
    on_c.subscribe_ok(1, "room/#");
    let mut publisher = TestClient::connect(&b, Via::Tcp);
    let mut id = 0;
    until_heard(&mut publisher, &mut on_c, "room/1/chat", &mut id);
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
    assert_eq!(numbered(&mut on_c, 100), sent, "on a third node, over UDP");
    hears_no_more(&mut on_a);
    hears_no_more(&mut on_c);

    // A node's own subscribers hear its clients' publishes from its hub, and not again from NATS.
    let mut local = TestClient::connect(&a, Via::Tcp);
    local.publish_ok(1, "room/2/chat", b"m-local");
    assert_eq!(numbered(&mut on_a, 1), ["m-local"]);
    hears_no_more(&mut on_a);
    local.close();

    // Each node lists the other in sys.nodes, with the address its clients reach it at.
    let mut ask = 20;
    let nodes = until_listed(&mut on_a, &mut ask, "b", &b);
    let me = format!("{{\"name\":\"a\",\"self\":true,\"tcp\":\"{}\"", a.addr());
    assert!(nodes.starts_with(&format!("{{\"nodes\":[{me}")), "{nodes}");

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

/// A number in the `cluster` object of a node's `sys.stats`.
/// Asks `sys.nodes` until the node lists node `name` at `other`'s TCP address; the answer.
fn until_listed(on: &mut TestClient, ask: &mut u32, name: &str, other: &TestServer) -> String {
    let deadline = Instant::now() + DEADLINE;
    let listed = format!(
        "{{\"name\":\"{name}\",\"self\":false,\"tcp\":\"{}\"",
        other.addr()
    );
    loop {
        *ask += 1;
        on.send(request(*ask, "sys.nodes"));
        let nodes = String::from_utf8_lossy(&on.until_response(*ask).1.payload).into_owned();
        if nodes.contains(&listed) {
            return nodes;
        }
        assert!(Instant::now() < deadline, "never heard of {name}: {nodes}");
        let _ = on.recv_within(Duration::from_millis(50));
    }
}

fn cluster_stat(client: &mut TestClient, id: u32, name: &str) -> u64 {
    client.send(request(id, "sys.stats"));
    sys_stat(&client.until_response(id).1.payload, "cluster", name)
}

/// Asks until the node says it is (or is not) connected to NATS.
fn until_connected(client: &mut TestClient, id: &mut u32, connected: bool) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        *id += 1;
        if (cluster_stat(client, *id, "connected") == 1) == connected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the node never said connected = {connected}"
        );
        // Asking again at once would spin: wait for a frame that does not come (a heartbeat at most).
        let _ = client.recv_within(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs nats-server (Debian's nats-server); .ci/run runs it"]
fn a_node_without_nats_serves_its_own_clients_and_rejoins_when_nats_returns() {
    let nats = NatsServer::start();
    let port = nats.port();
    let (a, b) = (node(&nats, "a"), node(&nats, "b"));
    let mut on_a = TestClient::connect(&a, Via::Tcp);
    on_a.subscribe_ok(1, "room/#");
    let mut on_b = TestClient::connect(&b, Via::Tcp);
    on_b.subscribe_ok(1, "room/#");
    let mut publisher = TestClient::connect(&b, Via::Udp);
    let (mut id, mut ask) = (0, 100);
    until_heard(&mut publisher, &mut on_a, "room/1", &mut id);
    until_connected(&mut on_a, &mut ask, true);

    drop(nats);
    until_connected(&mut on_a, &mut ask, false);
    // Alone, each node still serves its own clients. (Whether this reaches node a when NATS is
    // back depends on the NATS client's buffer: the tallies below leave it out.)
    id += 1;
    publisher.publish_ok(id, "room/2", b"alone");
    let deadline = Instant::now() + DEADLINE;
    while on_b
        .recv_within(DEADLINE)
        .and_then(|f| topic_and_payload(&f))
        .is_none_or(|(_, p)| p != "alone")
    {
        assert!(
            Instant::now() < deadline,
            "a node alone did not serve its client"
        );
    }

    // NATS comes back where it was: the nodes reconnect and subscribe again by themselves.
    let _nats = NatsServer::start_on(port);
    until_connected(&mut on_a, &mut ask, true);
    until_heard(&mut publisher, &mut on_a, "room/3", &mut id);
    let sent: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    for m in &sent {
        id += 1;
        publisher.publish_ok(id, "room/4", m.as_bytes());
    }
    assert_eq!(numbered(&mut on_a, 20), sent, "across nodes again");
    assert_eq!(numbered(&mut on_b, 20), sent);
}

/// Every message payload `client` holds, in arrival order, until `last` has come.
fn payloads_until(client: &mut TestClient, last: &str) -> Vec<String> {
    let mut got = Vec::new();
    while got.last().is_none_or(|p| p != last) {
        let Some(f) = client.recv_within(DEADLINE) else {
            panic!("{last} never came; {} messages did", got.len());
        };
        if let Some((_, p)) = topic_and_payload(&f) {
            got.push(p);
        }
    }
    got
}

fn index_of(payload: &str) -> usize {
    payload[1..].parse().expect("m<number>")
}

#[test]
#[ignore = "needs nats-server (Debian's nats-server); .ci/run runs it"]
fn a_nats_restart_under_load_loses_no_local_message_and_crossing_resumes_in_order() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let nats = NatsServer::start();
    let port = nats.port();
    let (a, b) = (node(&nats, "a"), node(&nats, "b"));
    let mut local = TestClient::connect(&a, Via::Tcp);
    local.subscribe_ok(1, "load/#");
    let mut remote = TestClient::connect(&b, Via::Udp);
    remote.subscribe_ok(1, "load/#");
    let (mut stats_a, mut stats_b) = (
        TestClient::connect(&a, Via::Tcp),
        TestClient::connect(&b, Via::Tcp),
    );
    let mut probe = TestClient::connect(&a, Via::Tcp);
    let (mut id, mut ask) = (0, 100);
    until_heard(&mut probe, &mut remote, "load/probe", &mut id);
    probe.close();

    // One publisher on node a, each publish confirmed before the next, all through the outage.
    let published = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let publishing = {
        let (published, stop) = (Arc::clone(&published), Arc::clone(&stop));
        let mut client = TestClient::connect(&a, Via::Tcp);
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                client.publish_ok(
                    1000 + u32::try_from(n).unwrap(),
                    "load/1",
                    format!("m{n}").as_bytes(),
                );
                n += 1;
                published.store(n, Ordering::Relaxed);
            }
            n
        })
    };
    let after = |at_least: usize| {
        let deadline = Instant::now() + DEADLINE;
        while published.load(Ordering::Relaxed) < at_least {
            assert!(Instant::now() < deadline, "the publisher stalled");
            std::thread::yield_now();
        }
    };
    after(200);
    drop(nats);
    until_connected(&mut stats_a, &mut ask, false);
    let outage_from = published.load(Ordering::Relaxed);
    after(outage_from + 200);
    let _nats = NatsServer::start_on(port);
    until_connected(&mut stats_a, &mut ask, true);
    until_connected(&mut stats_b, &mut ask, true);
    let back_at = published.load(Ordering::Relaxed);
    after(back_at + 300);
    stop.store(true, Ordering::Relaxed);
    let total = publishing.join().expect("the publisher");
    let last = format!("m{}", total - 1);

    // Node a's own subscriber lost nothing while NATS was away: every message, once, in order.
    let heard: Vec<usize> = payloads_until(&mut local, &last)
        .iter()
        .filter(|p| p.starts_with('m'))
        .map(|p| index_of(p))
        .collect();
    assert!(
        heard.iter().copied().eq(0..total),
        "node a's subscriber heard {} of {total} messages, or out of order",
        heard.len()
    );
    // Node b's: never a message twice or out of order; and from the first message that crossed
    // after NATS came back, every one.
    let crossed: Vec<usize> = payloads_until(&mut remote, &last)
        .iter()
        .filter(|p| p.starts_with('m'))
        .map(|p| index_of(p))
        .collect();
    assert!(
        crossed.windows(2).all(|w| w[0] < w[1]),
        "a message twice or out of order"
    );
    let resumed = crossed
        .iter()
        .position(|&i| i >= back_at)
        .expect("messages crossed after NATS came back");
    assert!(
        crossed[resumed..]
            .iter()
            .copied()
            .eq(crossed[resumed]..total),
        "a message lost after crossing resumed at m{}",
        crossed[resumed]
    );
    assert!(
        crossed[resumed] < back_at + 300,
        "crossing resumed only at m{}",
        crossed[resumed]
    );
}

/// Publishes `payload` as `topic`'s retained message (empty: clears it) from `client`.
fn retain(client: &mut TestClient, id: u32, topic: &str, payload: &str) {
    use framewire_protocol::wire::{Frame, Publish, Text};
    client.call_ok(
        id,
        Frame::new(Publish {
            retain: true,
            id,
            topic: Text::from(topic),
            payload: bytes::Bytes::copy_from_slice(payload.as_bytes()),
        }),
    );
}

/// Looks at a node's retained messages of `cfg/...`: a subscriber that subscribes to `cfg/#`
/// anew for each look, and a client that then publishes a marker there; what comes before the
/// marker is what the node had retained.
struct RetainedLook {
    subscriber: TestClient,
    marker: TestClient,
    id: u32,
}

impl RetainedLook {
    fn on(server: &TestServer) -> Self {
        Self {
            subscriber: TestClient::connect(server, Via::Tcp),
            marker: TestClient::connect(server, Via::Tcp),
            id: 0,
        }
    }

    /// What a new subscription gets, as `topic=payload`, sorted.
    fn look(&mut self) -> Vec<String> {
        use framewire_protocol::wire::{Frame, Text, Unsubscribe};
        self.id += 2;
        let mut got: Vec<String> = self
            .subscriber
            .subscribe_ok(self.id, "cfg/#")
            .iter()
            .filter_map(topic_and_payload)
            .map(|(t, p)| format!("{t}={p}"))
            .collect();
        self.marker.publish_ok(self.id, "cfg/marker", b"-");
        let deadline = Instant::now() + DEADLINE;
        loop {
            assert!(Instant::now() < deadline, "the marker never came");
            let frame = self.subscriber.recv_within(DEADLINE).expect("the marker");
            match topic_and_payload(&frame) {
                Some((t, _)) if t == "cfg/marker" => break,
                Some((t, p)) => got.push(format!("{t}={p}")),
                None => {}
            }
        }
        self.subscriber.call_ok(
            self.id + 1,
            Frame::new(Unsubscribe {
                id: self.id + 1,
                filter: Text::from("cfg/#"),
            }),
        );
        got.sort();
        got
    }

    /// Looks until the node's retained messages are `want`.
    fn until(&mut self, want: &[&str]) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let got = self.look();
            if got == want {
                return;
            }
            assert!(Instant::now() < deadline, "retained {got:?}, not {want:?}");
            let _ = self.subscriber.recv_within(Duration::from_millis(20));
        }
    }
}

#[test]
#[ignore = "needs nats-server (Debian's nats-server); .ci/run runs it"]
fn retained_messages_are_the_clusters_on_every_node_and_on_one_started_later() {
    let nats = NatsServer::start();
    let (a, b) = (node(&nats, "a"), node(&nats, "b"));
    let mut on_a = TestClient::connect(&a, Via::Tcp);
    let (mut look_a, mut look_b) = (RetainedLook::on(&a), RetainedLook::on(&b));
    retain(&mut on_a, 1, "cfg/1", "v1");
    look_b.until(&["cfg/1=v1"]);
    // A node that was not there when it was set has it from the stream.
    let c = node(&nats, "c");
    let mut look_c = RetainedLook::on(&c);
    look_c.until(&["cfg/1=v1"]);
    // Set on another node, it replaces the first everywhere; cleared, it goes everywhere.
    let mut on_b = TestClient::connect(&b, Via::Udp);
    retain(&mut on_b, 1, "cfg/1", "v2");
    retain(&mut on_b, 2, "cfg/2", "w");
    look_a.until(&["cfg/1=v2", "cfg/2=w"]);
    look_c.until(&["cfg/1=v2", "cfg/2=w"]);
    retain(&mut on_a, 2, "cfg/1", "");
    for look in [&mut look_a, &mut look_b, &mut look_c] {
        look.until(&["cfg/2=w"]);
    }
}

/// A node whose queue deliveries wait 1 s for their ack.
fn quick_node(nats: &NatsServer, name: &str) -> TestServer {
    TestServer::start(ServerConfig {
        cluster: vec![nats.url.clone()],
        node_name: Some(name.into()),
        hub: framewire_server::hub::HubConfig {
            visibility_timeout: Duration::from_secs(1),
            ..framewire_server::hub::HubConfig::default()
        },
        ..ServerConfig::default()
    })
}

#[test]
#[ignore = "needs nats-server (Debian's nats-server); .ci/run runs it"]
fn one_queue_consumed_from_two_nodes_gives_each_job_once_and_a_dead_nodes_again() {
    use framewire_protocol::wire::Status;
    use framewire_tests::queue::{ack, fetch, push};
    use std::collections::BTreeSet;

    let nats = NatsServer::start();
    let (a, b) = (quick_node(&nats, "a"), quick_node(&nats, "b"));
    let mut producer = TestClient::connect(&a, Via::Tcp);
    for i in 0..100 {
        assert_eq!(
            push(&mut producer, i + 1, "jobs", format!("j{i}").as_bytes()),
            Status::OK
        );
    }
    // One consumer on each node, taking turns, each acknowledging through its own node.
    let mut on_a = TestClient::connect(&a, Via::Tcp);
    let mut on_b = TestClient::connect(&b, Via::Udp);
    let (mut got, mut from_b, mut id) = (Vec::new(), 0, 0);
    let deadline = Instant::now() + DEADLINE;
    while got.len() < 100 {
        assert!(Instant::now() < deadline, "only {} jobs came", got.len());
        for (consumer, is_b) in [(&mut on_a, false), (&mut on_b, true)] {
            id += 2;
            for d in fetch(consumer, id, "jobs", 7, 200) {
                assert!(!d.redelivered, "delivered twice: {:?}", d.payload);
                assert_eq!(ack(consumer, id + 1, "jobs", d.delivery_id), Status::OK);
                got.push(String::from_utf8_lossy(&d.payload).into_owned());
                from_b += usize::from(is_b);
            }
        }
    }
    let distinct: BTreeSet<&String> = got.iter().collect();
    assert_eq!((got.len(), distinct.len()), (100, 100), "each job once");
    assert!(
        from_b > 0 && from_b < 100,
        "both nodes' consumers took jobs: {from_b} on b"
    );
    // An ack through the other node finds nothing: a delivery is settled where it came from.
    assert!(
        fetch(&mut on_a, 1000, "jobs", 1, 0).is_empty(),
        "the queue is empty"
    );

    // Jobs node b delivered and no one acknowledged come again through node a once b is gone.
    for i in 0..3 {
        assert_eq!(
            push(&mut producer, 2000 + i, "jobs", format!("k{i}").as_bytes()),
            Status::OK
        );
    }
    let taken = fetch(&mut on_b, 3000, "jobs", 3, 1000);
    assert_eq!(taken.len(), 3);
    assert_eq!(
        ack(&mut on_a, 3001, "jobs", taken[0].delivery_id),
        Status::NOT_FOUND
    );
    drop(on_b);
    b.stop();
    let mut again = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while again.len() < 3 {
        assert!(Instant::now() < deadline, "only {} came again", again.len());
        id += 2;
        for d in fetch(&mut on_a, id, "jobs", 3, 2000) {
            assert!(
                d.redelivered,
                "{:?} came again marked REDELIVERED",
                d.payload
            );
            assert_eq!(ack(&mut on_a, id + 1, "jobs", d.delivery_id), Status::OK);
            again.push(String::from_utf8_lossy(&d.payload).into_owned());
        }
    }
    again.sort();
    assert_eq!(again, ["k0", "k1", "k2"]);
}

/// Asks `sys.services` until the answer is `want`.
fn until_services(client: &mut TestClient, want: &str) {
    let deadline = Instant::now() + DEADLINE;
    for ask in 200.. {
        client.send(request(ask, "sys.services"));
        let (_, r) = client.until_response(ask);
        if r.payload == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "sys.services never said {want}: {:?}",
            String::from_utf8_lossy(&r.payload)
        );
        let _ = client.recv_within(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs nats-server (Debian's nats-server); .ci/run runs it"]
fn requests_reach_responders_on_every_node_and_come_back() {
    use bytes::Bytes;
    use framewire_protocol::wire::{Frame, FrameBody, Register, Response, Status, Text};

    let nats = NatsServer::start();
    let (a, b) = (node(&nats, "a"), node(&nats, "b"));
    let mut responders = [
        TestClient::connect(&a, Via::Tcp),
        TestClient::connect(&b, Via::Udp),
    ];
    for r in &mut responders {
        r.call_ok(
            1,
            Frame::new(Register {
                id: 1,
                service: Text::from("echo.upper"),
            }),
        );
    }
    let mut requester = TestClient::connect(&a, Via::Tcp);
    // Until both registrations have reached NATS: a request that finds none gets NO_RESPONDER.
    let deadline = Instant::now() + DEADLINE;
    let mut id = 100;
    let mut answered = [0usize; 2];
    while answered.contains(&0) {
        assert!(
            Instant::now() < deadline,
            "not every responder was reached: {answered:?}"
        );
        id += 1;
        requester.send(framewire_protocol::wire::Frame::new(
            framewire_protocol::wire::Request {
                id,
                timeout_ms: 2000,
                target: Text::from("echo.upper"),
                payload: Bytes::from_static(b"hi"),
            },
        ));
        // Whichever responder NATS picked answers with its index; or nobody is there yet.
        let mut routed = None;
        let answer = loop {
            for (i, r) in responders.iter_mut().enumerate() {
                if let Some(f) = r.recv_within(Duration::from_millis(10))
                    && let FrameBody::Request(q) = f.body
                {
                    assert_eq!(&q.payload[..], b"hi");
                    r.send(Frame::new(Response {
                        id: q.id,
                        status: Status::OK,
                        payload: Bytes::from(format!("HI from {i}")),
                    }));
                    routed = Some(i);
                }
            }
            if let Some(f) = requester.recv_within(Duration::from_millis(10))
                && let FrameBody::Response(r) = f.body
                && r.id == id
            {
                break r;
            }
            assert!(Instant::now() < deadline, "request {id} was not answered");
        };
        if answer.status == Status::NO_RESPONDER {
            continue;
        }
        let i = routed.expect("a responder answered it");
        assert_eq!(
            (answer.status, answer.payload),
            (Status::OK, Bytes::from(format!("HI from {i}")))
        );
        answered[i] += 1;
    }
    // A service nobody serves anywhere: NO_RESPONDER at once.
    requester.send(framewire_tests::request(7, "nobody.home"));
    assert_eq!(requester.until_response(7).1.status, Status::NO_RESPONDER);

    // sys.services on either node counts the responders on both (b's from its announcement).
    until_services(
        &mut requester,
        "{\"services\":[{\"name\":\"echo.upper\",\"responders\":2,\"here\":1,\"nodes\":[\"a\",\"b\"]}]}",
    );
    // b's responder leaves: within the announcement of the change, a counts one.
    let [still_serving, on_b] = responders;
    on_b.close();
    until_services(
        &mut requester,
        "{\"services\":[{\"name\":\"echo.upper\",\"responders\":1,\"here\":1,\"nodes\":[\"a\"]}]}",
    );
    drop(still_serving);
}

/// A client crate client on node a, publishes from node b: it hears them through the cluster,
/// then, node a stopped, from node b itself, where it reconnected and subscribed again (a
/// session does not move between nodes; its subscriptions do).
fn moves_from_a_to_b(a: TestServer, b: &TestServer, options: framewire_client::ClientOptions) {
    use framewire_client::{Client, Reconnect};

    let mut options = options;
    options.reconnect = Some(Reconnect {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
        ..Reconnect::default()
    });
    let mut client = Client::connect(options).expect("node a");
    client.subscribe("room/#").expect("subscribed on node a");
    let mut publisher = TestClient::connect(b, Via::Tcp);
    let heard = |client: &mut Client, publisher: &mut TestClient, id: &mut u32, what: &[u8]| {
        let deadline = Instant::now() + DEADLINE;
        loop {
            assert!(
                Instant::now() < deadline,
                "the client never heard node b's publishes"
            );
            *id += 1;
            publisher.publish_ok(*id, "room/9", what);
            if client
                .next_message(Duration::from_millis(100))
                .expect("the client runs")
                .is_some_and(|m| m.payload[..] == *what)
            {
                return;
            }
        }
    };
    let mut id = 0;
    heard(&mut client, &mut publisher, &mut id, b"before");
    a.stop();
    heard(&mut client, &mut publisher, &mut id, b"after");
}

#[test]
#[ignore = "needs nats-server (Debian's nats-server); .ci/run runs it"]
fn a_client_given_several_nodes_moves_to_another_when_its_node_goes() {
    let nats = NatsServer::start();
    let (a, b) = (node(&nats, "a"), node(&nats, "b"));
    let options = framewire_client::ClientOptions::builder(a.addr())
        .also_try(b.addr())
        .learn_nodes(false)
        .build()
        .expect("options");
    moves_from_a_to_b(a, &b, options);
}

#[test]
#[ignore = "needs nats-server (Debian's nats-server); .ci/run runs it"]
fn a_client_given_one_node_learns_the_others_and_moves_to_one_when_its_node_goes() {
    let nats = NatsServer::start();
    let (a, b) = (node(&nats, "a"), node(&nats, "b"));
    // Node a has heard of node b (its sys.nodes lists it) before the client asks it.
    let mut probe = TestClient::connect(&a, Via::Tcp);
    until_listed(&mut probe, &mut 0, "b", &b);
    probe.close();
    let options = framewire_client::ClientOptions::builder(a.addr())
        .build()
        .expect("options");
    assert!(options.fallback_servers.is_empty(), "told of node a only");
    moves_from_a_to_b(a, &b, options);
}
