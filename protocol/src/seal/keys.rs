//! The keys of a sealed session: the two a connect token carries (one per direction), and the two
//! a session derives from them in its handshake.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Bytes of a key.
pub const KEY_LEN: usize = 32;

/// What the derivation of a session key starts with (docs/PROTOCOL.md section 2.3).
const SESSION_LABEL: &[u8] = b"framewire seal v1";

/// The keys a connect token carries in its sealed part, and its issuer hands the client beside it
/// (`framewire token` writes both).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenKeys {
    /// Seals what the client sends.
    pub client_to_server: [u8; KEY_LEN],
    /// Seals what the server sends.
    pub server_to_client: [u8; KEY_LEN],
}

impl core::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    /// The two keys as the 64 bytes a token seals: client-to-server first.
    pub fn to_bytes(&self) -> [u8; 2 * KEY_LEN] {
        let mut out = [0u8; 2 * KEY_LEN];
        out[..KEY_LEN].copy_from_slice(&self.client_to_server);
        out[KEY_LEN..].copy_from_slice(&self.server_to_client);
        out
    }

    /// The keys from the 64 bytes of [`TokenKeys::to_bytes`].
    pub fn from_bytes(bytes: &[u8; 2 * KEY_LEN]) -> Self {
        let mut keys = Self {
            client_to_server: [0; KEY_LEN],
            server_to_client: [0; KEY_LEN],
        };
        keys.client_to_server.copy_from_slice(&bytes[..KEY_LEN]);
        keys.server_to_client.copy_from_slice(&bytes[KEY_LEN..]);
        keys
    }
}

/// One session's keys, for one side: what it seals with and what it opens with.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// Seals this side's datagrams.
    pub send: [u8; KEY_LEN],
    /// Opens the peer's.
    pub receive: [u8; KEY_LEN],
}

impl core::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

impl SessionKeys {
    /// The session's keys: each direction's token key through HMAC-SHA256 over the label
    /// `framewire seal v1`, the direction (`c` or `s`, the sender), the connection id and the
    /// Hello's nonce (both big-endian `u64`) and the cookie the Hello echoed. `server` says which
    /// side this is.
    pub fn derive(
        keys: &TokenKeys,
        connection_id: u64,
        nonce: u64,
        cookie: &[u8],
        server: bool,
    ) -> Self {
        let c2s = derive_one(&keys.client_to_server, b'c', connection_id, nonce, cookie);
        let s2c = derive_one(&keys.server_to_client, b's', connection_id, nonce, cookie);
        if server {
            Self {
                send: s2c,
                receive: c2s,
            }
        } else {
            Self {
                send: c2s,
                receive: s2c,
            }
        }
    }
}

fn derive_one(
    key: &[u8; KEY_LEN],
    direction: u8,
    connection_id: u64,
    nonce: u64,
    cookie: &[u8],
) -> [u8; KEY_LEN] {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        // HMAC takes a key of any length.
        return [0; KEY_LEN];
    };
    mac.update(SESSION_LABEL);
    mac.update(&[direction]);
    mac.update(&connection_id.to_be_bytes());
    mac.update(&nonce.to_be_bytes());
    mac.update(cookie);
    let mut out = [0u8; KEY_LEN];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys {
            client_to_server: [1; KEY_LEN],
            server_to_client: [2; KEY_LEN],
        }
    }

    #[test]
    fn each_side_sends_with_what_the_other_receives_with() {
        let server = SessionKeys::derive(&keys(), 7, 9, b"cookie", true);
        let client = SessionKeys::derive(&keys(), 7, 9, b"cookie", false);
        assert_eq!(server.send, client.receive);
        assert_eq!(server.receive, client.send);
        assert_ne!(server.send, server.receive);
    }

    #[test]
    fn another_connection_id_nonce_or_cookie_gives_other_keys() {
        let base = SessionKeys::derive(&keys(), 7, 9, b"cookie", true);
        for other in [
            SessionKeys::derive(&keys(), 8, 9, b"cookie", true),
            SessionKeys::derive(&keys(), 7, 10, b"cookie", true),
            SessionKeys::derive(&keys(), 7, 9, b"cookie2", true),
        ] {
            assert_ne!(base.send, other.send);
            assert_ne!(base.receive, other.receive);
        }
    }

    #[test]
    fn token_keys_round_trip_through_their_bytes() {
        assert_eq!(TokenKeys::from_bytes(&keys().to_bytes()), keys());
    }
}
