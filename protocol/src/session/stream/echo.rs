//! A server's stream session answering Data frames itself (`SessionConfig::echo_data`): the
//! server echoes Data (docs/PROTOCOL.md section 5.8), and the echo of a verified stream frame is
//! its own bytes, so the session copies them to the output instead of handing the frame to the
//! application to send back: no parse, no event, no re-encoding.

use alloc::string::ToString;

use super::{StreamSession, StreamState};
use crate::session::Admit;
use crate::session::time::Instant;
use crate::wire::FrameKind;

impl StreamSession {
    /// Takes the frames at the front of a read that the session echoes from where they lie, so
    /// that a read of echoes alone is never copied into the input; the first frame for the
    /// application is handled too, from the input the rest is copied to. Returns what is left to
    /// copy: a partial frame, or nothing.
    pub(super) fn take_in_place<'a>(
        &mut self,
        now: Instant,
        mut data: &'a [u8],
        admit: &mut impl Admit,
    ) -> &'a [u8] {
        while self.state != StreamState::Closed {
            match self.deframer.decode_span_in(data) {
                Ok(None) => return data,
                Ok(Some(span)) => {
                    self.stats.frames_received += 1;
                    if self.echoes(&data[span.body.clone()]) {
                        self.output.extend_from_slice(&data[..span.total]);
                        self.count_echo(span.total, now);
                        data = &data[span.total..];
                        continue;
                    }
                    self.input.extend_from_slice(data);
                    let body = span.take_body(&mut self.input);
                    self.on_body(body, now, admit);
                    return &[];
                }
                Err(e) => self.fail(now, e.close_reason(), &e.to_string()),
            }
        }
        &[]
    }

    /// Whether the frame with this body is a Data frame the session answers itself, now, with its
    /// own bytes: if this session echoes Data, and nothing handed to the application may still be
    /// answered. A frame with a sequence number (not a stream frame's own encoding), one whose CRC
    /// was not checked (a rebuilt WebSocket frame), or one the output has no room for goes the
    /// typed way, where `send`'s rules drop or refuse it.
    pub(super) fn echoes(&self, body: &[u8]) -> bool {
        if !self.echo.is_ready()
            || self.state != StreamState::Established
            || !self.deframer.checks_checksums()
        {
            return false;
        }
        let &[kind, flags, channel, ..] = body else {
            return false;
        };
        if kind != FrameKind::Data as u8 || flags != 0 {
            return false;
        }
        if self.channel_kind(channel).is_reliable() {
            self.output.len() < self.config.max_queued_bytes
        } else {
            self.output.len() <= self.config.max_queued_bytes / 2
        }
    }

    /// Counts an echo of `len` bytes, already in the output.
    pub(super) fn count_echo(&mut self, len: usize, now: Instant) {
        self.stats.messages_delivered += 1;
        self.stats.frames_sent += 1;
        self.stats.bytes_sent += len as u64;
        self.stats.echoed += 1;
        self.last_sent = now;
    }

    /// How many Data frames the session answered itself since the last call
    /// (`SessionConfig::echo_data`): the driver counts them as frames in and out.
    pub fn take_echoed(&mut self) -> u64 {
        core::mem::take(&mut self.stats.echoed)
    }

    /// The application has queued its answers to every frame it was handed: Data frames may be
    /// echoed by the session again. Until then they are handed over as frames, so that an echo
    /// never overtakes the answer to a frame before it.
    pub fn resume_echo(&mut self) {
        self.echo.resume();
    }
}
