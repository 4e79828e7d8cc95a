//! The records of sessions (docs/PROTOCOL.md section 10.3): what a client resuming after a
//! restart gets back, its subscriptions and the reliable messages kept for it while it was away,
//! and a device's last will. Each is a `Request` frame (id 0) whose target names the change and
//! whose payload starts with the session's key (the one its session token carries):
//!
//! | target | payload after the key |
//! |---|---|
//! | `session.opened` | identity (u16 length + UTF-8, empty: none), then the last will as the Hello option's value (nothing: none) |
//! | `session.subscribed` | one or more filters, each u16 length + UTF-8 |
//! | `session.unsubscribed` | one or more filters |
//! | `session.parked` | when, in milliseconds since the UNIX epoch (u64); the will was published |
//! | `session.kept` | a reliable message kept for it: the last-will layout (flags 0, channel, topic, payload) |
//! | `session.ended` | nothing: the session is gone |

use bytes::{BufMut, Bytes, BytesMut};
use framewire_protocol::wire::{LastWill, Request, Text};

/// The targets, in the order of [`SessionRecord`]'s variants.
const OPENED: &str = "session.opened";
const SUBSCRIBED: &str = "session.subscribed";
const UNSUBSCRIBED: &str = "session.unsubscribed";
const PARKED: &str = "session.parked";
const KEPT: &str = "session.kept";
const ENDED: &str = "session.ended";

/// A message kept for a parked session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptMessage {
    /// The channel it was published on.
    pub channel: u8,
    /// Its topic.
    pub topic: Text,
    /// The message.
    pub payload: Bytes,
}

/// One change to a session that must outlive the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionRecord {
    /// A session began to matter: it has a will, or subscribed.
    Opened {
        /// Its key.
        key: u64,
        /// The connect token's identity, if it presented one.
        identity: Option<Text>,
        /// Its last will, published if it ends without a Close.
        will: Option<LastWill>,
    },
    /// It subscribed to these filters.
    Subscribed {
        /// Its key.
        key: u64,
        /// The filters.
        filters: Vec<Text>,
    },
    /// It unsubscribed from these filters.
    Unsubscribed {
        /// Its key.
        key: u64,
        /// The filters.
        filters: Vec<Text>,
    },
    /// It ended without a Close and waits to be resumed; its will was published.
    Parked {
        /// Its key.
        key: u64,
        /// When, in milliseconds since the UNIX epoch.
        at_ms: u64,
    },
    /// A reliable message was kept for it while parked.
    Kept {
        /// Its key.
        key: u64,
        /// The message.
        message: KeptMessage,
    },
    /// It is gone: closed, expired, resumed under a new key, or taken over.
    Ended {
        /// Its key.
        key: u64,
    },
}

/// A session record's payload that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

fn name_len(name: &Text) -> usize {
    2 + name.len()
}

fn put_name(out: &mut BytesMut, name: &Text) {
    // Names come from frames that parsed, so they fit a u16.
    out.put_u16(u16::try_from(name.len()).unwrap_or(u16::MAX));
    out.put_slice(name.as_bytes());
}

/// The bytes of a message in the last-will layout (`put_message`): flags, channel, topic,
/// payload.
fn message_len(topic: &Text, payload: &[u8]) -> usize {
    2 + name_len(topic) + payload.len()
}

fn put_message(out: &mut BytesMut, retain: bool, channel: u8, topic: &Text, payload: &[u8]) {
    out.put_u8(u8::from(retain));
    out.put_u8(channel);
    put_name(out, topic);
    out.put_slice(payload);
}

/// A cursor over a payload; every read checks the length first.
struct Cursor(Bytes);

impl Cursor {
    fn take(&mut self, n: usize) -> Result<Bytes, Malformed> {
        if self.0.len() < n {
            return Err(Malformed);
        }
        Ok(self.0.split_to(n))
    }

