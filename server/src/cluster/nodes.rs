//! The cluster's nodes, for `sys.nodes` (docs/PROTOCOL.md section 12.3): each node announces its
//! name and the addresses it serves clients on, under `fw.n.<name>`, when it connects to NATS and
//! every [`ANNOUNCE_EVERY`]; a node not heard from for [`FORGET_AFTER`] is forgotten.
//!
//! An announcement is the version byte `1`, then the node's card (its `name` and addresses, lines
//! ending in `\n`: [`NodeCard`], as LAN discovery's answers carry it), then a `service` line for each service registered on the node: how many of its sessions serve it, a
//! space, and the name escaped as a subject token. At most [`MAX_ANNOUNCEMENT`] bytes; services
//! that do not fit are left out (and counted in `services_omitted`).

use std::collections::HashMap;
use std::fmt::Write;
use std::time::{Duration, Instant};

use framewire_protocol::wire::NodeCard;

use super::subject::{name_of_token, token_of_name};

/// How often a node announces itself.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(5);
/// How long a node unheard is still listed.
pub const FORGET_AFTER: Duration = Duration::from_secs(15);
/// The longest announcement written or read.
pub const MAX_ANNOUNCEMENT: usize = 16 * 1024;
/// Nodes listed at most; announcements from more are ignored until some are forgotten.
pub const MAX_NODES: usize = 1024;
/// The subject prefix of announcements.
pub const NODE_PREFIX: &str = "fw.n";

/// One node: its card (name and the addresses it serves clients on) and its services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its `node_name` and addresses.
    pub card: NodeCard,
    /// The services registered on it, each with how many of its sessions serve it (at least 1).
    pub services: Vec<(String, u32)>,
}

impl NodeInfo {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.card.name
    }

    /// The subject it is announced under.
    pub fn subject(&self) -> String {
        format!("{NODE_PREFIX}.{}", self.name())
    }

    /// The announcement's bytes, and how many services did not fit in [`MAX_ANNOUNCEMENT`].
    pub fn encode(&self) -> (Vec<u8>, usize) {
        let mut s = String::from("\u{1}");
        s.push_str(&self.card.encode());
        let mut omitted = 0;
        for (name, count) in &self.services {
            let line = format!("service={count} {}\n", token_of_name(name));
            if s.len() + line.len() > MAX_ANNOUNCEMENT {
                omitted += 1;
            } else {
                s.push_str(&line);
            }
        }
        (s.into_bytes(), omitted)
    }

    /// Reads an announcement: a node card, then the service lines.
    ///
    /// # Errors
    /// What is wrong with it; it is ignored and counted as malformed.
    pub fn parse(bytes: &[u8]) -> Result<Self, &'static str> {
        if bytes.len() > MAX_ANNOUNCEMENT {
            return Err("too long");
        }
        let rest = bytes.strip_prefix(b"\x01").ok_or("another version")?;
        let text = std::str::from_utf8(rest).map_err(|_| "not UTF-8")?;
        let split = text
            .match_indices("\nservice=")
            .next()
            .map_or(text.len(), |(at, _)| at + 1);
        let (card, services_text) = text.split_at(split);
        let card = NodeCard::parse(card)?;
        let mut services: Vec<(String, u32)> = Vec::new();
        for line in services_text.split_terminator('\n') {
            let value = line
                .strip_prefix("service=")
                .ok_or("an address after the services")?;
            let (count, token) = value.split_once(' ').ok_or("a service without a count")?;
            let count: u32 = count
                .parse()
                .ok()
                .filter(|&c| c > 0 && !count.starts_with(['+', '0']))
                .ok_or("a service count that is not a positive number")?;
            let name = name_of_token(token).ok_or("a badly escaped service")?;
            if services.iter().any(|(n, _)| *n == name) {
                return Err("a service twice");
            }
            services.push((name, count));
        }
        if !services_text.is_empty() && !services_text.ends_with('\n') {
            return Err("not ended by a newline");
        }
        Ok(Self { card, services })
    }
}

/// The nodes heard from, and this one.
#[derive(Debug, Default)]
pub struct NodeTable {
    me: Option<NodeInfo>,
    others: HashMap<String, (NodeInfo, Instant)>,
}

impl NodeTable {
    pub(crate) fn set_me(&mut self, me: NodeInfo) {
        self.me = Some(me);
    }

