//! Many datagrams to one address per system call: UDP segmentation offload (`UDP_SEGMENT`, Linux
//! 4.18 and later).
//!
//! One `sendmsg(2)` hands the kernel a buffer of back-to-back datagrams of `segment` bytes each
//! (the last may be shorter) with a control message naming the size; the kernel sends them as
//! separate datagrams, going through its send path once for all of them. A receiver sees ordinary
//! datagrams.
#![allow(
    unsafe_code,
    reason = "the control message's header is a C struct laid out by the platform"
)]

use std::io;
use std::mem;
use std::net::SocketAddr;

use socket2::{MsgHdr, SockAddr, SockRef};

/// The `UDP_SEGMENT` socket option and control message (linux/udp.h); libc does not name it for
/// every Linux target.
const UDP_SEGMENT: libc::c_int = 103;

/// The most segments the kernel takes in one call (`UDP_MAX_SEGMENTS`).
pub(crate) const MAX_SEGMENTS: usize = 64;

/// Room for one control message carrying a `u16`, aligned as the kernel's headers are.
#[repr(C, align(8))]
struct Control([u8; 32]);

/// Sends `datagrams`, back-to-back datagrams of `segment` bytes (the last may be shorter), to `to`
/// in one system call; returns the bytes sent.
///
/// # Errors
/// The socket's error; `EIO` or `EINVAL` where the kernel or the route cannot segment (the caller
/// then sends one datagram per call).
pub(crate) fn send_segments(
    socket: &impl std::os::fd::AsFd,
    datagrams: &[u8],
    segment: u16,
    to: SocketAddr,
) -> io::Result<usize> {
    let mut control = Control([0; 32]);
    // SAFETY: CMSG_SPACE and CMSG_LEN only compute sizes; an all-zero `cmsghdr` is a valid value
    // of that plain C struct, and writing it at the start of `control` (32 bytes, 8-aligned, more
    // than CMSG_SPACE(2) = 24 on every Linux target) stays inside the buffer, as does the `u16`
    // written right after the header (at CMSG_LEN(0)).
    let space = unsafe {
        let space = libc::CMSG_SPACE(mem::size_of::<u16>() as libc::c_uint) as usize;
        debug_assert!(space <= control.0.len());
        let mut header: libc::cmsghdr = mem::zeroed();
        header.cmsg_level = libc::SOL_UDP;
        header.cmsg_type = UDP_SEGMENT;
        header.cmsg_len = libc::CMSG_LEN(mem::size_of::<u16>() as libc::c_uint) as _;
        let base = control.0.as_mut_ptr();
        std::ptr::write_unaligned(base.cast::<libc::cmsghdr>(), header);
        let data = base.add(libc::CMSG_LEN(0) as usize);
        std::ptr::write_unaligned(data.cast::<u16>(), segment);
        space
    };
    let address = SockAddr::from(to);
    let buffers = [io::IoSlice::new(datagrams)];
    let message = MsgHdr::new()
        .with_addr(&address)
        .with_buffers(&buffers)
        .with_control(&control.0[..space]);
    SockRef::from(socket).sendmsg(&message, 0)
}

/// Whether `e`, from [`send_segments`], says this kernel or route cannot segment at all (rather
/// than that this one send failed).
pub(crate) fn segmentation_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
    )
}
