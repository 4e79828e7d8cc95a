//! Reliable pub/sub and queues across a lossy link: each client talks to the server through a
//! seeded relay that drops 20 % of the datagrams each way, duplicates 5 % and reorders 10 %. Every
//! message is delivered exactly once, and a subscriber sees one publisher's messages in order.

use std::time::Duration;

use framewire_client::{Client, ClientOptions, Transport};
use framewire_server::ServerConfig;
use framewire_tests::{DEADLINE, Faults, Relay, TestServer};

const FAULTS: Faults = Faults {
    loss: 20,
    duplicate: 5,
    reorder: 10,
};

fn client_through(relay: &Relay) -> Client {
    let mut o = ClientOptions::new(relay.addr, Transport::Udp);
    o.connect_timeout = Duration::from_secs(10);
    let mut c = Client::connect(o).expect("connect through the relay");
    c.timeout = Duration::from_secs(20);
    c
}

#[test]
fn reliable_pub_sub_across_a_lossy_link_is_exactly_once_and_in_order() {
    const MESSAGES: u32 = 300;
    let server = TestServer::start(ServerConfig::default());
    let (sub_link, pub_link) = (
        Relay::start(server.udp_addr(), FAULTS, 1),
        Relay::start(server.udp_addr(), FAULTS, 2),
    );
    let mut subscriber = client_through(&sub_link);
    subscriber.subscribe("lossy/#").unwrap();
    let mut publisher = client_through(&pub_link);
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
    assert!(pub_link.dropped.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

#[test]
fn a_queue_across_a_lossy_link_delivers_every_job_once() {
    const JOBS: u32 = 150;
    let server = TestServer::start(ServerConfig::default());
    let (p_link, c_link) = (
        Relay::start(server.udp_addr(), FAULTS, 3),
        Relay::start(server.udp_addr(), FAULTS, 4),
    );
    let mut producer = client_through(&p_link);
    let mut consumer = client_through(&c_link);
    for n in 0..JOBS {
        producer
            .queue_push("jobs", n.to_be_bytes().to_vec())
            .unwrap();
    }
    let mut seen = vec![0u32; JOBS as usize];
    let mut got = 0;
    while got < JOBS {
        let batch = consumer
            .queue_fetch("jobs", 16, Duration::from_secs(5))
            .unwrap();
        assert!(!batch.is_empty(), "after {got} jobs the queue ran dry");
        for d in batch {
            let n = u32::from_be_bytes(d.payload[..4].try_into().unwrap());
            seen[n as usize] += 1;
            consumer.queue_ack("jobs", d.delivery_id).unwrap();
            got += 1;
        }
    }
    assert!(seen.iter().all(|&c| c == 1), "{seen:?}");
    assert!(
        consumer
            .queue_fetch("jobs", 16, Duration::ZERO)
            .unwrap()
            .is_empty()
    );
}
