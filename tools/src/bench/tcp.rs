//! Bench clients over TCP: frames encoded and decoded in place on non-blocking sockets, over TLS
//! with `--tls` (rustls, as the client crate drives it).

use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use framewire_client::tls_io::{self, TlsRead};
use framewire_protocol::wire::{
    DEFAULT_MAX_FRAME_LEN, Frame, FrameBody, Hello, HelloOptions, Pong, StreamDeframer, Subscribe,
    Text, VERSION, crc32, encode_stream_frame_into,
};
use mio::{Events, Interest, Poll, Token};

use super::{BenchConfig, Mode, Progress, Shared, Tally, payload};

struct Client {
    stream: mio::net::TcpStream,
    tls: Option<Box<rustls::ClientConnection>>,
    deframer: StreamDeframer,
    input: BytesMut,
    output: BytesMut,
    in_flight: u32,
    topic: String,
    writable: bool,
    last_progress: Progress,
}

/// Appends a stream frame whose body is `head` then `body`, computing the CRC in place.
fn frame(out: &mut BytesMut, head: &[u8], body: &[u8]) {
    let len = 1 + head.len() + body.len() + 4;
    let start = out.len();
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&[VERSION]);
    out.extend_from_slice(head);
    out.extend_from_slice(body);
    let crc = crc32(&out[start + 4..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A connected client, its TLS session (if any), after the framewire handshake (none with `raw`).
type Connected = (std::net::TcpStream, Option<Box<rustls::ClientConnection>>);

fn handshake(cfg: &BenchConfig, topic: &str) -> io::Result<Connected> {
    let mut s = std::net::TcpStream::connect_timeout(&cfg.server, Duration::from_secs(3))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let Some(tls) = &cfg.tls else {
        if !cfg.raw {
            exchange(cfg, topic, &mut s)?;
        }
        return Ok((s, None));
    };
    let mut conn = rustls::ClientConnection::new(tls.config.clone(), tls.name_for(cfg.server))
        .map_err(io::Error::other)?;
    // The handshake completes with the first write and read through the stream.
    exchange(cfg, topic, &mut rustls::Stream::new(&mut conn, &mut s))?;
    Ok((s, Some(Box::new(conn))))
}

/// The framewire handshake over `s`: the Hello (and the Subscribe of pub/sub), to the Welcome
/// (and the Subscribe's answer).
fn exchange(cfg: &BenchConfig, topic: &str, s: &mut (impl Read + Write)) -> io::Result<()> {
    let mut out = BytesMut::new();
    let hello = Frame::new(Hello::new(0, HelloOptions::new()));
    encode_stream_frame_into(&hello, &mut out).map_err(io::Error::other)?;
    if cfg.mode == Mode::Pubsub {
        let sub = Frame::new(Subscribe {
            id: 1,
            filter: Text::from(topic),
        });
        encode_stream_frame_into(&sub, &mut out).map_err(io::Error::other)?;
    }
    s.write_all(&out)?;
    let mut deframer = StreamDeframer::new(DEFAULT_MAX_FRAME_LEN);
    let mut input = BytesMut::new();
    let mut chunk = [0u8; 4096];
    let mut welcomed = false;
    loop {
        while let Some(body) = deframer.decode(&mut input).map_err(io::Error::other)? {
            match Frame::parse(body).map_err(io::Error::other)?.body {
                FrameBody::Welcome(_) if cfg.mode == Mode::Echo => return Ok(()),
                FrameBody::Welcome(_) => welcomed = true,
                FrameBody::Response(r) if welcomed && r.id == 1 => return Ok(()),
                other => return Err(io::Error::other(format!("unexpected {:?}", other.kind()))),
            }
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::other("the server closed the connection"));
        }
        input.extend_from_slice(&chunk[..n]);
    }
}

impl Client {
    /// Tops the window up with new messages.
    fn fill(&mut self, cfg: &BenchConfig, shared: &Shared, scratch: &mut Vec<u8>) {
        let channel = cfg.channel.number();
        // The refill is written at once: one send time for all of it.
        payload(cfg.size, shared.nanos(), scratch);
        while self.in_flight < cfg.window {
            match cfg.mode {
                Mode::Echo => frame(&mut self.output, &[0x20, 0, channel], scratch),
                Mode::Pubsub => {
                    let mut head = vec![0x32, 0, channel, 0, 0, 0, 0];
                    head.extend_from_slice(
                        &u16::try_from(self.topic.len()).unwrap_or(0).to_be_bytes(),
                    );
                    head.extend_from_slice(self.topic.as_bytes());
                    frame(&mut self.output, &head, scratch);
                }
            }
            self.in_flight += 1;
        }
    }

    fn write(&mut self) -> io::Result<()> {
        if let Some(tls) = self.tls.as_mut() {
            let taken = tls_io::write_sealed(tls, &mut self.stream, &self.output)?;
            self.output.advance(taken);
            return Ok(());
        }
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(n) => self.output.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what arrived and counts the round trips it completes.
    fn read(&mut self, shared: &Shared, tally: &mut Tally, chunk: &mut [u8]) -> io::Result<()> {
        while let Some(tls) = self.tls.as_mut() {
            let (raw, plain) = chunk.split_at_mut(chunk.len() / 2);
            let (got, opened) = tls_io::read_records(tls, &mut self.stream, raw, plain)?;
            self.input.extend_from_slice(&plain[..opened]);
            match got {
                TlsRead::Data(_) => {}
                TlsRead::WouldBlock => break,
                TlsRead::Closed | TlsRead::Eof => {
                    return Err(io::Error::other("the server closed a bench connection"));
                }
            }
        }
        while self.tls.is_none() {
            match self.stream.read(chunk) {
                Ok(0) => return Err(io::Error::other("the server closed a bench connection")),
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let now = shared.nanos();
        let mut completed = 0;
        while let Some(span) = self
            .deframer
            .decode_span(&mut self.input)
            .map_err(io::Error::other)?
        {
            let body = &self.input[span.body.clone()];
            let payload = match body.first() {
                Some(0x20) => body.get(3..),
                Some(0x33) if body.len() >= 5 => {
                    let topic = usize::from(u16::from_be_bytes([body[3], body[4]]));
                    body.get(5 + topic..)
                }
                Some(0x10) if body.len() >= 11 => {
                    // A heartbeat: answer it, or the server ends an idle-looking session.
                    let ts = u64::from_be_bytes(body[3..11].try_into().unwrap_or([0; 8]));
                    let pong = Frame::new(Pong { timestamp_us: ts });
                    encode_stream_frame_into(&pong, &mut self.output).map_err(io::Error::other)?;
                    None
                }
                _ => None,
            };
            if let Some(p) = payload {
                tally.record(shared, now, p);
                self.in_flight = self.in_flight.saturating_sub(1);
                completed += 1;
            }
            self.input.advance(span.total);
        }
        if completed > 0 {
            self.last_progress.note(now);
        }
        if shared.measuring.load(Ordering::Relaxed) {
            shared.done.fetch_add(completed, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Runs the clients `ids` until told to stop.
pub(crate) fn worker(cfg: &BenchConfig, ids: &[usize], shared: &Shared) -> Result<Tally, String> {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut clients = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        let topic = format!("bench/{id}");
        let (s, tls) = handshake(cfg, &topic).map_err(|e| format!("client {id}: {e}"))?;
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        let mut stream = mio::net::TcpStream::from_std(s);
        poll.registry()
            .register(&mut stream, Token(i), Interest::READABLE)
            .map_err(|e| e.to_string())?;
        clients.push(Client {
            stream,
            tls,
            deframer: StreamDeframer::new(DEFAULT_MAX_FRAME_LEN),
            input: BytesMut::with_capacity(64 * 1024),
            output: BytesMut::with_capacity(64 * 1024),
            in_flight: 0,
            topic,
            writable: false,
            last_progress: Progress::new(shared.nanos()),
        });
    }
    let mut tally = Tally::new();
    let mut scratch = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut events = Events::with_capacity(1024);
    let fail = |id: usize, e: io::Error| format!("client {}: {e}", ids[id]);
    for (i, c) in clients.iter_mut().enumerate() {
        c.fill(cfg, shared, &mut scratch);
        c.write().map_err(|e| fail(i, e))?;
    }
    while !shared.stop.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        // Unreliable messages the server dropped (a full output) never come back: after a second
        // without progress they are written off, counted as errors, and the window refilled.
        let turn = shared.nanos();
        for (i, c) in clients.iter_mut().enumerate() {
            let lost = c.last_progress.write_off(&mut c.in_flight, turn);
            if lost > 0 {
                tally.errors += lost;
                c.fill(cfg, shared, &mut scratch);
                c.write().map_err(|e| fail(i, e))?;
            }
        }
        for event in &events {
            let i = event.token().0;
            let Some(c) = clients.get_mut(i) else {
                continue;
            };
            c.read(shared, &mut tally, &mut chunk)
                .map_err(|e| fail(i, e))?;
            c.fill(cfg, shared, &mut scratch);
            c.write().map_err(|e| fail(i, e))?;
            let want = !c.output.is_empty() || c.tls.as_ref().is_some_and(|t| t.wants_write());
            if want != c.writable {
                let interest = if want {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                poll.registry()
                    .reregister(&mut c.stream, Token(i), interest)
                    .map_err(|e| e.to_string())?;
                c.writable = want;
            }
        }
    }
    Ok(tally)
}
