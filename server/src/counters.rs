//! Counters an operator (and a test) can read while the server runs.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the server has refused, and why. Shared with [`crate::ServerHandle`].
#[derive(Debug, Default)]
pub struct Counters {
    refused_server_full: AtomicU64,
    refused_address_limit: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Connections closed with `SERVER_FULL`.
    pub refused_server_full: u64,
    /// Connections closed with `ADDRESS_LIMIT`.
    pub refused_address_limit: u64,
}

impl Counters {
    pub(crate) fn count_server_full(&self) {
        self.refused_server_full.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_address_limit(&self) {
        self.refused_address_limit.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            refused_server_full: self.refused_server_full.load(Ordering::Relaxed),
            refused_address_limit: self.refused_address_limit.load(Ordering::Relaxed),
        }
    }
}
