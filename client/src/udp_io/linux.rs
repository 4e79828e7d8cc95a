//! Segmentation offload on Linux: `UDP_SEGMENT` to send back-to-back datagrams of one size in one
//! call (Linux 4.18 and later), `UDP_GRO` to receive them likewise (Linux 5.0 and later).
//!
//! With `batch.rs` beside it, the only `unsafe` code of the client and the server: control
//! messages are C structs laid out by the platform, and `recvmsg` and `setsockopt` take raw
//! pointers. Every pointer handed to the
//! kernel points into a buffer that outlives the call, with that buffer's length.
#![allow(
    unsafe_code,
    reason = "control messages are C structs laid out by the platform; the calls take raw pointers"
)]

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use mio::net::UdpSocket;

use socket2::{MsgHdr, SockAddr, SockRef};

use super::Received;

/// The `UDP_SEGMENT` socket option and control message (linux/udp.h); libc does not name it for
/// every Linux target.
const UDP_SEGMENT: libc::c_int = 103;
/// The `UDP_GRO` socket option and control message (linux/udp.h).
const UDP_GRO: libc::c_int = 104;

/// The most segments the kernel takes in one call (`UDP_MAX_SEGMENTS`).
pub const MAX_SEGMENTS: usize = 64;

/// Room for a few control messages (a `UDP_GRO` `int`, an `SCM_TIMESTAMPNS` `timespec`), aligned
/// as the kernel's headers are.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub(crate) struct Control(pub(crate) [u8; 64]);

/// Sends `datagrams`, back-to-back datagrams of `segment` bytes (the last may be shorter), to `to`
/// in one system call; returns the bytes sent.
///
/// # Errors
/// The socket's error; `EIO` or `EINVAL` where the kernel or the route cannot segment (see
/// [`segmentation_unsupported`]: the caller then sends one datagram per call).
pub fn send_segments(
    socket: &UdpSocket,
    datagrams: &[u8],
    segment: u16,
    to: SocketAddr,
) -> io::Result<usize> {
    let mut control = Control([0; 64]);
    // SAFETY: CMSG_SPACE and CMSG_LEN only compute sizes; an all-zero `cmsghdr` is a valid value
    // of that plain C struct, and writing it at the start of `control` (64 bytes, 8-aligned, more
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
pub fn segmentation_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
    )
}

/// Sets an `int` socket option to 1.
fn switch_on(fd: std::os::fd::RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: the option value is a live `c_int`, and its size is passed with it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const on).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Asks the kernel to hand over back-to-back datagrams of one size from one sender in one read
/// (`UDP_GRO`); [`recv_coalesced`] then says where they split.
///
/// # Errors
/// The kernel does not offer it (before Linux 5.0): reads stay one datagram each.
pub fn enable_coalesced_receive(socket: &UdpSocket) -> io::Result<()> {
    switch_on(socket.as_raw_fd(), libc::SOL_UDP, UDP_GRO)
}

/// Asks the kernel to stamp each datagram with the time it arrived (`SO_TIMESTAMPNS`), which
/// [`recv_coalesced`] then reports: a client that reads once per frame of a game loop measures
/// its round trips from arrival, not from its next read.
///
/// # Errors
/// The kernel refused the option: reads carry no arrival time.
pub fn enable_receive_timestamps(socket: &UdpSocket) -> io::Result<()> {
    switch_on(socket.as_raw_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPNS)
}

/// Asks the kernel to stamp what arrives on a TCP socket (`SO_TIMESTAMPNS`), for
/// [`recv_stamped`].
///
/// # Errors
/// The kernel refused the option.
pub fn enable_stream_timestamps(socket: &mio::net::TcpStream) -> io::Result<()> {
    switch_on(socket.as_raw_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPNS)
}

/// Reads what a stream socket has into `buf` without blocking, with the arrival time of the last
/// bytes read where the socket asked for it ([`enable_stream_timestamps`]).
///
/// # Errors
/// The socket's error (`WouldBlock` when nothing is waiting).
pub fn recv_stamped(
    socket: &mut mio::net::TcpStream,
    buf: &mut [u8],
) -> io::Result<(usize, Option<std::time::SystemTime>)> {
    let mut control = Control([0; 64]);
    let got = recvmsg_nonblocking(socket.as_raw_fd(), buf, None, &mut control)?;
    Ok((got.len, arrival_time(&control, got.control_len)))
}

/// What one `recvmsg` wrote.
struct Got {
    /// Bytes into the buffer (at most its length).
    len: usize,
    /// Bytes of the sender's address, where one was asked for.
    name_len: libc::socklen_t,
    /// Bytes of control messages.
    control_len: usize,
    /// `msg_flags` (`MSG_TRUNC`: the datagram was larger than the buffer).
    flags: libc::c_int,
}

