//! The WebSocket comparison: framewire's `/ws` against a tokio-tungstenite echo server (the
//! baseline a Rust user would write first) for echo, against nats-server's WebSocket listener
//! (`websocket { no_tls: true }`) for fan-out, and idle memory per WebSocket connection against
//! the tokio-tungstenite server. Every system is driven by the same in-process generators, the
//! servers pinned to core 0 and the generators (this process) to core 1, round by round.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;

use super::echo_load::{self, DATA_HEADER, EchoConfig, EchoResult, EchoWire};
use super::fanout;
use super::pubsub_wire::Wire;
use super::systems::{self, Running, Serves};
use super::table::{self, Section};
use super::ws_client::{self, Framing, WsStream};

/// The echo servers compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Echo {
    Framewire,
    Tungstenite,
}

impl Echo {
    fn name(self) -> &'static str {
        match self {
            Self::Framewire => "framewire /ws",
            Self::Tungstenite => "tokio-tungstenite",
        }
    }

    fn start(self) -> io::Result<Running> {
        let addr = systems::free_addr()?;
        match self {
            Self::Framewire => systems::start_program(
                &systems::framewire_binary()?,
                &framewire_args(addr),
                0,
                addr,
                Serves::Tcp,
            ),
            Self::Tungstenite => systems::start_program(
                &systems::sibling_binary("tungstenite_echo")?,
                &[addr.to_string()],
                0,
                addr,
                Serves::Tcp,
            ),
        }
    }

    /// Upgrades a connection, and for framewire opens its session.
    fn handshake(self, stream: &mut TcpStream, client: usize) -> io::Result<()> {
        match self {
            Self::Framewire => {
                let leftover = ws_client::upgrade(stream, "/ws", Some("framewire.v1"))?;
                Wire::Framewire.handshake_over(
                    &mut WsStream::new(stream, Framing::Frames, leftover),
                    client,
                    false,
                )
            }
            Self::Tungstenite => ws_client::upgrade(stream, "/", None).map(drop),
        }
    }
}

/// framewire serving WebSocket only, on `addr`.
fn framewire_args(addr: SocketAddr) -> Vec<String> {
    ["--tcp", "off", "--udp", "off", "--http", &addr.to_string()]
        .map(str::to_string)
        .to_vec()
}

/// Echo messages in WebSocket frames: each masked once, each copy's send time written in place
/// (masked); echoes read as the server's unmasked binary frames.
struct WsMessages {
    bytes: Vec<u8>,
    /// Where the send time (8 bytes, after the Data header) starts in `bytes`.
    stamp_at: usize,
}

impl WsMessages {
    fn new(payload: usize) -> Self {
        let mut body = DATA_HEADER.to_vec();
        body.resize(DATA_HEADER.len() + payload.max(8), 0xab);
        let mut bytes = BytesMut::new();
        ws_client::encode_masked(&body, &mut bytes);
        Self {
            stamp_at: bytes.len() - body.len() + DATA_HEADER.len(),
            bytes: bytes.to_vec(),
        }
    }
}

impl EchoWire for WsMessages {
    fn push(&self, sent: u64, out: &mut BytesMut) {
        let at = out.len() + self.stamp_at;
        out.extend_from_slice(&self.bytes);
        for (j, b) in sent.to_be_bytes().into_iter().enumerate() {
            // The payload's byte i is masked with MASK[i % 4].
            out[at + j] = b ^ ws_client::MASK[(DATA_HEADER.len() + j) % 4];
        }
    }

    fn take(&self, buf: &[u8]) -> io::Result<Option<(usize, Option<u64>)>> {
        let Some(frame) = ws_client::frame_at(buf)? else {
            return Ok(None);
        };
        let payload = &buf[frame.header..frame.end()];
        let sent = payload
            .get(4..12)
            .filter(|_| frame.opcode == 0x2)
            .map(|ts| u64::from_be_bytes(ts.try_into().unwrap_or([0; 8])));
        Ok(Some((frame.end(), sent)))
    }
}

/// Echo with `cfg.connections` pipelined connections, each message answered by the next.
fn run_echo(system: Echo, server: &Running, cfg: &EchoConfig) -> io::Result<EchoResult> {
    echo_load::run(&WsMessages::new(cfg.payload), server, cfg, |stream, i| {
        system.handshake(stream, i)
    })
}

/// nats-server with a WebSocket listener on `addr` (its client port elsewhere), from a
/// configuration file in a temporary directory removed with the server.
fn start_nats(addr: SocketAddr) -> io::Result<Running> {
    let dir = std::env::temp_dir().join(format!("fw-bench-nats-ws-{}", addr.port()));
    std::fs::create_dir_all(&dir)?;
    let conf = dir.join("nats.conf");
    let client = systems::free_addr()?;
    std::fs::write(
        &conf,
        format!(
            "listen: \"{client}\"\nwebsocket {{\n  listen: \"{addr}\"\n  no_tls: true\n  compression: false\n}}\n"
        ),
    )?;
    let args = ["-c".to_string(), conf.display().to_string()];
    let running = systems::start_program(Path::new("nats-server"), &args, 0, addr, Serves::Tcp)?;
    Ok(running.removing(dir))
}

/// The WebSocket comparison: echo of 64 B messages (framewire against tokio-tungstenite),
/// fan-out to each number of `subscribers` (framewire against nats-server, both over
/// WebSocket), and idle memory per WebSocket connection at `connections` (framewire against
/// tokio-tungstenite), each system skipped with a note where it is missing.
///
/// # Errors
/// framewire's server or the baseline is not built, or a run failed.
pub fn compare(
    rounds: usize,
    seconds: f64,
    subscribers: &[usize],
    connections: usize,
) -> io::Result<Vec<Section>> {
    Ok(vec![
        compare_echo(rounds, seconds)?,
        compare_fanout(rounds, seconds, subscribers)?,
        compare_idle(connections)?,
    ])
}

