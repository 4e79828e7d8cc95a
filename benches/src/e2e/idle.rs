//! Idle memory per connection: open N connections to a server, complete each handshake, and read
//! how much the server's resident memory grew, divided by N.

use std::io;
use std::net::{IpAddr, TcpStream};
use std::time::Duration;

use super::pubsub_wire::Wire;
use super::systems::Running;

/// Opens `n` handshaken, idle connections to `server` from 127.0.0.2 onwards (1,000 per address,
/// within framewire's default per-address limit), and returns them with the server's RSS growth per connection in bytes.
///
/// # Errors
/// A connection or handshake failed, or /proc could not be read.
pub fn measure(wire: Wire, server: &Running, n: usize) -> io::Result<(Vec<TcpStream>, f64)> {
    measure_with(server, n, |stream, i| wire.handshake(stream, i, false))
}

/// As [`measure`], with the handshake a server expects (none, for a plain echo).
///
/// # Errors
/// As [`measure`].
pub fn measure_with(
    server: &Running,
    n: usize,
    handshake: impl Fn(&mut TcpStream, usize) -> io::Result<()>,
) -> io::Result<(Vec<TcpStream>, f64)> {
    // Let the server settle, then take the baseline.
    std::thread::sleep(Duration::from_millis(200));
    let before = server.rss_bytes()?;
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let from = IpAddr::from([127, 0, 0, 2 + u8::try_from(i / 1000).unwrap_or(200)]);
        let mut stream = super::connect_from(from, server.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        handshake(&mut stream, i)?;
        conns.push(stream);
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = server.rss_bytes()?;
    Ok((conns, after.saturating_sub(before) as f64 / n as f64))
}
