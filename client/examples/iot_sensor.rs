//! A sensor (Internet of Things) and its operator, in one process. The sensor publishes its temperature every
//! 500 ms to `sensors/ID/temp`, says it is online on `sensors/ID/online` (retained; its last will
//! sets it back to `false` if it vanishes), and answers commands as the registered service
//! `sensor.ID`: `read`, and `interval MS`. The operator watches the telemetry and sends commands.
//!
//! ```sh
//! cargo run --release --bin framewire-server
//! cargo run -p framewire-client --example iot_sensor -- [SERVER] [tcp|udp]
//! ```

use std::time::{Duration, Instant};

use bytes::Bytes;
use framewire_client::{Client, ClientOptions, LastWill, PublishOptions, Status, Text, Transport};

const ID: &str = "greenhouse-7";

fn sensor(options: ClientOptions) -> Result<(), framewire_client::Error> {
    let mut c = Client::connect(options)?;
    let retained = PublishOptions {
        retain: true,
        ..PublishOptions::default()
    };
    c.publish_with(&format!("sensors/{ID}/online"), "true", retained)?;
    c.register(&format!("sensor.{ID}"))?;
    let mut interval = Duration::from_millis(500);
    let mut next = Instant::now();
    let mut reading = 21.0f32;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        if Instant::now() >= next {
            reading += 0.13;
            c.publish(&format!("sensors/{ID}/temp"), format!("{reading:.2}"))?;
            next += interval;
        }
        let wait = next.saturating_duration_since(Instant::now());
        if let Some(cmd) = c.next_request(wait)? {
            let text = String::from_utf8_lossy(&cmd.payload).into_owned();
            let (status, answer) = match text.split_once(' ') {
                None if text == "read" => (Status::OK, format!("{reading:.2}")),
                Some(("interval", ms)) => match ms.parse() {
                    Ok(ms) => {
                        interval = Duration::from_millis(ms);
                        (Status::OK, format!("interval now {ms} ms"))
                    }
                    Err(_) => (Status::BAD_REQUEST, format!("not a number: {ms}")),
                },
                _ => (Status::BAD_REQUEST, format!("unknown command: {text}")),
            };
            println!("  sensor: command {text:?} -> {answer}");
            c.respond(&cmd, status, answer)?;
        }
    }
    // A clean close: the last will is not published, so say offline ourselves.
    c.publish_with(&format!("sensors/{ID}/online"), "false", retained)?;
    c.close();
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(&args)
}

/// The sensor and its operator for `args` (`[SERVER] [tcp|udp]`); fails if a command fails or the
/// operator saw no telemetry.
pub(crate) fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let server = args
        .first()
        .map_or("127.0.0.1:7400", String::as_str)
        .parse()?;
    let transport = match args.get(1).map(String::as_str) {
        Some("udp") => Transport::Udp,
        _ => Transport::Tcp,
    };
    let mut sensor_options = ClientOptions::new(server, transport);
    sensor_options.client_name = Some(ID.into());
    sensor_options.last_will = Some(LastWill {
        retain: true,
        channel: 0,
        topic: Text::from(format!("sensors/{ID}/online").as_str()),
        payload: Bytes::from_static(b"false"),
    });
    let mut operator = Client::connect(ClientOptions::new(server, transport)).map_err(|e| {
        format!("cannot reach {server}: {e} (start it with `cargo run --release --bin framewire-server`)")
    })?;
    operator.subscribe("sensors/+/temp")?;
    operator.subscribe("sensors/+/online")?;
    println!("operator: watching sensors/+/temp over {transport:?}");
    let device = std::thread::spawn(move || sensor(sensor_options));
    let started = Instant::now();
    let mut commanded = false;
    let mut readings = 0;
    while started.elapsed() < Duration::from_secs(5) {
        if let Some(m) = operator.next_message(Duration::from_millis(100))? {
            readings += usize::from(m.topic.as_str().ends_with("/temp"));
            println!(
                "operator: {} = {}",
                m.topic,
                String::from_utf8_lossy(&m.payload)
            );
        }
        if !commanded && started.elapsed() > Duration::from_secs(1) {
            commanded = true;
            let target = format!("sensor.{ID}");
            let now = operator.request(&target, "read", Duration::from_secs(2))?;
            println!("operator: read -> {}", String::from_utf8_lossy(&now));
            let set = operator.request(&target, "interval 250", Duration::from_secs(2))?;
            println!(
                "operator: interval 250 -> {}",
                String::from_utf8_lossy(&set)
            );
            match operator.request(&target, "reboot", Duration::from_secs(2)) {
                Err(e) => println!("operator: reboot -> refused: {e}"),
                Ok(r) => println!("operator: reboot -> {}", String::from_utf8_lossy(&r)),
            }
        }
    }
    device.join().map_err(|_| "the sensor thread panicked")??;
    operator.close();
    if readings == 0 {
        return Err("the operator saw no telemetry".into());
    }
    Ok(())
}
