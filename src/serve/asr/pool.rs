//! The recognizer's worker pool, shared by every stream of a `flux serve`.
//!
//! A fixed number of threads, each owning one loaded model (a model runs one call at a time),
//! keep the decoding off the async reactor. Two kinds of work, two rules:
//! - finals (EagerEndOfTurn, EndOfTurn, a long turn's committed piece) are always queued and
//!   served first: a turn's last words are never dropped;
//! - partials (the text of `Update`s) are accepted only when a worker is idle right now, so
//!   under load Updates are thinned instead of queueing behind each other and going stale.
//!
//! Every decode's wait for a worker and its run are counted in process-wide histograms
//! ([`timings`]): the benchmark reads them to split an `Update`'s latency into its parts.

use super::{Decoded, Pass, Transcriber};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Histogram buckets: one per millisecond, the last for everything slower.
const BUCKETS: usize = 2_001;

/// Counts per millisecond of decodes' waits and runs, `[partial, final]`.
static WAITED: [[AtomicU64; BUCKETS]; 2] = [const { [const { AtomicU64::new(0) }; BUCKETS] }; 2];
static RAN: [[AtomicU64; BUCKETS]; 2] = [const { [const { AtomicU64::new(0) }; BUCKETS] }; 2];

fn slot(pass: Pass) -> usize {
    match pass {
        Pass::Partial => 0,
        Pass::Final => 1,
    }
}

fn count(histogram: &[AtomicU64; BUCKETS], d: Duration) {
    let ms = usize::try_from(d.as_millis()).unwrap_or(usize::MAX);
    histogram[ms.min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
}

/// One kind of decode's times since the process started (every pool in it): how many
/// waited or ran each whole number of milliseconds (the last bucket: 2 s or more).
#[derive(Debug, Clone, PartialEq)]
pub struct Timings {
    /// From being handed to the pool to a worker starting it.
    pub waited: Vec<u64>,
    /// The worker's time on it (the model's compute, on a loaded machine its waits for a core).
    pub ran: Vec<u64>,
}

/// The decode times of `pass` so far.
pub fn timings(pass: Pass) -> Timings {
    let read = |h: &[AtomicU64; BUCKETS]| h.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    Timings {
        waited: read(&WAITED[slot(pass)]),
        ran: read(&RAN[slot(pass)]),
    }
}

impl Timings {
    /// The times added since `earlier` (a snapshot taken before).
    pub fn since(&self, earlier: &Timings) -> Timings {
        let minus =
            |a: &[u64], b: &[u64]| a.iter().zip(b).map(|(x, y)| x.saturating_sub(*y)).collect();
        Timings {
            waited: minus(&self.waited, &earlier.waited),
            ran: minus(&self.ran, &earlier.ran),
        }
    }
}

/// How many were counted in `histogram`, and its `p` quantile (0 to 1) in milliseconds
/// (`None` when empty).
pub fn quantile(histogram: &[u64], p: f64) -> (u64, Option<u64>) {
    let n: u64 = histogram.iter().sum();
    if n == 0 {
        return (0, None);
    }
    // The rank of the quantile among the n values, 1-based, as `pct` rounds in the bench.
    let rank = ((n - 1) as f64 * p.clamp(0.0, 1.0)).round() as u64 + 1;
    let mut seen = 0;
    for (ms, c) in histogram.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return (n, Some(ms as u64));
        }
    }
    (n, Some(histogram.len() as u64 - 1))
}

/// What a decode comes back as.
pub type Reply = oneshot::Receiver<Result<Decoded, String>>;

struct Job {
    audio: Vec<f32>,
    hint: Vec<i64>,
    pass: Pass,
    submitted: Instant,
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
            submitted: Instant::now(),
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
            submitted: Instant::now(),
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
        let started = Instant::now();
        count(&WAITED[slot(job.pass)], started - job.submitted);
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
        count(&RAN[slot(job.pass)], started.elapsed());
        shared.decoded.fetch_add(1, Ordering::Relaxed);
        // Idle before the reply goes out: the stream that gets it may start its next partial
        // at once (an owed tick), and must not find this worker still counted busy.
        q = shared.lock();
        q.idle += 1;
        let _ = job.reply.send(result);
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
    fn quantiles_of_a_millisecond_histogram() {
        assert_eq!(quantile(&[0, 0, 0], 0.5), (0, None));
        // Times 1, 1, 2, 5 ms.
        let h = [0, 2, 1, 0, 0, 1];
        assert_eq!(quantile(&h, 0.0), (4, Some(1)));
        assert_eq!(quantile(&h, 0.5), (4, Some(2)));
        assert_eq!(quantile(&h, 0.9), (4, Some(5)));
        assert_eq!(quantile(&h, 1.0), (4, Some(5)));
        let later = Timings {
            waited: vec![1, 3],
            ran: vec![0, 5],
        };
        let earlier = Timings {
            waited: vec![1, 1],
            ran: vec![0, 2],
        };
        assert_eq!(
            later.since(&earlier),
            Timings {
                waited: vec![0, 2],
                ran: vec![0, 3]
            }
        );
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
        let finals_before = timings(Pass::Final);
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
        // Both finals' waits and runs were counted (other tests' decodes may add more).
        let finals = timings(Pass::Final).since(&finals_before);
        assert!(quantile(&finals.waited, 1.0).0 >= 2);
        assert!(quantile(&finals.ran, 1.0).0 >= 2);
    }
}
