//! One stream's side of the recognizer: the audio of the open turn, the texts of its partial
//! and final decodes, and how they fill the turn engine's `TurnInfo`s.
//!
//! - `Update`s on the turn engine's cadence re-decode the open turn (latest wins): the tick
//!   starts a partial decode and its `Update` is sent when the text is ready; a tick that finds
//!   a decode still running starts none (never queued) and sends the previous text, as does a
//!   tick the pool refuses (every worker busy), so the client hears from the server on the
//!   usual cadence however slow the decoding.
//! - `EagerEndOfTurn` and `EndOfTurn` wait for a final decode of the turn's speech (an
//!   `EndOfTurn` right after an `EagerEndOfTurn` with no speech between reuses its text).
//! - A turn longer than [`PIECE_SECONDS`] is committed in pieces: the model was trained on
//!   segments of 30 s or less, so the oldest part is decoded for good, cut at the quietest
//!   100 ms of its last few seconds, and later decodes start after it.
//! - Words get times spread evenly over their piece's speech (the model gives no word times),
//!   and a confidence: the geometric mean of their tokens' probabilities, an approximation.

use super::pool::Reply;
use super::{Decoded, Recognizer};
use crate::protocol::{TurnEvent, TurnInfo, Word};
use crate::serve::turns::Span;
use std::sync::Arc;

/// Longest stretch of a turn decoded as one segment.
pub const PIECE_SECONDS: f64 = 20.0;
/// A long turn's piece is cut in its last this many seconds, at the quietest point.
const CUT_SEARCH_SECONDS: f64 = 5.0;
/// Audio kept before a turn's first voiced hop (the detector starts a little late) and after
/// its last (the model likes a little silence after the last word), in hops.
const LEAD_HOPS: u64 = 10;
const TAIL_HOPS: u64 = 20;
/// Audio kept while no turn is open, in hops (a turn's speech starts at most this far back).
const IDLE_KEEP_HOPS: u64 = 400;

/// A deferred `Update`: sent when its partial decode is ready.
struct Pending {
    reply: Reply,
    info: TurnInfo,
    turn: u64,
    /// Where the decoded audio started (hops) and the turn's speech span at the time.
    from: u64,
    speech_end: u64,
}

pub struct AsrStream {
    recognizer: Arc<Recognizer>,
    rate: u32,
    hop_len: u64,
    /// Audio from `base` (a sample index) on, at the stream's rate.
    audio: Vec<f32>,
    base: u64,
    /// The open turn: its index, the start of its uncommitted part (hops), its committed words.
    turn: Option<u64>,
    piece_start: u64,
    committed: Vec<Word>,
    /// The latest text of the open turn (committed words included).
    latest: Vec<Word>,
    /// The tokens of the latest decode of the uncommitted part: the next decode's hint.
    hint: Vec<i64>,
    pending: Option<Pending>,
    /// The latest `audio_window_end` sent in an `Update`: a deferred one never goes back.
    last_end: f64,
    /// The last final decode: (turn, speech end in hops, words).
    final_text: Option<(u64, u64, Vec<Word>)>,
}

impl AsrStream {
    pub fn new(recognizer: Arc<Recognizer>, rate: u32, hop_len: usize) -> AsrStream {
        AsrStream {
            recognizer,
            rate: rate.max(1),
            hop_len: hop_len.max(1) as u64,
            audio: Vec::new(),
            base: 0,
            turn: None,
            piece_start: 0,
            committed: Vec::new(),
            latest: Vec::new(),
            hint: Vec::new(),
            pending: None,
            last_end: 0.0,
            final_text: None,
        }
    }

    /// Adds received audio (call before running the turn engine over it).
    pub fn push(&mut self, samples: &[f32]) {
        self.audio.extend_from_slice(samples);
    }

    /// Drops audio no turn can need any more.
    pub fn trim(&mut self, span: &Span) {
        let keep_from = if span.open {
            self.piece_start
                .min(span.speech_start)
                .saturating_sub(LEAD_HOPS)
        } else {
            span.hops.saturating_sub(IDLE_KEEP_HOPS)
        };
        let keep_sample = keep_from * self.hop_len;
        // Trim in large steps so the copy is rare.
        if keep_sample > self.base + u64::from(self.rate) * 5 {
            let cut = usize::try_from(keep_sample - self.base)
                .unwrap_or(usize::MAX)
                .min(self.audio.len());
            self.audio.drain(..cut);
            self.base += cut as u64;
        }
    }

