//! A game loop reads its UDP socket once a frame; the round trips it measures are the network's,
//! not its frame period: the kernel stamps each datagram's arrival (`SO_TIMESTAMPNS`) and the
//! client hands it to the session at that time.

use std::time::{Duration, Instant};

use framewire_client::{ClientEvent, ClientOptions, Connection, PublishOptions, Transport};
use framewire_server::ServerConfig;
use framewire_tests::{TestServer, drive_until};

/// The loop's frame: 20 ms (50 Hz). Each frame sends one reliable message and flushes it; the
/// server's ack then waits in the socket until the next frame reads it.
const FRAME: Duration = Duration::from_millis(20);

#[test]
fn a_loop_that_reads_once_a_frame_measures_the_networks_round_trip() {
    let server = TestServer::start(ServerConfig::default());
    let mut conn = Connection::new(
        ClientOptions::new(server.udp_addr(), Transport::Udp),
        Instant::now(),
    )
    .unwrap();
    let mut events = Vec::new();
    drive_until(&mut conn, &mut events, &|e| {
        e.iter().any(|e| matches!(e, ClientEvent::Connected { .. }))
    });
    let fire_and_forget = PublishOptions {
        ack: false,
        ..PublishOptions::default()
    };
    for frame in 0..40u8 {
        let now = Instant::now();
        conn.update(now);
        while conn.poll_event().is_some() {}
        conn.publish(now, "game/pos", vec![frame; 32].into(), fire_and_forget)
            .unwrap();
        conn.flush(now);
        // The frame's render time.
        std::thread::sleep(FRAME);
    }
    let rtt = conn.stats().expect("connected").rtt;
    // Measured at the read, each sample would be about a frame (20 ms); loopback's is well under
    // a millisecond. 5 ms leaves room for a busy machine.
    assert!(rtt < Duration::from_millis(5), "smoothed RTT {rtt:?}");
}

/// Over TCP the round trip is a Ping's, sent after a heartbeat interval of silence: a loop that
/// reads once a frame and sends nothing else measures the network's too.
#[test]
fn over_tcp_the_heartbeats_round_trip_is_the_networks() {
    let server = TestServer::start(ServerConfig::default());
    let mut options = ClientOptions::new(server.addr(), Transport::Tcp);
    options.session.heartbeat_interval = Duration::from_millis(100);
    let mut conn = Connection::new(options, Instant::now()).unwrap();
    let mut events = Vec::new();
    drive_until(&mut conn, &mut events, &|e| {
        e.iter().any(|e| matches!(e, ClientEvent::Connected { .. }))
    });
    for _ in 0..60 {
        let now = Instant::now();
        conn.update(now);
        while conn.poll_event().is_some() {}
        std::thread::sleep(FRAME);
    }
    let rtt = conn.stats().expect("connected").rtt;
    assert!(rtt < Duration::from_millis(5), "smoothed RTT {rtt:?}");
}
