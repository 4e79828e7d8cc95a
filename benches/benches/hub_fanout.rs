//! The hub's fan-out of one publish to 1,000 subscribers, with what the TCP adapter then writes for
//! each: sessions that do not confirm share one encoding (a copy each), sessions that confirm
//! (Hello option `CONFIRMS`, docs/PROTOCOL.md section 5.9) get a numbered Message each (kept until
//! confirmed, encoded each) and send an Ack every 16 messages, as the reference client does under
//! load.
//!
//! `cargo bench -p framewire-benches --bench hub_fanout`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use framewire_protocol::session::Instant;
use framewire_protocol::wire::{
    Ack, ChannelKind, Frame, Hello, HelloOptions, Publish, Subscribe, Text,
    encode_stream_frame_into,
};
use framewire_server::hub::{ClientId, Delivery, Hub, HubConfig, ServerInfo};

const SUBSCRIBERS: usize = 1000;
const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn hub(confirm: bool) -> Hub {
    let mut hub = Hub::new(HubConfig::default(), ServerInfo::default(), Arc::default());
    let options = if confirm {
        HelloOptions::builder().confirms().build().expect("options")
    } else {
        HelloOptions::new()
    };
    for i in 0..=SUBSCRIBERS {
        let c = ClientId::Tcp(i);
        hub.admit(Instant::ZERO, c, &Hello::new(0, options.clone()), LOCAL)
            .expect("admitted");
        if i > 0 {
            let subscribe = Frame::new(Subscribe {
                id: 0,
                filter: Text::from("game/room/1"),
            });
            hub.handle_frame(Instant::ZERO, c, subscribe, ChannelKind::ReliableOrdered);
        }
    }
    while hub.poll_output().is_some() {}
    hub
}

/// Publishes once and writes every delivery as the TCP adapter would; returns the bytes written.
fn publish_once(hub: &mut Hub, publish: &Frame, out: &mut BytesMut) -> usize {
    hub.handle_frame(
        Instant::ZERO,
        ClientId::Tcp(0),
        publish.clone(),
        ChannelKind::ReliableOrdered,
    );
    out.clear();
    while let Some(o) = hub.poll_output() {
        match o.delivery {
            Delivery::Shared(s) => out.extend_from_slice(s.stream_bytes()),
            Delivery::Frame(f) => {
                encode_stream_frame_into(&f, out).expect("encodes");
            }
            Delivery::Close(..) => {}
        }
    }
    out.len()
}

fn fanout(c: &mut Criterion) {
    let publish = Frame::new(Publish {
        retain: false,
        id: 0,
        topic: Text::from("game/room/1"),
        payload: Bytes::from(vec![7u8; 64]),
    });
    let mut group = c.benchmark_group("hub_fanout_1000");
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    let mut out = BytesMut::with_capacity(SUBSCRIBERS * 128);
    let mut shared = hub(false);
    group.bench_function("shared", |b| {
        b.iter(|| black_box(publish_once(&mut shared, &publish, &mut out)));
    });
    let mut numbered = hub(true);
    let mut sent = 0u32;
    group.bench_function("numbered_with_acks", |b| {
        b.iter(|| {
            let n = publish_once(&mut numbered, &publish, &mut out);
            sent = sent.wrapping_add(1);
            if sent.is_multiple_of(16) {
                for i in 1..=SUBSCRIBERS {
                    let ack = Frame::new(Ack { through: sent });
                    numbered.handle_frame(
                        Instant::ZERO,
                        ClientId::Tcp(i),
                        ack,
                        ChannelKind::ReliableOrdered,
                    );
                }
            }
            black_box(n)
        });
    });
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
