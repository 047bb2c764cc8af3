//! The one rule for when a frame is due, and the record of when each frame really went.
//!
//! Paced streams send frame `k` (stream time `t`) at `origin + t / pace`. The origin is the
//! moment the first connection came up (its `Connected`, or the upgrade where a provider
//! sends none), or, for a live source (stdin from a capture program), when the source's
//! audio began, if that was earlier: audio a live source produced while connecting then goes
//! at once instead of trailing its speaker for the whole stream. A live source's clock is
//! followed as it delivers (see [`Pacer::follow_source`]). While a paced source stalls, the
//! session covers the gap with silence once a frame is [`FILL_GRACE`] late.
//!
//! Every frame handed to the transport is recorded with the instant it went ([`SentLog`]):
//! end-of-turn latency is measured against those records, never against a re-derived
//! schedule.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// A paced source this late gets silence in its place.
pub const FILL_GRACE: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub struct Pacer {
    /// Real-time factor; `None` sends as fast as the transport takes it.
    pace: Option<f64>,
    /// The source produces audio as it happens: pacing follows its clock.
    live: bool,
    /// Wall-clock instant of stream time 0.
    origin: Instant,
    /// The origin has been set by a link-up.
    anchored: bool,
    /// When the source's audio began, as its deliveries tell.
    source_origin: Option<Instant>,
}

impl Pacer {
    pub fn new(pace: Option<f64>, live: bool, now: Instant) -> Pacer {
        Pacer {
            pace: pace.filter(|p| *p > 0.0),
            live,
            origin: now,
            anchored: false,
            source_origin: None,
        }
    }

    pub fn paced(&self) -> bool {
        self.pace.is_some()
    }

    /// A connection is ready for audio and no frame has gone yet: the clock starts now, or
    /// when a live source's audio began if that was earlier. (Once audio has gone, a new
    /// connection does not move the clock: audio that fell due during an outage goes at once.)
    pub fn anchor(&mut self, now: Instant) {
        self.origin = match (self.live, self.source_origin) {
            (true, Some(began)) => began.min(now),
            _ => now,
        };
        self.anchored = true;
    }

    /// A live source delivered audio up to stream time `delivered` at `ready`: it began no
    /// later than `ready - delivered / pace`. The latest such estimate wins, so a source whose
    /// clock runs slower than this machine's (sound cards differ by up to 0.01 %) moves the
    /// pacing clock along with it: its frames keep going out as they arrive, and silence is
    /// filled in only when it really stalls. A faster source (a file through `cat`) never
    /// moves it, so it is still held to the pace.
    pub fn follow_source(&mut self, ready: Instant, delivered: f64) {
        let (true, Some(pace)) = (self.live, self.pace) else {
            return;
        };
        let delivered = Duration::from_secs_f64(delivered.max(0.0) / pace);
        let began = ready.checked_sub(delivered).unwrap_or(ready);
        self.source_origin = Some(self.source_origin.map_or(began, |o| o.max(began)));
        if self.anchored {
            self.origin = self.origin.max(began);
        }
    }

    /// When audio at stream time `start` is due; `None` when it may go at once (unpaced).
    pub fn due(&self, start: f64) -> Option<Instant> {
        let pace = self.pace?;
        Some(self.origin + Duration::from_secs_f64(start.max(0.0) / pace))
    }

    /// When the source counts as stalled, its next frame (at `next`) not having come:
    /// silence goes in its place then. `None` when unpaced (nothing is ever late).
    pub fn fill_due(&self, next: f64) -> Option<Instant> {
        self.due(next).map(|due| due + FILL_GRACE)
    }
}

/// Frames kept in the send record at most (constant memory at any frame size).
const SENT_LOG_CAP: usize = 8192;
/// Stream time kept in the send record: a minute of audio, far longer than any EndOfTurn
/// takes to arrive (a server that lags more is reconnected as stalled long before). Bounded
/// by time rather than only by count so that a stream's record stays small (about 750
/// records at 80 ms frames, 32 bytes each): `flux load` runs a thousand of them.
const SENT_LOG_SECS: f64 = 60.0;

/// When each frame was handed to the transport, newest last; a replayed frame is recorded
/// again when it goes again.
#[derive(Debug, Default)]
pub struct SentLog {
    records: VecDeque<(f64, f64, Instant)>,
    /// The latest stream time on record.
    until: f64,
}

