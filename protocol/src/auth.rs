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

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit as _, Tag, XChaCha20Poly1305, XNonce};

use crate::error::DecodeError;
use crate::seal::{KEY_LEN, TokenKeys};
use crate::wire::Text;
use crate::wire::fields::read_name;
use crate::wire::reader::Reader;

/// The token format version of a token without keys.
pub const TOKEN_VERSION: u8 = 1;
/// The token format version of a token whose sealed part carries a UDP session's keys
/// (docs/PROTOCOL.md section 2.3): after the version byte, [`SEALED_KEYS_LEN`] bytes.
pub const TOKEN_VERSION_SEALED: u8 = 2;
/// Bytes of a token's sealed part: a 24-byte nonce, the two 32-byte keys encrypted, a 16-byte tag.
pub const SEALED_KEYS_LEN: usize = 24 + 2 * KEY_LEN + 16;
/// The associated data of a token's sealed part.
const SEALED_KEYS_AAD: &[u8] = b"framewire token keys v2";
/// What the key that seals a token's keys is derived with, from the server's key.
const SEALING_KEY_LABEL: &[u8] = b"framewire token seal v2";
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

/// The token's bytes before its mac, once the mac verified under `key` (in constant time, before
/// anything else is read).
fn signed_body<'a>(bytes: &'a [u8], key: &[u8]) -> Result<&'a [u8], TokenError> {
    let Some(body_len) = bytes.len().checked_sub(MAC_LEN) else {
        return Err(TokenError::Malformed);
    };
    let (body, tag) = bytes.split_at(body_len);
    mac(key, body)
        .verify_slice(tag)
        .map_err(|_| TokenError::Forged)?;
    Ok(body)
}

/// The keys in a verified token body's sealed part; `None` for a version-1 token.
fn open_sealed_part(body: &[u8], key: &[u8]) -> Result<Option<TokenKeys>, TokenError> {
    match body.first() {
        Some(&TOKEN_VERSION) => Ok(None),
        Some(&TOKEN_VERSION_SEALED) if body.len() > SEALED_KEYS_LEN => {
            let part = &body[1..=SEALED_KEYS_LEN];
            let (nonce, rest) = part.split_at(24);
            let (cipher, tag) = rest.split_at(2 * KEY_LEN);
            let mut plain = [0u8; 2 * KEY_LEN];
            plain.copy_from_slice(cipher);
            sealing_cipher(key)
                .decrypt_in_place_detached(
                    XNonce::from_slice(nonce),
                    SEALED_KEYS_AAD,
                    &mut plain,
                    Tag::from_slice(tag),
                )
                .map_err(|_| TokenError::Forged)?;
            Ok(Some(TokenKeys::from_bytes(&plain)))
        }
        _ => Err(TokenError::Malformed),
    }
}

