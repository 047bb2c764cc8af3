//! AWS SageMaker endpoints running Flux, reached through SageMaker Runtime's
//! `InvokeEndpointWithBidirectionalStream` (HTTP/2; the transport is
//! [`crate::transport::sagemaker`]).
//!
//! The endpoint's container speaks Deepgram's dialect behind SageMaker's bridge: the Flux
//! query goes in `ModelQueryString` and the path `v2/listen` in `ModelInvocationPath`.
//! Container builds differ in the control messages they take (some end the session on
//! `Configure` or `ForceEndTurn`), so by default flux sends neither: the last turn ends with
//! silence, then `CloseStream`. `--sagemaker-controls` turns both on for builds that have them.
//!
//! Credentials are the standard AWS chain's, loaded by the transport; nothing here holds one.

use super::{Capabilities, Endpoint, RefusalHints, Secret};
use crate::error::FluxError;
use crate::protocol::StreamParams;
use crate::transport::sagemaker::{INVOCATION_PATH_HEADER, REGION_HEADER, ROUTE_SUFFIX};
use std::path::PathBuf;
use url::Url;

/// The path inside the container SageMaker opens its WebSocket to.
pub const INVOCATION_PATH: &str = "v2/listen";
/// Overrides the runtime's address for this service only (the AWS SDKs' convention).
pub const ENDPOINT_ENV: &str = "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2";
/// Overrides every AWS service's address.
pub const ENDPOINT_ENV_ALL: &str = "AWS_ENDPOINT_URL";
/// SageMaker Runtime serves the bidirectional stream on this port.
const RUNTIME_PORT: u16 = 8443;

pub struct SageMakerOptions<'a> {
    /// `--endpoint`.
    pub endpoint_name: Option<&'a str>,
    /// `--region`.
    pub region: Option<&'a str>,
    /// `--url`: the runtime's base, instead of the region's.
    pub url: Option<&'a str>,
    /// `--sagemaker-controls`: the container takes ForceEndTurn and Configure.
    pub controls: bool,
}

/// Builds the endpoint: the runtime URL with the endpoint's route and the Flux query, and
/// the container path and signing region for the transport.
pub fn endpoint(opts: SageMakerOptions<'_>, params: &StreamParams) -> Result<Endpoint, FluxError> {
    let name = opts.endpoint_name.ok_or_else(|| {
        FluxError::Usage(
            "--provider sagemaker needs --endpoint NAME, the SageMaker endpoint running Flux \
             (`aws sagemaker list-endpoints` lists them)"
                .into(),
        )
    })?;
    check_endpoint_name(name)?;
    let region = region(opts.region)?;
    let mut url = base_url(opts.url, &region)?;
    url.path_segments_mut()
        .map_err(|_| FluxError::Usage("the SageMaker URL cannot take a path".into()))?
        .clear()
        .extend(["endpoints", name, ROUTE_SUFFIX]);
    url.query_pairs_mut().extend_pairs(params.to_query_pairs());
    let controls = opts.controls;
    Ok(Endpoint {
        provider: "sagemaker",
        url,
        headers: vec![
            (
                INVOCATION_PATH_HEADER.to_string(),
                Secret::new(INVOCATION_PATH),
            ),
            (REGION_HEADER.to_string(), Secret::new(region.clone())),
        ],
        capabilities: Capabilities {
            force_end_turn: controls,
            configure: controls,
            sends_connected: true,
            // The stream ends with silence, then CloseStream, then reading to the end.
            close_finalizes: false,
            clear_state: false,
        },
        adapter: None,
        transport: None,
        tls: None,
        hints: RefusalHints {
            unauthorized: "flux found no AWS credentials: set AWS_ACCESS_KEY_ID and \
                           AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (after `aws sso login` for \
                           SSO), or run where a role is attached"
                .into(),
            payment: String::new(),
            forbidden: format!(
                "If the credentials are current and the region is right, the AWS identity \
                 may not stream to this endpoint: its policy must allow \
                 `sagemaker:InvokeEndpointWithBidirectionalStream` on \
                 arn:aws:sagemaker:{region}:ACCOUNT:endpoint/{}",
                name.to_ascii_lowercase()
            ),
        },
    })
}

