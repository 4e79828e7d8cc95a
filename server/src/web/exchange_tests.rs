//! The exchange against a real hub, on a virtual clock: no sockets, every step in order.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::session::Instant;
use framewire_protocol::wire::{ChannelKind, Frame, Hello, HelloOptions, Publish, QueuePush, Text};

use super::*;
use crate::hub::{HTTP_TOKEN_BIT, HubConfig, SSE_TOKEN_BIT, ServerInfo, WEB_TOKEN_BIT};
use crate::web::plan::{Call, Cursor, Plan};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// A TCP client that publishes.
const PUBLISHER: ClientId = ClientId::Tcp(10);

fn t(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

fn hub() -> Hub {
    let mut h = Hub::new(HubConfig::default(), ServerInfo::default(), Arc::default());
    h.admit(t(0), PUBLISHER, &Hello::new(0, HelloOptions::new()), LOCAL)
        .unwrap();
    h
}

fn publish(h: &mut Hub, now: Instant, topic: &str, payload: &str) {
    let frame = Frame::new(Publish {
        retain: false,
        id: 0,
        topic: Text::from(topic),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
    });
    h.handle_frame(now, PUBLISHER, frame, ChannelKind::ReliableOrdered);
}

fn stream(sse: bool, after: Option<Cursor>, wait_ms: u32) -> Call {
    Call {
        plan: Plan::Stream {
            sse,
            filters: vec!["t/#".into()],
            unsubscribe: Vec::new(),
            after,
            wait_ms,
            max: 100,
        },
        token: None,
    }
}

fn start(h: &mut Hub, now: Instant, n: usize, call: &Call) -> Exchange {
    let bit = if matches!(call.plan, Plan::Stream { sse: true, .. }) {
        SSE_TOKEN_BIT
    } else {
        HTTP_TOKEN_BIT
    };
    let client = ClientId::Tcp(WEB_TOKEN_BIT | bit | n);
    Exchange::start(now, h, client, call, LOCAL, (true, false)).unwrap()
}

/// Hands the exchange what the hub has for it, settles it, and returns what it wrote.
fn pump(h: &mut Hub, now: Instant, ex: &mut Exchange) -> (Progress, String) {
    while let Some(o) = h.poll_output() {
        if o.to == ex.client() {
            ex.deliver(&o.delivery);
        }
    }
    let progress = ex.settle(now);
    if let Some(ack) = ex.take_confirmation() {
        h.handle_frame(now, ex.client(), ack, ChannelKind::ReliableOrdered);
    }
    (progress, String::from_utf8(ex.take_output()).unwrap())
}

/// The event ids and payloads of an event stream's Messages.
fn events(text: &str) -> Vec<(Option<String>, String)> {
    text.split("\n\n")
        .filter(|e| e.contains("\"topic\""))
        .map(|e| {
            let id = e
                .lines()
                .find_map(|l| l.strip_prefix("id: "))
                .map(str::to_string);
            let payload = e.split("\"payload\":\"").nth(1).unwrap();
            (id, payload[..payload.find('"').unwrap()].to_string())
        })
        .collect()
}

#[test]
fn an_event_stream_resumes_from_its_last_event_id_without_loss_or_repeat() {
    let mut h = hub();
    let mut sse = start(&mut h, t(0), 1, &stream(true, None, 0));
    let (progress, head) = pump(&mut h, t(0), &mut sse);
    assert_eq!(progress, Progress::Running);
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"),
        "{head}"
    );
    assert!(head.contains("event: session\n"), "{head}");
    for m in ["a", "b", "c"] {
        publish(&mut h, t(1), "t/x", m);
    }
    let (_, text) = pump(&mut h, t(1), &mut sse);
    let got = events(&text);
    assert_eq!(
        got.iter().map(|e| e.1.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert!(got.iter().all(|e| e.0.is_some()), "every Message has an id");
    // The browser had "a" only when the connection dropped; two more are published meanwhile.
    let first_id = got[0].0.clone().unwrap();
    h.session_ended(t(2), sse.client(), !sse.parks());
    publish(&mut h, t(3), "t/x", "d");
    publish(&mut h, t(3), "t/x", "e");
    let after = Cursor::parse(&first_id).unwrap();
    let mut again = start(&mut h, t(4), 2, &stream(true, Some(after), 0));
    let (_, text) = pump(&mut h, t(4), &mut again);
    assert!(text.contains("\"resumed\":true,\"missed\":0"), "{text}");
    let got: Vec<String> = events(&text).into_iter().map(|e| e.1).collect();
    assert_eq!(got, ["b", "c", "d", "e"]);
}

#[test]
fn an_idle_event_stream_sends_heartbeats() {
    let mut h = hub();
    let mut sse = start(&mut h, t(0), 1, &stream(true, None, 0));
    pump(&mut h, t(0), &mut sse);
    let due = sse.deadline().unwrap();
    assert_eq!(due, t(0) + SSE_HEARTBEAT);
    sse.on_timeout(due);
    let (_, text) = pump(&mut h, due, &mut sse);
    assert_eq!(text, ": keepalive\n\n");
    assert_eq!(sse.deadline(), Some(due + SSE_HEARTBEAT));
}

#[test]
fn an_event_stream_leaves_only_its_replay_window_unconfirmed() {
    let mut h = hub();
    let mut sse = start(&mut h, t(0), 1, &stream(true, None, 0));
    pump(&mut h, t(0), &mut sse);
    for i in 0..300 {
        publish(&mut h, t(1), "t/x", &i.to_string());
        pump(&mut h, t(1), &mut sse);
    }
    assert_eq!(
        h.sys_view(t(1)).unconfirmed_messages,
        SSE_REPLAY_WINDOW as usize
    );
}

#[test]
fn a_poll_waits_for_a_message_or_its_deadline_and_its_cursor_goes_on() {
    let mut h = hub();
    let mut poll = start(&mut h, t(0), 1, &stream(false, None, 1_000));
    assert_eq!(pump(&mut h, t(0), &mut poll).0, Progress::Running);
    let (progress, text) = pump(&mut h, t(1_000), &mut poll);
    assert_eq!(progress, Progress::Answered);
    assert!(text.contains("\"messages\":[]"), "{text}");
    let cursor = text
        .split("\"cursor\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let cursor = Cursor::parse(cursor).unwrap();
    h.session_ended(t(1_000), poll.client(), !poll.parks());
    // Published between polls: kept for the parked session.
    publish(&mut h, t(1_100), "t/x", "between");
    let mut next = start(&mut h, t(1_200), 2, &stream(false, Some(cursor), 30_000));
    let (progress, text) = pump(&mut h, t(1_200), &mut next);
    assert_eq!(
        progress,
        Progress::Answered,
        "answered at once: a message waited"
    );
    assert!(text.contains("\"resumed\":true"), "{text}");
    assert!(text.contains("\"payload\":\"between\""), "{text}");
    // A long poll is answered by the first Message, well before its wait.
    let cursor = Cursor::parse(&last_cursor(&text)).unwrap();
    h.session_ended(t(1_200), next.client(), !next.parks());
    let mut held = start(&mut h, t(1_300), 3, &stream(false, Some(cursor), 30_000));
    assert_eq!(pump(&mut h, t(1_300), &mut held).0, Progress::Running);
    publish(&mut h, t(1_400), "t/y", "now");
    let (progress, text) = pump(&mut h, t(1_400), &mut held);
    assert_eq!(progress, Progress::Answered);
    assert!(
        text.contains("\"payload\":\"now\"") && !text.contains("between"),
        "{text}"
    );
}

fn last_cursor(text: &str) -> String {
    text.split("\"cursor\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_delivery_fetched_over_http_waits_for_its_ack_not_for_the_request() {
    let mut h = hub();
    let push = Frame::new(QueuePush {
        id: 0,
        queue: Text::from("jobs"),
        payload: Bytes::from_static(b"job"),
    });
    h.handle_frame(t(0), PUBLISHER, push, ChannelKind::ReliableOrdered);
    let fetch = |wait_ms| Call {
        plan: Plan::Fetch {
            queue: "jobs".into(),
            wait_ms,
            max: 1,
        },
        token: None,
    };
    let mut first = start(&mut h, t(1), 1, &fetch(0));
    let (progress, text) = pump(&mut h, t(1), &mut first);
    assert_eq!(progress, Progress::Answered);
    assert!(text.contains("\"delivery\":\"1\""), "{text}");
    h.session_ended(t(1), first.client(), !first.parks());
    // The request is over but the delivery is still out: a second fetch finds nothing.
    let mut second = start(&mut h, t(2), 2, &fetch(0));
    let (_, text) = pump(&mut h, t(2), &mut second);
    assert!(text.contains("\"deliveries\":[]"), "{text}");
    h.session_ended(t(2), second.client(), true);
    let ack = Call {
        plan: Plan::Ack {
            queue: "jobs".into(),
            delivery: 1,
        },
        token: None,
    };
    let mut acked = start(&mut h, t(3), 3, &ack);
    let (_, text) = pump(&mut h, t(3), &mut acked);
    assert!(text.contains("{\"status\":\"OK\",\"code\":0}"), "{text}");
    let mut again = start(&mut h, t(4), 4, &ack);
    let (_, text) = pump(&mut h, t(4), &mut again);
    assert!(text.starts_with("HTTP/1.1 404"), "acked once only: {text}");
}

#[test]
fn a_poll_whose_answer_was_lost_is_asked_again_with_the_older_cursor() {
    let mut h = hub();
    let mut first = start(&mut h, t(0), 1, &stream(false, None, 0));
    let (_, text) = pump(&mut h, t(0), &mut first);
    let cursor = Cursor::parse(&last_cursor(&text)).unwrap();
    h.session_ended(t(0), first.client(), !first.parks());
    // This poll resumes the session and takes a Message, but its answer never reaches the
    // client (the connection drops).
    let mut lost = start(
        &mut h,
        t(1),
        2,
        &stream(false, Some(cursor.clone()), 30_000),
    );
    publish(&mut h, t(2), "t/x", "taken by the lost poll");
    assert_eq!(pump(&mut h, t(2), &mut lost).0, Progress::Answered);
    h.session_ended(t(2), lost.client(), !lost.parks());
    // The client asks again from where it was: the same session, and the Message again.
    let mut again = start(&mut h, t(3), 3, &stream(false, Some(cursor), 0));
    let (_, text) = pump(&mut h, t(3), &mut again);
    assert!(text.contains("\"resumed\":true"), "{text}");
    assert!(text.contains("taken by the lost poll"), "{text}");
}

#[test]
fn a_resumed_stream_gains_the_filters_it_lacked() {
    let mut h = hub();
    let mut again = resume_stream(&mut h, &["t/#", "u/#"], &[]);
    pump(&mut h, t(1), &mut again);
    assert_eq!(h.subscriptions_of(again.client()).len(), 2);
    publish(&mut h, t(2), "u/y", "new filter");
    let (_, text) = pump(&mut h, t(2), &mut again);
    assert!(text.contains("new filter"), "{text}");
}

#[test]
fn a_resumed_stream_drops_the_filters_it_is_told_to() {
    let mut h = hub();
    // The page unsubscribed from t/# and subscribed to u/#; a filter it never held is no error.
    let mut again = resume_stream(&mut h, &["u/#"], &["t/#", "never/held"]);
    let (_, text) = pump(&mut h, t(1), &mut again);
    assert!(text.contains("\"resumed\":true"), "{text}");
    let held: Vec<String> = h
        .subscriptions_of(again.client())
        .iter()
        .map(|f| f.as_str().to_string())
        .collect();
    assert_eq!(held, ["u/#"]);
    publish(&mut h, t(2), "t/x", "dropped filter");
    publish(&mut h, t(2), "u/y", "kept filter");
    let (_, text) = pump(&mut h, t(2), &mut again);
    assert!(text.contains("kept filter"), "{text}");
    assert!(!text.contains("dropped filter"), "{text}");
}

/// An event stream on `t/#` that ends, then another resuming it from its cursor with these
/// `filters` and `unsubscribe=` filters (started at t(1)).
fn resume_stream(h: &mut Hub, filters: &[&str], unsubscribe: &[&str]) -> Exchange {
    let mut first = start(h, t(0), 1, &stream(true, None, 0));
    let (_, text) = pump(h, t(0), &mut first);
    let cursor = Cursor::parse(&last_id(&text)).unwrap();
    h.session_ended(t(0), first.client(), !first.parks());
    let owned = |fs: &[&str]| fs.iter().map(|f| (*f).to_string()).collect();
    let call = Call {
        plan: Plan::Stream {
            sse: true,
            filters: owned(filters),
            unsubscribe: owned(unsubscribe),
            after: Some(cursor),
            wait_ms: 0,
            max: 100,
        },
        token: None,
    };
    start(h, t(1), 2, &call)
}

fn last_id(text: &str) -> String {
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .to_string()
}
