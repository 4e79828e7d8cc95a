//! The `framewire-server` binary: `cargo run --release --bin framewire-server`.

use std::process::ExitCode;

use framewire_server::Server;
use framewire_server::config::{Command, parse_args, usage};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("framewire-server: {e} (see --help)");
            return ExitCode::from(2);
        }
    };
    let mut server = match Server::bind(&config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("framewire-server: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = server.handle_signals() {
        eprintln!("framewire-server: cannot handle signals: {e}");
        return ExitCode::FAILURE;
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("framewire-server: {e}");
            ExitCode::FAILURE
        }
    }
}
