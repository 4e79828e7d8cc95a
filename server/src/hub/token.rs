//! Session tokens (docs/PROTOCOL.md section 4.3): what a client presents to resume its session.
//!
//! A token names the session it was issued to and proves the server issued it:
//!
//! ```text
//! transport (u8: 0 TCP, 1 UDP) | session key (u64) | MAC (u64: SipHash-2-4 of the first 9 bytes)
//! ```
//!
//! The key is the server's, random at start, so tokens do not outlive the server (nor do the
//! sessions they name).

use std::hash::Hasher;

use bytes::Bytes;
use siphasher::sip::SipHasher24;

use super::output::ClientId;

/// The length of a token.
pub const TOKEN_LEN: usize = 17;

/// The secret that signs session tokens.
#[derive(Clone, Default)]
pub struct TokenKey(pub [u8; 16]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

fn mac(key: &TokenKey, head: &[u8]) -> u64 {
    let mut h = SipHasher24::new_with_key(&key.0);
    h.write(head);
    h.finish()
}

/// The token of `client`'s session.
pub(crate) fn issue(key: &TokenKey, client: ClientId) -> Bytes {
    let (tag, id) = match client {
        ClientId::Tcp(t) => (0u8, t as u64),
        ClientId::Udp(u) => (1u8, u),
    };
    let mut out = [0u8; TOKEN_LEN];
    out[0] = tag;
    out[1..9].copy_from_slice(&id.to_be_bytes());
    let m = mac(key, &out[..9]);
    out[9..].copy_from_slice(&m.to_be_bytes());
    Bytes::copy_from_slice(&out)
}

/// The session a token names, if this server issued it.
pub(crate) fn verify(key: &TokenKey, token: &[u8]) -> Option<ClientId> {
    let token: &[u8; TOKEN_LEN] = token.try_into().ok()?;
    let (head, tail) = token.split_at(9);
    if mac(key, head).to_be_bytes() != tail {
        return None;
    }
    let id = u64::from_be_bytes(head[1..9].try_into().ok()?);
    match head[0] {
        0 => usize::try_from(id).ok().map(ClientId::Tcp),
        1 => Some(ClientId::Udp(id)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_session_and_a_changed_one_names_none() {
        let key = TokenKey([7; 16]);
        for client in [ClientId::Tcp(42), ClientId::Udp(u64::MAX)] {
            let t = issue(&key, client);
            assert_eq!(t.len(), TOKEN_LEN);
            assert_eq!(verify(&key, &t), Some(client));
            for i in 0..TOKEN_LEN {
                let mut bad = t.to_vec();
                bad[i] ^= 1;
                assert_eq!(verify(&key, &bad), None, "byte {i}");
            }
            assert_eq!(verify(&TokenKey([8; 16]), &t), None, "another server's");
            assert_eq!(verify(&key, &t[..16]), None);
        }
    }
}
