//! Session keys: what a session token names (docs/PROTOCOL.md section 4.3), and the identities
//! of sessions, live and parked.
//!
//! A session's key is its transport id (a TCP connection's event-loop token, a UDP connection id)
//! put through a permutation of the 64-bit numbers (a four-round Feistel network with SipHash
//! rounds, one permutation per transport) under a seed random at start. It costs no memory per session, and it is undone to find
//! the live session a token names. Within a run no id is given out twice, so neither is a key; the
//! keys of a TCP and a UDP session coincide by a 2^-64 chance. The next run has another seed, so the
//! tokens of the last run (whose key signs tokens across
//! restarts when there is a data directory) name none of its sessions but the parked ones the data
//! directory held, which are found by key.

use std::collections::HashMap;
use std::hash::Hasher;

use framewire_protocol::wire::{LastWill, Text};
use siphasher::sip::SipHasher24;

use super::output::{ClientId, Outputs};
use crate::store::SessionRecord;

const ROUNDS: u8 = 4;

#[derive(Debug, Default)]
pub(crate) struct Sessions {
    seed: [u8; 16],
    /// The identities of live sessions that presented a connect token.
    identities: HashMap<ClientId, Text>,
    /// Parked sessions by key, with their identities.
    parked: HashMap<u64, Option<Text>>,
    /// Resumed sessions: the key each was resumed from, to the key it has now. The resumed
    /// session's token names it once more (its client may never have seen the Welcome with the
    /// new token: a connection cut after the handshake, an HTTP poll whose answer was lost), but
    /// only the latest hop is kept.
    successors: HashMap<u64, u64>,
    /// The other way: the key each resumed session was resumed from.
    predecessors: HashMap<u64, u64>,
}

