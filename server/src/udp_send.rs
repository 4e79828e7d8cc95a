//! Sending a worker's UDP datagrams through [`UdpSender`] (a session's run of datagrams of one size
//! in one call, where the kernel offers segmentation), each shown to the packet capture first.

use std::net::SocketAddr;

use framewire_client::udp_io::UdpSender;
use framewire_protocol::session::{Instant, Session};
use mio::net::UdpSocket;

use framewire_protocol::seal::is_sealed;

use crate::capture::Way;
use crate::shared::Shared;

/// Where a worker's UDP datagrams are written and sent from.
#[derive(Debug)]
pub(crate) struct UdpOutput {
    sender: UdpSender,
    /// The socket's own address, for the packet capture.
    local: SocketAddr,
}

impl UdpOutput {
    pub(crate) fn new(local: SocketAddr, segment: bool) -> Self {
        Self {
            sender: UdpSender::new(segment),
            local,
        }
    }

    /// The socket's own address (the packet capture's for this worker's datagrams, both ways).
    pub(crate) fn local(&self) -> SocketAddr {
        self.local
    }

    /// Scratch room for one datagram (a handshake reply).
    pub(crate) fn scratch(&mut self) -> &mut [u8] {
        self.sender.scratch()
    }

    /// Sends the first `len` bytes of [`UdpOutput::scratch`] to `to`, on their own. A failed send
    /// is logged and otherwise ignored: the peer asks again.
    pub(crate) fn send_scratch(
        &self,
        socket: &UdpSocket,
        len: usize,
        to: SocketAddr,
        shared: &Shared,
    ) {
        let local = self.local;
        let _ = self.sender.send_scratch(socket, len, to, |to, datagram| {
            capture_plain(shared, to, local, datagram);
        });
    }

    /// Sends everything `session` has to send now. A failed send is logged and otherwise ignored:
    /// the session resends what must arrive, and declares the peer dead if nothing gets through.
    pub(crate) fn send_all(
        &mut self,
        session: &mut Session,
        now: Instant,
        socket: &UdpSocket,
        shared: &Shared,
    ) {
        let local = self.local;
        self.sender.send_from(
            socket,
            |buf| session.poll_transmit(now, buf),
            |to, datagram| capture_plain(shared, to, local, datagram),
        );
    }
}

/// Shows a datagram being sent to the packet capture, unless it is sealed: a sealed session's
/// are captured in the clear as the session sealed them.
fn capture_plain(shared: &Shared, to: SocketAddr, local: SocketAddr, datagram: &[u8]) {
    if !is_sealed(datagram) {
        shared.capture(|c| c.udp(to, local, Way::Out, datagram));
    }
}