/// The SageMaker flags given with another provider are a mistake worth naming.
pub fn refuse_flags(
    endpoint: Option<&str>,
    region: Option<&str>,
    controls: bool,
) -> Result<(), FluxError> {
    for (flag, given) in [
        ("--endpoint", endpoint.is_some()),
        ("--region", region.is_some()),
        ("--sagemaker-controls", controls),
    ] {
        if given {
            return Err(FluxError::Usage(format!(
                "{flag} is for --provider sagemaker"
            )));
        }
    }
    Ok(())
}

/// SageMaker's own rule for endpoint names, checked here so a typo is exit 2 with the rule,
/// not an AWS validation error after connecting.
fn check_endpoint_name(name: &str) -> Result<(), FluxError> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(FluxError::Usage(format!(
            "--endpoint `{name}` is not a SageMaker endpoint name: up to 63 letters, digits and \
             hyphens, starting and ending with a letter or digit"
        )))
    }
}

/// The signing region: `--region`, then AWS_REGION, AWS_DEFAULT_REGION, then the region of
/// the AWS profile in use (AWS_PROFILE, else `default`).
fn region(flag: Option<&str>) -> Result<String, FluxError> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let (region, from) = if let Some(r) = flag {
        (r.to_string(), "--region".to_string())
    } else if let Some(r) = env("AWS_REGION") {
        (r, "AWS_REGION".into())
    } else if let Some(r) = env("AWS_DEFAULT_REGION") {
        (r, "AWS_DEFAULT_REGION".into())
    } else if let Some((r, file)) = profile_region() {
        (r, format!("the AWS profile in {}", file.display()))
    } else {
        return Err(FluxError::Usage(
            "no AWS region for --provider sagemaker: pass --region (e.g. us-east-1), or set \
             AWS_REGION, or a region in your AWS profile"
                .into(),
        ));
    };
    let region = region.trim().to_string();
    let valid = !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(region)
    } else {
        Err(FluxError::Usage(format!(
            "the AWS region `{region}` (from {from}) is not a region name such as us-east-1"
        )))
    }
}

/// `region` in the AWS config file's section for the profile in use. The profile file is
/// INI; only the one key is read (the credential chain reads the rest itself).
fn profile_region() -> Option<(String, PathBuf)> {
    let file = match std::env::var_os("AWS_CONFIG_FILE") {
        Some(f) => PathBuf::from(f),
        None => PathBuf::from(std::env::var_os("HOME")?)
            .join(".aws")
            .join("config"),
    };
    let text = std::fs::read_to_string(&file).ok()?;
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    region_in(&text, &profile).map(|r| (r, file))
}

fn region_in(config: &str, profile: &str) -> Option<String> {
    let mut in_section = false;
    for line in config.lines() {
        let line = line.trim();
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let section = section.trim();
            let name = section
                .strip_prefix("profile ")
                .map(str::trim)
                .unwrap_or(section);
            in_section = name == profile;
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && key.trim() == "region"
            && !value.trim().is_empty()
        {
            return Some(value.trim().to_string());
        }
    }
    None
}

/// The runtime's base: `--url`, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2, AWS_ENDPOINT_URL,
/// or the region's own. Every one given is checked (the SDK would panic on a malformed one).
fn base_url(flag: Option<&str>, region: &str) -> Result<Url, FluxError> {
    let mut chosen = None;
    for (from, value) in [
        ("--url", flag.map(str::to_string)),
        (ENDPOINT_ENV, std::env::var(ENDPOINT_ENV).ok()),
        (ENDPOINT_ENV_ALL, std::env::var(ENDPOINT_ENV_ALL).ok()),
    ] {
        let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let url = check_base(from, value.trim())?;
        chosen.get_or_insert(url);
    }
    match chosen {
        Some(url) => Ok(url),
        None => Url::parse(&format!(
            "https://runtime.sagemaker.{region}.amazonaws.com:{RUNTIME_PORT}"
        ))
        .map_err(|e| FluxError::Usage(format!("region `{region}` makes no valid host: {e}"))),
    }
}

