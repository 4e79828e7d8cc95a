//! Following the peer to a new address once it has answered a check (docs/PROTOCOL.md
//! section 7a.8), and the session's seeded random values.

use super::super::event::Transmit;
use super::super::time::Instant;
use super::{AMPLIFICATION_FACTOR, PathCheck, Session};
use crate::seal::SEAL_OVERHEAD;
use crate::wire::{Frame, PacketHeader, Ping};
use alloc::vec::Vec;
use core::net::SocketAddr;

impl Session {
    pub(super) fn seeded(mut self) -> Self {
        self.rng_state = self.config.seed;
        self
    }

    /// The next value of the session's seeded generator.
    pub(super) fn random(&mut self) -> u64 {
        crate::splitmix::next(&mut self.rng_state)
    }

    /// A valid datagram came from an address other than the peer's: check that address before
    /// sending it anything but the check.
    pub(super) fn on_new_path(&mut self, from: SocketAddr, len: usize) {
        if let Some(check) = self.path_check.as_mut()
            && check.addr == from
        {
            check.received += len;
            check.ping_due = true;
            return;
        }
        let token = self.random();
        self.path_check = Some(PathCheck {
            addr: from,
            token,
            ping_due: true,
            received: len,
            sent: 0,
        });
    }

    /// Writes the path check's Ping to the new address, within its amplification budget.
    pub(super) fn transmit_path_check(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let check = self.path_check.as_ref()?;
        if !check.ping_due {
            return None;
        }
        let header = PacketHeader {
            connection_id: self.connection_id,
            packet_number: self.next_pn,
            ack: None,
        };
        let size = self.room(buf);
        let mut b = self.start_datagram(&mut buf[..size], &header)?;
        let ping = Frame::new(Ping {
            timestamp_us: check.token,
        });
        if !b.push(&ping).ok()? {
            return None;
        }
        let plain = b.finish().ok()?;
        let overhead = if self.is_sealed() { SEAL_OVERHEAD } else { 0 };
        let check = self.path_check.as_mut()?;
        check.ping_due = false;
        if check.sent + plain + overhead > check.received * AMPLIFICATION_FACTOR {
            return None;
        }
        let Some(len) = self.seal_out(buf, plain) else {
            self.record_sent(now, plain, false, false, Vec::new());
            return None;
        };
        let check = self.path_check.as_mut()?;
        check.sent += len;
        let destination = check.addr;
        // Numbered like any packet, but not tracked for loss: the next datagram from that address
        // asks for another check.
        self.record_sent(now, len, false, false, Vec::new());
        Some(Transmit { destination, len })
    }
}
