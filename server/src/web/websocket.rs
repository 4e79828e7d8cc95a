//! WebSocket framing (RFC 6455 section 5), sans-IO: a decoder that takes the bytes a client sent
//! and yields whole messages and control frames, and an encoder for the server's frames.
//!
//! Our own codec rather than tungstenite's `WebSocketContext`: the event loop already owns the
//! socket, the read buffer and the output queue, so what is left of a WebSocket library is this
//! file's framing rules; tungstenite would add a read buffer per connection (128 KiB by default)
//! and a second output queue, against the idle-memory budget. An idle connection here holds no
//! buffer: the decoder's message buffer exists only while a message is arriving.
//!
//! The decoder checks every rule a server must (RFC 6455 sections 5.1-5.6, 7.4): client frames
//! masked, reserved bits clear (no extension is negotiated), known opcodes, control frames whole
//! and at most 125 bytes, continuations only inside a fragmented message, a message no longer
//! than the limit (judged from the header, before its payload is buffered), text and close
//! reasons valid UTF-8 (checked as the fragments arrive, so a bad sequence fails at once), close
//! codes from the ranges a peer may send. A broken rule is a [`Violation`] naming the close code
//! to answer with; the connection is over after it.

use std::fmt;

/// Close codes (RFC 6455 section 7.4.1).
pub mod close_code {
    /// The purpose of the connection is fulfilled.
    pub const NORMAL: u16 = 1000;
    /// The server is going away (shutting down).
    pub const GOING_AWAY: u16 = 1001;
    /// A protocol error: a frame broke a framing rule.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A kind of data the endpoint cannot accept (framewire takes binary messages only).
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// Text that is not UTF-8, or a close reason that is not.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A message that breaks the endpoint's policy.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// A message too big to process.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The server met a condition that kept it from serving the request.
    pub const INTERNAL_ERROR: u16 = 1011;
}

/// The largest payload of a control frame (RFC 6455 section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// The longest frame header: 2 bytes, 8 of extended length, 4 of mask.
pub const MAX_HEADER_LEN: usize = 14;