fn check_base(from: &str, text: &str) -> Result<Url, FluxError> {
    let bad = |why: String| {
        FluxError::Usage(format!(
            "{from} `{text}` is not a SageMaker runtime address: {why}; expected \
             https://HOST[:PORT], e.g. https://runtime.sagemaker.us-east-1.amazonaws.com:8443 \
             or a `flux serve --sagemaker-listen` address"
        ))
    };
    let url = Url::parse(text).map_err(|e| bad(e.to_string()))?;
    if url.scheme() != "https" {
        return Err(bad(format!(
            "`{}:` is not https (the stream is HTTP/2 over TLS only)",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "it holds credentials; AWS credentials come from the AWS chain".into(),
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it has a path or query".into()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> StreamParams {
        StreamParams {
            model: Some("flux-general-en".into()),
            encoding: Some(crate::protocol::Encoding::Linear16),
            sample_rate: Some(16000),
            ..StreamParams::default()
        }
    }

    fn opts<'a>(name: Option<&'a str>, url: Option<&'a str>) -> SageMakerOptions<'a> {
        SageMakerOptions {
            endpoint_name: name,
            region: Some("eu-west-1"),
            url,
            controls: false,
        }
    }

    #[test]
    fn the_url_carries_the_route_and_the_flux_query() {
        let e = endpoint(
            opts(Some("my-flux"), Some("https://127.0.0.1:9443")),
            &params(),
        )
        .unwrap();
        assert_eq!(
            e.url.as_str(),
            "https://127.0.0.1:9443/endpoints/my-flux/invocations-bidirectional-stream?model=flux-general-en&encoding=linear16&sample_rate=16000"
        );
        assert!(!e.capabilities.force_end_turn && !e.capabilities.configure);
        assert!(e.capabilities.sends_connected);
        let path = e
            .headers
            .iter()
            .find(|(n, _)| n == INVOCATION_PATH_HEADER)
            .unwrap();
        assert_eq!(path.1.expose(), "v2/listen");
        assert!(
            e.refusal_hint(403)
                .unwrap()
                .contains("sagemaker:InvokeEndpointWithBidirectionalStream")
        );
    }

    #[test]
    fn the_default_host_follows_the_region() {
        let e = endpoint(opts(Some("x"), None), &params());
        // The environment may override it on a developer's machine; only check when not.
        if std::env::var_os(ENDPOINT_ENV).is_none() && std::env::var_os(ENDPOINT_ENV_ALL).is_none()
        {
            assert_eq!(
                e.unwrap().url.host_str(),
                Some("runtime.sagemaker.eu-west-1.amazonaws.com")
            );
        }
    }

    #[test]
    fn bad_names_and_urls_are_usage_errors() {
        for name in ["", "-x", "x-", "a_b", &"a".repeat(64)] {
            let e = endpoint(opts(Some(name), Some("https://h")), &params()).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
        }
        assert!(
            endpoint(opts(None, Some("https://h")), &params())
                .unwrap_err()
                .to_string()
                .contains("--endpoint NAME")
        );
        for url in [
            "not a url",
            "http://h:1",
            "wss://h",
            "https://h/x",
            "https://u:p@h",
            "https://h?x=1",
        ] {
            let e = endpoint(opts(Some("x"), Some(url)), &params()).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{url}: {e}");
            assert!(e.to_string().contains("--url"), "{e}");
        }
    }

    #[test]
    fn the_profile_region_is_read_from_its_section() {
        let config = "[default]\nregion = us-east-1\n[profile work]\noutput=json\nregion= eu-central-1\n[sso-session s]\nregion = ap-south-1\n";
        assert_eq!(region_in(config, "default").as_deref(), Some("us-east-1"));
        assert_eq!(region_in(config, "work").as_deref(), Some("eu-central-1"));
        assert_eq!(region_in(config, "other"), None);
        assert_eq!(region(Some("Not A Region")).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn sagemaker_flags_elsewhere_are_named() {
        let e = refuse_flags(None, Some("us-east-1"), false).unwrap_err();
        assert!(
            e.to_string()
                .contains("--region is for --provider sagemaker")
        );
        refuse_flags(None, None, false).unwrap();
    }
}
