//! The hub driven directly, with a virtual clock: every behaviour of section 5 without sockets.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::session::Instant;
use framewire_protocol::wire::{
    ChannelKind, Data, Frame, FrameBody, Hello, HelloOptions, Publish, QueueAck, QueueFetch,
    QueuePush, Register, Request, Response, Status, Subscribe, Text, Unsubscribe,
};

use super::*;

const A: ClientId = ClientId::Tcp(10);
const LOCAL: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
const B: ClientId = ClientId::Udp(20);
const C: ClientId = ClientId::Tcp(30);

fn t(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

fn hub() -> Hub {
    hub_with(HubConfig::default())
}

fn hub_with(config: HubConfig) -> Hub {
    let mut h = Hub::new(config, ServerInfo::default(), Arc::default());
    for c in [A, B, C] {
        let _ = h
            .admit(t(0), c, &hello(HelloOptions::new()), LOCAL)
            .unwrap();
    }
    h
}

fn hello(options: HelloOptions) -> Hello {
    Hello::new(0, options)
}

/// Frames in tests travel on a reliable-ordered channel unless a test says otherwise.
trait Feed {
    fn feed(&mut self, now: Instant, client: ClientId, frame: Frame);
}

impl Feed for Hub {
    fn feed(&mut self, now: Instant, client: ClientId, frame: Frame) {
        self.handle_frame(now, client, frame, ChannelKind::ReliableOrdered);
    }
}

/// Every output, as (session, frame); shared frames are parsed back from their datagram body.
fn drain(h: &mut Hub) -> Vec<(ClientId, Frame)> {
    let mut all = Vec::new();
    while let Some(o) = h.poll_output() {
        let frame = match o.delivery {
            Delivery::Frame(f) => f,
            Delivery::Shared(s) => Frame::parse(s.body()).unwrap(),
            Delivery::Close(reason, why) => Frame::new(framewire_protocol::wire::Close {
                reason,
                message: Text::from(why),
            }),
        };
        all.push((o.to, frame));
    }
    all
}

fn status_of(out: &[(ClientId, Frame)], to: ClientId, id: u32) -> Option<Status> {
    out.iter().find_map(|(c, f)| match &f.body {
        FrameBody::Response(r) if *c == to && r.id == id => Some(r.status),
        _ => None,
    })
}

fn subscribe(h: &mut Hub, c: ClientId, id: u32, filter: &str) {
    h.feed(
        t(0),
        c,
        Frame::new(Subscribe {
            id,
            filter: Text::from(filter),
        }),
    );
}

fn publish(h: &mut Hub, c: ClientId, id: u32, topic: &str, payload: &'static [u8], retain: bool) {
    h.feed(
        t(0),
        c,
        Frame::new(Publish {
            retain,
            id,
            topic: Text::from(topic),
            payload: Bytes::from_static(payload),
        })
        .on_channel(3),
    );
}

fn messages_to(out: &[(ClientId, Frame)], to: ClientId) -> Vec<(String, Bytes, bool, u8)> {
    out.iter()
        .filter_map(|(c, f)| match &f.body {
            FrameBody::Message(m) if *c == to => Some((
                m.topic.as_str().to_owned(),
                m.payload.clone(),
                m.retained,
                f.channel,
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn publish_reaches_matching_subscribers_once_on_the_publish_channel() {
    let mut h = hub();
    subscribe(&mut h, A, 1, "room/+/pos");
    subscribe(&mut h, A, 2, "room/#");
    subscribe(&mut h, B, 3, "room/7/pos");
    subscribe(&mut h, C, 4, "lobby/#");
    let out = drain(&mut h);
    for (c, id) in [(A, 1), (A, 2), (B, 3), (C, 4)] {
        assert_eq!(status_of(&out, c, id), Some(Status::OK));
    }
    publish(&mut h, C, 9, "room/7/pos", b"xy", false);
    let out = drain(&mut h);
    assert_eq!(status_of(&out, C, 9), Some(Status::OK));
    let expected = vec![("room/7/pos".to_owned(), Bytes::from_static(b"xy"), false, 3)];
    assert_eq!(
        messages_to(&out, A),
        expected,
        "A twice-matching gets one copy"
    );
    assert_eq!(messages_to(&out, B), expected);
    assert!(messages_to(&out, C).is_empty());
    assert_eq!(h.stats().delivered, 2);
}

#[test]
fn bad_filters_and_topics_are_refused_with_a_status() {
    let mut h = hub();
    subscribe(&mut h, A, 1, "a/#/b");
    publish(&mut h, A, 2, "a/+", b"x", false);
    let long = "x".repeat(300);
    subscribe(&mut h, A, 3, &long);
    let out = drain(&mut h);
    assert_eq!(status_of(&out, A, 1), Some(Status::INVALID_TOPIC));
    assert_eq!(status_of(&out, A, 2), Some(Status::INVALID_TOPIC));
    assert_eq!(status_of(&out, A, 3), Some(Status::NAME_TOO_LONG));
}

#[test]
fn unsubscribe_and_session_end_stop_delivery() {
    let mut h = hub();
    subscribe(&mut h, A, 1, "t");
    subscribe(&mut h, B, 2, "t");
    h.feed(
        t(0),
        A,
        Frame::new(Unsubscribe {
            id: 3,
            filter: Text::from("t"),
        }),
    );
    h.feed(
        t(0),
        A,
        Frame::new(Unsubscribe {
            id: 4,
            filter: Text::from("t"),
        }),
    );
    let out = drain(&mut h);
    assert_eq!(status_of(&out, A, 3), Some(Status::OK));
    assert_eq!(status_of(&out, A, 4), Some(Status::NOT_FOUND));
    h.session_ended(t(0), B, true);
    publish(&mut h, C, 0, "t", b"x", false);
    let out = drain(&mut h);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(h.pubsub.subscriptions(), 0);
}

#[test]
fn retained_message_goes_to_late_joiners_and_an_empty_one_clears_it() {
    let mut h = hub();
    publish(&mut h, A, 0, "dev/1/state", b"on", true);
    publish(&mut h, A, 0, "dev/2/state", b"off", true);
    publish(&mut h, A, 0, "dev/1/state", b"dim", true);
    drain(&mut h);
    subscribe(&mut h, B, 1, "dev/+/state");
    let mut got = messages_to(&drain(&mut h), B);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("dev/1/state".into(), Bytes::from_static(b"dim"), true, 3),
            ("dev/2/state".into(), Bytes::from_static(b"off"), true, 3),
        ]
    );
    publish(&mut h, A, 0, "dev/1/state", b"", true);
    drain(&mut h);
    subscribe(&mut h, C, 2, "dev/1/state");
    assert!(messages_to(&drain(&mut h), C).is_empty());
}

#[test]
fn subscription_limit_per_session() {
    let mut h = hub_with(HubConfig {
        max_subscriptions_per_session: 2,
        ..HubConfig::default()
    });
    subscribe(&mut h, A, 1, "a");
    subscribe(&mut h, A, 2, "b");
    subscribe(&mut h, A, 3, "a");
    subscribe(&mut h, A, 4, "c");
    let out = drain(&mut h);
    assert_eq!(
        status_of(&out, A, 3),
        Some(Status::OK),
        "a repeat is no new one"
    );
    assert_eq!(status_of(&out, A, 4), Some(Status::LIMIT_REACHED));
}

fn request(h: &mut Hub, now: Instant, c: ClientId, id: u32, target: &str, timeout_ms: u32) {
    h.feed(
        now,
        c,
        Frame::new(Request {
            id,
            timeout_ms,
            target: Text::from(target),
            payload: Bytes::from_static(b"q"),
        }),
    );
}

fn register(h: &mut Hub, c: ClientId, id: u32, name: &str) {
    h.feed(
        t(0),
        c,
        Frame::new(Register {
            id,
            service: Text::from(name),
        }),
    );
}

/// The requests routed to `to`: (routed id, payload).
fn routed_to(out: &[(ClientId, Frame)], to: ClientId) -> Vec<u32> {
    out.iter()
        .filter_map(|(c, f)| match &f.body {
            FrameBody::Request(r) if *c == to => Some(r.id),
            _ => None,
        })
        .collect()
}

#[test]
fn built_in_methods_answer() {
    let mut h = hub();
    request(&mut h, t(1500), A, 1, "sys.ping", 0);
    request(&mut h, t(1500), A, 2, "sys.time", 0);
    request(&mut h, t(1500), A, 3, "sys.info", 0);
    request(&mut h, t(1500), A, 4, "sys.stats", 0);
    request(&mut h, t(1500), A, 5, "sys.nothing", 0);
    let out = drain(&mut h);
    let payload = |id| {
        out.iter()
            .find_map(|(_, f)| match &f.body {
                FrameBody::Response(r) if r.id == id => {
                    Some(String::from_utf8(r.payload.to_vec()).unwrap())
                }
                _ => None,
            })
            .unwrap()
    };
    assert_eq!(payload(1), "pong");
    assert_eq!(payload(2), "1500000", "wall clock at zero (0 here) + now");
    assert!(payload(3).contains("\"uptime_ms\":1500"), "{}", payload(3));
    assert!(
        payload(4).starts_with("{\"tcp\":{\"sessions\":2,"),
        "{}",
        payload(4)
    );
    assert!(payload(4).contains("\"udp\":{\"sessions\":1,"));
    assert_eq!(status_of(&out, A, 5), Some(Status::NOT_FOUND));
}

#[test]
fn sys_services_lists_each_service_with_its_responders() {
    let mut h = hub();
    register(&mut h, B, 1, "lamp");
    register(&mut h, C, 2, "lamp");
    register(&mut h, C, 3, "clock \"utc\"");
    drain(&mut h);
    request(&mut h, t(0), A, 4, "sys.services", 0);
    let out = drain(&mut h);
    let answer = out
        .iter()
        .find_map(|(_, f)| match &f.body {
            FrameBody::Response(r) if r.id == 4 => Some(String::from_utf8(r.payload.to_vec())),
            _ => None,
        })
        .unwrap()
        .unwrap();
    // A node alone: no node names; by name; the name JSON-escaped.
    assert_eq!(
        answer,
        "{\"services\":[\
         {\"name\":\"clock \\\"utc\\\"\",\"responders\":1,\"here\":1,\"nodes\":[]},\
         {\"name\":\"lamp\",\"responders\":2,\"here\":2,\"nodes\":[]}]}"
    );
    // A session that ends takes its registrations with it.
    h.session_ended(t(0), C, true);
    drain(&mut h);
    request(&mut h, t(0), A, 5, "sys.services", 0);
    let out = drain(&mut h);
    assert!(out.iter().any(|(_, f)| matches!(&f.body,
        FrameBody::Response(r) if r.id == 5 && r.payload == "{\"services\":[{\"name\":\"lamp\",\"responders\":1,\"here\":1,\"nodes\":[]}]}")));
}

#[test]
fn requests_are_routed_round_robin_and_answered_under_the_requesters_id() {
    let mut h = hub();
    register(&mut h, B, 1, "lamp");
    register(&mut h, C, 2, "lamp");
    register(&mut h, C, 3, "sys.lamp");
    let out = drain(&mut h);
    assert_eq!(status_of(&out, C, 3), Some(Status::FORBIDDEN));
    request(&mut h, t(0), A, 100, "lamp", 0);
    request(&mut h, t(0), A, 101, "lamp", 0);
    let out = drain(&mut h);
    let (to_b, to_c) = (routed_to(&out, B), routed_to(&out, C));
    assert_eq!((to_b.len(), to_c.len()), (1, 1), "{out:?}");
    h.feed(
        t(1),
        C,
        Frame::new(Response {
            id: to_c[0],
            status: Status::OK,
            payload: Bytes::from_static(b"from c"),
        }),
    );
    let out = drain(&mut h);
    assert_eq!(out.len(), 1);
    assert!(
        matches!(&out[0], (A, f) if matches!(&f.body, FrameBody::Response(r) if r.id == 101 && r.payload == "from c"))
    );
    assert_eq!(h.services.pending(), 1);
}

#[test]
fn a_routed_request_times_out_at_its_deadline_and_a_late_response_is_dropped() {
    let mut h = hub();
    register(&mut h, B, 1, "slow");
    drain(&mut h);
    request(&mut h, t(0), A, 7, "slow", 250);
    let routed = routed_to(&drain(&mut h), B)[0];
    assert_eq!(h.poll_timeout(), Some(t(250)));
    h.handle_timeout(t(249));
    assert!(drain(&mut h).is_empty(), "nothing before the deadline");
    h.handle_timeout(t(250));
    let out = drain(&mut h);
    assert_eq!(status_of(&out, A, 7), Some(Status::TIMEOUT));
    h.feed(
        t(300),
        B,
        Frame::new(Response {
            id: routed,
            status: Status::OK,
            payload: Bytes::new(),
        }),
    );
    assert!(drain(&mut h).is_empty(), "the late response goes nowhere");
    assert_eq!(h.stats().request_timeouts, 1);
}

#[test]
fn no_responder_at_once_and_responder_gone_when_it_ends() {
    let mut h = hub();
    request(&mut h, t(0), A, 1, "nobody", 0);
    assert_eq!(status_of(&drain(&mut h), A, 1), Some(Status::NO_RESPONDER));
    register(&mut h, B, 2, "svc");
    request(&mut h, t(0), A, 3, "svc", 0);
    drain(&mut h);
    h.session_ended(t(5), B, true);
    assert_eq!(
        status_of(&drain(&mut h), A, 3),
        Some(Status::RESPONDER_GONE)
    );
    assert_eq!(h.poll_timeout(), None, "its deadline is cancelled");
    request(&mut h, t(6), A, 4, "svc", 0);
    assert_eq!(status_of(&drain(&mut h), A, 4), Some(Status::NO_RESPONDER));
}

fn push(h: &mut Hub, now: Instant, c: ClientId, id: u32, payload: &'static [u8]) {
    h.feed(
        now,
        c,
        Frame::new(QueuePush {
            id,
            queue: Text::from("jobs"),
            payload: Bytes::from_static(payload),
        }),
    );
}

fn fetch(h: &mut Hub, now: Instant, c: ClientId, id: u32, max: u16, wait_ms: u32) {
    fetch_from(h, now, c, (id, "jobs"), max, wait_ms);
}

/// A fetch of operation `id` from `queue`.
fn fetch_from(
    h: &mut Hub,
    now: Instant,
    c: ClientId,
    (id, queue): (u32, &str),
    max: u16,
    wait_ms: u32,
) {
    h.feed(
        now,
        c,
        Frame::new(QueueFetch {
            id,
            max,
            wait_ms,
            queue: Text::from(queue),
        }),
    );
}

/// Deliveries to `to`: (fetch id, delivery id, payload, redelivered).
fn deliveries(out: &[(ClientId, Frame)], to: ClientId) -> Vec<(u32, u64, Bytes, bool)> {
    out.iter()
        .filter_map(|(c, f)| match &f.body {
            FrameBody::QueueDelivery(d) if *c == to => {
                Some((d.id, d.delivery_id, d.payload.clone(), d.redelivered))
            }
            _ => None,
        })
        .collect()
}

fn ack(h: &mut Hub, c: ClientId, id: u32, delivery_id: u64) {
    h.feed(
        t(0),
        c,
        Frame::new(QueueAck {
            id,
            delivery_id,
            queue: Text::from("jobs"),
        }),
    );
}

#[test]
fn short_poll_delivers_what_is_there_then_the_response() {
    let mut h = hub();
    for (i, p) in [b"1", b"2", b"3"].iter().enumerate() {
        push(&mut h, t(0), A, i as u32 + 1, *p);
    }
    fetch(&mut h, t(0), B, 9, 2, 0);
    let out = drain(&mut h);
    let d = deliveries(&out, B);
    assert_eq!(
        d.iter().map(|x| x.2.clone()).collect::<Vec<_>>(),
        vec![Bytes::from_static(b"1"), Bytes::from_static(b"2")]
    );
    let last = out.last().unwrap();
    assert!(matches!(&last.1.body, FrameBody::Response(r) if r.id == 9 && r.status == Status::OK));
    fetch(&mut h, t(0), C, 10, 5, 0);
    fetch(&mut h, t(0), C, 11, 5, 0);
    let out = drain(&mut h);
    assert_eq!(deliveries(&out, C).len(), 1);
    assert_eq!(
        status_of(&out, C, 11),
        Some(Status::OK),
        "an empty short poll"
    );
    ack(&mut h, B, 20, d[0].1);
    ack(&mut h, B, 21, d[0].1);
    ack(&mut h, C, 22, d[1].1);
    let out = drain(&mut h);
    assert_eq!(status_of(&out, B, 20), Some(Status::OK));
    assert_eq!(status_of(&out, B, 21), Some(Status::NOT_FOUND));
    assert_eq!(
        status_of(&out, C, 22),
        Some(Status::OK),
        "any session may acknowledge a delivery by its id"
    );
    ack(&mut h, C, 23, d[1].1);
    assert_eq!(status_of(&drain(&mut h), C, 23), Some(Status::NOT_FOUND));
}

#[test]
fn long_poll_returns_when_a_message_arrives_or_empty_at_its_wait() {
    let mut h = hub();
    fetch(&mut h, t(0), B, 1, 1, 1000);
    assert!(drain(&mut h).is_empty(), "held");
    push(&mut h, t(400), A, 2, b"job");
    let out = drain(&mut h);
    assert_eq!(deliveries(&out, B).len(), 1);
    assert_eq!(status_of(&out, B, 1), Some(Status::OK));
    assert_eq!(status_of(&out, A, 2), Some(Status::OK));
    // The visibility timer remains; the wait timer is gone.
    assert_eq!(
        h.poll_timeout(),
        Some(t(400) + HubConfig::default().visibility_timeout)
    );
    fetch(&mut h, t(500), C, 3, 1, 1000);
    h.handle_timeout(t(1499));
    assert!(drain(&mut h).is_empty());
    h.handle_timeout(t(1500));
    let out = drain(&mut h);
    assert!(deliveries(&out, C).is_empty());
    assert_eq!(status_of(&out, C, 3), Some(Status::OK));
}

#[test]
fn unacked_messages_come_back_after_the_visibility_timeout_and_when_the_consumer_ends() {
    let config = HubConfig {
        visibility_timeout: Duration::from_secs(2),
        ..HubConfig::default()
    };
    let mut h = hub_with(config);
    push(&mut h, t(0), A, 0, b"a");
    push(&mut h, t(0), A, 0, b"b");
    fetch(&mut h, t(0), B, 1, 1, 0);
    fetch(&mut h, t(0), C, 2, 1, 0);
    drain(&mut h);
    // C waits for more; B dies holding "a", which goes to C marked redelivered.
    fetch(&mut h, t(10), C, 3, 1, 5000);
    h.session_ended(t(20), B, false);
    let out = drain(&mut h);
    let d = deliveries(&out, C);
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].0, &d[0].2[..], d[0].3), (3, &b"a"[..], true));
    // C acknowledges neither; at the visibility timeout both are ready again.
    h.handle_timeout(t(2020));
    fetch(&mut h, t(2030), A, 4, 10, 0);
    let mut got: Vec<_> = deliveries(&drain(&mut h), A)
        .into_iter()
        .map(|d| (d.2, d.3))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (Bytes::from_static(b"a"), true),
            (Bytes::from_static(b"b"), true)
        ]
    );
}

