//! A node's card: its name and the addresses it serves clients on, as lines of text
//! (docs/PROTOCOL.md section 4.12). A LAN discovery answer (a Here frame) carries one; a cluster
//! node's announcement (section 12.3) starts with one.
//!
//! The card is `name=<name>\n`, then for each kind of listener it has, in the order of
//! [`ADDRESS_KINDS`] and each at most once, `<kind>=<socket address>\n`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::net::SocketAddr;

/// The kinds of address a card names, in the order they are written.
pub const ADDRESS_KINDS: [&str; 5] = ["tcp", "udp", "tls", "http", "https"];

/// The longest node name in bytes.
pub const MAX_NODE_NAME_LEN: usize = 64;

/// Whether `name` may name a node: 1 to [`MAX_NODE_NAME_LEN`] bytes, none of them white space, a
/// control byte, `.`, `*`, `>` or `=` (it is a NATS subject token, and the value of a line).
pub fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NODE_NAME_LEN
        && !name
            .bytes()
            .any(|b| b <= b' ' || b == 0x7F || matches!(b, b'.' | b'*' | b'>' | b'='))
}

/// A node's name and the addresses it serves clients on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCard {
    /// The node's name ([`valid_node_name`]).
    pub name: String,
    /// Its addresses by kind (one of [`ADDRESS_KINDS`]), in that order, each kind once. An
    /// unspecified host (`0.0.0.0`, `::`) means "the address this card came from".
    pub addrs: Vec<(&'static str, SocketAddr)>,
}

impl NodeCard {
    /// The card's lines.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "name={}", self.name);
        for (kind, addr) in &self.addrs {
            let _ = writeln!(s, "{kind}={addr}");
        }
        s
    }

    /// The card cut to at most `max` bytes of lines: the name, then the addresses that fit, in
    /// order; and whether any were left out. `None` when the name line alone does not fit.
    pub fn fit(&self, max: usize) -> Option<(Self, bool)> {
        let mut len = "name=\n".len() + self.name.len();
        if len > max {
            return None;
        }
        let mut line = String::new();
        let mut kept = 0;
        for (kind, addr) in &self.addrs {
            line.clear();
            let _ = writeln!(line, "{kind}={addr}");
            if len + line.len() > max {
                break;
            }
            len += line.len();
            kept += 1;
        }
        let card = Self {
            name: self.name.clone(),
            addrs: self.addrs[..kept].to_vec(),
        };
        Some((card, kept < self.addrs.len()))
    }

    /// Reads a card: lines each ending in `\n`, the name first.
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let body = text.strip_suffix('\n').ok_or("not ended by a newline")?;
        let mut lines = body.split('\n');
        let name = lines
            .next()
            .and_then(|l| l.strip_prefix("name="))
            .filter(|n| valid_node_name(n))
            .ok_or("no valid name first")?;
        let mut addrs: Vec<(&'static str, SocketAddr)> = Vec::new();
        for line in lines {
            let (key, value) = line.split_once('=').ok_or("a line without =")?;
            let position = ADDRESS_KINDS
                .iter()
                .position(|k| *k == key)
                .ok_or("an unknown kind")?;
            if addrs
                .last()
                .is_some_and(|(k, _)| ADDRESS_KINDS.iter().position(|x| x == k) >= Some(position))
            {
                return Err("a kind twice or out of order");
            }
            let addr: SocketAddr = value.parse().map_err(|_| "not an address")?;
            // Written back the same way (no `[::ffff:1.2.3.4]` spellings that print otherwise).
            let mut again = String::new();
            let _ = write!(again, "{addr}");
            if again != value {
                return Err("an address not in its usual spelling");
            }
            addrs.push((ADDRESS_KINDS[position], addr));
        }
        Ok(Self {
            name: name.into(),
            addrs,
        })
    }

    /// Replaces each unspecified host (a node bound to `0.0.0.0` or `::`) with `from`'s, where
    /// the card came from.
    pub fn resolve(&mut self, from: SocketAddr) {
        for (_, addr) in &mut self.addrs {
            if addr.ip().is_unspecified() {
                addr.set_ip(from.ip());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn card() -> NodeCard {
        NodeCard {
            name: "edge-1".into(),
            addrs: alloc::vec![
                ("tcp", "127.0.0.1:7400".parse().unwrap()),
                ("udp", "0.0.0.0:7400".parse().unwrap()),
                ("http", "[::1]:7480".parse().unwrap()),
            ],
        }
    }

    #[test]
    fn a_card_reads_back() {
        let text = card().encode();
        assert_eq!(
            text,
            "name=edge-1\ntcp=127.0.0.1:7400\nudp=0.0.0.0:7400\nhttp=[::1]:7480\n"
        );
        assert_eq!(NodeCard::parse(&text), Ok(card()));
    }

    #[test]
    fn a_short_budget_keeps_the_first_lines_and_says_so() {
        let (cut, left_out) = card().fit(40).unwrap();
        assert_eq!(cut.encode(), "name=edge-1\ntcp=127.0.0.1:7400\n");
        assert!(left_out);
        assert_eq!(card().fit(11), None);
        let whole = card().encode().len();
        assert_eq!(card().fit(whole), Some((card(), false)));
        assert_eq!(
            card().fit(whole - 1).map(|(c, cut)| (c.addrs.len(), cut)),
            Some((2, true))
        );
    }

    #[test]
    fn an_unspecified_host_is_where_the_card_came_from() {
        let mut c = card();
        c.resolve("10.0.0.9:55000".parse().unwrap());
        assert_eq!(
            c.addrs,
            [
                ("tcp", "127.0.0.1:7400".parse().unwrap()),
                ("udp", "10.0.0.9:7400".parse().unwrap()),
                ("http", "[::1]:7480".parse().unwrap()),
            ]
        );
    }

    #[test]
    fn what_is_not_a_card_is_refused() {
        for bad in [
            "",
            "name=edge-1",
            "tcp=127.0.0.1:1\nname=a\n",
            "name=\n",
            "name=a.b\n",
            "name=a\ntcp=127.0.0.1:1\ntcp=127.0.0.1:2\n",
            "name=a\nudp=127.0.0.1:1\ntcp=127.0.0.1:2\n",
            "name=a\nftp=127.0.0.1:1\n",
            "name=a\ntcp=localhost:1\n",
            "name=a\ntcp=127.0.0.01:1\n",
            "name=a\ntcp\n",
            "name=a\n\n",
        ] {
            assert!(NodeCard::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn any_text_reads_or_fails_and_what_reads_writes_back(text in ".{0,80}") {
            if let Ok(c) = NodeCard::parse(&text) {
                prop_assert_eq!(c.encode(), text);
            }
        }

        #[test]
        fn a_cut_card_is_a_card(max in 0usize..120) {
            if let Some((cut, left_out)) = card().fit(max) {
                let text = cut.encode();
                prop_assert!(text.len() <= max);
                prop_assert_eq!(NodeCard::parse(&text), Ok(cut.clone()));
                prop_assert_eq!(cut.addrs.len() < card().addrs.len(), left_out);
                prop_assert_eq!(&card().addrs[..cut.addrs.len()], &cut.addrs[..]);
            } else {
                prop_assert!(max < "name=edge-1\n".len());
            }
        }
    }
}
