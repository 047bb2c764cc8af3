//! Which credential a run uses, by the same precedence as every other setting: a flag
//! (`--api-key-file`, `--access-token-file`) over the environment (`DEEPGRAM_ACCESS_TOKEN`,
//! `DEEPGRAM_API_KEY`, ...) over the profile (`api_key_file`, `access_token_file`,
//! `api_key_env`). At the same level a temporary token wins over a key: it is what a CI job
//! or a machine was handed on purpose. When more than one is set, stderr says which is used;
//! values are never shown.

use super::{API_KEY_ENV_KEY, Origin, Resolved};
use crate::error::FluxError;
use crate::provider::{Secret, read_secret_file};
use std::path::{Path, PathBuf};

/// What a credential is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ApiKey,
    AccessToken,
}

/// Where a credential is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    /// An environment variable's name.
    Var(String),
}

/// A credential that is set, not yet read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub kind: Kind,
    pub origin: Origin,
    pub source: Source,
}

impl Candidate {
    /// "the API key from DEEPGRAM_API_KEY", "the temporary token from --access-token-file
    /// /ci/token", "the API key from $DG_CI (api_key_env, [profile.ci] in FILE:3)".
    pub fn describe(&self) -> String {
        let what = match self.kind {
            Kind::ApiKey => "the API key",
            Kind::AccessToken => "the temporary token",
        };
        let flag = match self.kind {
            Kind::ApiKey => "api_key_file",
            Kind::AccessToken => "access_token_file",
        };
        let from = match (&self.source, &self.origin) {
            (Source::Var(v), Origin::Profile(p)) => format!("${v} ({API_KEY_ENV_KEY}, {p})"),
            (Source::Var(v), _) => v.clone(),
            (Source::File(f), Origin::Profile(p)) => format!("{} ({flag}, {p})", f.display()),
            (Source::File(f), _) => format!("--{} {}", flag.replace('_', "-"), f.display()),
        };
        format!("{what} from {from}")
    }

    /// The value, for the wire.
    pub fn read(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Secret, FluxError> {
        let what = match self.kind {
            Kind::ApiKey => "API key",
            Kind::AccessToken => "access token",
        };
        match &self.source {
            Source::File(path) => read_secret_file(path, what),
            Source::Var(var) => match env(var).map(|v| v.trim().to_string()) {
                Some(v) if !v.is_empty() => Ok(Secret::new(v)),
                _ => Err(FluxError::Auth(format!(
                    "{} names the environment variable {var}, which is not set or is empty; \
                     export it, or change the profile",
                    match &self.origin {
                        Origin::Profile(p) => format!("{API_KEY_ENV_KEY} in {p}"),
                        _ => API_KEY_ENV_KEY.to_string(),
                    }
                ))),
            },
        }
    }
}

/// The provider's places for credentials.
pub struct Places<'a> {
    /// `--api-key-file` (from a flag or the profile).
    pub key_file: Option<&'a Path>,
    /// `--access-token-file`, where the provider takes temporary tokens.
    pub token_file: Option<&'a Path>,
    /// The provider's key variable (`DEEPGRAM_API_KEY`, `CLOUDFLARE_API_TOKEN`).
    pub key_var: &'a str,
    /// The provider's token variable (`DEEPGRAM_ACCESS_TOKEN`), if it takes tokens.
    pub token_var: Option<&'a str>,
}

