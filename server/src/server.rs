//! The server: one worker thread per core (`threads`), each with its own mio poller and its own
//! TCP listener and UDP socket bound to the same address with `SO_REUSEPORT`, so the kernel
//! spreads connections and UDP peers over them; one hub shared by all ([`crate::shared`]).

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;

use framewire_protocol::wire::NodeCard;
use log::{error, info};
use mio::{Poll, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use crate::capture::PacketCapture;
use crate::cluster::bridge::{Bridge, BridgeConfig};
use crate::cluster::nodes::NodeInfo;
use crate::cluster::queues::QueueTerms;
use crate::config::ServerConfig;
use crate::counters::{CounterSnapshot, Counters};
use crate::event_loop::{Listeners, WAKER, Worker};
use crate::hub::{AuthConfig, Hub, ServerInfo, TokenKey};
use crate::shared::{Discovery, Shared, SharedLimits};
use crate::store::Log;
use crate::tls::TlsTerms;
use crate::udp::random_key;

/// Connections waiting to be accepted, per listener.
const BACKLOG: i32 = 1024;

/// A bound server, ready to [`Server::run`].
#[derive(Debug)]
pub struct Server {
    workers: Vec<Worker>,
    shared: Arc<Shared>,
    addrs: Addresses,
}

/// Stops a running server from another thread, and reads its counters.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    addrs: Addresses,
    shared: Arc<Shared>,
}

impl ServerHandle {
    /// The address the server accepts TCP connections on, if it does.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.addrs.tcp
    }

    /// The address UDP is served on, if it is.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.addrs.udp
    }

    /// The address the server accepts TLS connections on, if it does.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.addrs.tls
    }

    /// The address the server accepts HTTP connections on (WebSocket, metrics), if it does.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.addrs.http
    }

    /// The address the server accepts HTTP over TLS on, if it does.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.addrs.https
    }

    /// What the server has counted so far.
    pub fn counters(&self) -> CounterSnapshot {
        self.shared.counters.snapshot()
    }

    /// Asks the server to send every connection a Close (`GOING_AWAY`) and return from `run`.
    pub fn shutdown(&self) {
        self.shared.stop_all();
    }
}

fn tcp_listener(addr: SocketAddr, reuse_port: bool) -> io::Result<mio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(mio::net::TcpListener::from_std(socket.into()))
}

fn udp_socket(addr: SocketAddr, reuse_port: bool) -> io::Result<mio::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(mio::net::UdpSocket::from_std(socket.into()))
}

/// The packet capture `--capture` asks for, created (and its file truncated) now.
fn open_capture(config: &ServerConfig) -> io::Result<Option<PacketCapture>> {
    let Some(path) = &config.capture else {
        return Ok(None);
    };
    let capture =
        PacketCapture::create(path.clone(), config.capture_max_bytes, config.capture_files)
            .map_err(|e| io::Error::new(e.kind(), format!("capture {}: {e}", path.display())))?;
    info!(
        "capturing packets to {} (rotated at {} bytes, {} files kept)",
        path.display(),
        config.capture_max_bytes,
        config.capture_files
    );
    Ok(Some(capture))
}

/// Where a server listens: each address the first socket of its kind was bound to (a configured
/// port 0 becomes the port chosen), `None` for a kind not served.
#[derive(Debug, Clone, Copy, Default)]
struct Addresses {
    tcp: Option<SocketAddr>,
    udp: Option<SocketAddr>,
    tls: Option<SocketAddr>,
    http: Option<SocketAddr>,
    https: Option<SocketAddr>,
}

/// Every worker's sockets: one of each configured kind per worker, all on the same address.
struct Sockets {
    tcp: Vec<mio::net::TcpListener>,
    tls: Vec<mio::net::TcpListener>,
    http: Vec<mio::net::TcpListener>,
    https: Vec<mio::net::TcpListener>,
    udp: Vec<mio::net::UdpSocket>,
    addrs: Addresses,
}

/// One socket per worker on `addr` (none when `None`): the first settles the port (the
/// configured one may be 0), the others share it. `what` names the setting in an error.
fn bind_each<T>(
    addr: Option<SocketAddr>,
    threads: usize,
    what: &str,
    open: fn(SocketAddr, bool) -> io::Result<T>,
    local: fn(&T) -> io::Result<SocketAddr>,
) -> io::Result<(Vec<T>, Option<SocketAddr>)> {
    let Some(addr) = addr else {
        return Ok((Vec::new(), None));
    };
    let explain = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("{what} on {addr}: {e} (move it with --{what} ADDR, or --{what} off)"),
        )
    };
    let first = open(addr, threads > 1).map_err(explain)?;
    let bound = local(&first)?;
    let mut sockets = vec![first];
    for _ in 1..threads {
        sockets.push(open(bound, true).map_err(explain)?);
    }
    Ok((sockets, Some(bound)))
}

