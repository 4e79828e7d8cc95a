//! Socket options on accepted TCP connections, through socket2: no Nagle delay, and kernel
//! keepalive plus `TCP_USER_TIMEOUT`, so half-open connections are found even with application
//! heartbeats off.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

use crate::config::ServerConfig;

fn ms(v: u32) -> Duration {
    Duration::from_millis(u64::from(v))
}

/// Applies the configured options to an accepted connection.
///
/// # Errors
/// The kernel refused an option.
pub(crate) fn configure(stream: &impl AsFd, config: &ServerConfig) -> io::Result<()> {
    let socket = SockRef::from(stream);
    socket.set_tcp_nodelay(true)?;
    socket.set_tcp_keepalive(
        &TcpKeepalive::new()
            .with_time(ms(config.keepalive_idle_ms))
            .with_interval(ms(config.keepalive_interval_ms))
            .with_retries(config.keepalive_retries),
    )?;
    socket.set_tcp_user_timeout(Some(ms(config.user_timeout_ms)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};

    use super::*;

    #[test]
    fn the_kernel_holds_the_configured_options() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let config = ServerConfig {
            keepalive_idle_ms: 7_000,
            keepalive_interval_ms: 3_000,
            keepalive_retries: 4,
            user_timeout_ms: 21_000,
            ..ServerConfig::default()
        };
        configure(&accepted, &config).unwrap();
        let s = SockRef::from(&accepted);
        assert!(s.tcp_nodelay().unwrap());
        assert!(s.keepalive().unwrap());
        assert_eq!(s.tcp_keepalive_time().unwrap(), Duration::from_secs(7));
        assert_eq!(s.tcp_keepalive_interval().unwrap(), Duration::from_secs(3));
        assert_eq!(s.tcp_keepalive_retries().unwrap(), 4);
        assert_eq!(s.tcp_user_timeout().unwrap(), Some(Duration::from_secs(21)));
    }
}
