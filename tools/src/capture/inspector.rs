//! A whole capture, connection by connection: which packets are framewire's (by port), each TCP
//! direction reassembled and cut into frames, each UDP datagram opened (a packet holding a run of
//! them split first), and a tally of it all.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::wire::{Datagram, Frame, FrameBody, is_compact};

use super::{
    CapturedPacket, CompactFlow, FrameScanner, NotASegment, ScanEvent, StreamPiece, TcpReassembler,
    Transport, decode_packet, sealed_headers, split_run,
};

/// Out-of-order bytes held per TCP direction before a hole is given up.
const MAX_HELD_PER_DIRECTION: usize = 4 << 20;

/// Which way a frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

/// How a connection was carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// A TCP connection.
    Tcp,
    /// UDP datagrams from one client address.
    Udp,
}

/// One captured conversation between a client and the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// TCP or UDP.
    pub carrier: Carrier,
    /// The client's address.
    pub client: SocketAddr,
    /// The server's address.
    pub server: SocketAddr,
    /// Whether its start was captured (TCP: the SYN; UDP: always).
    pub from_start: bool,
}

/// What was seen, in the order it was understood.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The time of the packet that completed it.
    pub time: Duration,
    /// Index into [`Inspection::connections`].
    pub connection: usize,
    /// Which way.
    pub direction: Direction,
    /// What.
    pub what: Seen,
}

/// The substance of a [`Record`].
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// A frame that verified and parsed; `wire_len` counts its framing (TCP) or is its share of
    /// the datagram (UDP: the frame's encoded length).
    Frame {
        /// The frame.
        frame: Frame,
        /// Its bytes on the wire.
        wire_len: usize,
    },
    /// Bytes that should have been a frame, or a datagram that is not framewire's.
    Bad(String),
    /// Bytes passed over to find the next frame.
    Skipped(u64),
    /// Bytes missing from the capture.
    Gap(u64),
    /// The sender closed its side of the TCP connection (a FIN): it will send nothing more.
    End,
    /// A sealed datagram (docs/PROTOCOL.md sections 2.3 and 2.5): its header, for the frames
    /// inside it are readable only with its session's keys.
    Sealed {
        /// The session it belongs to.
        connection_id: u64,
        /// Its packet number as the wire carries it (a compact datagram's low bits).
        packet_number: u32,
        /// Its bytes.
        len: usize,
    },
    /// One UDP packet held a run of datagrams sent in one call (segmentation offload, as a capture
    /// on the sending host records it): the datagrams' frames follow this record.
    Run {
        /// How many datagrams.
        datagrams: usize,
        /// The length of each but the last (the last may be shorter).
        segment_len: usize,
    },
}

/// Counts over the whole capture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Packets in the file.
    pub packets: u64,
    /// Packets cut short by the capture's snap length.
    pub cut_packets: u64,
    /// Packets that are not TCP or UDP to or from the port.
    pub other_packets: u64,
    /// Packets whose headers could not be read (or of an unknown link type).
    pub undecodable_packets: u64,
    /// Frames, by kind.
    pub frames_by_kind: BTreeMap<String, u64>,
    /// Frames that failed to verify, and datagrams that are not framewire's.
    pub bad_frames: u64,
    /// Bytes passed over while finding frames.
    pub skipped_bytes: u64,
    /// Bytes the capture missed.
    pub missing_bytes: u64,
    /// UDP packets that each held a run of datagrams (segmentation offload), split into them.
    pub runs: u64,
    /// Sealed datagrams: their frames are unreadable without the session's keys.
    pub sealed_datagrams: u64,
}

/// The result of inspecting a capture.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inspection {
    /// Every connection, in the order first seen.
    pub connections: Vec<Connection>,
    /// Everything seen.
    pub records: Vec<Record>,
    /// The tally.
    pub summary: Summary,
}

impl Inspection {
    /// The kinds of the frames seen going `direction`, in order.
    pub fn frame_kinds(&self, direction: Direction) -> Vec<String> {
        self.records
            .iter()
            .filter(|r| r.direction == direction)
            .filter_map(|r| match &r.what {
                Seen::Frame { frame, .. } => Some(frame.kind().to_string()),
                _ => None,
            })
            .collect()
    }
}

