//! Moonshine base-en on ONNX Runtime: the library loaded at run time from the model directory
//! (after checking its version), the encoder, and the merged decoder run greedily with its
//! key/value cache.
//!
//! Moonshine is an encoder-decoder over a whole segment, not a streaming model: partial text
//! comes from decoding the growing turn again. The merged decoder takes `use_cache_branch`:
//! false on the first step (it computes the cross-attention keys and values from the encoder
//! output and returns them), true afterwards (it returns only dummies for those, so the first
//! step's are kept for the whole segment).

use super::tokenizer::{BOS, EOS, Tokenizer};
use super::{AsrError, Decoded, Pass, Transcriber};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{DynValue, Tensor, TensorRef};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const ENCODER: &str = "encoder_model.onnx";
pub const DECODER: &str = "decoder_model_merged.onnx";
pub const TOKENIZER: &str = "tokenizer.bin";
/// The library scripts/fetch-model.sh installs.
pub const LIBRARY: &str = "libonnxruntime.so.1.32.0";
/// Oldest ONNX Runtime this build runs on: older libraries (1.22, shipped inside
/// `moonshine-cpp`) abort inside session creation instead of returning an error.
pub const MIN_ORT_MINOR: u32 = 32;
/// The model's sample rate.
pub const RATE: u32 = 16_000;
/// Shortest audio the encoder's convolutions accept, with margin (samples).
const MIN_SAMPLES: usize = 1_600;
/// Decoder attention heads and head size (Moonshine base).
const HEADS: i64 = 8;
const HEAD_DIM: i64 = 52;

/// Greedy decoding stops at this many tokens per second of audio (plus [`TOKEN_CAP_EXTRA`]):
/// audio cut mid-word makes the decoder repeat itself ("the best of the best of …") until
/// stopped. Partial passes get the tight cap (they end mid-word by nature); finals, which end
/// in silence, get room for fast speech.
const TOKENS_PER_SECOND_PARTIAL: f64 = 4.0;
const TOKENS_PER_SECOND_FINAL: f64 = 6.5;
const TOKEN_CAP_EXTRA: f64 = 3.0;

/// The process-wide ONNX Runtime environment (the library can be loaded once per process).
static RUNTIME: OnceLock<Result<(PathBuf, ort::environment::Environment), String>> =
    OnceLock::new();

fn fix(dir: &Path) -> String {
    format!("scripts/fetch-model.sh {}", dir.display())
}

/// Loads the library in `dir` once, after checking its version.
fn runtime(dir: &Path) -> Result<ort::environment::Environment, AsrError> {
    let lib = dir.join(LIBRARY);
    let loaded = RUNTIME.get_or_init(|| {
        check_library(&lib)?;
        let env = ort::init_from(&lib)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", lib.display()))?
            .with_name("flux")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("ONNX Runtime would not start: {e}"))?;
        Ok((lib.clone(), env))
    });
    match loaded {
        Ok((path, env)) if *path == lib => Ok(env.clone()),
        Ok((path, _)) => Err(AsrError::Setup(format!(
            "ONNX Runtime is already loaded from {}; one process uses one library",
            path.display()
        ))),
        Err(why) => Err(AsrError::Setup(format!("{why}; run `{}`", fix(dir)))),
    }
}