    /// Another node announced itself at `now`; whether it is new to the table.
    pub(crate) fn heard(&mut self, node: NodeInfo, now: Instant) -> bool {
        if self.me.as_ref().is_some_and(|m| m.name() == node.name()) {
            return false;
        }
        if self.others.len() >= MAX_NODES && !self.others.contains_key(node.name()) {
            return false;
        }
        self.others
            .insert(node.name().to_string(), (node, now))
            .is_none()
    }

    /// Forgets the nodes not heard from since `now - FORGET_AFTER`.
    pub(crate) fn forget_old(&mut self, now: Instant) {
        self.others
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < FORGET_AFTER);
    }

    /// `sys.nodes`' answer: this node first, then the others by name.
    pub fn to_json(&self) -> String {
        let mut others: Vec<&NodeInfo> = self.others.values().map(|(n, _)| n).collect();
        others.sort_by(|a, b| a.name().cmp(b.name()));
        let mut s = String::from("{\"nodes\":[");
        for (i, (node, me)) in self
            .me
            .iter()
            .map(|m| (m, true))
            .chain(others.into_iter().map(|n| (n, false)))
            .enumerate()
        {
            if i > 0 {
                s.push(',');
            }
            // Names and addresses hold nothing JSON must escape (valid_node_name, SocketAddr).
            let _ = write!(s, "{{\"name\":\"{}\",\"self\":{me}", node.name());
            for (kind, addr) in &node.card.addrs {
                let _ = write!(s, ",\"{kind}\":\"{addr}\"");
            }
            s.push('}');
        }
        s.push_str("]}");
        s
    }
}

impl NodeTable {
    /// `sys.services`' answer: every service registered on this node (`here`, how many of its
    /// sessions serve it) or announced by another, by name, with the responders across the
    /// cluster and the nodes they are on (this node first).
    pub fn services_json(&self, here: &[(String, usize)]) -> String {
        let mut all: std::collections::BTreeMap<&str, (usize, usize, Vec<&str>)> =
            std::collections::BTreeMap::new();
        let me = self.me.as_ref().map(NodeInfo::name);
        for (name, count) in here {
            let entry = all.entry(name.as_str()).or_default();
            entry.0 += count;
            entry.1 += count;
            entry.2.extend(me);
        }
        let mut others: Vec<&NodeInfo> = self.others.values().map(|(n, _)| n).collect();
        others.sort_by(|a, b| a.name().cmp(b.name()));
        for node in others {
            for (name, count) in &node.services {
                let entry = all.entry(name.as_str()).or_default();
                entry.0 += *count as usize;
                entry.2.push(node.name());
            }
        }
        let mut s = String::from("{\"services\":[");
        for (i, (name, (responders, local, nodes))) in all.into_iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str("{\"name\":");
            crate::hub::stats::json_string(&mut s, name);
            let _ = write!(
                s,
                ",\"responders\":{responders},\"here\":{local},\"nodes\":["
            );
            for (j, node) in nodes.iter().enumerate() {
                // Node names hold nothing JSON must escape (valid_node_name).
                let _ = write!(s, "{}\"{node}\"", if j > 0 { "," } else { "" });
            }
            s.push_str("]}");
        }
        s.push_str("]}");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(name: &str, tcp: &str) -> NodeInfo {
        NodeInfo {
            card: NodeCard {
                name: name.into(),
                addrs: vec![("tcp", tcp.parse().unwrap())],
            },
            services: Vec::new(),
        }
    }

    #[test]
    fn announcements_read_back_and_bad_ones_are_refused() {
        let a = NodeInfo {
            card: NodeCard {
                name: "edge-1".into(),
                addrs: vec![
                    ("tcp", "127.0.0.1:7400".parse().unwrap()),
                    ("http", "[::1]:7480".parse().unwrap()),
                ],
            },
            services: Vec::new(),
        };
        // docs/PROTOCOL.md section 12.3's example.
        assert_eq!(
            a.encode(),
            (
                b"\x01name=edge-1\ntcp=127.0.0.1:7400\nhttp=[::1]:7480\n".to_vec(),
                0
            )
        );
        assert_eq!(NodeInfo::parse(&a.encode().0), Ok(a));
        for bad in [
            &b"\x02name=a\n"[..],
            b"\x01name=a",
            b"\x01tcp=127.0.0.1:1\n",
            b"\x01name=a b\n",
            b"\x01name=a\nftp=127.0.0.1:1\n",
            b"\x01name=a\ntcp=127.0.0.1:1\ntcp=127.0.0.1:2\n",
            b"\x01name=a\ntcp=nowhere\n",
            b"\x01name=a\n\n",
            b"\x01name=a\nservice=0 echo\n",
            b"\x01name=a\nservice=01 echo\n",
            b"\x01name=a\nservice=+1 echo\n",
            b"\x01name=a\nservice=1\n",
            b"\x01name=a\nservice=1 a.b\n",
            b"\x01name=a\nservice=1 %2\n",
            b"\x01name=a\nservice=1 x\nservice=2 x\n",
            b"\x01name=a\nservice=1 x\ntcp=127.0.0.1:1\n",
            b"\x01name=a\nservice=1 x",
            b"\x01name=a\nhttp=127.0.0.1:1\ntcp=127.0.0.1:2\n",
        ] {
            assert!(NodeInfo::parse(bad).is_err(), "{bad:?}");
        }
        assert!(NodeInfo::parse(&vec![1; MAX_ANNOUNCEMENT + 1]).is_err());
    }

