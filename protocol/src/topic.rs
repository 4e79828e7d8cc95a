//! Topics and filters (docs/PROTOCOL.md sections 5.1 and 5.8, after MQTT 3.1.1 section 4.7): their
//! syntax, which the server and the client check alike, and the one matching rule that the
//! server's subscriptions and the connect tokens' permissions share.
//!
//! Levels are separated by `/`; `+` is one whole level, `#` (last only) any number of levels,
//! none included; a topic that starts with `$` is not matched by a filter that starts with a
//! wildcard.

/// Why a topic or filter is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicError {
    /// The empty string names nothing.
    Empty,
    /// A topic to publish to contains `+` or `#`.
    WildcardInTopic,
    /// `+` or `#` shares a level with other characters, or `#` is not the last level.
    MisplacedWildcard,
}

impl core::fmt::Display for TopicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty topic",
            Self::WildcardInTopic => "a topic to publish to has no wildcards",
            Self::MisplacedWildcard => "a wildcard is a whole level, and `#` only the last one",
        })
    }
}

/// Checks a topic that messages are published to.
///
/// # Errors
/// An empty topic, or one with a wildcard.
pub fn check_topic(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.contains(['+', '#']) {
        return Err(TopicError::WildcardInTopic);
    }
    Ok(())
}

/// Checks a subscription filter.
///
/// # Errors
/// An empty filter, or a wildcard that is not a whole level, or `#` before the last level.
pub fn check_filter(filter: &str) -> Result<(), TopicError> {
    if filter.is_empty() {
        return Err(TopicError::Empty);
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        match level {
            "+" => {}
            "#" if last => {}
            _ if level.contains(['+', '#']) => return Err(TopicError::MisplacedWildcard),
            "#" => return Err(TopicError::MisplacedWildcard),
            _ => {}
        }
    }
    Ok(())
}

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