impl Sockets {
    /// Binds them, and logs where the server listens.
    fn bind(config: &ServerConfig, threads: usize) -> io::Result<Self> {
        let tcp_local = mio::net::TcpListener::local_addr;
        let mut addrs = Addresses::default();
        let tcp;
        let tls;
        let http;
        let https;
        let udp;
        (tcp, addrs.tcp) = bind_each(config.tcp_addr, threads, "tcp", tcp_listener, tcp_local)?;
        (tls, addrs.tls) = bind_each(config.tls_addr, threads, "tls", tcp_listener, tcp_local)?;
        (http, addrs.http) = bind_each(config.http_addr, threads, "http", tcp_listener, tcp_local)?;
        (https, addrs.https) =
            bind_each(config.https_addr, threads, "https", tcp_listener, tcp_local)?;
        (udp, addrs.udp) = bind_each(
            config.udp_addr,
            threads,
            "udp",
            udp_socket,
            mio::net::UdpSocket::local_addr,
        )?;
        info!("{threads} worker threads");
        if let Some(addr) = addrs.tcp {
            info!("listening for TCP on {addr}");
        }
        if let Some(addr) = addrs.udp {
            info!("serving UDP on {addr}");
        }
        if let Some(addr) = addrs.tls {
            info!(
                "listening for TLS on {addr}{}",
                if config.tls_client_ca.is_some() {
                    " (client certificates required)"
                } else {
                    ""
                }
            );
        }
        if let Some(addr) = addrs.http {
            info!("listening for HTTP on {addr} (WebSocket at /ws, metrics at /metrics)");
        }
        if let Some(addr) = addrs.https {
            info!("listening for HTTPS on {addr} (WebSocket over TLS at /ws, metrics at /metrics)");
        }
        Ok(Self {
            tcp,
            tls,
            http,
            https,
            udp,
            addrs,
        })
    }
}

