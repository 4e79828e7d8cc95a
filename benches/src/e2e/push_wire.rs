//! The confirmed-push generator of the durability comparison: one mio loop on one thread,
//! `producers` TCP connections with one push in flight on each, speaking each system's wire
//! protocol directly. framewire: a `QueuePush` with an operation id, confirmed by its `Response`
//! with status OK (docs/PROTOCOL.md section 5.7). `JetStream`: a `PUB` to the stream's subject
//! with a reply subject of the connection's own, confirmed by the stream's acknowledgement on it
//! (`{"stream":...,"seq":N}`; one with `"error"` is a refusal). A connection's next push goes out
//! as soon as its last is confirmed.
//!
//! Its cost per push is a few frames' encoding and parsing, far below either server's, so the
//! rates are the servers' (and their disks'), not a client library's: the earlier generator, a
//! task per producer on the async clients (framewire's `AsyncClient`, async-nats), held the
//! in-memory path at half a core.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use framewire_protocol::wire::{
    DEFAULT_MAX_FRAME_LEN, Frame, FrameBody, Pong, QueuePush, Status, StreamDeframer, Text,
    encode_stream_frame_into,
};
use mio::{Events, Interest, Poll, Token};

use super::pubsub_wire::Wire;

/// Which system's pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pusher {
    /// framewire's `QueuePush` to `queue`.
    Framewire,
    /// A publish to a `JetStream` stream's subject, acknowledged.
    JetStream,
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// One producer's connection.
struct Producer {
    stream: mio::net::TcpStream,
    input: BytesMut,
    out: BytesMut,
    deframer: StreamDeframer,
    /// The operation id of the push in flight (framewire).
    id: u32,
    /// The push as it goes on the wire (`JetStream`: the same bytes every time).
    template: Vec<u8>,
}

