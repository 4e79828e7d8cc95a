//! Sessions whose clients confirm what they receive (Hello option `CONFIRMS`): reliable Messages
//! numbered, kept until an Ack covers them, and sent again with their numbers after a break.

use super::sessions::{publish_on, token_of};
use super::*;

const D: ClientId = ClientId::Tcp(40);

fn confirming(layout: &[ChannelKind]) -> HelloOptions {
    HelloOptions::builder()
        .confirms()
        .channels(layout)
        .build()
        .unwrap()
}

fn resume_confirming(token: &[u8]) -> Hello {
    hello(
        HelloOptions::builder()
            .confirms()
            .resume_token(token)
            .build()
            .unwrap(),
    )
}

/// The (number, payload) of each Message to `to`, and the `through` of each Ack to it, in order.
fn numbered_to(out: &[(ClientId, Frame)], to: ClientId) -> Vec<(Option<u32>, String)> {
    out.iter()
        .filter(|(c, _)| *c == to)
        .filter_map(|(_, f)| match &f.body {
            FrameBody::Message(m) => {
                Some((m.number, String::from_utf8_lossy(&m.payload).into_owned()))
            }
            FrameBody::Ack(a) => Some((Some(a.through), "ack".to_owned())),
            _ => None,
        })
        .collect()
}

fn ack(h: &mut Hub, c: ClientId, through: u32) {
    h.feed(
        t(0),
        c,
        Frame::new(framewire_protocol::wire::Ack { through }),
    );
}

fn n(number: u32, payload: &str) -> (Option<u32>, String) {
    (Some(number), payload.to_owned())
}

#[test]
fn a_confirming_session_gets_numbered_reliable_messages_and_others_the_shared_encoding() {
    let mut h = hub();
    h.admit(
        t(0),
        D,
        &hello(confirming(&[ChannelKind::Unreliable])),
        LOCAL,
    )
    .unwrap();
    subscribe(&mut h, D, 1, "dev/#");
    subscribe(&mut h, B, 2, "dev/#");
    drain(&mut h);
    publish_on(&mut h, A, "dev/x", b"a", ChannelKind::ReliableOrdered);
    // Unreliable for the publisher: not numbered.
    publish_on(&mut h, A, "dev/x", b"b", ChannelKind::Unreliable);
    let out = drain(&mut h);
    assert_eq!(numbered_to(&out, D), [n(1, "a"), (None, "b".to_owned())]);
    assert_eq!(
        numbered_to(&out, B),
        [(None, "a".to_owned()), (None, "b".to_owned())]
    );
    // Channel 1 is unreliable in D's layout: a Message on it is not numbered even when the
    // publisher's channel was reliable (a cumulative Ack could never cover one that is lost).
    h.feed(
        t(0),
        A,
        Frame::new(Publish {
            retain: false,
            id: 0,
            topic: Text::from("dev/x"),
            payload: Bytes::from_static(b"c"),
        })
        .on_channel(1),
    );
    assert_eq!(numbered_to(&drain(&mut h), D), [(None, "c".to_owned())]);
    assert_eq!(h.pubsub.unconfirmed(), 1);
    ack(&mut h, D, 1);
    assert_eq!(h.pubsub.unconfirmed(), 0);
}

/// Over TCP, what was written to a socket that then dropped; the client confirmed part of it.
#[test]
fn a_resumed_session_gets_again_every_message_it_did_not_confirm() {
    let mut h = hub();
    h.admit(t(0), D, &hello(confirming(&[])), LOCAL).unwrap();
    subscribe(&mut h, D, 1, "dev/#");
    for p in [&b"1"[..], b"2", b"3", b"4"] {
        publish_on(&mut h, A, "dev/x", p, ChannelKind::ReliableOrdered);
    }
    drain(&mut h);
    ack(&mut h, D, 2);
    let token = token_of(&h, D);
    h.session_ended(t(10), D, false);
    publish_on(&mut h, A, "dev/x", b"5", ChannelKind::ReliableOrdered);
    let d2 = ClientId::Tcp(41);
    let admission = h
        .admit(t(20), d2, &resume_confirming(&token), LOCAL)
        .unwrap();
    assert!(admission.resumed);
    assert_eq!(admission.missed, 0);
    // First an Ack settling what the client confirmed, then 3 and 4 again, then 5.
    assert_eq!(
        numbered_to(&drain(&mut h), d2),
        [n(2, "ack"), n(3, "3"), n(4, "4"), n(5, "5")]
    );
    publish_on(&mut h, A, "dev/x", b"6", ChannelKind::ReliableOrdered);
    assert_eq!(numbered_to(&drain(&mut h), d2), [n(6, "6")]);
}

