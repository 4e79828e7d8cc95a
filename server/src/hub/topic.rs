//! Topic names and filters (docs/PROTOCOL.md section 5.1, after MQTT 3.1.1 section 4.7), and the
//! tree of subscriptions that finds every subscriber of a topic in one walk of its levels.
//!
//! Levels are separated by `/`. In a filter, `+` stands for exactly one level and `#`, which may
//! only be the last level, for any number of levels, none included (`a/#` matches `a`). A topic
//! that starts with `$` is not matched by a filter that starts with a wildcard (MQTT 4.7.2).

use std::collections::HashMap;
use std::hash::Hash;

/// The syntax of topics and filters: the protocol's rules, which the client checks too.
pub use framewire_protocol::topic::{TopicError, check_filter, check_topic};

/// Whether `filter` (already checked) matches `topic` (already checked): the protocol's rule.
pub use framewire_protocol::topic::matches;

/// Subscribers by filter, as a tree of levels.
#[derive(Debug)]
pub struct SubscriptionTree<S> {
    root: Node<S>,
}

#[derive(Debug)]
struct Node<S> {
    children: HashMap<Box<str>, Node<S>>,
    plus: Option<Box<Node<S>>>,
    /// Subscribers whose filter ends at this level.
    exact: Vec<S>,
    /// Subscribers whose filter ends with `#` after this level.
    rest: Vec<S>,
}

impl<S> Default for Node<S> {
    fn default() -> Self {
        Self {
            children: HashMap::new(),
            plus: None,
            exact: Vec::new(),
            rest: Vec::new(),
        }
    }
}

impl<S> Node<S> {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.exact.is_empty()
            && self.rest.is_empty()
    }
}

impl<S> Default for SubscriptionTree<S> {
    fn default() -> Self {
        Self {
            root: Node::default(),
        }
    }
}

impl<S: Copy + Eq + Hash + Ord> SubscriptionTree<S> {
    /// Adds `subscriber` under `filter` (checked); adding the same pair twice keeps one.
    pub fn insert(&mut self, filter: &str, subscriber: S) {
        let mut node = &mut self.root;
        let mut levels = filter.split('/').peekable();
        while let Some(level) = levels.next() {
            if level == "#" {
                if !node.rest.contains(&subscriber) {
                    node.rest.push(subscriber);
                }
                return;
            }
            node = if level == "+" {
                node.plus.get_or_insert_with(Box::default)
            } else {
                node.children.entry(level.into()).or_default()
            };
            if levels.peek().is_none() && !node.exact.contains(&subscriber) {
                node.exact.push(subscriber);
            }
        }
    }

    /// Removes `subscriber` from `filter`; returns whether it was there. Levels left with no
    /// subscriber are pruned, so the tree never outgrows the live subscriptions.
    pub fn remove(&mut self, filter: &str, subscriber: S) -> bool {
        let levels: Vec<&str> = filter.split('/').collect();
        remove_in(&mut self.root, &levels, subscriber)
    }

    /// Whether anyone holds `filter` (checked) itself.
    pub fn is_held(&self, filter: &str) -> bool {
        let mut node = &self.root;
        let mut levels = filter.split('/').peekable();
        while let Some(level) = levels.next() {
            if level == "#" {
                return !node.rest.is_empty();
            }
            let next = if level == "+" {
                node.plus.as_deref()
            } else {
                node.children.get(level)
            };
            let Some(next) = next else {
                return false;
            };
            node = next;
            if levels.peek().is_none() {
                return !node.exact.is_empty();
            }
        }
        false
    }

    /// Calls `visit` with each list of subscribers whose filter matches `topic`. One subscriber
    /// may be in several lists when several of its filters match.
    pub fn for_each_match<'a>(&'a self, topic: &str, mut visit: impl FnMut(&'a [S])) {
        let levels: Vec<&str> = topic.split('/').collect();
        let dollar = topic.starts_with('$');
        walk(&self.root, &levels, dollar, &mut visit);
    }

    /// Every subscriber whose filter matches `topic`, once each.
    pub fn subscribers(&self, topic: &str) -> Vec<S> {
        let mut lists: Vec<&[S]> = Vec::new();
        self.for_each_match(topic, |l| {
            if !l.is_empty() {
                lists.push(l);
            }
        });
        match lists.as_slice() {
            [] => Vec::new(),
            [one] => one.to_vec(),
            _ => {
                let mut all: Vec<S> = lists.concat();
                all.sort_unstable();
                all.dedup();
                all
            }
        }
    }
}

fn walk<'a, S>(node: &'a Node<S>, levels: &[&str], dollar: bool, visit: &mut impl FnMut(&'a [S])) {
    // `a/#` matches `a` itself and everything below it; never a `$` topic from the root.
    if !dollar {
        visit(&node.rest);
    }
    let Some((level, rest)) = levels.split_first() else {
        visit(&node.exact);
        return;
    };
    if let Some(child) = node.children.get(*level) {
        walk(child, rest, false, visit);
    }
    if !dollar && let Some(plus) = &node.plus {
        walk(plus, rest, false, visit);
    }
}