    /// Whether an `Update` is waiting for its text.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Waits for the pending partial decode; returns its `Update`, or `None` when the text
    /// came too late to matter (cancel-safe: the decode stays pending until it is ready).
    pub async fn ready(&mut self) -> Option<TurnInfo> {
        let pending = self.pending.as_mut()?;
        let result = (&mut pending.reply).await;
        let Pending {
            mut info,
            turn,
            from,
            speech_end,
            ..
        } = self.pending.take()?;
        if self.turn != Some(turn) || from != self.piece_start {
            return None;
        }
        if let Ok(Ok(decoded)) = result {
            self.hint = decoded.token_ids.clone();
            let mut words = self.committed.clone();
            words.extend(self.spread(&decoded, from, speech_end));
            self.latest = words;
        }
        fill(&mut info, &self.latest);
        info.audio_window_end = info.audio_window_end.max(self.last_end);
        self.last_end = info.audio_window_end;
        Some(info)
    }

    /// Fills a turn engine event with recognized words. Returns `false` when the event must
    /// not be sent now (an `Update` waiting for its decode).
    pub async fn on_event(&mut self, info: &mut TurnInfo, span: &Span) -> bool {
        match info.event {
            TurnEvent::StartOfTurn => {
                self.turn = Some(info.turn_index);
                self.piece_start = span.speech_start;
                self.committed.clear();
                self.latest.clear();
                self.hint.clear();
                self.pending = None;
                self.final_text = None;
                fill(info, &self.latest);
                true
            }
            TurnEvent::Update if span.open => {
                self.commit_long_piece(span).await;
                if self.pending.is_some() || !self.recognizer.partials {
                    fill(info, &self.latest);
                    self.last_end = info.audio_window_end;
                    return true;
                }
                let audio = self.segment(self.piece_start, span.hops);
                match self
                    .recognizer
                    .pool
                    .try_submit_partial(audio, self.hint.clone())
                {
                    Some(reply) => {
                        self.pending = Some(Pending {
                            reply,
                            info: info.clone(),
                            turn: info.turn_index,
                            from: self.piece_start,
                            speech_end: span.speech_end,
                        });
                        false
                    }
                    None => {
                        fill(info, &self.latest);
                        self.last_end = info.audio_window_end;
                        true
                    }
                }
            }
            TurnEvent::Update => {
                fill(info, &[]);
                true
            }
            TurnEvent::TurnResumed => {
                fill(info, &self.latest);
                true
            }
            TurnEvent::EagerEndOfTurn | TurnEvent::EndOfTurn => {
                let words = self.final_words(info.turn_index, span).await;
                fill(info, &words);
                if info.event == TurnEvent::EndOfTurn {
                    self.turn = None;
                    self.committed.clear();
                    self.latest.clear();
                    self.hint.clear();
                    self.final_text = None;
                } else {
                    self.latest = words;
                }
                true
            }
            _ => true,
        }
    }

    /// The open turn's text now (for the `Update` sent on `CloseStream`).
    pub fn fill_latest(&self, info: &mut TurnInfo) {
        fill(
            info,
            if self.turn.is_some() {
                &self.latest
            } else {
                &[]
            },
        );
    }

    async fn final_words(&mut self, turn_index: u64, span: &Span) -> Vec<Word> {
        // A partial in flight is stale now.
        self.pending = None;
        if let Some((turn, end, words)) = &self.final_text
            && *turn == turn_index
            && *end == span.speech_end
        {
            return words.clone();
        }
        self.commit_long_piece(span).await;
        let to = (span.speech_end + TAIL_HOPS).min(span.hops);
        let decoded = self.decode_final(self.piece_start, to).await;
        self.hint = decoded.token_ids.clone();
        let mut words = self.committed.clone();
        words.extend(self.spread(&decoded, self.piece_start, span.speech_end));
        self.final_text = Some((turn_index, span.speech_end, words.clone()));
        words
    }

    /// Commits the oldest part of a turn longer than a piece.
    async fn commit_long_piece(&mut self, span: &Span) {
        let hops_per_second = f64::from(self.rate) / self.hop_len as f64;
        let piece_hops = (PIECE_SECONDS * hops_per_second) as u64;
        while span.speech_end.saturating_sub(self.piece_start) > piece_hops {
            let search = (CUT_SEARCH_SECONDS * hops_per_second) as u64;
            let cut = self.quietest_hop(
                self.piece_start + piece_hops - search,
                self.piece_start + piece_hops,
            );
            let decoded = self.decode_final(self.piece_start, cut).await;
            let words = self.spread(&decoded, self.piece_start, cut);
            self.committed.extend(words);
            self.piece_start = cut;
            self.hint.clear();
            self.pending = None;
        }
    }

