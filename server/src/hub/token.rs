//! Session tokens (docs/PROTOCOL.md section 4.3): what a client presents to resume its session.
//!
//! A token names the session it was issued to and proves the server issued it:
//!
//! ```text
//! transport (u8: 0 TCP, 1 UDP) | session key (u64) | MAC (u64: SipHash-2-4 of the first 9 bytes)
//! ```
//!
//! The session key is the transport's id for the session scrambled under a seed of the run
//! (`sessions.rs`).
//! The MAC key is random at start, so tokens do not outlive the server, unless it has a data
//! directory: then the key is the directory's, and a token resumes its session after a restart.

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

/// The token of `client`'s session, whose key is `session`.
pub(crate) fn issue(key: &TokenKey, client: ClientId, session: u64) -> Bytes {
    let tag = match client {
        ClientId::Tcp(_) => 0u8,
        ClientId::Udp(_) => 1u8,
    };
    let mut out = [0u8; TOKEN_LEN];
    out[0] = tag;
    out[1..9].copy_from_slice(&session.to_be_bytes());
    let m = mac(key, &out[..9]);
    out[9..].copy_from_slice(&m.to_be_bytes());
    Bytes::copy_from_slice(&out)
}

/// The transport tag (0 TCP, 1 UDP) and key of the session a token names, if this server issued
/// it.
pub(crate) fn verify(key: &TokenKey, token: &[u8]) -> Option<(u8, u64)> {
    let token: &[u8; TOKEN_LEN] = token.try_into().ok()?;
    let (head, tail) = token.split_at(9);
    if mac(key, head).to_be_bytes() != tail || head[0] > 1 {
        return None;
    }
    Some((head[0], u64::from_be_bytes(head[1..9].try_into().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_session_and_a_changed_one_names_none() {
        let key = TokenKey([7; 16]);
        for (client, session) in [(ClientId::Tcp(42), 7), (ClientId::Udp(1), u64::MAX)] {
            let t = issue(&key, client, session);
            assert_eq!(t.len(), TOKEN_LEN);
            assert_eq!(verify(&key, &t).map(|(_, k)| k), Some(session));
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
