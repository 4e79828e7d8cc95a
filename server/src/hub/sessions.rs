//! Sessions by key: what a session token names (docs/PROTOCOL.md section 4.3), and what of a
//! session the log keeps so that a client resumes it after the server restarts (section 10.3).
//!
//! A key is drawn for every admitted session, apart from the transport's id for it (a TCP
//! connection's event-loop token comes again after a restart; a key does not): SipHash of a
//! counter under a seed random at start, so keys never repeat within a run nor, but by a 2^-64
//! chance, across runs. With a data directory the token key is the directory's, so a token
//! outlives the server along with the session it names.
//!
//! A session is recorded once it matters after a crash: when it has a last will, or subscribes.
//! From then on its subscriptions, its parking, the messages kept for it while parked, and its end
//! are recorded too.

use std::collections::HashMap;
use std::hash::Hasher;

use framewire_protocol::wire::{LastWill, Text};
use siphasher::sip::SipHasher24;

use super::output::{ClientId, Outputs};
use crate::store::SessionRecord;

/// A live session's key and identity.
#[derive(Debug)]
struct Live {
    key: u64,
    identity: Option<Text>,
}

#[derive(Debug, Default)]
pub(crate) struct Sessions {
    seed: [u8; 16],
    counter: u64,
    live: HashMap<ClientId, Live>,
    by_key: HashMap<u64, ClientId>,
    /// The identities of parked sessions, by key.
    parked_identities: HashMap<u64, Option<Text>>,
}

impl Sessions {
    pub(crate) fn new(seed: [u8; 16]) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }

    /// A key that no session, live or parked, has.
    fn fresh_key(&mut self) -> u64 {
        loop {
            self.counter += 1;
            let mut h = SipHasher24::new_with_key(&self.seed);
            h.write_u64(self.counter);
            let key = h.finish();
            if key != 0
                && !self.by_key.contains_key(&key)
                && !self.parked_identities.contains_key(&key)
            {
                return key;
            }
        }
    }

    /// A session begins: its key.
    pub(crate) fn open(&mut self, client: ClientId, identity: Option<Text>) -> u64 {
        let key = self.fresh_key();
        self.live.insert(client, Live { key, identity });
        self.by_key.insert(key, client);
        key
    }

    /// The live session a key names.
    pub(crate) fn live_by_key(&self, key: u64) -> Option<ClientId> {
        self.by_key.get(&key).copied()
    }

    /// The key of a live session.
    pub(crate) fn key_of(&self, client: ClientId) -> Option<u64> {
        self.live.get(&client).map(|l| l.key)
    }

    /// The identity of the session a key names, live or parked (which may be none); `None`
    /// when it names no session.
    pub(crate) fn identity_by_key(&self, key: u64) -> Option<&Option<Text>> {
        if let Some(client) = self.by_key.get(&key) {
            return self.live.get(client).map(|l| &l.identity);
        }
        self.parked_identities.get(&key)
    }

    /// Every live session: its client, key and identity.
    pub(crate) fn live(&self) -> impl Iterator<Item = (ClientId, u64, Option<&Text>)> {
        self.live
            .iter()
            .map(|(&c, l)| (c, l.key, l.identity.as_ref()))
    }

    /// A live session's identity.
    pub(crate) fn identity(&self, client: ClientId) -> Option<&Text> {
        self.live.get(&client).and_then(|l| l.identity.as_ref())
    }

    /// A live session is over here (ended, or taken over by another connection): its key.
    pub(crate) fn close(&mut self, client: ClientId) -> Option<u64> {
        let live = self.live.remove(&client)?;
        self.by_key.remove(&live.key);
        Some(live.key)
    }

    /// Keeps the identity of a session parked under `key`.
    pub(crate) fn park(&mut self, key: u64, identity: Option<Text>) {
        self.parked_identities.insert(key, identity);
    }

    /// A parked session is resumed or expired: its identity goes.
    pub(crate) fn unpark(&mut self, key: u64) {
        self.parked_identities.remove(&key);
    }

    /// Records `session.opened` for a live session the log does not have yet (nothing without
    /// a log); its sequence number if it wrote one.
    pub(crate) fn recorded(
        &self,
        client: ClientId,
        will: Option<&LastWill>,
        out: &mut Outputs,
    ) -> Option<u64> {
        let live = self.live.get(&client)?;
        if !out.is_durable() || out.has_session(live.key) {
            return None;
        }
        out.record_session(SessionRecord::Opened {
            key: live.key,
            identity: live.identity.clone(),
            will: will.cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_name_their_live_session_until_it_closes() {
        let mut s = Sessions::new([3; 16]);
        let a = s.open(ClientId::Tcp(1), Some(Text::from("alice")));
        let b = s.open(ClientId::Udp(1), None);
        assert_ne!(a, b);
        assert_eq!(s.live_by_key(a), Some(ClientId::Tcp(1)));
        assert_eq!(s.identity_by_key(a), Some(&Some(Text::from("alice"))));
        assert_eq!(s.identity_by_key(b), Some(&None));
        assert_eq!(s.close(ClientId::Tcp(1)), Some(a));
        assert_eq!(s.live_by_key(a), None);
        assert_eq!(s.identity_by_key(a), None);
        s.park(a, Some(Text::from("alice")));
        assert_eq!(s.identity_by_key(a), Some(&Some(Text::from("alice"))));
        // Another run's seed draws other keys.
        let mut other = Sessions::new([4; 16]);
        assert_ne!(other.open(ClientId::Tcp(1), None), a);
    }
}
