//! `wss://` end to end, and the refusal of plain `ws://` across the network.
//!
//! The test makes its own PKI (a CA and a server certificate it signs, with rcgen), and runs a
//! TLS terminator (tokio-rustls) on a loopback port in front of a real `flux serve`: the flux
//! binary speaks TLS to the terminator, which forwards the decrypted bytes to the emulator. So
//! the whole protocol, turns included, runs over a verified TLS connection, and nothing
//! leaves the machine.

use crate::common;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// A private CA, and a server certificate it issued.
pub(crate) struct Pki {
    pub(crate) ca_pem: String,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

/// A CA and a server certificate for `names` (DNS names or IP addresses).
pub(crate) fn pki(names: &[&str]) -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "flux test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// A TLS terminator on a loopback port, forwarding to `backend`.
pub(crate) struct TlsFront {
    pub(crate) port: u16,
    /// TCP connections accepted (whether or not their handshake succeeded).
    accepted: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl TlsFront {
    pub(crate) fn start(pki: &Pki, backend: SocketAddr) -> TlsFront {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![pki.cert.clone()], pki.key.clone_key())
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that rejects our certificate ends the handshake here.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsFront {
            port,
            accepted,
            _runtime: runtime,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

pub(crate) fn backend(serve: &Serve) -> SocketAddr {
    serve.url.trim_start_matches("ws://").parse().unwrap()
}

pub(crate) fn write_ca(dir: &tempfile::TempDir, pki: &Pki) -> PathBuf {
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, &pki.ca_pem).unwrap();
    path
}

/// `flux file beckett.wav --url URL --fast --text` plus `extra`.
fn wss_cmd(url: &str, extra: &[&str]) -> std::process::Command {
    let mut cmd = flux();
    cmd.arg("file")
        .arg(fixture("beckett.wav"))
        .args(["--url", url, "--fast", "--text"])
        .args(extra);
    cmd
}

#[test]
fn with_the_private_ca_turns_come_back_over_wss() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(&["localhost", "127.0.0.1"]);
    let ca = write_ca(&dir, &pki);
    let serve = Serve::start(&[]);
    let front = TlsFront::start(&pki, backend(&serve));
    // By name and by IP address: both are in the certificate.
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("wss://{host}:{}", front.port);
        let out = run(wss_cmd(&url, &["--ca-cert", ca.to_str().unwrap()]), None);
        assert_eq!(code(&out), 0, "{host}: {}", stderr(&out));
        let turns = stdout(&out);
        assert_eq!(turns.lines().count(), 4, "{host}: {turns}");
    }
    assert_eq!(serve.log_kind("handshake").len(), 2);
}

#[test]
fn an_unknown_ca_is_refused_with_exit_4_and_not_retried() {
    let pki = pki(&["localhost", "127.0.0.1"]);
    let serve = Serve::start(&[]);
    let front = TlsFront::start(&pki, backend(&serve));
    let out = run(
        wss_cmd(&format!("wss://localhost:{}", front.port), &[]),
        None,
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 4, "{err}");
    assert!(
        err.contains("TLS handshake with localhost:")
            && err.contains("UnknownIssuer")
            && err.contains("--ca-cert"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
    // The certificate was checked before anything was sent, and a certificate problem is
    // not something a retry fixes.
    assert!(serve.log_kind("handshake").is_empty());
    assert_eq!(front.accepted(), 1);
}

#[test]
fn a_certificate_for_another_host_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(&["flux.example"]);
    let ca = write_ca(&dir, &pki);
    let serve = Serve::start(&[]);
    let front = TlsFront::start(&pki, backend(&serve));
    let out = run(
        wss_cmd(
            &format!("wss://127.0.0.1:{}", front.port),
            &["--ca-cert", ca.to_str().unwrap()],
        ),
        None,
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 4, "{err}");
    assert!(err.contains("not for this host name"), "{err}");
    assert!(serve.log_kind("handshake").is_empty());
}

/// wss:// to a server that answers in plain HTTP (as a web server on a non-TLS port would).
#[test]
fn wss_to_a_plain_server_says_it_does_not_speak_tls() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut hello = [0u8; 512];
            let _ = stream.read(&mut hello);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let out = run(wss_cmd(&format!("wss://127.0.0.1:{port}"), &[]), None);
    let err = stderr(&out);
    assert_eq!(code(&out), 4, "{err}");
    assert!(err.contains("does not speak TLS"), "{err}");
}

#[test]
fn an_unusable_ca_file_is_exit_2_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(&["localhost"]);
    let serve = Serve::start(&[]);
    let front = TlsFront::start(&pki, backend(&serve));
    let url = format!("wss://localhost:{}", front.port);
    let garbage = dir.path().join("notes.txt");
    std::fs::write(&garbage, "this is not a certificate\n").unwrap();
    let key_only = dir.path().join("key.pem");
    std::fs::write(&key_only, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let missing = dir.path().join("missing.pem");
    for (file, needle) in [
        (&missing, "cannot read --ca-cert"),
        (&garbage, "no certificates"),
        (&key_only, "no certificates"),
    ] {
        let out = run(wss_cmd(&url, &["--ca-cert", file.to_str().unwrap()]), None);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{file:?}: {err}");
        assert!(
            err.contains(needle) && err.contains(file.to_str().unwrap()),
            "{file:?}: {err}"
        );
    }
    assert_eq!(front.accepted(), 0, "a connection was attempted");
}

/// The refusal happens while the flags are read, before any connection attempt: these
/// TEST-NET-1 addresses (RFC 5737) are never contacted, and the command ends at once (a
/// connection attempt to them would hang until the 15 s connect timeout or fail with exit 4).
#[test]
fn plain_ws_to_a_network_host_is_refused_unless_allowed() {
    for (provider, url) in [
        ("deepgram", "ws://192.0.2.1:8787"),
        ("deepgram", "http://192.0.2.1"),
        ("deepgram", "ws://flux.example"),
        ("cloudflare", "ws://192.0.2.1/"),
    ] {
        let mut cmd = wss_cmd(url, &["--provider", provider]);
        cmd.env("DEEPGRAM_API_KEY", "k")
            .env("CLOUDFLARE_API_TOKEN", "t")
            .env("CLOUDFLARE_ACCOUNT_ID", "a");
        let started = Instant::now();
        let out = run(cmd, None);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{url}: {err}");
        assert!(
            err.contains("refusing plain ws://") && err.contains("--allow-insecure"),
            "{url}: {err}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    // Loopback needs no permission (flux serve is plain ws://).
    let serve = Serve::start(&[]);
    let out = run(wss_cmd(&serve.url, &[]), None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}
