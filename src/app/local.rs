//! `--provider local`: the flags it takes and refuses, the recognizer loaded once per process
//! (a batch's files and a call's two sides share it), and the endpoint whose transport is the
//! in-process pipe to `flux serve`'s own connection code. Also `flux doctor`'s model check.

use super::config::{self, Origin};
use super::doctor::Check;
use crate::cli::{Provider, StreamArgs};
use crate::error::FluxError;
use crate::protocol::StreamParams;
use crate::provider::{self, Endpoint};
use crate::serve::asr::{AsrOptions, default_model_dir};
use crate::serve::local::InProcess;
use crate::transport::local::Local;
use serde_json::json;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Workers when `--asr-workers` is not given: `flux serve`'s default. One gives one real-time
/// stream Updates at full cadence; with more streams every final is still exact but Updates
/// thin (docs/performance.md). Each more costs about 150 MB.
const DEFAULT_WORKERS: usize = 1;

/// The recognizer of this process, with the options it was loaded with.
static LOADED: Mutex<Option<(PathBuf, usize, Arc<InProcess>)>> = Mutex::new(None);

/// Refuses `--asr-model` and `--asr-workers` with another provider. From a profile they are
/// ignored: a `[default]` table may serve several providers.
pub(super) fn refuse_own_flags(s: &StreamArgs) -> Result<(), FluxError> {
    if s.provider == Provider::Local {
        return Ok(());
    }
    for (flag, key, given) in [
        ("--asr-model", "asr_model", s.local.asr_model.is_some()),
        (
            "--asr-workers",
            "asr_workers",
            s.local.asr_workers.is_some(),
        ),
    ] {
        if given && !from_profile(key) {
            return Err(FluxError::Usage(format!(
                "{flag} is for --provider local (for flux serve, pass it to `flux serve --asr \
                 moonshine`)"
            )));
        }
    }
    Ok(())
}

fn from_profile(key: &str) -> bool {
    matches!(config::current().origin(key), Origin::Profile(_))
}

/// Refuses the flags that reach or authenticate to a server: there is none. Set in a profile
/// they are ignored, as other providers ignore each other's.
fn refuse_server_flags(s: &StreamArgs) -> Result<(), FluxError> {
    for (flag, key, given) in [
        ("--url", "url", s.url.is_some()),
        ("--api-key-file", "api_key_file", s.api_key_file.is_some()),
        (
            "--access-token-file",
            "access_token_file",
            s.access_token_file.is_some(),
        ),
        ("--account-id", "account_id", s.account_id.is_some()),
        ("--gateway", "gateway", s.gateway.is_some()),
        ("--header", "header", !s.headers.is_empty()),
        ("--allow-insecure", "allow_insecure", s.allow_insecure),
        ("--ca-cert", "ca_cert", !s.ca_certs.is_empty()),
    ] {
        if !given || from_profile(key) {
            continue;
        }
        let why = "the recognizer runs inside flux, so there is no server to reach and nothing \
                   to authenticate";
        return Err(FluxError::Usage(match config::current().origin(key) {
            Origin::Env(var) => format!(
                "{var} is set (it stands for {flag}), but --provider local takes no {flag} \
                 ({why}); unset it"
            ),
            _ => format!(
                "{flag} is not used by --provider local ({why}); for a flux serve, use \
                 --provider deepgram --url ws://HOST:PORT"
            ),
        }));
    }
    Ok(())
}

/// What `--asr-model` and `--asr-workers` ask for.
fn options(s: &StreamArgs) -> AsrOptions {
    AsrOptions {
        model_dir: s.local.asr_model.clone().unwrap_or_else(default_model_dir),
        workers: s.local.asr_workers.map_or(DEFAULT_WORKERS, usize::from),
        partials: true,
    }
}

/// The endpoint as the flags describe it, before any model is loaded (`flux doctor`'s).
pub(super) fn located(s: &StreamArgs, params: &StreamParams) -> Result<Endpoint, FluxError> {
    refuse_server_flags(s)?;
    provider::local::endpoint(params, !s.no_force_end_turn, None)
}

/// The endpoint, with the recognizer loaded (once per process) behind its in-process pipe.
pub(super) fn endpoint(s: &StreamArgs, params: &StreamParams) -> Result<Endpoint, FluxError> {
    refuse_server_flags(s)?;
    let server = load(&options(s))?;
    provider::local::endpoint(
        params,
        !s.no_force_end_turn,
        Some(Arc::new(Local::new(server))),
    )
}

/// The recognizer for these options: loaded on first use, then shared. Loading blocks for a
/// second or two, before any audio is read; one line on stderr says so (not with `-q`).
fn load(opts: &AsrOptions) -> Result<Arc<InProcess>, FluxError> {
    let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((dir, workers, server)) = loaded.as_ref()
        && *dir == opts.model_dir
        && *workers == opts.workers
    {
        return Ok(server.clone());
    }
    let started = Instant::now();
    let server = Arc::new(InProcess::load(opts).map_err(FluxError::from)?);
    if !quiet() {
        eprintln!(
            "flux: local recognizer: Moonshine base-en loaded from {} in {:.1}s ({} worker{})",
            opts.model_dir.display(),
            started.elapsed().as_secs_f64(),
            server.workers(),
            if server.workers() == 1 { "" } else { "s" }
        );
    }
    *loaded = Some((opts.model_dir.clone(), opts.workers, server.clone()));
    Ok(server)
}

/// `-q` was given (status lines are not wanted). Read from the resolved command line: the
/// endpoint is made from the stream flags alone.
fn quiet() -> bool {
    config::current().values.iter().any(|(key, values)| {
        key == "quiet"
            && values
                .as_ref()
                .is_some_and(|v| v.iter().any(|x| x == "true"))
    })
}

/// `flux doctor`: the model in place of credentials. `real` is the endpoint with the model
/// loaded, or why it could not be.
pub(super) fn model_check(s: &StreamArgs, real: &Result<Endpoint, FluxError>) -> Check {
    let opts = options(s);
    let dir = opts.model_dir.display().to_string();
    match real {
        Ok(_) => Check::pass(
            "model",
            format!(
                "Moonshine base-en at {dir} loads with its ONNX Runtime ({} worker(s))",
                opts.workers
            ),
        )
        .with("model_dir", json!(dir)),
        Err(e) => {
            let message = e.to_string();
            // The loader's messages end with the command that fixes them.
            let (what, fix) = match message.split_once("; run `") {
                Some((what, fix)) => (what.to_string(), format!("run `{fix}")),
                None => (
                    message.clone(),
                    "run scripts/fetch-model.sh (docs/providers.md#local)".to_string(),
                ),
            };
            Check::fail("model", what, fix).with("model_dir", json!(dir))
        }
    }
}

/// `flux doctor`: what stands in for DNS, TCP and TLS.
pub(super) fn network_check() -> Check {
    Check::pass(
        "network",
        "not used: --provider local runs the recognizer inside flux (no DNS, TCP or TLS)",
    )
}
