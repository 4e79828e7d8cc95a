//! The server's platform code: what needs `unsafe` or a particular operating system lives here and
//! nowhere else (STYLE.md 5).

#[cfg(target_os = "linux")]
mod gso;
#[cfg(target_os = "linux")]
mod recvmmsg;

#[cfg(target_os = "linux")]
pub(crate) use gso::{MAX_SEGMENTS, segmentation_unsupported, send_segments};
#[cfg(target_os = "linux")]
pub(crate) use recvmmsg::RecvBatch;

/// Elsewhere, one datagram per call through the standard socket, both ways.
#[cfg(not(target_os = "linux"))]
mod single;

#[cfg(not(target_os = "linux"))]
pub(crate) use single::{MAX_SEGMENTS, RecvBatch, segmentation_unsupported, send_segments};
