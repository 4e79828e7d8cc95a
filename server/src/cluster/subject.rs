//! framewire topics and filters as NATS subjects (docs/PROTOCOL.md section 12.2).
//!
//! A topic's levels become a subject's tokens under the prefix `fw.t`: `room/7/chat` is
//! `fw.t.room.7.chat`. A filter's `+` becomes `*` and its `#` becomes `>` (a final `#` also matches
//! the level above it in framewire, `a/#` matching `a`: the node subscribes to both `fw.t.a` and
//! `fw.t.a.>`). A NATS token cannot hold `.`, `*`, `>` or white space and cannot be empty, so each
//! level is escaped: those bytes, `%` itself and every other byte below `0x21` or equal to `0x7F`
//! are written `%XX` (two upper-case hex digits), and an empty level is the token `%`. Every
//! other byte, UTF-8 included, is kept. The mapping is one to one: [`topic_of`] undoes
//! [`subject_of_topic`].

/// The prefix of every subject a node publishes topics under.
pub const TOPIC_PREFIX: &str = "fw.t";

fn needs_escape(b: u8) -> bool {
    matches!(b, b'.' | b'*' | b'>' | b'%') || b < 0x21 || b == 0x7F
}

fn push_level(out: &mut String, level: &str) {
    if level.is_empty() {
        out.push('%');
        return;
    }
    let mut rest = level;
    while let Some(at) = rest.bytes().position(needs_escape) {
        out.push_str(&rest[..at]);
        let b = rest.as_bytes()[at];
        out.push('%');
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xF)]));
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The subject a topic is published under.
pub fn subject_of_topic(topic: &str) -> String {
    subject_under(TOPIC_PREFIX, topic)
}

/// The prefix of the subjects of the cluster's retained messages (their `JetStream` stream).
pub const RETAINED_PREFIX: &str = "fw.r";

/// The subject a topic's retained message is kept under: the topic's tokens under
/// [`RETAINED_PREFIX`].
pub fn retained_subject_of_topic(topic: &str) -> String {
    subject_under(RETAINED_PREFIX, topic)
}

fn subject_under(prefix: &str, topic: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + topic.len() + 8);
    out.push_str(prefix);
    for level in topic.split('/') {
        out.push('.');
        push_level(&mut out, level);
    }
    out
}

/// The prefix of the subjects requests for services travel under.
pub const SERVICE_PREFIX: &str = "fw.s";

/// The subject requests for `service` travel under: its name as one escaped token.
pub fn subject_of_service(service: &str) -> String {
    format!("{SERVICE_PREFIX}.{}", token_of_name(service))
}

/// The subjects a node subscribes to for a (checked) filter: one, or two for a filter ending in
/// `#` (the level above it, and everything below).
pub fn subjects_of_filter(filter: &str) -> Vec<String> {
    let mut out = String::with_capacity(TOPIC_PREFIX.len() + filter.len() + 8);
    out.push_str(TOPIC_PREFIX);
    for level in filter.split('/') {
        match level {
            "#" => {
                // `a/#` also matches `a`; a lone `#` matches every topic, which `fw.t.>` covers.
                let parent = (out.len() > TOPIC_PREFIX.len()).then(|| out.clone());
                out.push_str(".>");
                return parent.into_iter().chain([out]).collect();
            }
            "+" => out.push_str(".*"),
            level => {
                out.push('.');
                push_level(&mut out, level);
            }
        }
    }
    vec![out]
}

/// The topic a subject names, if it is one of ours and well formed.
pub fn topic_of(subject: &str) -> Option<String> {
    topic_under(TOPIC_PREFIX, subject)
}

/// The topic a retained message's subject names ([`retained_subject_of_topic`]).
pub fn topic_of_retained(subject: &str) -> Option<String> {
    topic_under(RETAINED_PREFIX, subject)
}

fn topic_under(prefix: &str, subject: &str) -> Option<String> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
    let mut topic = String::with_capacity(rest.len());
    for (i, token) in rest.split('.').enumerate() {
        if i > 0 {
            topic.push('/');
        }
        // `%` is an empty level; an empty token is no subject of ours (nor a valid one).
        topic.push_str(&name_of_token(token)?);
    }
    Some(topic)
}

