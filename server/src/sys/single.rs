//! One datagram per call, through the standard socket, where `recvmmsg` is not available.

use std::io;
use std::net::SocketAddr;

const SLOT_LEN: usize = 65_536;

#[derive(Debug)]
pub(crate) struct RecvBatch {
    data: Vec<u8>,
    last: Option<(SocketAddr, usize)>,
    pub(crate) truncated: u64,
}

impl RecvBatch {
    pub(crate) fn new() -> Self {
        Self {
            data: vec![0u8; SLOT_LEN],
            last: None,
            truncated: 0,
        }
    }

    pub(crate) fn recv(&mut self, socket: &mio::net::UdpSocket) -> io::Result<usize> {
        let (n, from) = socket.recv_from(&mut self.data)?;
        self.last = Some((from, n));
        Ok(1)
    }

    pub(crate) fn get(&mut self, i: usize) -> Option<(SocketAddr, &[u8])> {
        let (from, n) = self.last.filter(|_| i == 0)?;
        Some((from, &self.data[..n]))
    }
}

/// Segmentation offload is Linux's: elsewhere a run is one datagram.
pub(crate) const MAX_SEGMENTS: usize = 1;

/// Elsewhere nothing segments: the caller sends one datagram per call.
pub(crate) fn send_segments(
    _socket: &mio::net::UdpSocket,
    _datagrams: &[u8],
    _segment: u16,
    _to: SocketAddr,
) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Every error of [`send_segments`] says it cannot segment.
pub(crate) fn segmentation_unsupported(_e: &io::Error) -> bool {
    true
}
