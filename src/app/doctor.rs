//! `flux doctor`: says why flux will not work, and what to do. Each check passes (✔) or fails
//! (✘, with a fix): audio input devices, the chosen provider's credentials (which are present,
//! never their values), DNS, TCP and TLS to the endpoint, then a real handshake over the
//! session that `flux listen` uses, with one second of silence and a clean close. Exit 0 when
//! all passed, 10 when one failed; `--jsonl` writes one object per check.
//!
//! A step that cannot run because an earlier one failed is reported as failed ("not tried"),
//! so the report always has the same checks in the same order. There is no configuration
//! file in flux yet, so there is nothing to check about one.

use super::doctor_net::{self, Target};
use super::{endpoint, flag_error, stream_params};
use crate::audio::mic::devices;
use crate::cli::{DoctorArgs, Provider, StreamArgs};
use crate::error::{ExitCode, FluxError};
use crate::event::{Event, Sink};
use crate::protocol::sanitize::sanitize;
use crate::protocol::{Dialect, ServerMessage, StreamParams};
use crate::provider::cloudflare::{self, ACCOUNT_ENV, TOKEN_ENV};
use crate::provider::deepgram::{self, API_KEY_ENV};
use crate::provider::{self, Endpoint, Secret, fireworks};
use crate::session::{self, Feed, SessionOptions};
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The handshake's audio: one second of silence in 100 ms frames, at real time.
const SILENCE_FRAMES: u64 = 10;
const FRAME_MS: u32 = 100;
const SAMPLE_RATE: u32 = 16_000;

/// One check's outcome.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
    pub fix: Option<String>,
    /// Facts for `--jsonl` (addresses, issuer, request id, ...).
    pub extra: Map<String, Value>,
}

impl Check {
    pub fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            ok: true,
            detail: detail.into(),
            fix: None,
            extra: Map::new(),
        }
    }

    pub fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
            extra: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: Value) -> Check {
        self.extra.insert(key.to_string(), value);
        self
    }

    /// A step left out because `blocker` failed.
    fn not_tried(name: &'static str, blocker: &str) -> Check {
        Check::fail(
            name,
            format!("not tried: the {blocker} check failed"),
            format!("fix the {blocker} check first"),
        )
    }

    fn json(&self) -> Value {
        let mut line = Map::new();
        line.insert("type".into(), json!("flux.doctor.check"));
        line.insert("check".into(), json!(self.name));
        line.insert("ok".into(), json!(self.ok));
        line.insert("detail".into(), json!(self.detail));
        line.insert("fix".into(), json!(self.fix));
        line.extend(self.extra.clone());
        Value::Object(line)
    }

    fn text(&self) -> String {
        let mark = if self.ok { '✔' } else { '✘' };
        let mut out = format!("{mark} {:<11} {}\n", self.name, sanitize(&self.detail));
        if let Some(fix) = &self.fix {
            out.push_str(&format!("  {:<11} fix: {}\n", "", sanitize(fix)));
        }
        out
    }
}

