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
            _ => None,
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

    h.from_cluster(
        t(0),
        Remote::Message {
            topic: Text::from("room/2"),
            envelope: Envelope {
                channel: 1,
                reliable: false,
                origin: 5,
                seq: 1,
                payload: Bytes::from_static(b"from afar"),
            },
        },
    );
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
    h.from_cluster(
        t(0),
        Remote::Message {
            topic: Text::from("room/+"),
            envelope: Envelope {
                channel: 0,
                reliable: true,
                origin: 5,
                seq: 2,
                payload: Bytes::new(),
            },
        },
    );
    assert!(drain(&mut h).is_empty());
}

#[test]
fn retained_messages_go_to_the_clusters_stream_and_come_back_as_state_only() {
    let mut h = hub();
    h.join_cluster();
    publish(&mut h, A, 1, "cfg/1", b"v1", true);
    let out = h.take_cluster_output();
    assert!(out.contains(&ClusterOut::Retain {
        topic: Text::from("cfg/1"),
        channel: 3,
        payload: Bytes::from_static(b"v1"),
    }));
    publish(&mut h, A, 2, "cfg/2", b"live", false);
    assert!(
        !h.take_cluster_output()
            .iter()
            .any(|o| matches!(o, ClusterOut::Retain { .. })),
        "a message without retain is not kept"
    );
    subscribe(&mut h, B, 1, "cfg/#");
    drain(&mut h);
    h.take_cluster_output();
    // The cluster's state, set on another node: kept, delivered to no one now, not handed back.
    let kept = |h: &mut Hub, topic: &str, payload: &'static [u8]| {
        h.from_cluster(
            t(0),
            Remote::Retained {
                topic: Text::from(topic),
                channel: 1,
                payload: Bytes::from_static(payload),
            },
        );
    };
    kept(&mut h, "cfg/3", b"v3");
    kept(&mut h, "cfg/1", b"");
    kept(&mut h, "cfg/+", b"refused");
    assert!(messages_to(&drain(&mut h), B).is_empty());
    assert!(h.take_cluster_output().is_empty());
    subscribe(&mut h, C, 1, "cfg/#");
    assert_eq!(
        messages_to(&drain(&mut h), C),
        [("cfg/3".into(), Bytes::from_static(b"v3"), true, 1)],
        "cfg/1 cleared by the cluster; cfg/3 kept"
    );
}

#[test]
fn in_a_cluster_queue_operations_go_to_the_clusters_queue_and_their_outcome_comes_back() {
    use crate::cluster::{QueueDelivered, QueueOp};
    let mut h = hub();
    h.join_cluster();
    h.feed(
        t(0),
        A,
        Frame::new(QueueFetch {
            id: 7,
            max: 2,
            wait_ms: 500,
            queue: Text::from("jobs"),
        }),
    );
    let token = match h.take_cluster_output().as_slice() {
        [ClusterOut::Queue { token, queue, op }] => {
            assert_eq!(queue.as_str(), "jobs");
            assert_eq!(
                *op,
                QueueOp::Fetch {
                    max: 2,
                    wait_ms: 500
                }
            );
            *token
        }
        other => panic!("{other:?}"),
    };
    assert!(
        drain(&mut h).is_empty(),
        "nothing answered before the cluster does"
    );
    h.from_cluster(
        t(1),
        Remote::QueueAnswer {
            token,
            delivered: vec![QueueDelivered {
                delivery_id: 41,
                redelivered: true,
                payload: Bytes::from_static(b"job"),
            }],
            status: Status::OK,
            message: String::new(),
        },
    );
    let out = drain(&mut h);
    assert!(matches!(&out[0], (A, f) if matches!(&f.body,
        FrameBody::QueueDelivery(d) if d.id == 7 && d.delivery_id == 41 && d.redelivered
            && d.queue.as_str() == "jobs" && d.payload == "job")));
    assert_eq!(status_of(&out, A, 7), Some(Status::OK));
    // A refusal comes back as the status; an answer after the deadline is dropped.
    h.feed(
        t(2),
        A,
        Frame::new(QueueAck {
            id: 8,
            delivery_id: 99,
            queue: Text::from("jobs"),
        }),
    );
    let out: [ClusterOut; 1] = h.take_cluster_output().try_into().unwrap();
    let [ClusterOut::Queue { token, op, .. }] = out else {
        panic!("one operation")
    };
    assert_eq!(op, QueueOp::Ack(99));
    h.from_cluster(
        t(3),
        Remote::QueueAnswer {
            token,
            delivered: Vec::new(),
            status: Status::NOT_FOUND,
            message: "no such delivery".into(),
        },
    );
    assert_eq!(status_of(&drain(&mut h), A, 8), Some(Status::NOT_FOUND));
    h.feed(
        t(4),
        A,
        Frame::new(QueuePush {
            id: 9,
            queue: Text::from("jobs"),
            payload: Bytes::from_static(b"x"),
        }),
    );
    let out: [ClusterOut; 1] = h.take_cluster_output().try_into().unwrap();
    let [ClusterOut::Queue { token, .. }] = out else {
        panic!("one operation")
    };
    h.handle_timeout(t(60_000_000));
    assert_eq!(status_of(&drain(&mut h), A, 9), Some(Status::TIMEOUT));
    h.from_cluster(
        t(60_000_001),
        Remote::QueueAnswer {
            token,
            delivered: Vec::new(),
            status: Status::OK,
            message: String::new(),
        },
    );
    assert!(drain(&mut h).is_empty(), "a late answer is dropped");
}