/// One `recvmsg` on `fd` without blocking, into `buf`, the sender's address into `name` if given,
/// control messages into `control`.
fn recvmsg_nonblocking(
    fd: std::os::fd::RawFd,
    buf: &mut [u8],
    name: Option<&mut libc::sockaddr_storage>,
    control: &mut Control,
) -> io::Result<Got> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero bytes are a valid `msghdr` (null pointers, zero lengths).
    let mut header: libc::msghdr = unsafe { mem::zeroed() };
    if let Some(name) = name {
        header.msg_name = std::ptr::from_mut(name).cast();
        header.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    }
    header.msg_iov = &raw mut iov;
    header.msg_iovlen = 1;
    header.msg_control = control.0.as_mut_ptr().cast();
    header.msg_controllen = control.0.len() as _;
    // SAFETY: the header points at the address storage (if any), `iov` (which points at `buf`)
    // and `control`, all alive for the call, each with its own length; the kernel writes at most
    // that much.
    let n = unsafe { libc::recvmsg(fd, &raw mut header, libc::MSG_DONTWAIT) };
    let Ok(len) = usize::try_from(n) else {
        return Err(io::Error::last_os_error());
    };
    Ok(Got {
        len: len.min(buf.len()),
        name_len: header.msg_namelen,
        control_len: written(header.msg_controllen, control.0.len()),
        flags: header.msg_flags,
    })
}

/// Receives what is waiting into `buf` without blocking: one datagram, or, where
/// [`enable_coalesced_receive`] took, several of one size from one sender.
///
/// # Errors
/// The socket's error (`WouldBlock` when it is empty); `InvalidData` for a read that did not fit
/// `buf` or came from an address that is neither IPv4 nor IPv6.
pub fn recv_coalesced<'a>(socket: &UdpSocket, buf: &'a mut [u8]) -> io::Result<Received<'a>> {
    // SAFETY: all-zero bytes are a valid `sockaddr_storage`.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut control = Control([0; 64]);
    let got = recvmsg_nonblocking(socket.as_raw_fd(), buf, Some(&mut storage), &mut control)?;
    if got.flags & libc::MSG_TRUNC != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "datagram larger than the buffer",
        ));
    }
    let from = socket_addr(&storage, got.name_len)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "sender address not IP"))?;
    let segment = segment_size(&control, got.control_len);
    let arrived = arrival_time(&control, got.control_len);
    Ok(Received::new(from, &buf[..got.len], segment).arrived(arrived))
}

/// How many of `room` control bytes the kernel says it wrote (`msg_controllen`, a `size_t` with
/// glibc and a `socklen_t` with musl).
#[allow(
    clippy::unnecessary_cast,
    reason = "the field's type differs between the Linux C libraries"
)]
pub(crate) fn written(controllen: impl Copy + TryInto<usize>, room: usize) -> usize {
    controllen.try_into().map_or(room, |n: usize| n.min(room))
}

/// The segment size a `UDP_GRO` control message among the first `len` bytes of `control` (what the
/// kernel wrote) names, if there is one.
pub(crate) fn segment_size(control: &Control, len: usize) -> Option<usize> {
    let size: libc::c_int = control_value(control, len, libc::SOL_UDP, UDP_GRO)?;
    usize::try_from(size).ok().filter(|&s| s > 0)
}

/// The arrival time an `SCM_TIMESTAMPNS` control message among the first `len` bytes of `control`
/// names (the system clock), if there is one.
pub(crate) fn arrival_time(control: &Control, len: usize) -> Option<std::time::SystemTime> {
    let t: libc::timespec = control_value(control, len, libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS)?;
    let secs = u64::try_from(t.tv_sec).ok()?;
    let nanos = u32::try_from(t.tv_nsec).ok()?;
    std::time::UNIX_EPOCH.checked_add(std::time::Duration::new(secs, nanos.min(999_999_999)))
}

/// The value of the first control message of `level` and `kind` among the first `len` bytes of
/// `control` (what the kernel wrote) that carries a whole `T`, if there is one. `T` is a plain C
/// value (an `int`, a `timespec`): any bytes are a valid one.
fn control_value<T: Copy>(
    control: &Control,
    len: usize,
    level: libc::c_int,
    kind: libc::c_int,
) -> Option<T> {
    let len = len.min(control.0.len());
    // SAFETY: all-zero bytes are a valid `msghdr`; it names only `control` (aligned as the
    // kernel's headers are), with at most its length, and the CMSG macros walk no further than
    // that length and only read. Each header read lies inside the buffer (CMSG_FIRSTHDR and
    // CMSG_NXTHDR return null otherwise), and the `T` read after it is inside too when
    // `cmsg_len` says the header carries one; the callers' `T`s are C values valid for any bytes.
    unsafe {
        let mut header: libc::msghdr = mem::zeroed();
        header.msg_control = control.0.as_ptr().cast_mut().cast();
        header.msg_controllen = len as _;
        let mut c = libc::CMSG_FIRSTHDR(&raw const header);
        while !c.is_null() {
            let cmsg = std::ptr::read_unaligned(c);
            let carries = cmsg.cmsg_len as usize
                >= libc::CMSG_LEN(mem::size_of::<T>() as libc::c_uint) as usize;
            if cmsg.cmsg_level == level && cmsg.cmsg_type == kind && carries {
                return Some(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<T>()));
            }
            c = libc::CMSG_NXTHDR(&raw const header, c);
        }
    }
    None
}

/// The address the kernel wrote into `storage` (`len` bytes), if it is IPv4 or IPv6.
pub(crate) fn socket_addr(
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a `sockaddr_in`, the length that it is
            // all there; `sockaddr_storage` is aligned for every address type.
            let a = unsafe { &*(std::ptr::from_ref(storage).cast::<libc::sockaddr_in>()) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::new(ip.into(), u16::from_be(a.sin_port)))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for a `sockaddr_in6`.
            let a = unsafe { &*(std::ptr::from_ref(storage).cast::<libc::sockaddr_in6>()) };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}
