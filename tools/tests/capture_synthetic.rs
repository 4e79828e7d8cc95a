//! Captures built here, packet by packet, for the cases real traffic seldom shows on demand:
//! out-of-order and retransmitted TCP segments, a connection captured mid-stream, packets cut by
//! the snap length, IPv6, VLAN tags, Linux cooked and BSD loopback links, pcapng with two
//! interfaces and nanosecond timestamps, and UDP datagrams. Each is read back through
//! `framewire_tools::capture` and, for one, through `framewire inspect`.

mod common;

use std::borrow::Cow;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use etherparse::PacketBuilder;
use framewire_protocol::wire::{
    Data, DatagramBuilder, Frame, PacketHeader, Publish, Request, Response, Status, Subscribe,
    Text, encode_stream_frame_into,
};
use framewire_tools::capture::{
    Capture, DataLink, Direction, Inspection, Inspector, Seen, read_capture,
};
use pcap_file::TsResolution;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};

const PORT: u16 = 7400;

#[derive(Clone, Copy)]
enum Link {
    Ethernet,
    EthernetVlan,
    Sll2,
    Null,
    Raw,
}

#[derive(Clone, Copy)]
struct Ends {
    client: ([u8; 16], u16),
    server: ([u8; 16], u16),
    v6: bool,
}

fn v4(a: [u8; 4], port: u16) -> ([u8; 16], u16) {
    let mut full = [0; 16];
    full[..4].copy_from_slice(&a);
    (full, port)
}

const V4: Ends = Ends {
    client: ([127, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 50_000),
    server: ([127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], PORT),
    v6: false,
};

const V6: Ends = Ends {
    client: ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 50_001),
    server: ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], PORT),
    v6: true,
};

enum L4<'a> {
    Tcp { seq: u32, syn: bool, fin: bool },
    Udp(&'a [u8]),
}

/// One packet from `from_client`'s side, with its link header.
fn packet(link: Link, ends: Ends, from_client: bool, l4: &L4, payload: &[u8]) -> Vec<u8> {
    let (src, dst) = if from_client {
        (ends.client, ends.server)
    } else {
        (ends.server, ends.client)
    };
    let ip = if ends.v6 {
        PacketBuilder::ipv6(src.0, dst.0, 64)
    } else {
        let s: [u8; 4] = src.0[..4].try_into().unwrap();
        let d: [u8; 4] = dst.0[..4].try_into().unwrap();
        PacketBuilder::ipv4(s, d, 64)
    };
    let mut body = Vec::new();
    match l4 {
        L4::Tcp { seq, syn, fin } => {
            let mut b = ip.tcp(src.1, dst.1, *seq, 65_000);
            if *syn {
                b = b.syn();
            }
            if *fin {
                b = b.fin();
            }
            b.write(&mut body, payload).unwrap();
        }
        L4::Udp(data) => ip.udp(src.1, dst.1).write(&mut body, data).unwrap(),
    }
    let ether_type: u16 = if ends.v6 { 0x86dd } else { 0x0800 };
    let mut out = Vec::new();
    match link {
        Link::Ethernet | Link::EthernetVlan => {
            out.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
            if matches!(link, Link::EthernetVlan) {
                out.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a]);
            }
            out.extend_from_slice(&ether_type.to_be_bytes());
        }
        Link::Sll2 => {
            out.extend_from_slice(&ether_type.to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]);
        }
        Link::Null => {
            let family: u32 = if ends.v6 { 30 } else { 2 };
            out.extend_from_slice(&family.to_ne_bytes());
        }
        Link::Raw => {}
    }
    out.extend_from_slice(&body);
    out
}

fn stream(frames: &[Frame]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    for f in frames {
        encode_stream_frame_into(f, &mut buf).unwrap();
    }
    buf.to_vec()
}

