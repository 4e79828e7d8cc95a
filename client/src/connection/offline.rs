//! The offline buffer: operations sent while the client is reconnecting, kept in order (with
//! their encoded length, counted against the bound) until the connection is back.

use std::collections::VecDeque;

use framewire_protocol::wire::Frame;

/// Operations waiting for a connection, oldest first, and the bytes they hold.
#[derive(Debug, Default)]
pub(super) struct OfflineBuffer {
    frames: VecDeque<(Frame, usize)>,
    bytes: usize,
}

impl OfflineBuffer {
    pub(super) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Keeps `frame`, `len` bytes encoded, if it fits within `max` bytes in all.
    pub(super) fn push(&mut self, frame: Frame, len: usize, max: usize) -> bool {
        if self.bytes + len > max {
            return false;
        }
        self.bytes += len;
        self.frames.push_back((frame, len));
        true
    }

    /// The oldest operation, taken out.
    pub(super) fn pop(&mut self) -> Option<Frame> {
        let (frame, len) = self.frames.pop_front()?;
        self.bytes -= len;
        Some(frame)
    }

    /// Puts back an operation the link could not take yet, first in line again.
    pub(super) fn unpop(&mut self, frame: Frame) {
        let len = frame.encoded_len();
        self.bytes += len;
        self.frames.push_front((frame, len));
    }

    /// Whether operation `id` waits here.
    pub(super) fn holds(&self, id: u32) -> bool {
        self.frames
            .iter()
            .any(|(f, _)| f.operation_id() == Some(id))
    }

    /// Takes operation `id` out; whether it was here.
    pub(super) fn remove(&mut self, id: u32) -> bool {
        let Some(at) = self
            .frames
            .iter()
            .position(|(f, _)| f.operation_id() == Some(id))
        else {
            return false;
        };
        if let Some((_, len)) = self.frames.remove(at) {
            self.bytes -= len;
        }
        true
    }

    pub(super) fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }
}
