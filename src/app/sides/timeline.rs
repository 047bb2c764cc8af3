//! The merged timeline of several sides (`--split-channels`): events from each side's session
//! arrive as their own connections deliver them, and leave in order of the audio time they
//! are about, so one side's turn is never printed after a later turn of the other side.
//!
//! Each side's *mark* is the latest audio time its server has reported (every `TurnInfo`
//! carries `audio_window_end`, and Flux sends an `Update` every quarter second, between turns
//! too). A side's later events are never about earlier audio than its mark, so an event at
//! time `t` may leave once every side still running has a mark at or past `t`; a side that
//! has ended no longer holds anyone back. Events without a time of their own (connected,
//! reconnecting, summary) take their side's mark, so each side keeps its own order exactly.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Items waiting for the other sides to catch up.
pub struct Timeline<T> {
    marks: Vec<f64>,
    ended: Vec<bool>,
    held: BinaryHeap<Held<T>>,
    seq: u64,
}

struct Held<T> {
    key: f64,
    seq: u64,
    side: usize,
    item: T,
}

impl<T> PartialEq for Held<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Held<T> {}
impl<T> PartialOrd for Held<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Held<T> {
    /// Reversed: the heap's top is the earliest time, then the earliest arrival.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key
            .total_cmp(&self.key)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl<T> Timeline<T> {
    pub fn new(sides: usize) -> Timeline<T> {
        Timeline {
            marks: vec![0.0; sides],
            ended: vec![false; sides],
            held: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// Adds one side's item, about audio time `at` when it has one. A time before the side's
    /// mark (audio sent again after a reconnect) takes the mark, so the side's own order holds.
    pub fn push(&mut self, side: usize, at: Option<f64>, item: T) {
        let Some(mark) = self.marks.get_mut(side) else {
            return;
        };
        if let Some(t) = at.filter(|t| t.is_finite()) {
            *mark = mark.max(t);
        }
        let key = *mark;
        self.seq += 1;
        self.held.push(Held {
            key,
            seq: self.seq,
            side,
            item,
        });
    }

    /// The side has nothing more to say: it holds no one back any more.
    pub fn end(&mut self, side: usize) {
        if let Some(e) = self.ended.get_mut(side) {
            *e = true;
        }
    }

    /// The next item every running side has caught up with, with its side.
    pub fn pop_ready(&mut self) -> Option<(usize, T)> {
        let horizon = self
            .marks
            .iter()
            .zip(&self.ended)
            .filter(|(_, ended)| !**ended)
            .map(|(m, _)| *m)
            .fold(f64::INFINITY, f64::min);
        if self.held.peek()?.key > horizon {
            return None;
        }
        self.held.pop().map(|h| (h.side, h.item))
    }

    /// Everything still held, in time order (when the run is over whatever happened).
    pub fn drain(&mut self) -> Vec<(usize, T)> {
        let mut out = Vec::with_capacity(self.held.len());
        while let Some(h) = self.held.pop() {
            out.push((h.side, h.item));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(t: &mut Timeline<&'static str>) -> Vec<&'static str> {
        std::iter::from_fn(|| t.pop_ready().map(|(_, i)| i)).collect()
    }

    #[test]
    fn a_side_ahead_waits_for_the_other_to_catch_up() {
        let mut t = Timeline::new(2);
        // Side 0's server is quick: its turn ending at 3.0 arrives first.
        t.push(0, Some(3.0), "agent 3.0");
        assert!(ready(&mut t).is_empty(), "side 1 has reported nothing yet");
        t.push(1, Some(2.0), "caller 2.0");
        assert_eq!(ready(&mut t), ["caller 2.0"]);
        t.push(1, Some(3.5), "caller 3.5");
        assert_eq!(ready(&mut t), ["agent 3.0"]);
        // Side 0 ends: side 1 no longer waits for it.
        t.end(0);
        assert_eq!(ready(&mut t), ["caller 3.5"]);
    }

    #[test]
    fn untimed_items_keep_their_place_in_their_side() {
        let mut t = Timeline::new(2);
        t.push(0, None, "connected 0");
        t.push(1, None, "connected 1");
        assert_eq!(ready(&mut t), ["connected 0", "connected 1"]);
        t.push(0, Some(1.0), "update 1.0");
        t.push(0, None, "reconnecting");
        // Replayed audio reports an earlier time: it stays after what came before it.
        t.push(0, Some(0.5), "replayed 0.5");
        t.end(1);
        assert_eq!(
            ready(&mut t),
            ["update 1.0", "reconnecting", "replayed 0.5"]
        );
    }

    #[test]
    fn drain_gives_the_rest_in_time_order() {
        let mut t = Timeline::new(2);
        t.push(0, Some(5.0), "a5");
        t.push(0, Some(7.0), "a7");
        t.push(1, Some(1.0), "b1");
        t.push(1, Some(6.0), "b6");
        assert_eq!(ready(&mut t), ["b1", "a5", "b6"]);
        t.push(1, Some(9.0), "b9");
        t.push(0, Some(8.0), "a8");
        assert_eq!(ready(&mut t), ["a7", "a8"]);
        let rest: Vec<_> = t.drain().into_iter().map(|(_, i)| i).collect();
        assert_eq!(rest, ["b9"]);
        // An unknown side is ignored rather than a panic.
        t.push(9, Some(1.0), "nobody");
        assert!(t.drain().is_empty());
    }
}
