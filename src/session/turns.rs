//! Follows the turn state from TurnInfo events, so that a turn left open when the stream
//! closes can still be reported with its latest transcript.

use crate::protocol::{TurnEvent, TurnInfo};

#[derive(Debug, Default)]
pub struct TurnTracker {
    open: Option<TurnInfo>,
    finished: u64,
    /// Audio the server has reported on, in seconds (max `audio_window_end` seen).
    heard_until: f64,
    /// Where the last finished turn's window ended, in seconds.
    last_end: f64,
}

impl TurnTracker {
    pub fn observe(&mut self, t: &TurnInfo) {
        self.heard_until = self.heard_until.max(t.audio_window_end);
        match t.event {
            TurnEvent::EndOfTurn => {
                self.open = None;
                self.finished += 1;
                self.last_end = self.last_end.max(t.audio_window_end);
            }
            // An Update between turns carries an empty transcript and opens nothing.
            TurnEvent::Update if self.open.is_none() && t.transcript.trim().is_empty() => {}
            _ => self.open = Some(t.clone()),
        }
    }

    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    pub fn finished(&self) -> u64 {
        self.finished
    }

    pub fn heard_until(&self) -> f64 {
        self.heard_until
    }

    /// Where the last finished turn ended (0 before the first).
    pub fn last_end(&self) -> f64 {
        self.last_end
    }

    /// The open turn's latest state, if it has any text; the turn is then considered closed.
    pub fn take_unconfirmed(&mut self) -> Option<TurnInfo> {
        self.open.take().filter(|t| !t.transcript.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ti(event: TurnEvent, transcript: &str, end: f64) -> TurnInfo {
        TurnInfo {
            request_id: String::new(),
            sequence_id: 0,
            event,
            turn_index: 0,
            audio_window_start: 0.0,
            audio_window_end: end,
            transcript: transcript.into(),
            words: vec![],
            end_of_turn_confidence: 0.0,
            languages: None,
            languages_hinted: None,
            trigger: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn tracks_open_turn_and_its_last_update() {
        let mut t = TurnTracker::default();
        t.observe(&ti(TurnEvent::Update, "", 0.25));
        assert!(!t.is_open());
        t.observe(&ti(TurnEvent::StartOfTurn, "hi", 0.5));
        t.observe(&ti(TurnEvent::Update, "hi there", 0.75));
        assert!(t.is_open());
        assert_eq!(t.heard_until(), 0.75);
        assert_eq!(t.take_unconfirmed().unwrap().transcript, "hi there");
        assert!(t.take_unconfirmed().is_none());
    }

    #[test]
    fn end_of_turn_closes_and_counts() {
        let mut t = TurnTracker::default();
        t.observe(&ti(TurnEvent::StartOfTurn, "a", 0.5));
        t.observe(&ti(TurnEvent::EndOfTurn, "a b", 1.0));
        assert!(!t.is_open());
        assert_eq!(t.finished(), 1);
        assert!(t.take_unconfirmed().is_none());
    }
}
