//! A metering device and its operator as async tasks (`AsyncClient`, feature `tokio`), in one
//! process. The device publishes a meter reading every 200 ms to `meters/ID/kwh`, answers `read` as the
//! service `meter.ID`, and takes work from the queue `meters/ID/jobs`; the operator watches the
//! readings, asks for one, and queues two jobs. Every call is a future; the connection itself runs
//! on the client's own thread, so the runtime drives no socket.
//!
//! ```sh
//! cargo run --release --bin framewire-server
//! cargo run -p framewire-client --features tokio --example async_iot -- [SERVER] [tcp|udp]
//! ```

use std::time::Duration;

use framewire_client::{AsyncClient, ClientOptions, Status, Transport};

const ID: &str = "meter-9";

async fn device(client: AsyncClient) -> Result<u32, framewire_client::Error> {
    let service = client.register(&format!("meter.{ID}")).await?;
    let mut kwh = 1200.0f32;
    let mut jobs = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    for _ in 0..10 {
        tick.tick().await;
        kwh += 0.4;
        client
            .publish(&format!("meters/{ID}/kwh"), format!("{kwh:.1}"))
            .await?;
        // Answer what came meanwhile, without waiting for more.
        while let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(1), service.next()).await
        {
            let answer = String::from_utf8_lossy(&r.payload) == "read";
            let (status, text) = if answer {
                (Status::OK, format!("{kwh:.1}"))
            } else {
                (Status::BAD_REQUEST, "unknown command".to_owned())
            };
            service.respond(&r, status, text).await?;
        }
        for job in client
            .queue_fetch(&format!("meters/{ID}/jobs"), 4, Duration::ZERO)
            .await?
        {
            println!("  device: job {}", String::from_utf8_lossy(&job.payload));
            client.queue_ack(&job).await?;
            jobs += 1;
        }
    }
    Ok(jobs)
}

async fn operator(client: AsyncClient) -> Result<usize, framewire_client::Error> {
    let readings = client.subscribe("meters/+/kwh").await?;
    let watcher = tokio::spawn(async move {
        let mut seen = 0;
        while let Ok(Some(m)) =
            tokio::time::timeout(Duration::from_millis(600), readings.next()).await
        {
            println!(
                "operator: {} = {}",
                m.topic,
                String::from_utf8_lossy(&m.payload)
            );
            seen += 1;
        }
        seen
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let now = client
        .request(&format!("meter.{ID}"), "read", Duration::from_secs(2))
        .await?;
    println!("operator: read -> {}", String::from_utf8_lossy(&now));
    for job in ["calibrate", "report"] {
        client.queue_push(&format!("meters/{ID}/jobs"), job).await?;
    }
    Ok(watcher.await.unwrap_or(0))
}

/// The device and the operator for `args` (`[SERVER] [tcp|udp]`); fails if a call fails, the
/// operator saw no reading, or the device did not do both jobs.
pub(crate) async fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let server = args
        .first()
        .map_or("127.0.0.1:7400", String::as_str)
        .parse()?;
    let transport = match args.get(1).map(String::as_str) {
        Some("udp") => Transport::Udp,
        _ => Transport::Tcp,
    };
    let connect = |name: &str| {
        let mut o = ClientOptions::new(server, transport);
        o.client_name = Some(name.to_owned());
        AsyncClient::connect(o)
    };
    let (device_client, operator_client) = (connect(ID).await?, connect("operator").await?);
    let device = tokio::spawn(device(device_client));
    let seen = operator(operator_client).await?;
    let jobs = device.await??;
    println!("operator saw {seen} readings; the device did {jobs} jobs");
    if seen == 0 || jobs != 2 {
        return Err(format!("{seen} readings seen, {jobs} jobs done").into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(&args).await
}
