//! Property tests of the codec: for every frame kind `parse(emit(x)) == x`, accepted bytes re-emit
//! to the same bytes, and streams and datagrams carry any mix of frames intact.

use bytes::{Bytes, BytesMut};
use framewire_protocol::wire::{
    Ack, AckBlock, Challenge, ChannelKind, Close, CloseAck, DEFAULT_MAX_FRAME_LEN, Data, Datagram,
    DatagramBuilder, ErrorFrame, Fragment, Frame, FrameBody, FrameKind, Hello, HelloOptions,
    MAX_NAME_LEN, Message, PacketHeader, Ping, Pong, Publish, QueueAck, QueueDelivery, QueueExtend,
    QueueFetch, QueueNack, QueuePush, Reason, Register, Reject, Request, Response, Status,
    StreamDeframer, Subscribe, Text, Unregister, Unsubscribe, Welcome, decode_stream_frame,
    encode_stream_frame_into,
};
use proptest::prelude::*;

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn text() -> impl Strategy<Value = Text> {
    "\\PC{0,24}".prop_map(Text::from)
}

fn name() -> impl Strategy<Value = Text> {
    prop_oneof![
        "[a-z0-9/+#.]{0,32}".prop_map(Text::from),
        // Names at the protocol limit.
        Just(Text::from("n".repeat(MAX_NAME_LEN))),
        "\\PC{0,16}".prop_map(Text::from),
    ]
}

fn short() -> impl Strategy<Value = Bytes> {
    bytes(256)
}

fn channel_kind() -> impl Strategy<Value = ChannelKind> {
    prop_oneof![
        Just(ChannelKind::ReliableOrdered),
        Just(ChannelKind::ReliableUnordered),
        Just(ChannelKind::UnreliableSequenced),
        Just(ChannelKind::Unreliable),
    ]
}

fn hello_options() -> impl Strategy<Value = HelloOptions> {
    (
        prop::option::of(short()),
        prop::option::of(short()),
        prop::option::of(prop::collection::vec(channel_kind(), 0..8)),
        prop::option::of("\\PC{0,12}"),
        prop::option::of((0x20u8..=0xff, bytes(16))),
        prop::option::of(0usize..64),
    )
        .prop_map(|(cookie, token, channels, name, unknown, pad)| {
            let mut b = HelloOptions::builder();
            if let Some(c) = cookie {
                b = b.cookie(&c);
            }
            if let Some(t) = token {
                b = b.resume_token(&t);
            }
            if let Some(c) = channels {
                b = b.channels(&c);
            }
            if let Some(n) = name {
                b = b.client_name(&n);
            }
            if let Some((code, v)) = unknown {
                b = b.raw(code, &v);
            }
            if let Some(p) = pad {
                b = b.padding(p);
            }
            b.build().unwrap()
        })
}

