//! `flux serve`: a local Flux-compatible server for offline development and CI.
//!
//! It speaks Deepgram's `/v2/listen` and Cloudflare's `@cf/deepgram/flux` dialects (and
//! Fireworks' streaming transcription, in `fireworks`), finds
//! turns in the audio it receives with a deterministic voice-activity detector, takes their
//! text from a script or from a real recognizer (`--asr moonshine`), and can misbehave on
//! purpose (`--fault`). See docs/serve.md.
//!
//! Layout: `listen` binds and accepts connections, this file routes them to the upgrade
//! (`accept`, which also serves in-process connections: `local`, for `--provider local`);
//! `handshake` decides each upgrade, `session` runs an accepted connection over `link` (the
//! connection plumbing every WebSocket dialect shares), `audio` decodes,
//! `vad` and `turns` find the turns, `config` holds what `Configure` changes, `script` the
//! text, `asr` the recognizer, `fault` the misbehaviour and `log` the record of what clients
//! sent.

mod accept;
pub mod asr;
pub mod audio;
pub mod config;
pub mod fault;
pub mod fireworks;
pub mod grant;
pub mod handshake;
pub mod link;
mod listen;
pub mod local;
pub mod log;
pub mod replay;
pub mod sagemaker;
pub mod script;
pub mod session;
pub mod turns;
pub mod vad;

use crate::error::FluxError;
use crate::provider::Secret;
use anyhow::Context;
use handshake::RequestHead;
use serde_json::Value;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Largest request head accepted (the upgrade request with its headers).
const MAX_HEAD: usize = 16 * 1024;
/// A client has this long to send its upgrade request.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// What `flux serve` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Address to listen on, e.g. `127.0.0.1:0` (port 0: any free port).
    pub listen: String,
    /// Require this key (`Token` on Deepgram routes, `Bearer` on Cloudflare's); `None`: any.
    pub api_key: Option<Secret>,
    /// One line of transcript per turn.
    pub script: Option<PathBuf>,
    /// Append one JSON line per thing received here (created when missing, never truncated).
    pub log: Option<PathBuf>,
    /// Raw `--fault` specs (see [`fault::FORMS`]).
    pub faults: Vec<String>,
    /// `--asr`: recognize the words instead of taking them from the script.
    pub asr: Option<asr::AsrOptions>,
    /// Close a connection that has received no audio for this long, as the service does
    /// (`--idle-timeout`); `None` never does (the default for servers started in process).
    pub idle_timeout: Option<Duration>,
    /// Also serve SageMaker's bidirectional stream (HTTPS, HTTP/2) on this address.
    pub sagemaker_listen: Option<String>,
    /// Write the SageMaker front end's CA certificate (PEM) here, for clients to trust.
    pub sagemaker_ca: Option<PathBuf>,
    /// End each SageMaker stream after this many seconds of audio (SageMaker's cap is 30
    /// minutes of wall time).
    pub sagemaker_session_cap: Option<f64>,
    /// Answer with a recorded session's messages (`--replay`, see [`replay`]).
    pub replay: Option<PathBuf>,
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    /// The SageMaker front end's address and task, when asked for.
    sagemaker: Option<(SocketAddr, JoinHandle<()>)>,
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://HOST:PORT`, with a loopback host when listening on every interface.
    pub fn url(&self) -> String {
        let ip = self.addr.ip();
        let host = match ip {
            std::net::IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_string(),
            std::net::IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_string(),
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        };
        format!("ws://{host}:{}", self.addr.port())
    }

    /// `https://HOST:PORT` of the SageMaker front end, when it runs.
    pub fn sagemaker_url(&self) -> Option<String> {
        let (addr, _) = self.sagemaker.as_ref()?;
        Some(format!("https://{}", loopback_if_unspecified(*addr)))
    }

    /// Stops accepting and ends every session.
    pub async fn shutdown(mut self) {
        if let Some((_, task)) = self.sagemaker.take() {
            task.abort();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        // A handle dropped without shutdown() must not leave a server running.
        self.task.abort();
        if let Some((_, task)) = &self.sagemaker {
            task.abort();
        }
    }
}

