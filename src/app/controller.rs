//! The controller: everything that drives a running session from outside it. Keys in the live
//! view, `--control` lines and signals (SIGINT, SIGTERM) become [`Control`] requests sent to
//! the session; sinks only render. The double Ctrl-C exit (130) lives here and nowhere else.
//!
//! First Ctrl-C, SIGTERM, `q` or Ctrl-D: finish every running stream like end of input
//! (`stopped` tells live sources to stop capturing, and a batch not to start more files). A
//! live source (a microphone) ends its input by itself once `stopped` is set, after handing
//! over what it captured, so the session is only told to finish if that has not happened
//! after a grace period (e.g. a driver that hangs on close). Ctrl-C or SIGTERM after a finish
//! was asked for: exit 130 at once, after the terminal is given back and any line being
//! written to stdout is complete.

use super::control_file;
use super::keys::{self, Action};
use crate::error::ExitCode;
use crate::output::live;
use crate::protocol::{Configure, Thresholds};
use crate::session::Control;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often the key thread looks up from waiting for a key (to notice it should stop).
const KEY_POLL: Duration = Duration::from_millis(100);

/// How long the exit on a second Ctrl-C waits for a line being written to stdout to complete.
/// A reader that stopped reading (a paused `| less`) can hold a write forever; past this the
/// exit goes ahead anyway.
const LINE_WAIT: Duration = Duration::from_secs(2);

/// Prints one message for people (e.g. through the progress bar or the level meter, so
/// neither is torn).
pub(super) type Say = Box<dyn Fn(&str) + Send + Sync>;

/// Runs before exiting on a second Ctrl-C (clear the bar, erase the meter).
type Cleanup = Box<dyn FnOnce() + Send>;

/// Drives the running sessions; cheap to clone (every clone is the same controller).
#[derive(Clone)]
pub(super) struct Controller {
    inner: Arc<Inner>,
}

struct Inner {
    /// The running sessions' control channels, so one Ctrl-C finishes them all.
    controls: Mutex<Vec<mpsc::Sender<Control>>>,
    /// Set by the first finish request; live sources stop capturing when they see it.
    stopped: Arc<AtomicBool>,
    /// A finish was asked for (by a key or a signal): the next Ctrl-C quits at once.
    stopping: AtomicBool,
    /// For a source that ends by itself once `stopped` is set: how long to let it.
    grace: Option<Duration>,
    say: Mutex<Option<Say>>,
    cleanup: Mutex<Vec<Cleanup>>,
}

impl Controller {
    /// `grace`: `Some` for a live source that ends its own input once `stopped` is set.
    pub fn new(stopped: Arc<AtomicBool>, grace: Option<Duration>) -> Controller {
        Controller {
            inner: Arc::new(Inner {
                controls: Mutex::default(),
                stopped,
                stopping: AtomicBool::new(false),
                grace,
                say: Mutex::default(),
                cleanup: Mutex::default(),
            }),
        }
    }

    /// A session to drive; its receiver goes to `session::run`.
    pub fn register(&self, tx: mpsc::Sender<Control>) {
        lock(&self.inner.controls).push(tx);
    }

    /// Where messages for people go (default: straight to stderr).
    pub fn say_with(&self, say: Say) {
        *lock(&self.inner.say) = Some(say);
    }

    /// Something to undo on screen before exiting on a second Ctrl-C.
    pub fn on_abort(&self, f: impl FnOnce() + Send + 'static) {
        lock(&self.inner.cleanup).push(Box::new(f));
    }

