//! Work queue operations over a [`TestClient`], each waiting for its Response.

use bytes::Bytes;
use framewire_protocol::wire::{
    Frame, FrameBody, QueueAck, QueueDelivery, QueueFetch, QueuePush, Status, Text,
};

use crate::TestClient;

/// Pushes `payload` onto `queue`; the Response's status.
pub fn push(c: &mut TestClient, id: u32, queue: &str, payload: &[u8]) -> Status {
    c.send(Frame::new(QueuePush {
        id,
        queue: Text::from(queue),
        payload: Bytes::copy_from_slice(payload),
    }));
    c.until_response(id).1.status
}

/// Fetches up to `max` messages, waiting up to `wait_ms`; the deliveries.
///
/// # Panics
/// If the fetch is not answered `OK`, or something else comes before its Response.
pub fn fetch(
    c: &mut TestClient,
    id: u32,
    queue: &str,
    max: u16,
    wait_ms: u32,
) -> Vec<QueueDelivery> {
    c.send(Frame::new(QueueFetch {
        id,
        max,
        wait_ms,
        queue: Text::from(queue),
    }));
    let (before, r) = c.until_response(id);
    assert_eq!(r.status, Status::OK);
    before
        .into_iter()
        .map(|f| match f.body {
            FrameBody::QueueDelivery(d) if d.id == id => d,
            other => panic!("{other:?}"),
        })
        .collect()
}

/// Acknowledges a delivery; the Response's status.
pub fn ack(c: &mut TestClient, id: u32, queue: &str, delivery_id: u64) -> Status {
    c.send(Frame::new(QueueAck {
        id,
        delivery_id,
        queue: Text::from(queue),
    }));
    c.until_response(id).1.status
}
