//! Settings of a session. Every limit of docs/PROTOCOL.md section 6.2 that is a local choice, and
//! every timer constant, lives here rather than in the logic (STYLE.md: no magic constants).

use alloc::vec::Vec;
use core::time::Duration;

use crate::wire::{
    ACK_BLOCK_LEN, CRC_LEN, ChannelKind, DEFAULT_DATAGRAM_SIZE, FRAME_LEN_PREFIX, HelloOptions,
    MAX_DATAGRAM_SIZE, MAX_FRAME_LEN_CEILING, MIN_AGREED_FRAME_LEN, PACKET_HEADER_LEN,
};

use super::outbox::FRAGMENT_HEAD_LEN;
use crate::seal::TokenKeys;

/// How a session behaves; both sides of a connection may use different ones.
#[derive(Debug, Clone)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent switches of one configuration, each documented; not a state machine"
)]
pub struct SessionConfig {
    /// The largest datagram sent (UDP payload bytes). Default 1200.
    pub datagram_size: usize,
    /// The largest frame length (a message's frame body without SEQ, plus 5: its `length` as a
    /// stream frame) this side offers in its handshake; the session then sends and accepts frames
    /// up to the limit both sides agreed (the smaller offer). Default 64 KiB.
    pub max_message_len: usize,
    /// Channel kinds by channel number; channel 0 and channels beyond the list are
    /// reliable-ordered. Default: 0 reliable-ordered, 1 reliable-unordered,
    /// 2 unreliable-sequenced, 3 unreliable.
    pub channels: Vec<ChannelKind>,
    /// The RTT assumed before the first sample. Default 100 ms.
    pub initial_rtt: Duration,
    /// The longest an ack is held back waiting for more to ack (a datagram that asks for an
    /// immediate ack, `ACK_NOW`, is not held). Default 25 ms, as QUIC's.
    pub max_ack_delay: Duration,
    /// Ack at once after this many ack-eliciting packets. Default 2.
    pub ack_frequency: u32,
    /// Offer (a client) or accept (a server) version 2 (and 3) for a plaintext UDP session: its
    /// datagrams in the compact form (docs/PROTOCOL.md section 2.4). Default true.
    pub compact_datagrams: bool,
    /// With `compact_datagrams`: offer (a client) or accept (a server) version 3, whose coalesced
    /// frames may share a header with the frame before them (section 2.4). Default true.
    pub shared_headers: bool,
    /// What `max_ack_delay` is in a session of compact datagrams, where the peer allows for
    /// this much (section 7a.2). Default 50 ms; more than that breaks the peer's timers.
    pub compact_max_ack_delay: Duration,
    /// What `ack_frequency` is in a session of compact datagrams. Default 4.
    pub compact_ack_frequency: u32,
    /// The retransmission timeout's floor. Default 10 ms.
    pub min_rto: Duration,
    /// The retransmission timeout's ceiling, backoff included. Default 2 s.
    pub max_rto: Duration,
    /// How long without hearing from the peer before it is declared dead. Default 15 s. The
    /// effective timeout is never below 3 times the current retransmission timeout.
    pub idle_timeout: Duration,
    /// How long without sending anything the peer must acknowledge before a Ping. Default 1 s.
    pub heartbeat_interval: Duration,
    /// Reliable messages per channel in flight (sender) and held out of order (receiver).
    /// Default 1024.
    pub reliable_window: u32,
    /// Bytes of reliable messages queued or in flight before `send` reports backpressure.
    /// Default 1 MiB.
    pub max_queued_bytes: usize,
    /// Unreliable messages queued per channel before the oldest is dropped. Default 256.
    pub max_unreliable_queued: usize,
    /// Bytes held for incomplete fragmented messages. Default 1 MiB.
    pub max_reassembly_bytes: usize,
    /// Fragmented messages under reassembly at once. Default 32.
    pub max_reassembly_messages: usize,
    /// How long an incomplete fragmented message is kept. Default 5 s.
    pub reassembly_timeout: Duration,
    /// The largest datagram sent twice when it carries reliable messages and nothing else is
    /// unacknowledged or queued: a lone message then survives one loss without waiting for a
    /// retransmission timeout, at the price of the copy. Streams of messages always have something
    /// in flight and are not copied. 0 turns this off. Default 300 bytes.
    pub lone_redundancy_max: usize,
    /// Seeds the session's random values (path-validation tokens). A server derives it per session
    /// from a secret; tests set it to replay a run exactly (STYLE.md 4). Default 0.
    pub seed: u64,
    /// How long a client tries to complete the handshake. Default 10 s.
    pub handshake_timeout: Duration,
    /// The congestion window at the start, in datagrams. Default 10.
    pub initial_window_datagrams: usize,
    /// The congestion window's floor, in datagrams. Default 2.
    pub min_window_datagrams: usize,
    /// Options a client adds to its Hello: a resume token, a last will, a name (section 4.1.1).
    /// Default none.
    pub hello_options: HelloOptions,
    /// A client's: the keys its connect token carries (docs/PROTOCOL.md section 2.3). With them
    /// the session is sealed from the Welcome on, and a server that answers in the clear is
    /// refused. Default none.
    pub seal_keys: Option<TokenKeys>,
    /// Keep a copy of every plain datagram a sealed session opens or seals, for
    /// [`Session::take_plaintext`](super::Session::take_plaintext): a server's packet capture
    /// records what was said, not the sealed bytes. Default off.
    pub tap_plaintext: bool,
    /// A server's: the session answers each Data frame itself (the server echoes Data on its
    /// channel, docs/PROTOCOL.md section 5.8) instead of handing it to the application, and counts
    /// it for `take_echoed` ([`StreamSession::take_echoed`](super::StreamSession::take_echoed),
    /// [`Session::take_echoed`](super::Session::take_echoed)). A stream session copies the frame's
    /// own bytes; a datagram session queues the Data back on its channel, the payload shared with
    /// the datagram it came in. The answer is the one the application would have sent, without
    /// an event or a trip through it; until the application says it has answered what it was
    /// handed (`resume_echo`), Data goes to it too. Default off.
    pub echo_data: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            datagram_size: DEFAULT_DATAGRAM_SIZE,
            max_message_len: 64 * 1024,
            channels: alloc::vec![
                ChannelKind::ReliableOrdered,
                ChannelKind::ReliableUnordered,
                ChannelKind::UnreliableSequenced,
                ChannelKind::Unreliable,
            ],
            initial_rtt: Duration::from_millis(100),
            max_ack_delay: Duration::from_millis(25),
            ack_frequency: 2,
            compact_datagrams: true,
            shared_headers: true,
            compact_max_ack_delay: COMPACT_MAX_ACK_DELAY,
            compact_ack_frequency: 4,
            min_rto: Duration::from_millis(10),
            max_rto: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(15),
            heartbeat_interval: Duration::from_secs(1),
            reliable_window: 1024,
            max_queued_bytes: 1 << 20,
            max_unreliable_queued: 256,
            max_reassembly_bytes: 1 << 20,
            max_reassembly_messages: 32,
            reassembly_timeout: Duration::from_secs(5),
            lone_redundancy_max: 300,
            seed: 0,
            handshake_timeout: Duration::from_secs(10),
            initial_window_datagrams: 10,
            min_window_datagrams: 2,
            hello_options: HelloOptions::new(),
            seal_keys: None,
            tap_plaintext: false,
            echo_data: false,
        }
    }
}