impl Server {
    /// Binds every worker's listener (and UDP socket) to the configured addresses.
    ///
    /// # Errors
    /// Neither TCP nor UDP is configured, an address cannot be bound, a poller cannot be
    /// created, the token key file cannot be read, or the system has no randomness.
    pub fn bind(config: &ServerConfig) -> io::Result<Self> {
        if !config.serves_something() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "neither TCP, TLS, UDP, HTTP nor HTTPS is configured: the server would serve nothing",
            ));
        }
        if config.require_encryption && config.udp_addr.is_some() && config.token_key_file.is_none()
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "require_encryption with UDP needs token_key_file: a UDP session is sealed with the keys its token carries",
            ));
        }
        let tls = match config
            .tls_files()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        {
            Some(files) => Some(TlsTerms::load(files)?),
            None => None,
        };
        let threads = config.threads.max(1);
        let sockets = Sockets::bind(config, threads)?;
        let addrs = sockets.addrs;
        let counters = Arc::new(Counters::default());
        let mut hub = Hub::new(
            config.hub.clone(),
            server_info(config)?,
            Arc::clone(&counters),
        );
        let wake_on_durable = open_store(config, &mut hub)?;
        if !config.cluster.is_empty() {
            hub.join_cluster();
        }
        let mut polls = Vec::new();
        let mut wakers = Vec::new();
        for _ in 0..threads {
            let poll = Poll::new()?;
            wakers.push(Waker::new(poll.registry(), WAKER)?);
            polls.push(poll);
        }
        let limits = SharedLimits {
            connections: config.max_connections,
            connections_per_address: config.max_connections_per_address,
            udp_sessions: config.max_udp_sessions,
            handshakes_per_address_per_sec: config.max_handshakes_per_address_per_sec,
            require_encryption: config.require_encryption,
        };
        let capture = open_capture(config)?;
        let card = node_card(config, addrs);
        let discovery = (config.discovery && addrs.udp.is_some())
            .then(|| Discovery::new(card.clone(), config.discovery_rate));
        let shared = Arc::new(
            Shared::new(
                hub,
                wakers,
                counters,
                limits,
                std::time::Instant::now(),
                capture,
                tls,
            )
            .with_discovery(discovery),
        );
        let _ = wake_on_durable.set(Arc::downgrade(&shared));
        start_bridge(config, card, &shared)?;
        let mut udps = sockets.udp.into_iter();
        let mut listeners = sockets.tcp.into_iter();
        let mut tls_listeners = sockets.tls.into_iter();
        let mut plain_web = sockets.http.into_iter();
        let mut tls_web = sockets.https.into_iter();
        let workers = polls
            .into_iter()
            .enumerate()
            .map(|(i, poll)| {
                Worker::new(
                    i,
                    poll,
                    Listeners {
                        tcp: listeners.next(),
                        tls: tls_listeners.next(),
                        http: plain_web.next(),
                        https: tls_web.next(),
                    },
                    udps.next(),
                    config,
                    Arc::clone(&shared),
                )
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self {
            workers,
            shared,
            addrs,
        })
    }

    /// Binds, then runs the server on threads of its own.
    ///
    /// # Errors
    /// As [`Server::bind`].
    pub fn spawn(config: &ServerConfig) -> io::Result<(ServerHandle, JoinHandle<io::Result<()>>)> {
        let mut server = Self::bind(config)?;
        let handle = server.handle();
        let thread = std::thread::Builder::new()
            .name("framewire-server".into())
            .spawn(move || server.run())?;
        Ok((handle, thread))
    }

    /// The address the server accepts TCP connections on, if it does.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.addrs.tcp
    }

    /// The address UDP is served on, if it is.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.addrs.udp
    }

    /// The address the server accepts TLS connections on, if it does.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.addrs.tls
    }

    /// The address the server accepts HTTP connections on, if it does.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.addrs.http
    }

    /// The address the server accepts HTTP over TLS on, if it does.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.addrs.https
    }

    /// A handle that stops the server.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            addrs: self.addrs,
            shared: Arc::clone(&self.shared),
        }
    }

    /// Shuts the server down gracefully on SIGINT or SIGTERM, as [`ServerHandle::shutdown`]
    /// does. Signal handlers belong to the whole process: the binary calls this, a server embedded
    /// in another program (or a test) need not.
    ///
    /// # Errors
    /// The handlers cannot be installed or registered.
    pub fn handle_signals(&mut self) -> io::Result<()> {
        match self.workers.first_mut() {
            Some(w) => w.handle_signals(),
            None => Ok(()),
        }
    }

    /// Serves until [`ServerHandle::shutdown`]: the first worker on this thread, the others on
    /// threads of their own; returns when all have closed their connections.
    ///
    /// # Errors
    /// A worker's poller failed (the others are stopped too).
    pub fn run(&mut self) -> io::Result<()> {
        let mut workers = std::mem::take(&mut self.workers).into_iter();
        let Some(mut first) = workers.next() else {
            return Ok(());
        };
        let mut threads = Vec::new();
        for (i, mut worker) in workers.enumerate() {
            let shared = Arc::clone(&self.shared);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("framewire-worker-{}", i + 1))
                    .spawn(move || {
                        let result = worker.run();
                        if result.is_err() {
                            shared.stop_all();
                        }
                        result
                    })?,
            );
        }
        let mut result = first.run();
        if result.is_err() {
            self.shared.stop_all();
        }
        self.shared.leave_cluster();
        for t in threads {
            if let Ok(r) = t.join() {
                result = result.and(r);
            } else {
                error!("a worker thread panicked");
                result = result.and(Err(io::Error::other("a worker thread panicked")));
            }
        }
        result
    }
}

/// This node's card: its name (`node_name`, or `framewire-` and the process id) and the
/// addresses it serves clients on (each kind's `advertise` address, else the bound one; a kind
/// it does not serve is left out), for the cluster's announcements and LAN discovery's answers.
fn node_card(config: &ServerConfig, addrs: Addresses) -> NodeCard {
    NodeCard {
        name: config
            .node_name
            .clone()
            .unwrap_or_else(|| format!("framewire-{}", std::process::id())),
        addrs: [
            ("tcp", addrs.tcp),
            ("udp", addrs.udp),
            ("tls", addrs.tls),
            ("http", addrs.http),
            ("https", addrs.https),
        ]
        .into_iter()
        .filter_map(|(kind, bound)| {
            let advertised = config.advertise.iter().find(|(k, _)| *k == kind);
            Some((kind, advertised.map_or(bound, |(_, a)| Some(*a))?))
        })
        .collect(),
    }
}