/// Reads the library's version through `OrtGetApiBase` and refuses old ones before `ort`
/// creates anything with them.
fn check_library(lib: &Path) -> Result<(), String> {
    if !lib.is_file() {
        return Err(format!("no ONNX Runtime library at {}", lib.display()));
    }
    type GetApiBase = unsafe extern "C" fn() -> *const ort::sys::OrtApiBase;
    // SAFETY: loading runs the library's initializers; this is the file fetch-model.sh
    // installed (or one the user put there), the same one `ort` loads next.
    let library = unsafe { libloading::Library::new(lib) }
        .map_err(|e| format!("cannot load {}: {e}", lib.display()))?;
    // SAFETY: the symbol has this signature in every ONNX Runtime release.
    let get: libloading::Symbol<GetApiBase> = unsafe { library.get(b"OrtGetApiBase\0") }
        .map_err(|_| format!("{} is not an ONNX Runtime library", lib.display()))?;
    // SAFETY: OrtGetApiBase returns a static table; GetVersionString a static C string.
    let version = unsafe {
        let base = get();
        if base.is_null() {
            return Err(format!("{} returned no API", lib.display()));
        }
        let s = ((*base).GetVersionString)();
        if s.is_null() {
            return Err(format!("{} has no version", lib.display()));
        }
        std::ffi::CStr::from_ptr(s).to_string_lossy().into_owned()
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if major != 1 || minor < MIN_ORT_MINOR {
        return Err(format!(
            "{} is ONNX Runtime {version}; flux needs 1.{MIN_ORT_MINOR} or newer",
            lib.display()
        ));
    }
    Ok(())
}

/// Checks that the directory has every file, without loading anything.
pub fn check_files(dir: &Path) -> Result<(), AsrError> {
    if !dir.is_dir() {
        return Err(AsrError::Setup(format!(
            "no Moonshine model at {}; run `{}` to fetch it (about 170 MB, from PyPI)",
            dir.display(),
            fix(dir)
        )));
    }
    let missing: Vec<&str> = [ENCODER, DECODER, TOKENIZER, LIBRARY]
        .into_iter()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(AsrError::Setup(format!(
            "the Moonshine model at {} is incomplete ({} missing); run `{}`",
            dir.display(),
            missing.join(", "),
            fix(dir)
        )));
    }
    Ok(())
}

/// One loaded copy of the model; a worker owns one (sessions run one call at a time).
pub struct Moonshine {
    encoder: Session,
    decoder: Session,
    tokenizer: std::sync::Arc<Tokenizer>,
    /// (past input name, present output name, is the cross-attention cache).
    cache: Vec<(String, String, bool)>,
}

impl Moonshine {
    pub fn load(dir: &Path, tokenizer: std::sync::Arc<Tokenizer>) -> Result<Moonshine, AsrError> {
        check_files(dir)?;
        let env = runtime(dir)?;
        let damaged = |file: &str, e: ort::Error| {
            AsrError::Setup(format!(
                "the model file {} is damaged or not a Moonshine model ({e}); run `{}` again",
                dir.join(file).display(),
                fix(dir)
            ))
        };
        let open = |file: &str| -> Result<Session, AsrError> {
            let build = || -> Result<Session, ort::Error> {
                Session::builder(&env)?
                    .with_optimization_level(GraphOptimizationLevel::Level3)?
                    .with_intra_threads(1)?
                    .with_inter_threads(1)?
                    .commit_from_file(dir.join(file))
            };
            build().map_err(|e| damaged(file, e))
        };
        let encoder = open(ENCODER)?;
        let decoder = open(DECODER)?;
        let mut cache = Vec::new();
        for input in decoder.inputs() {
            if let Some(rest) = input.name().strip_prefix("past_key_values.") {
                cache.push((
                    input.name().to_string(),
                    format!("present.{rest}"),
                    rest.contains(".encoder."),
                ));
            }
        }
        let has = |name: &str| decoder.inputs().iter().any(|i| i.name() == name);
        if cache.is_empty() || !has("input_ids") || !has("use_cache_branch") {
            return Err(AsrError::Setup(format!(
                "{} is not Moonshine's merged decoder; run `{}` again",
                dir.join(DECODER).display(),
                fix(dir)
            )));
        }
        Ok(Moonshine {
            encoder,
            decoder,
            tokenizer,
            cache,
        })
    }

