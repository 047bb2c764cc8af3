//! `flux config`: the effective settings, one per line as `key = value  # where from`, then the
//! credential that would be used. Credentials are named by where they are read from, never
//! shown; header values and credentials in a URL are masked.

use super::credentials::{self, Places};
use super::{Origin, Resolved};
use crate::provider::{Secret, parse_header, redact_url};

/// The text `flux config` prints. `headers` are the `--header` values typed (masked here);
/// `env` reads the environment.
pub fn render(
    resolved: &Resolved,
    headers: &[Secret],
    env: &dyn Fn(&str) -> Option<String>,
) -> String {
    let mut out = String::from(
        "# The settings `flux file` and `flux listen` would use, and where each came from\n\
         # (flags > environment > profile > defaults; docs/configuration.md).\n",
    );
    let profile = &resolved.profile;
    out.push_str(&match (&profile.file, &profile.name) {
        (Some(f), Some(n)) => format!("# config file: {}, profile {n}\n", f.display()),
        (Some(f), None) => format!("# config file: {}, no profile\n", f.display()),
        (None, _) => "# config file: none\n".to_string(),
    });
    for (key, values) in &resolved.values {
        let origin = label(&resolved.origin(key));
        let value = match values {
            None => "(not set)".to_string(),
            Some(v) if key == "url" => v
                .iter()
                .map(|u| match url::Url::parse(u) {
                    // Shown as given, unless it holds credentials.
                    Ok(parsed) if redact_url(&parsed) != parsed.as_str() => redact_url(&parsed),
                    _ => u.clone(),
                })
                .map(|u| quote(&u))
                .collect::<Vec<_>>()
                .join(", "),
            Some(v) if multiple(key) => {
                format!(
                    "[{}]",
                    v.iter().map(|x| quote(x)).collect::<Vec<_>>().join(", ")
                )
            }
            Some(v) => v.iter().map(|x| quote(x)).collect::<Vec<_>>().join(", "),
        };
        out.push_str(&format!("{key} = {value}  # {origin}\n"));
    }
    if !headers.is_empty() {
        let names: Vec<String> = headers
            .iter()
            .map(|h| match parse_header(h.expose()) {
                Ok((name, _)) => quote(&format!("{name}: ***")),
                Err(_) => quote("(not a header) ***"),
            })
            .collect();
        out.push_str(&format!("header = [{}]  # flag\n", names.join(", ")));
    }
    // Settings of one command only (`device` for listen, `jobs` for file).
    for s in &profile.settings {
        let shown = resolved.values.iter().any(|(k, _)| *k == s.key);
        if !shown && s.key != super::API_KEY_ENV_KEY {
            let v: Vec<String> = s.values.iter().map(|x| quote(x)).collect();
            out.push_str(&format!(
                "{} = {}  # {} (only where the command has --{})\n",
                s.key,
                v.join(", "),
                s.place,
                s.key.replace('_', "-")
            ));
        }
    }
    out.push_str(&credential_line(resolved, env));
    out
}

/// `credential = "…"  # origin`, with the credentials that are set but not used.
fn credential_line(resolved: &Resolved, env: &dyn Fn(&str) -> Option<String>) -> String {
    let value = |key: &str| {
        resolved
            .values
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_ref())
            .and_then(|v| v.first().cloned())
    };
    let provider = value("provider").unwrap_or_else(|| "deepgram".into());
    let key_file = value("api_key_file").map(std::path::PathBuf::from);
    let token_file = value("access_token_file").map(std::path::PathBuf::from);
    let deepgram = provider == "deepgram";
    let places = Places {
        key_file: key_file.as_deref(),
        token_file: token_file.as_deref().filter(|_| deepgram),
        key_var: if deepgram {
            crate::provider::deepgram::API_KEY_ENV
        } else {
            crate::provider::cloudflare::TOKEN_ENV
        },
        token_var: deepgram.then_some(crate::provider::deepgram::ACCESS_TOKEN_ENV),
    };
    let all = credentials::candidates(resolved, &places, env);
    let (chosen, _) = credentials::choose(&all);
    let mut out = match chosen {
        Some(c) => {
            let unset = match &c.source {
                credentials::Source::Var(v) => env(v).is_none_or(|x| x.trim().is_empty()),
                credentials::Source::File(_) => false,
            };
            let state = if unset {
                "NOT SET: export it, or the run fails"
            } else {
                "value hidden"
            };
            format!(
                "credential = {}  # {}\n",
                quote(&format!("{} ({state})", c.describe())),
                label(&c.origin)
            )
        }
        None => "credential = (none)  # no key or token is set\n".to_string(),
    };
    for c in all.iter().skip(1) {
        out.push_str(&format!("# also set, not used: {}\n", c.describe()));
    }
    out
}

fn label(origin: &Origin) -> String {
    match origin {
        Origin::Flag => "flag".into(),
        Origin::Env(v) => format!("env {v}"),
        Origin::Profile(p) => p.to_string(),
        Origin::Default => "default".into(),
    }
}

/// Settings that collect several values, shown as lists.
fn multiple(key: &str) -> bool {
    matches!(
        key,
        "keyterm" | "keyterm_file" | "language_hint" | "tag" | "redact" | "ca_cert"
    )
}

/// A value as TOML would write it: numbers and booleans bare, the rest quoted.
fn quote(v: &str) -> String {
    let bare = v == "true" || v == "false" || v.parse::<f64>().is_ok_and(f64::is_finite);
    if bare {
        v.to_string()
    } else {
        serde_json::to_string(v).unwrap_or_else(|_| format!("\"{v}\""))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Place, Profile, Setting};
    use super::*;

    #[test]
    fn settings_show_their_origin_and_credentials_stay_hidden() {
        let place = Place {
            file: "/c.toml".into(),
            line: 2,
            table: "[default]".into(),
        };
        let mut r = Resolved {
            profile: Profile {
                file: Some("/c.toml".into()),
                name: None,
                settings: vec![Setting {
                    key: "device".into(),
                    values: vec!["USB".into()],
                    place: place.clone(),
                }],
            },
            ..Resolved::default()
        };
        r.values = vec![
            ("provider".into(), Some(vec!["deepgram".into()])),
            (
                "url".into(),
                Some(vec!["wss://u:pw@x.example/?token=t".into()]),
            ),
            ("keyterm".into(), Some(vec!["a b".into(), "c".into()])),
            ("pace".into(), Some(vec!["2".into()])),
            ("model".into(), None),
        ];
        r.origins.insert("pace".into(), Origin::Profile(place));
        r.origins
            .insert("url".into(), Origin::Env("FLUX_URL".into()));
        let env = |k: &str| (k == "DEEPGRAM_API_KEY").then(|| "sk-canary".to_string());
        let text = render(&r, &[Secret::new("X-Key: sk-canary")], &env);
        for line in [
            "# config file: /c.toml, no profile",
            "provider = \"deepgram\"  # default",
            "url = \"wss://***:***@x.example/?token=***\"  # env FLUX_URL",
            "keyterm = [\"a b\", \"c\"]  # default",
            "pace = 2  # [default] in /c.toml:2",
            "model = (not set)  # default",
            "header = [\"x-key: ***\"]  # flag",
            "device = \"USB\"  # [default] in /c.toml:2 (only where the command has --device)",
            "credential = \"the API key from DEEPGRAM_API_KEY (value hidden)\"  # env \
             DEEPGRAM_API_KEY",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert!(!text.contains("canary") && !text.contains("pw"), "{text}");
    }
}
