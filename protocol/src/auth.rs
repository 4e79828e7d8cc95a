//! Connect tokens (docs/PROTOCOL.md section 4.1.3): who a client is, until when, and what it may
//! do, signed by the server's key with HMAC-SHA256. A client presents one in its Hello's
//! `AUTH_TOKEN` option; the server checks the signature and the expiry before it keeps any state.
//!
//! ```text
//! version (u8: 1) | client id (name) | expires (u64: seconds since the UNIX epoch)
//! | publish | subscribe | request | serve | queue      each: count (u8), then that many names
//! | mac (32 bytes: HMAC-SHA256 under the server's key of every byte before it)
//! ```
//!
//! `publish` and `subscribe` hold topic filters (`+`, `#`); `request`, `serve` and `queue` hold
//! names, where a trailing `*` matches any rest (`sensor.*`). This module encodes, signs, parses
//! and verifies tokens, and says whether a permission list allows an operation; it keeps no state
//! and reads no clock (the caller passes the time).

use alloc::vec::Vec;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use bytes::Bytes;

use crate::error::DecodeError;
use crate::wire::Text;
use crate::wire::fields::read_name;
use crate::wire::reader::Reader;

/// The token format version this crate writes and reads.
pub const TOKEN_VERSION: u8 = 1;
/// Bytes of the signature.
pub const MAC_LEN: usize = 32;
/// The shortest key the server accepts.
pub const MIN_KEY_LEN: usize = 32;
/// Names in one permission list, at most.
pub const MAX_PATTERNS: usize = 32;

/// What a token lets its holder do. An empty list allows nothing of that kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    /// Topic filters it may publish to (a topic is allowed if a filter matches it).
    pub publish: Vec<Text>,
    /// Topic filters it may subscribe within (a filter is allowed if one of these covers it).
    pub subscribe: Vec<Text>,
    /// Request targets (`sys.*` methods are always allowed).
    pub request: Vec<Text>,
    /// Service names it may register.
    pub serve: Vec<Text>,
    /// Queues it may push to, fetch from and acknowledge.
    pub queue: Vec<Text>,
}

/// A connect token's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectToken {
    /// The client's identity, for logs.
    pub client_id: Text,
    /// Seconds since the UNIX epoch after which the token is refused.
    pub expires: u64,
    /// What it allows.
    pub permissions: Permissions,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a token: truncated, trailing bytes, a bad name, an unknown version.
    Malformed,
    /// The signature does not match (forged, altered, or another server's key).
    Forged,
    /// Past its expiry.
    Expired,
}

impl core::fmt::Display for TokenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed connect token",
            Self::Forged => "connect token signature does not match",
            Self::Expired => "connect token expired",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TokenError {}

fn mac(key: &[u8], body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(body);
    m
}

fn put_name(out: &mut Vec<u8>, name: &Text) {
    let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&name.as_bytes()[..usize::from(len)]);
}

impl ConnectToken {
    /// Encodes the claims and signs them with `key`.
    ///
    /// # Errors
    /// A permission list longer than [`MAX_PATTERNS`], or a name longer than the protocol's.
    pub fn sign(&self, key: &[u8]) -> Result<Vec<u8>, &'static str> {
        let mut out = Vec::new();
        out.push(TOKEN_VERSION);
        if self.client_id.len() > crate::wire::MAX_NAME_LEN {
            return Err("client id too long");
        }
        put_name(&mut out, &self.client_id);
        out.extend_from_slice(&self.expires.to_be_bytes());
        let p = &self.permissions;
        for list in [&p.publish, &p.subscribe, &p.request, &p.serve, &p.queue] {
            if list.len() > MAX_PATTERNS {
                return Err("too many patterns in one permission list");
            }
            if list.iter().any(|n| n.len() > crate::wire::MAX_NAME_LEN) {
                return Err("pattern too long");
            }
            out.push(list.len() as u8);
            for name in list {
                put_name(&mut out, name);
            }
        }
        let tag = mac(key, &out).finalize().into_bytes();
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Checks a token's signature under `key` and its expiry against `now_unix`, then parses it.
    /// The signature is checked first (in constant time), so nothing an attacker wrote is parsed.
    ///
    /// # Errors
    /// [`TokenError`].
    pub fn verify(bytes: &[u8], key: &[u8], now_unix: u64) -> Result<Self, TokenError> {
        let Some(body_len) = bytes.len().checked_sub(MAC_LEN) else {
            return Err(TokenError::Malformed);
        };
        let (body, tag) = bytes.split_at(body_len);
        mac(key, body)
            .verify_slice(tag)
            .map_err(|_| TokenError::Forged)?;
        let token = Self::parse_claims(body)?;
        if now_unix > token.expires {
            return Err(TokenError::Expired);
        }
        Ok(token)
    }

