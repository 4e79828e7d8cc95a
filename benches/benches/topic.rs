//! Topic matching: the server's subscription tree (`framewire_server::hub::topic`) finding the
//! subscribers of a published topic among 10,000 subscriptions, and the single-filter rule
//! (`framewire_protocol::topic::matches`) that connect tokens' permissions use.
//!
//! `cargo bench -p framewire-benches --bench topic`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use framewire_protocol::topic::matches;
use framewire_server::hub::topic::SubscriptionTree;

/// 10,000 subscriptions as a telemetry deployment has them: one per device (100 sites x 90
/// devices), a site-wide `#` per site, a `+` per device across sites, and a few dashboards.
fn tree() -> SubscriptionTree<u32> {
    let mut tree = SubscriptionTree::default();
    let mut id = 0;
    let mut add = |filter: String| {
        tree.insert(&filter, id);
        id += 1;
    };
    for site in 0..100 {
        for device in 0..90 {
            add(format!("sensors/site{site}/dev{device}/temp"));
        }
        add(format!("sensors/site{site}/#"));
    }
    for device in 0..890 {
        add(format!("sensors/+/dev{device}/+"));
    }
    for dashboard in 0..10 {
        add(format!("sensors/+/+/alarm/{dashboard}"));
    }
    assert_eq!(id, 10_000);
    tree
}

fn subscription_tree(c: &mut Criterion) {
    let tree = tree();
    let mut group = c.benchmark_group("topic_tree_10k");
    for (name, topic) in [
        // One exact subscription, the site's `#`, and one `+` filter: 3 subscribers.
        ("hit_3_subscribers", "sensors/site42/dev17/temp"),
        // Nothing subscribed to this branch.
        ("miss", "actuators/site42/dev17/valve"),
        // `$` topics are not matched by leading wildcards; none here.
        ("dollar_topic", "$SYS/broker/uptime"),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0;
                tree.for_each_match(black_box(topic), |subs| n += subs.len());
                n
            });
        });
    }
    group.bench_function("subscribers_deduplicated", |b| {
        b.iter(|| {
            tree.subscribers(black_box("sensors/site42/dev17/temp"))
                .len()
        });
    });
    group.finish();
}

fn single_filter(c: &mut Criterion) {
    let mut group = c.benchmark_group("topic_matches");
    for (name, filter, topic) in [
        (
            "exact",
            "sensors/site42/dev17/temp",
            "sensors/site42/dev17/temp",
        ),
        ("plus", "sensors/+/dev17/+", "sensors/site42/dev17/temp"),
        ("hash", "sensors/#", "sensors/site42/dev17/temp"),
        (
            "mismatch_late",
            "sensors/site42/dev17/humidity",
            "sensors/site42/dev17/temp",
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| matches(black_box(filter), black_box(topic)));
        });
    }
    group.finish();
}

criterion_group!(benches, subscription_tree, single_filter);
criterion_main!(benches);
