//! Work queues through a real server, over TCP and UDP: short and long polls, acks, redelivery
//! when a consumer dies, and the depth bound.

use std::time::{Duration, Instant};

use framewire_protocol::wire::{Frame, FrameBody, QueueFetch, Status, Text};
use framewire_server::ServerConfig;
use framewire_server::hub::HubConfig;
use framewire_tests::queue::{ack, fetch, push};
use framewire_tests::{BOTH, TestClient, TestServer, Via};

fn with_visibility_timeout(timeout: Duration) -> TestServer {
    TestServer::start(ServerConfig {
        hub: HubConfig {
            visibility_timeout: timeout,
            ..HubConfig::default()
        },
        ..ServerConfig::default()
    })
}

#[test]
fn push_fetch_and_ack_over_both_transports() {
    let server = TestServer::start(ServerConfig::default());
    for via in BOTH {
        let mut producer = TestClient::connect(&server, via);
        let mut consumer = TestClient::connect(&server, via);
        for n in 0..5u8 {
            assert_eq!(
                push(&mut producer, u32::from(n) + 1, "jobs", &[n]),
                Status::OK
            );
        }
        let got = fetch(&mut consumer, 10, "jobs", 3, 0);
        assert_eq!(
            got.iter().map(|d| d.payload[0]).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        let rest = fetch(&mut consumer, 11, "jobs", 10, 0);
        assert_eq!(rest.len(), 2);
        assert!(
            fetch(&mut consumer, 12, "jobs", 10, 0).is_empty(),
            "a short poll of nothing"
        );
        for (i, d) in got.iter().chain(&rest).enumerate() {
            assert!(!d.redelivered);
            assert_eq!(
                ack(&mut consumer, 20 + i as u32, "jobs", d.delivery_id),
                Status::OK
            );
        }
        assert_eq!(
            ack(&mut consumer, 30, "jobs", got[0].delivery_id),
            Status::NOT_FOUND
        );
    }
}

#[test]
fn a_long_poll_returns_the_moment_a_message_is_pushed() {
    let server = TestServer::start(ServerConfig::default());
    for via in BOTH {
        let mut consumer = TestClient::connect(&server, via);
        let mut producer = TestClient::connect(&server, via);
        // A queue per transport: the TCP round's delivery, never acked, is redelivered when its
        // consumer goes.
        let queue = format!("inbox-{via:?}");
        let started = Instant::now();
        consumer.send(Frame::new(QueueFetch {
            id: 1,
            max: 1,
            wait_ms: 20_000,
            queue: Text::from(queue.as_str()),
        }));
        let early = consumer.recv_within(Duration::from_millis(200));
        assert!(
            early.is_none(),
            "{via:?}: held while the queue is empty: {early:?}"
        );
        assert_eq!(push(&mut producer, 2, &queue, b"wake"), Status::OK);
        let (before, r) = consumer.until_response(1);
        assert_eq!(r.status, Status::OK);
        assert!(
            matches!(&before[..], [f] if matches!(&f.body, FrameBody::QueueDelivery(d) if d.payload == "wake"))
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}: answered by the push, not the wait",
            started.elapsed()
        );
    }
}

#[test]
fn a_long_poll_returns_empty_at_its_wait() {
    let server = TestServer::start(ServerConfig::default());
    for via in BOTH {
        let mut consumer = TestClient::connect(&server, via);
        let started = Instant::now();
        assert!(fetch(&mut consumer, 1, "quiet", 5, 300).is_empty());
        assert!(started.elapsed() >= Duration::from_millis(300), "{via:?}");
    }
}