impl Producer {
    fn push(&mut self, pusher: Pusher, queue: &Text, payload: &Bytes) -> io::Result<()> {
        match pusher {
            Pusher::Framewire => {
                self.id = self.id.wrapping_add(1).max(1);
                let frame = Frame::new(QueuePush {
                    id: self.id,
                    queue: queue.clone(),
                    payload: payload.clone(),
                });
                encode_stream_frame_into(&frame, &mut self.out)
                    .map_err(|e| invalid(e.to_string()))?;
            }
            Pusher::JetStream => self.out.extend_from_slice(&self.template),
        }
        self.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what arrived; how many pushes it confirmed (0 or 1: one is in flight).
    fn read(&mut self, pusher: Pusher, chunk: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.stream.read(chunk) {
                Ok(0) => return Err(invalid("the server closed a producer's connection")),
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        match pusher {
            Pusher::Framewire => self.framewire_answers(),
            Pusher::JetStream => self.jetstream_answers(),
        }
    }

    fn framewire_answers(&mut self) -> io::Result<usize> {
        let mut confirmed = 0;
        while let Some(body) = self
            .deframer
            .decode(&mut self.input)
            .map_err(|e| invalid(e.to_string()))?
        {
            match Frame::parse(body).map_err(|e| invalid(e.to_string()))?.body {
                FrameBody::Response(r) if r.id == self.id => {
                    if r.status != Status::OK {
                        return Err(invalid(format!("push refused: {}", r.status)));
                    }
                    confirmed += 1;
                }
                FrameBody::Ping(p) => {
                    let pong = Frame::new(Pong {
                        timestamp_us: p.timestamp_us,
                    });
                    encode_stream_frame_into(&pong, &mut self.out)
                        .map_err(|e| invalid(e.to_string()))?;
                }
                _ => {}
            }
        }
        Ok(confirmed)
    }

    fn jetstream_answers(&mut self) -> io::Result<usize> {
        let mut confirmed = 0;
        loop {
            let Some(eol) = self.input.windows(2).position(|w| w == b"\r\n") else {
                return Ok(confirmed);
            };
            let line = &self.input[..eol];
            if line == b"PING" {
                self.input.advance(eol + 2);
                self.out.extend_from_slice(b"PONG\r\n");
                continue;
            }
            if !line.starts_with(b"MSG ") {
                // +OK, PONG, INFO: nothing to count.
                if line.starts_with(b"-ERR") {
                    return Err(invalid(String::from_utf8_lossy(line).into_owned()));
                }
                self.input.advance(eol + 2);
                continue;
            }
            let len: usize = std::str::from_utf8(line)
                .ok()
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| invalid("a MSG line without a length"))?;
            if self.input.len() < eol + 2 + len + 2 {
                return Ok(confirmed);
            }
            let ack = &self.input[eol + 2..eol + 2 + len];
            if ack.windows(7).any(|w| w == b"\"error\"") {
                return Err(invalid(format!(
                    "publish refused: {}",
                    String::from_utf8_lossy(ack)
                )));
            }
            confirmed += 1;
            self.input.advance(eol + 2 + len + 2);
        }
    }
}

/// Opens a producer: the handshake (for `JetStream`, also its reply subject's subscription,
/// waited for), then non-blocking.
fn open(
    pusher: Pusher,
    addr: SocketAddr,
    i: usize,
    subject: &str,
    payload: &[u8],
) -> io::Result<Producer> {
    let from = IpAddr::from([127, 0, 0, 2 + (i % 8) as u8]);
    let mut stream: TcpStream = super::connect_from(from, addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut template = Vec::new();
    match pusher {
        Pusher::Framewire => Wire::Framewire.handshake(&mut stream, i, false)?,
        Pusher::JetStream => {
            Wire::Nats.handshake(&mut stream, i, false)?;
            let inbox = format!("fw.ack.{i}");
            stream.write_all(format!("SUB {inbox} 1\r\nPING\r\n").as_bytes())?;
            let mut seen = Vec::new();
            let mut chunk = [0u8; 1024];
            while !seen.windows(6).any(|w| w == b"PONG\r\n") {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(invalid("nats-server closed in the handshake"));
                }
                seen.extend_from_slice(&chunk[..n]);
            }
            template.extend_from_slice(
                format!("PUB {subject} {inbox} {}\r\n", payload.len()).as_bytes(),
            );
            template.extend_from_slice(payload);
            template.extend_from_slice(b"\r\n");
        }
    }
    stream.set_nonblocking(true)?;
    Ok(Producer {
        stream: mio::net::TcpStream::from_std(stream),
        input: BytesMut::new(),
        out: BytesMut::new(),
        deframer: StreamDeframer::new(DEFAULT_MAX_FRAME_LEN),
        id: 0,
        template,
    })
}

/// Confirmed pushes per second: `producers` connections to `addr` pushing `payload` to `queue`
/// (framewire's queue name, `JetStream`'s stream subject) for `measure`, one in flight each.
///
/// # Errors
/// A connection or handshake failed, or a push was refused.
pub fn confirmed_rate(
    pusher: Pusher,
    addr: SocketAddr,
    producers: usize,
    queue: &str,
    payload: &[u8],
    measure: Duration,
) -> io::Result<f64> {
    let poll = Poll::new()?;
    let mut conns = Vec::with_capacity(producers);
    for i in 0..producers {
        let mut p = open(pusher, addr, i, queue, payload)?;
        poll.registry()
            .register(&mut p.stream, Token(i), Interest::READABLE)?;
        conns.push(p);
    }
    let mut poll = poll;
    let payload = Bytes::copy_from_slice(payload);
    // Made once: a push is a copy of these, not an allocation.
    let queue = Text::from(queue);
    let started = Instant::now();
    for p in &mut conns {
        p.push(pusher, &queue, &payload)?;
    }
    let mut events = Events::with_capacity(1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut confirmed = 0u64;
    while started.elapsed() < measure {
        poll.poll(&mut events, Some(Duration::from_millis(20)))?;
        for event in &events {
            let Some(p) = conns.get_mut(event.token().0) else {
                continue;
            };
            let n = p.read(pusher, &mut chunk)?;
            confirmed += n as u64;
            if n > 0 {
                p.push(pusher, &queue, &payload)?;
            } else {
                p.flush()?;
            }
        }
    }
    Ok(confirmed as f64 / started.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn producer() -> (Producer, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.set_nonblocking(true).unwrap();
        let p = Producer {
            stream: mio::net::TcpStream::from_std(client),
            input: BytesMut::new(),
            out: BytesMut::new(),
            deframer: StreamDeframer::new(DEFAULT_MAX_FRAME_LEN),
            id: 0,
            template: b"PUB jobs fw.ack.0 2\r\nhi\r\n".to_vec(),
        };
        (p, server)
    }

    fn msg(json: &str) -> Vec<u8> {
        format!("MSG fw.ack.0 1 {}\r\n{json}\r\n", json.len()).into_bytes()
    }

    #[test]
    fn a_jetstream_ack_confirms_and_an_error_refuses() {
        let (mut p, _server) = producer();
        let first = msg("{\"stream\":\"JOBS\",\"seq\":1}");
        // +OK noise, then an ack cut in two.
        p.input.extend_from_slice(b"+OK\r\n");
        p.input.extend_from_slice(&first[..first.len() - 1]);
        assert_eq!(p.jetstream_answers().unwrap(), 0);
        p.input.extend_from_slice(&first[first.len() - 1..]);
        // A PING between acks is answered.
        p.input.extend_from_slice(b"PING\r\n");
        p.input
            .extend_from_slice(&msg("{\"stream\":\"JOBS\",\"seq\":2}"));
        assert_eq!(p.jetstream_answers().unwrap(), 2);
        assert_eq!(&p.out[..], b"PONG\r\n");
        p.input.extend_from_slice(&msg(
            "{\"error\":{\"code\":503,\"description\":\"no space\"}}",
        ));
        assert!(p.jetstream_answers().is_err());
    }

    #[test]
    fn a_framewire_response_to_the_push_in_flight_confirms_it() {
        let (mut p, _server) = producer();
        let payload = Bytes::from_static(b"job");
        p.out.clear();
        p.id = 6;
        let mut input = BytesMut::new();
        for id in [5, 7] {
            let r = Frame::new(framewire_protocol::wire::Response {
                id,
                status: Status::OK,
                payload: Bytes::new(),
            });
            encode_stream_frame_into(&r, &mut input).unwrap();
        }
        p.input = input;
        assert_eq!(p.framewire_answers().unwrap(), 0, "not the push in flight");
        p.push(Pusher::Framewire, &Text::from("jobs"), &payload)
            .unwrap();
        assert_eq!(p.id, 7);
        let mut input = BytesMut::new();
        let r = Frame::new(framewire_protocol::wire::Response {
            id: 7,
            status: Status::OK,
            payload: Bytes::new(),
        });
        encode_stream_frame_into(&r, &mut input).unwrap();
        p.input = input;
        assert_eq!(p.framewire_answers().unwrap(), 1);
    }
}
