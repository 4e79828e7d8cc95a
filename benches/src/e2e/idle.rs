//! Idle memory per connection: open N connections to a server, complete each handshake, and read
//! how much the server's resident memory grew, divided by N.

use std::io;
use std::net::{IpAddr, TcpStream};
use std::time::Duration;

use super::pubsub_wire::Wire;
use super::systems::{self, Running};
use super::table::{Section, json_string, ratio};

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

/// The idle-memory comparison at `n` connections: framewire, the tokio echo baseline (which holds
/// a connection with no handshake at all), and mosquitto (skipped where it is not installed).
///
/// # Errors
/// framewire's server is missing, or a measurement of it failed.
pub fn compare(n: usize) -> io::Result<Section> {
    let mut measured: Vec<(&'static str, f64)> = Vec::new();
    for wire in [Wire::Framewire, Wire::Mqtt] {
        if !super::fanout::available(wire) {
            eprintln!("skipping {}: not installed", wire.name());
            continue;
        }
        let server = systems::start(wire, 0)?;
        let (conns, per) = measure(wire, &server, n)?;
        drop(conns);
        measured.push((wire.name(), per));
    }
    let addr = systems::free_addr()?;
    let program = systems::sibling_binary("tokio_echo")?;
    let server =
        systems::start_program(&program, &[addr.to_string()], 0, addr, systems::Serves::Tcp)?;
    let (conns, per) = measure_with(&server, n, |_, _| Ok(()))?;
    drop(conns);
    measured.push(("tokio + LengthDelimitedCodec", per));
    Ok(section(
        format!(
            "Idle memory: the server's resident memory growth per handshaken, idle TCP connection, at {n} connections"
        ),
        "idle memory",
        n,
        &measured,
    ))
}

/// An idle-memory table: each system's bytes per connection at `n`, against the first's.
pub fn section(title: String, label: &str, n: usize, measured: &[(&str, f64)]) -> Section {
    let ours = measured.first().map_or(f64::NAN, |m| m.1);
    let mut section = Section {
        title,
        columns: vec![
            "system",
            "connections",
            "bytes per connection",
            "framewire / this",
        ],
        ..Section::default()
    };
    for &(name, per) in measured {
        section.rows.push(vec![
            name.to_string(),
            n.to_string(),
            format!("{per:.0}"),
            ratio(ours, per),
        ]);
        section.json.push(format!(
            "{{\"section\":\"{label}\",\"system\":{},\"connections\":{n},\"bytes_per_connection\":{per:.0},\"ratio\":{:.3}}}",
            json_string(name),
            ours / per
        ));
    }
    section
}
