//! The flags of `--provider fireworks`: which Flux flags it cannot take, which of its own the
//! other providers cannot take, and its endpoint. Each refusal names the flag (exit 2).

use crate::cli::{Provider, StreamArgs};
use crate::error::FluxError;
use crate::provider::Endpoint;
use crate::provider::fireworks::{self, FireworksOptions};

/// Flux's flags that were given, by name: none of them has a Fireworks meaning.
fn flux_flags_given(s: &StreamArgs) -> Vec<&'static str> {
    [
        ("--eot-threshold", s.eot_threshold.is_some()),
        ("--eager-eot-threshold", s.eager_eot_threshold.is_some()),
        ("--eot-timeout-ms", s.eot_timeout_ms.is_some()),
        ("--keyterm", !s.keyterms.is_empty()),
        ("--keyterm-file", !s.keyterm_files.is_empty()),
        ("--language-hint", !s.language_hints.is_empty()),
        ("--tag", !s.tags.is_empty()),
        ("--numerals", s.numerals),
        ("--profanity-filter", s.profanity_filter),
        ("--redact", !s.redact.is_empty()),
        ("--mip-opt-out", s.mip_opt_out),
        ("--no-force-end-turn", s.no_force_end_turn),
        ("--account-id", s.account_id.is_some()),
        ("--gateway", s.gateway.is_some()),
    ]
    .into_iter()
    .filter_map(|(flag, given)| given.then_some(flag))
    .collect()
}

/// Refuses Flux's own settings with `--provider fireworks`, naming the flag.
pub(super) fn refuse_flux_flags(s: &StreamArgs) -> Result<(), FluxError> {
    match flux_flags_given(s).first() {
        Some(flag) => Err(FluxError::Usage(format!(
            "{flag} is a Flux setting that Fireworks does not have; drop it with --provider \
             fireworks (its own are --language, --prompt and --temperature)"
        ))),
        None => Ok(()),
    }
}

/// Refuses Fireworks' own flags with another provider.
pub(super) fn refuse_own_flags(s: &StreamArgs) -> Result<(), FluxError> {
    for (flag, given) in [
        ("--language", s.language.is_some()),
        ("--prompt", s.prompt.is_some()),
        ("--temperature", s.temperature.is_some()),
    ] {
        if given && s.provider != Provider::Fireworks {
            let instead = if flag == "--language" {
                " (Flux takes --language-hint with --model flux-general-multi)"
            } else {
                ""
            };
            return Err(FluxError::Usage(format!(
                "{flag} is for --provider fireworks{instead}"
            )));
        }
    }
    Ok(())
}

/// The Fireworks endpoint and the model name for `flux.connected`.
pub(super) fn endpoint(s: &StreamArgs) -> Result<(Endpoint, String), FluxError> {
    refuse_flux_flags(s)?;
    if s.sample_rate != fireworks::SAMPLE_RATE {
        return Err(FluxError::Usage(format!(
            "invalid --sample-rate {}: Fireworks takes {} Hz only (flux resamples any input to \
             it; leave --sample-rate out)",
            s.sample_rate,
            fireworks::SAMPLE_RATE
        )));
    }
    if !fireworks::FRAME_MS.contains(&s.chunk_ms) {
        return Err(FluxError::Usage(format!(
            "invalid --chunk-ms {}: Fireworks takes {} to {} ms of audio per message",
            s.chunk_ms,
            fireworks::FRAME_MS.start(),
            fireworks::FRAME_MS.end()
        )));
    }
    let endpoint = fireworks::endpoint(FireworksOptions {
        url: s.url.as_deref(),
        model: s.model.as_deref(),
        api_key: fireworks::api_key(s.api_key_file.as_deref())?,
        allow_insecure: s.allow_insecure,
        language: s.language.as_deref(),
        prompt: s.prompt.as_deref(),
        temperature: s.temperature,
    })?;
    let model = s
        .model
        .clone()
        .unwrap_or_else(|| fireworks::MODEL_V1.to_string());
    Ok((endpoint, model))
}