/// What every connection shares.
struct Shared {
    api_key: Option<Secret>,
    script: Arc<script::Script>,
    replay: Option<Arc<replay::Recording>>,
    log: Option<Arc<log::Logger>>,
    faults: Vec<fault::Fault>,
    asr: Option<Arc<asr::Recognizer>>,
    connections: AtomicU64,
    idle_timeout: Option<Duration>,
    /// Temporary tokens granted by `POST /v1/auth/grant`.
    grants: grant::Grants,
}

/// Validates options, binds, and returns a running server.
pub async fn start(opts: ServeOptions) -> anyhow::Result<ServerHandle> {
    let faults = fault::parse_all(&opts.faults)?;
    fault::check_platform(&faults, opts.sagemaker_listen.is_some())?;
    if opts
        .api_key
        .as_ref()
        .is_some_and(|k| k.expose().trim().is_empty())
    {
        return Err(FluxError::Usage("--api-key must not be empty".into()).into());
    }
    let script = match &opts.script {
        Some(path) => script::Script::load(path)?,
        None => script::Script::default(),
    };
    if opts.asr.is_some() && opts.script.is_some() {
        return Err(FluxError::Usage(
            "--asr and --script both supply the words; pass one of them".into(),
        )
        .into());
    }
    // Loaded before listening: a missing model is an error at start, not a silent stream.
    let recognizer = match opts.asr.clone() {
        Some(a) => Some(Arc::new(
            tokio::task::spawn_blocking(move || asr::Recognizer::load(&a))
                .await
                .context("loading the recognizer stopped")?
                .map_err(FluxError::from)?,
        )),
        None => None,
    };
    let started = Instant::now();
    let log = match &opts.log {
        Some(path) => Some(Arc::new(log::Logger::create(path, started)?)),
        None => None,
    };
    let listener = listen::bind(&opts.listen).await.map_err(|e| {
        FluxError::Usage(format!(
            "cannot listen on `{}`: {e}; --listen takes HOST:PORT, e.g. 127.0.0.1:8080 (port 0 \
             picks a free one)",
            opts.listen
        ))
    })?;
    let addr = listener
        .local_addr()
        .context("the listening socket has no address")?;
    let shared = Arc::new(Shared {
        api_key: opts.api_key,
        script: Arc::new(script),
        replay: match &opts.replay {
            Some(path) => Some(Arc::new(replay::Recording::load(path)?)),
            None => None,
        },
        log,
        faults,
        asr: recognizer,
        connections: AtomicU64::new(0),
        idle_timeout: opts.idle_timeout,
        grants: grant::Grants::default(),
    });
    let sagemaker = match &opts.sagemaker_listen {
        Some(listen) => Some(
            start_sagemaker(
                listen,
                opts.sagemaker_ca.as_deref(),
                opts.sagemaker_session_cap,
                addr,
                &shared,
            )
            .await?,
        ),
        None => None,
    };
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(listen::accept_loop(listener, shared, stopped));
    Ok(ServerHandle {
        addr,
        stop: Some(stop),
        task,
        sagemaker,
    })
}

/// The SageMaker front end, bridging to the WebSocket listener at `container`.
async fn start_sagemaker(
    listen: &str,
    ca_out: Option<&std::path::Path>,
    session_cap: Option<f64>,
    container: SocketAddr,
    shared: &Shared,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    if session_cap.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
        return Err(FluxError::Usage(
            "--sagemaker-session-cap takes a positive number of seconds".into(),
        )
        .into());
    }
    let tls = sagemaker::self_signed()?;
    if let Some(path) = ca_out {
        sagemaker::write_ca(path, &tls)?;
    }
    let listener = TcpListener::bind(listen).await.map_err(|e| {
        FluxError::Usage(format!(
            "cannot listen on --sagemaker-listen `{listen}`: {e}; it takes HOST:PORT, e.g. \
             127.0.0.1:8443 (port 0 picks a free one)"
        ))
    })?;
    let addr = listener
        .local_addr()
        .context("the SageMaker socket has no address")?;
    let task = tokio::spawn(sagemaker::accept_loop(
        listener,
        tls.acceptor,
        loopback_if_unspecified(container),
        shared.api_key.clone(),
        session_cap,
        shared.faults.clone(),
    ));
    Ok((addr, task))
}

