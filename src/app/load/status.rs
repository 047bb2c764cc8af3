//! The live status of a load test on stderr: streams by state, frames per second, turns, and
//! end-of-turn latency so far. Redrawn in place once a second on a terminal; on anything else
//! (a CI log) one line every ten seconds, so a long run does not flood the log.

use super::metrics::{Board, State};
use super::report::Percentiles;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The status line's task; [`Status::stop`] erases the line it drew.
pub(super) struct Status {
    task: JoinHandle<()>,
    redraw: bool,
}

impl Status {
    pub fn start(board: Arc<Board>, frames_fed: Arc<AtomicU64>) -> Status {
        let redraw = std::io::stderr().is_terminal();
        let every = Duration::from_secs(if redraw { 1 } else { 10 });
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut last = (started, 0u64);
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let now = Instant::now();
                let fed = frames_fed.load(Ordering::Relaxed);
                let rate = (fed - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
                last = (now, fed);
                let text = line(&board, now.duration_since(started), rate);
                let mut err = std::io::stderr().lock();
                let _ = if redraw {
                    write!(err, "\r\x1b[2K{text}")
                } else {
                    writeln!(err, "{text}")
                };
                let _ = err.flush();
            }
        });
        Status { task, redraw }
    }

    pub fn stop(self) {
        self.task.abort();
        if self.redraw {
            eprint!("\r\x1b[2K");
        }
    }
}

/// One status line.
fn line(board: &Board, elapsed: Duration, frames_per_sec: f64) -> String {
    let n = board.census();
    let eot = Percentiles::of(&board.samples().eot);
    let latency = match eot {
        Some(p) => format!("EOT p50 {:.0} ms, p95 {:.0} ms", p.p50_ms, p.p95_ms),
        None => "EOT -".into(),
    };
    let secs = elapsed.as_secs();
    format!(
        "flux load {:02}:{:02}: {} up, {} connecting, {} reconnecting, {} failed, {} done, {} \
         waiting | {:.0} frames/s | {} turns | {latency}",
        secs / 60,
        secs % 60,
        n[State::Up as usize],
        n[State::Connecting as usize],
        n[State::Reconnecting as usize],
        n[State::Failed as usize],
        n[State::Done as usize],
        n[State::Waiting as usize],
        frames_per_sec,
        board.turns()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_counts_streams_by_state() {
        let board = Board::new(4);
        board.set(0, State::Up);
        board.set(1, State::Up);
        board.set(2, State::Failed);
        board.samples().eot.extend([100.0, 300.0]);
        let text = line(&board, Duration::from_secs(75), 25.0);
        assert!(
            text.starts_with("flux load 01:15: 2 up, 0 connecting, 0 reconnecting, 1 failed, 0 done, 1 waiting | 25 frames/s | 0 turns | EOT p50 100 ms, p95 300 ms"),
            "{text}"
        );
    }
}
