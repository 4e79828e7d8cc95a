//! Topic filters (docs/PROTOCOL.md sections 5.1 and 5.8, after MQTT 3.1.1 section 4.7): the one
//! matching rule that the server's subscriptions and the connect tokens' permissions share.
//!
//! Levels are separated by `/`; `+` is one whole level, `#` (last only) any number of levels,
//! none included; a topic that starts with `$` is not matched by a filter that starts with a
//! wildcard.

/// Whether `filter` matches `topic` (both already checked for syntax).
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) | (None, None) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}