fn client_frames() -> Vec<Frame> {
    vec![
        Frame::new(Subscribe {
            id: 1,
            filter: Text::from("sensors/#"),
        }),
        Frame::new(Publish {
            retain: false,
            id: 2,
            topic: Text::from("sensors/a/temp"),
            payload: Bytes::from_static(b"21.5"),
        }),
        Frame::new(Request {
            id: 3,
            timeout_ms: 1000,
            target: Text::from("sys.ping"),
            payload: Bytes::new(),
        }),
        Frame::new(Data {
            payload: Bytes::from(vec![0x5a; 900]),
        })
        .on_channel(1),
        Frame::new(Publish {
            retain: true,
            id: 4,
            topic: Text::from("sensors/b/online"),
            payload: Bytes::from_static(b"1"),
        }),
    ]
}

fn server_frames() -> Vec<Frame> {
    (1..=4)
        .map(|id| {
            Frame::new(Response {
                id,
                status: Status::OK,
                payload: Bytes::new(),
            })
        })
        .collect()
}

fn inspect(capture: &Capture) -> Inspection {
    let mut inspector = Inspector::new(PORT, 65_536);
    for p in &capture.packets {
        inspector.packet(p);
    }
    inspector.finish()
}

fn frames(inspection: &Inspection, connection: usize, direction: Direction) -> Vec<Frame> {
    inspection
        .records
        .iter()
        .filter(|r| r.connection == connection && r.direction == direction)
        .filter_map(|r| match &r.what {
            Seen::Frame { frame, .. } => Some(frame.clone()),
            _ => None,
        })
        .collect()
}