    async fn decode_final(&self, from: u64, to: u64) -> Decoded {
        let audio = self.segment(from, to);
        let reply = self.recognizer.pool.submit_final(audio, self.hint.clone());
        match reply.await {
            Ok(Ok(d)) => d,
            // The model failed on this audio: the turn goes on without its words rather than
            // ending the stream.
            _ => Decoded::default(),
        }
    }

    /// The middle of the quietest 100 ms in `[from, to)` hops.
    fn quietest_hop(&self, from: u64, to: u64) -> u64 {
        let window = 10u64;
        let mut best = (f64::INFINITY, to);
        let mut h = from;
        while h + window <= to {
            let energy: f64 = self
                .samples(h, h + window)
                .iter()
                .map(|&s| f64::from(s) * f64::from(s))
                .sum();
            if energy < best.0 {
                best = (energy, h + window / 2);
            }
            h += window / 2;
        }
        best.1
    }

    fn samples(&self, from_hop: u64, to_hop: u64) -> &[f32] {
        let idx = |hop: u64| {
            usize::try_from((hop * self.hop_len).saturating_sub(self.base))
                .unwrap_or(usize::MAX)
                .min(self.audio.len())
        };
        &self.audio[idx(from_hop)..idx(to_hop)]
    }

    /// 16 kHz audio for `[from, to)` hops, with a little lead-in.
    fn segment(&self, from: u64, to: u64) -> Vec<f32> {
        let lead = if from == self.piece_start && self.committed.is_empty() {
            LEAD_HOPS
        } else {
            0
        };
        resample_to_16k(self.samples(from.saturating_sub(lead), to), self.rate)
    }

    /// Words spread evenly over `[from, to)` hops, with their approximate confidences.
    fn spread(&self, decoded: &Decoded, from: u64, to: u64) -> Vec<Word> {
        let k = decoded.words.len().max(1) as f64;
        let span = to.saturating_sub(from) as f64;
        let at = |j: usize| {
            let hops = from as f64 + span * j as f64 / k;
            round3(hops * self.hop_len as f64 / f64::from(self.rate))
        };
        decoded
            .words
            .iter()
            .enumerate()
            .map(|(j, w)| Word {
                word: w.text.clone(),
                confidence: confidence(&w.token_probs),
                start: Some(at(j)),
                end: Some(at(j + 1)),
                extra: Default::default(),
            })
            .collect()
    }
}

