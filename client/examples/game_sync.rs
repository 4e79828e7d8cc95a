//! A 60 Hz game-state sync over UDP with the poll-driven API: two players in one process, each on
//! its own connection. Positions go on channel 2 (unreliable-sequenced: a late position is dropped,
//! never delivered after a newer one); events ("jump") go on channel 0 (reliable, ordered). Once a
//! second each player prints where it sees the other, its round-trip time and loss. The round trip
//! includes the wait for the next frame: a 60 Hz loop reads its socket once a frame (or sooner, when
//! a connection's timer is due).
//!
//! ```sh
//! cargo run --release --bin framewire-server
//! cargo run -p framewire-client --example game_sync -- [SECONDS] [SERVER]
//! ```

use std::time::{Duration, Instant};

use bytes::Bytes;
use framewire_client::{ClientEvent, ClientOptions, Connection, PublishOptions, Transport};

const TICK: Duration = Duration::from_micros(16_667);
const POSITIONS: u8 = 2;

struct Player {
    name: &'static str,
    conn: Connection,
    subscribed: bool,
    x: f32,
    seen: Option<(f32, f32)>,
    positions: u32,
    /// Positions of the other player seen over the whole run.
    positions_total: u64,
    events: Vec<String>,
}

impl Player {
    /// Takes what the connection has: subscribes once connected, and notes the other's moves.
    fn handle_events(&mut self, now: Instant) -> Result<(), Box<dyn std::error::Error>> {
        while let Some(event) = self.conn.poll_event() {
            match event {
                ClientEvent::Connected { .. } if !self.subscribed => {
                    self.conn.subscribe(now, "room/1/#")?;
                    self.subscribed = true;
                    println!("{} connected over UDP", self.name);
                }
                ClientEvent::Message(m) if !m.topic.as_str().ends_with(self.name) => {
                    if m.channel == POSITIONS && m.payload.len() == 8 {
                        let x = f32::from_be_bytes(m.payload[..4].try_into()?);
                        let y = f32::from_be_bytes(m.payload[4..].try_into()?);
                        self.seen = Some((x, y));
                        self.positions += 1;
                        self.positions_total += 1;
                    } else if m.channel == 0 {
                        self.events
                            .push(String::from_utf8_lossy(&m.payload).into_owned());
                    }
                }
                ClientEvent::Disconnected { error, .. } => println!("{}: {error}", self.name),
                _ => {}
            }
        }
        Ok(())
    }

    /// One frame of the game: move, send the position, and a reliable event once a second.
    fn tick(&mut self, now: Instant, tick: u64) -> Result<(), Box<dyn std::error::Error>> {
        self.x += 0.1;
        let y = (self.x * 0.5).sin();
        let mut pos = self.x.to_be_bytes().to_vec();
        pos.extend_from_slice(&y.to_be_bytes());
        let unreliable = PublishOptions {
            channel: POSITIONS,
            retain: false,
            ack: false,
        };
        let topic = format!("room/1/pos/{}", self.name);
        self.conn
            .publish(now, &topic, Bytes::from(pos), unreliable)?;
        if tick.is_multiple_of(60) {
            let event = format!("{} jumps at tick {tick}", self.name);
            let topic = format!("room/1/event/{}", self.name);
            self.conn
                .publish(now, &topic, Bytes::from(event), PublishOptions::default())?;
        }
        Ok(())
    }

    fn report(&mut self) {
        let stats = self.conn.stats().unwrap_or_default();
        let seen = self.seen.map_or("nobody yet".to_owned(), |(x, y)| {
            format!("the other at ({x:.1}, {y:.2})")
        });
        let events = if self.events.is_empty() {
            "-".to_owned()
        } else {
            self.events.join("; ")
        };
        println!(
            "{:>4}: sees {seen}, {} positions/s, rtt {:.2} ms, loss {:.1} %, events: {events}",
            self.name,
            self.positions,
            stats.rtt.as_secs_f64() * 1e3,
            stats.loss_rate() * 100.0,
        );
        self.positions = 0;
        self.events.clear();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(&args)
}

/// The game for `args` (`[SECONDS] [SERVER]`); fails if a player saw none of the other's moves.
pub(crate) fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = args.first().map_or(Ok(5), |s| s.parse())?;
    let server = args
        .get(1)
        .map_or("127.0.0.1:7400", String::as_str)
        .parse()?;
    let start = Instant::now();
    let mut players = Vec::new();
    for name in ["red", "blue"] {
        let mut options = ClientOptions::new(server, Transport::Udp);
        options.client_name = Some(name.into());
        players.push(Player {
            name,
            conn: Connection::new(options, start)?,
            subscribed: false,
            x: 0.0,
            seen: None,
            positions: 0,
            positions_total: 0,
            events: Vec::new(),
        });
    }
    let mut next_tick = start;
    let mut next_report = start + Duration::from_secs(1);
    let mut tick = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        let now = Instant::now();
        for p in &mut players {
            p.conn.update(now);
            p.handle_events(now)?;
        }
        if now >= next_tick {
            tick += 1;
            for p in players.iter_mut().filter(|p| p.conn.is_connected()) {
                p.tick(now, tick)?;
                // Out now, not at the next update a frame later.
                p.conn.flush(now);
            }
            next_tick += TICK;
        }
        if now >= next_report {
            players.iter_mut().for_each(Player::report);
            next_report += Duration::from_secs(1);
        }
        // Sleep until whichever comes first: the next tick or a connection's timer.
        let wake = players
            .iter()
            .filter_map(|p| p.conn.poll_timeout())
            .fold(next_tick, Instant::min);
        std::thread::sleep(wake.saturating_duration_since(Instant::now()).min(TICK));
    }
    for p in &mut players {
        p.conn.close(Instant::now());
        p.conn.update(Instant::now());
    }
    match players.iter().find(|p| p.positions_total == 0) {
        Some(p) => Err(format!("{} saw none of the other's moves", p.name).into()),
        None => Ok(()),
    }
}
