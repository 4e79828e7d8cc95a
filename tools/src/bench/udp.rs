//! Bench clients over UDP: each runs the protocol's session engine on its own socket, so the
//! numbers include the engine's acks, retransmissions and congestion control.

use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use framewire_client::udp_io::{self, UdpSender};
use framewire_protocol::session::{self, Event, Session, SessionConfig};
use framewire_protocol::wire::{Data, Frame, FrameBody, HelloOptions, Publish, Subscribe, Text};
use mio::{Events, Interest, Poll, Token};

use super::{BenchConfig, Mode, Progress, Shared, Tally, payload};

struct Client {
    socket: mio::net::UdpSocket,
    session: Session,
    in_flight: u32,
    topic: Text,
    last_progress: Progress,
}

fn session_time(nanos: u64) -> session::Instant {
    session::Instant::from_micros(nanos / 1000)
}

fn now(shared: &Shared) -> session::Instant {
    session_time(shared.nanos())
}

impl Client {
    /// Reads what arrived by `nanos` (the client's turn began then: what it reads arrived within
    /// microseconds of it), runs due timers and counts the echoes; returns how many came back.
    /// Sends nothing: the caller refills the window and then flushes once, so the acks this
    /// turn owes leave in the datagrams that carry the refill, as an application's would (a
    /// flush here sent them alone, one extra datagram per turn for the server to receive).
    fn receive(
        &mut self,
        shared: &Shared,
        nanos: u64,
        tally: &mut Tally,
        chunk: &mut [u8],
    ) -> io::Result<u64> {
        let t = session_time(nanos);
        loop {
            match udp_io::recv_coalesced(&self.socket, chunk) {
                Ok(r) => r.hand_to(&mut self.session, t),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.session.poll_timeout().is_some_and(|d| d <= t) {
            self.session.handle_timeout(t);
        }
        let mut completed = 0;
        while let Some(e) = self.session.poll_event() {
            match e {
                Event::Frame(f) => {
                    let p = match &f.body {
                        FrameBody::Data(d) => Some(&d.payload),
                        FrameBody::Message(m) => Some(&m.payload),
                        _ => None,
                    };
                    if let Some(p) = p {
                        tally.record(shared, nanos, p);
                        self.in_flight = self.in_flight.saturating_sub(1);
                        completed += 1;
                    }
                }
                Event::Closed {
                    reason, message, ..
                } => {
                    return Err(io::Error::other(format!(
                        "session closed: {reason} {message}"
                    )));
                }
                _ => {}
            }
        }
        if completed > 0 {
            self.last_progress.note(nanos);
        }
        Ok(completed)
    }

    /// Sends what the session has to send, a run of datagrams of one size in one system call
    /// where the kernel offers segmentation (as the client library and the server do).
    fn flush(&mut self, t: session::Instant, sender: &mut UdpSender) -> io::Result<()> {
        sender
            .send_from(
                &self.socket,
                |buf| self.session.poll_transmit(t, buf),
                |_, _| {},
            )
            .result()
    }

    fn fill(
        &mut self,
        cfg: &BenchConfig,
        shared: &Shared,
        scratch: &mut Vec<u8>,
    ) -> io::Result<()> {
        let channel = cfg.channel.number();
        let room = cfg.window.saturating_sub(self.in_flight) as usize;
        if room == 0 {
            return Ok(());
        }
        // The refill leaves in one flush: one send time for all of it, and one allocation its
        // payloads share.
        payload(cfg.size, shared.nanos(), scratch);
        let mut bodies = BytesMut::with_capacity(room * scratch.len());
        while self.in_flight < cfg.window {
            bodies.extend_from_slice(scratch);
            let body = bodies.split().freeze();
            let frame = match cfg.mode {
                Mode::Echo => Frame::new(Data { payload: body }),
                Mode::Pubsub => Frame::new(Publish {
                    retain: false,
                    id: 0,
                    topic: self.topic.clone(),
                    payload: body,
                }),
            };
            match self.session.send(frame.on_channel(channel)) {
                Ok(()) => self.in_flight += 1,
                // The engine's queue is full: wait for acks.
                Err(session::SendError::QueueFull) => break,
                Err(e) => return Err(io::Error::other(e.to_string())),
            }
        }
        Ok(())
    }
}

fn connect(
    cfg: &BenchConfig,
    id: usize,
    shared: &Shared,
    sender: &mut UdpSender,
) -> io::Result<Client> {
    let socket = mio::net::UdpSocket::bind(([127, 0, 0, 1], 0).into())?;
    // As the client library does; where the kernel cannot coalesce, reads stay one datagram each.
    let _ = udp_io::enable_coalesced_receive(&socket);
    let mut config = SessionConfig {
        seed: id as u64 + 1,
        seal_keys: cfg.seal_keys.clone(),
        ..SessionConfig::default()
    };
    if let Some(token) = &cfg.auth_token {
        config.hello_options = HelloOptions::builder()
            .auth_token(token)
            .build()
            .map_err(io::Error::other)?;
    }
    let session = Session::connect(config, cfg.server, 0x0be9_c400 + id as u64, now(shared));
    let topic = Text::from(format!("bench/{id}").as_str());
    let mut c = Client {
        socket,
        session,
        in_flight: 0,
        topic: topic.clone(),
        last_progress: Progress::new(shared.nanos()),
    };
    let mut chunk = vec![0u8; 65_536];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut subscribed = cfg.mode == Mode::Echo;
    let mut asked = false;
    loop {
        if Instant::now() > deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no handshake"));
        }
        let t = now(shared);
        if c.session.poll_timeout().is_some_and(|d| d <= t) {
            c.session.handle_timeout(t);
        }
        c.flush(t, sender)?;
        if let Ok(r) = udp_io::recv_coalesced(&c.socket, &mut chunk) {
            r.hand_to(&mut c.session, now(shared));
        }
        while let Some(e) = c.session.poll_event() {
            match e {
                Event::Connected { .. } if !asked && !subscribed => {
                    asked = true;
                    c.session
                        .send(Frame::new(Subscribe {
                            id: 1,
                            filter: topic.clone(),
                        }))
                        .map_err(|e| io::Error::other(e.to_string()))?;
                }
                Event::Frame(Frame {
                    body: FrameBody::Response(r),
                    ..
                }) if r.id == 1 => subscribed = true,
                Event::Closed { reason, .. } => {
                    return Err(io::Error::other(format!("refused: {reason}")));
                }
                _ => {}
            }
        }
        if subscribed && c.session.is_established() {
            return Ok(c);
        }
        std::thread::yield_now();
    }
}

/// Runs the clients `ids` until told to stop.
pub(crate) fn worker(cfg: &BenchConfig, ids: &[usize], shared: &Shared) -> Result<Tally, String> {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut clients = Vec::new();
    // One sender for the worker's clients: it holds only the run being written.
    let mut sender = UdpSender::new(true);
    for (i, &id) in ids.iter().enumerate() {
        let mut c =
            connect(cfg, id, shared, &mut sender).map_err(|e| format!("client {id}: {e}"))?;
        poll.registry()
            .register(&mut c.socket, Token(i), Interest::READABLE)
            .map_err(|e| e.to_string())?;
        clients.push(c);
    }
    let mut tally = Tally::new();
    let mut scratch = Vec::new();
    let mut chunk = vec![0u8; 65_536];
    let mut events = Events::with_capacity(1024);
    let fail = |i: usize, e: io::Error| format!("client {}: {e}", ids[i]);
    for (i, c) in clients.iter_mut().enumerate() {
        c.fill(cfg, shared, &mut scratch).map_err(|e| fail(i, e))?;
        c.flush(now(shared), &mut sender).map_err(|e| fail(i, e))?;
    }
    while !shared.stop.load(Ordering::Relaxed) {
        let t = now(shared);
        let wake = clients
            .iter()
            .filter_map(|c| c.session.poll_timeout())
            .min()
            .map_or(Duration::from_millis(100), |d| {
                Duration::from_micros(d.as_micros().saturating_sub(t.as_micros()))
            })
            .min(Duration::from_millis(100));
        poll.poll(&mut events, Some(wake))
            .map_err(|e| e.to_string())?;
        let mut completed = 0;
        // Every client runs each turn: its timers, acks and refills do not wait for a read event.
        for (i, c) in clients.iter_mut().enumerate() {
            // One clock read for the client's turn: its reads, timers, write-off and flush.
            let turn = shared.nanos();
            completed += c
                .receive(shared, turn, &mut tally, &mut chunk)
                .map_err(|e| fail(i, e))?;
            // Unreliable messages that never came back.
            tally.errors += c.last_progress.write_off(&mut c.in_flight, turn);
            c.fill(cfg, shared, &mut scratch).map_err(|e| fail(i, e))?;
            c.flush(session_time(turn), &mut sender)
                .map_err(|e| fail(i, e))?;
        }
        if shared.measuring.load(Ordering::Relaxed) {
            shared.done.fetch_add(completed, Ordering::Relaxed);
        }
    }
    Ok(tally)
}
