//! The little JSON the HTTP mapping writes (docs/PROTOCOL.md section 11.4): strings escaped as RFC
//! 8259 section 7 asks, and payloads as UTF-8 text when they are, base64 otherwise, with a field
//! saying which.

use std::fmt::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::http::Response;

/// Appends `s` as a JSON string, quotes included.
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Control characters, and the two line separators JavaScript once choked on.
            c if u32::from(c) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `"payload":...,"encoding":...`: the bytes as a string when they are UTF-8 (`"utf8"`),
/// as standard base64 with padding otherwise (`"base64"`).
pub fn payload(out: &mut String, bytes: &[u8]) {
    out.push_str("\"payload\":");
    if let Ok(text) = std::str::from_utf8(bytes) {
        string(out, text);
        out.push_str(",\"encoding\":\"utf8\"");
    } else {
        out.push('"');
        STANDARD.encode_string(bytes, out);
        out.push_str("\",\"encoding\":\"base64\"");
    }
}

/// Appends `"name":` and the string `value`.
pub fn field(out: &mut String, name: &str, value: &str) {
    string(out, name);
    out.push(':');
    string(out, value);
}

/// A response whose body is `{"status":NAME,"code":CODE,"message":...}`: how every failure of the
/// HTTP mapping is told (`status` and `code` are those of docs/PROTOCOL.md section 6.1.1, or
/// `BAD_REQUEST` for a request the mapping itself cannot read).
pub fn failure(http: u16, name: &str, code: u16, message: &str) -> Response {
    let mut body = String::with_capacity(64 + message.len());
    body.push('{');
    field(&mut body, "status", name);
    let _ = write!(body, ",\"code\":{code},");
    field(&mut body, "message", message);
    body.push_str("}\n");
    object(http, body)
}

/// A response of status `http` whose body is the JSON `body`.
pub fn object(http: u16, body: String) -> Response {
    Response {
        status: http,
        headers: vec![
            ("Content-Type", CONTENT_TYPE.into()),
            ("Cache-Control", "no-store".into()),
        ],
        body: body.into_bytes(),
    }
}

/// The media type of every JSON body.
pub const CONTENT_TYPE: &str = "application/json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        let mut s = String::new();
        string(&mut s, "a\"b\\c\nd\u{1}\u{2028}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001\u2028é""#);
    }

    #[test]
    fn payloads_say_their_encoding() {
        let mut s = String::new();
        payload(&mut s, b"21.5");
        assert_eq!(s, r#""payload":"21.5","encoding":"utf8""#);
        let mut s = String::new();
        payload(&mut s, &[0xff, 0x00, 0x10]);
        assert_eq!(s, r#""payload":"/wAQ","encoding":"base64""#);
    }
}
