//! `flux serve`'s Fireworks dialect: the upgrade (route, auth, parameters) here, the
//! connection in `session`, the segment messages in `segmenter`.
//!
//! Routes: `/v1/audio/transcriptions/streaming` (Fireworks' path on both its hosts; segment
//! ids as integers) and `/v2/audio/transcriptions/streaming` (flux serve's stand-in for the v2
//! host, which some clients see sending ids as strings). Auth: the raw key in `Authorization`
//! (as Fireworks documents), `Bearer KEY` (which third-party clients send), or the
//! `Authorization` query parameter (for browsers). Unknown parameters are refused with 400, as
//! the service does; refusals carry `{"error": {"message", "code"}}`.

pub mod segmenter;
pub mod session;

use crate::protocol::{Dialect, Encoding, StreamParams};
use crate::provider::fireworks::{LANGUAGES, MODEL_V1, MODEL_V2};
use crate::serve::handshake::{Accepted, Refusal, RequestHead};
use serde_json::json;

pub const PATH_V1: &str = "/v1/audio/transcriptions/streaming";
pub const PATH_V2: &str = "/v2/audio/transcriptions/streaming";

/// What a Fireworks connection was asked for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FireworksConn {
    /// Send segment ids as strings (the v2 stand-in) rather than integers.
    pub string_ids: bool,
    /// `language`, echoed in every transcript (`en` when not given).
    pub language: Option<String>,
}

/// Whether a path is one of the Fireworks routes, and which.
pub fn route(path: &str) -> Option<bool> {
    match path {
        PATH_V1 => Some(false),
        PATH_V2 => Some(true),
        _ => None,
    }
}

fn refusal(status: u16, code: &str, message: &str) -> Refusal {
    Refusal {
        status,
        body: json!({"error": {"message": message, "code": code}}).to_string(),
        content_type: "application/json",
        dg_error: message.to_string(),
    }
}

/// Decides an upgrade on a Fireworks route (`route` said yes).
pub fn evaluate(
    head: &RequestHead,
    string_ids: bool,
    api_key: Option<&str>,
    reject: Option<&(u16, Option<String>)>,
) -> Result<Accepted, Refusal> {
    if let Some((status, body)) = reject {
        let mut r = refusal(*status, "injected", "flux serve: injected refusal");
        if let Some(b) = body {
            r.body = b.clone();
        }
        return Err(r);
    }
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(head.query.as_bytes())
        .into_owned()
        .collect();
    if let Some(key) = api_key {
        let given = head
            .header("authorization")
            .map(str::to_string)
            .or_else(|| {
                pairs
                    .iter()
                    .find(|(k, _)| k == "Authorization")
                    .map(|(_, v)| v.clone())
            });
        let Some(given) = given else {
            return Err(refusal(
                401,
                "unauthorized",
                "Missing credentials: send the API key in the Authorization header",
            ));
        };
        let given = given.trim();
        let raw = given
            .strip_prefix("Bearer ")
            .or_else(|| given.strip_prefix("bearer "))
            .unwrap_or(given);
        if raw.trim() != key {
            return Err(refusal(401, "unauthorized", "Invalid API key"));
        }
    }
    let mut conn = FireworksConn {
        string_ids,
        language: None,
    };
    for (k, v) in &pairs {
        check_param(k, v, &mut conn).map_err(|m| refusal(400, "invalid_request", &m))?;
    }
    Ok(Accepted {
        dialect: Dialect::Cloudflare,
        params: StreamParams {
            encoding: Some(Encoding::Linear16),
            sample_rate: Some(crate::provider::fireworks::SAMPLE_RATE),
            ..StreamParams::default()
        },
        subprotocol: None,
        fireworks: Some(conn),
    })
}

/// One query parameter, as the service checks it.
fn check_param(key: &str, value: &str, conn: &mut FireworksConn) -> Result<(), String> {
    match key {
        "Authorization" => Ok(()),
        "response_format" => match value {
            "verbose_json" | "json" | "text" => Ok(()),
            _ => Err(format!(
                "Invalid response_format `{value}`: use verbose_json"
            )),
        },
        "timestamp_granularities" => {
            match value
                .split(',')
                .map(str::trim)
                .find(|g| !matches!(*g, "word" | "segment"))
            {
                Some(bad) => Err(format!(
                    "Invalid timestamp_granularities `{bad}`: use word, segment or both"
                )),
                None => Ok(()),
            }
        }
        "language" => {
            if LANGUAGES.contains(&value) {
                conn.language = Some(value.to_string());
                Ok(())
            } else {
                Err(format!("Unsupported language `{value}`"))
            }
        }
        "prompt" => Ok(()),
        "temperature" => match value.parse::<f64>() {
            Ok(t) if (0.0..=1.0).contains(&t) => Ok(()),
            _ => Err(format!(
                "Invalid temperature `{value}`: use a number from 0 to 1"
            )),
        },
        // The legacy model parameter, still sent by older clients.
        "model" if value == MODEL_V1 || value == MODEL_V2 => Ok(()),
        other => Err(format!("Unknown parameter `{other}`")),
    }
}

/// A request to a Fireworks route that is not a WebSocket upgrade.
pub fn not_websocket(head: &RequestHead) -> Option<Refusal> {
    route(&head.path)?;
    Some(refusal(
        426,
        "upgrade_required",
        "Streaming transcription is WebSocket only: connect with a WebSocket client",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(query: &str, auth: Option<&str>) -> RequestHead {
        RequestHead {
            method: "GET".into(),
            path: PATH_V1.into(),
            query: query.into(),
            headers: auth
                .map(|a| vec![("authorization".to_string(), a.to_string())])
                .unwrap_or_default(),
        }
    }

    const Q: &str = "response_format=verbose_json&timestamp_granularities=word,segment&language=en";

    #[test]
    fn the_key_goes_raw_or_as_bearer_or_in_the_query() {
        for ok in [
            head(Q, Some("k")),
            head(Q, Some("Bearer k")),
            head(&format!("{Q}&Authorization=k"), None),
        ] {
            let a = evaluate(&ok, false, Some("k"), None).unwrap();
            assert_eq!(a.fireworks.unwrap().language.as_deref(), Some("en"));
        }
        for bad in [
            head(Q, None),
            head(Q, Some("nope")),
            head(Q, Some("Token k")),
        ] {
            let r = evaluate(&bad, false, Some("k"), None).unwrap_err();
            assert_eq!(r.status, 401);
            assert!(r.body.contains("\"error\""), "{}", r.body);
        }
        assert!(
            evaluate(&head(Q, None), true, None, None)
                .unwrap()
                .fireworks
                .unwrap()
                .string_ids
        );
    }

    #[test]
    fn unknown_and_bad_parameters_are_400() {
        for q in [
            "model=whisper-v3",
            "eot_threshold=0.7",
            "language=english",
            "temperature=2",
            "response_format=srt",
            "timestamp_granularities=char",
        ] {
            let r = evaluate(&head(q, None), false, None, None).unwrap_err();
            assert_eq!(r.status, 400, "{q}");
        }
        assert_eq!(route("/v1/audio/transcriptions/streaming"), Some(false));
        assert_eq!(route("/v2/listen"), None);
    }
}