/// Over UDP, a client that went silent and came back on a new path before the server noticed:
/// what the old path had in flight comes on the new one.
#[test]
fn a_takeover_sends_what_the_old_connection_had_not_had_confirmed() {
    let mut h = hub();
    let d = ClientId::Udp(50);
    h.admit(t(0), d, &hello(confirming(&[])), LOCAL).unwrap();
    subscribe(&mut h, d, 1, "dev/#");
    publish_on(
        &mut h,
        A,
        "dev/x",
        b"in flight",
        ChannelKind::ReliableOrdered,
    );
    drain(&mut h);
    let d2 = ClientId::Udp(51);
    let admission = h
        .admit(t(5), d2, &resume_confirming(&token_of(&h, d)), LOCAL)
        .unwrap();
    assert!(admission.resumed);
    let out = drain(&mut h);
    assert_eq!(numbered_to(&out, d2), [n(0, "ack"), n(1, "in flight")]);
    assert!(
        out.iter()
            .any(|(c, f)| *c == d && f.kind() == framewire_protocol::wire::FrameKind::Close)
    );
}

#[test]
fn kept_messages_are_bounded_and_what_the_bound_pushed_out_is_missed() {
    let mut h = hub_with(HubConfig {
        max_parked_messages: 2,
        ..HubConfig::default()
    });
    h.admit(t(0), D, &hello(confirming(&[])), LOCAL).unwrap();
    subscribe(&mut h, D, 1, "dev/#");
    let token = token_of(&h, D);
    h.session_ended(t(0), D, false);
    for p in [&b"1"[..], b"2", b"3"] {
        publish_on(&mut h, A, "dev/x", p, ChannelKind::ReliableOrdered);
    }
    let d2 = ClientId::Tcp(41);
    let admission = h
        .admit(t(20), d2, &resume_confirming(&token), LOCAL)
        .unwrap();
    assert_eq!(admission.missed, 1);
    assert_eq!(
        numbered_to(&drain(&mut h), d2),
        [n(1, "ack"), n(2, "2"), n(3, "3")]
    );
}

#[test]
fn a_resume_by_a_client_that_does_not_confirm_gets_the_kept_messages_unnumbered() {
    let mut h = hub();
    h.admit(t(0), D, &hello(confirming(&[])), LOCAL).unwrap();
    subscribe(&mut h, D, 1, "dev/#");
    publish_on(&mut h, A, "dev/x", b"1", ChannelKind::ReliableOrdered);
    drain(&mut h);
    let token = token_of(&h, D);
    h.session_ended(t(0), D, false);
    let d2 = ClientId::Tcp(41);
    let plain = hello(
        HelloOptions::builder()
            .resume_token(&token)
            .build()
            .unwrap(),
    );
    assert!(h.admit(t(20), d2, &plain, LOCAL).unwrap().resumed);
    assert_eq!(numbered_to(&drain(&mut h), d2), [(None, "1".to_owned())]);
    publish_on(&mut h, A, "dev/x", b"2", ChannelKind::ReliableOrdered);
    assert_eq!(numbered_to(&drain(&mut h), d2), [(None, "2".to_owned())]);
    assert_eq!(h.pubsub.unconfirmed(), 0);
}

#[test]
fn a_clean_end_or_an_expiry_forgets_the_kept_messages() {
    let mut h = hub();
    h.admit(t(0), D, &hello(confirming(&[])), LOCAL).unwrap();
    subscribe(&mut h, D, 1, "dev/#");
    publish_on(&mut h, A, "dev/x", b"1", ChannelKind::ReliableOrdered);
    assert_eq!(h.pubsub.unconfirmed(), 1);
    h.session_ended(t(0), D, false);
    assert_eq!(h.pubsub.unconfirmed(), 1, "kept while parked");
    h.handle_timeout(t(0) + HubConfig::default().session_expiry);
    assert_eq!(h.pubsub.unconfirmed(), 0);
    let d2 = ClientId::Tcp(41);
    h.admit(t(0), d2, &hello(confirming(&[])), LOCAL).unwrap();
    subscribe(&mut h, d2, 1, "dev/#");
    publish_on(&mut h, A, "dev/x", b"1", ChannelKind::ReliableOrdered);
    h.session_ended(t(0), d2, true);
    assert_eq!(h.pubsub.unconfirmed(), 0);
}
