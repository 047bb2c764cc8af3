//! Profiles: the TOML config file (`$XDG_CONFIG_HOME/flux/config.toml`, `--config FILE`,
//! `FLUX_CONFIG`) with a `[default]` table and `[profile.NAME]` tables whose keys are the long
//! flag names with `_` for `-`. See docs/configuration.md.
//!
//! Layout: this file finds, parses and checks the file; `apply` turns the chosen profile into
//! the command line's defaults (so flags and environment variables still win) and records
//! where each setting came from; `credentials` picks the credential by that precedence;
//! `keyterms` reads `--keyterm-file`; `show` is `flux config`.

pub mod apply;
pub mod credentials;
pub mod keyterms;
pub mod show;

use crate::error::FluxError;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub const CONFIG_ENV: &str = "FLUX_CONFIG";
pub const PROFILE_ENV: &str = "FLUX_PROFILE";
/// The key that names an environment variable holding the API key.
pub const API_KEY_ENV_KEY: &str = "api_key_env";

/// Keys that would put a credential itself in a file meant to be shared and committed.
const LITERAL_SECRETS: &[&str] = &[
    "api_key",
    "access_token",
    "api_token",
    "token",
    "key",
    "secret",
    "password",
];
/// Settings that are paths: a relative one is taken from the config file's directory, and
/// `~/` means the home directory.
const PATH_KEYS: &[&str] = &[
    "api_key_file",
    "access_token_file",
    "keyterm_file",
    "ca_cert",
    "control",
    "asr_model",
];

/// Where a setting was written in the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: PathBuf,
    pub line: usize,
    /// `[default]` or `[profile.NAME]`.
    pub table: String,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {}:{}", self.table, self.file.display(), self.line)
    }
}

/// Where a setting's value came from, strongest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Typed on the command line.
    Flag,
    /// An environment variable (its name).
    Env(String),
    /// The config file.
    Profile(Place),
    /// flux's (or the server's) default.
    Default,
}

impl Origin {
    /// Precedence rank: flag 3, environment 2, profile 1, default 0.
    pub fn rank(&self) -> u8 {
        match self {
            Origin::Flag => 3,
            Origin::Env(_) => 2,
            Origin::Profile(_) => 1,
            Origin::Default => 0,
        }
    }
}

/// One key of a table, its values as command-line text (one, or several for an array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub values: Vec<String>,
    pub place: Place,
}

/// The profile that applies to this run: `[default]` with `[profile.NAME]` on top.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    /// The profile chosen, if any.
    pub name: Option<String>,
    pub settings: Vec<Setting>,
}

impl Profile {
    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.settings.iter().find(|s| s.key == key)
    }
}

/// What was resolved before the command ran: the profile and the origin of every setting.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub profile: Profile,
    /// By key (long flag name with `_`); settings not listed come from their default.
    pub origins: BTreeMap<String, Origin>,
    /// Each setting of the command, in the order of its flags, with its value as text (`None`:
    /// not set).
    pub values: Vec<(String, Option<Vec<String>>)>,
    /// `flux doctor` only: the config file could not be used (the message names the file,
    /// line and key); the run goes on without it so the problem is reported as a check.
    pub problem: Option<String>,
}

impl Resolved {
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }
}

static RESOLVED: OnceLock<Resolved> = OnceLock::new();

/// The resolution of this process's command line. Set once by [`apply::parse_args`] before a
/// command runs; a library caller that never set it gets flags and environment only.
pub fn current() -> &'static Resolved {
    RESOLVED.get_or_init(Resolved::default)
}

fn set_current(resolved: Resolved) {
    // Parsed once per process; a second parse (tests) keeps the first.
    let _ = RESOLVED.set(resolved);
}

/// The default config file: `$XDG_CONFIG_HOME/flux/config.toml` (an absolute path, as the XDG
/// spec requires), else `~/.config/flux/config.toml`; on Windows `%APPDATA%\flux\config.toml`.
pub fn default_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = if cfg!(windows) {
        set("APPDATA")
    } else {
        set("XDG_CONFIG_HOME")
            .filter(|p| p.is_absolute())
            .or_else(|| set("HOME").map(|h| h.join(".config")))
    };
    base.map(|b| b.join("flux").join("config.toml"))
}

/// A parsed, checked config file: its tables by name (`default`, or a profile's name).
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub default: Vec<Setting>,
    pub profiles: BTreeMap<String, Vec<Setting>>,
}