#[test]
fn a_message_delivered_max_deliveries_times_moves_to_the_dead_letter_queue() {
    let config = HubConfig {
        visibility_timeout: Duration::from_secs(2),
        max_deliveries: 2,
        ..HubConfig::default()
    };
    let mut h = hub_with(config);
    push(&mut h, t(0), A, 0, b"poison");
    // Delivered once, and it times out: back in the queue.
    fetch(&mut h, t(0), B, 1, 1, 0);
    let id = deliveries(&drain(&mut h), B)[0].1;
    h.handle_timeout(t(2010));
    // Delivered a second time, and its consumer dies: delivered twice, it moves.
    fetch(&mut h, t(2020), B, 2, 1, 0);
    assert_eq!(deliveries(&drain(&mut h), B).len(), 1);
    h.session_ended(t(2030), B, false);
    fetch(&mut h, t(2040), A, 3, 10, 0);
    assert!(
        deliveries(&drain(&mut h), A).is_empty(),
        "not in jobs any more"
    );
    let dead = Text::from("jobs.dead");
    fetch_from(&mut h, t(2050), A, (4, "jobs.dead"), 10, 0);
    let got = deliveries(&drain(&mut h), A);
    assert_eq!(got, vec![(4, id, Bytes::from_static(b"poison"), true)]);
    // An ack under the old name finds nothing; under the dead queue's it removes it.
    ack(&mut h, A, 5, id);
    assert_eq!(status_of(&drain(&mut h), A, 5), Some(Status::NOT_FOUND));
    h.feed(
        t(2060),
        A,
        Frame::new(QueueAck {
            id: 6,
            delivery_id: id,
            queue: dead,
        }),
    );
    assert_eq!(status_of(&drain(&mut h), A, 6), Some(Status::OK));
    request(&mut h, t(2070), A, 7, "sys.stats", 0);
    let stats = drain(&mut h)
        .into_iter()
        .find_map(|(_, f)| match f.body {
            FrameBody::Response(r) if r.id == 7 => Some(r.payload),
            _ => None,
        })
        .expect("stats");
    assert!(
        String::from_utf8_lossy(&stats).contains("\"dead_lettered\":1"),
        "{stats:?}"
    );
}