    /// Parses the claims (everything before the signature) without checking anything else: for
    /// tools that show what a token says.
    ///
    /// # Errors
    /// [`TokenError::Malformed`].
    pub fn parse_claims(body: &[u8]) -> Result<Self, TokenError> {
        let mut r = Reader::new(Bytes::copy_from_slice(body));
        let bad = |_: DecodeError| TokenError::Malformed;
        if r.u8().map_err(bad)? != TOKEN_VERSION {
            return Err(TokenError::Malformed);
        }
        let client_id = read_name(&mut r).map_err(bad)?;
        let expires = r.u64().map_err(bad)?;
        let mut lists: [Vec<Text>; 5] = Default::default();
        for list in &mut lists {
            let n = usize::from(r.u8().map_err(bad)?);
            if n > MAX_PATTERNS {
                return Err(TokenError::Malformed);
            }
            for _ in 0..n {
                list.push(read_name(&mut r).map_err(bad)?);
            }
        }
        r.finish().map_err(bad)?;
        let [publish, subscribe, request, serve, queue] = lists;
        Ok(Self {
            client_id,
            expires,
            permissions: Permissions {
                publish,
                subscribe,
                request,
                serve,
                queue,
            },
        })
    }
}

/// Whether some pattern (a topic filter) matches `topic` (section 5.8).
pub fn topic_allowed(patterns: &[Text], topic: &str) -> bool {
    patterns
        .iter()
        .any(|p| crate::topic::matches(p.as_str(), topic))
}

/// Whether some pattern covers every topic that `filter` can match (a subscription stays within
/// what the token allows).
pub fn filter_allowed(patterns: &[Text], filter: &str) -> bool {
    patterns.iter().any(|p| covers(p.as_str(), filter))
}

fn covers(pattern: &str, filter: &str) -> bool {
    let mut p = pattern.split('/');
    let mut f = filter.split('/');
    loop {
        match (p.next(), f.next()) {
            (Some("#"), _) | (None, None) => return true,
            (Some("+"), Some(level)) if level != "#" => {}
            (Some(a), Some(b)) if a == b && a != "+" && a != "#" => {}
            _ => return false,
        }
    }
}

/// Whether a name is allowed: equal to a pattern, or starting with a pattern's part before its
/// trailing `*`.
pub fn name_allowed(patterns: &[Text], name: &str) -> bool {
    patterns.iter().any(|p| match p.as_str().strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p.as_str() == name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Text {
        Text::from(s)
    }

    fn sample() -> ConnectToken {
        ConnectToken {
            client_id: t("sensor-7"),
            expires: 2_000_000_000,
            permissions: Permissions {
                publish: alloc::vec![t("sensors/7/#")],
                subscribe: alloc::vec![t("cmd/7/+"), t("broadcast/#")],
                request: alloc::vec![t("time.*")],
                serve: alloc::vec![t("sensor.7")],
                queue: alloc::vec![],
            },
        }
    }

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn signed_tokens_verify_and_altered_ones_do_not() {
        let bytes = sample().sign(KEY).unwrap();
        assert_eq!(
            ConnectToken::verify(&bytes, KEY, 1_999_999_999),
            Ok(sample())
        );
        assert_eq!(
            ConnectToken::verify(&bytes, KEY, 2_000_000_001),
            Err(TokenError::Expired)
        );
        assert_eq!(
            ConnectToken::verify(&bytes, b"another key of thirty-two bytes!", 0),
            Err(TokenError::Forged)
        );
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                ConnectToken::verify(&bad, KEY, 0),
                Err(TokenError::Forged),
                "byte {i}"
            );
        }
        for cut in 0..bytes.len() {
            assert!(ConnectToken::verify(&bytes[..cut], KEY, 0).is_err());
        }
    }

    #[test]
    fn permissions_match_topics_filters_and_names() {
        let p = sample().permissions;
        assert!(topic_allowed(&p.publish, "sensors/7/temp"));
        assert!(topic_allowed(&p.publish, "sensors/7"));
        assert!(!topic_allowed(&p.publish, "sensors/8/temp"));
        assert!(filter_allowed(&p.subscribe, "cmd/7/reboot"));
        assert!(filter_allowed(&p.subscribe, "cmd/7/+"));
        assert!(
            !filter_allowed(&p.subscribe, "cmd/7/#"),
            "wider than allowed"
        );
        assert!(!filter_allowed(&p.subscribe, "cmd/+/reboot"));
        assert!(filter_allowed(&p.subscribe, "broadcast/#"));
        assert!(filter_allowed(&p.subscribe, "broadcast/a/+"));
        assert!(!filter_allowed(&p.subscribe, "#"));
        assert!(name_allowed(&p.request, "time.now"));
        assert!(!name_allowed(&p.request, "timer"));
        assert!(name_allowed(&p.serve, "sensor.7"));
        assert!(!name_allowed(&p.serve, "sensor.70"));
        assert!(!name_allowed(&p.queue, "jobs"));
    }
}
