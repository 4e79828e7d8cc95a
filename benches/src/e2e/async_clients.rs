//! Async clients, in one run: framewire's `AsyncClient` and its blocking `Client` against
//! async-nats on nats-server. Two workloads on each: publishes that ask for no answer, as fast as
//! the client takes them, for a measured time, then one the server answers (framewire) or a flush
//! (async-nats), so the rate counts messages handed to the server; and requests one after the
//! other to a responder of the same system on its own connection (a service that echoes), with
//! their latency.

use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;
use framewire_client::{AsyncClient, Client, ClientOptions, PublishOptions, Status, Transport};
use futures_util::StreamExt;
use hdrhistogram::Histogram;

use super::pubsub_wire::Wire;
use super::table::{Section, json_string, ratio};

/// What one round measured for one system.
#[derive(Debug, Clone, Copy)]
struct Measured {
    publishes_per_s: f64,
    p50_us: f64,
    p99_us: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum System {
    FramewireAsync,
    FramewireBlocking,
    AsyncNats,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            Self::FramewireAsync => "framewire AsyncClient",
            Self::FramewireBlocking => "framewire Client (blocking)",
            Self::AsyncNats => "async-nats on nats-server",
        }
    }

    fn wire(self) -> Wire {
        match self {
            Self::AsyncNats => Wire::Nats,
            _ => Wire::Framewire,
        }
    }
}

const PAYLOAD: usize = 32;

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

async fn framewire_responder(options: ClientOptions) -> io::Result<tokio::task::JoinHandle<()>> {
    let client = AsyncClient::connect(options).await.map_err(err)?;
    let service = client.register("echo").await.map_err(err)?;
    Ok(tokio::spawn(async move {
        let _client = client;
        while let Some(r) = service.next().await {
            if service
                .respond(&r, Status::OK, r.payload.clone())
                .await
                .is_err()
            {
                return;
            }
        }
    }))
}