    fn run(
        &mut self,
        audio: &[f32],
        pass: Pass,
        hint: &[i64],
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Decoded, ort::Error> {
        if audio.len() < MIN_SAMPLES {
            return Ok(Decoded::default());
        }
        let input = TensorRef::from_array_view(([1usize, audio.len()], audio))?;
        let mut out = self.encoder.run(ort::inputs!["input_values" => input])?;
        let hidden: DynValue = out
            .remove("last_hidden_state")
            .ok_or_else(|| ort::Error::new("the encoder gave no last_hidden_state"))?;
        drop(out);
        let seconds = audio.len() as f64 / f64::from(RATE);
        let per_second = match pass {
            Pass::Partial => TOKENS_PER_SECOND_PARTIAL,
            Pass::Final => TOKENS_PER_SECOND_FINAL,
        };
        let cap = (seconds * per_second + TOKEN_CAP_EXTRA).ceil() as usize;
        let mut past: Vec<DynValue> = Vec::with_capacity(self.cache.len());
        for _ in &self.cache {
            let empty = Tensor::<f32>::from_array(([1, HEADS, 0, HEAD_DIM], Vec::<f32>::new()))?;
            past.push(empty.into_dyn());
        }
        let vocab = self.tokenizer.len().max(1);
        let mut tokens: Vec<i64> = Vec::new();
        let mut probs = Vec::new();
        // The first call checks the hint (the previous decode's tokens) in one batch: row i of
        // its logits is the model's choice after feed[..=i], so the hint is accepted up to its
        // first disagreement, exactly what step-by-step greedy decoding would have produced,
        // for one call instead of one per token.
        let mut feed: Vec<i64> = std::iter::once(BOS)
            .chain(hint.iter().copied().take(cap.saturating_sub(1)))
            .collect();
        let mut past_len = 0usize;
        let mut first = true;
        while tokens.len() < cap {
            if cancelled() {
                return Err(ort::Error::new("cancelled"));
            }
            let n = feed.len();
            let ids = Tensor::<i64>::from_array(([1usize, n], feed.clone()))?;
            let use_cache = Tensor::<bool>::from_array(([1usize], vec![!first]))?;
            let mut inputs: Vec<(Cow<'_, str>, ort::session::SessionInputValue<'_>)> = vec![
                ("input_ids".into(), ids.into()),
                ("encoder_hidden_states".into(), (&hidden).into()),
                ("use_cache_branch".into(), use_cache.into()),
            ];
            for ((name, _, _), value) in self.cache.iter().zip(&past) {
                inputs.push((Cow::Borrowed(name.as_str()), value.into()));
            }
            let mut out = self.decoder.run(inputs)?;
            let (accepted, next) = {
                let logits = out
                    .get("logits")
                    .ok_or_else(|| ort::Error::new("the decoder gave no logits"))?;
                let (_, values) = logits.try_extract_tensor::<f32>()?;
                let width = values.len() / n.max(1);
                let rows: Vec<&[f32]> = values.chunks(width.max(1)).collect();
                let mut j = 0;
                while j + 1 < n && tokens.len() < cap {
                    let (t, p) = best(rows[j], vocab);
                    if t != feed[j + 1] {
                        break;
                    }
                    tokens.push(t);
                    probs.push(p);
                    j += 1;
                }
                (j + 1, best(rows[j], vocab))
            };
            for (k, (_, present, cross)) in self.cache.iter().enumerate() {
                // The cache branch returns dummies for the cross-attention cache: keep the
                // first call's.
                if (first || !cross)
                    && let Some(v) = out.remove(present)
                {
                    past[k] = if !cross && accepted < n {
                        // Positions after the hint's first disagreement are not the text.
                        keep_positions(&v, past_len + accepted)?
                    } else {
                        v
                    };
                }
            }
            drop(out);
            past_len += accepted;
            first = false;
            let (token, p) = next;
            if token == EOS || tokens.len() >= cap {
                break;
            }
            tokens.push(token);
            probs.push(p);
            if let Some(keep) = looping(&tokens) {
                tokens.truncate(keep);
                probs.truncate(keep);
                break;
            }
            feed = vec![token];
        }
        Ok(Decoded {
            words: self.tokenizer.words(&tokens, &probs),
            capped: tokens.len() >= cap,
            token_ids: tokens,
        })
    }
}

/// The first `keep` positions of a decoder cache tensor `[1, heads, positions, head size]`.
fn keep_positions(v: &DynValue, keep: usize) -> Result<DynValue, ort::Error> {
    let (shape, data) = v.try_extract_tensor::<f32>()?;
    let (heads, len, dim) = (shape[1] as usize, shape[2] as usize, shape[3] as usize);
    let keep = keep.min(len);
    let mut out = Vec::with_capacity(heads * keep * dim);
    for h in 0..heads {
        let at = h * len * dim;
        out.extend_from_slice(&data[at..at + keep * dim]);
    }
    Ok(Tensor::<f32>::from_array(([1, heads, keep, dim], out))?.into_dyn())
}

/// Where to cut when the text has started looping: the same run of tokens three times in a
/// row at the end (four for a single token) is kept once. The token cap bounds what this
/// misses.
fn looping(tokens: &[i64]) -> Option<usize> {
    for unit in 1..=8usize {
        let times = if unit == 1 { 4 } else { 3 };
        let n = unit * times;
        if tokens.len() < n {
            break;
        }
        let tail = &tokens[tokens.len() - n..];
        if tail.chunks(unit).all(|c| c == &tail[..unit]) {
            return Some(tokens.len() - n + unit);
        }
    }
    None
}

/// The most likely token and its probability (softmax over the logits).
fn best(row: &[f32], vocab: usize) -> (i64, f32) {
    let mut arg = 0usize;
    let mut max = f32::NEG_INFINITY;
    for (i, &v) in row.iter().enumerate() {
        if v > max {
            max = v;
            arg = i;
        }
    }
    let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
    let p = if sum > 0.0 { 1.0 / sum } else { 0.0 };
    // Ids past the vocabulary are padding rows of the output layer; never chosen in practice.
    let token = if arg < vocab { arg as i64 } else { EOS };
    (token, p)
}

impl Transcriber for Moonshine {
    fn transcribe(
        &mut self,
        audio: &[f32],
        pass: Pass,
        hint: &[i64],
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Decoded, String> {
        self.run(audio, pass, hint, cancelled)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_token_and_its_probability() {
        let (t, p) = best(&[0.0, 2.0, 0.0], 3);
        assert_eq!(t, 1);
        assert!((p - 2f32.exp() / (2.0 + 2f32.exp())).abs() < 1e-6);
        // An argmax beyond the vocabulary ends the text.
        assert_eq!(best(&[0.0, 0.0, 5.0], 2).0, EOS);
    }

    #[test]
    fn a_loop_is_kept_once() {
        assert_eq!(looping(&[5, 1, 2, 1, 2, 1, 2]), Some(3));
        assert_eq!(looping(&[1, 2, 3, 1, 2, 3]), None);
        assert_eq!(looping(&[7, 7, 7]), None);
        assert_eq!(looping(&[9, 7, 7, 7, 7]), Some(2));
    }

    #[test]
    fn missing_model_names_the_fix() {
        let err = check_files(Path::new("/nonexistent/moonshine")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("scripts/fetch-model.sh /nonexistent/moonshine"),
            "{msg}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ENCODER), b"x").unwrap();
        let msg = check_files(dir.path()).unwrap_err().to_string();
        assert!(msg.contains("incomplete") && msg.contains(DECODER), "{msg}");
    }

    #[test]
    fn a_library_that_is_not_onnx_runtime_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join(LIBRARY);
        std::fs::write(&lib, b"not a library").unwrap();
        let msg = check_library(&lib).unwrap_err();
        assert!(msg.contains("cannot load"), "{msg}");
    }
}
