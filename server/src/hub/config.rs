//! The hub's limits and timeouts, each with what happens at the limit.

use std::time::Duration;

/// How the hub behaves. Every bound is per server unless it says per session.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Longest topic, filter, service or queue name in bytes; longer ones get `NAME_TOO_LONG`.
    pub max_name_len: usize,
    /// Subscriptions one session may hold; one more gets `LIMIT_REACHED`.
    pub max_subscriptions_per_session: usize,
    /// Topics with a retained message; a new one past this gets `LIMIT_REACHED`.
    pub max_retained: usize,
    /// Services one session may register; one more gets `LIMIT_REACHED`.
    pub max_services_per_session: usize,
    /// Routed requests one session may have waiting for a response; one more gets `LIMIT_REACHED`.
    pub max_pending_requests_per_session: usize,
    /// A request's deadline when it names none.
    pub default_request_timeout: Duration,
    /// The longest deadline a request may ask for (longer ones are cut to this).
    pub max_request_timeout: Duration,
    /// Queues at once; a push or fetch that would create one more gets `LIMIT_REACHED`.
    pub max_queues: usize,
    /// Messages in one queue, ready and unacknowledged together; a push past it gets `QUEUE_FULL`.
    pub max_queue_depth: usize,
    /// How long a fetched message waits for its ack before it is delivered again.
    pub visibility_timeout: Duration,
    /// Deliveries after which a message that is not acknowledged moves to its queue's
    /// dead-letter queue (`<queue>.dead`) instead of coming back; 0: no limit.
    pub max_deliveries: u32,
    /// The longest a long poll is held (longer waits are cut to this).
    pub max_fetch_wait: Duration,
    /// In a cluster, queues are the cluster's (a `JetStream` work queue each, docs/PROTOCOL.md
    /// section 12.6); `false`: each node's own. No effect on a node alone.
    pub cluster_queues: bool,
    /// Long polls one session may have waiting; one more gets `LIMIT_REACHED`.
    pub max_waiting_fetches_per_session: usize,
    /// How long the subscriptions of a session that ended without a Close are kept for it to
    /// resume.
    pub session_expiry: Duration,
    /// Reliable messages kept for a parked session; past this the oldest is dropped and counted in
    /// the `missed` of the Welcome that resumes it.
    pub max_parked_messages: usize,
    /// Bytes of numbered messages kept for one session that confirms them (docs/PROTOCOL.md
    /// section 5.9), live or parked, next to the count bound `max_parked_messages`; past it the
    /// oldest goes, counted in `missed`. A copy is kept per session, so this bounds what a client
    /// that never confirms can pin.
    pub max_unconfirmed_bytes: usize,
    /// Parked sessions at once; a session that ends past this is forgotten at once.
    pub max_parked_sessions: usize,
    /// Limits of particular queues, over the server-wide ones above (`queue_limits.rs`).
    pub queue_rules: Vec<super::queue_limits::QueueRule>,
}

impl HubConfig {
    /// A request's deadline from its `timeout_ms` (docs/PROTOCOL.md section 5.4): the default for
    /// 0, at most the maximum.
    pub(crate) fn request_timeout(&self, timeout_ms: u32) -> Duration {
        if timeout_ms == 0 {
            self.default_request_timeout
        } else {
            Duration::from_millis(u64::from(timeout_ms)).min(self.max_request_timeout)
        }
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            max_name_len: 256,
            max_subscriptions_per_session: 1_000,
            max_retained: 100_000,
            max_services_per_session: 100,
            max_pending_requests_per_session: 1_024,
            default_request_timeout: Duration::from_secs(5),
            max_request_timeout: Duration::from_secs(300),
            max_queues: 10_000,
            max_queue_depth: 100_000,
            visibility_timeout: Duration::from_secs(30),
            max_deliveries: 0,
            max_fetch_wait: Duration::from_secs(300),
            cluster_queues: true,
            max_waiting_fetches_per_session: 64,
            session_expiry: Duration::from_secs(120),
            max_parked_messages: 1_000,
            max_unconfirmed_bytes: 1 << 20,
            max_parked_sessions: 10_000,
            queue_rules: Vec::new(),
        }
    }
}
