//! The profile on the command line: each setting becomes its flag's default before clap
//! parses, so clap's own order does the rest (flag > environment variable > default, and the
//! profile is now the default). A profile value that conflicts with a flag the user typed
//! (`format` against `--jsonl`, `pace` against `--fast`) is dropped, as the flag wins. What
//! came from where is recorded for `flux config` and the credential choice.

use super::{API_KEY_ENV_KEY, CONFIG_ENV, PROFILE_ENV, default_path};
use super::{ConfigFile, Keys, Origin, Profile, Resolved, set_current};
use crate::cli::Cli;
use crate::error::FluxError;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches};
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

/// The commands a profile applies to: those that stream, and `config`, which shows them.
pub const PROFILE_COMMANDS: &[&str] = &["file", "listen", "config", "doctor"];
/// Flags that are not settings: per-run choices, or secrets the file may not hold.
const NOT_SETTINGS: &[&str] = &["help", "version", "config", "profile", "header"];

/// Why the command line was not parsed.
#[derive(Debug)]
pub enum Failure {
    /// clap's own (bad flags, `--help`, `--version`): printed and exited the usual way.
    Clap(clap::Error),
    /// A config file or profile problem (exit 2).
    Config(FluxError),
}

/// Parses this process's command line with its profile. clap's errors, `--help` and
/// `--version` exit as `Cli::parse` does; a config problem is returned.
pub fn parse_args() -> Result<Cli, FluxError> {
    let args: Vec<OsString> = std::env::args_os().collect();
    match parse_from(args, &|k| std::env::var(k).ok()) {
        Ok((cli, resolved)) => {
            set_current(resolved);
            Ok(cli)
        }
        Err(Failure::Clap(e)) => e.exit(),
        Err(Failure::Config(e)) => Err(e),
    }
}

/// Parses `args` (program name first); `env` reads the variables that find the config file.
pub fn parse_from(
    args: Vec<OsString>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Cli, Resolved), Failure> {
    let scan = Scan::of(&args);
    let Some(sub) = scan
        .command
        .clone()
        .filter(|c| PROFILE_COMMANDS.contains(&c.as_str()))
    else {
        let cli = Cli::try_parse_from_args(args)?;
        return Ok((cli, Resolved::default()));
    };
    // Help shows flux's own defaults, and must work whatever state the file is in.
    let mut problem = None;
    let profile = if scan.help {
        Profile::default()
    } else {
        match load_profile(&scan, env) {
            Ok(profile) => profile,
            // The doctor reports a broken config file as one of its checks.
            Err(e) if sub == "doctor" => {
                problem = Some(e.to_string());
                Profile::default()
            }
            Err(e) => return Err(Failure::Config(e)),
        }
    };
    let mut dropped = BTreeSet::new();
    loop {
        let (mut cmd, applied) = command_with(&profile, &sub, &dropped);
        let matches = cmd.try_get_matches_from_mut(&args).map_err(Failure::Clap)?;
        let (Some(sc), Some(sm)) = (cmd.find_subcommand(&sub), matches.subcommand_matches(&sub))
        else {
            let cli = Cli::from_arg_matches(&matches).map_err(Failure::Clap)?;
            return Ok((cli, Resolved::default()));
        };
        let conflicting: Vec<String> = applied
            .iter()
            .filter(|(key, id)| !dropped.contains(key) && loses_to_a_flag(sc, sm, id))
            .map(|(key, _)| key.clone())
            .collect();
        if conflicting.is_empty() {
            let mut resolved = resolve(sc, sm, &profile, &applied);
            resolved.problem = problem;
            let cli = Cli::from_arg_matches(&matches).map_err(Failure::Clap)?;
            return Ok((cli, resolved));
        }
        dropped.extend(conflicting);
    }
}

impl Cli {
    fn try_parse_from_args(args: Vec<OsString>) -> Result<Cli, Failure> {
        let matches = Cli::command()
            .try_get_matches_from(args)
            .map_err(Failure::Clap)?;
        Cli::from_arg_matches(&matches).map_err(Failure::Clap)
    }
}