    /// Starts taking SIGINT and SIGTERM (for as long as the runtime runs).
    pub fn listen_for_signals(&self) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = tokio::signal::ctrl_c() => {
                        if r.is_err() { return; }
                    }
                    _ = terminate() => {}
                }
                me.interrupt(true);
            }
        });
    }

    /// Starts reading `--control` lines from `path` for the session behind `tx`.
    pub fn read_control_file(&self, path: PathBuf, tx: mpsc::Sender<Control>) -> io::Result<()> {
        control_file::spawn(path, tx)
    }

    /// Starts reading keys from the terminal (the live view has put it in raw mode). `eot` is
    /// the eot_threshold in force (f64 bits), which `+` and `-` step from. Dropping the
    /// returned handle stops the thread.
    pub fn read_keys(&self, eot: Arc<AtomicU64>) -> KeyReader {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (me, stop) = (self.clone(), stop.clone());
            std::thread::Builder::new()
                .name("flux-keys".into())
                .spawn(move || me.key_loop(&stop, &eot))
                .ok()
        };
        KeyReader { stop, thread }
    }

    fn key_loop(&self, stop: &AtomicBool, eot: &AtomicU64) {
        use crossterm::event as term;
        while !stop.load(Ordering::SeqCst) {
            match term::poll(KEY_POLL) {
                Ok(true) => {
                    if let Ok(term::Event::Key(k)) = term::read() {
                        self.key(keys::action(&k), eot);
                    }
                }
                Ok(false) => {}
                // The terminal went away for input: no more keys (signals still work).
                Err(_) => return,
            }
        }
    }

    fn key(&self, action: Action, eot: &AtomicU64) {
        match action {
            Action::Interrupt => self.interrupt(false),
            Action::Finish => {
                if !self.inner.stopping.swap(true, Ordering::SeqCst) {
                    self.finish();
                }
            }
            Action::ForceEndTurn => self.send(Control::ForceEndTurn),
            Action::AdjustEot(step) => {
                let current = f64::from_bits(eot.load(Ordering::Relaxed));
                if let Some(next) = eot_step(current, step) {
                    self.send(Control::Configure(Configure {
                        thresholds: Some(Thresholds {
                            eot_threshold: Some(next),
                            ..Thresholds::default()
                        }),
                        ..Configure::default()
                    }));
                }
            }
            Action::None => {}
        }
    }

    /// Ctrl-C (a signal, or a key in raw mode) or SIGTERM: finish the first time, quit after.
    /// `announce`: say so on stderr (a key press shows in the live view instead).
    fn interrupt(&self, announce: bool) {
        if self.inner.stopping.swap(true, Ordering::SeqCst) {
            self.abort();
        }
        if announce && !live::is_active() {
            self.say("flux: finishing the stream (Ctrl-C again to quit at once)");
        }
        self.finish();
    }

    fn say(&self, message: &str) {
        match &*lock(&self.inner.say) {
            Some(say) => say(message),
            None => eprintln!("{message}"),
        }
    }

    /// Stops live sources and tells every session to finish (after the grace, for a source
    /// that ends by itself).
    fn finish(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        let senders = lock(&self.inner.controls).clone();
        let grace = self.inner.grace;
        // A thread, so neither a key press nor the signal task ever waits on a full channel.
        let _ = std::thread::Builder::new()
            .name("flux-finish".into())
            .spawn(move || {
                if let Some(grace) = grace {
                    std::thread::sleep(grace);
                }
                for tx in senders {
                    // Ignored by the session when the input has already ended; a finished
                    // session has dropped its receiver and needs nothing.
                    let _ = tx.blocking_send(Control::Finish);
                }
            });
    }

    /// A request for every running session; dropped when a channel is full (a key repeat).
    fn send(&self, control: Control) {
        for tx in lock(&self.inner.controls).iter() {
            let _ = tx.try_send(control.clone());
        }
    }

    /// Exit 130 at once: the screen is put back first (bar, meter, live view, raw mode), and
    /// a line being written to stdout is completed (the stdout lock is taken), so JSONL never
    /// ends in half a line.
    fn abort(&self) -> ! {
        for f in std::mem::take(&mut *lock(&self.inner.cleanup)) {
            f();
        }
        live::restore_terminal();
        let (tx, rx) = std::sync::mpsc::channel();
        let _ = std::thread::Builder::new()
            .name("flux-exit".into())
            .spawn(move || {
                let _out = io::stdout().lock();
                let _ = tx.send(());
                // Hold the lock until the process is gone.
                loop {
                    std::thread::park();
                }
            });
        let _ = rx.recv_timeout(LINE_WAIT);
        let _ = io::stderr().flush();
        std::process::exit(i32::from(ExitCode::Interrupted.code()));
    }
}

/// The next eot_threshold for `steps` presses of `+` (or `-`): steps of 0.05 within Flux's
/// 0.5 to 1.0; `None` when it would not change.
fn eot_step(current: f64, steps: i8) -> Option<f64> {
    let next = ((current + 0.05 * f64::from(steps)) * 100.0).round() / 100.0;
    let next = next.clamp(0.5, 1.0);
    (next != current).then_some(next)
}

/// The key thread; dropping it stops the thread.
pub(super) struct KeyReader {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for KeyReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            // It wakes every KEY_POLL.
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eot_steps_stay_within_flux_range() {
        assert_eq!(eot_step(0.7, 1), Some(0.75));
        assert_eq!(eot_step(0.7, -1), Some(0.65));
        assert_eq!(eot_step(1.0, 1), None);
        assert_eq!(eot_step(0.5, -1), None);
        assert_eq!(eot_step(0.98, 1), Some(1.0));
    }

    #[test]
    fn keys_become_requests_and_finish_is_sent_once() {
        let stopped = Arc::new(AtomicBool::new(false));
        let c = Controller::new(stopped.clone(), None);
        let (tx, mut rx) = mpsc::channel(16);
        c.register(tx);
        let eot = AtomicU64::new(0.7f64.to_bits());
        c.key(Action::ForceEndTurn, &eot);
        assert_eq!(rx.try_recv().unwrap(), Control::ForceEndTurn);
        c.key(Action::AdjustEot(1), &eot);
        match rx.try_recv().unwrap() {
            Control::Configure(cfg) => {
                assert_eq!(cfg.thresholds.unwrap().eot_threshold, Some(0.75));
            }
            other => panic!("{other:?}"),
        }
        c.key(Action::Finish, &eot);
        c.key(Action::Finish, &eot);
        assert!(stopped.load(Ordering::SeqCst));
        assert_eq!(rx.blocking_recv().unwrap(), Control::Finish);
        std::thread::sleep(Duration::from_millis(50));
        assert!(rx.try_recv().is_err(), "one finish only");
    }
}
