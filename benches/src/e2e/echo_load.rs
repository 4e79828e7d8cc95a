//! A pipelined echo load generator of our own: one thread, one mio loop, N connections with a
//! window of messages in flight on each, every echo answered by the next message. Each message
//! is built once and copied (its send time written in place), and echoes are read where they lie
//! in the buffer, so the generator's cost per message is a copy and a parse of its header, well
//! below any server's: the rates are the servers'. What the bytes are is a [`EchoWire`]: framewire
//! stream frames ([`StreamFrames`], which tokio's `LengthDelimitedCodec` echo and the raw mio echo
//! take as they are), or framewire frames in WebSocket messages (`websocket.rs`).

use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};

use super::systems::Running;

/// A framewire Data frame's version byte and header (kind 0x20, no flags, channel 0): what every
/// echo message carries before its payload.
pub const DATA_HEADER: [u8; 4] = [0x01, 0x20, 0x00, 0x00];

/// How one system's echo messages look on the wire.
pub trait EchoWire {
    /// Appends one message whose payload starts with `sent` (nanoseconds since the run's epoch).
    fn push(&self, sent: u64, out: &mut BytesMut);

    /// The whole frame at the front of `buf`, if it is all there: its length, and the send time
    /// it carries if it is an echo (`None` for anything else the server sends, a heartbeat say).
    ///
    /// # Errors
    /// Bytes that are no frame of this wire.
    fn take(&self, buf: &[u8]) -> io::Result<Option<(usize, Option<u64>)>>;
}

/// Framewire Data frames as a TCP stream carries them (docs/PROTOCOL.md section 2.1): a `u32`
/// length, the version byte and the Data header, the payload, its CRC-32. The CRC covers the send
/// time, so each copy gets its own.
#[derive(Debug)]
pub struct StreamFrames {
    template: Vec<u8>,
}

/// The send time's offset in a stream frame: after the length prefix and the Data header.
const STREAM_STAMP_AT: usize = 4 + DATA_HEADER.len();

impl StreamFrames {
    /// Messages with `payload` bytes after the Data header (at least 8: the send time).
    pub fn new(payload: usize) -> Self {
        let body_len = DATA_HEADER.len() + payload.max(8);
        let mut template = Vec::with_capacity(4 + body_len + 4);
        template.extend_from_slice(&((body_len + 4) as u32).to_be_bytes());
        template.extend_from_slice(&DATA_HEADER);
        template.resize(4 + body_len, 0xab);
        template.extend_from_slice(&[0; 4]);
        Self { template }
    }
}

impl EchoWire for StreamFrames {
    fn push(&self, sent: u64, out: &mut BytesMut) {
        let at = out.len();
        out.extend_from_slice(&self.template);
        let frame = &mut out[at..];
        frame[STREAM_STAMP_AT..STREAM_STAMP_AT + 8].copy_from_slice(&sent.to_be_bytes());
        let crc_at = frame.len() - 4;
        let crc = crc32fast::hash(&frame[4..crc_at]);
        frame[crc_at..].copy_from_slice(&crc.to_be_bytes());
    }

    fn take(&self, buf: &[u8]) -> io::Result<Option<(usize, Option<u64>)>> {
        let Some(prefix) = buf.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if len > 16 * 1024 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a frame length of {len}"),
            ));
        }
        let Some(frame) = buf.get(..4 + len) else {
            return Ok(None);
        };
        let echo = frame.get(4..6) == Some(&DATA_HEADER[..2]);
        let sent = frame
            .get(STREAM_STAMP_AT..STREAM_STAMP_AT + 8)
            .filter(|_| echo)
            .map(|ts| u64::from_be_bytes(ts.try_into().unwrap_or([0; 8])));
        Ok(Some((frame.len(), sent)))
    }
}

/// One echo run's shape.
#[derive(Debug, Clone)]
pub struct EchoConfig {
    /// Connections, each with `window` messages in flight.
    pub connections: usize,
    pub window: usize,
    /// Payload bytes after the Data header (at least 8: the send time).
    pub payload: usize,
    pub warmup: Duration,
    pub measure: Duration,
}

/// What one echo run measured.
#[derive(Debug, Clone)]
pub struct EchoResult {
    pub messages_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Server CPU time per echoed message, nanoseconds.
    pub cpu_ns: f64,
}

struct Conn {
    stream: mio::net::TcpStream,
    raw: BytesMut,
    out: BytesMut,
}

