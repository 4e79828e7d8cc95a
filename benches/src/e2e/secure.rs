//! What the encrypted systems of the echo comparison need (issue: encryption): a CA and a server
//! certificate for 127.0.0.1 (made with rcgen), and a token key with a version-2 token and its keys
//! for sealed UDP, written once per run into a directory of their own.

use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use framewire_protocol::auth::{ConnectToken, Permissions};
use framewire_protocol::seal::TokenKeys;
use framewire_protocol::wire::Text;

/// The files and the token.
#[derive(Debug)]
pub struct Materials {
    /// The CA the generator trusts.
    pub ca: PathBuf,
    /// The server's certificate and key.
    pub cert: PathBuf,
    /// See `cert`.
    pub key: PathBuf,
    /// The server's connect-token key.
    pub token_key: PathBuf,
    /// A version-2 token in hex, and the file of its keys (`framewire --keys`).
    pub token_hex: String,
    /// See `token_hex`.
    pub keys: PathBuf,
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Where this run keeps its materials.
fn materials_dir() -> PathBuf {
    std::env::temp_dir().join(format!("fw-bench-secure-{}", std::process::id()))
}

/// Removes the run's materials, if it made any (at its end: the servers that read them are gone).
pub fn remove_materials() {
    let _ = std::fs::remove_dir_all(materials_dir());
}

fn make() -> io::Result<Materials> {
    let other = |e: rcgen::Error| io::Error::other(e.to_string());
    let dir = materials_dir();
    std::fs::create_dir_all(&dir)?;
    let ca_key = rcgen::KeyPair::generate().map_err(other)?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(other)?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "framewire bench CA");
    let ca_pem = ca.self_signed(&ca_key).map_err(other)?.pem();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().map_err(other)?;
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .map_err(other)?
        .signed_by(&key, &issuer)
        .map_err(other)?;
    let m = Materials {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        token_key: dir.join("token.key"),
        keys: dir.join("bench.keys"),
        token_hex: String::new(),
    };
    std::fs::write(&m.ca, ca_pem)?;
    std::fs::write(&m.cert, leaf.pem())?;
    std::fs::write(&m.key, key.serialize_pem())?;
    let mut token_key = [0u8; 32];
    let mut seal = [0u8; 64];
    let mut nonce = [0u8; 24];
    for (i, b) in token_key
        .iter_mut()
        .chain(&mut seal)
        .chain(&mut nonce)
        .enumerate()
    {
        // Not secret: a benchmark's keys only need to be distinct.
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    std::fs::write(&m.token_key, token_key)?;
    let keys = TokenKeys::from_bytes(&seal);
    std::fs::write(&m.keys, format!("{}\n", hex(&keys.to_bytes())))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let token = ConnectToken {
        client_id: Text::from("bench"),
        expires: now + 24 * 3600,
        permissions: Permissions {
            publish: vec![Text::from("#")],
            subscribe: vec![Text::from("#")],
            ..Permissions::default()
        },
    }
    .sign_with_keys(&token_key, &keys, nonce)
    .map_err(io::Error::other)?;
    Ok(Materials {
        token_hex: hex(&token),
        ..m
    })
}

/// The run's materials, made on first use.
///
/// # Errors
/// They could not be made or written.
pub fn materials() -> io::Result<&'static Materials> {
    static MATERIALS: OnceLock<Result<Materials, String>> = OnceLock::new();
    MATERIALS
        .get_or_init(|| make().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| io::Error::other(e.clone()))
}

/// The arguments of a framewire server serving TLS only on `addr` with these materials'
/// certificate (no plain TCP, UDP or HTTP listener).
///
/// # Errors
/// The materials could not be made.
pub fn tls_only_args(addr: std::net::SocketAddr) -> io::Result<Vec<String>> {
    let m = materials()?;
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    Ok(vec![
        "--tcp".into(),
        "off".into(),
        "--udp".into(),
        "off".into(),
        "--http".into(),
        "off".into(),
        "--tls".into(),
        addr.to_string(),
        "--tls-cert".into(),
        path(&m.cert),
        "--tls-key".into(),
        path(&m.key),
    ])
}
