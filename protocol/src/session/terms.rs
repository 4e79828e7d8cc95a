//! The terms two sides agree in the handshake (docs/PROTOCOL.md sections 4.1, 4.3): one rule,
//! used by every handshake the crate implements (UDP and TCP, client and server).

use core::time::Duration;

use bytes::Bytes;

use crate::wire::{Frame, Hello, MIN_AGREED_FRAME_LEN, Reason, Reject, Text, VERSION};

/// What a server's Welcome says about the session a client joins (docs/PROTOCOL.md section 4.3):
/// the token to resume it by later, and whether this connection resumed an earlier session.
/// The server's application decides it when the Hello arrives (see
/// [`StreamSession::handle_bytes_with`](super::StreamSession::handle_bytes_with) and
/// [`Endpoint::handle_with`](super::Endpoint::handle_with)); the default is a new session with no
/// token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// The token to put in a later Hello's `RESUME_TOKEN` (at most 255 bytes; empty: no resume).
    pub session_token: Bytes,
    /// The Hello's `RESUME_TOKEN` named a session this connection now continues.
    pub resumed: bool,
    /// On resume: reliable messages dropped while the client was away.
    pub missed: u32,
    /// The keys the client's connect token carried, opened by the server: the session is sealed
    /// under keys derived from them (docs/PROTOCOL.md section 2.3). `None`: a plain session.
    pub seal: Option<crate::seal::TokenKeys>,
}

/// Why a server turns a client away at the handshake: the Reject's reason and message
/// (docs/PROTOCOL.md section 4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The reason code (`SESSION_LIMIT`, `AUTH_FAILED`, ...).
    pub reason: Reason,
    /// For people.
    pub message: Text,
    /// Over UDP, no Reject is sent: the Hello is dropped as if it never came (a connect token
    /// whose seal does not open: a forger learns nothing, not even that the server heard it).
    /// A stream session sends its Reject whatever this says (a TCP peer is no spoofed address).
    pub silent: bool,
}

/// Decides, from a client's Hello and its connection id, the [`Admission`] its Welcome carries,
/// or a [`Refusal`] that a Reject carries instead.
pub trait Admit: FnMut(&Hello, u64) -> Result<Admission, Refusal> {}

impl<F: FnMut(&Hello, u64) -> Result<Admission, Refusal>> Admit for F {}

/// The Reject that carries a refusal.
pub(crate) fn refusal_reject(refusal: Refusal) -> Frame {
    Frame::new(Reject {
        reason: refusal.reason,
        min_version: VERSION,
        max_version: VERSION,
        message: refusal.message,
    })
}

/// The Reject a server sends to a Hello that lists no version it speaks (section 4.4): it speaks
/// 1 to `max_version`.
pub(crate) fn version_reject(max_version: u8) -> Frame {
    Frame::new(Reject {
        reason: Reason::UNSUPPORTED_VERSION,
        min_version: VERSION,
        max_version,
        message: Text::from_static(match max_version {
            0 | 1 => "this server speaks version 1",
            2 => "this server speaks versions 1 and 2",
            3 => "this server speaks versions 1 to 3",
            _ => "this server speaks versions 1 to 4 (4 for sealed sessions only)",
        }),
    })
}

/// The frame length limit both sides keep to, in both directions: the smaller of the Hello's and
/// `ours` (docs/PROTOCOL.md section 6.2). A Hello asking for less than [`MIN_AGREED_FRAME_LEN`] is
/// refused: below it a side could not even send a Close with its reason.
pub(crate) fn agree_frame_len(ours: u32, hello: &Hello) -> Result<u32, Refusal> {
    if hello.max_frame_len < MIN_AGREED_FRAME_LEN {
        return Err(Refusal {
            silent: false,
            reason: Reason::PROTOCOL_ERROR,
            message: Text::from(
                alloc::format!(
                    "max frame length {} is below the least this server agrees, {MIN_AGREED_FRAME_LEN}",
                    hello.max_frame_len
                )
                .as_str(),
            ),
        });
    }
    Ok(hello.max_frame_len.min(ours))
}

/// The least idle timeout a peer's Hello can agree (docs/PROTOCOL.md section 4.1): a smaller
/// ask is taken as this, so a peer cannot make a session churn on a millisecond timer.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_millis(100);

/// The agreed idle timeout: the smaller of ours and the peer's, where the peer's 0 means "no
/// preference" and an ask below [`MIN_IDLE_TIMEOUT`] counts as that.
pub(crate) fn agree_idle(ours: Duration, theirs_ms: u32) -> Duration {
    if theirs_ms == 0 {
        ours
    } else {
        ours.min(Duration::from_millis(u64::from(theirs_ms)).max(MIN_IDLE_TIMEOUT))
    }
}

/// The heartbeat interval in force: the smaller of ours and the peer's (0: no preference), and
/// never more than a third of the agreed idle timeout, so that a lost heartbeat or two do not end
/// a live session.
pub(crate) fn agree_heartbeat(ours: Duration, theirs_ms: u32, idle: Duration) -> Duration {
    let asked = if theirs_ms == 0 {
        ours
    } else {
        ours.min(Duration::from_millis(u64::from(theirs_ms)))
    };
    asked.min(idle / 3)
}

/// A duration as the wire's u32 milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_no_preference_and_the_smaller_wins() {
        let ten = Duration::from_secs(10);
        assert_eq!(agree_idle(ten, 0), ten);
        assert_eq!(agree_idle(ten, 5000), Duration::from_secs(5));
        assert_eq!(agree_idle(ten, 20_000), ten);
        // No floor under a peer's millisecond.
        assert_eq!(agree_idle(ten, 1), MIN_IDLE_TIMEOUT);
        // Ours may be lower than the floor: it is ours.
        let fifty = Duration::from_millis(50);
        assert_eq!(agree_idle(fifty, 1000), fifty);
        // The heartbeat keeps within a third of the idle timeout.
        let one = Duration::from_secs(1);
        assert_eq!(agree_heartbeat(one, 0, ten), one);
        assert_eq!(agree_heartbeat(one, 500, ten), Duration::from_millis(500));
        assert_eq!(
            agree_heartbeat(one, 0, Duration::from_millis(600)),
            Duration::from_millis(200)
        );
        assert_eq!(millis(Duration::from_secs(u64::MAX)), u32::MAX);
    }
}