/// The longest a receiver holds an ack in a session of compact datagrams (docs/PROTOCOL.md
/// section 7a.2), which its peer's retransmission timeout allows for.
pub(crate) const COMPACT_MAX_ACK_DELAY: Duration = Duration::from_millis(50);

/// The smallest datagram size a session works with.
pub const MIN_DATAGRAM_SIZE: usize = 256;

impl SessionConfig {
    /// The largest frame body a datagram of this size carries with an ack block.
    pub fn max_frame_body(&self) -> usize {
        self.datagram_size
            .clamp(MIN_DATAGRAM_SIZE, MAX_DATAGRAM_SIZE)
            - PACKET_HEADER_LEN
            - ACK_BLOCK_LEN
            - CRC_LEN
            - FRAME_LEN_PREFIX
    }

    /// The largest frame length (docs/PROTOCOL.md section 2.1: a frame body without SEQ, plus 5)
    /// this side offers in its handshake: its `max_message_len`, within the protocol's bounds.
    pub fn frame_limit(&self) -> u32 {
        u32::try_from(self.max_message_len)
            .unwrap_or(u32::MAX)
            .clamp(MIN_AGREED_FRAME_LEN, MAX_FRAME_LEN_CEILING)
    }

    /// The most fragments a message of `max_message_len` needs; the receiver refuses more.
    pub fn max_fragments(&self) -> u16 {
        let piece = self.max_frame_body() - FRAGMENT_HEAD_LEN;
        u16::try_from(self.max_message_len.div_ceil(piece)).unwrap_or(u16::MAX)
    }

    /// The kind of `channel` under this configuration.
    pub fn channel_kind(&self, channel: u8) -> ChannelKind {
        super::outbox::channel_kind(&self.channels, channel)
    }
}
