//! A persistent thread pool with a cheap fork-join barrier.
//!
//! Every matmul, attention and norm in a forward pass is a fork-join over a few threads, thousands
//! of times per second. Spawning threads per operation costs tens of microseconds each time, so
//! the workers live for the whole process: `run` publishes a job, wakes the workers (they spin
//! briefly, then park on a condition variable), runs its own share on the calling thread and waits
//! until every worker has finished. The job borrows from the caller's stack; `run` does not return
//! before all workers are done with it, which is what makes the lifetime erasure below sound.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

type Job = dyn Fn(usize, usize) + Sync;

/// A pointer to the current job with its lifetime erased (see `run`).
#[derive(Clone, Copy)]
struct JobPtr(*const Job);
// SAFETY: the pointee is `Sync` and outlives every use, because `run` waits for all workers.
unsafe impl Send for JobPtr {}

struct Shared {
    /// Incremented once per job; workers run each generation exactly once.
    generation: AtomicUsize,
    /// Workers still busy with the current generation.
    pending: AtomicUsize,
    job: Mutex<Option<JobPtr>>,
    wake: Condvar,
    /// Signalled by the last worker to finish a job.
    done_lock: Mutex<()>,
    done: Condvar,
    shutdown: AtomicUsize,
}

/// A fixed set of worker threads; thread 0 is always the caller of `run`.
pub struct ThreadPool {
    n_threads: usize,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

/// Busy-wait iterations before a thread sleeps (a few microseconds).
const SPIN_ITERS: usize = 4_000;

impl ThreadPool {
    /// A pool that runs jobs on `n_threads` threads (the caller plus `n_threads - 1` workers).
    pub fn new(n_threads: usize) -> ThreadPool {
        let n_threads = n_threads.max(1);
        let shared = Arc::new(Shared {
            generation: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            job: Mutex::new(None),
            wake: Condvar::new(),
            done_lock: Mutex::new(()),
            done: Condvar::new(),
            shutdown: AtomicUsize::new(0),
        });
        let workers = (1..n_threads)
            .map(|index| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("owl-worker-{index}"))
                    .spawn(move || worker_loop(&shared, index, n_threads))
                    .unwrap_or_else(|e| panic!("cannot spawn worker thread: {e}"))
            })
            .collect();
        ThreadPool {
            n_threads,
            shared,
            workers,
        }
    }

    pub fn n_threads(&self) -> usize {
        self.n_threads
    }

    /// Runs `job(thread_index, n_threads)` once on every thread of the pool and returns when all
    /// have finished.
    pub fn run<F: Fn(usize, usize) + Sync>(&self, job: F) {
        if self.n_threads == 1 {
            job(0, 1);
            return;
        }
        let job_ref: &(dyn Fn(usize, usize) + Sync + '_) = &job;
        // SAFETY: we erase the lifetime of `job_ref`; this function does not return before
        // `pending` reaches zero, i.e. before every worker has stopped using the pointer.
        let ptr = JobPtr(unsafe {
            std::mem::transmute::<&(dyn Fn(usize, usize) + Sync + '_), &'static Job>(job_ref)
        });
        {
            let mut slot = self.shared.job.lock().unwrap_or_else(|e| e.into_inner());
            *slot = Some(ptr);
            self.shared
                .pending
                .store(self.n_threads - 1, Ordering::SeqCst);
            self.shared.generation.fetch_add(1, Ordering::SeqCst);
        }
        self.shared.wake.notify_all();
        job(0, self.n_threads);
        // Spin briefly (workers usually finish together with us), then sleep until the last
        // worker signals, so an oversubscribed machine does not burn its cores spinning.
        let mut spins = 0usize;
        while self.shared.pending.load(Ordering::Acquire) != 0 {
            spins += 1;
            if spins < SPIN_ITERS {
                std::hint::spin_loop();
            } else {
                let mut guard = self
                    .shared
                    .done_lock
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                while self.shared.pending.load(Ordering::Acquire) != 0 {
                    guard = self
                        .shared
                        .done
                        .wait(guard)
                        .unwrap_or_else(|e| e.into_inner());
                }
                break;
            }
        }
    }
}

fn worker_loop(shared: &Shared, index: usize, n_threads: usize) {
    let mut seen = 0usize;
    loop {
        // Spin a little: in a forward pass the next job usually arrives within microseconds.
        let mut spins = 0usize;
        while shared.generation.load(Ordering::Acquire) == seen
            && shared.shutdown.load(Ordering::Acquire) == 0
            && spins < SPIN_ITERS
        {
            spins += 1;
            std::hint::spin_loop();
        }
        let job = {
            let mut slot = shared.job.lock().unwrap_or_else(|e| e.into_inner());
            while shared.generation.load(Ordering::Acquire) == seen
                && shared.shutdown.load(Ordering::Acquire) == 0
            {
                slot = shared.wake.wait(slot).unwrap_or_else(|e| e.into_inner());
            }
            if shared.shutdown.load(Ordering::Acquire) != 0 {
                return;
            }
            seen = shared.generation.load(Ordering::Acquire);
            *slot
        };
        if let Some(JobPtr(ptr)) = job {
            // SAFETY: `run` keeps the job alive until `pending` drops to zero below.
            let f = unsafe { &*ptr };
            f(index, n_threads);
        }
        if shared.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Take the lock so the notification cannot slip between the caller's check and
            // its wait.
            let _guard = shared.done_lock.lock().unwrap_or_else(|e| e.into_inner());
            shared.done.notify_all();
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        {
            let _slot = self.shared.job.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.shutdown.store(1, Ordering::SeqCst);
        }
        self.shared.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A buffer the threads of one `ThreadPool::run` share, each writing a disjoint part of it.
#[derive(Clone, Copy)]
pub struct SharedMut<T>(*mut T);

// SAFETY: the wrapper only moves a pointer between the threads of one `run`; every use goes
// through `slice`/`write`, whose callers guarantee disjoint access.
unsafe impl<T> Send for SharedMut<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    pub fn new(buf: &mut [T]) -> SharedMut<T> {
        SharedMut(buf.as_mut_ptr())
    }

    /// The elements `start..start + len`.
    ///
    /// # Safety
    /// The range lies inside the buffer `new` was given, that buffer outlives the use, and no
    /// other thread touches the range meanwhile.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, start: usize, len: usize) -> &mut [T] {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), len) }
    }

    /// Writes element `i`.
    ///
    /// # Safety
    /// As for `slice`, for the single element `i`.
    pub unsafe fn write(&self, i: usize, v: T) {
        // SAFETY: guaranteed by the caller.
        unsafe { self.0.add(i).write(v) }
    }
}

/// The half-open range of `0..n` that thread `ith` of `nth` owns (contiguous, balanced).
pub fn split_range(n: usize, ith: usize, nth: usize) -> std::ops::Range<usize> {
    let per = n / nth;
    let extra = n % nth;
    let start = ith * per + ith.min(extra);
    let len = per + usize::from(ith < extra);
    start..start + len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_runs_once_per_job() {
        let pool = ThreadPool::new(3);
        for _ in 0..200 {
            let hits: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
            pool.run(|i, n| {
                assert_eq!(n, 3);
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn split_covers_range() {
        for n in 0..20 {
            for nth in 1..5 {
                let mut covered = 0;
                for i in 0..nth {
                    let r = split_range(n, i, nth);
                    assert_eq!(r.start, covered);
                    covered = r.end;
                }
                assert_eq!(covered, n);
            }
        }
    }
}