#[derive(Debug)]
struct TcpDirection {
    reassembler: TcpReassembler,
    scanner: Option<FrameScanner>,
    ended: bool,
}

impl TcpDirection {
    fn new() -> Self {
        Self {
            reassembler: TcpReassembler::new(MAX_HELD_PER_DIRECTION),
            scanner: None,
            ended: false,
        }
    }
}

#[derive(Debug)]
struct TcpState {
    index: usize,
    to_server: TcpDirection,
    to_client: TcpDirection,
}

/// Inspects a capture's packets for framewire traffic on `port`.
#[derive(Debug)]
pub struct Inspector {
    port: u16,
    max_frame_len: u32,
    tcp: HashMap<(SocketAddr, SocketAddr), TcpState>,
    udp: HashMap<(SocketAddr, SocketAddr), usize>,
    /// What each UDP connection's compact datagrams let the reader restore, by connection.
    compact: HashMap<usize, CompactFlow>,
    out: Inspection,
    last_time: Duration,
}

impl Inspector {
    /// An inspector for the server port `port`, accepting frames up to `max_frame_len`.
    pub fn new(port: u16, max_frame_len: u32) -> Self {
        Self {
            port,
            max_frame_len,
            tcp: HashMap::new(),
            udp: HashMap::new(),
            compact: HashMap::new(),
            out: Inspection::default(),
            last_time: Duration::ZERO,
        }
    }

    /// Takes the next packet of the capture.
    pub fn packet(&mut self, packet: &CapturedPacket) {
        let summary = &mut self.out.summary;
        summary.packets += 1;
        summary.cut_packets += u64::from(packet.cut);
        self.last_time = packet.time;
        let segment = match decode_packet(packet.link, &packet.data) {
            Ok(s) => s,
            Err(NotASegment::Malformed | NotASegment::UnknownLink) => {
                summary.undecodable_packets += 1;
                return;
            }
            Err(NotASegment::NotIp | NotASegment::NotTcpOrUdp) => {
                summary.other_packets += 1;
                return;
            }
        };
        let (direction, client, server) = if segment.dst.port() == self.port {
            (Direction::ToServer, segment.src, segment.dst)
        } else if segment.src.port() == self.port {
            (Direction::ToClient, segment.dst, segment.src)
        } else {
            summary.other_packets += 1;
            return;
        };
        match segment.transport {
            Transport::Tcp {
                seq,
                syn,
                fin,
                payload,
            } => self.tcp_segment(client, server, direction, seq, syn, fin, payload),
            Transport::Udp(payload) => self.udp_datagram(client, server, direction, payload),
        }
    }

    /// The records made since they were last cleared (or since the start), in order. Handing them
    /// on and clearing them as the capture is read keeps memory to what reassembly holds, however
    /// long the capture.
    pub fn records(&self) -> &[Record] {
        &self.out.records
    }

    /// Forgets the records made so far (keeping their buffer for the next ones).
    pub fn clear_records(&mut self) {
        self.out.records.clear();
    }

    /// The connections seen so far (records name them by index).
    pub fn connections(&self) -> &[Connection] {
        &self.out.connections
    }

