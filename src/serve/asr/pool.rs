//! The recognizer's worker pool, shared by every stream of a `flux serve`.
//!
//! A fixed number of threads, each owning one loaded model (a model runs one call at a time),
//! keep the decoding off the async reactor. Two kinds of work, two rules:
//! - finals (EagerEndOfTurn, EndOfTurn, a long turn's committed piece) are always queued and
//!   served first: a turn's last words are never dropped;
//! - partials (the text of `Update`s) are accepted only when a worker is idle right now, so
//!   under load Updates are thinned instead of queueing behind each other and going stale.

use super::{Decoded, Pass, Transcriber};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// What a decode comes back as.
pub type Reply = oneshot::Receiver<Result<Decoded, String>>;

struct Job {
    audio: Vec<f32>,
    hint: Vec<i64>,
    pass: Pass,
    reply: oneshot::Sender<Result<Decoded, String>>,
}

#[derive(Default)]
struct Queue {
    finals: VecDeque<Job>,
    partials: VecDeque<Job>,
    idle: usize,
    stopping: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Partials refused because every worker was busy.
    thinned: AtomicU64,
    /// Decodes finished (both kinds).
    decoded: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A worker that panicked while holding the lock leaves valid data (plain queues).
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A handle to the pool; cheap to share.
pub struct Pool {
    shared: Arc<Shared>,
    workers: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Starts one thread per transcriber.
    pub fn start(transcribers: Vec<Box<dyn Transcriber>>) -> std::io::Result<Pool> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            thinned: AtomicU64::new(0),
            decoded: AtomicU64::new(0),
        });
        let workers = transcribers.len();
        for (i, t) in transcribers.into_iter().enumerate() {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("flux-asr-{i}"))
                .spawn(move || work(shared, t))?;
        }
        Ok(Pool { shared, workers })
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Queues a final decode; it runs before any partial.
    pub fn submit_final(&self, audio: Vec<f32>, hint: Vec<i64>) -> Reply {
        let (reply, rx) = oneshot::channel();
        let mut q = self.shared.lock();
        q.finals.push_back(Job {
            audio,
            hint,
            pass: Pass::Final,
            reply,
        });
        drop(q);
        self.shared.wake.notify_one();
        rx
    }

    /// Starts a partial decode if a worker is free now; `None` (thinned) otherwise.
    pub fn try_submit_partial(&self, audio: Vec<f32>, hint: Vec<i64>) -> Option<Reply> {
        let mut q = self.shared.lock();
        if q.stopping || q.idle <= q.finals.len() + q.partials.len() {
            drop(q);
            self.shared.thinned.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let (reply, rx) = oneshot::channel();
        q.partials.push_back(Job {
            audio,
            hint,
            pass: Pass::Partial,
            reply,
        });
        drop(q);
        self.shared.wake.notify_one();
        Some(rx)
    }

    /// Partials refused so far because every worker was busy.
    pub fn thinned(&self) -> u64 {
        self.shared.thinned.load(Ordering::Relaxed)
    }

    /// Workers waiting for work now.
    pub fn idle_workers(&self) -> usize {
        self.shared.lock().idle
    }

    pub fn decoded(&self) -> u64 {
        self.shared.decoded.load(Ordering::Relaxed)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Workers finish the call they are in and exit; nobody waits for them.
        self.shared.lock().stopping = true;
        self.shared.wake.notify_all();
    }
}

fn work(shared: Arc<Shared>, mut transcriber: Box<dyn Transcriber>) {
    let mut q = shared.lock();
    q.idle += 1;
    loop {
        if q.stopping {
            return;
        }
        let job = q.finals.pop_front().or_else(|| q.partials.pop_front());
        let Some(job) = job else {
            q = shared.wake.wait(q).unwrap_or_else(|p| p.into_inner());
            continue;
        };
        q.idle -= 1;
        drop(q);
        // The stream may have moved on (its reply dropped): skip work nobody will read.
        let result = if job.reply.is_closed() {
            Err("cancelled".to_string())
        } else {
            // A panic inside the runtime bindings must not take the worker down with the lock.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                transcriber.transcribe(&job.audio, job.pass, &job.hint, &|| job.reply.is_closed())
            }))
            .unwrap_or_else(|_| Err("the recognizer failed on this audio".to_string()))
        };
        shared.decoded.fetch_add(1, Ordering::Relaxed);
        let _ = job.reply.send(result);
        q = shared.lock();
        q.idle += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::asr::tokenizer::DecodedWord;
    use std::sync::mpsc;

    /// Reports each call's audio length, then waits for the test's permission to finish.
    struct Gate {
        started: mpsc::Sender<usize>,
        release: Arc<Mutex<mpsc::Receiver<()>>>,
    }

    impl Transcriber for Gate {
        fn transcribe(
            &mut self,
            audio: &[f32],
            pass: Pass,
            _: &[i64],
            _: &dyn Fn() -> bool,
        ) -> Result<Decoded, String> {
            let _ = self.started.send(audio.len());
            let _ = self.release.lock().unwrap().recv();
            Ok(Decoded {
                words: vec![DecodedWord {
                    text: format!("{pass:?}{}", audio.len()),
                    token_probs: vec![1.0],
                }],
                token_ids: vec![1],
                capped: false,
            })
        }
    }

    #[test]
    fn partials_thin_under_load_and_finals_queue_first() {
        let (started_tx, started) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        let pool = Pool::start(vec![Box::new(Gate {
            started: started_tx,
            release: Arc::new(Mutex::new(release_rx)),
        })])
        .unwrap();
        // Wait until the worker is idle, then occupy it.
        let first = loop {
            if let Some(r) = pool.try_submit_partial(vec![0.0; 1], vec![]) {
                break r;
            }
            std::thread::yield_now();
        };
        assert_eq!(started.recv().unwrap(), 1);
        // Busy: a partial is refused, finals queue.
        let thinned_before = pool.thinned();
        assert!(pool.try_submit_partial(vec![0.0; 2], vec![]).is_none());
        assert_eq!(pool.thinned(), thinned_before + 1);
        let f1 = pool.submit_final(vec![0.0; 3], vec![]);
        let f2 = pool.submit_final(vec![0.0; 4], vec![]);
        for _ in 0..3 {
            release_tx.send(()).unwrap();
        }
        let text = |r: Reply| r.blocking_recv().unwrap().unwrap().words[0].text.clone();
        assert_eq!(text(first), "Partial1");
        assert_eq!(text(f1), "Final3");
        assert_eq!(text(f2), "Final4");
        assert_eq!(started.recv().unwrap(), 3);
        assert_eq!(started.recv().unwrap(), 4);
    }
}