/// What a first look at the arguments finds: the subcommand and the global options that choose
/// the profile (they may come before or after the subcommand).
#[derive(Debug, Default, PartialEq)]
struct Scan {
    command: Option<String>,
    config: Option<PathBuf>,
    profile: Option<String>,
    help: bool,
}

impl Scan {
    fn of(args: &[OsString]) -> Scan {
        let mut scan = Scan::default();
        let mut rest = args.iter().skip(1);
        while let Some(arg) = rest.next() {
            let text = arg.to_string_lossy();
            match text.as_ref() {
                "--" => break,
                "--config" => scan.config = rest.next().map(PathBuf::from),
                "--profile" => scan.profile = rest.next().map(|p| p.to_string_lossy().into()),
                "-h" | "--help" | "-V" | "--version" => scan.help = true,
                t if t.starts_with("--config=") => scan.config = Some(t[9..].into()),
                t if t.starts_with("--profile=") => scan.profile = Some(t[10..].into()),
                t if t.starts_with('-') => {}
                t if scan.command.is_none() => scan.command = Some(t.to_string()),
                _ => {}
            }
        }
        scan
    }
}

/// The profile this run asks for: `--config`/`FLUX_CONFIG` (which must exist) or the default
/// file (if it exists); `--profile`/`FLUX_PROFILE` on top of `[default]`.
fn load_profile(scan: &Scan, env: &dyn Fn(&str) -> Option<String>) -> Result<Profile, FluxError> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    let name = scan.profile.clone().or_else(|| set(PROFILE_ENV));
    let explicit = scan
        .config
        .clone()
        .or_else(|| set(CONFIG_ENV).map(PathBuf::from));
    let path = match explicit {
        Some(p) => p,
        None => match default_path(env) {
            Some(p) if p.exists() => p,
            other => {
                if let Some(name) = name {
                    return Err(FluxError::Usage(format!(
                        "profile `{name}` asked for (--profile or {PROFILE_ENV}), but there is no \
                         config file{}; create it or pass --config FILE (docs/configuration.md)",
                        other.map_or(String::new(), |p| format!(" at {}", p.display()))
                    )));
                }
                return Ok(Profile::default());
            }
        },
    };
    let keys = ClapKeys::new();
    ConfigFile::load(&path, &keys)?.profile(name.as_deref())
}

/// The command line with the profile's settings as the defaults of `sub`'s flags (except the
/// `skip`ped ones). Returns which keys were applied, with their flags' ids.
fn command_with(
    profile: &Profile,
    sub: &str,
    skip: &BTreeSet<String>,
) -> (Command, Vec<(String, String)>) {
    let mut applied = Vec::new();
    let cmd = Cli::command().mut_subcommand(sub, |mut s| {
        for setting in profile.settings.iter().filter(|s| !skip.contains(&s.key)) {
            let long = setting.key.replace('_', "-");
            let Some(id) = s
                .get_arguments()
                .find(|a| a.get_long() == Some(long.as_str()))
                .map(|a| a.get_id().clone())
            else {
                // A setting of another command (`device` for `flux file`).
                continue;
            };
            let values = setting.values.clone();
            s = s.mut_arg(id.clone(), |a| a.default_values(values));
            applied.push((setting.key.clone(), id.to_string()));
        }
        s
    });
    (cmd, applied)
}

