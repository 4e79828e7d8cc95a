//! One sample of every frame kind and of each datagram shape: the source of the hex test vectors in
//! docs/PROTOCOL.md (checked by `tests/spec_vectors.rs`), of the corruption tests, and of the fuzz
//! seed corpora. Not part of the public API.

use alloc::vec;
use alloc::vec::Vec;

use bytes::Bytes;

use crate::wire::{
    Ack, AckBlock, Challenge, ChannelKind, Close, CloseAck, Data, DatagramBuilder, Discover,
    ErrorFrame, Fragment, Frame, Hello, HelloOptions, Here, MAX_DATAGRAM_SIZE, Message, NodeCard,
    PacketHeader, Ping, Pong, Publish, QueueAck, QueueDelivery, QueueExtend, QueueFetch, QueueNack,
    QueuePush, Reason, Register, Reject, Request, Reset, Response, Status, Subscribe, Text,
    Unregister, Unsubscribe, Welcome,
};

/// A named sample frame.
#[derive(Debug, Clone)]
pub struct SampleFrame {
    /// The vector's name in docs/PROTOCOL.md.
    pub name: &'static str,
    /// The frame.
    pub frame: Frame,
}

/// A named sample datagram.
#[derive(Debug, Clone)]
pub struct SampleDatagram {
    /// The vector's name in docs/PROTOCOL.md.
    pub name: &'static str,
    /// Its packet header.
    pub header: PacketHeader,
    /// Whether it asks for an immediate ack (the `ACK_NOW` flag).
    pub ack_now: bool,
    /// Its frames, in order.
    pub frames: Vec<Frame>,
}

impl SampleDatagram {
    /// The datagram's bytes: its header, its frames, the `ACK_NOW` flag if set, and the CRC.
    ///
    /// # Panics
    /// If the frames do not fit one datagram (they do, for every sample).
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = vec![0u8; MAX_DATAGRAM_SIZE];
        let mut builder = DatagramBuilder::new(&mut buf, &self.header).expect("a header fits");
        for f in &self.frames {
            assert!(builder.push(f).expect("a valid frame"), "a sample fits");
        }
        if self.ack_now {
            builder.ask_ack_now();
        }
        let n = builder.finish().expect("a finished datagram");
        buf.truncate(n);
        buf
    }
}

fn b(s: &'static [u8]) -> Bytes {
    Bytes::from_static(s)
}

fn t(s: &'static str) -> Text {
    Text::from_static(s)
}

