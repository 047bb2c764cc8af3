//! `flux serve --asr moonshine`: a real speech recognizer, on the CPU and offline, as the
//! source of the words while the turn engine still decides the turns.
//!
//! Layout: `moonshine` loads ONNX Runtime and the model and decodes one segment; `tokenizer`
//! turns tokens into words; `pool` runs the decodes on worker threads shared by all streams;
//! `stream` is one stream's side (its audio, the open turn's partial and final texts). The
//! model comes from scripts/fetch-model.sh (see docs/serve.md).

#[cfg(feature = "local-asr")]
pub mod moonshine;
pub mod pool;
pub mod stream;
pub mod tokenizer;

use crate::error::FluxError;
use std::path::{Path, PathBuf};

/// The recognizers `--asr` knows.
pub const ENGINES: &[&str] = &["moonshine"];

/// Where scripts/fetch-model.sh puts the model by default:
/// `${XDG_DATA_HOME:-~/.local/share}/flux/models/moonshine-base-en`.
pub fn default_model_dir() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from(".local/share"));
    data.join("flux/models/moonshine-base-en")
}

/// What `--asr` asks for.
#[derive(Debug, Clone)]
pub struct AsrOptions {
    /// The model directory (`--asr-model`).
    pub model_dir: PathBuf,
    /// Worker threads, each with its own copy of the model (`--asr-workers`).
    pub workers: usize,
    /// Re-decode the open turn for its `Update`s. `false`: Updates repeat the last text and
    /// only the ends of turns are decoded (the benchmark's finals-only figures).
    pub partials: bool,
}

/// Why the recognizer could not start; each message names the command that fixes it.
#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    #[error("{0}")]
    Setup(String),
}

impl From<AsrError> for FluxError {
    fn from(e: AsrError) -> FluxError {
        // A missing or broken model is fixed by a command the user runs, like a bad flag.
        FluxError::Usage(e.to_string())
    }
}

/// A partial decode (the open turn so far, for an `Update`) or a final one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Partial,
    Final,
}

/// The text of one decode.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    pub words: Vec<tokenizer::DecodedWord>,
    /// The tokens, a hint for the next decode of the same audio grown longer.
    pub token_ids: Vec<i64>,
    /// Decoding stopped at the token cap rather than at the end of text.
    pub capped: bool,
}

/// Something that turns 16 kHz mono audio into words (the model; fakes in tests).
/// `hint`: the tokens of an earlier decode of the same audio (shorter); the model checks them
/// in one batch instead of generating them one by one, and keeps only what it agrees with.
/// `cancelled`: true once nobody waits for the result (a partial overtaken by a final); a
/// long decode checks it between steps and gives up.
pub trait Transcriber: Send + 'static {
    fn transcribe(
        &mut self,
        audio: &[f32],
        pass: Pass,
        hint: &[i64],
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Decoded, String>;
}

/// The loaded recognizer: its worker pool.
#[derive(Debug)]
pub struct Recognizer {
    pub pool: pool::Pool,
    /// See [`AsrOptions::partials`].
    pub partials: bool,
}

impl Recognizer {
    /// Loads `workers` copies of the model (in parallel) and starts the pool. Blocking: call
    /// it off the async reactor.
    #[cfg(feature = "local-asr")]
    pub fn load(opts: &AsrOptions) -> Result<Recognizer, AsrError> {
        moonshine::check_files(&opts.model_dir)?;
        let tok_path = opts.model_dir.join(moonshine::TOKENIZER);
        let tok = tokenizer::Tokenizer::load(&tok_path).map_err(|e| {
            AsrError::Setup(format!(
                "{e}; run `scripts/fetch-model.sh {}`",
                opts.model_dir.display()
            ))
        })?;
        let tok = std::sync::Arc::new(tok);
        let loads: Vec<_> = (0..opts.workers.max(1))
            .map(|_| {
                let dir = opts.model_dir.clone();
                let tok = tok.clone();
                std::thread::spawn(move || moonshine::Moonshine::load(&dir, tok))
            })
            .collect();
        let mut transcribers: Vec<Box<dyn Transcriber>> = Vec::new();
        for handle in loads {
            let model = handle.join().map_err(|_| {
                AsrError::Setup("loading the model failed inside ONNX Runtime".into())
            })??;
            transcribers.push(Box::new(model));
        }
        let mut r = Self::with(transcribers)?;
        r.partials = opts.partials;
        Ok(r)
    }

    /// This build has no recognizer.
    #[cfg(not(feature = "local-asr"))]
    pub fn load(_opts: &AsrOptions) -> Result<Recognizer, AsrError> {
        Err(AsrError::Setup(
            "this flux was built without the local recognizer; rebuild with the default \
             features (`cargo build --release`)"
                .into(),
        ))
    }

    /// A pool over the given transcribers (the model's, or fakes in tests).
    pub fn with(transcribers: Vec<Box<dyn Transcriber>>) -> Result<Recognizer, AsrError> {
        let pool = pool::Pool::start(transcribers)
            .map_err(|e| AsrError::Setup(format!("cannot start the recognizer's threads: {e}")))?;
        Ok(Recognizer {
            pool,
            partials: true,
        })
    }
}

/// Checks `--asr`'s value.
pub fn check_engine(name: &str) -> Result<(), FluxError> {
    if ENGINES.contains(&name) {
        Ok(())
    } else {
        Err(FluxError::Usage(format!(
            "--asr {name}: unknown recognizer; the one there is: {}",
            ENGINES.join(", ")
        )))
    }
}

/// Whether `dir` looks like a model directory (for tests and the demo to decide to skip).
pub fn model_present(dir: &Path) -> bool {
    dir.join("MANIFEST").is_file()
}
