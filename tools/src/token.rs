//! `framewire token`: issues a connect token (docs/PROTOCOL.md section 4.1.3), signed with the
//! server's key, and prints it in hex for `--token`; with `--keys-out FILE`, the token carries
//! fresh keys for a sealed UDP session (section 2.3), written to FILE for the client's `--keys`.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use framewire_protocol::auth::{ConnectToken, MIN_KEY_LEN, Permissions};
use framewire_protocol::seal::TokenKeys;
use framewire_protocol::wire::Text;
use framewire_server::web::form::to_hex;

/// What the token says.
#[derive(Debug)]
pub(crate) struct Claims<'a> {
    pub(crate) client: &'a str,
    pub(crate) expires_in: Duration,
    pub(crate) publish: &'a [String],
    pub(crate) subscribe: &'a [String],
    pub(crate) request: &'a [String],
    pub(crate) serve: &'a [String],
    pub(crate) queue: &'a [String],
}

/// Reads a key file: at least [`MIN_KEY_LEN`] bytes.
///
/// # Errors
/// The file is missing or unreadable, or the key is too short.
pub(crate) fn read_key(path: &Path) -> Result<Vec<u8>, String> {
    let key = std::fs::read(path)
        .map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?;
    if key.len() < MIN_KEY_LEN {
        return Err(format!(
            "the key file {} holds {} bytes; a key needs at least {MIN_KEY_LEN}",
            path.display(),
            key.len()
        ));
    }
    Ok(key)
}

/// Reads a duration: a number with a unit (`90s`, `30m`, `12h`, `7d`), or plain seconds.
///
/// # Errors
/// Anything else.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 30m, 12h or 7d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?} is not a duration like 90s, 30m, 12h or 7d")),
    };
    Ok(Duration::from_secs(secs))
}

/// Signs the claims with `key`; returns the token in hex. With `keys`, the token carries them
/// sealed (a version-2 token, docs/PROTOCOL.md section 2.3) under a fresh random nonce.
///
/// # Errors
/// Too many patterns, names too long, or no randomness for the nonce.
pub(crate) fn issue(
    key: &[u8],
    claims: &Claims<'_>,
    keys: Option<&TokenKeys>,
) -> Result<String, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let texts = |v: &[String]| v.iter().map(|s| Text::from(s.as_str())).collect();
    let token = ConnectToken {
        client_id: Text::from(claims.client),
        expires: now.saturating_add(claims.expires_in.as_secs()),
        permissions: Permissions {
            publish: texts(claims.publish),
            subscribe: texts(claims.subscribe),
            request: texts(claims.request),
            serve: texts(claims.serve),
            queue: texts(claims.queue),
        },
    };
    let bytes = match keys {
        Some(keys) => {
            let mut nonce = [0u8; 24];
            getrandom::fill(&mut nonce).map_err(|e| format!("no randomness: {e}"))?;
            token.sign_with_keys(key, keys, nonce)
        }
        None => token.sign(key),
    }
    .map_err(str::to_owned)?;
    Ok(to_hex(&bytes))
}

/// Fresh random keys for a sealed UDP session.
///
/// # Errors
/// No randomness.
pub(crate) fn fresh_keys() -> Result<TokenKeys, String> {
    let mut bytes = [0u8; 64];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(TokenKeys::from_bytes(&bytes))
}

/// Writes `keys` to `path` as the client reads them (`--keys`): 128 hex digits, the
/// client-to-server key first, and a newline; readable by its owner only.
///
/// # Errors
/// The file cannot be written.
pub(crate) fn write_keys(path: &Path, keys: &TokenKeys) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot write the keys file {}: {e}", path.display()))?;
    writeln!(file, "{}", to_hex(&keys.to_bytes()))
        .map_err(|e| format!("cannot write the keys file {}: {e}", path.display()))
}

/// Reads a keys file written by [`write_keys`].
///
/// # Errors
/// The file cannot be read, or does not hold 64 bytes in hex.
pub(crate) fn read_keys(path: &Path) -> Result<TokenKeys, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the keys file {}: {e}", path.display()))?;
    let bytes = from_hex(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let bytes: [u8; 64] = bytes.try_into().map_err(|b: Vec<u8>| {
        format!(
            "{}: {} bytes; a keys file holds 64 (128 hex digits)",
            path.display(),
            b.len()
        )
    })?;
    Ok(TokenKeys::from_bytes(&bytes))
}

/// Reads a token given in hex.
///
/// # Errors
/// Not hex.
pub(crate) fn from_hex(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return Err("a token in hex has an even number of digits".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16)
                .map_err(|_| format!("{:?} is not hex", &s[i..i + 2]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn issued_tokens_verify_with_the_key() {
        let key = [7u8; 32];
        let pubs = vec!["dev/+/temp".to_owned()];
        let claims = Claims {
            client: "dev-1",
            expires_in: Duration::from_secs(60),
            publish: &pubs,
            subscribe: &[],
            request: &[],
            serve: &[],
            queue: &[],
        };
        let hex = issue(&key, &claims, None).unwrap();
        let bytes = from_hex(&hex).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let t = ConnectToken::verify(&bytes, &key, now).unwrap();
        assert_eq!(t.client_id.as_str(), "dev-1");
        assert_eq!(t.permissions.publish[0].as_str(), "dev/+/temp");
        assert_eq!(ConnectToken::open_keys(&bytes, &key), Ok(None));
        // With keys: the same claims, and the keys open with the server's key, and read back
        // from the file written for the client.
        let keys = fresh_keys().unwrap();
        let sealed = from_hex(&issue(&key, &claims, Some(&keys)).unwrap()).unwrap();
        assert_eq!(ConnectToken::verify(&sealed, &key, now).unwrap(), t);
        assert_eq!(
            ConnectToken::open_keys(&sealed, &key),
            Ok(Some(keys.clone()))
        );
        let path = std::env::temp_dir().join(format!("fw-keys-{}", std::process::id()));
        write_keys(&path, &keys).unwrap();
        assert_eq!(read_keys(&path).unwrap(), keys);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "abcd\n").unwrap();
        assert!(read_keys(&path).unwrap_err().contains("64"));
        let _ = std::fs::remove_file(&path);
    }
}