    fn u16(&mut self) -> Result<u16, Malformed> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u64(&mut self) -> Result<u64, Malformed> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        Ok(u64::from_be_bytes(a))
    }

    fn name(&mut self) -> Result<Text, Malformed> {
        let len = self.u16()?;
        Text::from_utf8(self.take(usize::from(len))?).map_err(|_| Malformed)
    }

    fn names(&mut self) -> Result<Vec<Text>, Malformed> {
        let mut out = Vec::new();
        while !self.0.is_empty() {
            out.push(self.name()?);
        }
        if out.is_empty() {
            return Err(Malformed);
        }
        Ok(out)
    }

    fn finish(&self) -> Result<(), Malformed> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Malformed)
        }
    }
}

impl SessionRecord {
    /// The session the record is about.
    pub fn key(&self) -> u64 {
        match self {
            Self::Opened { key, .. }
            | Self::Subscribed { key, .. }
            | Self::Unsubscribed { key, .. }
            | Self::Parked { key, .. }
            | Self::Kept { key, .. }
            | Self::Ended { key } => *key,
        }
    }

    fn target(&self) -> &'static str {
        match self {
            Self::Opened { .. } => OPENED,
            Self::Subscribed { .. } => SUBSCRIBED,
            Self::Unsubscribed { .. } => UNSUBSCRIBED,
            Self::Parked { .. } => PARKED,
            Self::Kept { .. } => KEPT,
            Self::Ended { .. } => ENDED,
        }
    }

    fn payload_len(&self) -> usize {
        8 + match self {
            Self::Opened { identity, will, .. } => {
                identity.as_ref().map_or(2, name_len)
                    + will
                        .as_ref()
                        .map_or(0, |w| message_len(&w.topic, &w.payload))
            }
            Self::Subscribed { filters, .. } | Self::Unsubscribed { filters, .. } => {
                filters.iter().map(name_len).sum()
            }
            Self::Parked { .. } => 8,
            Self::Kept { message: m, .. } => message_len(&m.topic, &m.payload),
            Self::Ended { .. } => 0,
        }
    }

    /// The bytes of the `Request` frame's body: id, timeout, target, payload.
    pub(crate) fn body_len(&self) -> usize {
        4 + 4 + 2 + self.target().len() + self.payload_len()
    }

    /// The record as the `Request` frame that is written.
    pub fn to_request(&self) -> Request {
        let mut out = BytesMut::with_capacity(self.payload_len());
        out.put_u64(self.key());
        match self {
            Self::Opened { identity, will, .. } => {
                put_name(&mut out, identity.as_ref().unwrap_or(&Text::from("")));
                if let Some(w) = will {
                    put_message(&mut out, w.retain, w.channel, &w.topic, &w.payload);
                }
            }
            Self::Subscribed { filters, .. } | Self::Unsubscribed { filters, .. } => {
                for f in filters {
                    put_name(&mut out, f);
                }
            }
            Self::Parked { at_ms, .. } => out.put_u64(*at_ms),
            Self::Kept { message: m, .. } => {
                put_message(&mut out, false, m.channel, &m.topic, &m.payload);
            }
            Self::Ended { .. } => {}
        }
        Request {
            id: 0,
            timeout_ms: 0,
            target: Text::from(self.target()),
            payload: out.freeze(),
        }
    }

    /// The record a `Request` read from the log stands for: `None` if its target is not a
    /// session record's.
    ///
    /// # Errors
    /// [`Malformed`] for a session record whose payload does not parse.
    pub fn from_request(r: &Request) -> Option<Result<Self, Malformed>> {
        let target = r.target.as_str();
        if r.id != 0 || ![OPENED, SUBSCRIBED, UNSUBSCRIBED, PARKED, KEPT, ENDED].contains(&target) {
            return None;
        }
        Some(Self::parse(target, r.payload.clone()))
    }

    fn parse(target: &str, payload: Bytes) -> Result<Self, Malformed> {
        let mut c = Cursor(payload);
        let key = c.u64()?;
        let record = match target {
            OPENED => {
                let identity = Some(c.name()?).filter(|i| !i.is_empty());
                let rest = std::mem::take(&mut c.0);
                let will = if rest.is_empty() {
                    None
                } else {
                    Some(LastWill::parse(rest).map_err(|_| Malformed)?)
                };
                Self::Opened {
                    key,
                    identity,
                    will,
                }
            }
            SUBSCRIBED => Self::Subscribed {
                key,
                filters: c.names()?,
            },
            UNSUBSCRIBED => Self::Unsubscribed {
                key,
                filters: c.names()?,
            },
            PARKED => Self::Parked {
                key,
                at_ms: c.u64()?,
            },
            KEPT => {
                let m = LastWill::parse(std::mem::take(&mut c.0)).map_err(|_| Malformed)?;
                if m.retain {
                    return Err(Malformed);
                }
                Self::Kept {
                    key,
                    message: KeptMessage {
                        channel: m.channel,
                        topic: m.topic,
                        payload: m.payload,
                    },
                }
            }
            _ => Self::Ended { key },
        };
        c.finish()?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<SessionRecord> {
        vec![
            SessionRecord::Opened {
                key: 0x0102_0304_0506_0708,
                identity: Some(Text::from("dev-7")),
                will: Some(LastWill {
                    retain: true,
                    channel: 1,
                    topic: Text::from("dev/7/online"),
                    payload: Bytes::from_static(b"no"),
                }),
            },
            SessionRecord::Opened {
                key: 2,
                identity: None,
                will: None,
            },
            SessionRecord::Subscribed {
                key: 2,
                filters: vec![Text::from("a/+"), Text::from("b/#")],
            },
            SessionRecord::Unsubscribed {
                key: 2,
                filters: vec![Text::from("a/+")],
            },
            SessionRecord::Parked {
                key: 2,
                at_ms: 1_796_000_000_000,
            },
            SessionRecord::Kept {
                key: 2,
                message: KeptMessage {
                    channel: 0,
                    topic: Text::from("b/c"),
                    payload: Bytes::from_static(b"hi"),
                },
            },
            SessionRecord::Ended { key: 2 },
        ]
    }

    #[test]
    fn every_session_record_reads_back_and_counts_its_length() {
        for r in samples() {
            let req = r.to_request();
            assert_eq!(
                4 + 4 + 2 + req.target.len() + req.payload.len(),
                r.body_len(),
                "{r:?}"
            );
            assert_eq!(SessionRecord::from_request(&req), Some(Ok(r)));
        }
    }

    #[test]
    fn the_spec_gives_an_ended_record() {
        let spec = include_str!("../../../docs/PROTOCOL.md");
        let mut out = BytesMut::new();
        super::super::Record::Session(SessionRecord::Ended {
            key: 0x1122_3344_5566_7788,
        })
        .encode_into(&mut out)
        .expect("encodes");
        let hex = crate::web::form::to_hex(&out);
        assert!(
            spec.contains(&format!("`{hex}`")),
            "section 10.3 lacks {hex}"
        );
    }

    #[test]
    fn a_cut_or_padded_payload_is_malformed_and_other_requests_are_not_records() {
        for r in samples() {
            let req = r.to_request();
            for cut in 0..req.payload.len() {
                let mut short = req.clone();
                short.payload = req.payload.slice(..cut);
                let parsed = SessionRecord::from_request(&short);
                // Cutting a list of filters at a name's end, or a will away, leaves a record
                // that parses; anything else must be refused.
                if let Some(Ok(other)) = &parsed {
                    assert_ne!(other, &r, "cut at {cut}");
                }
            }
            if !matches!(
                r,
                SessionRecord::Opened { .. }
                    | SessionRecord::Subscribed { .. }
                    | SessionRecord::Unsubscribed { .. }
                    | SessionRecord::Kept { .. }
            ) {
                let mut long = req.clone();
                let mut p = req.payload.to_vec();
                p.push(0);
                long.payload = Bytes::from(p);
                assert_eq!(SessionRecord::from_request(&long), Some(Err(Malformed)));
            }
        }
        let service = Request {
            id: 0,
            timeout_ms: 0,
            target: Text::from("svc.echo"),
            payload: Bytes::new(),
        };
        assert_eq!(SessionRecord::from_request(&service), None);
        let mut with_id = SessionRecord::Ended { key: 1 }.to_request();
        with_id.id = 3;
        assert_eq!(SessionRecord::from_request(&with_id), None);
    }
}
