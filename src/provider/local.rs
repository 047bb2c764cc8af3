//! `--provider local`: the local recognizer (`flux serve --asr moonshine`'s) running inside
//! flux, reached over an in-process pipe that the caller supplies. The dialect is Deepgram's
//! `/v2/listen`, whole: the same query, `Connected`, `Configure`, `ForceEndTurn` and
//! `CloseStream`. There is no host, so no TLS and no credentials; the URL only names what
//! answers (`local://moonshine-base-en/v2/listen?...`), for people and JSONL.

use super::{Capabilities, Carrier, Endpoint, RefusalHints};
use crate::error::FluxError;
use crate::protocol::{LISTEN_PATH, StreamParams};
use std::sync::Arc;
use url::Url;

/// The provider's name in JSONL and on stderr.
pub const NAME: &str = "local";
/// The URL's host: the model that answers.
pub const HOST: &str = "moonshine-base-en";

/// The endpoint for these parameters. `transport` reaches the in-process server; `None` gives
/// an endpoint that only says where it is (`flux doctor` before the model has loaded).
/// `force_end_turn`: false sends silence to end the last turn instead (`--no-force-end-turn`).
pub fn endpoint(
    params: &StreamParams,
    force_end_turn: bool,
    transport: Option<Arc<dyn crate::transport::Transport>>,
) -> Result<Endpoint, FluxError> {
    // Constant but for the query, which is appended as pairs (that cannot fail).
    let mut url = Url::parse(&format!("local://{HOST}{LISTEN_PATH}"))
        .map_err(|e| FluxError::Usage(format!("cannot make the local endpoint's URL: {e}")))?;
    url.query_pairs_mut().extend_pairs(params.to_query_pairs());
    Ok(Endpoint {
        provider: NAME,
        url,
        headers: Vec::new(),
        capabilities: Capabilities {
            force_end_turn,
            configure: true,
            sends_connected: true,
            close_finalizes: false,
            clear_state: false,
        },
        tls: None,
        hints: RefusalHints::default(),
        adapter: None,
        transport: transport.map(Carrier),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Encoding;

    #[test]
    fn the_url_names_the_model_and_carries_the_query() {
        let params = StreamParams {
            model: Some("flux-general-en".into()),
            encoding: Some(Encoding::Linear16),
            sample_rate: Some(16000),
            eot_threshold: Some(0.8),
            ..Default::default()
        };
        let e = endpoint(&params, true, None).unwrap();
        assert_eq!(
            e.url.as_str(),
            "local://moonshine-base-en/v2/listen?model=flux-general-en&encoding=linear16&sample_rate=16000&eot_threshold=0.8"
        );
        assert_eq!(e.provider, "local");
        assert!(e.headers.is_empty() && e.capabilities.force_end_turn);
        let silence = endpoint(&params, false, None).unwrap();
        assert!(!silence.capabilities.force_end_turn);
    }
}