/// An address to connect to: a wildcard listen address means this machine's loopback.
fn loopback_if_unspecified(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], addr.port())),
        IpAddr::V6(v6) if v6.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// What the CLI runs: start, print the URL on stdout, serve until Ctrl-C or SIGTERM.
pub async fn run(opts: ServeOptions) -> anyhow::Result<()> {
    let requires_key = opts.api_key.is_some();
    let handle = start(opts).await?;
    let url = handle.url();
    {
        // A closed stdout (`| head -1`) must not stop the server.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{url}");
        let _ = out.flush();
    }
    eprintln!(
        "flux serve: listening on {url} (Deepgram: {url}/v2/listen; Cloudflare: \
         {url}/client/v4/accounts/ACCOUNT/ai/run/@cf/deepgram/flux or {url}/; Fireworks: \
         {url}/v1/audio/transcriptions/streaming). Ctrl-C to stop."
    );
    if let Some(sagemaker) = handle.sagemaker_url() {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{sagemaker}");
        let _ = out.flush();
        eprintln!(
            "flux serve: SageMaker bidirectional stream on {sagemaker} (HTTP/2, self-signed \
             certificate; SigV4 checked in form only, signatures are not verified)"
        );
    }
    if let Some(warning) = exposure_warning(handle.local_addr(), requires_key, lan_address) {
        eprintln!("{warning}");
    }
    wait_for_stop_signal().await;
    eprintln!("flux serve: stopping");
    handle.shutdown().await;
    Ok(())
}

/// The warning for an address other machines can reach: flux serve has no TLS, so audio,
/// transcripts and keys cross the network in clear. `None` for a loopback address.
/// `lan_address` finds this machine's address for the URL other machines would use.
fn exposure_warning(
    addr: SocketAddr,
    requires_key: bool,
    lan_address: impl Fn(IpAddr) -> Option<IpAddr>,
) -> Option<String> {
    let ip = addr.ip();
    if ip.is_loopback() {
        return None;
    }
    let port = addr.port();
    let anyone = if requires_key {
        ""
    } else {
        " and no --api-key is required"
    };
    let local = if ip.is_ipv6() { "[::1]" } else { "127.0.0.1" };
    let reach = if ip.is_unspecified() {
        let remote = match lan_address(ip) {
            Some(lan) => format!("ws://{}", SocketAddr::new(lan, port)),
            None => format!("ws://THIS-MACHINE'S-ADDRESS:{port}"),
        };
        format!(
            "listening on all interfaces ({addr}): from this machine use ws://{local}:{port}, \
             from others {remote}"
        )
    } else {
        format!("listening on {addr}, which other machines can reach")
    };
    Some(format!(
        "flux serve: warning: {reach}. The connection is unencrypted (plain ws://, no TLS): \
         audio, transcripts and keys cross the network in clear{anyone}. To keep it on this \
         machine, use --listen {local}:{port}."
    ))
}

