//! Limits of particular queues (setting `queue`) over the server's.

use super::*;

fn push_to(h: &mut Hub, c: ClientId, id: u32, queue: &str) {
    h.feed(
        t(0),
        c,
        Frame::new(QueuePush {
            id,
            queue: Text::from(queue),
            payload: Bytes::from_static(b"job"),
        }),
    );
}

#[test]
fn a_queue_rule_sets_its_depth_deliveries_timeout_and_dead_letter_queue() {
    let mut h = hub_with(HubConfig {
        max_deliveries: 1,
        visibility_timeout: Duration::from_secs(30),
        queue_rules: vec![
            "jobs max_depth=1 visibility_timeout_ms=1000 dead_letter=jobs.failed"
                .parse()
                .unwrap(),
        ],
        ..HubConfig::default()
    });
    push_to(&mut h, A, 1, "jobs");
    push_to(&mut h, A, 2, "jobs");
    push_to(&mut h, A, 3, "other");
    push_to(&mut h, A, 4, "other");
    let out = drain(&mut h);
    assert_eq!(
        [1, 2, 3, 4].map(|id| status_of(&out, A, id)),
        [
            Some(Status::OK),
            Some(Status::QUEUE_FULL),
            Some(Status::OK),
            Some(Status::OK)
        ],
        "jobs holds one, other the server's depth"
    );
    // Its visibility timeout is the rule's second, not the server's 30; delivered once, it
    // moves to the queue the rule names.
    fetch(&mut h, t(0), B, 5, 1, 0);
    let id = deliveries(&drain(&mut h), B)[0].1;
    h.handle_timeout(t(1_010));
    fetch_from(&mut h, t(1_020), B, (6, "jobs.failed"), 1, 0);
    assert_eq!(deliveries(&drain(&mut h), B)[0].1, id, "in jobs.failed");
    // A dead-letter queue has none of its own: it keeps the message past max_deliveries.
    h.handle_timeout(t(40_000));
    fetch_from(&mut h, t(40_010), B, (7, "jobs.failed"), 1, 0);
    let again = deliveries(&drain(&mut h), B);
    assert_eq!(
        (again[0].1, again[0].3),
        (id, true),
        "redelivered, not moved"
    );
}