impl Sessions {
    pub(crate) fn new(seed: [u8; 16]) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }

    fn round(&self, tag: u8, i: u8, half: u32) -> u32 {
        let mut h = SipHasher24::new_with_key(&self.seed);
        h.write_u8(tag);
        h.write_u8(i);
        h.write_u32(half);
        // The low half of the hash.
        (h.finish() & u64::from(u32::MAX)) as u32
    }

    fn permute(&self, tag: u8, x: u64) -> u64 {
        let (mut l, mut r) = ((x >> 32) as u32, (x & u64::from(u32::MAX)) as u32);
        for i in 0..ROUNDS {
            (l, r) = (r, l ^ self.round(tag, i, r));
        }
        (u64::from(l) << 32) | u64::from(r)
    }

    fn unpermute(&self, tag: u8, y: u64) -> u64 {
        let (mut l, mut r) = ((y >> 32) as u32, (y & u64::from(u32::MAX)) as u32);
        for i in (0..ROUNDS).rev() {
            (l, r) = (r ^ self.round(tag, i, l), l);
        }
        (u64::from(l) << 32) | u64::from(r)
    }

    /// The key of a session.
    pub(crate) fn key_of(&self, client: ClientId) -> u64 {
        match client {
            ClientId::Tcp(t) => self.permute(0, t as u64),
            ClientId::Udp(id) => self.permute(1, id),
        }
    }

    /// The session of this run that `key` would be on transport `tag` (0 TCP, 1 UDP), live or
    /// not.
    pub(crate) fn client_of(&self, tag: u8, key: u64) -> Option<ClientId> {
        let raw = self.unpermute(tag, key);
        match tag {
            0 => usize::try_from(raw).ok().map(ClientId::Tcp),
            1 => Some(ClientId::Udp(raw)),
            _ => None,
        }
    }

    /// A session begins: its key.
    pub(crate) fn open(&mut self, client: ClientId, identity: Option<Text>) -> u64 {
        if let Some(id) = identity {
            self.identities.insert(client, id);
        }
        self.key_of(client)
    }

    /// A live session's identity.
    pub(crate) fn identity(&self, client: ClientId) -> Option<&Text> {
        self.identities.get(&client)
    }

    /// A live session is over: its key.
    pub(crate) fn close(&mut self, client: ClientId) -> u64 {
        self.identities.remove(&client);
        self.key_of(client)
    }

    /// The identity of the session a token names (transport `tag`, `key`): a parked one's, or
    /// that of the live session of this run it would be.
    pub(crate) fn owner(&self, tag: u8, key: u64) -> Option<&Text> {
        match self.parked.get(&key) {
            Some(identity) => identity.as_ref(),
            None => self
                .client_of(tag, key)
                .and_then(|c| self.identities.get(&c)),
        }
    }

    /// Keeps the identity of a session parked under `key`.
    pub(crate) fn park(&mut self, key: u64, identity: Option<Text>) {
        self.parked.insert(key, identity);
    }

    /// A parked session is resumed or expired: its identity goes.
    pub(crate) fn unpark(&mut self, key: u64) {
        self.parked.remove(&key);
    }

    /// The session under `old` was resumed as `new`: `old`'s token names `new` from now on, and
    /// the key `old` had been resumed from names nothing any more.
    pub(crate) fn succeeded(&mut self, old: u64, new: u64) {
        if let Some(older) = self.predecessors.remove(&old) {
            self.successors.remove(&older);
        }
        self.successors.insert(old, new);
        self.predecessors.insert(new, old);
    }

    /// The key a resume token's key names now: the session that resumed it, if one did.
    pub(crate) fn current(&self, key: u64) -> u64 {
        self.successors.get(&key).copied().unwrap_or(key)
    }

    /// The session under `key` is over for good: the key it was resumed from names nothing.
    pub(crate) fn forget_lineage(&mut self, key: u64) {
        if let Some(old) = self.predecessors.remove(&key) {
            self.successors.remove(&old);
        }
    }

    /// A parked session's identity.
    pub(crate) fn parked_identity(&self, key: u64) -> Option<&Text> {
        self.parked.get(&key).and_then(Option::as_ref)
    }

    /// Records `session.opened` for a live session the log does not have yet (nothing without
    /// a log); its sequence number if it wrote one.
    pub(crate) fn recorded(
        &self,
        client: ClientId,
        will: Option<&LastWill>,
        out: &mut Outputs,
    ) -> Option<u64> {
        if !out.is_durable() {
            return None;
        }
        let key = self.key_of(client);
        if out.has_session(key) {
            return None;
        }
        out.record_session(SessionRecord::Opened {
            key,
            identity: self.identities.get(&client).cloned(),
            will: will.cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_undone_to_its_session_and_another_run_draws_other_keys() {
        let s = Sessions::new([3; 16]);
        let mut seen = std::collections::HashSet::new();
        for client in (0..1000).map(ClientId::Tcp).chain([
            ClientId::Tcp(usize::MAX >> 1),
            ClientId::Udp(0),
            ClientId::Udp(u64::MAX),
        ]) {
            let key = s.key_of(client);
            assert!(seen.insert(key), "{client:?}");
            let tag = match client {
                ClientId::Tcp(_) => 0,
                ClientId::Udp(_) => 1,
            };
            assert_eq!(s.client_of(tag, key), Some(client));
        }
        let other = Sessions::new([4; 16]);
        assert_ne!(other.key_of(ClientId::Tcp(1)), s.key_of(ClientId::Tcp(1)));
        assert_eq!(s.client_of(2, 1), None);
    }

    #[test]
    fn identities_are_kept_for_live_and_parked_sessions() {
        let mut s = Sessions::new([3; 16]);
        let a = s.open(ClientId::Tcp(1), Some(Text::from("alice")));
        let b = s.open(ClientId::Udp(1), None);
        assert_eq!(s.owner(0, a), Some(&Text::from("alice")));
        assert_eq!(s.owner(1, b), None);
        assert_eq!(s.close(ClientId::Tcp(1)), a);
        assert_eq!(s.owner(0, a), None);
        s.park(a, Some(Text::from("alice")));
        assert_eq!(s.owner(0, a), Some(&Text::from("alice")));
        assert_eq!(s.parked_identity(a), Some(&Text::from("alice")));
        s.unpark(a);
        assert_eq!(s.parked_identity(a), None);
    }

    #[test]
    fn a_resumed_sessions_old_key_names_it_for_one_hop() {
        let mut s = Sessions::new([3; 16]);
        s.succeeded(1, 2);
        assert_eq!((s.current(1), s.current(2)), (2, 2));
        s.succeeded(2, 3);
        assert_eq!((s.current(1), s.current(2), s.current(3)), (1, 3, 3));
        s.forget_lineage(3);
        assert_eq!(s.current(2), 2);
        assert!(s.successors.is_empty() && s.predecessors.is_empty());
    }
}
