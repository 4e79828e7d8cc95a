//! The client crate's examples, run against a real server: each checks its own outcome (a player
//! that saw none of the other's moves, an operator that saw no telemetry, a command or a job that
//! failed is an error) and returns it.

#[allow(dead_code, reason = "the example's main is not called here")]
#[path = "../../client/examples/chat.rs"]
mod chat;

#[allow(dead_code, reason = "the example's main is not called here")]
#[path = "../../client/examples/iot_sensor.rs"]
mod iot_sensor;

#[allow(dead_code, reason = "the example's main is not called here")]
#[path = "../../client/examples/game_sync.rs"]
mod game_sync;

#[allow(dead_code, reason = "the example's main is not called here")]
#[path = "../../client/examples/async_iot.rs"]
mod async_iot;

use framewire_server::ServerConfig;
use framewire_tests::{DEADLINE, TestServer};

/// The chat says what its input says, then leaves; another client in the room hears it all.
#[test]
fn the_chat_example_says_its_lines_to_the_room() {
    let server = TestServer::start(ServerConfig::default());
    let mut listener = framewire_client::Client::connect(framewire_client::ClientOptions::new(
        server.addr(),
        framewire_client::Transport::Tcp,
    ))
    .unwrap();
    listener.subscribe("chat/lobby").unwrap();
    let input = std::io::Cursor::new(b"hello\nbye\n".to_vec());
    chat::run(
        &["alice".into(), "lobby".into(), server.addr().to_string()],
        input,
    )
    .expect("the chat ran");
    let heard: Vec<String> = std::iter::from_fn(|| listener.next_message(DEADLINE).ok().flatten())
        .take(4)
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect();
    assert_eq!(
        heard,
        [
            "alice: * joined",
            "alice: hello",
            "alice: bye",
            "alice: * left"
        ]
    );
}

#[test]
fn the_iot_sensor_example_runs_over_both_transports() {
    let server = TestServer::start(ServerConfig::default());
    iot_sensor::run(&[server.addr().to_string(), "tcp".into()]).expect("over TCP");
    iot_sensor::run(&[server.udp_addr().to_string(), "udp".into()]).expect("over UDP");
}

#[test]
fn the_game_sync_example_runs() {
    let server = TestServer::start(ServerConfig::default());
    game_sync::run(&["2".into(), server.udp_addr().to_string()]).expect("both players saw moves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_iot_example_runs_over_both_transports() {
    let server = TestServer::start(ServerConfig::default());
    async_iot::run(&[server.addr().to_string(), "tcp".into()])
        .await
        .expect("over TCP");
    async_iot::run(&[server.udp_addr().to_string(), "udp".into()])
        .await
        .expect("over UDP");
}
