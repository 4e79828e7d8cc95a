//! The hub's queue path in memory (no data directory): one push, one fetch of it, one ack, with
//! every output drained, per iteration. The durable log must not slow this path down: the same
//! file runs against the commit before the log was added (`--save-baseline` there, `--baseline`
//! here).
//!
//! `cargo bench -p framewire-benches --bench hub_queue`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use framewire_protocol::session::Instant;
use framewire_protocol::wire::{
    ChannelKind, Frame, FrameBody, Hello, HelloOptions, QueueAck, QueueFetch, QueuePush, Text,
};
use framewire_server::hub::{ClientId, Delivery, Hub, HubConfig, ServerInfo};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const PRODUCER: ClientId = ClientId::Tcp(1);
const CONSUMER: ClientId = ClientId::Tcp(2);

fn hub() -> Hub {
    let mut hub = Hub::new(HubConfig::default(), ServerInfo::default(), Arc::default());
    for c in [PRODUCER, CONSUMER] {
        hub.admit(Instant::ZERO, c, &Hello::new(0, HelloOptions::new()), LOCAL)
            .expect("admitted");
    }
    hub
}

/// Push, fetch, ack: returns the delivery id acknowledged.
fn cycle(hub: &mut Hub, payload: &Bytes, queue: &Text) -> u64 {
    let reliable = ChannelKind::ReliableOrdered;
    let push = Frame::new(QueuePush {
        id: 1,
        queue: queue.clone(),
        payload: payload.clone(),
    });
    hub.handle_frame(Instant::ZERO, PRODUCER, push, reliable);
    while hub.poll_output().is_some() {}
    let fetch = Frame::new(QueueFetch {
        id: 2,
        max: 1,
        wait_ms: 0,
        queue: queue.clone(),
    });
    hub.handle_frame(Instant::ZERO, CONSUMER, fetch, reliable);
    let mut delivery_id = 0;
    while let Some(o) = hub.poll_output() {
        if let Delivery::Frame(Frame {
            body: FrameBody::QueueDelivery(d),
            ..
        }) = o.delivery
        {
            delivery_id = d.delivery_id;
        }
    }
    let ack = Frame::new(QueueAck {
        id: 3,
        delivery_id,
        queue: queue.clone(),
    });
    hub.handle_frame(Instant::ZERO, CONSUMER, ack, reliable);
    while hub.poll_output().is_some() {}
    delivery_id
}

fn bench(c: &mut Criterion) {
    let mut hub = hub();
    let payload = Bytes::from(vec![7u8; 64]);
    let queue = Text::from("jobs");
    let mut group = c.benchmark_group("hub_queue");
    group.throughput(Throughput::Elements(1));
    group.bench_function("push_fetch_ack_in_memory", |b| {
        b.iter(|| black_box(cycle(&mut hub, &payload, &queue)));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