/// This machine's address on the route to the outside, found by "connecting" a UDP socket to
/// a documentation address (RFC 5737 / RFC 3849): that only consults the routing table and
/// sends nothing. `None` without a route.
fn lan_address(unspecified: IpAddr) -> Option<IpAddr> {
    let (bind, probe): (SocketAddr, SocketAddr) = if unspecified.is_ipv6() {
        (
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
            (std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 9).into(),
        )
    } else {
        (
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            (std::net::Ipv4Addr::new(192, 0, 2, 1), 9).into(),
        )
    };
    let socket = std::net::UdpSocket::bind(bind).ok()?;
    socket.connect(probe).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

async fn wait_for_stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn connection(mut tcp: TcpStream, conn: u64, shared: Arc<Shared>) {
    let _ = tcp.set_nodelay(true);
    let request_id = uuid::Uuid::new_v4().to_string();
    let Some(head) = peek_head(&tcp).await else {
        return;
    };
    if grant::is_grant(&head) {
        let key = shared.api_key.as_ref().map(Secret::expose);
        let status = grant::serve(&mut tcp, &head, key, &shared.grants, &request_id).await;
        log_handshake(&shared, conn, &head, status, &request_id);
        return;
    }
    if !is_websocket_upgrade(&head) {
        // tungstenite would hang up without an answer; say what is wrong instead.
        let refusal = handshake::not_websocket(&head, &request_id);
        log_handshake(&shared, conn, &head, refusal.status, &request_id);
        let _ = tcp
            .write_all(&handshake::raw_response(&refusal, &request_id))
            .await;
        let _ = tcp.shutdown().await;
        return;
    }
    accept::upgrade(tcp, conn, shared, request_id).await;
}

fn log_handshake(shared: &Shared, conn: u64, head: &RequestHead, status: u16, request_id: &str) {
    if let Some(log) = &shared.log {
        let mut fields = head.log_fields();
        fields.insert("status".into(), Value::from(status));
        fields.insert("request_id".into(), Value::from(request_id));
        log.write(conn, "handshake", Value::Object(fields));
    }
}

/// Reads the request head without consuming it, so tungstenite can still read it whole.
async fn peek_head(tcp: &TcpStream) -> Option<RequestHead> {
    let deadline = tokio::time::Instant::now() + HEAD_TIMEOUT;
    let mut buf = vec![0u8; MAX_HEAD];
    loop {
        let n = tokio::time::timeout_at(deadline, tcp.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        if let Some(end) = find_head_end(&buf[..n]) {
            return Some(parse_head(&buf[..end]));
        }
        if n == buf.len() {
            return Some(parse_head(&buf[..n]));
        }
        // The head came in pieces: the bytes stay in the socket until the rest arrives.
        tokio::time::sleep(Duration::from_millis(5)).await;
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
    }
}

fn find_head_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// A lenient parse of an HTTP/1.x request head (only used to answer non-WebSocket requests
/// and to decide whether tungstenite should see it).
fn parse_head(bytes: &[u8]) -> RequestHead {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/");
    let version = parts.next().unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    headers.push((":version".into(), version.to_string()));
    RequestHead {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers,
    }
}

/// The checks tungstenite makes before it would call our callback.
fn is_websocket_upgrade(head: &RequestHead) -> bool {
    let has = |name: &str, token: &str| {
        head.header(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    head.method == "GET"
        && head.header(":version").is_some_and(|v| v == "HTTP/1.1")
        && has("connection", "upgrade")
        && has("upgrade", "websocket")
        && head.header("sec-websocket-version") == Some("13")
        && head.header("sec-websocket-key").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_parsing_and_upgrade_detection() {
        let raw = b"GET /v2/listen?model=flux-general-en HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        let end = find_head_end(raw).unwrap();
        let head = parse_head(&raw[..end]);
        assert_eq!(head.path, "/v2/listen");
        assert_eq!(head.query, "model=flux-general-en");
        assert!(is_websocket_upgrade(&head));
        let plain = parse_head(b"POST /v2/listen HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(!is_websocket_upgrade(&plain));
    }

    #[test]
    fn addresses_other_machines_reach_are_warned_about() {
        let lan = |_: IpAddr| Some(IpAddr::from([10, 1, 2, 3]));
        let none = |_: IpAddr| None;
        assert_eq!(
            exposure_warning(([127, 0, 0, 1], 8787).into(), false, lan),
            None
        );
        assert_eq!(
            exposure_warning((std::net::Ipv6Addr::LOCALHOST, 8787).into(), false, lan),
            None
        );
        let all = exposure_warning(([0, 0, 0, 0], 8787).into(), false, lan).unwrap();
        for needle in [
            "all interfaces",
            "unencrypted",
            "ws://10.1.2.3:8787",
            "no --api-key",
            "--listen 127.0.0.1:8787",
        ] {
            assert!(all.contains(needle), "{needle}: {all}");
        }
        let keyed = exposure_warning(([0, 0, 0, 0], 1).into(), true, none).unwrap();
        assert!(keyed.contains("THIS-MACHINE'S-ADDRESS:1"), "{keyed}");
        assert!(!keyed.contains("--api-key"), "{keyed}");
        let one = exposure_warning(([192, 168, 1, 5], 80).into(), true, none).unwrap();
        assert!(
            one.contains("192.168.1.5:80, which other machines"),
            "{one}"
        );
        let v6 = exposure_warning((std::net::Ipv6Addr::UNSPECIFIED, 9).into(), true, none).unwrap();
        assert!(v6.contains("--listen [::1]:9"), "{v6}");
    }
}
