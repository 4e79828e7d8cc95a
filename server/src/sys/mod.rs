//! The server's platform code: what needs `unsafe` or a particular operating system lives here and
//! nowhere else (STYLE.md 5).

#[cfg(target_os = "linux")]
mod recvmmsg;

#[cfg(target_os = "linux")]
pub(crate) use recvmmsg::RecvBatch;

/// Elsewhere, a batch of one datagram per call through the standard socket.
#[cfg(not(target_os = "linux"))]
mod single;

#[cfg(not(target_os = "linux"))]
pub(crate) use single::RecvBatch;
