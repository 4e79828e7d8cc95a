//! Codec micro-benchmarks: stream decode + CRC verify (the deframer), the same plus the parse into
//! a typed frame, stream encode, and datagram parse, for 64 B and 1 KiB payloads.
//!
//! `cargo bench -p framewire-benches --bench codec`
//!
//! Decode runs over a receive buffer holding `BATCH` frames, as a server's read buffer does after
//! a read; its time per iteration divided by `BATCH` is the time per frame (criterion's "elem/s"
//! column is frames per second), including the copy of the bytes into the buffer.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use framewire_protocol::wire::{
    DEFAULT_DATAGRAM_SIZE, DEFAULT_MAX_FRAME_LEN, Data, Datagram, DatagramBuilder, Frame,
    PacketHeader, StreamDeframer, encode_stream_frame, encode_stream_frame_into, stream_frame_len,
};

const BATCH: usize = 256;
const SIZES: [usize; 2] = [64, 1024];

fn data_frame(payload: usize) -> Frame {
    Frame::new(Data {
        payload: Bytes::from(vec![0xa5u8; payload]),
    })
    .on_channel(1)
}

/// `BATCH` stream-encoded Data frames of `size` payload bytes, back to back.
fn batch(size: usize) -> BytesMut {
    let frame = data_frame(size);
    let mut wire = BytesMut::new();
    for _ in 0..BATCH {
        encode_stream_frame_into(&frame, &mut wire).unwrap();
    }
    wire
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream_decode_verify_parse");
    for size in SIZES {
        let wire = batch(size);
        group.throughput(Throughput::Elements(BATCH as u64));
        // One receive buffer reused across iterations, as a connection's is: each iteration
        // copies the batch in (standing in for the socket read) and decodes every frame. Once the
        // frames are dropped the buffer's allocation is unique again and is reused, so no
        // allocation or page fault lands in the measurement.
        let mut buf = BytesMut::with_capacity(wire.len());
        let mut deframer = StreamDeframer::new(DEFAULT_MAX_FRAME_LEN);
        group.bench_function(format!("{size}B"), |b| {
            b.iter(|| {
                buf.extend_from_slice(&wire);
                let mut n = 0;
                while let Some(body) = deframer.decode(&mut buf).unwrap() {
                    let f = Frame::parse(body).unwrap();
                    black_box(&f);
                    n += 1;
                }
                assert_eq!(n, BATCH);
            });
        });
    }
    group.finish();
}

/// The deframer alone: length check, CRC verify and version check, handing out the frame body as
/// `Bytes`, without parsing the body into a typed frame.
fn deframe(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream_decode_verify");
    for size in SIZES {
        let wire = batch(size);
        group.throughput(Throughput::Elements(BATCH as u64));
        let mut buf = BytesMut::with_capacity(wire.len());
        let mut deframer = StreamDeframer::new(DEFAULT_MAX_FRAME_LEN);
        group.bench_function(format!("{size}B"), |b| {
            b.iter(|| {
                buf.extend_from_slice(&wire);
                let mut n = 0;
                while let Some(body) = deframer.decode(&mut buf).unwrap() {
                    black_box(&body);
                    n += 1;
                }
                assert_eq!(n, BATCH);
            });
        });
    }
    group.finish();
}

/// The deframer's in-place path: the same checks, the body read where it lies, no `Bytes`.
fn deframe_in_place(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream_decode_verify_in_place");
    for size in SIZES {
        let wire = batch(size);
        group.throughput(Throughput::Elements(BATCH as u64));
        let mut buf = BytesMut::with_capacity(wire.len());
        let mut deframer = StreamDeframer::new(DEFAULT_MAX_FRAME_LEN);
        group.bench_function(format!("{size}B"), |b| {
            b.iter(|| {
                buf.extend_from_slice(&wire);
                let mut n = 0;
                while let Some(span) = deframer.decode_span(&mut buf).unwrap() {
                    black_box(&buf[span.body]);
                    bytes::Buf::advance(&mut buf, span.total);
                    n += 1;
                }
                assert_eq!(n, BATCH);
            });
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream_encode");
    for size in SIZES {
        let frame = data_frame(size);
        let mut out = vec![0u8; stream_frame_len(&frame)];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(format!("{size}B"), |b| {
            b.iter(|| encode_stream_frame(black_box(&frame), black_box(&mut out)).unwrap());
        });
    }
    group.finish();
}

fn datagram(c: &mut Criterion) {
    let mut group = c.benchmark_group("datagram_parse");
    let header = PacketHeader {
        connection_id: 7,
        packet_number: 1,
        ack: None,
    };
    let frame = data_frame(64);
    let mut buf = vec![0u8; DEFAULT_DATAGRAM_SIZE];
    let mut builder = DatagramBuilder::new(&mut buf, &header).unwrap();
    let mut frames = 0u64;
    while builder.push(&frame).unwrap() {
        frames += 1;
    }
    let n = builder.finish().unwrap();
    let bytes = Bytes::copy_from_slice(&buf[..n]);
    group.throughput(Throughput::Elements(frames));
    group.bench_function("1200B_of_64B_frames", |b| {
        b.iter(|| {
            let d = Datagram::parse(black_box(bytes.clone())).unwrap();
            for body in d.frames() {
                black_box(Frame::parse(body).unwrap());
            }
        });
    });
    group.finish();
}

criterion_group!(benches, deframe, deframe_in_place, decode, encode, datagram);
criterion_main!(benches);