/// The cipher that seals a token's keys: XChaCha20-Poly1305 under HMAC-SHA256 of the server's key
/// over a label, so the token key itself encrypts nothing.
fn sealing_cipher(key: &[u8]) -> XChaCha20Poly1305 {
    let derived = mac(key, SEALING_KEY_LABEL).finalize().into_bytes();
    let mut k = [0u8; KEY_LEN];
    k.copy_from_slice(&derived);
    XChaCha20Poly1305::new(&k.into())
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
        self.sign_inner(key, None)
    }

    /// As [`ConnectToken::sign`], with the UDP session keys `keys` sealed into the token under a
    /// key derived from `key` (XChaCha20-Poly1305, with `nonce`: 24 random bytes, never used
    /// twice under one key): a version-2 token. Hand `keys` to the client beside it.
    ///
    /// # Errors
    /// As [`ConnectToken::sign`].
    pub fn sign_with_keys(
        &self,
        key: &[u8],
        keys: &TokenKeys,
        nonce: [u8; 24],
    ) -> Result<Vec<u8>, &'static str> {
        self.sign_inner(key, Some((keys, nonce)))
    }

    fn sign_inner(
        &self,
        key: &[u8],
        sealed: Option<(&TokenKeys, [u8; 24])>,
    ) -> Result<Vec<u8>, &'static str> {
        let mut out = Vec::new();
        match sealed {
            None => out.push(TOKEN_VERSION),
            Some((keys, nonce)) => {
                out.push(TOKEN_VERSION_SEALED);
                let mut plain = keys.to_bytes();
                let tag = sealing_cipher(key)
                    .encrypt_in_place_detached(&XNonce::from(nonce), SEALED_KEYS_AAD, &mut plain)
                    .map_err(|_| "cannot seal the keys")?;
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&plain);
                out.extend_from_slice(&tag);
            }
        }
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
        let token = Self::parse_claims(signed_body(bytes, key)?)?;
        if now_unix > token.expires {
            return Err(TokenError::Expired);
        }
        Ok(token)
    }

    /// [`ConnectToken::verify`], and then [`ConnectToken::open_keys`] on what verified, with the
    /// signature checked once: the claims, and whether the keys opened (`None` for a token without
    /// keys).
    ///
    /// # Errors
    /// As [`ConnectToken::verify`]; the keys' own answer is the inner result.
    pub fn verify_with_keys(
        bytes: &[u8],
        key: &[u8],
        now_unix: u64,
    ) -> Result<(Self, Result<Option<TokenKeys>, TokenError>), TokenError> {
        let body = signed_body(bytes, key)?;
        let token = Self::parse_claims(body)?;
        if now_unix > token.expires {
            return Err(TokenError::Expired);
        }
        Ok((token, open_sealed_part(body, key)))
    }

    /// The UDP session keys a token's sealed part carries, once its signature verified under
    /// `key`: `None` for a token without keys (version 1). The expiry is not checked here (the
    /// server's admission checks it).
    ///
    /// # Errors
    /// [`TokenError::Forged`] for a bad signature or a sealed part that does not open,
    /// [`TokenError::Malformed`] for a token cut short.
    pub fn open_keys(bytes: &[u8], key: &[u8]) -> Result<Option<TokenKeys>, TokenError> {
        open_sealed_part(signed_body(bytes, key)?, key)
    }

    /// Parses the claims (everything before the signature) without checking anything else: for
    /// tools that show what a token says.
    ///
    /// # Errors
    /// [`TokenError::Malformed`].
    pub fn parse_claims(body: &[u8]) -> Result<Self, TokenError> {
        let mut r = Reader::new(Bytes::copy_from_slice(body));
        let bad = |_: DecodeError| TokenError::Malformed;
        match r.u8().map_err(bad)? {
            TOKEN_VERSION => {}
            TOKEN_VERSION_SEALED => {
                // The sealed keys: opened only by the server ([`ConnectToken::open_keys`]).
                r.bytes(SEALED_KEYS_LEN).map_err(bad)?;
            }
            _ => return Err(TokenError::Malformed),
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

    fn keys() -> TokenKeys {
        TokenKeys {
            client_to_server: [0x11; KEY_LEN],
            server_to_client: [0x22; KEY_LEN],
        }
    }

    #[test]
    fn a_token_with_keys_verifies_as_its_claims_and_only_its_servers_key_opens_them() {
        let bytes = sample().sign_with_keys(KEY, &keys(), [9; 24]).unwrap();
        assert_eq!(bytes[0], TOKEN_VERSION_SEALED);
        assert_eq!(ConnectToken::verify(&bytes, KEY, 0), Ok(sample()));
        assert_eq!(ConnectToken::open_keys(&bytes, KEY), Ok(Some(keys())));
        assert_eq!(
            ConnectToken::verify_with_keys(&bytes, KEY, 0),
            Ok((sample(), Ok(Some(keys()))))
        );
        // The keys are not in the token in the clear.
        assert!(!bytes.windows(8).any(|w| w == [0x11; 8] || w == [0x22; 8]));
        assert_eq!(
            ConnectToken::open_keys(&bytes, b"another key of thirty-two bytes!"),
            Err(TokenError::Forged)
        );
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(ConnectToken::open_keys(&bad, KEY).is_err(), "byte {i}");
        }
        for cut in 0..bytes.len() {
            assert!(ConnectToken::open_keys(&bytes[..cut], KEY).is_err());
        }
        // A token without keys opens to none.
        let plain = sample().sign(KEY).unwrap();
        assert_eq!(ConnectToken::open_keys(&plain, KEY), Ok(None));
    }

    #[test]
    fn a_sealed_part_that_does_not_open_is_forged_even_under_a_good_signature() {
        // Signed by the right key, but the sealed part was sealed under another server's key: the
        // signature passes, the keys do not open.
        let mut bytes = sample()
            .sign_with_keys(b"another key of thirty-two bytes!", &keys(), [9; 24])
            .unwrap();
        let body_len = bytes.len() - MAC_LEN;
        let tag = mac(KEY, &bytes[..body_len]).finalize().into_bytes();
        bytes[body_len..].copy_from_slice(&tag);
        assert_eq!(ConnectToken::verify(&bytes, KEY, 0), Ok(sample()));
        assert_eq!(
            ConnectToken::open_keys(&bytes, KEY),
            Err(TokenError::Forged)
        );
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
