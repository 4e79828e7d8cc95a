//! Limits of one queue: the server-wide ones (`max_queue_depth`, `max_deliveries`,
//! `visibility_timeout_ms`, dead letters to `<queue>.dead`) unless a rule for the queue's name
//! says otherwise (setting `queue`, docs/PROTOCOL.md section 5.8):
//!
//! ```text
//! queue = "jobs max_depth=1000 max_deliveries=5 dead_letter=jobs.failed"
//! queue = "mail.* visibility_timeout_ms=120000"
//! ```
//!
//! A rule names a queue, or a prefix ending in `*`; the rule for the exact name wins, then the
//! longest prefix. A rule sets any of the limits and leaves the others to the server's.

use std::str::FromStr;
use std::time::Duration;

use framewire_protocol::wire::Text;

use super::config::HubConfig;

/// What a queue's name ends with to be the dead-letter queue of another, by default.
pub(crate) const DEAD_SUFFIX: &str = ".dead";

/// The limits a rule sets for the queues it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRule {
    /// A queue's name, or a prefix of names followed by `*`.
    pub pattern: String,
    /// Messages in the queue, ready and unacknowledged; a push past it gets `QUEUE_FULL`.
    pub max_depth: Option<usize>,
    /// Deliveries after which an unacknowledged message moves to the dead-letter queue; 0: none.
    pub max_deliveries: Option<u32>,
    /// How long a fetched message waits for its ack.
    pub visibility_timeout: Option<Duration>,
    /// The dead-letter queue, instead of `<queue>.dead`.
    pub dead_letter: Option<Text>,
}

impl QueueRule {
    /// How well the rule names `queue`: `None` if it does not; the longer the better.
    fn fit(&self, queue: &str) -> Option<usize> {
        match self.pattern.strip_suffix('*') {
            Some(prefix) => queue.starts_with(prefix).then_some(prefix.len()),
            None => (self.pattern == queue).then_some(usize::MAX),
        }
    }
}

impl FromStr for QueueRule {
    type Err = String;

    /// `NAME[*] key=value ...` with keys `max_depth`, `max_deliveries`,
    /// `visibility_timeout_ms` and `dead_letter`.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.split_whitespace();
        let pattern = words
            .next()
            .filter(|p| !p.strip_suffix('*').unwrap_or(p).contains('*'))
            .ok_or_else(|| format!("{s:?}: a queue rule starts with a name, or a prefix and *"))?;
        let mut rule = Self {
            pattern: pattern.to_string(),
            max_depth: None,
            max_deliveries: None,
            visibility_timeout: None,
            dead_letter: None,
        };
        let mut any = false;
        for word in words {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| format!("{word:?} is not key=value"))?;
            let whole = |max: u64| {
                value
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n <= max)
                    .ok_or_else(|| format!("{key}: {value:?} is not a whole number up to {max}"))
            };
            match key {
                "max_depth" => {
                    rule.max_depth = Some(usize::try_from(whole(1 << 40)?).unwrap_or(usize::MAX));
                }
                "max_deliveries" => {
                    rule.max_deliveries =
                        Some(u32::try_from(whole(u64::from(u32::MAX))?).unwrap_or(u32::MAX));
                }
                "visibility_timeout_ms" => {
                    let ms = whole(24 * 3600 * 1000)?;
                    if ms == 0 {
                        return Err(format!("{key}: must be at least 1"));
                    }
                    rule.visibility_timeout = Some(Duration::from_millis(ms));
                }
                "dead_letter" => {
                    if value.is_empty() || value == pattern {
                        return Err(format!("{key}: {value:?} cannot be the dead-letter queue"));
                    }
                    rule.dead_letter = Some(Text::from(value));
                }
                _ => {
                    return Err(format!(
                        "unknown queue limit {key:?} (max_depth, max_deliveries, \
                         visibility_timeout_ms, dead_letter)"
                    ));
                }
            }
            any = true;
        }
        if any {
            Ok(rule)
        } else {
            Err(format!("{s:?}: a queue rule sets at least one limit"))
        }
    }
}

