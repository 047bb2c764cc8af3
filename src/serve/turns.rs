//! The Flux turn state machine, driven hop by hop (10 ms of audio) by the VAD.
//!
//! Everything runs on audio time, counted in hops, so the events depend only on the audio
//! and the control messages' positions in it, never on how fast the audio arrived.
//!
//! - A turn starts (`StartOfTurn`, with its first word) once 0.2 s of speech has been heard
//!   with no gap of 0.3 s or more; the turn's speech starts at the first of those hops.
//! - While it goes on, one more script word is revealed per 0.3 s of the turn's audio (from
//!   the start of its speech, pauses included), so `Update`, `EagerEndOfTurn` and
//!   `TurnResumed` show text growing with the audio, as the service's do; `EndOfTurn` carries
//!   the whole line.
//! - `end_of_turn_confidence` = min(trailing silence / 0.6 s, 0.99): 0 while speaking, and
//!   never 1.0, so `eot_threshold=1.0` leaves only the timeout and `ForceEndTurn`.
//! - `EagerEndOfTurn` when the confidence reaches `eager_eot_threshold` (if set); `TurnResumed`
//!   when speech comes back after it; `EndOfTurn` when it reaches `eot_threshold` (`model`),
//!   when `eot_timeout_ms` of silence follow the last speech (`timeout`), or on `ForceEndTurn`
//!   (`manual`). An `EndOfTurn` can therefore carry more words than the `EagerEndOfTurn`
//!   before it, where the service promises the same transcript (docs/serve.md).
//! - `Update` after every 0.25 s of audio without another `TurnInfo`, between turns too.
//! - Windows: a turn's window starts where the previous turn ended and ends at the audio
//!   processed so far; word times are spread evenly over the turn's speech.

use crate::protocol::{Trigger, TurnEvent, TurnInfo, Word};
use crate::serve::script::{PLACEHOLDER, Script};
use crate::serve::vad;
use std::sync::Arc;

/// Voiced hops before a turn starts (the "first word").
pub const START_HOPS: u64 = 20;
/// A gap this long (hops) forgets speech that had not yet started a turn.
pub const CANDIDATE_RESET_HOPS: u64 = 30;
/// Hops of the turn's audio per further script word.
pub const WORD_HOPS: u64 = 30;
/// Hops between `Update`s.
pub const UPDATE_HOPS: u64 = 25;
/// Silence hops at which the confidence would reach 1.0 (0.6 s).
pub const FULL_CONFIDENCE_HOPS: f64 = 60.0;
/// The confidence never goes above this.
pub const CONFIDENCE_CAP: f64 = 0.99;
/// Confidence of a script word / of the placeholder word.
pub const SCRIPT_WORD_CONFIDENCE: f64 = 0.98;
pub const PLACEHOLDER_CONFIDENCE: f64 = 0.5;

/// The thresholds in force when a hop is processed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub eot_threshold: f64,
    pub eager_eot_threshold: Option<f64>,
    pub eot_timeout_ms: u32,
}

/// The confidence after `silence` hops of trailing silence.
pub fn confidence(silence: u64) -> f64 {
    let c = (silence as f64 / FULL_CONFIDENCE_HOPS).min(CONFIDENCE_CAP);
    (c * 100.0).round() / 100.0
}