/// One frame of every kind, in kind order.
///
/// # Panics
/// Never: the Hello options are built from constants that fit.
#[allow(
    clippy::too_many_lines,
    reason = "a table with one entry per frame kind reads best as one list"
)]
pub fn frames() -> Vec<SampleFrame> {
    let hello_options = HelloOptions::builder()
        .client_name("fw-c")
        .channels(&[
            ChannelKind::UnreliableSequenced,
            ChannelKind::ReliableOrdered,
        ])
        .build()
        .expect("sample options fit");
    let resume_options = HelloOptions::builder()
        .resume_token(&[0x5e, 0x55, 0x10, 0x4e])
        .last_will(&crate::wire::LastWill {
            retain: true,
            channel: 0,
            topic: t("dev/7/on"),
            payload: b(b"0"),
        })
        .build()
        .expect("sample options fit");
    let s = |name, frame| SampleFrame { name, frame };
    vec![
        s(
            "hello",
            Frame::new(Hello {
                min_version: 1,
                max_version: 1,
                idle_timeout_ms: 15_000,
                max_frame_len: 65_536,
                nonce: 0x0123_4567_89ab_cdef,
                options: hello_options,
            }),
        ),
        s(
            "hello-resume",
            Frame::new(Hello {
                min_version: 1,
                max_version: 1,
                idle_timeout_ms: 0,
                max_frame_len: 65_536,
                nonce: 0,
                options: resume_options,
            }),
        ),
        s(
            "challenge",
            Frame::new(Challenge {
                nonce: 0x0123_4567_89ab_cdef,
                cookie: b(&[0xc0, 0x0c, 0x1e, 0x5a]),
            }),
        ),
        s(
            "discover",
            Frame::new(Discover {
                nonce: 0x0123_4567_89ab_cdef,
                padding: 4,
            }),
        ),
        s("here", Frame::new(here_sample())),
        s(
            "welcome",
            Frame::new(Welcome {
                resumed: true,
                version: 1,
                connection_id: 0x1122_3344_5566_7788,
                idle_timeout_ms: 10_000,
                max_frame_len: 65_536,
                heartbeat_interval_ms: 2_500,
                missed: 3,
                session_token: b(&[0x5e, 0x55, 0x10, 0x4e]),
            }),
        ),
        s(
            "reject",
            Frame::new(Reject {
                reason: Reason::UNSUPPORTED_VERSION,
                min_version: 1,
                max_version: 1,
                message: t("v1 only"),
            }),
        ),
        s(
            "close",
            Frame::new(Close {
                reason: Reason::GOING_AWAY,
                message: t("shutdown"),
            }),
        ),
        s("close-ack", Frame::new(CloseAck)),
        s(
            "ping",
            Frame::new(Ping {
                timestamp_us: 1_000_000,
            }),
        ),
        s(
            "pong",
            Frame::new(Pong {
                timestamp_us: 1_000_000,
            }),
        ),
        s("ack", Frame::new(Ack { through: 41 })),
        s(
            "reset",
            Frame::new(Reset {
                packet_number: 12,
                crc: 0x1234_5678,
            }),
        ),
        s(
            "fragment",
            Frame::new(Fragment {
                message_id: 9,
                index: 1,
                count: 3,
                data: b(b"middle"),
            })
            .on_channel(2),
        ),
        s(
            "data",
            Frame::new(Data {
                payload: b(b"hello"),
            })
            .on_channel(2),
        ),
        s(
            "data-seq",
            Frame::new(Data { payload: b(b"pos") })
                .on_channel(1)
                .with_seq(7),
        ),
        s(
            "error",
            Frame::new(ErrorFrame {
                reason: Reason::UNKNOWN_KIND,
                refused_kind: 0x7e,
                message: t("?"),
            }),
        ),
        s(
            "subscribe",
            Frame::new(Subscribe {
                id: 1,
                filter: t("room/+/pos"),
            }),
        ),
        s(
            "unsubscribe",
            Frame::new(Unsubscribe {
                id: 2,
                filter: t("room/#"),
            }),
        ),
        s(
            "publish",
            Frame::new(Publish {
                retain: true,
                id: 3,
                topic: t("dev/7/temp"),
                payload: b(b"21.5"),
            }),
        ),
        s(
            "message",
            Frame::new(Message {
                retained: false,
                number: None,
                topic: t("dev/7/temp"),
                payload: b(b"21.5"),
            })
            .on_channel(1),
        ),
        s(
            "message-numbered",
            Frame::new(Message {
                retained: false,
                number: Some(7),
                topic: t("dev/7/temp"),
                payload: b(b"21.5"),
            })
            .on_channel(1),
        ),
        s(
            "request",
            Frame::new(Request {
                id: 4,
                timeout_ms: 500,
                target: t("sys.ping"),
                payload: Bytes::new(),
            }),
        ),
        s(
            "response",
            Frame::new(Response {
                id: 4,
                status: Status::OK,
                payload: b(b"pong"),
            }),
        ),
        s(
            "register",
            Frame::new(Register {
                id: 5,
                service: t("lamp"),
            }),
        ),
        s(
            "unregister",
            Frame::new(Unregister {
                id: 6,
                service: t("lamp"),
            }),
        ),
        s(
            "queue-push",
            Frame::new(QueuePush {
                id: 7,
                queue: t("jobs"),
                payload: b(b"job1"),
            }),
        ),
        s(
            "queue-fetch",
            Frame::new(QueueFetch {
                id: 8,
                max: 10,
                wait_ms: 30_000,
                queue: t("jobs"),
            }),
        ),
        s(
            "queue-delivery",
            Frame::new(QueueDelivery {
                redelivered: true,
                id: 8,
                delivery_id: 77,
                queue: t("jobs"),
                payload: b(b"job1"),
            }),
        ),
        s(
            "queue-ack",
            Frame::new(QueueAck {
                id: 9,
                delivery_id: 77,
                queue: t("jobs"),
            }),
        ),
        s(
            "queue-nack",
            Frame::new(QueueNack {
                id: 10,
                delay_ms: 5000,
                delivery_id: 77,
                queue: t("jobs"),
            }),
        ),
        s(
            "queue-extend",
            Frame::new(QueueExtend {
                id: 11,
                timeout_ms: 60000,
                delivery_id: 77,
                queue: t("jobs"),
            }),
        ),
    ]
}

