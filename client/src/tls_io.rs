//! TLS over a non-blocking socket, driven by readiness as rustls's own mio example drives it: the
//! records the socket gives are fed to rustls, and the plaintext they carry is read out into the
//! caller's buffer; the plaintext the caller writes is sealed into records rustls buffers, and
//! written to the socket as far as it takes them. No runtime, no thread, no waiting. The server's
//! event loop uses the same functions, so both ends move TLS bytes the same way.

use std::io::{self, Read, Write};

use rustls::{ConnectionCommon, SideData};

/// The ALPN protocol a framewire TLS connection agrees on (docs/PROTOCOL.md section 2.1).
pub const ALPN: &[u8] = b"framewire/1";

/// Plaintext a connection buffers for sending before it must wait for the socket: rustls's own
/// default, stated so that a connection's memory has a bound the docs can name.
pub const SEND_BUFFER_LIMIT: usize = 64 * 1024;

/// What [`read_records`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsRead {
    /// The socket gave this many bytes of records.
    Data(usize),
    /// Nothing more until the socket is readable again.
    WouldBlock,
    /// The peer closed the TLS session with a `close_notify` alert.
    Closed,
    /// The socket ended without a `close_notify` (the peer may have been cut off).
    Eof,
}

/// Reads what the socket has (one read into `raw`), opens the records it holds, and writes their
/// plaintext into `out`: one system call per `raw` of records (rustls's own reads from a socket
/// take 4 KiB at a time). Plaintext rustls held from before comes first. Returns how many bytes the
/// socket gave (`Data`, 0 when `out` had no room for another read), or why it gave none; and how
/// many bytes of plaintext are at the start of `out` (deliver them before acting on a `Closed` or
/// an `Eof`). `out` must be at least as long as `raw`: records never open to more than they hold.
///
/// # Errors
/// The socket failed, or the peer broke the TLS protocol: a record that does not verify or a
/// handshake that fails is an error of kind [`io::ErrorKind::InvalidData`] whose message says why
/// (the alert rustls queued for the peer is written first, best effort).
pub fn read_records<S: SideData>(
    tls: &mut ConnectionCommon<S>,
    socket: &mut (impl Read + Write),
    raw: &mut [u8],
    out: &mut [u8],
) -> io::Result<(TlsRead, usize)> {
    let mut filled = 0;
    if drain_into(tls, out, &mut filled)? {
        return Ok((TlsRead::Closed, filled));
    }
    if out.len() - filled < raw.len() {
        // What rustls held first; the socket's turn comes with the next call.
        return Ok((TlsRead::Data(0), filled));
    }
    let n = loop {
        match socket.read(raw) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok((TlsRead::WouldBlock, filled));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    if n == 0 {
        tls.process_new_packets().map_err(tls_error)?;
        return Ok((TlsRead::Eof, filled));
    }
    let mut records = &raw[..n];
    while !records.is_empty() {
        // From a slice rustls takes what fits its buffer (4 KiB or more); what it takes is opened
        // and moved out at once, so the buffer never fills.
        tls.read_tls(&mut records)?;
        if let Err(e) = tls.process_new_packets() {
            let _ = write_records(tls, socket);
            discard_unread(socket);
            return Err(tls_error(e));
        }
        if drain_into(tls, out, &mut filled)? {
            return Ok((TlsRead::Closed, filled));
        }
    }
    Ok((TlsRead::Data(n), filled))
}

/// Moves the plaintext rustls holds into `out` after `filled` (as much as fits); `true` once the
/// peer's `close_notify` came and everything before it is out.
fn drain_into<S: SideData>(
    tls: &mut ConnectionCommon<S>,
    out: &mut [u8],
    filled: &mut usize,
) -> io::Result<bool> {
    while *filled < out.len() {
        match tls.reader().read(&mut out[*filled..]) {
            Ok(0) => return Ok(true),
            Ok(n) => *filled += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            // The socket ended without a close_notify: the next socket read says so.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Reads and drops what has arrived but will never be read (the rest of a handshake flight that
/// failed): a socket closed with unread bytes is reset, and a reset can overtake the alert just
/// written, so the peer would learn only that the connection broke, not why. Bounded; never
/// waits.
fn discard_unread(socket: &mut impl Read) {
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        match socket.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}

/// Seals as much of `data` as rustls takes and writes the records to `socket`, until both are
/// out or the socket would block; returns how many bytes of `data` were taken (the caller drops
/// them from its output). Less than all once [`SEND_BUFFER_LIMIT`] bytes wait for the socket.
///
/// # Errors
/// The socket failed, or the connection is closing and takes nothing more.
pub fn write_sealed<S: SideData>(
    tls: &mut ConnectionCommon<S>,
    socket: &mut impl Write,
    data: &[u8],
) -> io::Result<usize> {
    let mut taken = 0;
    loop {
        let more = if taken < data.len() {
            tls.writer().write(&data[taken..])?
        } else {
            0
        };
        taken += more;
        // Everything sealed is out: seal more, if there was more than rustls took.
        if !write_records(tls, socket)? || more == 0 {
            return Ok(taken);
        }
    }
}

/// Writes the records rustls holds to `socket` until they are all out (`Ok(true)`) or the socket
/// would block (`Ok(false)`; also while a non-blocking connect is still under way).
///
/// # Errors
/// The socket failed.
pub fn write_records<S: SideData>(
    tls: &mut ConnectionCommon<S>,
    socket: &mut impl Write,
) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(socket) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::NotConnected
                ) =>
            {
                return Ok(false);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// A rustls error as an I/O error that keeps rustls's words.
pub fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}
