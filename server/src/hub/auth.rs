//! Who may connect and what they may do (docs/PROTOCOL.md sections 4.1.3 and 5.8): connect tokens
//! checked at the handshake, a token bound to the first address that used it, and each session's
//! permissions checked on every operation.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use framewire_protocol::auth::{
    ConnectToken, MAC_LEN, Permissions, TokenError, filter_allowed, name_allowed, topic_allowed,
};
use framewire_protocol::seal::TokenKeys;
use framewire_protocol::session::Refusal;
use framewire_protocol::wire::{Hello, Reason, Text};
use log::info;

use super::acl::{AclRule, permissions_for};
use super::output::ClientId;

/// How many tokens' first addresses are remembered (expired ones make room first).
const MAX_REMEMBERED_TOKENS: usize = 100_000;

/// The server's key and policy.
#[derive(Clone, Default)]
pub struct AuthConfig {
    /// Verifies connect tokens; `None`: tokens are not checked (every session may do anything).
    pub key: Option<Arc<[u8]>>,
    /// Refuse a Hello without a valid token (a session with a verified client certificate
    /// needs none).
    pub require: bool,
    /// What sessions identified by a client certificate may do (setting `acl`).
    pub acl: Vec<AclRule>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("key", &self.key.as_ref().map(|_| ".."))
            .field("require", &self.require)
            .field("acl", &self.acl)
            .finish()
    }
}

/// An operation a permission list governs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Action<'a> {
    Publish(&'a str),
    Subscribe(&'a str),
    Request(&'a str),
    Serve(&'a str),
    Queue(&'a str),
}

#[derive(Debug, Default)]
pub(crate) struct Gatekeeper {
    config: AuthConfig,
    /// Each token's first address and expiry, by its signature.
    seen: HashMap<[u8; MAC_LEN], (IpAddr, u64)>,
    /// The permissions of sessions that presented a token.
    permissions: HashMap<ClientId, Arc<Permissions>>,
}

/// Who the gatekeeper let in.
#[derive(Debug, Default)]
pub(crate) struct Admitted {
    /// The certificate's or the token's identity; `None`: neither.
    pub(crate) identity: Option<Text>,
    /// The UDP session keys the token carried (a version-2 token, docs/PROTOCOL.md section 2.3).
    pub(crate) keys: Option<TokenKeys>,
}

/// Counted refusals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthStats {
    /// Handshakes refused with `AUTH_FAILED`.
    pub refused: u64,
    /// Operations refused with `FORBIDDEN`.
    pub forbidden: u64,
}

impl Gatekeeper {
    pub(crate) fn new(config: AuthConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Checks a client's token at the handshake, and keeps its permissions for the session.
    /// Returns the session's identity: the client certificate's (`certified`), else the
    /// token's client id (`None`: neither, and no token required). A session with both must
    /// have the same identity in each; the token's permissions then apply.
    pub(crate) fn admit(
        &mut self,
        client: ClientId,
        hello: &Hello,
        peer: IpAddr,
        now_unix: u64,
        certified: Option<&str>,
    ) -> Result<Admitted, Refusal> {
        let Some(identity) = certified else {
            return self.admit_by_token(client, hello, peer, now_unix);
        };
        if self.config.key.is_some() && hello.options.auth_token().is_some() {
            let admitted = self.admit_by_token(client, hello, peer, now_unix)?;
            if admitted.identity.as_ref().map(Text::as_str) != Some(identity) {
                self.permissions.remove(&client);
                info!(
                    "{client:?} from {peer}: refused: the token names another identity than the certificate {identity:?}"
                );
                return Err(Refusal {
                    silent: false,
                    reason: Reason::AUTH_FAILED,
                    message: Text::from(
                        "connect token and client certificate name different identities",
                    ),
                });
            }
            return Ok(admitted);
        }
        info!("{client:?} from {peer}: authenticated by certificate as {identity}");
        if let Some(p) = permissions_for(&self.config.acl, identity) {
            self.permissions.insert(client, Arc::new(p));
        }
        Ok(Admitted {
            identity: Some(Text::from(identity)),
            keys: None,
        })
    }

    fn admit_by_token(
        &mut self,
        client: ClientId,
        hello: &Hello,
        peer: IpAddr,
        now_unix: u64,
    ) -> Result<Admitted, Refusal> {
        let Some(key) = self.config.key.clone() else {
            if hello.options.auth_token().is_some() {
                info!("{client:?} from {peer}: connect token ignored: this server checks none");
            }
            return Ok(Admitted::default());
        };
        let refuse = |why: &str| {
            info!("{client:?} from {peer}: refused: {why}");
            Refusal {
                silent: false,
                reason: Reason::AUTH_FAILED,
                message: Text::from(why),
            }
        };
        let Some(bytes) = hello.options.auth_token() else {
            return if self.config.require {
                Err(refuse("a connect token is required"))
            } else {
                Ok(Admitted::default())
            };
        };
        // A token that carries keys and does not open (forged, malformed, sealed under another
        // key) is answered with silence over UDP (docs/PROTOCOL.md section 2.3): one who did not
        // get it from the issuer learns nothing from trying.
        let sealed = bytes.first() == Some(&framewire_protocol::auth::TOKEN_VERSION_SEALED);
        let unopened = |why: &str| Refusal {
            silent: sealed,
            ..refuse(why)
        };
        let (token, keys) =
            ConnectToken::verify_with_keys(&bytes, &key, now_unix).map_err(|e| match e {
                TokenError::Expired => refuse("connect token expired"),
                TokenError::Forged => unopened("connect token signature does not match"),
                _ => unopened("malformed connect token"),
            })?;
        // The signature verified: a sealed part that does not open was sealed under another key.
        let keys = keys.map_err(|_| unopened("connect token keys do not open"))?;
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&bytes[bytes.len() - MAC_LEN..]);
        match self.seen.get(&mac) {
            Some(&(first, _)) if first != peer => {
                return Err(refuse("connect token already in use from another address"));
            }
            Some(_) => {}
            None => {
                if self.seen.len() >= MAX_REMEMBERED_TOKENS {
                    self.seen.retain(|_, &mut (_, expires)| expires >= now_unix);
                }
                if self.seen.len() < MAX_REMEMBERED_TOKENS {
                    self.seen.insert(mac, (peer, token.expires));
                }
            }
        }
        info!(
            "{client:?} from {peer}: authenticated as {}",
            token.client_id
        );
        self.permissions.insert(client, Arc::new(token.permissions));
        Ok(Admitted {
            identity: Some(token.client_id),
            keys,
        })
    }

    /// Whether `client` may do `action`: sessions without a token may do anything (when tokens are
    /// not required), `sys.*` requests are always allowed.
    pub(crate) fn allows(&self, client: ClientId, action: Action<'_>) -> bool {
        let Some(p) = self.permissions.get(&client) else {
            return true;
        };
        match action {
            Action::Publish(topic) => topic_allowed(&p.publish, topic),
            Action::Subscribe(filter) => filter_allowed(&p.subscribe, filter),
            Action::Request(target) => {
                target.starts_with("sys.") || name_allowed(&p.request, target)
            }
            Action::Serve(name) => name_allowed(&p.serve, name),
            Action::Queue(name) => name_allowed(&p.queue, name),
        }
    }

    /// Takes a new key and policy (SIGHUP); sessions already admitted keep their permissions.
    pub(crate) fn reconfigure(&mut self, config: AuthConfig) {
        self.config = config;
    }

    /// Forgets a session's permissions (it ended).
    pub(crate) fn forget(&mut self, client: ClientId) {
        self.permissions.remove(&client);
    }
}
