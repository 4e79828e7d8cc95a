//! The hub as one node of a cluster (docs/PROTOCOL.md section 12): which filters it tells the
//! cluster it holds, what it hands on of its clients' publishes, and what it does with another
//! node's.

use super::*;
use crate::cluster::envelope::Envelope;
use crate::cluster::{ClusterOut, Remote};

fn interest(out: &[ClusterOut]) -> Vec<(String, bool)> {
    out.iter()
        .filter_map(|o| match o {
            ClusterOut::Interest(f, on) => Some((f.as_str().to_owned(), *on)),
            ClusterOut::Publish { .. } => None,
        })
        .collect()
}

fn unsubscribe(h: &mut Hub, c: ClientId, id: u32, filter: &str) {
    h.feed(
        t(0),
        c,
        Frame::new(Unsubscribe {
            id,
            filter: Text::from(filter),
        }),
    );
}

#[test]
fn a_filter_is_announced_at_its_first_holder_and_withdrawn_after_its_last() {
    let mut h = hub();
    subscribe(&mut h, A, 1, "held/before");
    h.join_cluster();
    assert_eq!(
        interest(&h.take_cluster_output()),
        [("held/before".into(), true)],
        "what is held when the node joins comes first"
    );
    subscribe(&mut h, A, 2, "room/+");
    subscribe(&mut h, B, 1, "room/+");
    subscribe(&mut h, B, 2, "room/+");
    assert_eq!(
        interest(&h.take_cluster_output()),
        [("room/+".into(), true)],
        "once, however many hold it"
    );
    unsubscribe(&mut h, A, 3, "room/+");
    unsubscribe(&mut h, A, 4, "room/+");
    assert!(
        interest(&h.take_cluster_output()).is_empty(),
        "B still holds it"
    );
    // A session that ends without a Close is parked with its filters: still held.
    h.session_ended(t(1), B, false);
    assert!(interest(&h.take_cluster_output()).is_empty());
    // Its expiry lets go of them.
    h.handle_timeout(t(10_000_000));
    assert_eq!(
        interest(&h.take_cluster_output()),
        [("room/+".into(), false)]
    );
    assert!(
        h.take_cluster_output().is_empty(),
        "taken once; nothing else"
    );
    drain(&mut h);
}

#[test]
fn local_publishes_go_to_the_cluster_and_remote_ones_only_to_local_subscribers() {
    let mut h = hub();
    // Alone, nothing is kept for a cluster.
    publish(&mut h, A, 1, "room/1", b"alone", false);
    assert!(h.take_cluster_output().is_empty());
    h.join_cluster();
    subscribe(&mut h, B, 1, "room/#");
    drain(&mut h);
    publish(&mut h, A, 2, "room/1", b"hi", false);
    let out = h.take_cluster_output();
    assert!(out.contains(&ClusterOut::Publish {
        topic: Text::from("room/1"),
        channel: 3,
        reliable: true,
        payload: Bytes::from_static(b"hi"),
    }));
    assert_eq!(messages_to(&drain(&mut h), B).len(), 1, "and locally, once");

    h.publish_remote(Remote {
        topic: Text::from("room/2"),
        envelope: Envelope {
            channel: 1,
            reliable: false,
            origin: 5,
            seq: 1,
            payload: Bytes::from_static(b"from afar"),
        },
    });
    let got = messages_to(&drain(&mut h), B);
    assert_eq!(
        got,
        [("room/2".into(), Bytes::from_static(b"from afar"), false, 1)]
    );
    assert!(
        h.take_cluster_output().is_empty(),
        "another node's message is not handed back"
    );
    // A topic this node would refuse is dropped.
    h.publish_remote(Remote {
        topic: Text::from("room/+"),
        envelope: Envelope {
            channel: 0,
            reliable: true,
            origin: 5,
            seq: 2,
            payload: Bytes::new(),
        },
    });
    assert!(drain(&mut h).is_empty());
}