/// In a cluster (`--cluster`), starts the NATS bridge; it wakes the first worker when messages
/// from other nodes wait.
fn start_bridge(config: &ServerConfig, card: NodeCard, shared: &Arc<Shared>) -> io::Result<()> {
    if config.cluster.is_empty() {
        return Ok(());
    }
    let weak = Arc::downgrade(shared);
    let bridge = Bridge::start(
        BridgeConfig {
            urls: config.cluster.clone(),
            me: NodeInfo {
                card,
                services: Vec::new(),
            },
            queues: QueueTerms {
                ack_wait: config.hub.visibility_timeout,
                max_deliveries: config.hub.max_deliveries,
            },
        },
        Arc::clone(&shared.cluster_inbox),
        Arc::clone(&shared.counters.cluster),
        move || {
            if let Some(shared) = weak.upgrade() {
                shared.wake(0);
            }
        },
    )?;
    shared.join_cluster(bridge);
    Ok(())
}

/// Opens the data directory, if there is one, and has the hub keep its state there. The writer
/// thread wakes the first worker when records become durable: its next turn sends the
/// confirmations that waited for them. The returned cell is to hold the shared state it wakes.
fn open_store(config: &ServerConfig, hub: &mut Hub) -> io::Result<Arc<OnceLock<Weak<Shared>>>> {
    let wake: Arc<OnceLock<Weak<Shared>>> = Arc::new(OnceLock::new());
    let Some(store) = config.store_config() else {
        return Ok(wake);
    };
    let opened = Log::open(store)?;
    let target = Arc::clone(&wake);
    opened.log.on_durable(move || {
        if let Some(shared) = target.get().and_then(Weak::upgrade) {
            shared.wake(0);
        }
    });
    info!(
        "durable: data directory {} (fsync {})",
        opened.log.dir().display(),
        opened.log.policy()
    );
    // Before the loops start the protocol clock reads zero.
    hub.keep_in(
        framewire_protocol::session::Instant::from_micros(0),
        Box::new(opened.log),
        &opened.state,
        TokenKey(opened.session_key),
    );
    Ok(wake)
}

/// What `sys.info` reports of the server's settings, and the wall clock at the protocol clock's
/// zero.
fn server_info(config: &ServerConfig) -> io::Result<ServerInfo> {
    let unix_micros_at_zero = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    Ok(ServerInfo {
        token_key: TokenKey(random_key()?),
        session_seed: random_key()?,
        auth: load_auth(config)?,
        unix_micros_at_zero,
        limits: vec![
            ("max_connections", config.max_connections as u64),
            (
                "max_connections_per_address",
                config.max_connections_per_address as u64,
            ),
            ("max_frame_len", u64::from(config.max_frame_len)),
            ("max_queued_bytes", config.max_queued_bytes as u64),
            ("idle_timeout_ms", u64::from(config.idle_timeout_ms)),
            (
                "heartbeat_interval_ms",
                u64::from(config.heartbeat_interval_ms),
            ),
            (
                "max_subscriptions_per_session",
                config.hub.max_subscriptions_per_session as u64,
            ),
            ("max_queue_depth", config.hub.max_queue_depth as u64),
            ("max_name_len", config.hub.max_name_len as u64),
        ],
    })
}

/// The connect-token key and policy: the key file is read at start, and must hold at least
/// [`MIN_KEY_LEN`](framewire_protocol::auth::MIN_KEY_LEN) bytes.
pub(crate) fn load_auth(config: &ServerConfig) -> io::Result<AuthConfig> {
    let Some(path) = &config.token_key_file else {
        if config.require_tokens {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "require_tokens needs token_key_file: the key that verifies the tokens",
            ));
        }
        return Ok(AuthConfig {
            acl: config.acl.clone(),
            ..AuthConfig::default()
        });
    };
    let key = std::fs::read(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read the token key file {}: {e}", path.display()),
        )
    })?;
    let min = framewire_protocol::auth::MIN_KEY_LEN;
    if key.len() < min {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the token key file {} holds {} bytes; a key needs at least {min}",
                path.display(),
                key.len()
            ),
        ));
    }
    info!(
        "connect tokens checked with the key in {}{}",
        path.display(),
        if config.require_tokens {
            ", and required"
        } else {
            ""
        }
    );
    Ok(AuthConfig {
        key: Some(key.into()),
        require: config.require_tokens,
        acl: config.acl.clone(),
    })
}