/// (time in µs, link bytes) into a microsecond pcap file.
fn pcap(link: DataLink, snaplen: u32, packets: &[(u64, Vec<u8>, u32)]) -> Vec<u8> {
    let header = PcapHeader {
        datalink: link,
        snaplen,
        ts_resolution: TsResolution::MicroSecond,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (us, data, orig_len) in packets {
        w.write_packet(&PcapPacket::new(
            Duration::from_micros(*us),
            *orig_len,
            data,
        ))
        .unwrap();
    }
    w.into_writer()
}

/// A whole TCP connection: handshake, the client's stream in segments (out of order, one
/// retransmitted over a neighbour), the server's replies, FINs.
fn tcp_conversation(link: Link, ends: Ends, t0: u64) -> Vec<(u64, Vec<u8>, u32)> {
    let up = stream(&client_frames());
    let down = stream(&server_frames());
    let (cisn, sisn) = (u32::MAX - 40, 7_000_000);
    let mut out = Vec::new();
    let mut t = t0;
    let mut push = |from_client: bool, l4: L4, payload: &[u8]| {
        let p = packet(link, ends, from_client, &l4, payload);
        let len = p.len() as u32;
        out.push((t, p, len));
        t += 10;
    };
    push(
        true,
        L4::Tcp {
            seq: cisn,
            syn: true,
            fin: false,
        },
        b"",
    );
    push(
        false,
        L4::Tcp {
            seq: sisn,
            syn: true,
            fin: false,
        },
        b"",
    );
    // Client segments of 100 bytes, sent 0, 2, 1, 1 again (overlapping 2), 3, 5, 4, ...
    let seg: Vec<(usize, usize)> = (0..up.len())
        .step_by(100)
        .map(|s| (s, (s + 100).min(up.len())))
        .collect();
    let mut order: Vec<(usize, usize)> = Vec::new();
    for pair in seg.chunks(2) {
        order.extend(pair.iter().rev().copied());
    }
    order.insert(3, (seg[1].0, seg[2].1.min(up.len())));
    for (s, e) in order {
        let seq = cisn.wrapping_add(1).wrapping_add(s as u32);
        push(
            true,
            L4::Tcp {
                seq,
                syn: false,
                fin: false,
            },
            &up[s..e],
        );
    }
    for (i, chunk) in down.chunks(30).enumerate() {
        let seq = sisn + 1 + (i * 30) as u32;
        push(
            false,
            L4::Tcp {
                seq,
                syn: false,
                fin: false,
            },
            chunk,
        );
    }
    let cend = cisn.wrapping_add(1).wrapping_add(up.len() as u32);
    push(
        true,
        L4::Tcp {
            seq: cend,
            syn: false,
            fin: true,
        },
        b"",
    );
    let send = sisn + 1 + down.len() as u32;
    push(
        false,
        L4::Tcp {
            seq: send,
            syn: false,
            fin: true,
        },
        b"",
    );
    out
}

#[test]
fn tcp_out_of_order_retransmitted_and_wrapping_over_ethernet_with_a_vlan_tag() {
    let file = pcap(
        DataLink::ETHERNET,
        65_535,
        &tcp_conversation(Link::EthernetVlan, V4, 1_000_000),
    );
    let capture = read_capture(&file).unwrap();
    assert_eq!(capture.damaged, None);
    let inspection = inspect(&capture);
    assert_eq!(inspection.connections.len(), 1);
    assert!(inspection.connections[0].from_start);
    assert_eq!(inspection.connections[0].server.port(), PORT);
    assert_eq!(frames(&inspection, 0, Direction::ToServer), client_frames());
    assert_eq!(frames(&inspection, 0, Direction::ToClient), server_frames());
    let s = &inspection.summary;
    assert_eq!((s.bad_frames, s.skipped_bytes, s.missing_bytes), (0, 0, 0));
    assert_eq!(s.frames_by_kind["Publish"], 2);
    assert_eq!(s.frames_by_kind["Response"], 4);
    assert!(inspection.records[0].time >= Duration::from_secs(1));
}

#[test]
fn pcapng_with_two_interfaces_nanosecond_times_ipv6_and_a_mid_stream_start() {
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    for link in [DataLink::ETHERNET, DataLink::LINUX_SLL2] {
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: link,
            snaplen: 0,
            options: vec![InterfaceDescriptionOption::IfTsResol(9)],
        })
        .unwrap();
    }
    let mut write = |interface_id: u32, ns: u64, data: Vec<u8>| {
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id,
            timestamp: Duration::from_nanos(ns),
            original_len: data.len() as u32,
            data: Cow::Owned(data),
            options: vec![],
        })
        .unwrap();
    };
    // Interface 0: a whole IPv4 connection.
    for (us, data, _) in tcp_conversation(Link::Ethernet, V4, 5) {
        write(0, us * 1000, data);
    }
    // Interface 1 (Linux cooked v2, IPv6): a connection captured from the middle of frame 1.
    let up = stream(&client_frames());
    let cut = stream(&client_frames()[..1]).len() + 7;
    let base = 1_000_000u32;
    for (i, chunk) in up[cut..].chunks(64).enumerate() {
        let seq = base + (cut + i * 64) as u32;
        let tcp = L4::Tcp {
            seq,
            syn: false,
            fin: false,
        };
        write(
            1,
            2_000_000_123 + i as u64,
            packet(Link::Sll2, V6, true, &tcp, chunk),
        );
    }
    let file = w.into_inner();
    let capture = read_capture(&file).unwrap();
    assert_eq!(capture.damaged, None);
    assert_eq!(capture.packets[0].link, DataLink::ETHERNET);
    assert_eq!(capture.packets.last().unwrap().link, DataLink::LINUX_SLL2);
    let first_cooked = capture
        .packets
        .iter()
        .find(|p| p.link == DataLink::LINUX_SLL2)
        .unwrap();
    assert_eq!(first_cooked.time, Duration::new(2, 123), "nanoseconds kept");
    assert_eq!(capture.packets[0].time, Duration::from_micros(5));
    let inspection = inspect(&capture);
    assert_eq!(inspection.connections.len(), 2);
    assert!(inspection.connections[1].client.is_ipv6());
    assert!(!inspection.connections[1].from_start);
    assert_eq!(frames(&inspection, 0, Direction::ToServer), client_frames());
    assert_eq!(
        frames(&inspection, 1, Direction::ToServer),
        client_frames()[2..],
        "the frame cut by the capture's start is skipped"
    );
    assert!(inspection.summary.skipped_bytes > 0);
    assert_eq!(inspection.summary.bad_frames, 0);
}