/// How a key is checked: whether the command line knows it, takes several values, and accepts
/// a given value. `apply` answers from the clap definition.
pub trait Keys {
    /// `None` for a key flux does not know; else whether it takes several values.
    fn multiple(&self, key: &str) -> Option<bool>;
    /// Checks one value as the flag's own parser would; the error says why not.
    fn check(&self, key: &str, value: &OsStr) -> Result<(), String>;
    /// Every key, for messages.
    fn names(&self) -> Vec<String>;
}

impl ConfigFile {
    /// Reads and checks `path`. Any problem is a usage error naming the file, line and key.
    pub fn load(path: &Path, keys: &dyn Keys) -> Result<ConfigFile, FluxError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            FluxError::Usage(format!(
                "cannot read the config file {}: {e} (set by --config, {CONFIG_ENV} or the \
                 default location; docs/configuration.md)",
                path.display()
            ))
        })?;
        Self::parse(path, &text, keys)
    }

    pub fn parse(path: &Path, text: &str, keys: &dyn Keys) -> Result<ConfigFile, FluxError> {
        let at = |offset: usize| line_of(text, offset);
        let doc = DeTable::parse(text).map_err(|e| {
            let line = e.span().map_or(1, |s| at(s.start));
            FluxError::Usage(format!(
                "{}:{line}: the config file is not valid TOML: {}",
                path.display(),
                e.message().trim()
            ))
        })?;
        let mut file = ConfigFile {
            path: path.to_path_buf(),
            ..ConfigFile::default()
        };
        let base = path.parent().unwrap_or(Path::new("."));
        for (key, value) in doc.get_ref().iter() {
            let line = at(key.span().start);
            let bad = |why: String| {
                FluxError::Usage(format!(
                    "{}:{line}: `{}`: {why}",
                    path.display(),
                    key.get_ref()
                ))
            };
            match (key.get_ref().as_ref(), value.get_ref()) {
                ("default", DeValue::Table(t)) => {
                    file.default = settings(t, "[default]", path, text, base, keys)?;
                }
                ("profile", DeValue::Table(profiles)) => {
                    for (name, table) in profiles.iter() {
                        let DeValue::Table(t) = table.get_ref() else {
                            return Err(FluxError::Usage(format!(
                                "{}:{}: `profile.{}` must be a table: write [profile.{}] and \
                                 its settings under it",
                                path.display(),
                                at(name.span().start),
                                name.get_ref(),
                                name.get_ref()
                            )));
                        };
                        let label = format!("[profile.{}]", name.get_ref());
                        let s = settings(t, &label, path, text, base, keys)?;
                        file.profiles.insert(name.get_ref().to_string(), s);
                    }
                }
                ("default" | "profile", _) => {
                    return Err(bad("must be a table ([default], [profile.NAME])".into()));
                }
                _ => {
                    return Err(bad(
                        "settings go in a [default] or [profile.NAME] table; the file has no \
                         other keys (docs/configuration.md)"
                            .into(),
                    ));
                }
            }
        }
        Ok(file)
    }

    /// `[default]` with `[profile.NAME]` on top (a profile's key replaces the default's).
    pub fn profile(&self, name: Option<&str>) -> Result<Profile, FluxError> {
        let mut settings = self.default.clone();
        if let Some(name) = name {
            let Some(own) = self.profiles.get(name) else {
                let known: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
                return Err(FluxError::Usage(format!(
                    "no profile `{name}` in {}; {} (--profile or {PROFILE_ENV})",
                    self.path.display(),
                    if known.is_empty() {
                        "it has no [profile.NAME] tables".to_string()
                    } else {
                        format!("it has: {}", known.join(", "))
                    }
                )));
            };
            for s in own {
                settings.retain(|d| d.key != s.key);
                settings.push(s.clone());
            }
        }
        Ok(Profile {
            file: Some(self.path.clone()),
            name: name.map(str::to_string),
            settings,
        })
    }
}