/// A consumer fetches and dies without acking; another consumer, already waiting, gets the message
/// again at once, marked redelivered (TCP: the socket closes; UDP: the idle timeout).
#[test]
fn redelivery_after_a_consumer_dies() {
    let config = ServerConfig {
        idle_timeout_ms: 1_000,
        heartbeat_interval_ms: 200,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    for via in BOTH {
        let mut producer = TestClient::connect(&server, Via::Tcp);
        let mut doomed = TestClient::connect(&server, via);
        let mut survivor = TestClient::connect(&server, via);
        assert_eq!(push(&mut producer, 1, "work", b"job-1"), Status::OK);
        let got = fetch(&mut doomed, 2, "work", 1, 0);
        assert_eq!(got.len(), 1);
        doomed.vanish();
        let again = fetch(&mut survivor, 3, "work", 1, 30_000);
        assert_eq!(again.len(), 1, "{via:?}");
        assert_eq!(&again[0].payload[..], b"job-1");
        assert!(again[0].redelivered);
        assert_eq!(
            ack(&mut survivor, 4, "work", again[0].delivery_id),
            Status::OK
        );
    }
}

#[test]
fn redelivery_after_the_visibility_timeout() {
    let server = with_visibility_timeout(Duration::from_millis(300));
    let mut c = TestClient::connect(&server, Via::Udp);
    assert_eq!(push(&mut c, 1, "q", b"x"), Status::OK);
    let first = fetch(&mut c, 2, "q", 1, 0);
    assert!(!first[0].redelivered);
    let again = fetch(&mut c, 3, "q", 1, 5_000);
    assert!(again[0].redelivered);
    assert_eq!(
        again[0].delivery_id, first[0].delivery_id,
        "the id names the message"
    );
    assert_eq!(ack(&mut c, 4, "q", first[0].delivery_id), Status::OK);
    assert_eq!(
        ack(&mut c, 5, "q", first[0].delivery_id),
        Status::NOT_FOUND,
        "gone"
    );
}

#[test]
fn a_full_queue_refuses_the_push() {
    let config = ServerConfig {
        hub: HubConfig {
            max_queue_depth: 3,
            ..HubConfig::default()
        },
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mut c = TestClient::connect(&server, Via::Tcp);
    for n in 1..=3 {
        assert_eq!(push(&mut c, n, "small", b"."), Status::OK);
    }
    assert_eq!(push(&mut c, 4, "small", b"."), Status::QUEUE_FULL);
    let got = fetch(&mut c, 5, "small", 1, 0);
    assert_eq!(
        push(&mut c, 6, "small", b"."),
        Status::QUEUE_FULL,
        "unacked still counts"
    );
    assert_eq!(ack(&mut c, 7, "small", got[0].delivery_id), Status::OK);
    assert_eq!(push(&mut c, 8, "small", b"."), Status::OK);
}

#[test]
fn a_consumer_gives_a_delivery_back_or_keeps_it_longer_through_the_client() {
    use framewire_client::Client;
    let server = with_visibility_timeout(Duration::from_millis(300));
    for via in BOTH {
        let queue = format!("work-{via:?}");
        let mut c =
            Client::connect(framewire_tests::client_options(&server, via)).expect("connects");
        c.queue_push(&queue, "job").expect("pushed");
        // Given back at once: delivered again, marked.
        let d = c.queue_fetch(&queue, 1, Duration::ZERO).expect("fetch");
        c.queue_nack(&queue, d[0].delivery_id, Duration::ZERO)
            .expect("given back");
        let again = c.queue_fetch(&queue, 1, Duration::ZERO).expect("fetch");
        assert_eq!(again.len(), 1);
        assert!(again[0].redelivered);
        // Kept longer: past the 300 ms timeout it is still this consumer's.
        c.queue_extend(&queue, again[0].delivery_id, Duration::from_secs(20))
            .expect("extended");
        let mut other =
            Client::connect(framewire_tests::client_options(&server, via)).expect("connects");
        assert!(
            other
                .queue_fetch(&queue, 1, Duration::from_millis(600))
                .expect("fetch")
                .is_empty(),
            "the extended delivery did not come back at the old timeout"
        );
        // Given back with a delay: not before it, then to the waiting fetch.
        c.queue_nack(&queue, again[0].delivery_id, Duration::from_millis(200))
            .expect("given back");
        let started = Instant::now();
        let later = other
            .queue_fetch(&queue, 1, Duration::from_secs(10))
            .expect("fetch");
        assert_eq!(later.len(), 1);
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "{:?}",
            started.elapsed()
        );
        other
            .queue_ack(&queue, later[0].delivery_id)
            .expect("acked");
        // Nothing to give back or keep now.
        let gone = c.queue_extend(&queue, later[0].delivery_id, Duration::ZERO);
        assert!(gone.is_err(), "{gone:?}");
    }
}

#[test]
fn a_queue_rule_moves_a_message_given_back_too_often_to_the_queue_it_names() {
    use framewire_client::Client;
    let server = TestServer::start(ServerConfig {
        hub: HubConfig {
            queue_rules: vec![
                "orders max_deliveries=2 dead_letter=orders.failed"
                    .parse()
                    .expect("a rule"),
            ],
            ..HubConfig::default()
        },
        ..ServerConfig::default()
    });
    for via in BOTH {
        let mut c =
            Client::connect(framewire_tests::client_options(&server, via)).expect("connects");
        c.queue_push("orders", "bad order").expect("pushed");
        for _ in 0..2 {
            let d = c.queue_fetch("orders", 1, Duration::ZERO).expect("fetch");
            c.queue_nack("orders", d[0].delivery_id, Duration::ZERO)
                .expect("given back");
        }
        assert!(
            c.queue_fetch("orders", 1, Duration::ZERO)
                .expect("fetch")
                .is_empty(),
            "{via:?}: moved after two deliveries"
        );
        let dead = c
            .queue_fetch("orders.failed", 1, Duration::ZERO)
            .expect("fetch");
        assert_eq!(&dead[0].payload[..], b"bad order", "{via:?}");
        c.queue_ack("orders.failed", dead[0].delivery_id)
            .expect("acked");
    }
}