impl SentLog {
    pub fn record(&mut self, start: f64, end: f64, at: Instant) {
        self.until = self.until.max(end);
        while self.records.len() >= SENT_LOG_CAP
            || self
                .records
                .front()
                .is_some_and(|(_, e, _)| *e < self.until - SENT_LOG_SECS)
        {
            self.records.pop_front();
        }
        self.records.push_back((start, end, at));
    }

    /// When the frame holding stream time `t` last went (a frame ending exactly at `t`
    /// holds it); `None` when no such frame was sent, or it is no longer on record.
    pub fn sent_at(&self, t: f64) -> Option<Instant> {
        const SLACK: f64 = 1e-6;
        self.records
            .iter()
            .rev()
            .find(|(start, end, _)| *start < t - SLACK && *end >= t - SLACK)
            .or_else(|| {
                // A window end at 0 (nothing heard yet) belongs to the first frame.
                (t <= SLACK).then(|| self.records.iter().find(|(s, _, _)| *s <= SLACK))?
            })
            .map(|(_, _, at)| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn paced_frames_are_due_at_their_stream_time_over_the_pace() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Some(2.0), false, t0);
        p.anchor(t0 + ms(100));
        assert_eq!(p.due(1.0), Some(t0 + ms(600)));
        assert_eq!(p.fill_due(1.0), Some(t0 + ms(600) + FILL_GRACE));
        let fast = Pacer::new(None, false, t0);
        assert_eq!((fast.due(3.0), fast.fill_due(3.0)), (None, None));
    }

    #[test]
    fn a_live_source_sets_the_clock_from_when_its_audio_began() {
        let t0 = Instant::now() + ms(10_000);
        let mut p = Pacer::new(Some(1.0), true, t0);
        // 0.5 s of audio delivered at t0 + 1 s: it began at t0 + 0.5 s, before the link.
        p.follow_source(t0 + ms(1000), 0.5);
        p.anchor(t0 + ms(2000));
        assert_eq!(p.due(0.5), Some(t0 + ms(1000)));
        // A source running slow moves the clock along; a fast one never moves it back.
        p.follow_source(t0 + ms(3100), 2.5);
        assert_eq!(p.due(0.0), Some(t0 + ms(600)));
        p.follow_source(t0 + ms(3200), 3.0);
        assert_eq!(p.due(0.0), Some(t0 + ms(600)));
        // A file is paced from the link, whatever its deliveries say.
        let mut file = Pacer::new(Some(1.0), false, t0);
        file.follow_source(t0, 5.0);
        file.anchor(t0 + ms(300));
        assert_eq!(file.due(0.0), Some(t0 + ms(300)));
    }

    #[test]
    fn the_send_record_finds_the_frame_holding_a_time_latest_send_first() {
        let t0 = Instant::now();
        let mut log = SentLog::default();
        for k in 0..5u64 {
            let s = k as f64 * 0.08;
            log.record(s, s + 0.08, t0 + ms(80 * k));
        }
        assert_eq!(log.sent_at(0.1), Some(t0 + ms(80)));
        // Exactly on an edge: the frame that ends there.
        assert_eq!(log.sent_at(0.16), Some(t0 + ms(80)));
        assert_eq!(log.sent_at(0.0), Some(t0));
        assert_eq!(log.sent_at(1.0), None);
        // Replayed after a reconnect: the later send counts.
        log.record(0.08, 0.16, t0 + ms(900));
        assert_eq!(log.sent_at(0.1), Some(t0 + ms(900)));
    }

    #[test]
    fn the_send_record_keeps_the_last_minute_of_audio() {
        let t0 = Instant::now();
        let mut log = SentLog::default();
        // Ten minutes of 80 ms frames.
        for k in 0..7500u64 {
            let s = k as f64 * 0.08;
            log.record(s, s + 0.08, t0 + ms(80 * k));
        }
        assert!(log.records.len() <= 752, "{}", log.records.len());
        assert_eq!(log.sent_at(599.0), Some(t0 + ms(80 * 7487)));
        assert_eq!(log.sent_at(540.1), Some(t0 + ms(80 * 6751)));
        assert_eq!(log.sent_at(500.0), None);
    }
}
