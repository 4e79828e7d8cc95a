//! The client crate's examples, run against a real server: each checks its own outcome (a player
//! that saw none of the other's moves, an operator that saw no telemetry, a command or a job that
//! failed is an error) and returns it.

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
use framewire_tests::TestServer;

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
