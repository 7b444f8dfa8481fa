//! TLS for the listener: a certificate chain and its key (PEM) into a rustls server
//! configuration that offers HTTP/2 and HTTP/1.1 by ALPN. The binary reads the files; this
//! module only checks and assembles their contents.

use std::fmt;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;

/// ALPN protocol ids, in the server's order of preference.
pub(crate) const ALPN_H2: &[u8] = b"h2";
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// A checked TLS server configuration (ring provider, TLS 1.2 and 1.3, ALPN `h2` then
/// `http/1.1`).
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) server: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("alpn", &["h2", "http/1.1"])
            .finish()
    }
}

/// Which of the two inputs is at fault, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsError {
    /// The certificate chain: unreadable PEM, or no certificate in it.
    Cert(String),
    /// The private key: unreadable PEM, no key, an unsupported key, or one that does not
    /// belong to the certificate.
    Key(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Cert(why) => write!(f, "certificate: {why}"),
            TlsError::Key(why) => write!(f, "key: {why}"),
        }
    }
}

impl std::error::Error for TlsError {}

impl TlsConfig {
    /// Builds the configuration from a PEM certificate chain (leaf first) and a PEM private
    /// key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsConfig, TlsError> {
        let certs = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Cert(format!("not a PEM certificate chain ({e})")))?;
        if certs.is_empty() {
            return Err(TlsError::Cert("no CERTIFICATE block in the file".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| TlsError::Key(format!("no usable PEM private key ({e})")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Cert(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| TlsError::Key(format!("cannot be used with the certificate ({e})")))?;
        server.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
        Ok(TlsConfig {
            server: Arc::new(server),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    #[test]
    fn a_matching_pair_offers_h2_then_http1() {
        let (cert, key) = pair();
        let tls = TlsConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        assert_eq!(
            tls.server.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn faults_say_which_file() {
        let (cert, key) = pair();
        let (_, other_key) = pair();
        let cases = [
            (b"junk".as_slice(), key.as_bytes(), "cert"),
            (key.as_bytes(), key.as_bytes(), "cert"),
            (cert.as_bytes(), b"junk".as_slice(), "key"),
            (cert.as_bytes(), cert.as_bytes(), "key"),
            (cert.as_bytes(), other_key.as_bytes(), "key"),
        ];
        for (cert, key, fault) in cases {
            let err = TlsConfig::from_pem(cert, key).unwrap_err();
            let got = match err {
                TlsError::Cert(_) => "cert",
                TlsError::Key(_) => "key",
            };
            assert_eq!(got, fault, "{err}");
        }
    }
}
