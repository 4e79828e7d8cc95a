//! A chat room over TCP. Run the server, then this in two terminals:
//!
//! ```sh
//! cargo run --release --bin framewire-server
//! cargo run -p framewire-client --example chat -- alice
//! cargo run -p framewire-client --example chat -- bob
//! ```
//!
//! Each line you type goes to everyone in the room (`chat/ROOM`, default `lobby`); what the others
//! say is printed as it arrives. Arguments: `NAME [ROOM] [SERVER]` (server default 127.0.0.1:7400).
//! The last lines said stay retained on `chat/ROOM/last`, so a newcomer sees where the talk is.

use std::io::BufRead;
use std::sync::mpsc;
use std::time::Duration;

use framewire_client::{Client, ClientOptions, PublishOptions, Transport};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(&args, std::io::BufReader::new(std::io::stdin()))
}

/// The chat for `args` (`NAME [ROOM] [SERVER]`), saying each line of `input` until it ends.
pub(crate) fn run(
    args: &[String],
    input: impl BufRead + Send + 'static,
) -> Result<(), Box<dyn std::error::Error>> {
    let name = args.first().cloned().unwrap_or_else(|| "guest".into());
    let room = args.get(1).cloned().unwrap_or_else(|| "lobby".into());
    let server = args
        .get(2)
        .map_or("127.0.0.1:7400", String::as_str)
        .parse()?;
    let mut options = ClientOptions::new(server, Transport::Tcp);
    options.client_name = Some(name.clone());
    let mut client = Client::connect(options).map_err(|e| {
        format!("cannot reach {server}: {e} (start it with `cargo run --release --bin framewire-server`)")
    })?;
    let topic = format!("chat/{room}");
    client.subscribe(&topic)?;
    client.subscribe(&format!("{topic}/last"))?;
    println!("{name} joined #{room}; type a line and press enter (ctrl-d leaves)");
    client.publish(&topic, format!("{name}: * joined"))?;

    // Lines from the keyboard come through a channel, so one loop waits on both.
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in input.lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        match lines.try_recv() {
            Ok(line) => {
                let text = format!("{name}: {line}");
                client.publish(&topic, text.clone())?;
                let retained = PublishOptions {
                    retain: true,
                    ..PublishOptions::default()
                };
                client.publish_with(&format!("{topic}/last"), text, retained)?;
            }
            Err(mpsc::TryRecvError::Disconnected) => break,
            Err(mpsc::TryRecvError::Empty) => {}
        }
        if let Some(m) = client.next_message(Duration::from_millis(50))? {
            let text = String::from_utf8_lossy(&m.payload);
            if m.retained {
                println!("(earlier) {text}");
            } else if m.topic.as_str() == topic && !text.starts_with(&format!("{name}:")) {
                println!("{text}");
            }
        }
    }
    client.publish(&topic, format!("{name}: * left"))?;
    client.close();
    Ok(())
}
