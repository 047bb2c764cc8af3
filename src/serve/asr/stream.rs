//! One stream's side of the recognizer: the audio of the open turn, the texts of its partial
//! and final decodes, and how they fill the turn engine's `TurnInfo`s.
//!
//! - `Update`s on the turn engine's cadence re-decode the open turn (latest wins): the tick
//!   starts a partial decode and its `Update` is sent when the text is ready, so an Update's
//!   `audio_window_end` is the audio its text was decoded from. A tick that finds the stream's
//!   decode still running is owed, not answered with stale text: when the decode is done, the
//!   latest owed tick (a later one replaces an earlier) starts the next decode at once, unless
//!   another stream's tick was refused meanwhile (then the worker is left to it). A tick
//!   the pool refuses (every worker busy with other streams) sends the previous text, so a
//!   stream keeps hearing from the server when Updates thin under load. A tick with no new
//!   speech since a decode that already had [`TAIL_HOPS`] of silence after the last word (the
//!   pause before the end of a turn) repeats that text without decoding: more silence does not
//!   change it, and the pause is when the final decode is about to need the worker.
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
    /// Where the decoded audio started and ended (hops) and the turn's speech end then.
    from: u64,
    to: u64,
    speech_end: u64,
    /// The pool's refused partials when this one started.
    thinned: u64,
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
    /// The latest tick that came while `pending` ran, and the turn engine's span then.
    owed: Option<(TurnInfo, Span)>,
    /// The audio of the latest partial text: (from, to, speech end), in hops.
    decoded: Option<(u64, u64, u64)>,
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
            owed: None,
            decoded: None,
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
    /// An owed tick's decode starts as soon as this one is done.
    pub async fn ready(&mut self) -> Option<TurnInfo> {
        let pending = self.pending.as_mut()?;
        let result = (&mut pending.reply).await;
        let Pending {
            mut info,
            turn,
            from,
            to,
            speech_end,
            thinned,
            ..
        } = self.pending.take()?;
        let owed = self.owed.take();
        if self.turn != Some(turn) || from != self.piece_start {
            return None;
        }
        if let Ok(Ok(decoded)) = result {
            self.decoded = Some((from, to, speech_end));
            self.hint = decoded.token_ids.clone();
            let mut words = self.committed.clone();
            words.extend(self.spread(&decoded, from, speech_end));
            self.latest = words;
        }
        fill(&mut info, &self.latest);
        info.audio_window_end = info.audio_window_end.max(self.last_end);
        self.last_end = info.audio_window_end;
        // The owed tick's decode, if the pool takes it (refused, the next tick tries again; its
        // previous-text Update would only repeat this one). Not when another stream was refused
        // while this decode ran: the freed worker goes to its next tick instead of this stream
        // holding it from decode to decode.
        if let Some((tick, span)) = owed
            && tick.turn_index == turn
            && self.recognizer.pool.thinned() == thinned
            && !self.nothing_new(&span)
        {
            self.start_partial(&tick, &span);
        }
        Some(info)
    }

    /// Starts the partial decode for a tick, whose `Update` then waits for it; `false` when
    /// the pool refused (every worker busy).
    fn start_partial(&mut self, info: &TurnInfo, span: &Span) -> bool {
        let audio = self.segment(self.piece_start, span.hops);
        let thinned = self.recognizer.pool.thinned();
        let Some(reply) = self
            .recognizer
            .pool
            .try_submit_partial(audio, self.hint.clone())
        else {
            return false;
        };
        self.pending = Some(Pending {
            reply,
            info: info.clone(),
            turn: info.turn_index,
            from: self.piece_start,
            to: span.hops,
            speech_end: span.speech_end,
            thinned,
        });
        true
    }

    /// Whether the latest partial text already covers this span's speech and enough silence
    /// after it that decoding again would give the same text.
    fn nothing_new(&self, span: &Span) -> bool {
        self.decoded.is_some_and(|(from, to, speech_end)| {
            from == self.piece_start
                && speech_end == span.speech_end
                && to >= speech_end + TAIL_HOPS
        })
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
                self.owed = None;
                self.decoded = None;
                self.final_text = None;
                fill(info, &self.latest);
                true
            }
            TurnEvent::Update if span.open => {
                self.commit_long_piece(span).await;
                if !self.recognizer.partials {
                    fill(info, &self.latest);
                    self.last_end = info.audio_window_end;
                    return true;
                }
                if self.pending.is_some() {
                    // Latest wins: this tick replaces any earlier one owed.
                    self.owed = Some((info.clone(), *span));
                    return false;
                }
                if !self.nothing_new(span) && self.start_partial(info, span) {
                    return false;
                }
                fill(info, &self.latest);
                self.last_end = info.audio_window_end;
                true
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
                    self.decoded = None;
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
        // A partial in flight, and a tick owed one, are stale now.
        self.pending = None;
        self.owed = None;
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
            self.owed = None;
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
        TurnInfo::empty(event)
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
    async fn a_tick_during_a_decode_is_owed_latest_wins_and_the_final_waits() {
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
        tick.audio_window_end = 1.1;
        assert!(!s.on_event(&mut tick, &span(110, 110)).await);
        assert!(s.has_pending());
        assert_eq!(calls.recv().unwrap(), (17_600, Pass::Partial, vec![]));
        // The next ticks find it running: nothing submitted, nothing sent; the latest is owed.
        for hops in [135, 160] {
            let mut owed = info(TurnEvent::Update);
            owed.audio_window_end = hops as f64 / 100.0;
            assert!(!s.on_event(&mut owed, &span(hops, hops)).await);
        }
        assert!(calls.try_recv().is_err());
        release.send(()).unwrap();
        let update = s.ready().await.expect("the deferred Update");
        assert_eq!(update.transcript, "w1 w2");
        // Its window is the audio its text was decoded from.
        assert_eq!(update.audio_window_end, 1.1);
        assert_eq!(update.words[0].confidence, 0.9);
        assert_eq!(
            (update.words[0].start, update.words[1].end),
            (Some(0.1), Some(1.1))
        );
        // The owed tick (the latest, 1.6 s) is decoded at once, hinted with the text so far.
        assert!(s.has_pending());
        assert_eq!(calls.recv().unwrap(), (25_600, Pass::Partial, vec![1, 2]));
        release.send(()).unwrap();
        let update = s.ready().await.expect("the owed tick's Update");
        assert_eq!(update.transcript, "w1 w2 w3");
        assert_eq!(update.audio_window_end, 1.6);
        assert!(!s.has_pending());
        assert!(calls.try_recv().is_err());
        // The end of the turn waits for a final decode, hinted with the last tokens.
        let releaser = std::thread::spawn(move || release.send(()).unwrap());
        let mut end = info(TurnEvent::EndOfTurn);
        let mut ended = span(200, 170);
        ended.open = false;
        assert!(s.on_event(&mut end, &ended).await);
        releaser.join().unwrap();
        assert_eq!(calls.recv().unwrap(), (30_400, Pass::Final, vec![1, 2, 3]));
        assert_eq!(end.transcript, "w1 w2 w3");
        // Between turns, Updates are empty and decode nothing.
        let mut idle = info(TurnEvent::Update);
        let mut between = span(220, 170);
        between.open = false;
        assert!(s.on_event(&mut idle, &between).await);
        assert_eq!(idle.transcript, "");
    }

    #[tokio::test]
    async fn an_owed_tick_yields_the_worker_to_a_refused_stream() {
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
        let mut a = AsrStream::new(rec.clone(), 16_000, 160);
        let mut b = AsrStream::new(rec.clone(), 16_000, 160);
        for s in [&mut a, &mut b] {
            s.push(&vec![0.1; 48_000]);
            let mut start = info(TurnEvent::StartOfTurn);
            assert!(s.on_event(&mut start, &span(30, 30)).await);
        }
        // A's decode runs; its next tick is owed; B's tick is refused (the one worker is busy).
        assert!(
            !a.on_event(&mut info(TurnEvent::Update), &span(110, 110))
                .await
        );
        assert_eq!(calls.recv().unwrap().0, 17_600);
        assert!(
            !a.on_event(&mut info(TurnEvent::Update), &span(135, 135))
                .await
        );
        assert!(
            b.on_event(&mut info(TurnEvent::Update), &span(110, 110))
                .await
        );
        release.send(()).unwrap();
        assert_eq!(a.ready().await.unwrap().transcript, "w1 w2");
        // A leaves the worker to B's next tick.
        assert!(!a.has_pending());
        assert!(
            !b.on_event(&mut info(TurnEvent::Update), &span(135, 135))
                .await
        );
        assert_eq!(calls.recv().unwrap().0, 21_600);
        release.send(()).unwrap();
        assert_eq!(b.ready().await.unwrap().transcript, "w1 w2");
    }

    #[tokio::test]
    async fn silence_after_the_last_word_is_not_decoded_again() {
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
        let mut s = AsrStream::new(rec.clone(), 16_000, 160);
        s.push(&vec![0.1; 48_000]);
        let mut start = info(TurnEvent::StartOfTurn);
        assert!(s.on_event(&mut start, &span(30, 30)).await);
        // Speech until hop 80, decoded to hop 90: too little silence after it to be sure.
        let mut tick = info(TurnEvent::Update);
        assert!(!s.on_event(&mut tick, &span(90, 80)).await);
        assert_eq!(calls.recv().unwrap().0, 14_400);
        release.send(()).unwrap();
        assert_eq!(s.ready().await.unwrap().transcript, "w1");
        // Still no new speech, now decoded with 0.2 s of silence after it.
        let mut tick = info(TurnEvent::Update);
        assert!(!s.on_event(&mut tick, &span(100, 80)).await);
        assert_eq!(calls.recv().unwrap().0, 16_000);
        release.send(()).unwrap();
        assert_eq!(s.ready().await.unwrap().transcript, "w1 w2");
        // More silence: the text is repeated at once, nothing decoded.
        let mut pause = info(TurnEvent::Update);
        pause.audio_window_end = 1.25;
        assert!(s.on_event(&mut pause, &span(125, 80)).await);
        assert_eq!(pause.transcript, "w1 w2");
        assert!(!s.has_pending());
        assert!(calls.try_recv().is_err());
        // Speech again: decoded.
        let mut tick = info(TurnEvent::Update);
        assert!(!s.on_event(&mut tick, &span(150, 140)).await);
        assert_eq!(calls.recv().unwrap().0, 24_000);
        release.send(()).unwrap();
        assert_eq!(s.ready().await.unwrap().transcript, "w1 w2 w3");
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