    /// The capture has ended: whatever is still held is handed on, and the result returned (the
    /// records not yet taken).
    pub fn finish(mut self) -> Inspection {
        let mut states: Vec<TcpState> = self.tcp.drain().map(|(_, s)| s).collect();
        states.sort_by_key(|s| s.index);
        for mut state in states {
            let index = state.index;
            self.end_direction(index, Direction::ToServer, &mut state.to_server);
            self.end_direction(index, Direction::ToClient, &mut state.to_client);
        }
        self.out
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp_segment(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        direction: Direction,
        seq: u32,
        syn: bool,
        fin: bool,
        payload: &[u8],
    ) {
        let key = (client, server);
        // A client SYN on a pair already carrying data is the port reused by a new connection.
        let reused = syn
            && direction == Direction::ToServer
            && self
                .tcp
                .get(&key)
                .is_some_and(|s| s.to_server.reassembler.offset() > 0);
        if reused && let Some(mut old) = self.tcp.remove(&key) {
            self.end_direction(old.index, Direction::ToServer, &mut old.to_server);
            self.end_direction(old.index, Direction::ToClient, &mut old.to_client);
        }
        if !self.tcp.contains_key(&key) {
            let index = self.out.connections.len();
            self.out.connections.push(Connection {
                carrier: Carrier::Tcp,
                client,
                server,
                from_start: syn,
            });
            self.tcp.insert(
                key,
                TcpState {
                    index,
                    to_server: TcpDirection::new(),
                    to_client: TcpDirection::new(),
                },
            );
        }
        let Some(mut state) = self.tcp.remove(&key) else {
            return;
        };
        let index = state.index;
        let half = match direction {
            Direction::ToServer => &mut state.to_server,
            Direction::ToClient => &mut state.to_client,
        };
        let mut pieces = Vec::new();
        half.reassembler.segment(seq, syn, payload, &mut pieces);
        self.scan(index, direction, half, pieces);
        if fin && !half.ended {
            self.end_direction(index, direction, half);
            self.record(index, direction, Seen::End);
        }
        self.tcp.insert(key, state);
    }

    fn end_direction(&mut self, index: usize, direction: Direction, half: &mut TcpDirection) {
        if half.ended {
            return;
        }
        half.ended = true;
        let mut pieces = Vec::new();
        half.reassembler.finish(&mut pieces);
        self.scan(index, direction, half, pieces);
        if let Some(scanner) = half.scanner.as_mut() {
            let mut events = Vec::new();
            scanner.finish(&mut events);
            self.record_scan(index, direction, events);
        }
    }

    fn scan(
        &mut self,
        index: usize,
        direction: Direction,
        half: &mut TcpDirection,
        pieces: Vec<StreamPiece>,
    ) {
        if pieces.is_empty() {
            return;
        }
        let from_start = half.reassembler.from_syn();
        let scanner = half
            .scanner
            .get_or_insert_with(|| FrameScanner::new(self.max_frame_len, from_start));
        let mut events = Vec::new();
        for piece in pieces {
            scanner.push(piece, &mut events);
        }
        self.record_scan(index, direction, events);
    }

    fn record_scan(&mut self, connection: usize, direction: Direction, events: Vec<ScanEvent>) {
        for event in events {
            let what = match event {
                ScanEvent::Frame {
                    frame, wire_len, ..
                } => Seen::Frame { frame, wire_len },
                ScanEvent::BadFrame { error, .. } => Seen::Bad(error.to_string()),
                ScanEvent::Skipped { len, .. } => Seen::Skipped(len),
                ScanEvent::Gap { len, .. } => Seen::Gap(len),
            };
            self.record(connection, direction, what);
        }
    }

    fn udp_datagram(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        direction: Direction,
        payload: &[u8],
    ) {
        let next = self.out.connections.len();
        let index = *self.udp.entry((client, server)).or_insert(next);
        if index == next {
            self.out.connections.push(Connection {
                carrier: Carrier::Udp,
                client,
                server,
                from_start: true,
            });
        }
        if let Some(sealed) = sealed_headers(payload) {
            if sealed.len() > 1 {
                let what = Seen::Run {
                    datagrams: sealed.len(),
                    segment_len: sealed[0].2,
                };
                self.record(index, direction, what);
            }
            for (connection_id, packet_number, len) in sealed {
                let what = Seen::Sealed {
                    connection_id,
                    packet_number,
                    len,
                };
                self.record(index, direction, what);
            }
            return;
        }
        let payload = Bytes::copy_from_slice(payload);
        if is_compact(&payload) {
            self.compact_datagram(index, direction, &payload);
            return;
        }
        match Datagram::parse(payload.clone()) {
            Ok(datagram) => self.datagram_frames(index, direction, &datagram),
            Err(e) => match split_run(&payload) {
                Some(run) => {
                    self.record(
                        index,
                        direction,
                        Seen::Run {
                            datagrams: run.datagrams.len(),
                            segment_len: run.segment_len,
                        },
                    );
                    for datagram in &run.datagrams {
                        self.datagram_frames(index, direction, datagram);
                    }
                }
                None => self.record(index, direction, Seen::Bad(format!("datagram: {e}"))),
            },
        }
    }

    /// A compact datagram (docs/PROTOCOL.md section 2.4), or a run of them.
    fn compact_datagram(&mut self, index: usize, direction: Direction, payload: &Bytes) {
        let way = usize::from(direction == Direction::ToClient);
        let flow = self.compact.entry(index).or_default();
        let datagrams = match flow.open(way, payload) {
            Ok(d) => vec![d],
            Err(e) => {
                let Some(run) = flow.split_run(way, payload) else {
                    match flow.open_unverified(way, payload) {
                        Some(d) => self.compact_frames(index, direction, way, &[d]),
                        None => self.record(index, direction, Seen::Bad(format!("datagram: {e}"))),
                    }
                    return;
                };
                let what = Seen::Run {
                    datagrams: run.datagrams.len(),
                    segment_len: run.segment_len,
                };
                self.record(index, direction, what);
                run.datagrams
            }
        };
        self.compact_frames(index, direction, way, &datagrams);
    }

    fn compact_frames(
        &mut self,
        index: usize,
        direction: Direction,
        way: usize,
        datagrams: &[Datagram],
    ) {
        for datagram in datagrams {
            for body in datagram.frames() {
                let wire_len = body.len();
                let parsed = self
                    .compact
                    .get_mut(&index)
                    .map(|flow| flow.frame(way, body));
                let what = match parsed {
                    Some(Ok(frame)) => Seen::Frame { frame, wire_len },
                    Some(Err(e)) => Seen::Bad(e.to_string()),
                    None => continue,
                };
                self.record(index, direction, what);
            }
        }
    }

    fn datagram_frames(&mut self, index: usize, direction: Direction, datagram: &Datagram) {
        for body in datagram.frames() {
            let wire_len = body.len();
            let what = match Frame::parse(body) {
                Ok(frame) => Seen::Frame { frame, wire_len },
                Err(e) => Seen::Bad(e.to_string()),
            };
            self.record(index, direction, what);
        }
    }

    fn record(&mut self, connection: usize, direction: Direction, what: Seen) {
        let summary = &mut self.out.summary;
        match &what {
            Seen::Frame { frame, .. } => {
                // A kind's name is allocated once, on its first frame, not for every frame.
                let name = frame.kind().name();
                if let Some(n) = summary.frames_by_kind.get_mut(name) {
                    *n += 1;
                } else {
                    summary.frames_by_kind.insert(name.to_string(), 1);
                }
            }
            Seen::Bad(_) => summary.bad_frames += 1,
            Seen::Skipped(n) => summary.skipped_bytes += n,
            Seen::Gap(n) => summary.missing_bytes += n,
            Seen::Run { .. } => summary.runs += 1,
            Seen::Sealed { .. } => summary.sealed_datagrams += 1,
            Seen::End => {}
        }
        self.out.records.push(Record {
            time: self.last_time,
            connection,
            direction,
            what,
        });
    }
}

/// The name a frame is about (topic, filter, target, service or queue), if it has one.
pub fn frame_subject(frame: &Frame) -> Option<&str> {
    Some(match &frame.body {
        FrameBody::Publish(f) => f.topic.as_str(),
        FrameBody::Message(f) => f.topic.as_str(),
        FrameBody::Subscribe(f) => f.filter.as_str(),
        FrameBody::Unsubscribe(f) => f.filter.as_str(),
        FrameBody::Request(f) => f.target.as_str(),
        FrameBody::Register(f) => f.service.as_str(),
        FrameBody::Unregister(f) => f.service.as_str(),
        FrameBody::QueuePush(f) => f.queue.as_str(),
        FrameBody::QueueFetch(f) => f.queue.as_str(),
        FrameBody::QueueDelivery(f) => f.queue.as_str(),
        FrameBody::QueueAck(f) => f.queue.as_str(),
        FrameBody::QueueNack(f) => f.queue.as_str(),
        FrameBody::QueueExtend(f) => f.queue.as_str(),
        _ => return None,
    })
}

/// The status or reason a frame carries, if it carries one.
pub fn frame_status(frame: &Frame) -> Option<String> {
    match &frame.body {
        FrameBody::Response(r) => Some(r.status.to_string()),
        FrameBody::Close(c) => Some(c.reason.to_string()),
        FrameBody::Reject(r) => Some(r.reason.to_string()),
        _ => None,
    }
}
