//! From the stream flags to a provider's [`Endpoint`]: which provider's flags apply, its
//! credentials by the usual precedence (flags > environment > profile), the user's own
//! headers and CAs. `flux file`/`listen`/`load` and `flux doctor` build endpoints here.

use super::config::credentials::{self, Kind, Places};
use super::{config, fireworks, local};
use crate::cli::{Provider, StreamArgs};
use crate::error::FluxError;
use crate::protocol::StreamParams;
use crate::provider::cloudflare::{self, CloudflareOptions};
use crate::provider::deepgram::{self, DeepgramOptions};
use crate::provider::sagemaker;
use crate::provider::{self, Endpoint};

/// Flags of another provider typed for this one are usage errors naming the flag. From a
/// profile they are ignored: a [default] table may serve several providers.
pub(super) fn refuse_foreign_flags(stream: &StreamArgs) -> Result<(), FluxError> {
    if stream.provider != Provider::Sagemaker {
        let s = stream;
        sagemaker::refuse_flags(
            s.endpoint.as_deref(),
            s.region.as_deref(),
            s.sagemaker_controls,
        )?;
    }
    if stream.provider == Provider::Deepgram {
        let typed =
            |key: &str| !matches!(config::current().origin(key), config::Origin::Profile(_));
        for (flag, given) in [
            (
                "--account-id",
                stream.account_id.is_some() && typed("account_id"),
            ),
            ("--gateway", stream.gateway.is_some() && typed("gateway")),
        ] {
            if given {
                return Err(FluxError::Usage(format!(
                    "{flag} is for --provider cloudflare"
                )));
            }
        }
    }
    Ok(())
}

/// The user's own headers (`--header`) and CAs (`--ca-cert`) on a provider's endpoint.
pub(super) fn with_user_settings(
    endpoint: &mut Endpoint,
    stream: &StreamArgs,
) -> Result<(), FluxError> {
    let user_headers = stream
        .headers
        .iter()
        .map(|h| provider::parse_header(h.expose()))
        .collect::<Result<Vec<_>, _>>()?;
    provider::with_user_headers(endpoint, user_headers);
    if !stream.ca_certs.is_empty() {
        endpoint.tls = Some(crate::transport::tls::client_config(&stream.ca_certs)?);
    }
    Ok(())
}

/// The provider's endpoint for these flags.
pub(super) fn endpoint(stream: &StreamArgs, params: &StreamParams) -> Result<Endpoint, FluxError> {
    refuse_foreign_flags(stream)?;
    match stream.provider {
        Provider::Deepgram => {
            let places = Places {
                key_file: stream.api_key_file.as_deref(),
                token_file: stream.access_token_file.as_deref(),
                key_var: deepgram::API_KEY_ENV,
                token_var: Some(deepgram::ACCESS_TOKEN_ENV),
            };
            let credential = match credentials::resolve(config::current(), &places)? {
                Some((Kind::AccessToken, token)) => Some(deepgram::Credential::AccessToken(token)),
                Some((Kind::ApiKey, key)) => Some(deepgram::Credential::ApiKey(key)),
                None => None,
            };
            deepgram::endpoint_with(
                DeepgramOptions {
                    base_url: stream.url.as_deref(),
                    api_key: None,
                    allow_insecure: stream.allow_insecure,
                    force_end_turn: !stream.no_force_end_turn,
                },
                credential,
                params,
            )
        }
        Provider::Cloudflare => cloudflare::endpoint(
            CloudflareOptions {
                url: stream.url.as_deref(),
                gateway: stream.gateway.as_deref(),
                account_id: cloudflare::account_id(stream.account_id.as_deref()),
                api_token: cloudflare_token(stream)?,
                allow_insecure: stream.allow_insecure,
            },
            params,
        ),
        Provider::Fireworks => fireworks::endpoint(stream).map(|(e, _)| e),
        Provider::Sagemaker => sagemaker_endpoint(stream, params),
        Provider::Local => local::endpoint(stream, params),
    }
}

/// Cloudflare's API token by the usual precedence; temporary tokens are Deepgram's.
fn cloudflare_token(stream: &StreamArgs) -> Result<Option<provider::Secret>, FluxError> {
    let from_profile = matches!(
        config::current().origin("access_token_file"),
        config::Origin::Profile(_)
    );
    // From a profile it is ignored: a [default] table may serve several providers.
    if stream.access_token_file.is_some() && !from_profile {
        return Err(FluxError::Usage(
            "--access-token-file is for --provider deepgram (Deepgram's temporary tokens); \
             Cloudflare takes its API token from --api-key-file or CLOUDFLARE_API_TOKEN"
                .into(),
        ));
    }
    let places = Places {
        key_file: stream.api_key_file.as_deref(),
        token_file: None,
        key_var: cloudflare::TOKEN_ENV,
        token_var: None,
    };
    Ok(credentials::resolve(config::current(), &places)?.map(|(_, token)| token))
}

/// `--provider sagemaker`: credentials come from the AWS chain, so the flags that carry
/// other providers' credentials or headers are refused rather than ignored.
pub(super) fn sagemaker_endpoint(
    stream: &StreamArgs,
    params: &StreamParams,
) -> Result<Endpoint, FluxError> {
    for (flag, given) in [
        ("--api-key-file", stream.api_key_file.is_some()),
        ("--account-id", stream.account_id.is_some()),
        ("--gateway", stream.gateway.is_some()),
        ("--header", !stream.headers.is_empty()),
    ] {
        if given {
            return Err(FluxError::Usage(format!(
                "{flag} is not used by --provider sagemaker (AWS credentials come from the \
                 AWS credential chain: environment, AWS_PROFILE, SSO, instance role)"
            )));
        }
    }
    sagemaker::endpoint(
        sagemaker::SageMakerOptions {
            endpoint_name: stream.endpoint.as_deref(),
            region: stream.region.as_deref(),
            url: stream.url.as_deref(),
            controls: stream.sagemaker_controls,
        },
        params,
    )
}