/// The limits of one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueueLimits {
    pub(crate) max_depth: usize,
    pub(crate) max_deliveries: u32,
    pub(crate) visibility_timeout: Duration,
    /// Where a message delivered `max_deliveries` times goes; `None`: this queue is itself a
    /// dead-letter queue, and keeps its messages.
    pub(crate) dead_letter: Option<Text>,
}

impl HubConfig {
    /// The limits of queue `name`.
    pub(crate) fn queue_limits(&self, name: &str) -> QueueLimits {
        let rule = self
            .queue_rules
            .iter()
            .filter_map(|r| Some((r.fit(name)?, r)))
            .max_by_key(|(fit, _)| *fit)
            .map(|(_, r)| r);
        let dead_letter = if self.is_dead_letter(name) {
            None
        } else {
            Some(
                rule.and_then(|r| r.dead_letter.clone())
                    .unwrap_or_else(|| Text::from(format!("{name}{DEAD_SUFFIX}").as_str())),
            )
        };
        QueueLimits {
            max_depth: rule
                .and_then(|r| r.max_depth)
                .unwrap_or(self.max_queue_depth),
            max_deliveries: rule
                .and_then(|r| r.max_deliveries)
                .unwrap_or(self.max_deliveries),
            visibility_timeout: rule
                .and_then(|r| r.visibility_timeout)
                .unwrap_or(self.visibility_timeout),
            dead_letter,
        }
    }

    /// Whether `name` is a dead-letter queue (its name ends `.dead`, or a rule names it), which
    /// has none of its own: dead letters never chain.
    fn is_dead_letter(&self, name: &str) -> bool {
        name.ends_with(DEAD_SUFFIX)
            || self
                .queue_rules
                .iter()
                .any(|r| r.dead_letter.as_ref().is_some_and(|d| d.as_str() == name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rules: &[&str]) -> HubConfig {
        HubConfig {
            max_deliveries: 3,
            queue_rules: rules.iter().map(|r| r.parse().unwrap()).collect(),
            ..HubConfig::default()
        }
    }

    #[test]
    fn the_exact_rule_wins_then_the_longest_prefix_and_the_rest_is_the_servers() {
        let c = config(&[
            "jobs.* max_depth=10",
            "jobs.mail.* max_depth=20 visibility_timeout_ms=5000",
            "jobs.mail.urgent max_deliveries=1 dead_letter=urgent.failed",
        ]);
        let d = HubConfig::default();
        let l = c.queue_limits("jobs.mail.urgent");
        assert_eq!(
            l,
            QueueLimits {
                max_depth: d.max_queue_depth,
                max_deliveries: 1,
                visibility_timeout: d.visibility_timeout,
                dead_letter: Some(Text::from("urgent.failed")),
            }
        );
        let l = c.queue_limits("jobs.mail.bulk");
        assert_eq!(
            (l.max_depth, l.max_deliveries, l.visibility_timeout),
            (20, 3, Duration::from_secs(5))
        );
        assert_eq!(l.dead_letter, Some(Text::from("jobs.mail.bulk.dead")));
        assert_eq!(c.queue_limits("jobs.x").max_depth, 10);
        assert_eq!(c.queue_limits("other").max_depth, d.max_queue_depth);
        // Dead-letter queues have none of their own.
        assert_eq!(c.queue_limits("urgent.failed").dead_letter, None);
        assert_eq!(c.queue_limits("jobs.x.dead").dead_letter, None);
    }

    #[test]
    fn a_bad_rule_is_refused_with_what_is_wrong() {
        for (rule, says) in [
            ("", "starts with a name"),
            ("jobs", "at least one limit"),
            ("j*bs max_depth=1", "starts with a name"),
            ("jobsé* max_depth=1", ""),
            ("jobs depth=1", "unknown queue limit"),
            ("jobs max_depth", "not key=value"),
            ("jobs max_depth=-1", "whole number"),
            ("jobs visibility_timeout_ms=0", "at least 1"),
            ("jobs dead_letter=jobs", "cannot be the dead-letter queue"),
        ] {
            match rule.parse::<QueueRule>() {
                Err(e) => assert!(e.contains(says), "{rule:?}: {e}"),
                Ok(r) => assert_eq!(says, "", "{rule:?} taken: {r:?}"),
            }
        }
        assert!("* max_depth=5".parse::<QueueRule>().is_ok(), "every queue");
    }
}