fn ask(h: &mut Hub, now: Instant, c: ClientId, id: u32, name: &str, timeout_ms: u32) {
    h.feed(
        now,
        c,
        Frame::new(Request {
            id,
            timeout_ms,
            target: Text::from(name),
            payload: Bytes::from_static(b"q"),
        }),
    );
}

#[test]
fn in_a_cluster_requests_go_through_it_and_come_back_to_their_requester() {
    let mut h = hub();
    h.join_cluster();
    register(&mut h, A, 1, "svc");
    register(&mut h, A, 2, "svc");
    let out = h.take_cluster_output();
    assert_eq!(
        out,
        [ClusterOut::Serve(Text::from("svc"), true)],
        "one queue subscription per registration, not per repeat"
    );
    // sys.* stays local; a service request goes to the cluster, even with a responder here.
    ask(&mut h, t(0), B, 7, "sys.ping", 0);
    ask(&mut h, t(0), B, 8, "svc", 300);
    assert_eq!(status_of(&drain(&mut h), B, 7), Some(Status::OK));
    let token = match h.take_cluster_output().as_slice() {
        [
            ClusterOut::Request {
                token,
                service,
                timeout_ms: 300,
                payload,
            },
        ] if service.as_str() == "svc" && &payload[..] == b"q" => *token,
        other => panic!("{other:?}"),
    };
    h.from_cluster(
        t(5),
        Remote::Reply {
            token,
            status: Status::OK,
            payload: Bytes::from_static(b"a"),
        },
    );
    assert_eq!(status_of(&drain(&mut h), B, 8), Some(Status::OK));
    // Answered once: a second answer is dropped; an unanswered request times out.
    h.from_cluster(
        t(6),
        Remote::Reply {
            token,
            status: Status::OK,
            payload: Bytes::new(),
        },
    );
    assert!(drain(&mut h).is_empty());
    ask(&mut h, t(10), B, 9, "svc", 100);
    h.take_cluster_output();
    h.handle_timeout(t(111));
    assert_eq!(status_of(&drain(&mut h), B, 9), Some(Status::TIMEOUT));
}

#[test]
fn another_nodes_request_is_routed_here_and_answered_through_the_cluster() {
    let mut h = hub();
    h.join_cluster();
    register(&mut h, A, 1, "svc");
    drain(&mut h);
    h.take_cluster_output();
    let remote = |service: &str| Remote::Request {
        reply: Text::from("_INBOX.x"),
        service: Text::from(service),
        timeout_ms: 1000,
        payload: Bytes::from_static(b"q"),
    };
    h.from_cluster(t(0), remote("svc"));
    let routed = match drain(&mut h).as_slice() {
        [(to, f)] if *to == A => match &f.body {
            FrameBody::Request(r) => r.clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    assert_eq!((routed.timeout_ms, &routed.payload[..]), (1000, &b"q"[..]));
    h.feed(
        t(1),
        A,
        Frame::new(Response {
            id: routed.id,
            status: Status::OK,
            payload: Bytes::from_static(b"a"),
        }),
    );
    assert_eq!(
        h.take_cluster_output(),
        [ClusterOut::Reply {
            reply: Text::from("_INBOX.x"),
            status: Status::OK,
            payload: Bytes::from_static(b"a"),
        }]
    );
    // No responder left here: NO_RESPONDER back at once. One that leaves: RESPONDER_GONE.
    h.from_cluster(t(2), remote("other"));
    assert!(matches!(
        h.take_cluster_output().as_slice(),
        [ClusterOut::Reply {
            status: Status::NO_RESPONDER,
            ..
        }]
    ));
    h.from_cluster(t(3), remote("svc"));
    drain(&mut h);
    h.session_ended(t(4), A, true);
    let out = h.take_cluster_output();
    assert!(
        out.contains(&ClusterOut::Serve(Text::from("svc"), false)),
        "{out:?}"
    );
    assert!(
        out.iter().any(|o| matches!(
            o,
            ClusterOut::Reply {
                status: Status::RESPONDER_GONE,
                ..
            }
        )),
        "{out:?}"
    );
}
