//! `SharedClient`: one connection used from many threads, against a real server. A thread blocked
//! on a subscription does not hold up a thread that publishes; each subscription has its own
//! inbox, bounded, its oldest messages dropped and counted when its reader falls behind; requests
//! from several threads at once each get their own answer; a reconnect is driven by the
//! connection's own thread.

use std::time::Duration;

use framewire_client::{ClientEvent, ClientOptions, Reconnect, SharedClient, Transport};
use framewire_server::ServerConfig;
use framewire_tests::{BOTH, DEADLINE, TcpCut, TestServer, Via};

use framewire_tests::{client_options as options, payload_text as text};

#[test]
fn a_reader_blocked_on_a_subscription_does_not_hold_up_a_publisher() {
    let server = TestServer::start(ServerConfig::default());
    for via in BOTH {
        let client = SharedClient::connect(options(&server, via)).expect("connect");
        let sub = client.subscribe("room/+/chat").unwrap();
        let reader = std::thread::spawn(move || {
            let m = sub.next(DEADLINE).expect("a message");
            (m.topic.as_str().to_owned(), text(&m))
        });
        // The reader is (or soon will be) blocked in `next` on its own thread.
        client.publish("room/1/chat", "hello").unwrap();
        assert_eq!(
            reader.join().unwrap(),
            ("room/1/chat".to_owned(), "hello".to_owned()),
            "{via:?}"
        );
    }
}

#[test]
fn each_subscription_has_its_own_bounded_inbox() {
    let server = TestServer::start(ServerConfig::default());
    let client = SharedClient::connect(options(&server, Via::Tcp)).expect("connect");
    let lamps = client.subscribe_with_inbox("lamps/#", 3).unwrap();
    let doors = client.subscribe("doors/#").unwrap();
    for i in 0..8 {
        client.publish("lamps/1", format!("l{i}")).unwrap();
    }
    client.publish("doors/1", "open").unwrap();
    // Published in order and each accepted before the next: the door's came after every lamp's.
    let door = doors.next(DEADLINE).expect("the door");
    assert_eq!(text(&door), "open");
    assert!(doors.next(Duration::ZERO).is_none(), "only its own");
    let kept: Vec<String> = std::iter::from_fn(|| lamps.next(Duration::ZERO))
        .map(|m| text(&m))
        .collect();
    assert_eq!(kept, ["l5", "l6", "l7"], "the newest three");
    assert_eq!(lamps.dropped(), 5);
    // Dropping a subscription unsubscribes; the other goes on.
    drop(lamps);
    client.publish("lamps/1", "late").unwrap();
    client.publish("doors/1", "shut").unwrap();
    assert_eq!(text(&doors.next(DEADLINE).unwrap()), "shut");
}

#[test]
fn requests_from_many_threads_each_get_their_own_answer() {
    let server = TestServer::start(ServerConfig::default());
    let client = SharedClient::connect(options(&server, Via::Udp)).expect("connect");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let c = client.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let pong = c.request("sys.ping", "", DEADLINE).unwrap();
                    assert_eq!(&pong[..], b"pong");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(client.request("sys.nothing", "", DEADLINE).is_err());
}

#[test]
fn the_connections_thread_reconnects_and_resumes_by_itself() {
    let server = TestServer::start(ServerConfig::default());
    let cut = TcpCut::start(server.addr());
    let mut o = ClientOptions::new(cut.addr, Transport::Tcp);
    o.reconnect = Some(Reconnect {
        initial: Duration::from_millis(10),
        ..Reconnect::default()
    });
    let client = SharedClient::connect(o).expect("connect");
    let sub = client.subscribe("dev/#").unwrap();
    let publisher = SharedClient::connect(options(&server, Via::Tcp)).expect("connect");
    cut.cut();
    // Nobody calls the device's client: its thread notices, reconnects and resumes the session.
    publisher.publish("dev/7", "after the cut").unwrap();
    assert_eq!(
        text(&sub.next(DEADLINE).expect("a message")),
        "after the cut"
    );
    let events = client.connection_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::Connected { resumed: true, .. })),
        "{events:?}"
    );
}

/// A service answered from its own thread while other threads request it, and a queue worker.
#[test]
fn a_service_answers_from_its_thread_and_a_worker_drains_a_queue() {
    let server = TestServer::start(ServerConfig::default());
    let client = SharedClient::connect(options(&server, Via::Tcp)).expect("connect");
    let service = client.register("double").unwrap();
    let responder = std::thread::spawn(move || {
        for _ in 0..10 {
            let r = service.next(DEADLINE).expect("a request");
            let n: u32 = String::from_utf8_lossy(&r.payload).parse().unwrap();
            service
                .respond(&r, framewire_client::Status::OK, (2 * n).to_string())
                .unwrap();
        }
    });
    let other = SharedClient::connect(options(&server, Via::Udp)).expect("connect");
    for n in 0..10u32 {
        let answer = other.request("double", n.to_string(), DEADLINE).unwrap();
        assert_eq!(String::from_utf8_lossy(&answer), (2 * n).to_string());
    }
    responder.join().unwrap();

    for i in 0..5 {
        other.queue_push("jobs", format!("job {i}")).unwrap();
    }
    let mut done = Vec::new();
    while done.len() < 5 {
        let got = client
            .queue_fetch("jobs", 2, Duration::from_millis(500))
            .unwrap();
        assert!(!got.is_empty(), "the queue holds more");
        for d in got {
            done.push(String::from_utf8_lossy(&d.payload).into_owned());
            client.queue_ack(&d).unwrap();
        }
    }
    assert_eq!(done, (0..5).map(|i| format!("job {i}")).collect::<Vec<_>>());
    assert!(
        client
            .queue_fetch("jobs", 1, Duration::ZERO)
            .unwrap()
            .is_empty(),
        "all acknowledged"
    );
}
