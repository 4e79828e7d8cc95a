//! Many reads per system call: `recvmmsg(2)` on Linux.
//!
//! The buffers, addresses, control messages and headers the kernel fills are owned by
//! [`RecvBatch`]; the pointers in the headers are set afresh before each call, so moving the batch
//! between calls is harmless; and only the lengths the kernel reports are read back.
#![allow(
    unsafe_code,
    reason = "recvmmsg takes raw pointers to the buffers it fills"
)]

use std::io;
use std::mem;
use std::os::fd::AsRawFd;

use super::Received;
use super::linux::{Control, segment_size, socket_addr, written};

/// Reads fetched per call at most.
const SLOTS: usize = 32;
/// Bytes per read: the largest UDP payload, and the most a coalesced read holds.
const SLOT_LEN: usize = 65_536;

/// Buffers for up to 32 reads (each a datagram, or several of one size where
/// [`enable_coalesced_receive`](super::enable_coalesced_receive) took), and what the last call put
/// in them.
pub struct RecvBatch {
    data: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    controls: Vec<Control>,
    headers: Vec<libc::mmsghdr>,
    /// Reads the last call made.
    count: usize,
    /// Reads dropped because they did not fit a slot.
    pub truncated: u64,
}

// SAFETY: the raw pointers in the headers point only into the batch's own heap buffers, are set
// afresh before each call, and are never read by anyone else: moving the batch to another thread
// moves everything they point at with it.
unsafe impl Send for RecvBatch {}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("count", &self.count)
            .field("truncated", &self.truncated)
            .finish_non_exhaustive()
    }
}

impl RecvBatch {
    /// Buffers for 32 reads of up to 64 KiB each (2 MiB).
    #[allow(
        clippy::new_without_default,
        reason = "two megabytes should not come by default"
    )]
    pub fn new() -> Self {
        // SAFETY: all-zero bytes are a valid value of these plain C structs (null pointers, zero
        // lengths and an unspecified address family).
        let (addrs, iovecs, headers) = unsafe {
            (
                vec![mem::zeroed::<libc::sockaddr_storage>(); SLOTS],
                vec![mem::zeroed::<libc::iovec>(); SLOTS],
                vec![mem::zeroed::<libc::mmsghdr>(); SLOTS],
            )
        };
        Self {
            data: vec![0u8; SLOTS * SLOT_LEN],
            addrs,
            iovecs,
            headers,
            controls: vec![Control([0; 64]); SLOTS],
            count: 0,
            truncated: 0,
        }
    }

    /// Receives what is waiting, up to 32 reads, without blocking; returns how many.
    /// `Ok(0)` never happens: an empty socket is [`io::ErrorKind::WouldBlock`].
    ///
    /// # Errors
    /// The socket's error (`WouldBlock` when it is empty).
    pub fn recv(&mut self, socket: &mio::net::UdpSocket) -> io::Result<usize> {
        self.count = 0;
        let base = self.data.as_mut_ptr();
        for i in 0..SLOTS {
            // SAFETY: `i * SLOT_LEN + SLOT_LEN <= data.len()`, so the slot lies inside `data`.
            self.iovecs[i].iov_base = unsafe { base.add(i * SLOT_LEN) }.cast();
            self.iovecs[i].iov_len = SLOT_LEN;
            let h = &mut self.headers[i].msg_hdr;
            h.msg_name = (&raw mut self.addrs[i]).cast();
            h.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &raw mut self.iovecs[i];
            h.msg_iovlen = 1;
            h.msg_control = self.controls[i].0.as_mut_ptr().cast();
            h.msg_controllen = self.controls[i].0.len() as _;
            h.msg_flags = 0;
            self.headers[i].msg_len = 0;
        }
        // SAFETY: every header points at buffers owned by `self` that outlive the call, with the
        // lengths of those buffers; the kernel writes at most that much into each.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                SLOTS as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        // Negative is an error (in errno); otherwise at most SLOTS.
        let Ok(count) = usize::try_from(n) else {
            return Err(io::Error::last_os_error());
        };
        self.count = count.min(SLOTS);
        Ok(self.count)
    }

    /// Read `i` of the last call, with its sender; `None` for one that did not fit its slot or
    /// has no readable address.
    pub fn get(&mut self, i: usize) -> Option<Received<'_>> {
        if i >= self.count {
            return None;
        }
        let h = &self.headers[i];
        if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            self.truncated += 1;
            return None;
        }
        let len = (h.msg_len as usize).min(SLOT_LEN);
        let from = socket_addr(&self.addrs[i], h.msg_hdr.msg_namelen)?;
        let control = &self.controls[i];
        let segment = segment_size(control, written(h.msg_hdr.msg_controllen, control.0.len()));
        Some(Received::new(
            from,
            &self.data[i * SLOT_LEN..i * SLOT_LEN + len],
            segment,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receives_several_datagrams_in_one_call_with_their_senders() {
        let server = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        a.send_to(b"one", to).unwrap();
        b.send_to(&[7u8; 1500], to).unwrap();
        a.send_to(b"three", to).unwrap();
        let mut batch = RecvBatch::new();
        let mut senders = Vec::new();
        let (got, _) = super::super::tests::collect(3, |got| {
            let n = batch.recv(&server)?;
            for i in 0..n {
                let read = batch.get(i).unwrap();
                senders.push(read.from);
                got.push(read.data.to_vec());
            }
            Ok(n)
        });
        let (a, b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        assert_eq!(senders, vec![a, b, a]);
        assert_eq!(
            got.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![3, 1500, 5]
        );
        assert!(matches!(batch.recv(&server), Err(e) if e.kind() == io::ErrorKind::WouldBlock));
    }
}