/// Silence hops needed for the confidence to reach `threshold`, or `None` if it never does.
pub fn hops_to_reach(threshold: f64) -> Option<u64> {
    (threshold <= CONFIDENCE_CAP)
        .then(|| (threshold * FULL_CONFIDENCE_HOPS - 1e-9).ceil().max(0.0) as u64)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Where the turn engine stands, for a recognizer that supplies the words (`--asr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Hops processed.
    pub hops: u64,
    pub open: bool,
    pub turn_index: u64,
    /// The open turn's speech: first voiced hop, and the end of the last one.
    pub speech_start: u64,
    pub speech_end: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Ongoing,
    AwaitingEnd,
}

#[derive(Debug)]
pub struct Turns {
    rate: u64,
    hop_len: u64,
    script: Arc<Script>,
    /// Hops processed.
    hops: u64,
    phase: Phase,
    turn_index: u64,
    window_start: u64,
    /// Audio reported by the latest `TurnInfo` (hops), for the `Update` cadence.
    reported: u64,
    // Speech heard between turns that has not started one yet.
    candidate_start: Option<u64>,
    candidate_voiced: u64,
    candidate_gap: u64,
    // The open turn.
    speech_start: u64,
    speech_end: u64,
    voiced: u64,
    silence: u64,
    revealed: usize,
}

impl Turns {
    pub fn new(rate: u32, script: Arc<Script>) -> Turns {
        Turns {
            rate: u64::from(rate.max(1)),
            hop_len: vad::hop_len(rate) as u64,
            script,
            hops: 0,
            phase: Phase::Idle,
            turn_index: 0,
            window_start: 0,
            reported: 0,
            candidate_start: None,
            candidate_voiced: 0,
            candidate_gap: 0,
            speech_start: 0,
            speech_end: 0,
            voiced: 0,
            silence: 0,
            revealed: 0,
        }
    }

    /// Seconds of audio at the end of hop `hops`.
    pub fn seconds(&self, hops: u64) -> f64 {
        round3((hops * self.hop_len) as f64 / self.rate as f64)
    }

    /// Seconds of audio processed (whole hops).
    pub fn processed_seconds(&self) -> f64 {
        self.seconds(self.hops)
    }

    pub fn turn_open(&self) -> bool {
        self.phase != Phase::Idle
    }

    /// The state a recognizer needs. After an `EndOfTurn` the speech span still describes the
    /// turn that just ended (`open` is false, `turn_index` is the next turn's).
    pub fn span(&self) -> Span {
        Span {
            hops: self.hops,
            open: self.turn_open(),
            turn_index: self.turn_index,
            speech_start: self.speech_start,
            speech_end: self.speech_end,
        }
    }

    /// Processes one hop; returns the events it caused (at most two).
    pub fn on_hop(&mut self, voiced: bool, s: &Settings) -> Vec<TurnInfo> {
        let hop = self.hops;
        self.hops += 1;
        let mut out = Vec::new();
        match self.phase {
            Phase::Idle => {
                if voiced {
                    let start = *self.candidate_start.get_or_insert(hop);
                    self.candidate_voiced += 1;
                    self.candidate_gap = 0;
                    if self.candidate_voiced >= START_HOPS {
                        self.phase = Phase::Ongoing;
                        self.speech_start = start;
                        self.speech_end = self.hops;
                        self.voiced = self.candidate_voiced;
                        self.silence = 0;
                        self.revealed = 0;
                        self.reveal_by_audio();
                        self.forget_candidate();
                        out.push(self.info(TurnEvent::StartOfTurn, None));
                    }
                } else if self.candidate_start.is_some() {
                    self.candidate_gap += 1;
                    if self.candidate_gap >= CANDIDATE_RESET_HOPS {
                        self.forget_candidate();
                    }
                }
            }
            Phase::Ongoing | Phase::AwaitingEnd => {
                if voiced {
                    self.silence = 0;
                    self.voiced += 1;
                    self.speech_end = self.hops;
                    self.reveal_by_audio();
                    if self.phase == Phase::AwaitingEnd {
                        self.phase = Phase::Ongoing;
                        out.push(self.info(TurnEvent::TurnResumed, None));
                    }
                } else {
                    self.silence += 1;
                    self.reveal_by_audio();
                    let silence = self.silence;
                    let reached = |t: f64| hops_to_reach(t).is_some_and(|h| silence >= h);
                    if self.phase == Phase::Ongoing && s.eager_eot_threshold.is_some_and(reached) {
                        self.phase = Phase::AwaitingEnd;
                        out.push(self.info(TurnEvent::EagerEndOfTurn, None));
                    }
                    let timed_out = self.silence * self.hop_len * 1000
                        >= u64::from(s.eot_timeout_ms) * self.rate;
                    if reached(s.eot_threshold) {
                        out.push(self.end_turn(Trigger::Model));
                    } else if timed_out {
                        out.push(self.end_turn(Trigger::Timeout));
                    }
                }
            }
        }
        if out.is_empty() && self.hops - self.reported >= UPDATE_HOPS {
            out.push(self.info(TurnEvent::Update, None));
        }
        out
    }

    /// `ForceEndTurn`: ends the open turn, or `None` when no turn is open.
    pub fn force_end(&mut self) -> Option<TurnInfo> {
        self.turn_open().then(|| self.end_turn(Trigger::Manual))
    }

    /// The `Update` owed for audio received but not yet reported (on `CloseStream`).
    /// `received_seconds` counts samples short of a whole hop too.
    pub fn final_update(&mut self, received_seconds: f64) -> Option<TurnInfo> {
        if received_seconds <= self.seconds(self.reported) {
            return None;
        }
        let mut info = self.info(TurnEvent::Update, None);
        info.audio_window_end = round3(received_seconds);
        Some(info)
    }

    fn forget_candidate(&mut self) {
        self.candidate_start = None;
        self.candidate_voiced = 0;
        self.candidate_gap = 0;
    }

    fn end_turn(&mut self, trigger: Trigger) -> TurnInfo {
        self.revealed = self.line().len();
        let info = self.info(TurnEvent::EndOfTurn, Some(trigger));
        self.turn_index += 1;
        self.window_start = self.hops;
        self.phase = Phase::Idle;
        self.silence = 0;
        self.forget_candidate();
        info
    }

    /// The words of the current turn: its script line, or the placeholder.
    fn line(&self) -> Vec<&str> {
        match self.script.words(self.turn_index) {
            Some(words) => words.iter().map(String::as_str).collect(),
            None => vec![PLACEHOLDER],
        }
    }

    /// Reveals the words due for the audio of the turn so far: the first with `StartOfTurn`,
    /// then one per [`WORD_HOPS`].
    fn reveal_by_audio(&mut self) {
        let turn_hops = (self.hops - self.speech_start).max(self.voiced);
        let due = 1 + (turn_hops.saturating_sub(START_HOPS) / WORD_HOPS) as usize;
        self.revealed = self.revealed.max(due.min(self.line().len()));
    }

    fn info(&mut self, event: TurnEvent, trigger: Option<Trigger>) -> TurnInfo {
        self.reported = self.hops;
        let words = if self.phase == Phase::Idle && trigger.is_none() {
            Vec::new()
        } else {
            self.words()
        };
        let transcript = words
            .iter()
            .map(|w| w.word.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let confidence = if self.phase == Phase::Idle && trigger.is_none() {
            0.0
        } else {
            confidence(self.silence)
        };
        TurnInfo {
            request_id: String::new(),
            sequence_id: 0,
            event,
            turn_index: self.turn_index,
            audio_window_start: self.seconds(self.window_start),
            audio_window_end: self.seconds(self.hops),
            transcript,
            words,
            end_of_turn_confidence: confidence,
            languages: None,
            languages_hinted: None,
            trigger,
            extra: Default::default(),
        }
    }

    /// The revealed words, their times spread evenly over the turn's speech.
    fn words(&self) -> Vec<Word> {
        let line = self.line();
        let scripted = self.script.words(self.turn_index).is_some();
        let k = self.revealed.min(line.len()).max(1);
        let span = (self.speech_end - self.speech_start) as f64;
        let at = |j: usize| {
            let hops = self.speech_start as f64 + span * j as f64 / k as f64;
            round3(hops * self.hop_len as f64 / self.rate as f64)
        };
        line.iter()
            .take(k)
            .enumerate()
            .map(|(j, w)| Word {
                word: w.to_string(),
                confidence: if scripted {
                    SCRIPT_WORD_CONFIDENCE
                } else {
                    PLACEHOLDER_CONFIDENCE
                },
                start: Some(at(j)),
                end: Some(at(j + 1)),
                extra: Default::default(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: Settings = Settings {
        eot_threshold: 0.7,
        eager_eot_threshold: None,
        eot_timeout_ms: 5000,
    };

    fn run(turns: &mut Turns, pattern: &[(bool, u64)], s: &Settings) -> Vec<TurnInfo> {
        let mut out = Vec::new();
        for (voiced, n) in pattern {
            for _ in 0..*n {
                out.extend(turns.on_hop(*voiced, s));
            }
        }
        out
    }

    fn events(infos: &[TurnInfo]) -> Vec<String> {
        infos
            .iter()
            .filter(|i| i.event != TurnEvent::Update)
            .map(|i| format!("{}@{}", i.event, i.audio_window_end))
            .collect()
    }

    #[test]
    fn the_mapping_table() {
        assert_eq!(hops_to_reach(0.5), Some(30));
        assert_eq!(hops_to_reach(0.7), Some(42));
        assert_eq!(hops_to_reach(0.9), Some(54));
        assert_eq!(hops_to_reach(0.99), Some(60));
        assert_eq!(hops_to_reach(1.0), None);
        assert_eq!(confidence(0), 0.0);
        assert_eq!(confidence(42), 0.7);
        assert_eq!(confidence(1000), 0.99);
    }

    #[test]
    fn a_turn_with_script_words() {
        let script = Arc::new(Script::parse("one two three four five\n"));
        let mut t = Turns::new(16000, script);
        let out = run(&mut t, &[(false, 50), (true, 100), (false, 60)], &DEFAULT);
        assert_eq!(events(&out), ["StartOfTurn@0.7", "EndOfTurn@1.92"]);
        let start = out
            .iter()
            .find(|i| i.event == TurnEvent::StartOfTurn)
            .unwrap();
        assert_eq!(start.transcript, "one");
        assert_eq!(start.words[0].start, Some(0.5));
        let end = out
            .iter()
            .find(|i| i.event == TurnEvent::EndOfTurn)
            .unwrap();
        assert_eq!(end.transcript, "one two three four five");
        assert_eq!(end.trigger, Some(Trigger::Model));
        assert_eq!(end.end_of_turn_confidence, 0.7);
        assert_eq!(end.words.last().unwrap().end, Some(1.5));
        // Updates every 0.25 s of audio when nothing else happened, before and after.
        let updates: Vec<f64> = out
            .iter()
            .filter(|i| i.event == TurnEvent::Update)
            .map(|i| i.audio_window_end)
            .collect();
        assert_eq!(&updates[..3], &[0.25, 0.5, 0.95]);
        let next = t.on_hop(false, &DEFAULT);
        assert!(next.is_empty());
        assert_eq!(t.turn_index, 1);
    }

    #[test]
    fn eager_resumed_and_timeout_with_manual_threshold() {
        let s = Settings {
            eot_threshold: 1.0,
            eager_eot_threshold: Some(0.4),
            eot_timeout_ms: 1000,
        };
        let mut t = Turns::new(8000, Arc::new(Script::default()));
        let out = run(
            &mut t,
            &[(true, 30), (false, 30), (true, 30), (false, 120)],
            &s,
        );
        assert_eq!(
            events(&out),
            [
                "StartOfTurn@0.2",
                "EagerEndOfTurn@0.54",
                "TurnResumed@0.61",
                "EagerEndOfTurn@1.14",
                "EndOfTurn@1.9"
            ]
        );
        let end = out.last().unwrap();
        assert_eq!(end.trigger, Some(Trigger::Timeout));
        assert_eq!(end.transcript, PLACEHOLDER);
        assert_eq!(end.end_of_turn_confidence, 0.99);
    }

    /// Words appear in proportion to the turn's audio, pauses included; an eager end shows
    /// only what is due, the end the whole line.
    #[test]
    fn words_grow_with_the_turns_audio_and_the_end_has_them_all() {
        let line = "a b c d e f g h i j k l";
        let s = Settings {
            eot_threshold: 0.7,
            eager_eot_threshold: Some(0.4),
            eot_timeout_ms: 5000,
        };
        let mut t = Turns::new(16000, Arc::new(Script::parse(line)));
        // 1.1 s of speech, a 0.3 s pause (eager, then resumed), 0.6 s more, then silence.
        let out = run(
            &mut t,
            &[(true, 110), (false, 30), (true, 60), (false, 60)],
            &s,
        );
        let counts: Vec<(String, usize)> = out
            .iter()
            .filter(|i| i.turn_index == 0 && !i.transcript.is_empty())
            .map(|i| (i.event.to_string(), i.words.len()))
            .collect();
        let n: Vec<usize> = counts.iter().map(|(_, n)| *n).collect();
        assert!(n.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        assert_eq!(counts[0], ("StartOfTurn".to_string(), 1));
        // 0.2 s to start, then one word per 0.3 s of the turn's audio.
        let eager = out
            .iter()
            .find(|i| i.event == TurnEvent::EagerEndOfTurn)
            .unwrap();
        assert_eq!(eager.transcript, "a b c d");
        let resumed = out
            .iter()
            .find(|i| i.event == TurnEvent::TurnResumed)
            .unwrap();
        assert_eq!(resumed.transcript, "a b c d e");
        let end = out.last().unwrap();
        assert_eq!(end.event, TurnEvent::EndOfTurn);
        assert_eq!(end.transcript, line);
        assert!(
            counts
                .iter()
                .any(|(e, n)| e == "Update" && *n > 1 && *n < 12)
        );
    }

    #[test]
    fn short_blips_do_not_start_turns_and_force_end_needs_a_turn() {
        let mut t = Turns::new(16000, Arc::new(Script::default()));
        let out = run(
            &mut t,
            &[(true, 10), (false, 30), (true, 10), (false, 100)],
            &DEFAULT,
        );
        assert!(events(&out).is_empty());
        assert!(t.force_end().is_none());
        run(&mut t, &[(true, 25)], &DEFAULT);
        let end = t.force_end().unwrap();
        assert_eq!(end.trigger, Some(Trigger::Manual));
        assert_eq!(end.turn_index, 0);
        assert!(!t.turn_open());
    }
}