/// `flux doctor`.
pub(super) async fn run(args: DoctorArgs) -> anyhow::Result<u8> {
    let stream = &args.stream;
    if stream.control.is_some() {
        return Err(FluxError::Usage(
            "--control is for streaming; flux doctor sends its own second of silence".into(),
        )
        .into());
    }
    if stream.provider == Provider::Deepgram {
        for (flag, given) in [
            ("--account-id", stream.account_id.is_some()),
            ("--gateway", stream.gateway.is_some()),
        ] {
            if given {
                return Err(
                    FluxError::Usage(format!("{flag} is for --provider cloudflare")).into(),
                );
            }
        }
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let dialect = match stream.provider {
        Provider::Deepgram => Dialect::Deepgram,
        // Fireworks takes no Flux parameter: its endpoint checks its own flags.
        Provider::Cloudflare | Provider::Fireworks => Dialect::Cloudflare,
        // SageMaker passes Deepgram's dialect through to the container; local is flux serve's.
        Provider::Sagemaker | Provider::Local => Dialect::Deepgram,
    };
    let params = stream_params(stream, dialect);
    super::fireworks::refuse_own_flags(stream)?;
    super::local::refuse_own_flags(stream)?;
    if stream.provider == Provider::Fireworks {
        super::fireworks::refuse_flux_flags(stream)?;
    } else {
        params
            .validate(dialect)
            .map_err(|e| FluxError::Usage(flag_error(&e)))?;
    }
    // Bad flags (a malformed --url, an unreadable --ca-cert) are usage errors, as for every
    // command; only credentials are the report's business.
    super::endpoint::refuse_foreign_flags(stream)?;
    let located = located_endpoint(stream, &params)?;
    let real = configured(endpoint(stream, &params), stream)?;

    let mut checks = vec![devices_check(), config_check()];
    let creds = credentials_check(stream, &real);
    let (creds_ok, creds_name) = (creds.ok, creds.name);
    checks.push(creds);
    let target = Target::of(&located.url);
    let mut network_ok = false;
    match &target {
        _ if stream.provider == Provider::Local => {
            checks.push(super::local::network_check());
            network_ok = true;
        }
        None => checks.push(Check::fail(
            "dns",
            format!(
                "{} has no host and port",
                provider::redact_url(&located.url)
            ),
            "give --url as scheme://host[:port]",
        )),
        Some(target) => {
            let (dns, addrs) = doctor_net::dns(target, timeout).await;
            let dns_ok = dns.ok;
            checks.push(dns);
            let (tcp, addr) = if dns_ok {
                doctor_net::tcp(target, &addrs, timeout).await
            } else {
                (Check::not_tried("tcp", "dns"), None)
            };
            checks.push(tcp);
            let tls = match (addr, target.tls) {
                (None, _) => Check::not_tried("tls", "tcp"),
                (Some(_), false) => Check::pass(
                    "tls",
                    format!(
                        "not used: {} is plain ws:// (nothing is encrypted)",
                        target.host
                    ),
                ),
                (Some(addr), true) => {
                    let config = match &located.tls {
                        Some(c) => c.clone(),
                        None => crate::transport::tls::default_config()?,
                    };
                    doctor_net::tls(target, addr, config, timeout).await
                }
            };
            network_ok = tls.ok && addr.is_some();
            checks.push(tls);
        }
    }
    let handshake = match (&real, creds_ok, network_ok) {
        (Ok(endpoint), true, true) => handshake(endpoint.clone(), &params, timeout).await,
        (_, false, _) => Check::not_tried("handshake", creds_name),
        _ => {
            // The first network step that failed is the one to fix.
            let blocker = checks
                .iter()
                .find(|c| !c.ok && matches!(c.name, "dns" | "tcp" | "tls"))
                .map_or("network", |c| c.name);
            Check::not_tried("handshake", blocker)
        }
    };
    checks.push(handshake);

    let failed = checks.iter().filter(|c| !c.ok).count();
    let mut out = String::new();
    if args.jsonl {
        for c in &checks {
            out.push_str(&c.json().to_string());
            out.push('\n');
        }
        let summary = json!({
            "type": "flux.doctor.summary",
            "ok": failed == 0,
            "passed": checks.len() - failed,
            "failed": failed,
            "provider": located.provider,
            "url": provider::redact_url(&located.url),
        });
        out.push_str(&summary.to_string());
        out.push('\n');
    } else {
        out.push_str(&format!(
            "flux doctor: {} at {}\n",
            located.provider,
            provider::redact_url(&located.url)
        ));
        checks.iter().for_each(|c| out.push_str(&c.text()));
        out.push_str(&match failed {
            0 => format!("All {} checks passed.\n", checks.len()),
            n => format!("{n} of {} checks failed.\n", checks.len()),
        });
    }
    super::print(out.as_bytes())?;
    Ok(if failed == 0 {
        ExitCode::Success.code()
    } else {
        ExitCode::CheckFailed.code()
    })
}

/// The endpoint as the flags describe it, with a stand-in credential where none is usable:
/// DNS, TCP and TLS need only where it is. Never used to connect with.
fn located_endpoint(stream: &StreamArgs, params: &StreamParams) -> Result<Endpoint, FluxError> {
    let stand_in = || Some(Secret::new("doctor-stand-in"));
    let built = match stream.provider {
        Provider::Deepgram => deepgram::endpoint(
            deepgram::DeepgramOptions {
                base_url: stream.url.as_deref(),
                api_key: stand_in(),
                allow_insecure: stream.allow_insecure,
                force_end_turn: !stream.no_force_end_turn,
            },
            params,
        ),
        Provider::Cloudflare => cloudflare::endpoint(
            cloudflare::CloudflareOptions {
                url: stream.url.as_deref(),
                gateway: stream.gateway.as_deref(),
                account_id: cloudflare::account_id(stream.account_id.as_deref())
                    .or_else(|| Some("ACCOUNT".into())),
                api_token: stand_in(),
                allow_insecure: stream.allow_insecure,
            },
            params,
        ),
        Provider::Fireworks => fireworks::endpoint(fireworks::FireworksOptions {
            url: stream.url.as_deref(),
            model: stream.model.as_deref(),
            api_key: stand_in(),
            allow_insecure: stream.allow_insecure,
            language: stream.language.as_deref(),
            prompt: stream.prompt.as_deref(),
            temperature: stream.temperature,
        }),
        // AWS credentials are not part of the endpoint: the region and address are all.
        Provider::Sagemaker => super::endpoint::sagemaker_endpoint(stream, params),
        // Where it is, without loading the model: `real` loads it, for the model check.
        Provider::Local => super::local::located(stream, params),
    };
    let mut endpoint = built?;
    if !stream.ca_certs.is_empty() {
        endpoint.tls = Some(crate::transport::tls::client_config(&stream.ca_certs)?);
    }
    Ok(endpoint)
}

/// The real endpoint with the user's headers and CAs; a credential problem stays an `Err`
/// for the report, anything else is a usage error now.
fn configured(
    built: Result<Endpoint, FluxError>,
    stream: &StreamArgs,
) -> Result<Result<Endpoint, FluxError>, FluxError> {
    let mut endpoint = match built {
        Ok(e) => e,
        // The stand-in build succeeded, so what failed is the credential (missing, or its
        // file unreadable).
        Err(e) => return Ok(Err(e)),
    };
    super::endpoint::with_user_settings(&mut endpoint, stream)?;
    Ok(Ok(endpoint))
}

/// The config file: which one applies and which profile, or why it cannot be used.
fn config_check() -> Check {
    let resolved = super::config::current();
    if let Some(problem) = &resolved.problem {
        return Check::fail(
            "config",
            sanitize(problem),
            "fix the file as the message says (docs/configuration.md), or run without it: \
             --config /dev/null",
        );
    }
    let profile = &resolved.profile;
    let detail = match (&profile.file, &profile.name) {
        (None, _) => "no config file (flags, environment and defaults apply)".to_string(),
        (Some(f), None) => format!("{} parses; [default] applies", f.display()),
        (Some(f), Some(n)) => format!("{} parses; profile `{n}` applies", f.display()),
    };
    Check::pass("config", detail)
}

/// Input devices and the default one.
fn devices_check() -> Check {
    let fix = "connect a microphone, or check that this user may use audio devices (on Linux, \
               the `audio` group); `flux devices` lists what flux can see. Files and stdin \
               work without one";
    let list = match devices::host().and_then(|h| devices::list(&h)) {
        Ok(list) => list,
        Err(e) => return Check::fail("audio", format!("cannot list audio devices: {e}"), fix),
    };
    let usable: Vec<&devices::DeviceInfo> = list.iter().filter(|d| d.error.is_none()).collect();
    let ids: Vec<&str> = list.iter().map(|d| d.id.as_str()).collect();
    match list.iter().find(|d| d.default) {
        Some(d) if d.error.is_none() => {
            let format = d
                .default_config
                .map(|c| format!(" ({} Hz, {} ch)", c.sample_rate, c.channels))
                .unwrap_or_default();
            Check::pass(
                "audio",
                format!(
                    "{} input device(s); default: {}{format}",
                    usable.len(),
                    d.id
                ),
            )
            .with("devices", json!(ids))
            .with("default", json!(d.id))
        }
        Some(d) => Check::fail(
            "audio",
            format!(
                "the default input device {} cannot be used: {}",
                d.id,
                d.error.as_deref().unwrap_or("unknown")
            ),
            fix,
        )
        .with("devices", json!(ids)),
        None => {
            Check::fail("audio", "no default audio input device", fix).with("devices", json!(ids))
        }
    }
}

/// Which credentials the chosen provider would use, by name; never their values.
fn credentials_check(stream: &StreamArgs, real: &Result<Endpoint, FluxError>) -> Check {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let file = stream
        .api_key_file
        .as_ref()
        .map(|p| format!("--api-key-file {}", p.display()));
    let (key_env, kind) = match stream.provider {
        Provider::Deepgram => (API_KEY_ENV, "API key"),
        Provider::Cloudflare => (TOKEN_ENV, "API token"),
        Provider::Fireworks => (fireworks::KEY_ENV, "API key"),
        Provider::Sagemaker => return aws_credentials_check(),
        Provider::Local => return super::local::model_check(stream, real),
    };
    let mut present: Vec<String> = Vec::new();
    match (&file, set(key_env)) {
        (Some(f), true) => present.push(format!(
            "{kind} from {f} ({key_env} is also set; the file wins)"
        )),
        (Some(f), false) => present.push(format!("{kind} from {f}")),
        (None, true) => present.push(format!("{kind} from {key_env}")),
        (None, false) => {}
    }
    if stream.provider == Provider::Deepgram {
        let token_env = deepgram::ACCESS_TOKEN_ENV;
        match (&stream.access_token_file, set(token_env)) {
            (Some(f), _) => present.push(format!(
                "temporary token from --access-token-file {}",
                f.display()
            )),
            (None, true) => present.push(format!("temporary token from {token_env}")),
            (None, false) => {}
        }
    }
    if stream.provider == Provider::Cloudflare {
        if stream.account_id.is_some() {
            present.push("account id from --account-id".into());
        } else if set(ACCOUNT_ENV) {
            present.push(format!("account id from {ACCOUNT_ENV}"));
        }
    }
    if !stream.headers.is_empty() {
        present.push(format!("{} --header value(s)", stream.headers.len()));
    }
    let names = json!(present);
    match real {
        Err(e) => Check::fail(
            "credentials",
            format!("{} credentials are not usable", provider_name(stream)),
            e.to_string(),
        )
        .with("present", names),
        Ok(endpoint) if endpoint.headers.is_empty() => Check::pass(
            "credentials",
            format!(
                "none sent to {} (fine for a server that needs none, such as flux serve \
                 without --api-key)",
                endpoint.url.host_str().unwrap_or("the server")
            ),
        )
        .with("present", names),
        Ok(endpoint) => {
            let sent: Vec<&str> = endpoint.headers.iter().map(|(n, _)| n.as_str()).collect();
            Check::pass(
                "credentials",
                format!("{}; values not shown", present.join(", ")),
            )
            .with("present", names)
            .with("headers", json!(sent))
        }
    }
}

fn provider_name(stream: &StreamArgs) -> &'static str {
    match stream.provider {
        Provider::Deepgram => "Deepgram",
        Provider::Cloudflare => "Cloudflare",
        Provider::Fireworks => "Fireworks",
        Provider::Sagemaker => "AWS SageMaker",
        Provider::Local => "local",
    }
}