/// The settings of one table, each checked.
fn settings(
    table: &DeTable<'_>,
    label: &str,
    path: &Path,
    text: &str,
    base: &Path,
    keys: &dyn Keys,
) -> Result<Vec<Setting>, FluxError> {
    let mut out = Vec::new();
    for (key, value) in table.iter() {
        let name = key.get_ref().as_ref();
        let place = Place {
            file: path.to_path_buf(),
            line: line_of(text, key.span().start),
            table: label.to_string(),
        };
        let bad = |why: String| {
            FluxError::Usage(format!(
                "{}:{}: `{name}` in {label}: {why}",
                path.display(),
                place.line
            ))
        };
        if LITERAL_SECRETS.contains(&name) {
            return Err(bad(
                "a credential cannot be written in the config file, which is meant to be shared \
                 and committed; refer to it instead: api_key_file = \"PATH\" (or \
                 access_token_file) or api_key_env = \"VARIABLE\""
                    .into(),
            ));
        }
        if name == "header" {
            return Err(bad(
                "headers usually carry credentials, which the config file only refers to; pass \
                 --header on the command line"
                    .into(),
            ));
        }
        if name == API_KEY_ENV_KEY {
            let var = scalar(value).ok_or_else(|| {
                bad("must name an environment variable, e.g. \"DEEPGRAM_KEY_CI\"".into())
            })?;
            let valid = !var.is_empty()
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !var.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(bad(format!(
                    "`{var}` is not an environment variable's name; give the variable's name, \
                     never the key itself"
                )));
            }
            out.push(Setting {
                key: name.to_string(),
                values: vec![var],
                place,
            });
            continue;
        }
        let Some(multiple) = keys.multiple(name) else {
            let dashed = name.replace('-', "_");
            let hint = if dashed != name && keys.multiple(&dashed).is_some() {
                format!("write `{dashed}` (flag names with `_` for `-`)")
            } else {
                format!(
                    "not a setting; the keys are the long flag names with `_` for `-`: {}",
                    keys.names().join(", ")
                )
            };
            return Err(bad(format!("unknown key: {hint}")));
        };
        let values = match value.get_ref() {
            DeValue::Array(items) if multiple => items
                .iter()
                .map(|v| {
                    scalar(v).ok_or_else(|| bad("the list may hold only strings or numbers".into()))
                })
                .collect::<Result<Vec<_>, _>>()?,
            DeValue::Array(_) => return Err(bad("takes one value, not a list".into())),
            _ => vec![
                scalar(value).ok_or_else(|| bad("must be a string, number or boolean".into()))?,
            ],
        };
        let values: Vec<String> = if PATH_KEYS.contains(&name) {
            values.iter().map(|v| resolve_path(base, v)).collect()
        } else {
            values
        };
        for v in &values {
            keys.check(name, OsStr::new(v)).map_err(bad)?;
        }
        out.push(Setting {
            key: name.to_string(),
            values,
            place,
        });
    }
    Ok(out)
}

/// A scalar as the text a flag would take.
fn scalar(value: &Spanned<DeValue<'_>>) -> Option<String> {
    match value.get_ref() {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Boolean(b) => Some(b.to_string()),
        DeValue::Float(f) => Some(f.as_str().replace('_', "")),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            if i.radix() == 10 {
                Some(digits)
            } else {
                i128::from_str_radix(&digits, i.radix())
                    .ok()
                    .map(|n| n.to_string())
            }
        }
        _ => None,
    }
}

