//! The query-string form of `/v2/listen`'s parameters: writing them (repeated keys for lists,
//! lowercase booleans, thresholds as the docs write them) and reading them as the server does
//! (unknown, `/v1/listen`-only, malformed and repeated single-valued keys refused).

use super::models::MODELS;
use super::values::{NAMES, V1_ONLY, format_number};
use super::{Dialect, Encoding, ParamError, Redact, StreamParams, bad};

impl StreamParams {
    /// The query string pairs, in a stable order; lists as repeated keys, booleans lowercase.
    pub fn to_query_pairs(&self) -> Vec<(&'static str, String)> {
        let mut q: Vec<(&'static str, String)> = Vec::new();
        if let Some(m) = &self.model {
            q.push(("model", m.clone()));
        }
        if let Some(e) = self.encoding {
            q.push(("encoding", e.as_str().to_string()));
        }
        if let Some(r) = self.sample_rate {
            q.push(("sample_rate", r.to_string()));
        }
        if let Some(x) = self.eot_threshold {
            q.push(("eot_threshold", format_number(x)));
        }
        if let Some(x) = self.eager_eot_threshold {
            q.push(("eager_eot_threshold", format_number(x)));
        }
        if let Some(x) = self.eot_timeout_ms {
            q.push(("eot_timeout_ms", x.to_string()));
        }
        q.extend(self.keyterms.iter().map(|k| ("keyterm", k.clone())));
        q.extend(
            self.language_hints
                .iter()
                .map(|l| ("language_hint", l.clone())),
        );
        if let Some(b) = self.numerals {
            q.push(("numerals", b.to_string()));
        }
        if let Some(b) = self.profanity_filter {
            q.push(("profanity_filter", b.to_string()));
        }
        q.extend(
            self.redact
                .iter()
                .map(|r| ("redact", r.as_str().to_string())),
        );
        if let Some(b) = self.mip_opt_out {
            q.push(("mip_opt_out", b.to_string()));
        }
        q.extend(self.tags.iter().map(|t| ("tag", t.clone())));
        q
    }

    /// Reads a query string as the server does: unknown and v1-only parameters, malformed
    /// values and repeated single-valued keys are refused; then every rule is checked.
    pub fn from_query(query: &str, dialect: Dialect) -> Result<StreamParams, ParamError> {
        let mut p = StreamParams::default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let (key, value) = (key.as_ref(), value.into_owned());
            if !dialect.accepts(key) && is_known(key) {
                return Err(bad(
                    key,
                    format!(
                        "{key} is not supported by Cloudflare's @cf/deepgram/flux; it accepts only \
                         encoding, sample_rate, eot_threshold, eager_eot_threshold, \
                         eot_timeout_ms, keyterm, mip_opt_out and tag"
                    ),
                ));
            }
            match key {
                "model" => set_once(&mut p.model, key, value)?,
                "encoding" => {
                    let enc = Encoding::parse(&value).ok_or_else(|| {
                        bad(
                            key,
                            format!(
                                "encoding={value} is not supported; use one of linear16, \
                                 linear32, mulaw, alaw, opus, ogg-opus (or omit it for WAV)"
                            ),
                        )
                    })?;
                    set_once(&mut p.encoding, key, enc)?;
                }
                "sample_rate" => {
                    let rate = value.parse::<u32>().map_err(|_| {
                        bad(
                            key,
                            format!("sample_rate={value} is not a whole number of Hz"),
                        )
                    })?;
                    set_once(&mut p.sample_rate, key, rate)?;
                }
                "eot_threshold" => set_once(&mut p.eot_threshold, key, number(key, &value)?)?,
                "eager_eot_threshold" => {
                    set_once(&mut p.eager_eot_threshold, key, number(key, &value)?)?
                }
                "eot_timeout_ms" => {
                    let ms = value.parse::<u32>().map_err(|_| {
                        bad(
                            key,
                            format!("eot_timeout_ms={value} is not a whole number of milliseconds"),
                        )
                    })?;
                    set_once(&mut p.eot_timeout_ms, key, ms)?;
                }
                "keyterm" => p.keyterms.push(value),
                "language_hint" => p.language_hints.push(value),
                "numerals" => set_once(&mut p.numerals, key, boolean(key, &value)?)?,
                "profanity_filter" => {
                    set_once(&mut p.profanity_filter, key, boolean(key, &value)?)?
                }
                "redact" => p.redact.push(Redact::parse(&value).ok_or_else(|| {
                    bad(
                        key,
                        format!(
                            "redact={value} is not supported; use numbers or aggressive_numbers"
                        ),
                    )
                })?),
                "mip_opt_out" => set_once(&mut p.mip_opt_out, key, boolean(key, &value)?)?,
                "tag" => p.tags.push(value),
                _ if V1_ONLY.contains(&key) => {
                    return Err(bad(
                        key,
                        format!(
                            "{key} is a /v1/listen parameter; /v2/listen (Flux) does not accept it"
                        ),
                    ));
                }
                _ => {
                    return Err(bad(key, format!("unknown query parameter `{key}`")));
                }
            }
        }
        if dialect == Dialect::Deepgram && p.model.is_none() {
            return Err(bad(
                "model",
                format!("model is required; use {}", MODELS.join(" or ")),
            ));
        }
        p.validate(dialect)?;
        Ok(p)
    }
}

fn is_known(key: &str) -> bool {
    NAMES.contains(&key)
}

