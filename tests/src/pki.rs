//! Certificates made on the spot for the TLS tests: a CA, a server certificate for 127.0.0.1 and
//! `localhost` signed by it, and client certificates (valid, expired, from another CA), written
//! as PEM files into a directory of their own.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Pem {
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// A test CA and what it signed.
#[derive(Debug)]
pub struct TestPki {
    dir: PathBuf,
    /// The CA's certificate (what clients and the server trust).
    pub ca: PathBuf,
    /// The server's certificate and key (for 127.0.0.1 and localhost).
    pub server: Pem,
    issuer: Issuer<'static, KeyPair>,
}

impl TestPki {
    /// A fresh CA and server certificate under the system's temporary directory, in a directory
    /// named after `name` and this process.
    ///
    /// # Panics
    /// If a key cannot be made or a file cannot be written.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("fw-pki-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("pki dir");
        let (ca_pem, issuer) = ca(&format!("framewire test CA ({name})"));
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, ca_pem).expect("write ca");
        let mut pki = Self {
            server: Pem {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            dir,
            ca,
            issuer,
        };
        pki.server = pki.issue("server", vec!["localhost".into(), "127.0.0.1".into()], None);
        pki
    }

    /// Where the files are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A client certificate whose subject's common name is `cn`, signed by this CA.
    ///
    /// # Panics
    /// If a key cannot be made or a file cannot be written.
    pub fn client(&self, cn: &str) -> Pem {
        self.sign(cn, Vec::new(), Some(cn), false, &self.issuer)
    }

    /// A client certificate for `cn` that expired in 2020.
    ///
    /// # Panics
    /// If a key cannot be made or a file cannot be written.
    pub fn expired_client(&self, cn: &str) -> Pem {
        self.sign(
            &format!("{cn}-expired"),
            Vec::new(),
            Some(cn),
            true,
            &self.issuer,
        )
    }

    /// A client certificate for `cn` from a CA nobody here trusts.
    ///
    /// # Panics
    /// If a key cannot be made or a file cannot be written.
    pub fn stranger(&self, cn: &str) -> Pem {
        let (_, issuer) = ca("some other CA");
        self.sign(
            &format!("{cn}-stranger"),
            Vec::new(),
            Some(cn),
            false,
            &issuer,
        )
    }

    /// A certificate for `names` (DNS names or IP addresses) signed by this CA.
    ///
    /// # Panics
    /// If a key cannot be made or a file cannot be written.
    pub fn issue(&self, file: &str, names: Vec<String>, cn: Option<&str>) -> Pem {
        self.sign(file, names, cn, false, &self.issuer)
    }

    fn sign(
        &self,
        file: &str,
        names: Vec<String>,
        cn: Option<&str>,
        expired: bool,
        issuer: &Issuer<'static, KeyPair>,
    ) -> Pem {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(names).expect("params");
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        if expired {
            params.not_before = date_time_ymd(2019, 1, 1);
            params.not_after = date_time_ymd(2020, 1, 1);
        }
        let cert = params.signed_by(&key, issuer).expect("sign");
        self.write(file, &cert.pem(), &key.serialize_pem())
    }

    fn write(&self, file: &str, cert: &str, key: &str) -> Pem {
        let pem = Pem {
            cert: self.dir.join(format!("{file}.pem")),
            key: self.dir.join(format!("{file}.key")),
        };
        std::fs::write(&pem.cert, cert).expect("write cert");
        std::fs::write(&pem.key, key).expect("write key");
        pem
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A self-signed CA: its certificate (PEM) and what signs with it.
fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("ca key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).expect("self-sign");
    (cert.pem(), Issuer::new(params, key))
}