fn nack_or_extend(
    h: &mut Hub,
    now: Instant,
    c: ClientId,
    id: u32,
    delivery_id: u64,
    nack: Option<u32>,
    extend: Option<u32>,
) {
    let queue = Text::from("jobs");
    let frame = match (nack, extend) {
        (Some(delay_ms), _) => Frame::new(framewire_protocol::wire::QueueNack {
            id,
            delay_ms,
            delivery_id,
            queue,
        }),
        (None, timeout) => Frame::new(framewire_protocol::wire::QueueExtend {
            id,
            timeout_ms: timeout.unwrap_or(0),
            delivery_id,
            queue,
        }),
    };
    h.feed(now, c, frame);
}

#[test]
fn a_nack_gives_a_delivery_back_now_or_after_its_delay_and_an_extend_restarts_its_timeout() {
    let config = HubConfig {
        visibility_timeout: Duration::from_secs(2),
        max_deliveries: 3,
        ..HubConfig::default()
    };
    let mut h = hub_with(config);
    push(&mut h, t(0), A, 0, b"job");
    fetch(&mut h, t(0), B, 1, 1, 0);
    let id = deliveries(&drain(&mut h), B)[0].1;
    // At once: the waiting long poll of C gets it, redelivered.
    fetch(&mut h, t(1), C, 2, 1, 10_000);
    nack_or_extend(&mut h, t(5), B, 3, id, Some(0), None);
    let out = drain(&mut h);
    assert_eq!(status_of(&out, B, 3), Some(Status::OK));
    assert_eq!(
        deliveries(&out, C),
        vec![(2, id, Bytes::from_static(b"job"), true)]
    );
    // Extended at 1.5 s by 10 s: the old timeout (2 s after the fetch) passes without a redelivery.
    nack_or_extend(&mut h, t(1500), C, 4, id, None, Some(10_000));
    assert_eq!(status_of(&drain(&mut h), C, 4), Some(Status::OK));
    h.handle_timeout(t(5000));
    fetch(&mut h, t(5001), A, 5, 1, 0);
    assert!(deliveries(&drain(&mut h), A).is_empty());
    // Given back with a 1 s delay: not ready before it, ready after.
    nack_or_extend(&mut h, t(6000), C, 6, id, Some(1000), None);
    drain(&mut h);
    h.handle_timeout(t(6500));
    fetch(&mut h, t(6501), A, 7, 1, 0);
    assert!(
        deliveries(&drain(&mut h), A).is_empty(),
        "not before its delay"
    );
    h.handle_timeout(t(7001));
    fetch(&mut h, t(7002), A, 8, 1, 0);
    assert_eq!(deliveries(&drain(&mut h), A).len(), 1, "the third delivery");
    // Given back after its third delivery: to the dead-letter queue.
    nack_or_extend(&mut h, t(7003), A, 9, id, Some(0), None);
    drain(&mut h);
    fetch(&mut h, t(7004), B, 10, 1, 0);
    assert!(
        deliveries(&drain(&mut h), B).is_empty(),
        "moved to jobs.dead"
    );
    // A delivery that waits for nothing gets NOT_FOUND.
    nack_or_extend(&mut h, t(7005), B, 11, 999, None, Some(0));
    nack_or_extend(&mut h, t(7005), B, 12, 999, Some(0), None);
    let out = drain(&mut h);
    assert_eq!(status_of(&out, B, 11), Some(Status::NOT_FOUND));
    assert_eq!(status_of(&out, B, 12), Some(Status::NOT_FOUND));
}

