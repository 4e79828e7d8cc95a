//! Sealed-datagram micro-benchmarks (docs/PROTOCOL.md section 2.3): sealing a plain datagram in
//! place and opening a sealed one back into the plain one (as a copy with its CRC, and in place as
//! a session does), for 64 B and 1 KiB payloads, beside the plain datagram parse they add to.
//!
//! `cargo bench -p framewire-benches --bench seal`

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use framewire_protocol::seal::{SEAL_OVERHEAD, Sealer, SessionKeys, TokenKeys};
use framewire_protocol::wire::{Data, Datagram, DatagramBuilder, Frame, PacketHeader};

const SIZES: [usize; 2] = [64, 1024];

fn keys(server: bool) -> SessionKeys {
    let token = TokenKeys {
        client_to_server: [7; 32],
        server_to_client: [9; 32],
    };
    SessionKeys::derive(&token, 1, 2, b"cookie", server)
}

/// A plain datagram of packet number `pn` carrying one Data frame of `size` bytes, with room after
/// it for the seal.
fn plain(size: usize, pn: u32) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; 1500];
    let header = PacketHeader {
        connection_id: 1,
        packet_number: pn,
        ack: None,
    };
    let mut b = DatagramBuilder::new(&mut buf[..1500 - SEAL_OVERHEAD], &header).unwrap();
    b.push(&Frame::new(Data {
        payload: Bytes::from(vec![0xa5; size]),
    }))
    .unwrap();
    let len = b.finish().unwrap();
    (buf, len)
}

fn seal(c: &mut Criterion) {
    let mut group = c.benchmark_group("seal_datagram");
    for size in SIZES {
        group.throughput(Throughput::Elements(1));
        let (template, len) = plain(size, 0);
        let mut sealer = Sealer::new(&keys(false));
        let mut pn = 0u32;
        group.bench_function(format!("{size}B"), |b| {
            let mut buf = template.clone();
            b.iter(|| {
                buf[..len].copy_from_slice(&template[..len]);
                buf[12..16].copy_from_slice(&pn.to_be_bytes());
                pn = pn.wrapping_add(1);
                black_box(sealer.seal(&mut buf, len))
            });
        });
    }
    group.finish();
}

/// One opening per call, of `sealed` in order, by a server whose replay window starts again
/// after the last.
fn opening_in_order<'s>(
    sealed: &'s [Vec<u8>],
    mut open: impl FnMut(&mut Sealer, &[u8]) + 's,
) -> impl FnMut() + 's {
    let mut server = Sealer::new(&keys(true));
    let mut i = 0;
    move || {
        if i == sealed.len() {
            server = Sealer::new(&keys(true));
            i = 0;
        }
        open(&mut server, &sealed[i]);
        i += 1;
    }
}

fn open(c: &mut Criterion) {
    let mut group = c.benchmark_group("open_datagram");
    for size in SIZES {
        group.throughput(Throughput::Elements(1));
        // A long run of sealed datagrams, opened in order (the replay window moves each time).
        let mut client = Sealer::new(&keys(false));
        let sealed: Vec<Vec<u8>> = (0..4096u32)
            .map(|pn| {
                let (mut buf, len) = plain(size, pn);
                let n = client.seal(&mut buf, len).unwrap();
                buf.truncate(n);
                buf
            })
            .collect();
        group.bench_function(format!("{size}B"), |b| {
            b.iter(opening_in_order(&sealed, |server, datagram| {
                black_box(server.open(datagram).expect("each opens, once, in order"));
            }));
        });
        // As a session opens: the datagram copied once out of the socket's buffer (as the server
        // and the client do), then opened where it lies, no CRC computed.
        let mut buf = vec![0u8; 1500];
        group.bench_function(format!("{size}B in place"), |b| {
            b.iter(opening_in_order(&sealed, |server, datagram| {
                let copy = &mut buf[..datagram.len()];
                copy.copy_from_slice(datagram);
                black_box(
                    server
                        .open_in_place(copy)
                        .expect("each opens, once, in order"),
                );
            }));
        });
        let (buf, len) = plain(size, 0);
        let bytes = Bytes::copy_from_slice(&buf[..len]);
        group.bench_function(format!("{size}B plain parse, for comparison"), |b| {
            b.iter(|| black_box(Datagram::parse(bytes.clone())));
        });
    }
    group.finish();
}

criterion_group!(benches, seal, open);
criterion_main!(benches);