/// A frame's opcode (RFC 6455 section 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// What the decoder hands out: a whole message, or a control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// A binary message, its fragments joined.
    Binary(&'a [u8]),
    /// A text message (valid UTF-8), its fragments joined.
    Text(&'a str),
    /// A ping: answer with a pong carrying the same payload.
    Ping(&'a [u8]),
    /// A pong (unsolicited ones are allowed, and ignored).
    Pong(&'a [u8]),
    /// A close: its code and reason, if it had any.
    Close(Option<(u16, &'a str)>),
}

/// A frame that broke a rule: the connection answers with a close of `code` and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    /// The close code to answer with.
    pub code: u16,
    /// What was wrong, for the log and the close reason.
    pub why: &'static str,
}

impl Violation {
    const fn protocol(why: &'static str) -> Self {
        Self {
            code: close_code::PROTOCOL_ERROR,
            why,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (close code {})", self.why, self.code)
    }
}

impl std::error::Error for Violation {}

/// Where the decoder is within the current frame.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Reading a header: `have` of its bytes are in `header`.
    Header { have: usize },
    /// Reading a payload: `left` bytes to go; `at` bytes of it read (for the mask's offset).
    Payload {
        opcode: Opcode,
        fin: bool,
        mask: [u8; 4],
        at: usize,
        left: usize,
    },
}

/// The decoder of a client's frames; see the module docs.
#[derive(Debug)]
pub struct Decoder {
    max_message_len: usize,
    phase: Phase,
    header: [u8; MAX_HEADER_LEN],
    /// The data message in progress: its opcode (Text or Binary), if one has begun.
    message_kind: Option<Opcode>,
    /// Its bytes so far (allocated only while a message arrives in pieces).
    message: Vec<u8>,
    /// How much of a text message's bytes is known to be valid UTF-8.
    valid_up_to: usize,
    /// The control frame in progress.
    control: [u8; MAX_CONTROL_PAYLOAD],
    control_len: usize,
    failed: Option<Violation>,
}

/// Capacity a message buffer keeps between messages; a larger one is given back.
const KEPT_CAPACITY: usize = 4 * 1024;

impl Decoder {
    /// A decoder that refuses messages longer than `max_message_len` bytes.
    pub fn new(max_message_len: usize) -> Self {
        Self {
            max_message_len,
            phase: Phase::Header { have: 0 },
            header: [0; MAX_HEADER_LEN],
            message_kind: None,
            message: Vec::new(),
            valid_up_to: 0,
            control: [0; MAX_CONTROL_PAYLOAD],
            control_len: 0,
            failed: None,
        }
    }

    /// Changes the message limit (from the next frame's header on).
    pub fn set_max_message_len(&mut self, max_message_len: usize) {
        self.max_message_len = max_message_len;
    }

    /// Whether the decoder is between frames and holds nothing.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Header { have: 0 }) && self.message_kind.is_none()
    }

    /// Decodes `input`, unmasking it in place, and hands each whole message and control frame to
    /// `on_message` as it completes. A message that arrives whole in one frame within `input` is
    /// handed out from `input` itself, without a copy.
    ///
    /// # Errors
    /// The first rule broken; the decoder returns it again from then on.
    pub fn feed(
        &mut self,
        mut input: &mut [u8],
        mut on_message: impl FnMut(Message<'_>),
    ) -> Result<(), Violation> {
        if let Some(v) = self.failed {
            return Err(v);
        }
        while !input.is_empty() {
            let step = match self.phase {
                Phase::Header { have } => self.read_header(have, input, &mut on_message),
                Phase::Payload {
                    opcode,
                    fin,
                    mask,
                    at,
                    left,
                } => {
                    let take = left.min(input.len());
                    let (chunk, rest) = input.split_at_mut(take);
                    unmask(chunk, mask, at);
                    let ends = left == take;
                    let step =
                        self.take_payload(opcode, fin, chunk, at == 0, ends, &mut on_message);
                    if step.is_ok() {
                        if ends {
                            self.phase = Phase::Header { have: 0 };
                        } else {
                            self.phase = Phase::Payload {
                                opcode,
                                fin,
                                mask,
                                at: at + take,
                                left: left - take,
                            };
                        }
                    }
                    input = rest;
                    step.map(|()| 0)
                }
            };
            match step {
                Ok(used) => input = &mut input[used..],
                Err(v) => {
                    self.failed = Some(v);
                    self.message = Vec::new();
                    return Err(v);
                }
            }
        }
        Ok(())
    }

    /// Copies header bytes in; once the header is whole, checks it and moves to its payload.
    /// Returns how many bytes of `input` it used.
    fn read_header(
        &mut self,
        have: usize,
        input: &[u8],
        on_message: &mut impl FnMut(Message<'_>),
    ) -> Result<usize, Violation> {
        let need = if have < 2 {
            2
        } else {
            header_len(self.header[1])
        };
        let take = (need - have).min(input.len());
        self.header[have..have + take].copy_from_slice(&input[..take]);
        let have = have + take;
        if have < need {
            self.phase = Phase::Header { have };
            return Ok(take);
        }
        if need == 2 && header_len(self.header[1]) > 2 {
            // The length or mask fields follow: read on.
            self.phase = Phase::Header { have };
            return self
                .read_header(have, &input[take..], on_message)
                .map(|more| take + more);
        }
        self.start_frame(on_message)?;
        Ok(take)
    }

    /// Checks a whole header against the rules and starts its payload.
    fn start_frame(&mut self, on_message: &mut impl FnMut(Message<'_>)) -> Result<(), Violation> {
        let h = &self.header;
        let fin = h[0] & 0x80 != 0;
        if h[0] & 0x70 != 0 {
            return Err(Violation::protocol(
                "reserved bits set without an extension",
            ));
        }
        let opcode = Opcode::from_bits(h[0] & 0x0F).ok_or(Violation::protocol("unknown opcode"))?;
        if h[1] & 0x80 == 0 {
            return Err(Violation::protocol("a client frame must be masked"));
        }
        let (len, mask_at) = match h[1] & 0x7F {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => (
                u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
                10,
            ),
            n => (u64::from(n), 2),
        };
        if len >> 63 != 0 {
            return Err(Violation::protocol("a 64-bit length with its top bit set"));
        }
        let mask = [h[mask_at], h[mask_at + 1], h[mask_at + 2], h[mask_at + 3]];
        if opcode.is_control() {
            if !fin {
                return Err(Violation::protocol("a fragmented control frame"));
            }
            if len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(Violation::protocol("a control frame above 125 bytes"));
            }
            self.control_len = 0;
        } else {
            match (opcode, self.message_kind) {
                (Opcode::Continuation, None) => {
                    return Err(Violation::protocol("a continuation outside a message"));
                }
                (Opcode::Text | Opcode::Binary, Some(_)) => {
                    return Err(Violation::protocol(
                        "a new message before the fragmented one ended",
                    ));
                }
                (Opcode::Text | Opcode::Binary, None) => {
                    self.message_kind = Some(opcode);
                    self.valid_up_to = 0;
                }
                _ => {}
            }
            let total = (self.message.len() as u64).saturating_add(len);
            if total > self.max_message_len as u64 {
                return Err(Violation {
                    code: close_code::MESSAGE_TOO_BIG,
                    why: "a message above the limit",
                });
            }
        }
        self.phase = Phase::Payload {
            opcode,
            fin,
            mask,
            at: 0,
            left: len as usize,
        };
        if len == 0 {
            // An empty payload completes at once: no byte will arrive to drive it.
            self.phase = Phase::Header { have: 0 };
            return self.take_payload(opcode, fin, &mut [], true, true, on_message);
        }
        Ok(())
    }

    /// Takes a piece of a payload (already unmasked); `first`: the frame's payload begins with
    /// it; `last`: it ends with it.
    #[allow(
        clippy::fn_params_excessive_bools,
        reason = "where the piece lies in its frame"
    )]
    fn take_payload(
        &mut self,
        opcode: Opcode,
        fin: bool,
        chunk: &mut [u8],
        first: bool,
        last: bool,
        on_message: &mut impl FnMut(Message<'_>),
    ) -> Result<(), Violation> {
        if opcode.is_control() {
            self.control[self.control_len..self.control_len + chunk.len()].copy_from_slice(chunk);
            self.control_len += chunk.len();
            if last {
                let payload = &self.control[..self.control_len];
                on_message(control_message(opcode, payload)?);
            }
            return Ok(());
        }
        let kind = self.message_kind.unwrap_or(Opcode::Binary);
        if first && last && fin && self.message.is_empty() {
            // The message is this one frame and all of it is here: hand it out in place.
            self.message_kind = None;
            return emit(kind, chunk, on_message);
        }
        self.message.extend_from_slice(chunk);
        if kind == Opcode::Text {
            self.valid_up_to = check_utf8_prefix(&self.message, self.valid_up_to, last && fin)?;
        }
        if last && fin {
            let message = std::mem::take(&mut self.message);
            self.message_kind = None;
            let result = emit(kind, &message, on_message);
            self.message = message;
            self.message.clear();
            if self.message.capacity() > KEPT_CAPACITY {
                self.message = Vec::new();
            }
            return result;
        }
        Ok(())
    }
}

/// A header's length from its second byte: 2, plus the extended length, plus the mask.
fn header_len(second: u8) -> usize {
    let extended = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + extended + mask
}

/// XORs `data` with the mask, starting `at` bytes into the payload: eight bytes at a time, the
/// mask turned to where `data` begins.
fn unmask(data: &mut [u8], mask: [u8; 4], at: usize) {
    let mut turned = mask;
    turned.rotate_left(at % 4);
    let word = u64::from_ne_bytes([
        turned[0], turned[1], turned[2], turned[3], turned[0], turned[1], turned[2], turned[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(eight) ^ word).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= turned[i % 4];
    }
}

fn emit(
    kind: Opcode,
    bytes: &[u8],
    on_message: &mut impl FnMut(Message<'_>),
) -> Result<(), Violation> {
    match kind {
        Opcode::Text => {
            let text = std::str::from_utf8(bytes).map_err(|_| invalid_utf8())?;
            on_message(Message::Text(text));
        }
        _ => on_message(Message::Binary(bytes)),
    }
    Ok(())
}

fn invalid_utf8() -> Violation {
    Violation {
        code: close_code::INVALID_PAYLOAD,
        why: "text that is not UTF-8",
    }
}

/// Checks `bytes[from..]` as UTF-8 (`from` is where the last check stopped, the start of a
/// sequence), allowing an unfinished sequence at the end unless the message is `complete`;
/// returns how far the bytes are known valid.
fn check_utf8_prefix(bytes: &[u8], from: usize, complete: bool) -> Result<usize, Violation> {
    match std::str::from_utf8(&bytes[from..]) {
        Ok(_) => Ok(bytes.len()),
        Err(e) if e.error_len().is_none() && !complete => Ok(from + e.valid_up_to()),
        Err(_) => Err(invalid_utf8()),
    }
}

/// A close code a peer may send (RFC 6455 section 7.4 and the IANA registry): 1000-1003,
/// 1007-1014, 3000-4999.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fn control_message(opcode: Opcode, payload: &[u8]) -> Result<Message<'_>, Violation> {
    Ok(match opcode {
        Opcode::Ping => Message::Ping(payload),
        Opcode::Pong => Message::Pong(payload),
        _ => match payload {
            [] => Message::Close(None),
            [_] => return Err(Violation::protocol("a close payload of one byte")),
            [hi, lo, reason @ ..] => {
                let code = u16::from_be_bytes([*hi, *lo]);
                if !is_valid_close_code(code) {
                    return Err(Violation::protocol("a close code a peer may not send"));
                }
                let reason = std::str::from_utf8(reason).map_err(|_| Violation {
                    code: close_code::INVALID_PAYLOAD,
                    why: "a close reason that is not UTF-8",
                })?;
                Message::Close(Some((code, reason)))
            }
        },
    })
}

/// Appends one unmasked (server) frame, FIN set, to `out`.
pub fn encode_frame(opcode: Opcode, payload: &[u8], out: &mut Vec<u8>) {
    out.push(0x80 | opcode.bits());
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// Appends a close frame with `code` and `reason` (cut to fit a control frame, at a character
/// boundary).
pub fn encode_close(code: u16, reason: &str, out: &mut Vec<u8>) {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
    payload[..2].copy_from_slice(&code.to_be_bytes());
    payload[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
    encode_frame(Opcode::Close, &payload[..2 + end], out);
}

/// Appends one masked (client) frame to `out`: for tests and clients.
pub fn encode_client_frame(
    fin: bool,
    opcode: Opcode,
    payload: &[u8],
    mask: [u8; 4],
    out: &mut Vec<u8>,
) {
    out.push(if fin { 0x80 } else { 0 } | opcode.bits());
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 0x7E);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 0x7F);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    let at = out.len();
    out.extend_from_slice(payload);
    unmask(&mut out[at..], mask, 0);
}

#[cfg(test)]
#[path = "websocket_tests.rs"]
mod tests;