/// Datagram samples: one without an ack block carrying two coalesced frames, an ack-only one, and a
/// lone message that asks for an immediate ack.
pub fn datagrams() -> Vec<SampleDatagram> {
    vec![
        SampleDatagram {
            name: "udp-data",
            header: PacketHeader {
                connection_id: 0x1122_3344_5566_7788,
                packet_number: 5,
                ack: None,
            },
            ack_now: false,
            frames: vec![
                Frame::new(Data { payload: b(b"pos") })
                    .on_channel(1)
                    .with_seq(7),
                Frame::new(Ping {
                    timestamp_us: 1_000_000,
                }),
            ],
        },
        SampleDatagram {
            name: "udp-ack",
            header: PacketHeader {
                connection_id: 0x1122_3344_5566_7788,
                packet_number: 6,
                ack: Some(AckBlock {
                    largest: 100,
                    delay_us: 250,
                    bits: 0x0000_0000_0000_0005,
                }),
            },
            ack_now: false,
            frames: Vec::new(),
        },
        SampleDatagram {
            name: "udp-ack-now",
            header: PacketHeader {
                connection_id: 0x1122_3344_5566_7788,
                packet_number: 7,
                ack: Some(AckBlock {
                    largest: 101,
                    delay_us: 0,
                    bits: 0x0000_0000_0000_000b,
                }),
            },
            ack_now: true,
            frames: vec![Frame::new(Data { payload: b(b"go") }).with_seq(3)],
        },
        SampleDatagram {
            name: "udp-discover",
            header: PacketHeader {
                connection_id: 0,
                packet_number: 0,
                ack: None,
            },
            ack_now: false,
            frames: vec![Frame::new(Discover {
                nonce: 0x0123_4567_89ab_cdef,
                padding: 63,
            })],
        },
        SampleDatagram {
            name: "udp-here",
            header: PacketHeader {
                connection_id: 0,
                packet_number: 0,
                ack: None,
            },
            ack_now: false,
            frames: vec![Frame::new(here_sample())],
        },
    ]
}

/// The Here frame of the `here` vectors: node `edge-1`, TCP and UDP on every address at port 7400.
pub fn here_sample() -> Here {
    Here {
        nonce: 0x0123_4567_89ab_cdef,
        truncated: false,
        card: NodeCard {
            name: "edge-1".into(),
            addrs: vec![
                ("tcp", "0.0.0.0:7400".parse().expect("an address")),
                ("udp", "0.0.0.0:7400".parse().expect("an address")),
            ],
        },
    }
}

/// The inputs of the sealed-datagram vectors (docs/PROTOCOL.md section 8): a token's keys, and
/// the handshake a session's keys are derived from.
#[derive(Debug, Clone)]
pub struct SealSample {
    /// The keys the token carries.
    pub keys: crate::seal::TokenKeys,
    /// The session's connection id.
    pub connection_id: u64,
    /// The Hello's nonce.
    pub nonce: u64,
    /// The cookie the Hello echoed.
    pub cookie: Vec<u8>,
    /// The server key the token is signed and its keys sealed with.
    pub server_key: &'static [u8],
    /// The nonce the token's keys are sealed with.
    pub token_nonce: [u8; 24],
}

/// The sealed-datagram vectors' inputs: key bytes `00..1f` client to server and `20..3f` server to
/// client, the `udp-data` sample's connection id, nonce `0102030405060708`, cookie `c0..c7`.
pub fn seal_sample() -> SealSample {
    let mut keys = crate::seal::TokenKeys {
        client_to_server: [0; 32],
        server_to_client: [0; 32],
    };
    for i in 0..32u8 {
        keys.client_to_server[usize::from(i)] = i;
        keys.server_to_client[usize::from(i)] = 0x20 + i;
    }
    SealSample {
        keys,
        connection_id: 0x1122_3344_5566_7788,
        nonce: 0x0102_0304_0506_0708,
        cookie: (0xc0..=0xc7).collect(),
        server_key: b"framewire spec vector key, 32 B.",
        token_nonce: [0x24; 24],
    }
}

