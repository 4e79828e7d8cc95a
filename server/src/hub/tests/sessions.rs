//! Sessions that resume, take over, expire; last wills.

use super::*;
use crate::hub::token;

/// The token the hub gave `client` (admitting it again just to read it would count it twice).
pub(super) fn token_of(h: &Hub, client: ClientId) -> Bytes {
    let key = h.sessions.key_of(client);
    token::issue(&h.info.token_key, client, key)
}

pub(super) fn resume_hello(token: &[u8]) -> Hello {
    hello(HelloOptions::builder().resume_token(token).build().unwrap())
}

pub(super) fn publish_on(
    h: &mut Hub,
    c: ClientId,
    topic: &str,
    payload: &'static [u8],
    kind: ChannelKind,
) {
    h.handle_frame(
        t(0),
        c,
        Frame::new(Publish {
            retain: false,
            id: 0,
            topic: Text::from(topic),
            payload: Bytes::from_static(payload),
        }),
        kind,
    );
}

#[test]
fn a_parked_session_resumes_with_its_subscriptions_and_the_reliable_messages_it_missed() {
    let mut h = hub_with(HubConfig {
        max_parked_messages: 2,
        ..HubConfig::default()
    });
    subscribe(&mut h, B, 1, "dev/#");
    drain(&mut h);
    let token = token_of(&h, B);
    h.session_ended(t(10), B, false);
    for p in [&b"1"[..], b"2", b"3"] {
        publish_on(&mut h, A, "dev/x", p, ChannelKind::ReliableOrdered);
    }
    publish_on(&mut h, A, "dev/x", b"lossy", ChannelKind::Unreliable);
    assert!(drain(&mut h).is_empty(), "nothing goes to a parked session");
    let b2 = ClientId::Udp(21);
    let admission = h.admit(t(0), b2, &resume_hello(&token), LOCAL).unwrap();
    assert!(admission.resumed);
    assert_eq!(admission.missed, 1, "the bound of 2 dropped the oldest");
    let got: Vec<Bytes> = messages_to(&drain(&mut h), b2)
        .into_iter()
        .map(|m| m.1)
        .collect();
    assert_eq!(
        got,
        vec![Bytes::from_static(b"2"), Bytes::from_static(b"3")]
    );
    publish_on(&mut h, A, "dev/y", b"live", ChannelKind::ReliableOrdered);
    assert_eq!(messages_to(&drain(&mut h), b2).len(), 1, "subscribed again");
    assert_eq!(h.poll_timeout(), None, "the expiry timer is cancelled");
}

#[test]
fn a_parked_session_expires_and_a_clean_close_parks_nothing() {
    let mut h = hub();
    subscribe(&mut h, B, 1, "a");
    subscribe(&mut h, C, 2, "a");
    drain(&mut h);
    let (tb, tc) = (token_of(&h, B), token_of(&h, C));
    h.session_ended(t(0), B, false);
    h.session_ended(t(0), C, true);
    let expiry = HubConfig::default().session_expiry;
    assert_eq!(h.poll_timeout(), Some(t(0) + expiry));
    h.handle_timeout(t(0) + expiry);
    assert_eq!(h.pubsub.subscriptions(), 0);
    for (token, id) in [(tb, 40), (tc, 41)] {
        let a = h
            .admit(t(0), ClientId::Tcp(id), &resume_hello(&token), LOCAL)
            .unwrap();
        assert!(!a.resumed, "{id}");
        assert_eq!(a.session_token.len(), token::TOKEN_LEN);
    }
}

#[test]
fn a_token_for_a_live_session_takes_it_over() {
    let mut h = hub();
    subscribe(&mut h, B, 1, "room");
    drain(&mut h);
    let b2 = ClientId::Tcp(99);
    let a = h
        .admit(t(0), b2, &resume_hello(&token_of(&h, B)), LOCAL)
        .unwrap();
    assert!(a.resumed);
    let out = drain(&mut h);
    assert!(
        matches!(&out[..], [(to, f)] if *to == B && matches!(&f.body, FrameBody::Close(c) if c.reason == framewire_protocol::wire::Reason::SESSION_TAKEN_OVER)),
        "{out:?}"
    );
    h.session_ended(t(1), B, false);
    publish_on(&mut h, A, "room", b"hi", ChannelKind::ReliableOrdered);
    let out = drain(&mut h);
    assert_eq!(messages_to(&out, b2).len(), 1);
    assert!(messages_to(&out, B).is_empty());
    let forged = h
        .admit(
            t(0),
            ClientId::Tcp(100),
            &resume_hello(b"not a token"),
            LOCAL,
        )
        .unwrap();
    assert!(!forged.resumed);
}

#[test]
fn a_last_will_is_published_when_a_session_vanishes_and_not_after_a_clean_close() {
    let will = framewire_protocol::wire::LastWill {
        retain: true,
        channel: 0,
        topic: Text::from("dev/9/online"),
        payload: Bytes::from_static(b"false"),
    };
    let mut h = hub();
    subscribe(&mut h, A, 1, "dev/+/online");
    drain(&mut h);
    let options = HelloOptions::builder().last_will(&will).build().unwrap();
    let (d1, d2) = (ClientId::Udp(501), ClientId::Udp(502));
    let _ = h.admit(t(0), d1, &hello(options.clone()), LOCAL).unwrap();
    let _ = h.admit(t(0), d2, &hello(options), LOCAL).unwrap();
    h.session_ended(t(1), d2, true);
    assert!(drain(&mut h).is_empty(), "a clean close publishes no will");
    h.session_ended(t(1), d1, false);
    let got = messages_to(&drain(&mut h), A);
    assert_eq!(
        got,
        vec![(
            "dev/9/online".to_owned(),
            Bytes::from_static(b"false"),
            false,
            0
        )]
    );
    subscribe(&mut h, C, 2, "dev/9/online");
    let retained = messages_to(&drain(&mut h), C);
    assert!(retained[0].2, "the will was retained");
}

#[test]
fn a_delivery_id_names_the_message_across_redeliveries() {
    let mut h = hub();
    push(&mut h, t(0), A, 0, b"x");
    push(&mut h, t(0), A, 0, b"y");
    fetch(&mut h, t(0), B, 1, 2, 0);
    let first = deliveries(&drain(&mut h), B);
    h.session_ended(t(1), B, false);
    // "x" is acknowledged (by id, from another session) before it is delivered again.
    ack(&mut h, A, 2, first[0].1);
    assert_eq!(status_of(&drain(&mut h), A, 2), Some(Status::OK));
    fetch(&mut h, t(2), C, 3, 5, 0);
    let again = deliveries(&drain(&mut h), C);
    assert_eq!(again.len(), 1, "only y is left");
    assert_eq!(
        (again[0].1, &again[0].2[..], again[0].3),
        (first[1].1, &b"y"[..], true)
    );
}
