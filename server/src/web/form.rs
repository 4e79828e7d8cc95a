//! The parts of a request target the HTTP mapping reads (docs/PROTOCOL.md section 11.4):
//! percent-decoded path segments and `name=value` query pairs (RFC 3986 section 2.1, with `+` as
//! a space in a query as HTML forms send it). Bounded by the head's own bound (8 KiB) and a count
//! of pairs; a bad escape or bytes that are not UTF-8 are an error, never a replacement.

/// The most `name=value` pairs a query may carry.
pub const MAX_QUERY_PAIRS: usize = 64;

/// What was wrong with a target, for a `400`.
pub type FormError = &'static str;

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`).
///
/// # Errors
/// A `%` not followed by two hex digits, or bytes that are not UTF-8 once decoded.
pub fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, FormError> {
    if !s.bytes().any(|b| b == b'%' || (plus_is_space && b == b'+')) {
        return Ok(s.to_string());
    }
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = bytes.next().and_then(hex_digit);
                let lo = bytes.next().and_then(hex_digit);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err("a % escape that is not two hex digits");
                };
                out.push(hi << 4 | lo);
            }
            b'+' if plus_is_space => out.push(b' '),
            _ => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| "an escaped name that is not UTF-8")
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// A request's query, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Decodes a query (the part of the target after `?`). A pair without `=` has an empty value.
    ///
    /// # Errors
    /// A bad escape, or more than [`MAX_QUERY_PAIRS`] pairs.
    pub fn parse(query: &str) -> Result<Self, FormError> {
        let mut pairs = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            if pairs.len() == MAX_QUERY_PAIRS {
                return Err("more than 64 query parameters");
            }
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            pairs.push((percent_decode(name, true)?, percent_decode(value, true)?));
        }
        Ok(Self { pairs })
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name` as a number no larger than `max`; `default` when it is absent.
    ///
    /// # Errors
    /// A value that is not a decimal number, or above `max`.
    pub fn number(&self, name: &str, default: u64, max: u64) -> Result<u64, FormError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|&n| n <= max && v.bytes().all(|b| b.is_ascii_digit()))
                .ok_or("a numeric query parameter that is not a number in range"),
        }
    }
}

/// Decodes lowercase or uppercase hex (a connect token as `framewire token` prints it).
///
/// # Errors
/// An odd length or a character that is not a hex digit.
pub fn from_hex(s: &str) -> Result<Vec<u8>, FormError> {
    if !s.len().is_multiple_of(2) {
        return Err("hex of odd length");
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| match (hex_digit(pair[0]), hex_digit(pair[1])) {
            (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
            _ => Err("a character that is not a hex digit"),
        })
        .collect()
}

/// Lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_and_bad_ones_are_errors() {
        assert_eq!(
            percent_decode("sensors%2F%2B%2Ftemp", false).unwrap(),
            "sensors/+/temp"
        );
        assert_eq!(percent_decode("a+b", true).unwrap(), "a b");
        assert_eq!(percent_decode("a+b", false).unwrap(), "a+b");
        assert_eq!(percent_decode("caf%C3%A9", false).unwrap(), "café");
        assert!(percent_decode("%4", false).is_err());
        assert!(percent_decode("%zz", false).is_err());
        assert!(percent_decode("%ff", false).is_err(), "not UTF-8");
    }

    #[test]
    fn a_query_keeps_every_value_in_order() {
        let q = Query::parse("filter=chat%2F%23&filter=sensors/+/temp&wait=250&flag").unwrap();
        assert_eq!(
            q.all("filter").collect::<Vec<_>>(),
            ["chat/#", "sensors/ /temp"]
        );
        assert_eq!(q.number("wait", 0, 60_000), Ok(250));
        assert_eq!(q.number("absent", 7, 10), Ok(7));
        assert!(q.number("wait", 0, 100).is_err());
        assert_eq!(q.get("flag"), Some(""));
        assert!(Query::parse(&"a=1&".repeat(65)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_text_escaped_decodes_back(text in "\\PC{0,64}") {
            let escaped = text.bytes().fold(String::new(), |mut s, b| {
                use std::fmt::Write;
                let _ = write!(s, "%{b:02X}");
                s
            });
            proptest::prop_assert_eq!(percent_decode(&escaped, true).unwrap(), text.clone());
            let q = Query::parse(&format!("a={escaped}&a=2")).unwrap();
            proptest::prop_assert_eq!(q.all("a").collect::<Vec<_>>(), vec![text.as_str(), "2"]);
        }

        #[test]
        fn any_target_text_decodes_or_is_refused(text in "[ -~]{0,200}") {
            if let Ok(q) = Query::parse(&text) {
                proptest::prop_assert!(q.pairs.len() <= MAX_QUERY_PAIRS);
            }
            let _ = percent_decode(&text, false);
        }
    }

    #[test]
    fn hex_goes_both_ways() {
        assert_eq!(from_hex("00ffA0").unwrap(), [0, 255, 160]);
        assert_eq!(to_hex(&[0, 255, 160]), "00ffa0");
        assert!(from_hex("abc").is_err());
        assert!(from_hex("zz").is_err());
    }
}