fn handshake_body() -> impl Strategy<Value = FrameBody> {
    prop_oneof![
        (
            any::<u8>(),
            any::<u8>(),
            any::<u32>(),
            any::<u32>(),
            any::<u64>(),
            hello_options()
        )
            .prop_map(|(a, b, idle, max, nonce, options)| {
                FrameBody::from(Hello {
                    min_version: a.min(b),
                    max_version: a.max(b),
                    idle_timeout_ms: idle,
                    max_frame_len: max,
                    nonce,
                    options,
                })
            }),
        (any::<u64>(), short()).prop_map(|(nonce, cookie)| Challenge { nonce, cookie }.into()),
        (
            any::<bool>(),
            any::<u8>(),
            any::<u64>(),
            (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
            short()
        )
            .prop_map(|(resumed, version, cid, (idle, max, hb, missed), token)| {
                Welcome {
                    resumed,
                    version,
                    connection_id: cid,
                    idle_timeout_ms: idle,
                    max_frame_len: max,
                    heartbeat_interval_ms: hb,
                    missed,
                    session_token: token,
                }
                .into()
            }),
        (any::<u16>(), any::<u8>(), any::<u8>(), text()).prop_map(|(r, a, b, message)| {
            Reject {
                reason: Reason(r),
                min_version: a.min(b),
                max_version: a.max(b),
                message,
            }
            .into()
        }),
    ]
}

fn session_body() -> impl Strategy<Value = FrameBody> {
    prop_oneof![
        (any::<u16>(), text()).prop_map(|(r, message)| Close {
            reason: Reason(r),
            message
        }
        .into()),
        Just(FrameBody::from(CloseAck)),
        any::<u64>().prop_map(|timestamp_us| Ping { timestamp_us }.into()),
        any::<u64>().prop_map(|timestamp_us| Pong { timestamp_us }.into()),
        any::<u32>().prop_map(|through| Ack { through }.into()),
        (any::<u32>(), 1u16..=u16::MAX, any::<u16>(), bytes(64)).prop_map(
            |(message_id, count, index, data)| Fragment {
                message_id,
                index: index % count,
                count,
                data,
            }
            .into()
        ),
        bytes(300).prop_map(|payload| Data { payload }.into()),
        (any::<u16>(), any::<u8>(), text()).prop_map(|(r, k, message)| ErrorFrame {
            reason: Reason(r),
            refused_kind: k,
            message
        }
        .into()),
    ]
}

fn hub_body() -> impl Strategy<Value = FrameBody> {
    prop_oneof![
        (any::<u32>(), name()).prop_map(|(id, filter)| Subscribe { id, filter }.into()),
        (any::<u32>(), name()).prop_map(|(id, filter)| Unsubscribe { id, filter }.into()),
        (any::<bool>(), any::<u32>(), name(), bytes(64)).prop_map(
            |(retain, id, topic, payload)| {
                Publish {
                    retain,
                    id,
                    topic,
                    payload,
                }
                .into()
            }
        ),
        (any::<bool>(), any::<Option<u32>>(), name(), bytes(64)).prop_map(
            |(retained, number, topic, payload)| Message {
                retained,
                number,
                topic,
                payload,
            }
            .into()
        ),
        (any::<u32>(), any::<u32>(), name(), bytes(64)).prop_map(
            |(id, timeout_ms, target, payload)| Request {
                id,
                timeout_ms,
                target,
                payload
            }
            .into()
        ),
        (any::<u32>(), any::<u16>(), bytes(64)).prop_map(|(id, s, payload)| Response {
            id,
            status: Status(s),
            payload
        }
        .into()),
        (any::<u32>(), name()).prop_map(|(id, service)| Register { id, service }.into()),
        (any::<u32>(), name()).prop_map(|(id, service)| Unregister { id, service }.into()),
        (any::<u32>(), name(), bytes(64)).prop_map(|(id, queue, payload)| QueuePush {
            id,
            queue,
            payload
        }
        .into()),
        (any::<u32>(), any::<u16>(), any::<u32>(), name()).prop_map(|(id, max, wait_ms, queue)| {
            QueueFetch {
                id,
                max,
                wait_ms,
                queue,
            }
            .into()
        }),
        (any::<bool>(), any::<u32>(), any::<u64>(), name(), bytes(64)).prop_map(
            |(redelivered, id, delivery_id, queue, payload)| QueueDelivery {
                redelivered,
                id,
                delivery_id,
                queue,
                payload,
            }
            .into()
        ),
        (any::<u32>(), any::<u64>(), name()).prop_map(|(id, delivery_id, queue)| QueueAck {
            id,
            delivery_id,
            queue
        }
        .into()),
        (any::<u32>(), any::<u32>(), any::<u64>(), name()).prop_map(
            |(id, delay_ms, delivery_id, queue)| QueueNack {
                id,
                delay_ms,
                delivery_id,
                queue,
            }
            .into()
        ),
        (any::<u32>(), any::<u32>(), any::<u64>(), name()).prop_map(
            |(id, timeout_ms, delivery_id, queue)| QueueExtend {
                id,
                timeout_ms,
                delivery_id,
                queue,
            }
            .into()
        ),
    ]
}

fn body() -> impl Strategy<Value = FrameBody> {
    prop_oneof![handshake_body(), session_body(), hub_body()]
}

fn frame() -> impl Strategy<Value = Frame> {
    (body(), any::<u8>(), prop::option::of(any::<u32>())).prop_map(|(body, channel, seq)| Frame {
        channel,
        seq,
        body,
    })
}

fn emit(frame: &Frame) -> Bytes {
    let mut out = vec![0u8; frame.encoded_len()];
    assert_eq!(frame.emit(&mut out).unwrap(), out.len());
    Bytes::from(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn frame_body_round_trips(f in frame()) {
        let bytes = emit(&f);
        let parsed = Frame::parse(bytes.clone()).unwrap();
        prop_assert_eq!(&parsed, &f);
        prop_assert_eq!(emit(&parsed), bytes);
    }

    #[test]
    fn stream_frame_round_trips(f in frame()) {
        let mut out = BytesMut::new();
        encode_stream_frame_into(&f, &mut out).unwrap();
        prop_assert_eq!(decode_stream_frame(&out, DEFAULT_MAX_FRAME_LEN).unwrap(), f);
    }

    #[test]
    fn a_stream_of_frames_survives_any_split(
        frames in prop::collection::vec(frame(), 1..8),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut wire = BytesMut::new();
        for f in &frames {
            encode_stream_frame_into(f, &mut wire).unwrap();
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.push(wire.len());
        cuts.sort_unstable();
        let mut deframer = StreamDeframer::new(DEFAULT_MAX_FRAME_LEN);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut at = 0;
        for cut in cuts {
            buf.extend_from_slice(&wire[at..cut]);
            at = cut;
            while let Some(body) = deframer.decode(&mut buf).unwrap() {
                got.push(Frame::parse(body).unwrap());
            }
        }
        prop_assert_eq!(got, frames);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn datagrams_round_trip(
        cid in any::<u64>(),
        pn in any::<u32>(),
        ack in prop::option::of((any::<u32>(), any::<u16>(), any::<u64>())),
        frames in prop::collection::vec(frame(), 0..6),
    ) {
        prop_assume!(ack.is_some() || !frames.is_empty());
        let header = PacketHeader {
            connection_id: cid,
            packet_number: pn,
            ack: ack.map(|(largest, delay_us, bits)| AckBlock { largest, delay_us, bits }),
        };
        let mut buf = vec![0u8; 65_507];
        let mut b = DatagramBuilder::new(&mut buf, &header).unwrap();
        for f in &frames {
            prop_assert!(b.push(f).unwrap());
        }
        let n = b.finish().unwrap();
        let d = Datagram::parse(Bytes::copy_from_slice(&buf[..n])).unwrap();
        prop_assert_eq!(d.header, header);
        let got: Vec<Frame> = d.frames().map(|b| Frame::parse(b).unwrap()).collect();
        prop_assert_eq!(got, frames);
    }

    /// Random bytes: whatever is accepted is canonical (re-emits to itself), and nothing panics.
    #[test]
    fn accepted_random_bodies_are_canonical(kind in any::<u8>(), flags in any::<u8>(), rest in bytes(80)) {
        let mut raw = vec![kind, flags, 0];
        raw.extend_from_slice(&rest);
        let parsed = Frame::parse(Bytes::from(raw.clone()));
        if let Ok(f) = parsed {
            if f.body.kind() == FrameKind::Discover {
                // A Discover's padding is read for its length, not its values (section 4.12):
                // it is written back as zeros.
                let nonce_at = 3 + if f.seq.is_some() { 4 } else { 0 };
                raw[nonce_at + 8..].fill(0);
            }
            prop_assert_eq!(emit(&f), Bytes::from(raw));
        }
    }

    /// Mutated valid frames: the harness shared with the fuzz targets must hold.
    #[test]
    fn mutated_streams_never_break_the_harness(
        frames in prop::collection::vec(frame(), 1..4),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        chunk in any::<u8>(),
    ) {
        let mut wire = BytesMut::new();
        for f in &frames {
            encode_stream_frame_into(f, &mut wire).unwrap();
        }
        let mut data = vec![chunk];
        data.extend_from_slice(&wire);
        for (i, x) in flips {
            let at = i.index(data.len());
            data[at] ^= x;
        }
        framewire_protocol::harness::stream(&data);
    }

    #[test]
    fn random_datagrams_never_break_the_harness(mut data in prop::collection::vec(any::<u8>(), 0..200)) {
        framewire_protocol::harness::datagram(&data);
        // And the same bytes behind a valid magic and version, to get past the first checks.
        if data.len() >= 3 {
            data[0] = b'F';
            data[1] = b'W';
            data[2] = 1;
        }
        framewire_protocol::harness::datagram(&data);
        // And with a correct CRC, so the frame region and the frame parsers see random bytes too.
        if data.len() >= 4 {
            let at = data.len() - 4;
            let crc = framewire_protocol::wire::crc32(&data[..at]);
            data[at..].copy_from_slice(&crc.to_be_bytes());
        }
        framewire_protocol::harness::datagram(&data);
    }

    #[test]
    fn last_wills_round_trip_through_a_hello(
        retain in any::<bool>(),
        channel in any::<u8>(),
        topic in "[a-z0-9/]{1,24}",
        payload in bytes(64),
    ) {
        let will = framewire_protocol::wire::LastWill {
            retain,
            channel,
            topic: framewire_protocol::wire::Text::from(topic.as_str()),
            payload,
        };
        let options = HelloOptions::builder().last_will(&will).build().unwrap();
        let parsed = HelloOptions::parse(Bytes::copy_from_slice(options.as_bytes())).unwrap();
        prop_assert_eq!(parsed.last_will(), Some(will));
    }

    #[test]
    fn random_last_will_values_are_an_error_or_a_will_never_a_panic(
        value in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        if let Ok(w) = framewire_protocol::wire::LastWill::parse(Bytes::from(value.clone())) {
            prop_assert_eq!(w.encode().unwrap(), value);
        }
    }
}
