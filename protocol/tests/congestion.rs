//! Congestion control on the simulated network: random loss alone does not throttle a sender
//! below what it offers, and a real bottleneck is used but not flooded, whatever the random loss.

use std::time::Duration;

use framewire_protocol::session::SessionConfig;
use framewire_protocol::sim::{LinkConfig, Pair};

#[test]
fn random_loss_alone_does_not_throttle_the_offered_load() {
    for (i, loss) in [0.01, 0.05, 0.20].into_iter().enumerate() {
        let link = LinkConfig {
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(5),
            loss,
            ..LinkConfig::default()
        };
        let mut pair = Pair::new(
            SessionConfig::default(),
            SessionConfig::default(),
            &link,
            40 + i as u64,
        );
        // 1 MB/s of 1 KiB messages for 10 s. Loss-driven NewReno alone sustains about
        // 1.22 / sqrt(p) datagrams per round trip: 1 % loss, 0.37 MB/s here.
        let delivered = pair.offer(1024, 1000, 10);
        let offered = 1024 * 1000 * 10;
        assert!(
            delivered * 100 >= offered * 95,
            "{loss}: {delivered} of {offered}"
        );
    }
}

#[test]
fn a_bottleneck_is_used_and_not_flooded_whatever_the_random_loss() {
    for (i, loss) in [0.0, 0.01, 0.05].into_iter().enumerate() {
        let capacity = 200_000;
        let link = LinkConfig {
            latency: Duration::from_millis(20),
            loss,
            bandwidth: Some(capacity),
            queue_bytes: 32 * 1024,
            ..LinkConfig::default()
        };
        let mut pair = Pair::new(
            SessionConfig::default(),
            SessionConfig::default(),
            &link,
            50 + i as u64,
        );
        // Five times what the bottleneck carries.
        let seconds = 20;
        let delivered = pair.offer(1024, 1000, seconds);
        let stats = &pair.stats_ab;
        assert!(
            delivered * 100 >= capacity * seconds * 75,
            "{loss}: delivered {delivered} of {} the link carries",
            capacity * seconds
        );
        assert!(
            stats.overflowed * 100 <= stats.sent * 5,
            "{loss}: {} of {} datagrams overflowed the bottleneck",
            stats.overflowed,
            stats.sent
        );
    }
}