/// Every credential that is set, strongest first (ties: the token first).
pub fn candidates(
    resolved: &Resolved,
    places: &Places<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<Candidate> {
    // A flag not resolved by the config module (a library caller) counts as typed.
    let flag_origin = |key: &str| match resolved.origin(key) {
        Origin::Default => Origin::Flag,
        other => other,
    };
    let is_set = |var: &str| env(var).is_some_and(|v| !v.trim().is_empty());
    let mut out = Vec::new();
    if let Some(f) = places.token_file {
        out.push(Candidate {
            kind: Kind::AccessToken,
            origin: flag_origin("access_token_file"),
            source: Source::File(f.to_path_buf()),
        });
    }
    if let Some(f) = places.key_file {
        out.push(Candidate {
            kind: Kind::ApiKey,
            origin: flag_origin("api_key_file"),
            source: Source::File(f.to_path_buf()),
        });
    }
    if let Some(var) = places.token_var.filter(|v| is_set(v)) {
        out.push(Candidate {
            kind: Kind::AccessToken,
            origin: Origin::Env(var.into()),
            source: Source::Var(var.into()),
        });
    }
    if is_set(places.key_var) {
        out.push(Candidate {
            kind: Kind::ApiKey,
            origin: Origin::Env(places.key_var.into()),
            source: Source::Var(places.key_var.into()),
        });
    }
    if let Some(s) = resolved.profile.get(API_KEY_ENV_KEY) {
        out.push(Candidate {
            kind: Kind::ApiKey,
            origin: Origin::Profile(s.place.clone()),
            source: Source::Var(s.values.first().cloned().unwrap_or_default()),
        });
    }
    // Stable: at one rank, the token (pushed first) stays first.
    out.sort_by_key(|c| std::cmp::Reverse(c.origin.rank()));
    out
}

/// The credential to use and the line that says so when others were set too.
pub fn choose(candidates: &[Candidate]) -> (Option<&Candidate>, Option<String>) {
    let Some(chosen) = candidates.first() else {
        return (None, None);
    };
    let rest: Vec<String> = candidates[1..].iter().map(Candidate::describe).collect();
    let note = (!rest.is_empty()).then(|| {
        format!(
            "flux: using {}; not used: {} (flags > environment > profile; at one level a \
             temporary token before a key)",
            chosen.describe(),
            rest.join("; ")
        )
    });
    (Some(chosen), note)
}

/// Reads the chosen credential, saying on stderr which one it is when several were set.
pub fn resolve(
    resolved: &Resolved,
    places: &Places<'_>,
) -> Result<Option<(Kind, Secret)>, FluxError> {
    let env = |k: &str| std::env::var(k).ok();
    let all = candidates(resolved, places, &env);
    let (chosen, note) = choose(&all);
    if let Some(note) = note {
        eprintln!("{note}");
    }
    chosen
        .map(|c| c.read(&env).map(|s| (c.kind, s)))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::super::{Place, Profile, Setting};
    use super::*;

    fn places<'a>(key: Option<&'a Path>, token: Option<&'a Path>) -> Places<'a> {
        Places {
            key_file: key,
            token_file: token,
            key_var: "DG_KEY",
            token_var: Some("DG_TOKEN"),
        }
    }

    fn profile_with_key_env(var: &str) -> Resolved {
        let place = Place {
            file: "/c.toml".into(),
            line: 4,
            table: "[profile.ci]".into(),
        };
        Resolved {
            profile: Profile {
                settings: vec![Setting {
                    key: API_KEY_ENV_KEY.into(),
                    values: vec![var.into()],
                    place,
                }],
                ..Profile::default()
            },
            ..Resolved::default()
        }
    }

    #[test]
    fn the_strongest_level_wins_and_a_token_breaks_ties() {
        let env = |k: &str| match k {
            "DG_KEY" | "DG_TOKEN" => Some("x".to_string()),
            _ => None,
        };
        let none = Resolved::default();
        let all = candidates(&none, &places(None, None), &env);
        let (chosen, note) = choose(&all);
        assert_eq!(chosen.unwrap().kind, Kind::AccessToken);
        let note = note.unwrap();
        assert!(
            note.contains("using the temporary token from DG_TOKEN"),
            "{note}"
        );
        assert!(note.contains("not used: the API key from DG_KEY"), "{note}");
        // A key file given as a flag beats the token in the environment.
        let file = Path::new("/k");
        let all = candidates(&none, &places(Some(file), None), &env);
        assert_eq!(all[0].kind, Kind::ApiKey);
        assert_eq!(all[0].source, Source::File(file.into()));
        // The profile's variable comes last, below the environment.
        let r = profile_with_key_env("DG_CI");
        let all = candidates(&r, &places(None, None), &|_| None);
        assert_eq!(all.len(), 1);
        let (chosen, note) = choose(&all);
        assert!(note.is_none());
        let err = chosen.unwrap().read(&|_| None).unwrap_err().to_string();
        assert!(
            err.contains("DG_CI") && err.contains("[profile.ci] in /c.toml:4"),
            "{err}"
        );
        let secret = chosen.unwrap().read(&|_| Some(" k ".into())).unwrap();
        assert_eq!(secret.expose(), "k");
        let all = candidates(&r, &places(None, None), &env);
        assert_eq!(all.last().unwrap().origin.rank(), 1);
        assert_eq!(all[0].kind, Kind::AccessToken);
    }
}
