//! What the hub tells a worker about delivering a Publish itself (`local_route`): the live
//! subscribers when that is all a Publish touches, nothing otherwise, and an epoch that moves with
//! every change that could change the answer.

use super::*;

const D: ClientId = ClientId::Tcp(40);

fn route(h: &Hub, from: ClientId, topic: &str, kind: ChannelKind) -> LocalRoute {
    h.local_route(from, &Text::from(topic), 3, kind)
}

fn sorted(mut to: Vec<ClientId>) -> Vec<ClientId> {
    to.sort_by_key(|c| format!("{c:?}"));
    to
}

#[test]
fn a_topic_of_live_subscribers_routes_to_them_and_one_without_any_to_nobody() {
    let mut h = hub();
    subscribe(&mut h, A, 1, "room/+");
    subscribe(&mut h, C, 1, "room/#");
    let r = route(&h, B, "room/1", ChannelKind::ReliableOrdered);
    assert!(r.allowed);
    assert_eq!(r.to.map(sorted), Some(vec![A, C]));
    let none = route(&h, B, "hall", ChannelKind::ReliableOrdered);
    assert_eq!(none.to, Some(Vec::new()));
    // Names the hub refuses go to the hub, which says why.
    assert_eq!(route(&h, B, "room/+", ChannelKind::Unreliable).to, None);
    assert_eq!(route(&h, B, "", ChannelKind::Unreliable).to, None);
}

#[test]
fn the_epoch_moves_with_every_change_of_who_holds_what() {
    let mut h = hub();
    let epoch = |h: &Hub| route(h, B, "room/1", ChannelKind::ReliableOrdered).epoch;
    let mut seen = vec![epoch(&h)];
    let mut moved = |h: &Hub, what: &str| {
        let now = epoch(h);
        assert!(!seen.contains(&now), "{what} left the epoch at {now}");
        seen.push(now);
    };
    subscribe(&mut h, A, 1, "room/+");
    moved(&h, "a subscription");
    // Read back through the workers' shared handle, without the hub.
    assert_eq!(h.route_epoch().get(), epoch(&h));
    h.feed(
        t(0),
        A,
        Frame::new(Unsubscribe {
            id: 2,
            filter: Text::from("room/+"),
        }),
    );
    moved(&h, "an unsubscription");
    subscribe(&mut h, A, 3, "room/+");
    h.session_ended(t(1), A, false);
    moved(&h, "a session parked");
    h.reconfigure_auth(AuthConfig::default());
    moved(&h, "a new token policy");
    let _ = drain(&mut h);
    // A publish changes nothing a route depends on.
    let before = epoch(&h);
    publish(&mut h, B, 0, "room/1", b"x", false);
    assert_eq!(epoch(&h), before);
}

#[test]
fn a_parked_subscriber_sends_the_topic_to_the_hub() {
    let mut h = hub();
    subscribe(&mut h, A, 1, "room/+");
    subscribe(&mut h, C, 1, "room/+");
    h.session_ended(t(1), A, false);
    assert_eq!(route(&h, B, "room/1", ChannelKind::Unreliable).to, None);
}

#[test]
fn a_subscriber_that_numbers_sends_reliable_publishes_to_the_hub_and_takes_unreliable_ones() {
    let mut h = hub();
    let confirms = HelloOptions::builder()
        .confirms()
        .channels(&[
            ChannelKind::ReliableOrdered,
            ChannelKind::ReliableOrdered,
            ChannelKind::ReliableOrdered,
        ])
        .build()
        .unwrap();
    let _ = h.admit(t(0), D, &hello(confirms), LOCAL).unwrap();
    subscribe(&mut h, D, 1, "room/+");
    subscribe(&mut h, A, 1, "room/+");
    // Channel 3 is reliable for D: its Messages there are numbered, which is the hub's state.
    assert_eq!(
        route(&h, B, "room/1", ChannelKind::ReliableOrdered).to,
        None
    );
    // Published unreliably, nobody numbers it.
    let r = route(&h, B, "room/1", ChannelKind::Unreliable);
    assert_eq!(r.to.map(sorted), Some(vec![A, D]));
}
