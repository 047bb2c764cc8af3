//! Which models `/v2/listen` serves, and what the names people mistake for them are.
//!
//! Deepgram's API description lists exactly two Flux models (`ListenV2Model`), and hosted
//! Deepgram answers any other name with a 403 that reads like a permissions problem. The most
//! common mistake is a name from another Deepgram product (`nova-3` is the default of
//! `/v1/listen`), so those are recognised by family and named in the error.

use super::{INSUFFICIENT_PERMISSIONS, ParamError};

/// Models Flux serves.
pub const MODELS: [&str; 2] = ["flux-general-en", "flux-general-multi"];
pub const DEFAULT_MODEL: &str = "flux-general-en";
pub const MULTILINGUAL_MODEL: &str = "flux-general-multi";

/// Deepgram model families that are not Flux, by name prefix, with what they are.
const NON_FLUX: [(&str, &str); 6] = [
    (
        "nova",
        "a Deepgram Nova speech-to-text model, served on /v1/listen",
    ),
    ("whisper", "Deepgram's hosted Whisper, served on /v1/listen"),
    (
        "enhanced",
        "a Deepgram Enhanced model (legacy), served on /v1/listen",
    ),
    (
        "base",
        "a Deepgram Base model (legacy), served on /v1/listen",
    ),
    (
        "aura",
        "a Deepgram Aura text-to-speech voice, served on /v1/speak",
    ),
    (
        "@cf/",
        "a Cloudflare Workers AI model id, which only Cloudflare's URLs take",
    ),
];

/// What a non-Flux Deepgram model name is (`nova-3` → "a Deepgram Nova ..."), if it belongs to
/// a known family. A family name matches whole (`nova`) or before a `-` (`nova-2-meeting`).
pub fn non_flux_family(model: &str) -> Option<&'static str> {
    let lower = model.trim().to_ascii_lowercase();
    NON_FLUX.iter().find_map(|(prefix, what)| {
        let rest = lower.strip_prefix(prefix)?;
        (prefix.ends_with('/') || rest.is_empty() || rest.starts_with('-')).then_some(*what)
    })
}

/// Refuses a model `/v2/listen` does not serve, saying what the name is when it is another
/// Deepgram product's. Status 403 and `INSUFFICIENT_PERMISSIONS`, as hosted Deepgram answers.
pub fn check_model(model: &str) -> Result<(), ParamError> {
    if MODELS.contains(&model) {
        return Ok(());
    }
    let what = match non_flux_family(model) {
        Some(family) => format!("`{model}` is {family}, not a Flux model"),
        None if model.trim().eq_ignore_ascii_case("flux") => {
            format!("`{model}` names the family, not a model")
        }
        None => format!("`{model}` is not a Flux model"),
    };
    Err(ParamError {
        status: 403,
        code: INSUFFICIENT_PERMISSIONS,
        param: Some("model".into()),
        message: format!("{what}; Flux (/v2/listen) serves {}", MODELS.join(" and ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flux_models_pass_and_others_are_named() {
        for m in MODELS {
            check_model(m).unwrap();
        }
        for (model, family) in [
            ("nova-3", "Nova"),
            ("nova-2-phonecall", "Nova"),
            ("Nova", "Nova"),
            ("whisper-large", "Whisper"),
            ("enhanced-general", "Enhanced"),
            ("base", "Base"),
            ("aura-2-thalia-en", "Aura"),
            ("@cf/deepgram/flux", "Cloudflare"),
        ] {
            let err = check_model(model).unwrap_err();
            assert_eq!((err.status, err.code), (403, INSUFFICIENT_PERMISSIONS));
            assert_eq!(err.param.as_deref(), Some("model"));
            assert!(err.message.contains(family), "{model}: {err}");
            assert!(err.message.contains(&format!("`{model}`")), "{err}");
            assert!(
                err.message
                    .contains("flux-general-en and flux-general-multi"),
                "{err}"
            );
        }
        // Family names match whole words only.
        assert_eq!(non_flux_family("novacorp-asr"), None);
        assert_eq!(non_flux_family("baseline"), None);
        assert!(check_model("flux").unwrap_err().message.contains("family"));
        let other = check_model("my-model").unwrap_err();
        assert!(
            other.message.starts_with("`my-model` is not a Flux model"),
            "{other}"
        );
    }
}
