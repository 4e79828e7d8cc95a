//! Engine CPU per small message: two sessions driven directly (no simulator in the loop), each
//! iteration sending `BATCH` 100-byte reliable messages from `a`, delivering every datagram to
//! `b`, draining its events, and returning its acks to `a`. The time per iteration divided by
//! `BATCH` is the engine's cost per message for send, receive and acknowledgement together, in
//! version 2 (compact datagrams), version 1, and sealed (every datagram sealed and opened) in
//! version 4 (compact, docs/PROTOCOL.md section 2.5) and version 1 (section 2.3).
//!
//! `cargo bench -p framewire-benches --bench session_engine`

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use framewire_protocol::session::{Instant, Session, SessionConfig};
use framewire_protocol::sim::{ADDR_A, ADDR_B, seal_pair};
use framewire_protocol::wire::{Data, Frame};

const BATCH: usize = 64;

/// The datagrams the two sessions exchange.
#[derive(Clone, Copy)]
enum Form {
    Compact,
    Standard,
    /// Sealed, in this version (4 or 1).
    Sealed(u8),
}

fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("session_engine");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, channel, form) in [
        ("reliable_100B", 0u8, Form::Compact),
        ("unreliable_100B", 3, Form::Compact),
        ("reliable_100B_version_1", 0, Form::Standard),
        ("unreliable_100B_version_1", 3, Form::Standard),
        ("reliable_100B_sealed", 0, Form::Sealed(4)),
        ("reliable_100B_sealed_version_1", 0, Form::Sealed(1)),
    ] {
        let config = SessionConfig {
            idle_timeout: Duration::from_secs(1_000_000),
            heartbeat_interval: Duration::from_secs(1_000_000),
            ..SessionConfig::default()
        };
        let mut a = Session::established(config.clone(), 1, ADDR_B, Instant::ZERO);
        let mut b = Session::established(config, 1, ADDR_A, Instant::ZERO);
        match form {
            // Version 2, as two peers of this build agree: compact datagrams.
            Form::Compact => {
                a.use_compact_datagrams();
                b.use_compact_datagrams();
            }
            Form::Standard => {}
            Form::Sealed(version) => seal_pair(&mut a, &mut b, version),
        }
        let payload = Bytes::from(vec![0x5a; 100]);
        let mut now = Instant::ZERO;
        let mut buf = vec![0u8; 2048];
        group.bench_function(name, |bench| {
            bench.iter(|| {
                now += Duration::from_millis(100);
                for _ in 0..BATCH {
                    a.send(
                        Frame::new(Data {
                            payload: payload.clone(),
                        })
                        .on_channel(channel),
                    )
                    .unwrap();
                }
                while let Some(t) = a.poll_transmit(now, &mut buf) {
                    b.handle_datagram(now, ADDR_A, Bytes::copy_from_slice(&buf[..t.len]));
                }
                let mut delivered = 0;
                while let Some(e) = b.poll_event() {
                    black_box(&e);
                    delivered += 1;
                }
                assert_eq!(delivered, BATCH);
                // The receiver's acks go back after the ack delay, and arrive at once.
                let later = now + Duration::from_millis(60);
                b.handle_timeout(later);
                while let Some(t) = b.poll_transmit(later, &mut buf) {
                    a.handle_datagram(later, ADDR_B, Bytes::copy_from_slice(&buf[..t.len]));
                }
            });
        });
        assert_eq!(
            a.stats().queued_bytes,
            0,
            "{name}: everything was acknowledged"
        );
    }
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
