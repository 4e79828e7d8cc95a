//! Counters an operator (and a test) can read while the server runs.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the server has refused, and why. Shared with [`crate::ServerHandle`].
#[derive(Debug, Default)]
pub struct Counters {
    server_full: AtomicU64,
    address_limit: AtomicU64,
    session_limit: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Connections closed with `SERVER_FULL`.
    pub refused_server_full: u64,
    /// Connections closed with `ADDRESS_LIMIT`.
    pub refused_address_limit: u64,
    /// UDP handshakes refused with `SESSION_LIMIT`.
    pub refused_session_limit: u64,
}

impl Counters {
    pub(crate) fn count_server_full(&self) {
        self.server_full.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_address_limit(&self) {
        self.address_limit.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_session_limit(&self) {
        self.session_limit.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            refused_server_full: self.server_full.load(Ordering::Relaxed),
            refused_address_limit: self.address_limit.load(Ordering::Relaxed),
            refused_session_limit: self.session_limit.load(Ordering::Relaxed),
        }
    }
}