fn set_once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), ParamError> {
    if slot.is_some() {
        return Err(bad(key, format!("{key} was given more than once")));
    }
    *slot = Some(value);
    Ok(())
}

fn number(key: &str, value: &str) -> Result<f64, ParamError> {
    value
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| bad(key, format!("{key}={value} is not a number")))
}

fn boolean(key: &str, value: &str) -> Result<bool, ParamError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(
            key,
            format!("{key}={value} must be true or false (lowercase)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::params::MULTILINGUAL_MODEL;

    fn full() -> StreamParams {
        StreamParams {
            model: Some(MULTILINGUAL_MODEL.into()),
            encoding: Some(Encoding::Linear16),
            sample_rate: Some(16000),
            eot_threshold: Some(0.8),
            eager_eot_threshold: Some(0.5),
            eot_timeout_ms: Some(7000),
            keyterms: vec!["customer service".into(), "Flux".into()],
            language_hints: vec!["en".into(), "es".into()],
            numerals: Some(true),
            profanity_filter: Some(false),
            redact: vec![Redact::Numbers],
            mip_opt_out: Some(true),
            tags: vec!["ci".into(), "run 7".into()],
        }
    }

    fn query(p: &StreamParams) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(p.to_query_pairs())
            .finish()
    }

    #[test]
    fn query_string_round_trips_with_repeated_keys_and_lowercase_booleans() {
        let p = full();
        let q = query(&p);
        assert_eq!(
            q,
            "model=flux-general-multi&encoding=linear16&sample_rate=16000&eot_threshold=0.8&\
             eager_eot_threshold=0.5&eot_timeout_ms=7000&keyterm=customer+service&keyterm=Flux&\
             language_hint=en&language_hint=es&numerals=true&profanity_filter=false&\
             redact=numbers&mip_opt_out=true&tag=ci&tag=run+7"
        );
        assert_eq!(StreamParams::from_query(&q, Dialect::Deepgram).unwrap(), p);
    }

    #[test]
    fn each_rule_is_enforced() {
        let cases: Vec<(&str, &str, u16)> = vec![
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&language=en",
                "language",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&foo=1",
                "foo",
                400,
            ),
            (
                "model=flux&encoding=linear16&sample_rate=16000",
                "model",
                403,
            ),
            ("encoding=linear16&sample_rate=16000", "model", 400),
            (
                "model=flux-general-en&encoding=linear16",
                "sample_rate",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=22050",
                "sample_rate",
                400,
            ),
            (
                "model=flux-general-en&encoding=mp3&sample_rate=16000",
                "encoding",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&eot_threshold=0.4",
                "eot_threshold",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&eot_threshold=1.1",
                "eot_threshold",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&eager_eot_threshold=0.8",
                "eager_eot_threshold",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&eot_threshold=0.6&eager_eot_threshold=0.7",
                "eager_eot_threshold",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&eot_timeout_ms=400",
                "eot_timeout_ms",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&eot_timeout_ms=60001",
                "eot_timeout_ms",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&language_hint=en",
                "language_hint",
                400,
            ),
            (
                "model=flux-general-multi&encoding=linear16&sample_rate=16000&language_hint=xx",
                "language_hint",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&numerals=True",
                "numerals",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&redact=pci",
                "redact",
                400,
            ),
            (
                "model=flux-general-en&encoding=linear16&sample_rate=16000&keyterm=",
                "keyterm",
                400,
            ),
            (
                "model=flux-general-en&model=flux-general-en&encoding=linear16&sample_rate=16000",
                "model",
                400,
            ),
            (
                "model=flux-general-en&sample_rate=16000",
                "sample_rate",
                400,
            ),
        ];
        for (q, param, status) in cases {
            let err = StreamParams::from_query(q, Dialect::Deepgram).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{q}: {err}");
            assert_eq!(err.status, status, "{q}: {err}");
        }
        // The boundaries themselves are valid.
        StreamParams::from_query(
            "model=flux-general-multi&encoding=linear16&sample_rate=8000&eot_threshold=1.0&eager_eot_threshold=0.9&eot_timeout_ms=60000&language_hint=en-GB",
            Dialect::Deepgram,
        )
        .unwrap();
        // WAV (containerized) audio: no encoding, no sample rate.
        StreamParams::from_query("model=flux-general-en", Dialect::Deepgram).unwrap();
    }

    #[test]
    fn cloudflare_accepts_only_its_subset() {
        let ok = "encoding=linear16&sample_rate=16000&eot_threshold=0.9&eager_eot_threshold=0.4&eot_timeout_ms=5000&keyterm=a&keyterm=b&mip_opt_out=false&tag=x";
        let p = StreamParams::from_query(ok, Dialect::Cloudflare).unwrap();
        assert_eq!(p.keyterms, vec!["a", "b"]);
        for (q, param) in [
            (
                "encoding=linear16&sample_rate=16000&model=flux-general-en",
                "model",
            ),
            (
                "encoding=linear16&sample_rate=16000&numerals=true",
                "numerals",
            ),
            (
                "encoding=linear16&sample_rate=16000&language_hint=en",
                "language_hint",
            ),
            ("encoding=mulaw&sample_rate=8000", "encoding"),
            ("sample_rate=16000", "encoding"),
            (
                "encoding=linear16&sample_rate=16000&eot_threshold=1.0",
                "eot_threshold",
            ),
        ] {
            let err = StreamParams::from_query(q, Dialect::Cloudflare).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{q}: {err}");
        }
    }
}
