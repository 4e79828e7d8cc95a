//! The common name of an X.509 certificate's subject (RFC 5280 section 4.1.2.6), read from its
//! DER by walking only the fields before it. The certificate has already been verified by rustls
//! when this runs, but the walk trusts nothing: every length is checked against what is left, and
//! malformed input is an error value.

use std::fmt;

/// DER tags the walk meets.
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const VERSION: u8 = 0xA0;
const UTF8_STRING: u8 = 0x0C;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;
/// The object identifier 2.5.4.3, `id-at-commonName`, as DER content.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// The longest common name RFC 5280's upper bound (`ub-common-name`) allows.
const MAX_COMMON_NAME: usize = 64;

/// Why a certificate yields no common name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectError {
    /// The DER is cut short or a length runs past its container.
    Truncated,
    /// A field has a tag the structure does not allow there.
    UnexpectedTag(u8),
    /// A length is not in DER's minimal form, or is longer than four bytes.
    BadLength,
    /// The subject has no common name.
    NoCommonName,
    /// The common name is of a string type other than `UTF8String`, `PrintableString` or `IA5String`,
    /// not valid UTF-8, empty, or longer than 64 bytes.
    BadCommonName,
}

impl fmt::Display for SubjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("certificate DER cut short"),
            Self::UnexpectedTag(t) => write!(f, "unexpected DER tag {t:#04x}"),
            Self::BadLength => f.write_str("bad DER length"),
            Self::NoCommonName => f.write_str("the certificate's subject has no common name"),
            Self::BadCommonName => {
                f.write_str("the subject's common name is not a short UTF-8 string")
            }
        }
    }
}

impl std::error::Error for SubjectError {}

/// One DER element: its tag, its content, and what follows it.
fn element(input: &[u8]) -> Result<(u8, &[u8], &[u8]), SubjectError> {
    let (&tag, rest) = input.split_first().ok_or(SubjectError::Truncated)?;
    let (&first, rest) = rest.split_first().ok_or(SubjectError::Truncated)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(if rest.len() < n {
                SubjectError::Truncated
            } else {
                SubjectError::BadLength
            });
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        // DER: the shortest form, so no leading zero byte and nothing below 128 in long form.
        if rest[0] == 0 || len < 0x80 {
            return Err(SubjectError::BadLength);
        }
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(SubjectError::Truncated);
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// The element at the start of `input`, which must have `tag`: its content and what follows.
fn expect(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), SubjectError> {
    let (found, content, rest) = element(input)?;
    if found == tag {
        Ok((content, rest))
    } else {
        Err(SubjectError::UnexpectedTag(found))
    }
}

/// The first common name in the subject of the DER certificate `der`.
///
/// # Errors
/// See [`SubjectError`].
pub fn common_name(der: &[u8]) -> Result<String, SubjectError> {
    let (certificate, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut fields = tbs;
    if fields.first() == Some(&VERSION) {
        fields = element(fields)?.2;
    }
    // serialNumber, signature, issuer, validity: skipped whole.
    for _ in 0..4 {
        fields = element(fields)?.2;
    }
    let (mut names, _) = expect(fields, SEQUENCE)?;
    while !names.is_empty() {
        let (mut set, rest) = expect(names, SET)?;
        names = rest;
        while !set.is_empty() {
            let (attribute, rest) = expect(set, SEQUENCE)?;
            set = rest;
            let (oid, value) = expect(attribute, OID)?;
            if oid != COMMON_NAME {
                continue;
            }
            let (tag, text, _) = element(value)?;
            if !matches!(tag, UTF8_STRING | PRINTABLE_STRING | IA5_STRING)
                || text.is_empty()
                || text.len() > MAX_COMMON_NAME
            {
                return Err(SubjectError::BadCommonName);
            }
            return std::str::from_utf8(text)
                .map(str::to_owned)
                .map_err(|_| SubjectError::BadCommonName);
        }
    }
    Err(SubjectError::NoCommonName)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn certificate(cn: Option<&str>) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["device.example".into()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "framewire tests");
        if let Some(cn) = cn {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_common_name_of_a_real_certificate_is_read() {
        assert_eq!(
            common_name(&certificate(Some("sensor-12"))).unwrap(),
            "sensor-12"
        );
    }

    #[test]
    fn a_subject_without_a_common_name_says_so() {
        assert_eq!(
            common_name(&certificate(None)),
            Err(SubjectError::NoCommonName)
        );
    }

    #[test]
    fn lengths_not_in_minimal_form_are_refused() {
        // A SEQUENCE of length 5 written in long form.
        assert_eq!(
            element(&[0x30, 0x81, 0x05, 1, 2, 3, 4, 5]),
            Err(SubjectError::BadLength)
        );
        assert_eq!(
            element(&[0x30, 0x82, 0x00, 0x90]),
            Err(SubjectError::BadLength)
        );
        assert_eq!(element(&[0x30, 0x85]), Err(SubjectError::Truncated));
        assert_eq!(element(&[0x30, 0x03, 1]), Err(SubjectError::Truncated));
    }

    proptest! {
        #[test]
        fn any_bytes_give_a_name_or_an_error_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = common_name(&bytes);
        }

        #[test]
        fn a_cut_or_flipped_certificate_never_panics(cut in 0usize..400, flip in 0usize..400, bit in 0u8..8) {
            let mut der = certificate(Some("sensor-12"));
            if flip < der.len() {
                der[flip] ^= 1 << bit;
            }
            der.truncate(cut.min(der.len()));
            let _ = common_name(&der);
        }
    }
}