/// The text an escaped token stands for (`%` alone, an empty level, is the caller's to handle);
/// `None` for a token no escaping writes.
fn unescape_token(token: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(token.len());
    let mut it = token.bytes();
    while let Some(b) = it.next() {
        if b == b'%' {
            let hi = hex_value(it.next()?)?;
            let lo = hex_value(it.next()?)?;
            let escaped = (hi << 4) | lo;
            if !needs_escape(escaped) {
                return None;
            }
            bytes.push(escaped);
        } else if needs_escape(b) || b == b'/' {
            // Neither is ever written raw: a level holds no '/'.
            return None;
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8(bytes).ok()
}

/// `name` as one token, escaped as a topic's level is (what follows `fw.s.` in
/// [`subject_of_service`]).
pub fn token_of_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    push_level(&mut out, name);
    out
}

/// The name a token of [`token_of_name`] stands for.
pub fn name_of_token(token: &str) -> Option<String> {
    if token == "%" {
        return Some(String::new());
    }
    if token.is_empty() {
        return None;
    }
    unescape_token(token)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn topics_and_filters_map_as_the_spec_says() {
        // docs/PROTOCOL.md section 12.2's table.
        assert_eq!(subject_of_topic("room/7/chat"), "fw.t.room.7.chat");
        assert_eq!(subject_of_topic("a.b//c d"), "fw.t.a%2Eb.%.c%20d");
        assert_eq!(subjects_of_filter("dev/#"), ["fw.t.dev", "fw.t.dev.>"]);
        assert_eq!(subject_of_service("echo.upper"), "fw.s.echo%2Eupper");
        assert_eq!(subject_of_topic("a.b/*/>"), "fw.t.a%2Eb.%2A.%3E");
        assert_eq!(subject_of_topic("/x//"), "fw.t.%.x.%.%");
        assert_eq!(subject_of_topic("50% off/a b"), "fw.t.50%25%20off.a%20b");
        assert_eq!(subject_of_topic("température"), "fw.t.température");
        assert_eq!(subjects_of_filter("room/+/chat"), ["fw.t.room.*.chat"]);
        assert_eq!(subjects_of_filter("room/#"), ["fw.t.room", "fw.t.room.>"]);
        assert_eq!(subjects_of_filter("#"), ["fw.t.>"]);
        assert_eq!(subjects_of_filter("+/a.b"), ["fw.t.*.a%2Eb"]);
        assert_eq!(topic_of("fw.t.a%2Eb.%.c").as_deref(), Some("a.b//c"));
        for bad in [
            "fw.x.a",
            "fw.t",
            "fw.t.",
            "fw.t.a..b",
            "fw.t.a/b",
            "fw.t.a%2",
            "fw.t.a%2e",
            "fw.t.a%41",
            "fw.t.a%FF",
            "fw.t.a b",
        ] {
            assert_eq!(topic_of(bad), None, "{bad}");
        }
    }

    fn level() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just('.'),
                Just('*'),
                Just('>'),
                Just('%'),
                Just(' '),
                Just('\u{7f}'),
                Just('\u{1}'),
                Just('é'),
                proptest::char::range('a', 'z'),
            ],
            0..6,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        #[test]
        fn every_topic_maps_to_a_valid_subject_and_back(levels in proptest::collection::vec(level(), 1..6)) {
            let topic = levels.join("/");
            let subject = subject_of_topic(&topic);
            // A NATS subject: tokens split by '.', none empty, no wildcard or white space.
            for token in subject.split('.') {
                prop_assert!(!token.is_empty());
                prop_assert!(!token.bytes().any(|b| b == b'*' || b == b'>' || b <= b' ' || b == 0x7F));
            }
            prop_assert_eq!(topic_of(&subject), Some(topic.clone()));
            let retained = retained_subject_of_topic(&topic);
            prop_assert_eq!(retained.strip_prefix("fw.r"), subject.strip_prefix("fw.t"));
            prop_assert_eq!(topic_of_retained(&retained), Some(topic));
            prop_assert_eq!(topic_of_retained(&subject), None);
        }

        #[test]
        fn a_filter_subject_matches_what_the_filter_matches(levels in proptest::collection::vec(level(), 1..5), wild in 0usize..5) {
            // A topic, and a filter with one of its levels (or its tail) made a wildcard.
            let topic = levels.join("/");
            let mut filter_levels: Vec<String> = levels.clone();
            if wild < filter_levels.len() {
                filter_levels[wild] = "+".into();
            } else {
                filter_levels.truncate(wild.min(filter_levels.len()).saturating_sub(1));
                filter_levels.push("#".into());
            }
            let filter = filter_levels.join("/");
            let subject = subject_of_topic(&topic);
            let matched = subjects_of_filter(&filter).iter().any(|s| nats_matches(s, &subject));
            prop_assert_eq!(matched, crate::hub::topic::matches(&filter, &topic), "{} {}", filter, topic);
        }
    }

    /// NATS's subject matching: `*` one token, `>` one or more tokens at the end.
    fn nats_matches(pattern: &str, subject: &str) -> bool {
        let (mut p, mut s) = (pattern.split('.'), subject.split('.'));
        loop {
            match (p.next(), s.next()) {
                (Some(">"), Some(_)) | (None, None) => return true,
                (Some("*"), Some(_)) => {}
                (Some(a), Some(b)) if a == b => {}
                _ => return false,
            }
        }
    }
}