impl SealSample {
    /// The session keys of this handshake, for the server's side or the client's.
    pub fn session_keys(&self, server: bool) -> crate::seal::SessionKeys {
        crate::seal::SessionKeys::derive(
            &self.keys,
            self.connection_id,
            self.nonce,
            &self.cookie,
            server,
        )
    }

    /// The `udp-data` sample datagram as the client seals it: the `udp-data-sealed` vector.
    ///
    /// # Panics
    /// Never: the sample datagram is sealable.
    pub fn sealed_udp_data(&self) -> Vec<u8> {
        let mut buf = datagrams()[0].encode();
        let len = buf.len();
        buf.resize(len + crate::seal::SEAL_OVERHEAD, 0);
        let n = crate::seal::Sealer::new(&self.session_keys(false))
            .seal(&mut buf, len)
            .expect("the udp-data sample seals");
        buf.truncate(n);
        buf
    }

    /// A compact datagram of version 4 as the client seals it (docs/PROTOCOL.md section 2.5),
    /// the `compact-data-sealed` vector: connection id `01020304`, packet number 5 (one byte on
    /// the wire: nothing acknowledged yet), one Data `hi` on channel 0 with SEQ `00000102`.
    ///
    /// # Panics
    /// Never: the datagram fits and seals.
    pub fn sealed_compact_data(&self) -> Vec<u8> {
        let header = crate::wire::PacketHeader {
            connection_id: 0x0102_0304,
            packet_number: 5,
            ack: None,
        };
        let mut data = Frame::new(crate::wire::Data {
            payload: bytes::Bytes::from_static(b"hi"),
        });
        data.seq = Some(0x0102);
        let mut buf = vec![0u8; 64];
        let mut b = crate::wire::DatagramBuilder::new_compact(&mut buf[..48], &header, None)
            .expect("room for the header");
        b.for_sealing();
        assert!(b.push(&data).expect("a frame"), "the frame fits");
        let len = b.finish().expect("a frame in it");
        let n = crate::seal::Sealer::new(&self.session_keys(false))
            .seal_compact(&mut buf, len, 5)
            .expect("the datagram seals");
        buf.truncate(n);
        buf
    }
}

/// The claims of the token vector: `lamp-3`, expiring at 2,000,000,000, publishing to
/// `lamps/3/#`.
pub fn token_sample() -> crate::auth::ConnectToken {
    crate::auth::ConnectToken {
        client_id: t("lamp-3"),
        expires: 2_000_000_000,
        permissions: crate::auth::Permissions {
            publish: vec![t("lamps/3/#")],
            ..crate::auth::Permissions::default()
        },
    }
}

/// A client's Hello with `padding` bytes of padding (0: none), for tests that speak to a server
/// over raw sockets.
///
/// # Panics
/// If the padding is too large for an option.
pub fn hello(nonce: u64, padding: usize) -> Frame {
    let options = if padding == 0 {
        HelloOptions::new()
    } else {
        HelloOptions::builder()
            .padding(padding)
            .build()
            .expect("padding fits an option")
    };
    Frame::new(Hello {
        min_version: 1,
        max_version: 1,
        idle_timeout_ms: 0,
        max_frame_len: 65_536,
        nonce,
        options,
    })
}

/// One datagram (no ack block) carrying `frames`, zero-filled up to `pad_to` bytes if it is
/// shorter (a damaged tail, for tests of what a receiver drops).
///
/// # Panics
/// If the frames do not fit one datagram.
pub fn datagram(
    connection_id: u64,
    packet_number: u32,
    frames: &[Frame],
    pad_to: usize,
) -> Vec<u8> {
    let mut buf = vec![0u8; 65_536];
    let header = PacketHeader {
        connection_id,
        packet_number,
        ack: None,
    };
    let mut b = crate::wire::DatagramBuilder::new(&mut buf, &header).expect("room for a header");
    for f in frames {
        assert!(b.push(f).expect("an encodable frame"), "the frames fit");
    }
    let n = b.finish().expect("a finished datagram");
    buf.truncate(n.max(pad_to));
    buf
}