/// The geometric mean of the token probabilities, rounded to 3 decimals.
fn confidence(probs: &[f32]) -> f64 {
    if probs.is_empty() {
        return 0.0;
    }
    let mean_log = probs
        .iter()
        .map(|&p| f64::from(p.max(1e-6)).ln())
        .sum::<f64>()
        / probs.len() as f64;
    round3(mean_log.exp())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn fill(info: &mut TurnInfo, words: &[Word]) {
    info.transcript = words
        .iter()
        .map(|w| w.word.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    info.words = words.to_vec();
}

/// Linear interpolation to 16 kHz (the model's rate); audio already at 16 kHz is copied.
pub fn resample_to_16k(samples: &[f32], rate: u32) -> Vec<f32> {
    const TARGET: u32 = 16_000;
    if rate == TARGET || samples.is_empty() {
        return samples.to_vec();
    }
    let step = f64::from(rate) / f64::from(TARGET);
    let n = (samples.len() as f64 / step).floor() as usize;
    (0..n)
        .map(|i| {
            let x = i as f64 * step;
            let j = x.floor() as usize;
            let frac = (x - j as f64) as f32;
            let a = samples[j.min(samples.len() - 1)];
            let b = samples[(j + 1).min(samples.len() - 1)];
            a + (b - a) * frac
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::asr::tokenizer::DecodedWord;
    use crate::serve::asr::{Pass, Transcriber};
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};

    /// Spells the audio's length in words (`"w1 w2 …"`, one per 0.5 s), each call waiting for
    /// the test's permission, and reports every call it gets.
    struct Gate {
        calls: mpsc::Sender<(usize, Pass, Vec<i64>)>,
        release: Arc<Mutex<mpsc::Receiver<()>>>,
    }

    impl Transcriber for Gate {
        fn transcribe(
            &mut self,
            audio: &[f32],
            pass: Pass,
            hint: &[i64],
            _: &dyn Fn() -> bool,
        ) -> Result<Decoded, String> {
            let _ = self.calls.send((audio.len(), pass, hint.to_vec()));
            let _ = self.release.lock().unwrap().recv();
            let n = audio.len() / 8000;
            Ok(Decoded {
                words: (1..=n)
                    .map(|i| DecodedWord {
                        text: format!("w{i}"),
                        token_probs: vec![0.81, 1.0],
                    })
                    .collect(),
                token_ids: (1..=n as i64).collect(),
                capped: false,
            })
        }
    }

    fn info(event: TurnEvent) -> TurnInfo {
        TurnInfo {
            request_id: String::new(),
            sequence_id: 0,
            event,
            turn_index: 0,
            audio_window_start: 0.0,
            audio_window_end: 0.0,
            transcript: String::new(),
            words: Vec::new(),
            end_of_turn_confidence: 0.0,
            languages: None,
            languages_hinted: None,
            trigger: None,
            extra: Default::default(),
        }
    }

    fn span(hops: u64, speech_end: u64) -> Span {
        Span {
            hops,
            open: true,
            turn_index: 0,
            speech_start: 10,
            speech_end,
        }
    }

    #[tokio::test]
    async fn a_running_decode_is_not_queued_behind_and_the_final_waits() {
        let (calls_tx, calls) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let rec = Arc::new(
            Recognizer::with(vec![Box::new(Gate {
                calls: calls_tx,
                release: Arc::new(Mutex::new(release_rx)),
            })])
            .unwrap(),
        );
        while rec.pool.idle_workers() == 0 {
            tokio::task::yield_now().await;
        }
        // 16 kHz, 10 ms hops: 3 s of audio.
        let mut s = AsrStream::new(rec.clone(), 16_000, 160);
        s.push(&vec![0.1; 48_000]);
        let mut start = info(TurnEvent::StartOfTurn);
        assert!(s.on_event(&mut start, &span(30, 30)).await);
        assert_eq!(start.transcript, "");
        // The tick starts a decode of the turn so far (from 0.1 s early) and waits for it.
        let mut tick = info(TurnEvent::Update);
        assert!(!s.on_event(&mut tick, &span(110, 110)).await);
        assert!(s.has_pending());
        assert_eq!(calls.recv().unwrap(), (17_600, Pass::Partial, vec![]));
        // The next tick finds it running: nothing new submitted, the previous (empty) text sent.
        let mut skipped = info(TurnEvent::Update);
        skipped.audio_window_end = 1.35;
        assert!(s.on_event(&mut skipped, &span(135, 135)).await);
        assert_eq!(skipped.transcript, "");
        release.send(()).unwrap();
        let update = s.ready().await.expect("the deferred Update");
        assert_eq!(update.transcript, "w1 w2");
        // Sent after the skipped tick's Update, it does not go back in audio time.
        assert_eq!(update.audio_window_end, 1.35);
        assert_eq!(update.words[0].confidence, 0.9);
        assert_eq!(
            (update.words[0].start, update.words[1].end),
            (Some(0.1), Some(1.1))
        );
        assert!(calls.try_recv().is_err());
        // The end of the turn waits for a final decode, hinted with the last tokens.
        let releaser = std::thread::spawn(move || release.send(()).unwrap());
        let mut end = info(TurnEvent::EndOfTurn);
        let mut ended = span(200, 170);
        ended.open = false;
        assert!(s.on_event(&mut end, &ended).await);
        releaser.join().unwrap();
        assert_eq!(calls.recv().unwrap(), (30_400, Pass::Final, vec![1, 2]));
        assert_eq!(end.transcript, "w1 w2 w3");
        // Between turns, Updates are empty and decode nothing.
        let mut idle = info(TurnEvent::Update);
        let mut between = span(220, 170);
        between.open = false;
        assert!(s.on_event(&mut idle, &between).await);
        assert_eq!(idle.transcript, "");
    }

    #[test]
    fn resampling_to_16k() {
        let x: Vec<f32> = (0..480).map(|i| i as f32).collect();
        let y = resample_to_16k(&x, 48_000);
        assert_eq!(y.len(), 160);
        assert_eq!((y[0], y[1], y[159]), (0.0, 3.0, 477.0));
        assert_eq!(resample_to_16k(&x, 16_000), x);
    }
}