#[test]
fn a_dead_letter_queue_has_none_of_its_own() {
    let config = HubConfig {
        visibility_timeout: Duration::from_secs(1),
        max_deliveries: 1,
        ..HubConfig::default()
    };
    let mut h = hub_with(config);
    let dead = Text::from("jobs.dead");
    h.feed(
        t(0),
        A,
        Frame::new(QueuePush {
            id: 0,
            queue: dead.clone(),
            payload: Bytes::from_static(b"x"),
        }),
    );
    fetch_from(&mut h, t(0), B, (1, "jobs.dead"), 1, 0);
    assert_eq!(deliveries(&drain(&mut h), B).len(), 1);
    h.handle_timeout(t(1010));
    fetch_from(&mut h, t(1020), B, (2, "jobs.dead"), 1, 0);
    assert_eq!(
        deliveries(&drain(&mut h), B).len(),
        1,
        "it stays where it is"
    );
}

#[test]
fn queue_depth_is_bounded_with_a_clear_status() {
    let mut h = hub_with(HubConfig {
        max_queue_depth: 2,
        ..HubConfig::default()
    });
    push(&mut h, t(0), A, 1, b"1");
    push(&mut h, t(0), A, 2, b"2");
    push(&mut h, t(0), A, 3, b"3");
    fetch(&mut h, t(0), B, 4, 1, 0);
    push(&mut h, t(0), A, 5, b"3");
    let out = drain(&mut h);
    assert_eq!(status_of(&out, A, 3), Some(Status::QUEUE_FULL));
    assert_eq!(
        status_of(&out, A, 5),
        Some(Status::QUEUE_FULL),
        "an unacknowledged message still counts"
    );
    let d = deliveries(&out, B);
    ack(&mut h, B, 6, d[0].1);
    push(&mut h, t(0), A, 7, b"3");
    assert_eq!(status_of(&drain(&mut h), A, 7), Some(Status::OK));
}

