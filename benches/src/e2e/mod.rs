//! End-to-end comparisons: framewire against the servers its users would pick instead, started as
//! processes of their own on loopback and driven the same way in the same run.
//!
//! - [`echo`]: echo round trips over TCP (framewire, tokio, raw mio) and UDP (framewire, ENet).
//! - [`fanout`]: one publisher to many subscribers (framewire, nats-server, mosquitto).
//! - [`udp_wire`]: bytes per message of a steady reliable stream through a lossy link (framewire,
//!   ENet).
//! - [`idle`]: server memory per idle connection (framewire, tokio, mosquitto).
//! - [`async_clients`]: publish rate and request latency of the async and blocking framewire
//!   clients against async-nats on nats-server.
//!
//! Each returns a [`table::Section`]; the `compare` binary runs them all and prints them.

pub mod async_clients;
pub mod durable;
pub mod echo;
pub mod echo_load;
pub mod echo_second;
pub mod enet;
pub mod fanout;
pub mod idle;
pub mod lossy_relay;
pub mod pubsub_wire;
pub mod push_wire;
pub mod scale_out;
pub mod secure;
pub mod systems;
pub mod table;
pub mod udp_wire;
pub mod websocket;
pub mod ws_client;

/// A TCP connection to `server` from the local address `from` (spreading many connections over
/// 127.0.0.2, .3, ... keeps each source address within its ephemeral ports).
///
/// # Errors
/// The socket cannot be created, bound or connected.
pub fn connect_from(
    from: std::net::IpAddr,
    server: std::net::SocketAddr,
) -> std::io::Result<std::net::TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(server),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.bind(&std::net::SocketAddr::new(from, 0).into())?;
    socket.connect(&server.into())?;
    Ok(socket.into())
}

/// The median of some measurements (`NaN` for none).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => f64::midpoint(xs[n / 2 - 1], xs[n / 2]),
    }
}

/// The smallest and largest of some measurements (`NaN`s for none).
pub fn range(xs: &[f64]) -> (f64, f64) {
    xs.iter()
        .fold((f64::NAN, f64::NAN), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// Round-by-round ratios `ours[k] / theirs[k]` of interleaved samples: each pair ran back to back,
/// so its ratio shares the machine's state of that moment, and their spread says how firmly a
/// median ratio holds.
pub fn round_ratios(ours: &[f64], theirs: &[f64]) -> Vec<f64> {
    ours.iter().zip(theirs).map(|(o, t)| o / t).collect()
}
