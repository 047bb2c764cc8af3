//! TLS for encrypted transports (`wss://`): rustls with the ring provider, trusting Mozilla's roots (webpki-roots)
//! plus any private CAs named with `--ca-cert`. Certificates are always verified; there is
//! deliberately no way to turn verification off.
//!
//! The roots are compiled in rather than read from the system store, so a connection behaves
//! the same on every machine (see build-notes.md, TLS). A private CA (a corporate proxy, a
//! self-hosted Deepgram behind an internal CA) is added with `--ca-cert FILE`.

use crate::error::FluxError;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::{self, PemObject};
use rustls::{ClientConfig, RootCertStore};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// A CA bundle larger than this is not a CA bundle (the whole Mozilla set is ~250 KB of PEM);
/// the cap keeps `--ca-cert /dev/zero` from reading forever.
const MAX_CA_FILE_BYTES: u64 = 16 << 20;

/// The client configuration for these extra CA files: webpki roots plus every certificate in
/// each file. Fails with a usage error (exit 2) naming the file when one cannot be read or
/// holds no usable certificate, before any connection is made.
pub fn client_config(ca_files: &[PathBuf]) -> Result<Arc<ClientConfig>, FluxError> {
    let mut roots = webpki_roots();
    for path in ca_files {
        for cert in read_ca_file(path)? {
            roots.add(cert).map_err(|e| {
                FluxError::Usage(format!(
                    "invalid --ca-cert {}: a certificate in it cannot be used as a CA ({e})",
                    path.display()
                ))
            })?;
        }
    }
    build(roots)
}

/// The configuration without extra CAs, built once per process: every connection (and every
/// reconnect) shares it, which also lets rustls resume TLS sessions.
pub fn default_config() -> Result<Arc<ClientConfig>, FluxError> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    if let Some(config) = DEFAULT.get() {
        return Ok(config.clone());
    }
    let config = build(webpki_roots())?;
    Ok(DEFAULT.get_or_init(|| config).clone())
}

fn webpki_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn build(roots: RootCertStore) -> Result<Arc<ClientConfig>, FluxError> {
    // The provider is named here rather than taken from the process default, so the library
    // works the same whether or not `main` installed one.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FluxError::Connection(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Every certificate in a PEM file, in order.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, FluxError> {
    let invalid =
        |why: String| FluxError::Usage(format!("invalid --ca-cert {}: {why}", path.display()));
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CA_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| {
            FluxError::Usage(format!(
                "cannot read --ca-cert {}: {e}; check the path and its permissions",
                path.display()
            ))
        })?;
    if bytes.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(invalid(format!(
            "larger than {} MiB, so not a PEM CA bundle",
            MAX_CA_FILE_BYTES >> 20
        )));
    }
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(pem_problem(&e)))?;
    if certs.is_empty() {
        let hint = if bytes.starts_with(&[0x30]) {
            "it looks like DER; convert it with `openssl x509 -inform der -in FILE -out ca.pem`"
        } else {
            "expected PEM blocks starting with -----BEGIN CERTIFICATE-----"
        };
        return Err(invalid(format!("it contains no certificates ({hint})")));
    }
    Ok(certs)
}

/// Whether an I/O error came from the TLS handshake (rustls wraps its own error in one).
pub fn is_tls_error(e: &std::io::Error) -> bool {
    tls_error(e).is_some()
}

fn tls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// A failed TLS handshake in words, with what to do about it.
pub fn explain(e: &std::io::Error, host: &str) -> String {
    use rustls::CertificateError as C;
    let hint = match tls_error(e) {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            C::UnknownIssuer | C::BadSignature => {
                "the server's certificate is not signed by a trusted CA; for a private CA, pass \
                 --ca-cert FILE (PEM)"
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "the server's certificate is not for this host name; check the host in --url"
            }
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => {
                "the server's certificate is outside its validity period; check the server's \
                 certificate and this machine's clock"
            }
            _ => "the server's certificate was rejected",
        },
        Some(rustls::Error::InvalidMessage(_)) => {
            "the server does not speak TLS; for a plain WebSocket server use ws://"
        }
        _ => "check the URL and the server's TLS setup",
    };
    format!("TLS handshake with {host} failed: {e}; {hint}")
}

/// pki-types prints offending lines as byte arrays; say it in words instead.
fn pem_problem(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a PEM block has no -----END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a -----BEGIN line is malformed".into(),
        pem::Error::Base64Decode(_) => "a PEM block is not valid base64".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_roots_are_webpki_and_shared() {
        let a = default_config().unwrap();
        let b = default_config().unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(client_config(&[]).is_ok());
    }

    #[test]
    fn unusable_ca_files_are_usage_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let cases = [
            (dir.path().join("missing.pem"), "cannot read"),
            (write("empty.pem", b""), "no certificates"),
            (
                write(
                    "key.pem",
                    b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                ),
                "no certificates",
            ),
            (write("der.crt", &[0x30, 0x82, 0x01, 0x00]), "DER"),
            (
                write("cut.pem", b"-----BEGIN CERTIFICATE-----\nMIIB\n"),
                "no -----END",
            ),
            (
                write(
                    "b64.pem",
                    b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
                ),
                "base64",
            ),
            (
                write(
                    "junk.pem",
                    b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                ),
                "cannot be used as a CA",
            ),
        ];
        for (path, needle) in cases {
            let e = client_config(std::slice::from_ref(&path)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
            let m = e.to_string();
            assert!(
                m.contains(needle) && m.contains(&*path.to_string_lossy()),
                "{m}"
            );
        }
    }
}