/// SageMaker signs with the standard AWS credential chain: name the sources that are set
/// (never their values); the chain itself is resolved by the handshake.
fn aws_credentials_check() -> Check {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let mut present: Vec<&str> = Vec::new();
    if set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY") {
        present.push("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    }
    for name in [
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ] {
        if set(name) {
            present.push(name);
        }
    }
    if present.is_empty() {
        return Check::pass(
            "credentials",
            "no AWS credentials in the environment; the AWS chain may still find a shared \
             profile, SSO or an instance role (the handshake shows whether it did)",
        );
    }
    Check::pass(
        "credentials",
        format!(
            "AWS credential chain: {}; values not shown",
            present.join(", ")
        ),
    )
}

/// Records what the handshake needs to report.
#[derive(Default)]
struct HandshakeSink {
    connected: Option<String>,
}

impl Sink for HandshakeSink {
    fn event(&mut self, event: &Event) -> std::io::Result<()> {
        if let Event::Server(received) = event
            && let ServerMessage::Connected(c) = &received.message
        {
            self.connected = Some(c.request_id.clone());
        }
        Ok(())
    }
}

/// A real stream: connect, wait for `Connected`, one second of silence, end it as flux
/// always does, and read until the server closes.
async fn handshake(endpoint: Endpoint, params: &StreamParams, timeout: Duration) -> Check {
    let frame_bytes = (SAMPLE_RATE * FRAME_MS / 1000) as usize * 2;
    let sends_connected = endpoint.capabilities.sends_connected;
    let transport = endpoint.transport();
    let opts = SessionOptions {
        endpoint,
        model: params.model_or_default().to_string(),
        sample_rate: SAMPLE_RATE,
        frame_bytes,
        eot_timeout_ms: params.eot_timeout_ms_or_default(),
        eot_threshold: params.eot_threshold_or_default(),
        pace: Some(1.0),
        live_source: false,
        connect_timeout: timeout,
        max_reconnects: 0,
        stall_timeout: timeout,
    };
    let (feed_tx, feed_rx) = mpsc::channel(session::feed::FEED_CAPACITY);
    let frames = (0..SILENCE_FRAMES)
        .map(|i| crate::audio::condition::Frame {
            data: bytes::Bytes::from(vec![0u8; frame_bytes]),
            index: i,
            start_sample: i * (frame_bytes as u64 / 2),
            sample_rate: SAMPLE_RATE,
        })
        .collect();
    // The channel has room for both, and the session has not started yet.
    let _ = feed_tx.try_send(Feed::Frames {
        frames,
        ready: Instant::now(),
    });
    let _ = feed_tx.try_send(Feed::End {
        error: None,
        note: None,
    });
    // Held open for the whole session: a closed control channel would mean nothing, but
    // there is no reason to make the session find out.
    let (_controls_tx, controls_rx) = mpsc::channel(1);
    let mut sink = HandshakeSink::default();
    let outcome = session::run_over(transport, &opts, feed_rx, &mut sink, controls_rx, None).await;
    let request_id = outcome.request_id.clone().or(sink.connected.clone());
    let id = request_id
        .as_deref()
        .map(sanitize)
        .unwrap_or_else(|| "none".into());
    if let Some(e) = outcome.error {
        let fix = match e.kind() {
            ExitCode::Auth => {
                "the server refused the credentials: check the key or token above \
                               (and, for flux serve, its --api-key)"
            }
            ExitCode::Server => "the server reported an error: see its message",
            _ => {
                "check --url and that the server is up; a slow server may need a longer \
                  --timeout"
            }
        };
        return Check::fail("handshake", e.to_string(), fix).with("request_id", json!(request_id));
    }
    let greeting = match (&sink.connected, sends_connected) {
        (Some(_), _) => "Connected".to_string(),
        (None, false) => "WebSocket open (this provider sends no Connected)".to_string(),
        (None, true) => {
            return Check::fail(
                "handshake",
                "the stream ended without the server's Connected message",
                "check that --url points at a Flux endpoint (/v2/listen)",
            )
            .with("request_id", json!(request_id));
        }
    };
    Check::pass(
        "handshake",
        format!("{greeting} (request id {id}); 1 s of silence sent; closed cleanly"),
    )
    .with("request_id", json!(request_id))
}
