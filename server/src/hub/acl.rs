//! What a session whose identity comes from a client certificate may do (setting `acl`,
//! docs/PROTOCOL.md section 5.8), as a connect token's permissions say for a session that shows
//! one:
//!
//! ```text
//! acl = "sensor-12 publish=dev/12/# subscribe=cmd/12/# request=time.now queue=jobs.12"
//! acl = "dashboard subscribe=dev/#"
//! ```
//!
//! An identity with no rule may do nothing but `sys.*` requests once any rule exists; with no
//! rule at all, certificates identify sessions without limiting them (as sessions without a token
//! are unlimited on a server that does not require tokens).

use std::str::FromStr;

use framewire_protocol::auth::Permissions;
use framewire_protocol::wire::Text;

/// The permissions of one certificate identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRule {
    /// The certificate subject's common name the rule is for.
    pub identity: String,
    /// What it may do.
    pub permissions: Permissions,
}

impl FromStr for AclRule {
    type Err = String;

    /// `IDENTITY key=PATTERN[,PATTERN...] ...` with keys `publish`, `subscribe` (topic filters),
    /// `request`, `serve` and `queue` (names, a trailing `*` for a prefix); a key given twice adds.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.split_whitespace();
        let identity = words
            .next()
            .filter(|w| !w.contains('='))
            .ok_or_else(|| format!("{s:?}: an acl rule starts with the identity it is for"))?;
        let mut permissions = Permissions::default();
        for word in words {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| format!("{word:?} is not key=pattern,pattern"))?;
            let list = match key {
                "publish" => &mut permissions.publish,
                "subscribe" => &mut permissions.subscribe,
                "request" => &mut permissions.request,
                "serve" => &mut permissions.serve,
                "queue" => &mut permissions.queue,
                _ => {
                    return Err(format!(
                        "{key:?}: an acl rule sets publish, subscribe, request, serve or queue"
                    ));
                }
            };
            for pattern in value.split(',').filter(|p| !p.is_empty()) {
                list.push(Text::from(pattern));
            }
        }
        Ok(Self {
            identity: identity.to_string(),
            permissions,
        })
    }
}

/// The permissions `rules` give `identity`: `None` when there are no rules (unlimited).
pub(crate) fn permissions_for(rules: &[AclRule], identity: &str) -> Option<Permissions> {
    if rules.is_empty() {
        return None;
    }
    Some(
        rules
            .iter()
            .find(|r| r.identity == identity)
            .map(|r| r.permissions.clone())
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_reads_every_key_and_adds_repeated_ones() {
        let rule: AclRule = "sensor-12 publish=dev/12/#,alerts/12 subscribe=cmd/12/# publish=x \
                             request=time.* serve=s queue=jobs"
            .parse()
            .unwrap();
        assert_eq!(rule.identity, "sensor-12");
        let p = &rule.permissions;
        let names = |v: &[Text]| v.iter().map(Text::as_str).collect::<Vec<_>>().join(" ");
        assert_eq!(names(&p.publish), "dev/12/# alerts/12 x");
        assert_eq!(names(&p.subscribe), "cmd/12/#");
        assert_eq!(names(&p.request), "time.*");
        assert_eq!(names(&p.serve), "s");
        assert_eq!(names(&p.queue), "jobs");
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        assert!("".parse::<AclRule>().unwrap_err().contains("identity"));
        assert!(
            "publish=a"
                .parse::<AclRule>()
                .unwrap_err()
                .contains("identity")
        );
        assert!(
            "a deliver=x"
                .parse::<AclRule>()
                .unwrap_err()
                .contains("publish")
        );
        assert!(
            "a publish"
                .parse::<AclRule>()
                .unwrap_err()
                .contains("key=pattern")
        );
    }

    #[test]
    fn an_identity_without_a_rule_gets_nothing_once_any_rule_exists() {
        assert_eq!(permissions_for(&[], "a"), None);
        let rules = vec!["a publish=x".parse::<AclRule>().unwrap()];
        assert_eq!(permissions_for(&rules, "b"), Some(Permissions::default()));
        assert_eq!(
            permissions_for(&rules, "a").unwrap().publish[0].as_str(),
            "x"
        );
    }
}