#[test]
fn an_idle_queue_is_forgotten() {
    let mut h = hub();
    push(&mut h, t(0), A, 0, b"x");
    fetch(&mut h, t(0), B, 1, 1, 0);
    let d = deliveries(&drain(&mut h), B);
    ack(&mut h, B, 0, d[0].1);
    assert_eq!(h.queues.queues(), 0);
    assert_eq!(h.poll_timeout(), None);
}

#[test]
fn data_is_echoed_on_its_channel() {
    let mut h = hub();
    h.feed(
        t(0),
        B,
        Frame::new(Data {
            payload: Bytes::from_static(b"e"),
        })
        .on_channel(2),
    );
    let out = drain(&mut h);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, B);
    assert_eq!(out[0].1.channel, 2);
}

#[test]
fn refused_operations_are_counted_in_sys_stats() {
    let mut h = hub_with(HubConfig {
        max_queue_depth: 1,
        max_subscriptions_per_session: 1,
        ..HubConfig::default()
    });
    push(&mut h, t(0), A, 1, b"1");
    push(&mut h, t(0), A, 2, b"2");
    push(&mut h, t(0), A, 0, b"3");
    subscribe(&mut h, A, 3, "a");
    subscribe(&mut h, A, 4, "b");
    drain(&mut h);
    request(&mut h, t(0), A, 5, "sys.stats", 0);
    let out = drain(&mut h);
    let FrameBody::Response(r) = &out[0].1.body else {
        panic!("{out:?}")
    };
    let stats = String::from_utf8(r.payload.to_vec()).unwrap();
    assert!(
        stats.contains("\"refused_operations\":{\"queue_full\":2,\"limit_reached\":1}"),
        "{stats}"
    );
}

mod auth;
mod cluster;
mod confirmations;
mod durable;
mod durable_sessions;
mod local_routes;
mod queue_limits;
mod sessions;