/// Whether the user set `id` only through its default, while typing (or exporting) a flag that
/// conflicts with it.
fn loses_to_a_flag(sc: &Command, sm: &ArgMatches, id: &str) -> bool {
    let user_set = |a: &Arg| {
        matches!(
            sm.value_source(a.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    let Some(arg) = sc.get_arguments().find(|a| a.get_id() == id) else {
        return false;
    };
    if user_set(arg) {
        return false;
    }
    sc.get_arg_conflicts_with(arg).into_iter().any(user_set)
        || sc.get_arguments().any(|other| {
            user_set(other)
                && sc
                    .get_arg_conflicts_with(other)
                    .iter()
                    .any(|c| c.get_id() == id)
        })
}

/// Where each of `sub`'s settings came from, and its value as text.
fn resolve(
    sc: &Command,
    sm: &ArgMatches,
    profile: &Profile,
    applied: &[(String, String)],
) -> Resolved {
    let mut resolved = Resolved {
        profile: profile.clone(),
        ..Resolved::default()
    };
    // In the order of the flags' definition (a changed default moves an argument last).
    let original = Cli::command();
    let order: Vec<&str> = original
        .find_subcommand(sc.get_name())
        .into_iter()
        .flat_map(|o| o.get_arguments())
        .map(|a| a.get_id().as_str())
        .collect();
    let mut args: Vec<&Arg> = sc.get_arguments().collect();
    args.sort_by_key(|a| order.iter().position(|id| *id == a.get_id().as_str()));
    for arg in args {
        let Some(long) = arg.get_long().filter(|l| !NOT_SETTINGS.contains(l)) else {
            continue;
        };
        let key = long.replace('-', "_");
        let id = arg.get_id().as_str();
        let origin = match sm.value_source(id) {
            Some(ValueSource::CommandLine) => Origin::Flag,
            Some(ValueSource::EnvVariable) => Origin::Env(
                arg.get_env()
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            Some(ValueSource::DefaultValue) if applied.iter().any(|(k, _)| *k == key) => profile
                .get(&key)
                .map_or(Origin::Default, |s| Origin::Profile(s.place.clone())),
            _ => Origin::Default,
        };
        let values: Option<Vec<String>> = sm
            .get_raw(id)
            .map(|v| v.map(|x| x.to_string_lossy().into_owned()).collect());
        resolved.values.push((key.clone(), values));
        resolved.origins.insert(key, origin);
    }
    if let Some(s) = profile.get(API_KEY_ENV_KEY) {
        resolved
            .origins
            .insert(API_KEY_ENV_KEY.into(), Origin::Profile(s.place.clone()));
    }
    resolved
}

/// The keys a config file may hold, answered from the clap definition: the settings of
/// `flux config` (those `file` and `listen` share), and `listen --device`, `file --jobs`.
pub struct ClapKeys {
    cmd: Command,
}

impl ClapKeys {
    pub fn new() -> ClapKeys {
        let mut cmd = Cli::command();
        cmd.build();
        ClapKeys { cmd }
    }

    fn find(&self, key: &str) -> Option<(&Command, &Arg)> {
        let long = key.replace('_', "-");
        if NOT_SETTINGS.contains(&long.as_str()) || key.contains('-') {
            return None;
        }
        let in_sub = |sub: &str| {
            let sc = self.cmd.find_subcommand(sub)?;
            sc.get_arguments()
                .find(|a| a.get_long() == Some(long.as_str()))
                .map(|a| (sc, a))
        };
        in_sub("config").or_else(|| match long.as_str() {
            "device" => in_sub("listen"),
            "jobs" => in_sub("file"),
            _ => None,
        })
    }
}

impl Default for ClapKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl Keys for ClapKeys {
    fn multiple(&self, key: &str) -> Option<bool> {
        self.find(key)
            .map(|(_, a)| matches!(a.get_action(), ArgAction::Append))
    }

    /// Parses the value as the flag itself, on a command line that needs nothing else
    /// (`flux config --KEY=VALUE`), so the message is clap's own.
    fn check(&self, key: &str, value: &OsStr) -> Result<(), String> {
        let Some((sc, arg)) = self.find(key) else {
            return Err("not a setting".into());
        };
        if matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse) {
            return match value.to_str() {
                Some("true" | "false") => Ok(()),
                _ => Err(format!(
                    "`{}` is not a boolean; write true or false",
                    value.to_string_lossy()
                )),
            };
        }
        let mut flag = OsString::from(format!("--{}=", key.replace('_', "-")));
        flag.push(value);
        let args: Vec<OsString> = match sc.get_name() {
            "config" => vec!["flux".into(), "config".into(), flag],
            "file" => vec!["flux".into(), "file".into(), "x.wav".into(), flag],
            // `listen --device` takes any text.
            _ => return Ok(()),
        };
        self.cmd
            .clone()
            .try_get_matches_from(args)
            .map(|_| ())
            .map_err(|e| {
                // clap's message up to its "try --help" paragraph, on one line.
                let text = e.to_string();
                let lines: Vec<&str> = text
                    .lines()
                    .map(str::trim)
                    .take_while(|l| !l.is_empty())
                    .collect();
                let joined = lines.join(" ");
                joined
                    .strip_prefix("error: ")
                    .unwrap_or(&joined)
                    .to_string()
            })
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .cmd
            .find_subcommand("config")
            .into_iter()
            .flat_map(|sc| sc.get_arguments())
            .filter_map(|a| a.get_long())
            .filter(|l| !NOT_SETTINGS.contains(l))
            .map(|l| l.replace('-', "_"))
            .collect();
        names.extend(["device", "jobs", API_KEY_ENV_KEY].map(String::from));
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command as Sub;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_scan_finds_the_command_and_the_profile_options_anywhere() {
        let s = Scan::of(&os(&[
            "flux",
            "--profile",
            "ci",
            "file",
            "a.wav",
            "--config=c.toml",
        ]));
        assert_eq!(s.command.as_deref(), Some("file"));
        assert_eq!(s.profile.as_deref(), Some("ci"));
        assert_eq!(s.config, Some(PathBuf::from("c.toml")));
        let s = Scan::of(&os(&["flux", "listen", "--", "--profile", "x"]));
        assert_eq!((s.command.as_deref(), s.profile), (Some("listen"), None));
        assert!(Scan::of(&os(&["flux", "file", "--help"])).help);
    }

    #[test]
    fn profile_values_yield_to_flags_and_conflicting_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[default]\nformat = \"jsonl\"\npace = 2\nkeyterm = [\"a\", \"b\"]\n\
             [profile.fast]\nfast = true\nmodel = \"flux-general-multi\"\n",
        )
        .unwrap();
        let env = |_: &str| None;
        let run = |extra: &[&str]| {
            let mut args = os(&["flux", "file", "x.wav", "--config"]);
            args.push(path.clone().into());
            args.extend(os(extra));
            let (cli, resolved) = parse_from(args, &env).unwrap();
            let Sub::File(f) = cli.command else {
                panic!("not file")
            };
            (f, resolved)
        };
        let (f, r) = run(&[]);
        assert_eq!(f.output.format, Some(crate::cli::Format::Jsonl));
        assert_eq!((f.pace.pace, f.pace.fast), (Some(2.0), false));
        assert_eq!(f.stream.keyterms, ["a", "b"]);
        assert!(matches!(r.origin("pace"), Origin::Profile(p) if p.line == 3));
        assert_eq!(r.origin("sample_rate"), Origin::Default);
        // A typed flag replaces the profile's value; one that conflicts drops it.
        let (f, r) = run(&["--keyterm", "c", "--text", "--fast"]);
        assert_eq!(f.stream.keyterms, ["c"]);
        assert_eq!((f.output.format, f.output.text), (None, true));
        assert_eq!((f.pace.pace, f.pace.fast), (None, true));
        assert_eq!(r.origin("keyterm"), Origin::Flag);
        assert_eq!(r.origin("format"), Origin::Default);
        // The profile's own flag conflicting with the default table's: the profile is on top,
        // but both are profile values, so the command line decides nothing; `fast` wins over
        // `pace` only when typed.
        let (f, _) = run(&["--profile", "fast", "--pace", "3"]);
        assert_eq!((f.pace.pace, f.pace.fast), (Some(3.0), false));
        assert_eq!(f.stream.model.as_deref(), Some("flux-general-multi"));
    }
}