fn write_out(conn: &mut Conn) -> io::Result<()> {
    while !conn.out.is_empty() {
        match conn.stream.write(&conn.out) {
            Ok(n) => conn.out.advance(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn nanos_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Echo against `server` with `cfg.connections` pipelined connections (from 127.0.0.2-9), each
/// opened by `handshake` (blocking) before the load starts.
///
/// # Errors
/// A connection or handshake failed, or the server closed or sent bytes of no frame.
pub fn run(
    wire: &impl EchoWire,
    server: &Running,
    cfg: &EchoConfig,
    handshake: impl Fn(&mut TcpStream, usize) -> io::Result<()>,
) -> io::Result<EchoResult> {
    let epoch = Instant::now();
    let poll = Poll::new()?;
    let mut conns = Vec::with_capacity(cfg.connections);
    for i in 0..cfg.connections {
        let from = IpAddr::from([127, 0, 0, 2 + (i % 8) as u8]);
        let mut stream = super::connect_from(from, server.addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        handshake(&mut stream, i)?;
        stream.set_nonblocking(true)?;
        let mut stream = mio::net::TcpStream::from_std(stream);
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let mut conn = Conn {
            stream,
            raw: BytesMut::new(),
            out: BytesMut::new(),
        };
        let sent = nanos_since(epoch);
        for _ in 0..cfg.window {
            wire.push(sent, &mut conn.out);
        }
        write_out(&mut conn)?;
        conns.push(conn);
    }
    let mut poll = poll;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut events = Events::with_capacity(1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let (from, to) = (start + cfg.warmup, start + cfg.warmup + cfg.measure);
    let mut marks: Option<(Instant, u64, Duration)> = None;
    let mut echoed = 0u64;
    loop {
        let now = Instant::now();
        if marks.is_none() && now >= from {
            marks = Some((now, echoed, server.cpu_time()?));
        }
        if now >= to {
            break;
        }
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for event in &events {
            let Some(conn) = conns.get_mut(event.token().0) else {
                continue;
            };
            loop {
                match conn.stream.read(&mut chunk) {
                    Ok(0) => return Err(io::Error::other("the server closed a connection")),
                    Ok(n) => conn.raw.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            // One clock reading per read: the send time of every answer, the arrival time of
            // every echo in it.
            let now_ns = nanos_since(epoch);
            let mut at = 0;
            while let Some((len, sent)) = wire.take(&conn.raw[at..])? {
                at += len;
                let Some(sent) = sent else {
                    continue;
                };
                echoed += 1;
                if marks.is_some() {
                    let _ = hist.record((now_ns.saturating_sub(sent) / 1000).max(1));
                }
                wire.push(now_ns, &mut conn.out);
            }
            conn.raw.advance(at);
            write_out(conn)?;
        }
    }
    let end = Instant::now();
    let cpu_end = server.cpu_time()?;
    let (t0, e0, cpu0) = marks.ok_or_else(|| io::Error::other("ended before measuring"))?;
    let messages = echoed - e0;
    let secs = (end - t0).as_secs_f64();
    Ok(EchoResult {
        messages_per_s: messages as f64 / secs,
        p50_us: hist.value_at_quantile(0.5) as f64,
        p99_us: hist.value_at_quantile(0.99) as f64,
        cpu_ns: cpu_end.saturating_sub(cpu0).as_secs_f64() * 1e9 / (messages.max(1) as f64),
    })
}

/// Runs each of `systems` once per round, round by round (A B A B ...), printing each sample as
/// `label` and the system's `name`; the results by system, in round order.
///
/// # Errors
/// A run failed.
pub fn interleaved<S: Copy>(
    systems: &[S],
    rounds: usize,
    label: &str,
    name: impl Fn(S) -> &'static str,
    mut run: impl FnMut(S) -> io::Result<EchoResult>,
) -> io::Result<Vec<Vec<EchoResult>>> {
    let mut results: Vec<Vec<EchoResult>> = vec![Vec::new(); systems.len()];
    for round in 0..rounds {
        for (i, &system) in systems.iter().enumerate() {
            let r = run(system)?;
            eprintln!(
                "{label} round {}/{rounds} {}: {:.0} msgs/s, p50 {:.0} us, p99 {:.0} us, {:.0} ns CPU/msg",
                round + 1,
                name(system),
                r.messages_per_s,
                r.p50_us,
                r.p99_us,
                r.cpu_ns
            );
            results[i].push(r);
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_message_is_a_data_frame_with_its_send_time_and_crc() {
        let wire = StreamFrames::new(64);
        let mut out = BytesMut::new();
        wire.push(0x0102_0304_0506_0708, &mut out);
        wire.push(9, &mut out);
        let frame = framewire_protocol::wire::StreamDeframer::new(1 << 20)
            .decode(&mut out.clone())
            .unwrap()
            .expect("a whole frame, its CRC checked");
        let parsed = framewire_protocol::wire::Frame::parse(frame).unwrap();
        let framewire_protocol::wire::FrameBody::Data(d) = parsed.body else {
            panic!("a Data frame: {parsed:?}");
        };
        assert_eq!(&d.payload[..8], &0x0102_0304_0506_0708u64.to_be_bytes());
        assert_eq!(d.payload.len(), 64);
        let (len, sent) = wire.take(&out).unwrap().unwrap();
        assert_eq!((len, sent), (4 + 4 + 64 + 4, Some(0x0102_0304_0506_0708)));
        assert_eq!(wire.take(&out[len..]).unwrap(), Some((len, Some(9))));
        assert_eq!(
            wire.take(&out[..len - 1]).unwrap(),
            None,
            "half a frame waits"
        );
    }
}
