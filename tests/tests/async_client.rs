//! `AsyncClient` under the tokio runtime, against a real server, with the cases of the blocking
//! client: publish and subscribe from concurrent tasks, a request answered and one that meets its
//! deadline, a reconnect and resume driven by the connection's own thread, and a request future
//! dropped before its answer (cancel-safe).

use std::time::Duration;

use framewire_client::{
    AsyncClient, Client, ClientEvent, ClientOptions, Error, Reconnect, Status, Transport,
};
use framewire_server::ServerConfig;
use framewire_tests::{BOTH, DEADLINE, TcpCut, TestServer, Via};

use framewire_tests::{client_options as options, payload_text as text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_publish_and_read_their_subscriptions_at_once() {
    let server = TestServer::start(ServerConfig::default());
    for via in BOTH {
        let client = AsyncClient::connect(options(&server, via))
            .await
            .expect("connect");
        let sub = client.subscribe("room/+/chat").await.unwrap();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < 20 {
                let m = tokio::time::timeout(DEADLINE, sub.next())
                    .await
                    .expect("in time")
                    .expect("a message");
                got.push(text(&m));
            }
            got
        });
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let c = client.clone();
                tokio::spawn(async move {
                    for i in 0..5 {
                        c.publish(&format!("room/{w}/chat"), format!("{w}.{i}"))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        let mut got = reader.await.unwrap();
        got.sort();
        let mut want: Vec<String> = (0..4)
            .flat_map(|w| (0..5).map(move |i| format!("{w}.{i}")))
            .collect();
        want.sort();
        assert_eq!(got, want, "{via:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_resolves_with_its_answer_or_at_its_deadline() {
    let server = TestServer::start(ServerConfig::default());
    let client = AsyncClient::connect(options(&server, Via::Tcp))
        .await
        .expect("connect");
    let pong = client.request("sys.ping", "", DEADLINE).await.unwrap();
    assert_eq!(&pong[..], b"pong");
    // A service that never answers: the server's TIMEOUT at the 300 ms deadline.
    let mut silent = Client::connect(options(&server, Via::Tcp)).expect("connect");
    silent.register("slow").unwrap();
    let started = std::time::Instant::now();
    match client.request("slow", "", Duration::from_millis(300)).await {
        Err(Error::Status { status, .. }) => assert_eq!(status, Status::TIMEOUT),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < DEADLINE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_request_future_leaves_the_client_usable() {
    let server = TestServer::start(ServerConfig::default());
    let client = AsyncClient::connect(options(&server, Via::Udp))
        .await
        .expect("connect");
    let mut silent = Client::connect(options(&server, Via::Tcp)).expect("connect");
    silent.register("slow").unwrap();
    // Given up after 50 ms: the future is dropped with its operation in flight.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        client.request("slow", "", Duration::from_secs(2)),
    )
    .await;
    assert!(gave_up.is_err());
    let pong = client.request("sys.ping", "", DEADLINE).await.unwrap();
    assert_eq!(&pong[..], b"pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connections_thread_reconnects_and_resumes_by_itself() {
    let server = TestServer::start(ServerConfig::default());
    let cut = TcpCut::start(server.addr());
    let mut o = ClientOptions::new(cut.addr, Transport::Tcp);
    o.reconnect = Some(Reconnect {
        initial: Duration::from_millis(10),
        ..Reconnect::default()
    });
    let device = AsyncClient::connect(o).await.expect("connect");
    let sub = device.subscribe("dev/#").await.unwrap();
    let operator = AsyncClient::connect(options(&server, Via::Tcp))
        .await
        .expect("connect");
    cut.cut();
    operator.publish("dev/7", "after the cut").await.unwrap();
    let m = tokio::time::timeout(DEADLINE, sub.next())
        .await
        .expect("in time")
        .expect("a message");
    assert_eq!(text(&m), "after the cut");
    device.publish("dev/7/ack", "back").await.unwrap();
    assert!(
        device
            .connection_events()
            .iter()
            .any(|e| matches!(e, ClientEvent::Connected { resumed: true, .. }))
    );
}

/// A service task answering while another task requests it, and a queue worker task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_task_answers_and_a_worker_task_drains_a_queue() {
    let server = TestServer::start(ServerConfig::default());
    let client = AsyncClient::connect(options(&server, Via::Tcp))
        .await
        .expect("connect");
    let service = client.register("double").await.unwrap();
    let responder = tokio::spawn(async move {
        for _ in 0..10 {
            let r = service.next().await.expect("a request");
            let n: u32 = String::from_utf8_lossy(&r.payload).parse().unwrap();
            service
                .respond(&r, Status::OK, (2 * n).to_string())
                .await
                .unwrap();
        }
    });
    let other = AsyncClient::connect(options(&server, Via::Udp))
        .await
        .expect("connect");
    for n in 0..10u32 {
        let answer = other
            .request("double", n.to_string(), DEADLINE)
            .await
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&answer), (2 * n).to_string());
    }
    responder.await.unwrap();

    let worker = {
        let c = client.clone();
        tokio::spawn(async move {
            let mut done = Vec::new();
            while done.len() < 5 {
                for d in c
                    .queue_fetch("jobs", 2, Duration::from_secs(2))
                    .await
                    .unwrap()
                {
                    done.push(String::from_utf8_lossy(&d.payload).into_owned());
                    c.queue_ack(&d).await.unwrap();
                }
            }
            done
        })
    };
    for i in 0..5 {
        other.queue_push("jobs", format!("job {i}")).await.unwrap();
    }
    let done = worker.await.unwrap();
    assert_eq!(done, (0..5).map(|i| format!("job {i}")).collect::<Vec<_>>());
}

/// Publishes that ask for no answer are queued without a round trip to the connection's thread,
/// bounded, and none is lost when the socket pushes back: 20,000 arrive, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_publishes_are_bounded_and_none_is_lost() {
    let server = TestServer::start(ServerConfig::default());
    let reader = framewire_client::SharedClient::connect(options(&server, Via::Tcp)).unwrap();
    let sub = reader.subscribe_with_inbox("load/#", 30_000).unwrap();
    let client = AsyncClient::connect(options(&server, Via::Tcp))
        .await
        .expect("connect");
    let quiet = framewire_client::PublishOptions {
        ack: false,
        ..framewire_client::PublishOptions::default()
    };
    for i in 0..20_000u32 {
        client
            .publish_with("load/1", i.to_be_bytes().to_vec(), quiet)
            .await
            .unwrap();
    }
    // An answered publish after them: it is accepted after every one before it.
    client.publish("load/end", "").await.unwrap();
    let mut next = 0u32;
    while next < 20_000 {
        let m = sub.next(DEADLINE).expect("every message");
        let n = u32::from_be_bytes(m.payload[..4].try_into().unwrap());
        assert_eq!(n, next, "in order, none missing");
        next += 1;
    }
    assert_eq!(sub.dropped(), 0);
}

/// Subscriptions and queues as `Stream`s: combinators work on them as on any stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_and_queues_are_streams() {
    use futures_util::StreamExt;
    let server = TestServer::start(ServerConfig::default());
    let client = AsyncClient::connect(options(&server, Via::Tcp))
        .await
        .expect("connect");
    let sub = client.subscribe("s/#").await.unwrap();
    for i in 0..3 {
        client.publish("s/1", format!("m{i}")).await.unwrap();
        client.queue_push("work", format!("job {i}")).await.unwrap();
    }
    let got: Vec<String> = tokio::time::timeout(DEADLINE, sub.take(3).map(|m| text(&m)).collect())
        .await
        .expect("in time");
    assert_eq!(got, ["m0", "m1", "m2"]);
    let mut jobs = client.queue_stream("work", 2);
    let mut done = Vec::new();
    while done.len() < 3 {
        let d = tokio::time::timeout(DEADLINE, jobs.next())
            .await
            .expect("in time")
            .expect("a delivery")
            .unwrap();
        client.queue_ack(&d).await.unwrap();
        done.push(String::from_utf8_lossy(&d.payload).into_owned());
    }
    assert_eq!(done, ["job 0", "job 1", "job 2"]);
}
