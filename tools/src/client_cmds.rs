//! The commands that talk to a server through framewire-client: ping, pub, sub, req, queue.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use framewire_client::{Client, ClientOptions, Error, PublishOptions, Transport};

/// The default channel layout's unreliable channel (docs/PROTOCOL.md section 3.4).
const UNRELIABLE_CHANNEL: u8 = 3;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) server: SocketAddr,
    /// More servers to try when the first does not answer (`--server A,B,C`).
    pub(crate) fallback_servers: Vec<SocketAddr>,
    pub(crate) transport: Transport,
    pub(crate) auth_token: Option<Vec<u8>>,
    /// TLS over TCP; `None`: plaintext.
    pub(crate) tls: Option<framewire_client::TlsOptions>,
    /// The keys that seal a UDP session (with its token); `None`: plaintext.
    pub(crate) seal_keys: Option<framewire_protocol::seal::TokenKeys>,
}

/// A command's failure: what it was doing, and why.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) doing: String,
    pub(crate) error: Error,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.doing, self.error)
    }
}

trait Doing<T> {
    fn doing(self, what: impl Into<String>) -> Result<T, Failure>;
}

impl<T, E: Into<Error>> Doing<T> for Result<T, E> {
    fn doing(self, what: impl Into<String>) -> Result<T, Failure> {
        self.map_err(|e| Failure {
            doing: what.into(),
            error: e.into(),
        })
    }
}

fn connect(target: &Target) -> Result<Client, Failure> {
    let mut options = ClientOptions::new(target.server, target.transport);
    options
        .fallback_servers
        .clone_from(&target.fallback_servers);
    options.auth_token = target.auth_token.clone().map(bytes::Bytes::from);
    options.tls.clone_from(&target.tls);
    options.seal_keys.clone_from(&target.seal_keys);
    // A command fails fast rather than reconnecting behind the user's back.
    options.reconnect = None;
    options.connect_timeout = Duration::from_secs(3);
    options.client_name = Some("framewire-cli".into());
    Client::connect(options).doing(format!("connect to {}", target.server))
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(crate) fn ping(target: &Target, count: u32) -> Result<(), Failure> {
    let mut c = connect(target)?;
    let mut rtts = Vec::new();
    for seq in 0..count {
        let started = Instant::now();
        c.request("sys.ping", "", Duration::from_secs(2))
            .doing("sys.ping")?;
        let rtt = started.elapsed();
        println!(
            "pong from {}: seq={seq} time={:.3} ms",
            target.server,
            millis(rtt)
        );
        rtts.push(rtt);
    }
    rtts.sort_unstable();
    if let (Some(min), Some(max)) = (rtts.first(), rtts.last()) {
        let avg = rtts.iter().sum::<Duration>() / u32::try_from(rtts.len()).unwrap_or(1);
        let p99 = rtts[(rtts.len() * 99).div_ceil(100).saturating_sub(1)];
        println!(
            "{count} sent, {} received: min/avg/p99/max = {:.3}/{:.3}/{:.3}/{:.3} ms",
            rtts.len(),
            millis(*min),
            millis(avg),
            millis(p99),
            millis(*max)
        );
    }
    c.close();
    Ok(())
}

pub(crate) fn publish(
    target: &Target,
    topic: &str,
    message: &str,
    unreliable: bool,
    retain: bool,
) -> Result<(), Failure> {
    let mut c = connect(target)?;
    let options = PublishOptions {
        channel: if unreliable { UNRELIABLE_CHANNEL } else { 0 },
        retain,
        // A reliable publish returns once the server has accepted it, so scripts can rely on it.
        ack: !unreliable,
    };
    c.publish_with(topic, message.as_bytes().to_vec(), options)
        .doing(format!("publish to {topic}"))?;
    c.close();
    Ok(())
}

pub(crate) fn subscribe(target: &Target, filter: &str, count: Option<u64>) -> Result<(), Failure> {
    let mut c = connect(target)?;
    c.subscribe(filter)
        .doing(format!("subscribe to {filter}"))?;
    // On stderr, so that stdout stays the payloads alone: a script can wait for this line before
    // it publishes.
    eprintln!("subscribed to {filter}");
    let mut out = std::io::stdout().lock();
    let mut got = 0u64;
    while count.is_none_or(|n| got < n) {
        if let Some(m) = c.next_message(Duration::from_secs(3600)).doing("receive")? {
            let _ = out.write_all(&m.payload);
            let _ = out.write_all(b"\n");
            let _ = out.flush();
            got += 1;
        }
    }
    c.close();
    Ok(())
}

pub(crate) fn request(
    target: &Target,
    method: &str,
    payload: &str,
    timeout: Duration,
) -> Result<(), Failure> {
    let mut c = connect(target)?;
    let answer = c
        .request(method, payload.as_bytes().to_vec(), timeout)
        .doing(format!("request {method}"))?;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&answer);
    let _ = out.write_all(b"\n");
    c.close();
    Ok(())
}

pub(crate) fn queue_push(target: &Target, queue: &str, message: &str) -> Result<(), Failure> {
    let mut c = connect(target)?;
    c.queue_push(queue, message.as_bytes().to_vec())
        .doing(format!("push to {queue}"))?;
    c.close();
    Ok(())
}

pub(crate) fn queue_fetch(
    target: &Target,
    queue: &str,
    max: u16,
    wait: Duration,
    no_ack: bool,
) -> Result<(), Failure> {
    let mut c = connect(target)?;
    let got = c
        .queue_fetch(queue, max, wait)
        .doing(format!("fetch from {queue}"))?;
    let mut out = std::io::stdout().lock();
    for d in &got {
        if no_ack {
            let _ = write!(out, "{}\t", d.delivery_id);
        }
        let _ = out.write_all(&d.payload);
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
    if !no_ack {
        for d in &got {
            c.queue_ack(queue, d.delivery_id)
                .doing(format!("ack delivery {}", d.delivery_id))?;
        }
    }
    c.close();
    Ok(())
}

pub(crate) fn queue_nack(
    target: &Target,
    queue: &str,
    delivery_id: u64,
    delay: Duration,
) -> Result<(), Failure> {
    let mut c = connect(target)?;
    c.queue_nack(queue, delivery_id, delay)
        .doing(format!("nack delivery {delivery_id}"))?;
    c.close();
    Ok(())
}

pub(crate) fn queue_extend(
    target: &Target,
    queue: &str,
    delivery_id: u64,
    timeout: Duration,
) -> Result<(), Failure> {
    let mut c = connect(target)?;
    c.queue_extend(queue, delivery_id, timeout)
        .doing(format!("extend delivery {delivery_id}"))?;
    c.close();
    Ok(())
}

pub(crate) fn queue_ack(target: &Target, queue: &str, delivery_id: u64) -> Result<(), Failure> {
    let mut c = connect(target)?;
    c.queue_ack(queue, delivery_id)
        .doing(format!("ack delivery {delivery_id}"))?;
    c.close();
    Ok(())
}