    #[test]
    fn the_table_lists_this_node_first_and_forgets_the_silent() {
        let t0 = Instant::now();
        let mut t = NodeTable::default();
        t.set_me(node("b", "127.0.0.1:7410"));
        assert!(t.heard(node("c", "127.0.0.1:7420"), t0));
        assert!(t.heard(node("a", "127.0.0.1:7400"), t0));
        assert!(
            !t.heard(node("a", "127.0.0.1:7400"), t0 + Duration::from_secs(10)),
            "known"
        );
        assert!(
            !t.heard(node("b", "127.0.0.9:1"), t0),
            "this node's own name"
        );
        assert_eq!(
            t.to_json(),
            "{\"nodes\":[{\"name\":\"b\",\"self\":true,\"tcp\":\"127.0.0.1:7410\"},\
             {\"name\":\"a\",\"self\":false,\"tcp\":\"127.0.0.1:7400\"},\
             {\"name\":\"c\",\"self\":false,\"tcp\":\"127.0.0.1:7420\"}]}"
        );
        t.forget_old(t0 + FORGET_AFTER);
        assert!(!t.to_json().contains("\"c\""), "c was silent too long");
        assert!(t.to_json().contains("\"a\""));
    }

    #[test]
    fn services_travel_escaped_and_what_does_not_fit_is_left_out() {
        let mut a = node("edge-1", "127.0.0.1:7400");
        a.services = vec![("echo".into(), 2), ("math.add me".into(), 1)];
        let (bytes, omitted) = a.encode();
        // docs/PROTOCOL.md section 12.3's example.
        assert_eq!(
            bytes,
            b"\x01name=edge-1\ntcp=127.0.0.1:7400\nservice=2 echo\nservice=1 math%2Eadd%20me\n"
        );
        assert_eq!(omitted, 0);
        assert_eq!(NodeInfo::parse(&bytes), Ok(a.clone()));
        a.services = (0..2000).map(|i| (format!("service-{i}"), 1)).collect();
        let (bytes, omitted) = a.encode();
        assert!(bytes.len() <= MAX_ANNOUNCEMENT);
        assert!(omitted > 0);
        let read = NodeInfo::parse(&bytes).unwrap();
        assert_eq!(read.services.len() + omitted, 2000);
    }

    #[test]
    fn sys_services_adds_up_this_node_and_the_others() {
        let t0 = Instant::now();
        let mut t = NodeTable::default();
        assert_eq!(
            t.services_json(&[("echo".into(), 1)]),
            "{\"services\":[{\"name\":\"echo\",\"responders\":1,\"here\":1,\"nodes\":[]}]}",
            "a node alone"
        );
        t.set_me(node("b", "127.0.0.1:7410"));
        let mut a = node("a", "127.0.0.1:7400");
        a.services = vec![("echo".into(), 2), ("say \"hi\"".into(), 1)];
        t.heard(a, t0);
        assert_eq!(
            t.services_json(&[("echo".into(), 1)]),
            "{\"services\":[\
             {\"name\":\"echo\",\"responders\":3,\"here\":1,\"nodes\":[\"b\",\"a\"]},\
             {\"name\":\"say \\\"hi\\\"\",\"responders\":1,\"here\":0,\"nodes\":[\"a\"]}]}"
        );
        t.forget_old(t0 + FORGET_AFTER);
        assert_eq!(
            t.services_json(&[]),
            "{\"services\":[]}",
            "a forgotten node's services go with it"
        );
    }

    proptest! {
        #[test]
        fn any_bytes_read_or_fail_and_what_reads_encodes_back(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            if let Ok(n) = NodeInfo::parse(&bytes) {
                prop_assert_eq!(NodeInfo::parse(&n.encode().0), Ok(n));
            }
        }
    }
}
