//! Elsewhere than Linux: one datagram per call, through the standard socket, both ways.
#![cfg_attr(
    target_os = "linux",
    allow(dead_code, unreachable_pub, reason = "on Linux only its tests use it")
)]

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;

use super::Received;

/// Segmentation offload is Linux's: elsewhere a run is one datagram.
pub const MAX_SEGMENTS: usize = 1;

/// Elsewhere nothing segments: the caller sends one datagram per call.
///
/// # Errors
/// Always `Unsupported`.
pub fn send_segments(
    _socket: &UdpSocket,
    _datagrams: &[u8],
    _segment: u16,
    _to: SocketAddr,
) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Every error of [`send_segments`] says it cannot segment.
pub fn segmentation_unsupported(_e: &io::Error) -> bool {
    true
}

/// Elsewhere reads are never coalesced.
///
/// # Errors
/// Always `Unsupported`.
pub fn enable_coalesced_receive(_socket: &UdpSocket) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Arrival times are not read here.
///
/// # Errors
/// Always `Unsupported`.
pub fn enable_receive_timestamps(_socket: &UdpSocket) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Arrival times are not read here.
///
/// # Errors
/// Always `Unsupported`.
pub fn enable_stream_timestamps(_socket: &mio::net::TcpStream) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Reads what a stream socket has, without an arrival time.
///
/// # Errors
/// The socket's error (`WouldBlock` when nothing is waiting).
pub fn recv_stamped(
    socket: &mut mio::net::TcpStream,
    buf: &mut [u8],
) -> io::Result<(usize, Option<std::time::SystemTime>)> {
    Ok((io::Read::read(socket, buf)?, None))
}

/// One datagram.
///
/// # Errors
/// The socket's error (`WouldBlock` when it is empty).
pub fn recv_coalesced<'a>(socket: &UdpSocket, buf: &'a mut [u8]) -> io::Result<Received<'a>> {
    let (n, from) = socket.recv_from(buf)?;
    Ok(Received::new(from, &buf[..n], None))
}

/// One read per call.
#[derive(Debug)]
pub struct RecvBatch {
    data: Vec<u8>,
    last: Option<(SocketAddr, usize)>,
    /// Reads dropped because they did not fit (never, here: kept for the same shape).
    pub truncated: u64,
}

impl RecvBatch {
    /// A buffer for one read of up to 64 KiB.
    #[allow(
        clippy::new_without_default,
        reason = "the Linux batch is two megabytes"
    )]
    pub fn new() -> Self {
        Self {
            data: vec![0u8; 65_536],
            last: None,
            truncated: 0,
        }
    }

    /// Receives one datagram; returns 1.
    ///
    /// # Errors
    /// The socket's error (`WouldBlock` when it is empty).
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let (n, from) = socket.recv_from(&mut self.data)?;
        self.last = Some((from, n));
        Ok(1)
    }

    /// The datagram of the last call.
    pub fn get(&mut self, i: usize) -> Option<Received<'_>> {
        let (from, n) = self.last.filter(|_| i == 0)?;
        Some(Received::new(from, &self.data[..n], None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_moves_one_datagram_per_call_and_offers_no_offload() {
        let r = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let s = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = r.local_addr().unwrap();
        assert!(enable_coalesced_receive(&r).is_err());
        let e = send_segments(&s, &[0u8; 200], 100, to).unwrap_err();
        assert!(segmentation_unsupported(&e));
        assert_eq!(MAX_SEGMENTS, 1, "no run forms");
        for d in [&b"one"[..], &b"two!"[..], &b""[..]] {
            s.send_to(d, to).unwrap();
        }
        let mut buf = vec![0u8; 65_536];
        let mut batch = RecvBatch::new();
        let sender = s.local_addr().unwrap();
        let (got, _) = super::super::tests::collect(3, |got| {
            // Alternate the two ways of reading: each read is one datagram.
            let (from, datagrams) = if got.len() % 2 == 0 {
                let r = recv_coalesced(&r, &mut buf)?;
                (
                    r.from,
                    r.datagrams().map(<[u8]>::to_vec).collect::<Vec<_>>(),
                )
            } else {
                assert_eq!(batch.recv(&r)?, 1);
                let r = batch.get(0).unwrap();
                (r.from, r.datagrams().map(<[u8]>::to_vec).collect())
            };
            assert_eq!(from, sender);
            assert_eq!(datagrams.len(), 1);
            got.extend(datagrams);
            Ok(1)
        });
        assert_eq!(got, vec![b"one".to_vec(), b"two!".to_vec(), Vec::new()]);
    }
}
