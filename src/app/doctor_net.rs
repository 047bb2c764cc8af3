//! `flux doctor`'s network checks, one step at a time so a failure names its layer: the name
//! (DNS), the port (TCP), and for `wss://` the certificate (TLS, with the same rustls setup
//! and the same explanations as a real connection: webpki roots plus `--ca-cert`).

use super::doctor::Check;
use super::doctor_cert::{self, CertSummary};
use crate::transport::tls;
use rustls::pki_types::ServerName;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use url::Url;

/// Where the endpoint's URL points.
pub struct Target {
    pub host: String,
    pub port: u16,
    /// `wss://`.
    pub tls: bool,
    /// The host as TLS must name it (a DNS name, or an IP address).
    name: ServerName<'static>,
}

impl Target {
    pub fn of(url: &Url) -> Option<Target> {
        let port = url.port_or_known_default()?;
        let (host, name) = match url.host()? {
            url::Host::Domain(d) => (d.to_string(), ServerName::try_from(d.to_string()).ok()?),
            url::Host::Ipv4(ip) => (ip.to_string(), ServerName::IpAddress(IpAddr::V4(ip).into())),
            url::Host::Ipv6(ip) => (ip.to_string(), ServerName::IpAddress(IpAddr::V6(ip).into())),
        };
        Some(Target {
            host,
            port,
            tls: url.scheme() == "wss",
            name,
        })
    }

    fn host_port(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => format!("[{}]:{}", self.host, self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

/// DNS: the addresses the host name resolves to.
pub async fn dns(target: &Target, timeout: Duration) -> (Check, Vec<SocketAddr>) {
    if let Ok(ip) = target.host.parse::<IpAddr>() {
        let addr = SocketAddr::new(ip, target.port);
        let check = Check::pass("dns", format!("{} is an address; no lookup needed", ip));
        return (check, vec![addr]);
    }
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    let fail = |why: String| {
        Check::fail(
            "dns",
            format!("cannot resolve {}: {why}", target.host),
            "check the host name in --url and this machine's network and DNS settings \
             (`getent hosts HOST`)",
        )
    };
    match tokio::time::timeout(timeout, lookup).await {
        Err(_) => (
            fail(format!("no answer within {} s", timeout.as_secs_f64())),
            Vec::new(),
        ),
        Ok(Err(e)) => (fail(e.to_string()), Vec::new()),
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                return (fail("no addresses".into()), addrs);
            }
            let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            let check = Check::pass("dns", format!("{} → {}", target.host, shown.join(", ")))
                .with("addresses", json!(shown));
            (check, addrs)
        }
    }
}

/// TCP: the first address that accepts a connection.
pub async fn tcp(
    target: &Target,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> (Check, Option<SocketAddr>) {
    let mut problems = Vec::new();
    for &addr in addrs {
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => {
                let check = Check::pass("tcp", format!("connected to {addr}"))
                    .with("address", json!(addr.to_string()));
                return (check, Some(addr));
            }
            Ok(Err(e)) => problems.push(format!("{addr}: {e}")),
            Err(_) => problems.push(format!(
                "{addr}: no answer within {} s",
                timeout.as_secs_f64()
            )),
        }
    }
    let check = Check::fail(
        "tcp",
        format!(
            "cannot connect to {}: {}",
            target.host_port(),
            problems.join("; ")
        ),
        "check that the server is running and the port in --url is right; a firewall or a \
         proxy may block it (flux connects directly, without HTTP proxies)",
    );
    (check, None)
}

/// TLS: a full handshake, verified as every connection is, and the server's certificate.
pub async fn tls(
    target: &Target,
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Check {
    let name = target.name.clone();
    let host = target.host_port();
    let shown_host = host.clone();
    let handshake =
        tokio::task::spawn_blocking(move || handshake(addr, name, config, timeout, &host));
    match handshake.await {
        Ok(Ok((version, Some(cert)))) => described(version, &cert),
        Ok(Ok((version, None))) => Check::pass(
            "tls",
            format!("{version} with {shown_host}; the certificate could not be described"),
        ),
        Ok(Err(why)) => Check::fail("tls", why.0, why.1),
        Err(e) => Check::fail("tls", format!("the TLS check failed: {e}"), "run it again"),
    }
}

fn described(version: String, cert: &CertSummary) -> Check {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = (cert.not_after_unix - now).div_euclid(86_400);
    Check::pass(
        "tls",
        format!(
            "{version}, certificate for {} issued by {}, expires {} (in {days} days)",
            cert.subject, cert.issuer, cert.not_after
        ),
    )
    .with("issuer", json!(cert.issuer))
    .with("subject", json!(cert.subject))
    .with("expires", json!(cert.not_after))
    .with("protocol", json!(version))
}

/// A blocking handshake over a plain socket: (protocol, leaf certificate) or (why, fix).
fn handshake(
    addr: SocketAddr,
    name: ServerName<'static>,
    config: Arc<rustls::ClientConfig>,
    timeout: Duration,
    host: &str,
) -> Result<(String, Option<CertSummary>), (String, String)> {
    let no_answer = || {
        (
            format!(
                "{host} accepted the connection but completed no TLS handshake within {} s",
                timeout.as_secs_f64()
            ),
            "check that the server speaks TLS on this port (for a plain WebSocket server use \
             ws://), or give it longer with --timeout"
                .to_string(),
        )
    };
    let mut sock = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| {
        (
            format!("cannot connect to {host}: {e}"),
            "run it again".into(),
        )
    })?;
    sock.set_read_timeout(Some(timeout)).ok();
    sock.set_write_timeout(Some(timeout)).ok();
    let mut conn = rustls::ClientConnection::new(config, name)
        .map_err(|e| (format!("cannot start TLS: {e}"), "check --ca-cert".into()))?;
    while conn.is_handshaking() {
        match conn.complete_io(&mut sock) {
            Ok(_) => {}
            Err(e) if tls::is_tls_error(&e) => {
                let text = tls::explain(&e, host);
                // `explain` ends with what to do, after the last `; `.
                let (why, fix) = text
                    .rsplit_once("; ")
                    .unwrap_or((&text, "check the server's TLS setup"));
                return Err((why.to_string(), fix.to_string()));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(no_answer());
            }
            Err(e) => {
                return Err((
                    format!("the TLS handshake with {host} failed: {e}"),
                    "check that the server speaks TLS on this port (for a plain WebSocket server \
                     use ws://)"
                        .into(),
                ));
            }
        }
    }
    let version = conn
        .protocol_version()
        .map(|v| format!("{v:?}").replace('_', "."))
        .unwrap_or_else(|| "TLS".into());
    let cert = conn
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|c| doctor_cert::summarize(c.as_ref()));
    Ok((version, cert))
}
