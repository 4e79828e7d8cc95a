//! The client's side of the handshake: Hellos with backoff, and the server's answers
//! (docs/PROTOCOL.md section 4.1.2).

use super::super::event::{Closer, Event, Transmit};
use super::super::terms::{agree_heartbeat, agree_idle, millis};
use super::super::time::Instant;
use super::{MAX_BACKOFF_EXPONENT, Session, State};
use crate::seal::{Sealer, SessionKeys, is_sealed};
use crate::wire::{
    COMPACT_VERSION, Reason, SEALED_COMPACT_VERSION, SHARED_HEADERS_VERSION, Text,
    peek_connection_id,
};
use crate::wire::{
    CRC_LEN, Datagram, DatagramBuilder, FRAME_LEN_PREFIX, Frame, FrameBody, Hello, HelloOptions,
    MIN_HELLO_DATAGRAM, OPTION_HEADER_LEN, PACKET_HEADER_LEN, PacketHeader, VERSION,
};
use alloc::vec::Vec;
use bytes::Bytes;
use core::net::SocketAddr;

impl Session {
    pub(super) fn handle_handshake(&mut self, now: Instant, from: SocketAddr, datagram: Bytes) {
        // A sealed Welcome comes under its connection id; everything else of the handshake
        // under 0, in the clear.
        let mut sealer = None;
        let datagram = if is_sealed(&datagram) && from == self.remote {
            let Some((s, plain)) = self.open_welcome(&datagram) else {
                self.stats.packets_dropped += 1;
                self.stats.bad_datagrams += 1;
                return;
            };
            sealer = Some(s);
            plain
        } else {
            datagram
        };
        let accepted = match Datagram::parse(datagram) {
            Ok(d) if from == self.remote && (d.header.connection_id == 0 || sealer.is_some()) => d,
            _ => {
                self.stats.packets_dropped += 1;
                return;
            }
        };
        self.stats.packets_received += 1;
        for body in accepted.frames() {
            let Ok(frame) = Frame::parse(body) else {
                self.stats.refused += 1;
                continue;
            };
            let State::Connecting(c) = &mut self.state else {
                return;
            };
            match frame.body {
                FrameBody::Challenge(ch) if ch.nonce == c.nonce => {
                    c.cookie = Some(ch.cookie);
                    c.next_hello = now;
                }
                FrameBody::Welcome(w) if w.connection_id != 0 => {
                    if self.config.seal_keys.is_some() {
                        match sealer.take() {
                            Some(s) if accepted.header.connection_id == w.connection_id => {
                                self.seal_with(s);
                            }
                            _ => {
                                // Only a server that opened the token's keys could seal it: this
                                // one could not, or is not the server the token is for.
                                self.events.push_back(Event::Closed {
                                    reason: Reason::AUTH_FAILED,
                                    message: Text::from_static(
                                        "the server's Welcome is not sealed: it did not open this client's keys",
                                    ),
                                    by: Closer::Local,
                                });
                                self.shut();
                                return;
                            }
                        }
                    }
                    if !self.take_version(w.version) {
                        return;
                    }
                    self.connection_id = w.connection_id;
                    self.config.idle_timeout =
                        agree_idle(self.config.idle_timeout, w.idle_timeout_ms);
                    self.config.heartbeat_interval = agree_heartbeat(
                        self.config.heartbeat_interval,
                        w.heartbeat_interval_ms,
                        self.config.idle_timeout,
                    );
                    self.frame_limit = w.max_frame_len.min(self.config.frame_limit());
                    self.state = State::Established;
                    self.last_received = now;
                    self.last_ack_eliciting_sent = now;
                    self.events.push_back(Event::Connected {
                        connection_id: w.connection_id,
                        session_token: w.session_token,
                        resumed: w.resumed,
                        missed: w.missed,
                    });
                    return;
                }
                FrameBody::Reject(r) => {
                    self.events.push_back(Event::Closed {
                        reason: r.reason,
                        message: r.message,
                        by: Closer::Peer,
                    });
                    self.shut();
                    return;
                }
                _ => self.stats.refused += 1,
            }
        }
    }