#[test]
fn packets_cut_by_the_snap_length_lose_only_their_frames() {
    let snaplen = 120;
    let mut packets = tcp_conversation(Link::Raw, V4, 0);
    for p in &mut packets {
        p.1.truncate(snaplen);
    }
    let file = pcap(DataLink::RAW, snaplen as u32, &packets);
    let capture = read_capture(&file).unwrap();
    assert_eq!(capture.damaged, None);
    let inspection = inspect(&capture);
    let s = &inspection.summary;
    assert!(s.cut_packets > 0, "{s:?}");
    assert!(s.missing_bytes > 0, "{s:?}");
    let got = frames(&inspection, 0, Direction::ToServer);
    // 120 bytes less the 20-byte IP and 20-byte TCP headers leave 80 of each 100-byte segment:
    // Subscribe and Publish fit in the first 80; Request spans the first hole and Data several;
    // the last Publish is found again after them.
    let all = client_frames();
    assert_eq!(got, vec![all[0].clone(), all[1].clone(), all[4].clone()]);
    assert!(frames(&inspection, 0, Direction::ToClient).len() == server_frames().len());
}

#[test]
fn udp_datagrams_over_bsd_loopback_and_other_traffic_counted() {
    let mut packets = Vec::new();
    for (n, frame) in client_frames().into_iter().take(3).enumerate() {
        let mut buf = vec![0u8; 1500];
        let header = PacketHeader {
            connection_id: 0x1234,
            packet_number: n as u32,
            ack: None,
        };
        let mut b = DatagramBuilder::new(&mut buf, &header).unwrap();
        assert!(b.push(&frame).unwrap());
        let len = b.finish().unwrap();
        let p = packet(Link::Null, V4, true, &L4::Udp(&buf[..len]), b"");
        let l = p.len() as u32;
        packets.push((n as u64, p, l));
    }
    // Not framewire, on the port; and something on another port.
    let junk = packet(Link::Null, V4, true, &L4::Udp(b"hello"), b"");
    let l = junk.len() as u32;
    packets.push((9, junk, l));
    let elsewhere = Ends {
        server: v4([127, 0, 0, 1], 53),
        ..V4
    };
    let dns = packet(Link::Null, elsewhere, true, &L4::Udp(b"dns?"), b"");
    let l = dns.len() as u32;
    packets.push((10, dns, l));
    let file = pcap(DataLink::NULL, 65_535, &packets);
    let inspection = inspect(&read_capture(&file).unwrap());
    assert_eq!(
        frames(&inspection, 0, Direction::ToServer),
        client_frames()[..3]
    );
    assert_eq!(inspection.summary.bad_frames, 1);
    assert_eq!(inspection.summary.other_packets, 1);
}

#[test]
fn framewire_inspect_prints_frames_and_a_summary() {
    let dir = std::env::temp_dir().join(format!("fw-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("conversation.pcap");
    std::fs::write(
        &path,
        pcap(
            DataLink::ETHERNET,
            65_535,
            &tcp_conversation(Link::Ethernet, V4, 0),
        ),
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["inspect", file];
        all.extend_from_slice(args);
        common::framewire(&all)
    };
    let (code, text, _) = run(&[]);
    assert_eq!(code, 0);
    assert!(text.contains("-> 127.0.0.1:7400  Publish ch 0"), "{text}");
    assert!(text.contains("\"sensors/a/temp\""), "{text}");
    assert!(text.contains("<- 127.0.0.1:7400  Response ch 0"), "{text}");
    assert!(
        text.contains("9 frames: Data 1, Publish 2, Request 1, Response 4, Subscribe 1"),
        "{text}"
    );
    let (code, json, _) = run(&["--json"]);
    assert_eq!(code, 0);
    assert!(
        json.contains("\"frame\":\"Request\",\"channel\":0"),
        "{json}"
    );
    assert!(json.contains("\"subject\":\"sys.ping\""), "{json}");
    assert!(json.contains("\"bad_frames\":0"), "{json}");
    // Another port finds nothing of framewire's.
    let (_, other, _) = run(&["--port", "9"]);
    assert!(other.contains("0 frames"), "{other}");
    std::fs::write(&path, b"not a capture").unwrap();
    let (code, _, err) = run(&[]);
    assert_eq!(code, 1);
    assert!(err.contains("not a pcap"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