async fn framewire_async(addr: std::net::SocketAddr, measure: Duration) -> io::Result<Measured> {
    let options = ClientOptions::new(addr, Transport::Tcp);
    let client = AsyncClient::connect(options.clone()).await.map_err(err)?;
    let quiet = PublishOptions {
        ack: false,
        ..PublishOptions::default()
    };
    let payload = Bytes::from(vec![7u8; PAYLOAD]);
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < measure {
        for _ in 0..256 {
            client
                .publish_with("bench.pub", payload.clone(), quiet)
                .await
                .map_err(err)?;
        }
        sent += 256;
    }
    client.publish("bench.end", "").await.map_err(err)?;
    let publishes_per_s = sent as f64 / started.elapsed().as_secs_f64();
    let responder = framewire_responder(options).await?;
    let mut h = histogram();
    let started = Instant::now();
    while started.elapsed() < measure {
        let t = Instant::now();
        client
            .request("echo", payload.clone(), Duration::from_secs(5))
            .await
            .map_err(err)?;
        let _ = h.record(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
    responder.abort();
    Ok(Measured {
        publishes_per_s,
        p50_us: h.value_at_quantile(0.5) as f64,
        p99_us: h.value_at_quantile(0.99) as f64,
    })
}

async fn framewire_blocking(addr: std::net::SocketAddr, measure: Duration) -> io::Result<Measured> {
    let options = ClientOptions::new(addr, Transport::Tcp);
    let responder = framewire_responder(options.clone()).await?;
    let result = tokio::task::spawn_blocking(move || -> io::Result<Measured> {
        let mut client = Client::connect(options).map_err(err)?;
        let quiet = PublishOptions {
            ack: false,
            ..PublishOptions::default()
        };
        let payload = Bytes::from(vec![7u8; PAYLOAD]);
        let started = Instant::now();
        let mut sent = 0u64;
        while started.elapsed() < measure {
            for _ in 0..256 {
                client
                    .publish_with("bench.pub", payload.clone(), quiet)
                    .map_err(err)?;
            }
            sent += 256;
        }
        client.publish("bench.end", "").map_err(err)?;
        let publishes_per_s = sent as f64 / started.elapsed().as_secs_f64();
        let mut h = histogram();
        let started = Instant::now();
        while started.elapsed() < measure {
            let t = Instant::now();
            client
                .request("echo", payload.clone(), Duration::from_secs(5))
                .map_err(err)?;
            let _ = h.record(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
        }
        Ok(Measured {
            publishes_per_s,
            p50_us: h.value_at_quantile(0.5) as f64,
            p99_us: h.value_at_quantile(0.99) as f64,
        })
    })
    .await
    .map_err(err)?;
    responder.abort();
    result
}

async fn async_nats(addr: std::net::SocketAddr, measure: Duration) -> io::Result<Measured> {
    let url = format!("nats://{addr}");
    let client = async_nats::connect(&url).await.map_err(err)?;
    let payload = Bytes::from(vec![7u8; PAYLOAD]);
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < measure {
        for _ in 0..256 {
            client
                .publish("bench.pub", payload.clone())
                .await
                .map_err(err)?;
        }
        sent += 256;
    }
    client.flush().await.map_err(err)?;
    let publishes_per_s = sent as f64 / started.elapsed().as_secs_f64();
    let responder_client = async_nats::connect(&url).await.map_err(err)?;
    let mut requests = responder_client.subscribe("echo").await.map_err(err)?;
    responder_client.flush().await.map_err(err)?;
    let responder = tokio::spawn(async move {
        while let Some(m) = requests.next().await {
            if let Some(reply) = m.reply
                && responder_client.publish(reply, m.payload).await.is_err()
            {
                return;
            }
        }
    });
    // The server may not have the responder's subscription yet: wait until it answers.
    let mut tries = 0;
    while client.request("echo", payload.clone()).await.is_err() {
        tries += 1;
        if tries > 200 {
            return Err(err("the async-nats responder never answered"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut h = histogram();
    let started = Instant::now();
    while started.elapsed() < measure {
        let t = Instant::now();
        client.request("echo", payload.clone()).await.map_err(err)?;
        let _ = h.record(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
    responder.abort();
    Ok(Measured {
        publishes_per_s,
        p50_us: h.value_at_quantile(0.5) as f64,
        p99_us: h.value_at_quantile(0.99) as f64,
    })
}

/// The comparison: `rounds` rounds of `seconds` per workload, the systems interleaved in each.
///
/// # Errors
/// A server or a client failed.
pub fn compare(rounds: usize, seconds: f64) -> io::Result<Section> {
    let mut systems = vec![System::FramewireAsync, System::FramewireBlocking];
    if super::fanout::available(Wire::Nats) {
        systems.push(System::AsyncNats);
    } else {
        eprintln!("skipping async-nats: nats-server not installed");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let measure = Duration::from_secs_f64(seconds);
    let mut results: Vec<Vec<Measured>> = vec![Vec::new(); systems.len()];
    for round in 0..rounds {
        for (i, &system) in systems.iter().enumerate() {
            let server = super::systems::start(system.wire(), 0)?;
            let m = runtime.block_on(async {
                match system {
                    System::FramewireAsync => framewire_async(server.addr, measure).await,
                    System::FramewireBlocking => framewire_blocking(server.addr, measure).await,
                    System::AsyncNats => async_nats(server.addr, measure).await,
                }
            })?;
            eprintln!(
                "async clients round {}/{rounds} {}: {:.0} publishes/s, request p50 {:.0} us, p99 {:.0} us",
                round + 1,
                system.name(),
                m.publishes_per_s,
                m.p50_us,
                m.p99_us
            );
            results[i].push(m);
        }
    }
    let mut section = Section {
        title: format!(
            "Async clients, {PAYLOAD} B payloads, medians of {rounds} rounds of {seconds} s per workload (in brackets: the lowest and highest round); ratios are this system / async-nats"
        ),
        columns: vec![
            "client",
            "publishes/s (no answer)",
            "request p50 us",
            "request p99 us",
            "publish ratio",
            "p99 ratio",
        ],
        ..Section::default()
    };
    let m = |rs: &[Measured], f: fn(&Measured) -> f64| super::median(rs.iter().map(f).collect());
    let nats = systems
        .iter()
        .position(|&s| s == System::AsyncNats)
        .map(|i| {
            (
                m(&results[i], |r| r.publishes_per_s),
                m(&results[i], |r| r.p99_us),
            )
        });
    for (i, &system) in systems.iter().enumerate() {
        let rs = &results[i];
        let rate = m(rs, |r| r.publishes_per_s);
        let (lo, hi) = super::range(&rs.iter().map(|r| r.publishes_per_s).collect::<Vec<_>>());
        let (p50, p99) = (m(rs, |r| r.p50_us), m(rs, |r| r.p99_us));
        let (rate_ratio, p99_ratio) = nats.map_or(("-".into(), "-".into()), |(nr, np)| {
            (ratio(rate, nr), ratio(p99, np))
        });
        section.rows.push(vec![
            system.name().into(),
            format!("{:.2} M ({:.2}-{:.2})", rate / 1e6, lo / 1e6, hi / 1e6),
            format!("{p50:.0}"),
            format!("{p99:.0}"),
            rate_ratio,
            p99_ratio,
        ]);
        section.json.push(format!(
            "{{\"section\":\"async\",\"client\":{},\"publishes_per_s\":{rate:.0},\"p50_us\":{p50:.0},\"p99_us\":{p99:.0}}}",
            json_string(system.name())
        ));
    }
    Ok(section)
}