/// A path from the file: `~/` is the home directory; a relative path is taken from the config
/// file's directory, so a shared file works from anywhere.
fn resolve_path(base: &Path, value: &str) -> String {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    let path = match (value.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ if Path::new(value).is_absolute() => PathBuf::from(value),
        _ => base.join(value),
    };
    path.to_string_lossy().into_owned()
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys as a small fixed set: `pace` (one number from 0.1 to 1000), `keyterm` (several),
    /// `numerals` (a boolean), `api_key_file` and `keyterm_file` (paths).
    struct Fixed;

    impl Keys for Fixed {
        fn multiple(&self, key: &str) -> Option<bool> {
            match key {
                "pace" | "numerals" | "api_key_file" => Some(false),
                "keyterm" | "keyterm_file" => Some(true),
                _ => None,
            }
        }
        fn check(&self, key: &str, value: &OsStr) -> Result<(), String> {
            let v = value.to_string_lossy();
            match key {
                "pace" => match v.parse::<f64>() {
                    Ok(x) if (0.1..=1000.0).contains(&x) => Ok(()),
                    _ => Err(format!("invalid value '{v}' for '--pace': out of range")),
                },
                "numerals" if v != "true" && v != "false" => {
                    Err(format!("invalid value '{v}' for '--numerals'"))
                }
                _ => Ok(()),
            }
        }
        fn names(&self) -> Vec<String> {
            ["pace", "keyterm", "numerals"].map(String::from).to_vec()
        }
    }

    fn parse(text: &str) -> Result<ConfigFile, String> {
        ConfigFile::parse(Path::new("/etc/flux/c.toml"), text, &Fixed).map_err(|e| e.to_string())
    }

    #[test]
    fn tables_merge_with_the_profile_on_top() {
        let f = parse(
            "[default]\npace = 2\nkeyterm = [\"a\", \"b\"]\n\n[profile.ci]\npace = 4.5\nnumerals = \
             true\napi_key_file = \"keys/dg\"\n",
        )
        .unwrap();
        let p = f.profile(Some("ci")).unwrap();
        let get = |k: &str| p.get(k).unwrap();
        assert_eq!(get("pace").values, ["4.5"]);
        assert_eq!(get("pace").place.line, 6);
        assert_eq!(get("pace").place.table, "[profile.ci]");
        assert_eq!(get("keyterm").values, ["a", "b"]);
        assert_eq!(get("keyterm").place.table, "[default]");
        assert_eq!(get("numerals").values, ["true"]);
        assert_eq!(get("api_key_file").values, ["/etc/flux/keys/dg"]);
        let d = f.profile(None).unwrap();
        assert_eq!(d.get("pace").unwrap().values, ["2"]);
        assert!(d.get("numerals").is_none());
        let err = f.profile(Some("prod")).unwrap_err().to_string();
        assert!(
            err.contains("no profile `prod`") && err.contains("it has: ci"),
            "{err}"
        );
    }

    #[test]
    fn problems_name_the_file_line_and_key() {
        for (text, needles) in [
            (
                "[default]\n\npaec = 2\n",
                &[
                    "/etc/flux/c.toml:3",
                    "`paec`",
                    "unknown key",
                    "pace, keyterm",
                ][..],
            ),
            (
                "[profile.x]\npace = 5000\n",
                &["c.toml:2", "`pace`", "[profile.x]", "out of range"],
            ),
            (
                "[default]\nnumerals = \"yes\"\n",
                &["c.toml:2", "`numerals`"],
            ),
            ("[default]\npace = [1, 2]\n", &["c.toml:2", "one value"]),
            (
                "[default]\nkeyterm-file = \"x\"\n",
                &["write `keyterm_file`"],
            ),
            (
                "pace = 2\n",
                &["c.toml:1", "`pace`", "[default] or [profile.NAME]"],
            ),
            ("[default]\npace = \n", &["c.toml:2", "not valid TOML"]),
            (
                "[default]\napi_key_env = \"dg-live-123\"\n",
                &["c.toml:2", "not an environment"],
            ),
        ] {
            let err = parse(text).unwrap_err();
            for n in needles {
                assert!(err.contains(n), "{text:?}: {n} missing from {err}");
            }
        }
    }

    #[test]
    fn a_literal_credential_is_refused_saying_why_without_showing_it() {
        for key in ["api_key", "access_token", "token"] {
            let err = parse(&format!("\n[profile.ci]\n{key} = \"sk-canary\"\n")).unwrap_err();
            assert!(
                err.contains("c.toml:3") && err.contains("shared and committed"),
                "{err}"
            );
            assert!(
                err.contains("api_key_env") && !err.contains("canary"),
                "{err}"
            );
        }
        let f = parse("[default]\napi_key_env = \"DG_KEY_CI\"\n").unwrap();
        assert_eq!(f.default[0].values, ["DG_KEY_CI"]);
    }

    #[test]
    fn the_default_file_follows_xdg() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        if cfg!(windows) {
            return;
        }
        let xdg = env(&[("XDG_CONFIG_HOME", "/x/cfg"), ("HOME", "/home/u")]);
        assert_eq!(
            default_path(&xdg).unwrap(),
            Path::new("/x/cfg/flux/config.toml")
        );
        // A relative XDG_CONFIG_HOME is invalid by the spec and ignored.
        let rel = env(&[("XDG_CONFIG_HOME", "cfg"), ("HOME", "/home/u")]);
        assert_eq!(
            default_path(&rel).unwrap(),
            Path::new("/home/u/.config/flux/config.toml")
        );
        assert_eq!(default_path(&env(&[])), None);
    }
}
