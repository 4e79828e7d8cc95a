//! LAN discovery (docs/PROTOCOL.md section 4.12): ask the servers on a network for their names
//! and addresses, without knowing any of them.
//!
//! [`discover`] sends a Discover datagram to each target (usually a broadcast address, as
//! [`DiscoverOptions::default`] does: `255.255.255.255:7400`), sends it again twice within the
//! wait in case one was lost, and gathers the answers until the wait is over: one [`Discovered`]
//! per server, in the order they answered.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use framewire_protocol::discovery::{self, DEFAULT_DISCOVER_SIZE};
use framewire_protocol::wire::NodeCard;

/// Where to ask and how long to listen.
#[derive(Debug, Clone)]
pub struct DiscoverOptions {
    /// Where the Discover goes: broadcast addresses, or servers' UDP addresses.
    pub targets: Vec<SocketAddr>,
    /// How long to gather answers.
    pub wait: Duration,
    /// The Discover's size in bytes: no answer is as long, so a server whose card does not fit
    /// leaves address lines out ([`Discovered::truncated`]).
    pub size: usize,
}

impl Default for DiscoverOptions {
    fn default() -> Self {
        Self {
            targets: vec![SocketAddr::from((Ipv4Addr::BROADCAST, 7400))],
            wait: Duration::from_secs(1),
            size: DEFAULT_DISCOVER_SIZE,
        }
    }
}

/// A server that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// Where its answer came from.
    pub from: SocketAddr,
    /// Its name and addresses, an unspecified host (a server bound to `0.0.0.0`) replaced by
    /// the one its answer came from.
    pub card: NodeCard,
    /// It left address lines out: ask again with a larger [`DiscoverOptions::size`].
    pub truncated: bool,
}

/// Asks, and gathers the answers for `options.wait`; `each` sees each server as it answers.
///
/// # Errors
/// No socket could be opened, or none of the targets could be sent to (a broadcast address
/// without a network that has one, say).
pub fn discover(
    options: &DiscoverOptions,
    mut each: impl FnMut(&Discovered),
) -> io::Result<Vec<Discovered>> {
    let v6 = options.targets.first().is_some_and(SocketAddr::is_ipv6);
    let socket = if v6 {
        UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0))?
    } else {
        UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?
    };
    socket.set_broadcast(true)?;
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| io::Error::other(e.to_string()))?;
    let nonce = u64::from_le_bytes(nonce);
    let request = discovery::request(nonce, options.size);
    let start = Instant::now();
    let deadline = start + options.wait;
    // Sent at once, then again at a quarter and half of the wait: a server answers each address
    // and nonce once, so the copies only cover a loss.
    let mut sends = [Duration::ZERO, options.wait / 4, options.wait / 2]
        .map(|after| start + after)
        .into_iter()
        .peekable();
    let mut found: Vec<Discovered> = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        while sends.next_if(|at| *at <= now).is_some() {
            send_to_all(&socket, &request, &options.targets)?;
        }
        if now >= deadline {
            return Ok(found);
        }
        let until = sends.peek().map_or(deadline, |at| (*at).min(deadline));
        socket.set_read_timeout(Some(
            until
                .saturating_duration_since(now)
                .max(Duration::from_millis(1)),
        ))?;
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            // An ICMP error for an earlier send (a target with nothing listening): go on.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(e),
        };
        let Ok(here) = discovery::read_answer(&buf[..n]) else {
            continue;
        };
        if here.nonce != nonce {
            continue;
        }
        let mut card = here.card;
        card.resolve(from);
        let server = Discovered {
            from,
            card,
            truncated: here.truncated,
        };
        if !found
            .iter()
            .any(|d| d.from == server.from && d.card.name == server.card.name)
        {
            each(&server);
            found.push(server);
        }
    }
}

/// Sends `request` to each target; fails only when it could be sent to none.
fn send_to_all(socket: &UdpSocket, request: &[u8], targets: &[SocketAddr]) -> io::Result<()> {
    let mut last_error = None;
    let mut sent = false;
    for target in targets {
        match socket.send_to(request, target) {
            Ok(_) => sent = true,
            Err(e) => {
                log::debug!("discover: sending to {target} failed: {e}");
                last_error = Some(e);
            }
        }
    }
    match (sent, last_error) {
        (false, Some(e)) => Err(e),
        _ => Ok(()),
    }
}