fn remove_in<S: Eq>(node: &mut Node<S>, levels: &[&str], subscriber: S) -> bool {
    let Some((level, rest)) = levels.split_first() else {
        return take(&mut node.exact, &subscriber);
    };
    if *level == "#" {
        return take(&mut node.rest, &subscriber);
    }
    if *level == "+" {
        let Some(plus) = node.plus.as_mut() else {
            return false;
        };
        let removed = remove_in(plus, rest, subscriber);
        if plus.is_empty() {
            node.plus = None;
        }
        return removed;
    }
    let Some(child) = node.children.get_mut(*level) else {
        return false;
    };
    let removed = remove_in(child, rest, subscriber);
    if child.is_empty() {
        node.children.remove(*level);
    }
    removed
}

fn take<S: Eq>(list: &mut Vec<S>, subscriber: &S) -> bool {
    let removed = super::remove_one(list, subscriber);
    if list.is_empty() {
        // An empty node's list gives its storage back.
        *list = Vec::new();
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (filter, topic, matches): MQTT 3.1.1 section 4.7's examples and the edge cases around them.
    const TABLE: &[(&str, &str, bool)] = &[
        ("sport/tennis/player1/#", "sport/tennis/player1", true),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking",
            true,
        ),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon",
            true,
        ),
        ("sport/tennis/player1/#", "sport/tennis/player2", false),
        ("sport/#", "sport", true),
        ("#", "sport/tennis", true),
        ("#", "a", true),
        ("#", "/", true),
        ("sport/tennis/+", "sport/tennis/player1", true),
        ("sport/tennis/+", "sport/tennis/player2", true),
        ("sport/tennis/+", "sport/tennis/player1/ranking", false),
        ("sport/tennis/+", "sport/tennis", false),
        ("sport/+", "sport", false),
        ("sport/+", "sport/", true),
        ("+", "sport", true),
        ("+", "/finance", false),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+/tennis/#", "sport/tennis/player1", true),
        ("+/tennis/#", "sport/football", false),
        ("a/b", "a/b", true),
        ("a/b", "a/b/c", false),
        ("a/b", "a", false),
        ("a/+/c", "a/x/c", true),
        ("a/+/c", "a/x/y/c", false),
        ("a//b", "a//b", true),
        ("a/+/b", "a//b", true),
        ("#", "$SYS/uptime", false),
        ("+/uptime", "$SYS/uptime", false),
        ("$SYS/#", "$SYS/uptime", true),
        ("$SYS/+", "$SYS/uptime", true),
        ("Sport", "sport", false),
    ];

    #[test]
    fn wildcard_table_by_string_and_by_tree() {
        for &(filter, topic, expected) in TABLE {
            check_filter(filter).unwrap();
            check_topic(topic).unwrap();
            assert_eq!(matches(filter, topic), expected, "{filter} vs {topic}");
            let mut tree = SubscriptionTree::default();
            tree.insert(filter, 7u32);
            let found = tree.subscribers(topic);
            assert_eq!(found == [7], expected, "tree: {filter} vs {topic}");
        }
    }

    #[test]
    fn bad_filters_and_topics() {
        for bad in ["", "a/#/b", "a#", "sport+", "+a/b", "a/b#", "##"] {
            assert!(check_filter(bad).is_err(), "{bad}");
        }
        assert_eq!(check_topic("a/+"), Err(TopicError::WildcardInTopic));
        assert_eq!(check_topic("#"), Err(TopicError::WildcardInTopic));
        assert_eq!(check_topic(""), Err(TopicError::Empty));
    }

    #[test]
    fn tree_dedups_overlapping_filters_and_prunes() {
        let mut tree = SubscriptionTree::default();
        tree.insert("a/+", 1u32);
        tree.insert("a/#", 1);
        tree.insert("a/b", 2);
        tree.insert("a/b", 2);
        assert_eq!(tree.subscribers("a/b"), vec![1, 2]);
        assert!(tree.remove("a/+", 1));
        assert!(!tree.remove("a/+", 1));
        assert!(tree.remove("a/#", 1));
        assert!(tree.remove("a/b", 2));
        assert!(tree.root.is_empty(), "{:?}", tree.root);
    }

    #[test]
    fn tree_agrees_with_the_string_matcher() {
        let filters = [
            "#", "+", "a/#", "a/+", "+/b", "a/b", "+/+/c", "a/+/#", "$x/#",
        ];
        let topics = ["a", "a/b", "a/b/c", "b", "x/b", "a/x/c", "$x/y", "$x"];
        let mut tree = SubscriptionTree::default();
        for (i, f) in filters.iter().enumerate() {
            tree.insert(f, i);
        }
        for t in topics {
            let expected: Vec<usize> = (0..filters.len())
                .filter(|&i| matches(filters[i], t))
                .collect();
            let mut found = tree.subscribers(t);
            found.sort_unstable();
            assert_eq!(found, expected, "{t}");
        }
    }
}