fn compare_echo(rounds: usize, seconds: f64) -> io::Result<Section> {
    let cfg = EchoConfig {
        connections: 16,
        window: 32,
        payload: 64,
        warmup: Duration::from_millis(500),
        measure: Duration::from_secs_f64(seconds),
    };
    let systems = [Echo::Framewire, Echo::Tungstenite];
    let results =
        echo_load::interleaved(&systems, rounds, "websocket echo", Echo::name, |system| {
            let server = system.start()?;
            run_echo(system, &server, &cfg)
        })?;
    let mut section = Section {
        title: format!(
            "WebSocket echo: 64 B binary messages (a framewire Data frame), 16 connections x 32 in flight, medians of {rounds} rounds of {seconds} s (in brackets: the lowest and highest round); ratios are framewire / this system"
        ),
        columns: vec![
            "system",
            "messages/s",
            "p50 us",
            "p99 us",
            "server CPU ns/message",
            "messages/s ratio",
        ],
        ..Section::default()
    };
    let rates: Vec<Vec<f64>> = results
        .iter()
        .map(|rs| rs.iter().map(|r| r.messages_per_s).collect())
        .collect();
    let ours = super::median(rates[0].clone());
    for (i, system) in systems.iter().enumerate() {
        let m = |f: fn(&EchoResult) -> f64| super::median(results[i].iter().map(f).collect());
        let rate = m(|r| r.messages_per_s);
        let ratio_range = super::range(&super::round_ratios(&rates[0], &rates[i]));
        let (p50, p99, cpu) = (m(|r| r.p50_us), m(|r| r.p99_us), m(|r| r.cpu_ns));
        section.rows.push(vec![
            system.name().to_string(),
            table::millions_with_range(rate, super::range(&rates[i])),
            format!("{p50:.0}"),
            format!("{p99:.0}"),
            format!("{cpu:.0}"),
            table::ratio_with_range(ours, rate, ratio_range),
        ]);
        section.json.push(format!(
            "{{\"section\":\"websocket echo\",\"system\":{},\"messages_per_s\":{rate:.0},\"p50_us\":{p50:.0},\"p99_us\":{p99:.0},\"server_cpu_ns_per_message\":{cpu:.0},\"ratio\":{:.3},\"ratio_min\":{:.3},\"ratio_max\":{:.3}}}",
            table::json_string(system.name()),
            ours / rate,
            ratio_range.0,
            ratio_range.1
        ));
    }
    Ok(section)
}

fn start_fanout_server(wire: Wire) -> io::Result<Running> {
    let addr = systems::free_addr()?;
    if wire == Wire::Nats {
        return start_nats(addr);
    }
    let program = systems::framewire_binary()?;
    systems::start_program(&program, &framewire_args(addr), 0, addr, Serves::Tcp)
}

fn compare_fanout(rounds: usize, seconds: f64, subscribers: &[usize]) -> io::Result<Section> {
    let systems: Vec<(Wire, fanout::Link)> = [Wire::Framewire, Wire::Nats]
        .into_iter()
        .filter(|&w| {
            let ok = fanout::available(w);
            if !ok {
                eprintln!("skipping {} over WebSocket: not installed", w.name());
            }
            ok
        })
        .map(|w| (w, fanout::Link::WebSocket))
        .collect();
    let plan = fanout::Comparison {
        title: format!(
            "Fan-out over WebSocket: one publisher and every subscriber on the server's WebSocket listener, 32 B messages, 128 in flight, medians of {rounds} rounds of {seconds} s; ratios are framewire / this system"
        ),
        label: "websocket fan-out",
        systems: &systems,
    };
    plan.run(rounds, seconds, subscribers, |wire, _| {
        start_fanout_server(wire)
    })
}

fn compare_idle(n: usize) -> io::Result<Section> {
    let mut measured = Vec::new();
    for system in [Echo::Framewire, Echo::Tungstenite] {
        let server = system.start()?;
        let (conns, per) =
            super::idle::measure_with(&server, n, |stream, i| system.handshake(stream, i))?;
        drop(conns);
        measured.push((system.name(), per));
    }
    Ok(super::idle::section(
        format!(
            "Idle memory over WebSocket: the server's resident memory growth per upgraded, idle WebSocket connection (framewire's with its session open), at {n} connections"
        ),
        "websocket idle memory",
        n,
        &measured,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_message_is_a_masked_data_frame_with_its_send_time() {
        let template = WsMessages::new(64);
        let mut out = BytesMut::new();
        let sent = 0x0102_0304_0506_0708;
        template.push(sent, &mut out);
        template.push(sent + 1, &mut out);
        // FIN + binary, masked, 68 bytes: the Data header and 64 of payload.
        assert_eq!(&out[..2], &[0x82, 0xc4]);
        assert_eq!(out.len(), 2 * (2 + 4 + 68));
        // What the server reads once it has unmasked them: the Data header, then the send time.
        for (i, want) in [sent, sent + 1].into_iter().enumerate() {
            // A client frame is masked: the server-frame reader refuses it.
            assert!(ws_client::frame_at(&out[i * 74..]).is_err());
            let body: Vec<u8> = out[i * 74 + 6..(i + 1) * 74]
                .iter()
                .enumerate()
                .map(|(j, b)| b ^ ws_client::MASK[j % 4])
                .collect();
            assert_eq!(&body[..4], &DATA_HEADER);
            assert_eq!(u64::from_be_bytes(body[4..12].try_into().unwrap()), want);
            assert!(body[12..].iter().all(|&b| b == 0xab));
        }
    }
}