    /// Goes on in the version a Welcome chose: whether it is one this client offered (else the
    /// session ends, `UNSUPPORTED_VERSION`).
    fn take_version(&mut self, version: u8) -> bool {
        let offered = self.offered_version();
        // A sealed session speaks 1 or 4, a plaintext one 1 to 3 (section 4.1).
        let sealed = self.config.seal_keys.is_some();
        let known = match version {
            VERSION => true,
            COMPACT_VERSION | SHARED_HEADERS_VERSION => !sealed,
            SEALED_COMPACT_VERSION => sealed,
            _ => false,
        };
        if known && version <= offered {
            self.use_version(version);
            return true;
        }
        self.events.push_back(Event::Closed {
            reason: Reason::UNSUPPORTED_VERSION,
            message: Text::from_static(
                "the server's Welcome chose a version this client did not offer",
            ),
            by: Closer::Local,
        });
        self.shut();
        false
    }

    /// The highest version this client's Hello offers: 3 (compact datagrams whose frames share
    /// headers), or 2 (compact datagrams) with `shared_headers` off, unless compact datagrams are
    /// configured off; a sealed session offers 4 (sealed compact datagrams, section 2.5), or 1
    /// (the version-1 form sealed, section 2.3) with either of them off.
    fn offered_version(&self) -> u8 {
        let sealed = self.config.seal_keys.is_some();
        if !self.config.compact_datagrams || (sealed && !self.config.shared_headers) {
            VERSION
        } else if sealed {
            SEALED_COMPACT_VERSION
        } else if self.config.shared_headers {
            SHARED_HEADERS_VERSION
        } else {
            COMPACT_VERSION
        }
    }

    /// Opens a sealed Welcome with keys derived from its connection id, this client's nonce and
    /// the cookie its Hello echoed: the sealer the session goes on with, and the plain datagram.
    fn open_welcome(&self, datagram: &[u8]) -> Option<(Sealer, Bytes)> {
        let keys = self.config.seal_keys.as_ref()?;
        let State::Connecting(c) = &self.state else {
            return None;
        };
        let cookie = c.cookie.as_ref()?;
        let connection_id = peek_connection_id(datagram).ok().filter(|&id| id != 0)?;
        let mut sealer = Sealer::new(&SessionKeys::derive(
            keys,
            connection_id,
            c.nonce,
            cookie,
            false,
        ));
        let plain = sealer.open(datagram).ok()?;
        Some((sealer, plain))
    }

    /// Writes the next Hello, padded so the datagram is at least [`MIN_HELLO_DATAGRAM`] bytes.
    pub(super) fn transmit_hello(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let rto = self.rto_without_ack_delay();
        let max_rto = self.config.max_rto;
        let channels: Vec<_> = self.config.channels.iter().skip(1).copied().collect();
        let max_frame_len = self.config.frame_limit();
        let max_version = self.offered_version();
        let State::Connecting(c) = &mut self.state else {
            return None;
        };
        if now < c.next_hello || buf.len() < MIN_HELLO_DATAGRAM {
            return None;
        }
        let mut options = HelloOptions::builder();
        if let Some(cookie) = &c.cookie {
            options = options.cookie(cookie);
        }
        if !channels.is_empty() {
            options = options.channels(&channels);
        }
        for o in &self.config.hello_options {
            options = options.raw(o.code, &o.value);
        }
        let hello = |options: HelloOptions| {
            Frame::new(Hello {
                min_version: VERSION,
                max_version,
                idle_timeout_ms: millis(self.config.idle_timeout),
                max_frame_len,
                nonce: c.nonce,
                options,
            })
        };
        let unpadded = PACKET_HEADER_LEN
            + FRAME_LEN_PREFIX
            + CRC_LEN
            + hello(HelloOptions::new()).encoded_len()
            + options.len();
        let short = MIN_HELLO_DATAGRAM.saturating_sub(unpadded);
        if short > 0 {
            options = options.padding(short.saturating_sub(OPTION_HEADER_LEN));
        }
        let frame = hello(options.build().ok()?);
        let header = PacketHeader {
            connection_id: 0,
            packet_number: c.attempts,
            ack: None,
        };
        let mut b = DatagramBuilder::new(buf, &header).ok()?;
        if !b.push(&frame).ok()? {
            return None;
        }
        let len = b.finish().ok()?;
        // Resend with exponential backoff until the Welcome comes or the deadline passes.
        c.next_hello = now + (rto * (1u32 << c.attempts.min(MAX_BACKOFF_EXPONENT))).min(max_rto);
        c.attempts += 1;
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += len as u64;
        Some(Transmit {
            destination: self.remote,
            len,
        })
    }
}
