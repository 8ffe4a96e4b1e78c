//! A persistent thread pool with dynamic chunking and a cheap barrier.
//!
//! Every matmul and attention in a forward pass is a fork-join, thousands of times per second,
//! so workers live for the whole process (they spin briefly, then park on a condition
//! variable). A job is split into chunks that threads claim from an atomic counter, and the
//! caller works too: if a worker is descheduled (another process busy on its core), the others
//! take its chunks instead of waiting for it. A worker joins a job only while it is open; the
//! caller closes the job once every chunk is claimed and waits just for the workers inside it,
//! never for one that has not woken up. The job borrows from the caller's stack; it is only
//! reachable while open or while a registered worker runs it, which is what makes the lifetime
//! erasure below sound.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// `job(chunk, thread)`: `thread` is 0 for the caller and 1.. for workers (per-thread scratch).
type Job = dyn Fn(usize, usize) + Sync;

/// A pointer to the current job with its lifetime erased (see `run_chunks`).
#[derive(Clone, Copy)]
struct JobPtr(*const Job);
// SAFETY: the pointee is `Sync` and outlives every use (see the module docs).
unsafe impl Send for JobPtr {}

/// Set in `Shared::state` once a job accepts no more workers.
const CLOSED: usize = 1 << (usize::BITS - 1);

struct Shared {
    /// Bumped for every job; sleeping workers wake on a change.
    generation: AtomicUsize,
    /// `CLOSED` bit | number of workers inside the current job.
    state: AtomicUsize,
    next_chunk: AtomicUsize,
    n_chunks: AtomicUsize,
    job: Mutex<Option<JobPtr>>,
    /// Workers waiting on `wake` (changed under `sleep`): a job wakes them only when there
    /// are some, since a condition variable's notify is a system call even when nobody waits,
    /// and a wide decode step starts a few hundred jobs.
    sleepers: AtomicUsize,
    sleep: Mutex<()>,
    wake: Condvar,
    shutdown: AtomicBool,
}

/// A fixed set of worker threads plus the calling thread.
pub struct ThreadPool {
    n_threads: usize,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

/// Busy-wait iterations before a worker sleeps (a few microseconds).
const SPIN_ITERS: usize = 4_000;

impl ThreadPool {
    /// A pool that runs jobs on `n_threads` threads (the caller plus `n_threads - 1` workers).
    pub fn new(n_threads: usize) -> ThreadPool {
        let n_threads = n_threads.max(1);
        let shared = Arc::new(Shared {
            generation: AtomicUsize::new(0),
            state: AtomicUsize::new(CLOSED),
            next_chunk: AtomicUsize::new(0),
            n_chunks: AtomicUsize::new(0),
            job: Mutex::new(None),
            sleepers: AtomicUsize::new(0),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
        });
        let workers = (1..n_threads)
            .map(|index| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("owl-worker-{index}"))
                    .spawn(move || worker_loop(&shared, index))
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

    /// Runs `job(chunk, thread)` once for every `chunk` in `0..n_chunks`, spread over the pool's
    /// threads, and returns when all chunks are done. Which thread runs a chunk varies from call
    /// to call, so results must not depend on it (it only selects per-thread scratch).
    pub fn run_chunks<F: Fn(usize, usize) + Sync>(&self, n_chunks: usize, job: F) {
        if self.n_threads == 1 || n_chunks <= 1 {
            (0..n_chunks).for_each(|c| job(c, 0));
            return;
        }
        let sh = &*self.shared;
        let job_ref: &(dyn Fn(usize, usize) + Sync + '_) = &job;
        // SAFETY: the erased reference is reachable only while the job is open or a registered
        // worker runs it; this function closes the job and waits for registered workers before
        // returning, so it never outlives `job`.
        let ptr = JobPtr(unsafe {
            std::mem::transmute::<&(dyn Fn(usize, usize) + Sync + '_), &'static Job>(job_ref)
        });
        *sh.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(ptr);
        sh.n_chunks.store(n_chunks, Ordering::SeqCst);
        sh.next_chunk.store(0, Ordering::SeqCst);
        sh.state.store(0, Ordering::SeqCst); // open, nobody inside
        let sleepers = {
            let _g = sh.sleep.lock().unwrap_or_else(|e| e.into_inner());
            sh.generation.fetch_add(1, Ordering::SeqCst);
            // Read under the lock a waiting worker holds until it sleeps: one that has not
            // counted itself yet will see the new generation and not sleep.
            sh.sleepers.load(Ordering::SeqCst)
        };
        if sleepers > 0 {
            sh.wake.notify_all();
        }
        loop {
            let c = sh.next_chunk.fetch_add(1, Ordering::SeqCst);
            if c >= n_chunks {
                break;
            }
            job(c, 0);
        }
        // Every chunk is claimed: close, then wait for the workers still finishing theirs.
        sh.state.fetch_or(CLOSED, Ordering::SeqCst);
        let mut spins = 0usize;
        while sh.state.load(Ordering::SeqCst) & !CLOSED != 0 {
            spins += 1;
            if spins < SPIN_ITERS {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        *sh.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

fn worker_loop(sh: &Shared, index: usize) {
    let mut seen = 0usize;
    loop {
        let mut spins = 0usize;
        while sh.generation.load(Ordering::SeqCst) == seen
            && !sh.shutdown.load(Ordering::SeqCst)
            && spins < SPIN_ITERS
        {
            spins += 1;
            std::hint::spin_loop();
        }
        {
            let mut g = sh.sleep.lock().unwrap_or_else(|e| e.into_inner());
            sh.sleepers.fetch_add(1, Ordering::SeqCst);
            while sh.generation.load(Ordering::SeqCst) == seen
                && !sh.shutdown.load(Ordering::SeqCst)
            {
                g = sh.wake.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            sh.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
        if sh.shutdown.load(Ordering::SeqCst) {
            return;
        }
        seen = sh.generation.load(Ordering::SeqCst);
        // Join the open job, if any (a job closes as soon as its chunks are all claimed).
        let mut s = sh.state.load(Ordering::SeqCst);
        loop {
            if s & CLOSED != 0 {
                break;
            }
            match sh
                .state
                .compare_exchange(s, s + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => {
                    run_claimed(sh, index);
                    sh.state.fetch_sub(1, Ordering::SeqCst);
                    break;
                }
                Err(now) => s = now,
            }
        }
    }
}

/// Runs chunks of the current job until none is left. Called only by a registered worker.
fn run_claimed(sh: &Shared, index: usize) {
    let job = *sh.job.lock().unwrap_or_else(|e| e.into_inner());
    let Some(JobPtr(ptr)) = job else { return };
    // SAFETY: we are registered in the open job, so its caller waits for us before the job
    // (and the closure behind `ptr`) goes away.
    let f = unsafe { &*ptr };
    let n = sh.n_chunks.load(Ordering::SeqCst);
    loop {
        let c = sh.next_chunk.fetch_add(1, Ordering::SeqCst);
        if c >= n {
            return;
        }
        f(c, index);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        {
            let _g = self.shared.sleep.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.shutdown.store(true, Ordering::SeqCst);
        }
        self.shared.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Chunks for `n` items: about `per_thread` chunks per thread, each at least `min` items.
/// Returns (number of chunks, items per chunk).
pub fn chunking(n: usize, n_threads: usize, per_thread: usize, min: usize) -> (usize, usize) {
    let size = (n / (n_threads * per_thread).max(1)).max(min).max(1);
    (n.div_ceil(size), size)
}

/// A buffer the threads of one `ThreadPool::run_chunks` share, each writing a disjoint part of it.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_runs_exactly_once() {
        let pool = ThreadPool::new(3);
        for n in [0usize, 1, 2, 7, 100] {
            for _ in 0..50 {
                let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                pool.run_chunks(n, |c, t| {
                    assert!(t < 3);
                    hits[c].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
        }
    }

    #[test]
    fn a_busy_worker_does_not_stall_the_caller() {
        // One chunk sleeps; the others are still all done, by whichever threads are free.
        let pool = ThreadPool::new(2);
        let done = AtomicUsize::new(0);
        pool.run_chunks(20, |c, _| {
            if c == 0 {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            done.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(done.load(Ordering::Relaxed), 20);
    }

    /// A worker that went to sleep between jobs (longer than its spin) is woken by the next
    /// job: each of two chunks waits until both have started, which needs a second thread.
    #[test]
    fn sleeping_workers_wake_for_the_next_job() {
        let pool = ThreadPool::new(2);
        for _ in 0..3 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let started = AtomicUsize::new(0);
            let on_worker = AtomicBool::new(false);
            pool.run_chunks(2, |_, t| {
                if t != 0 {
                    on_worker.store(true, Ordering::SeqCst);
                }
                started.fetch_add(1, Ordering::SeqCst);
                let start = std::time::Instant::now();
                while started.load(Ordering::SeqCst) < 2
                    && start.elapsed() < std::time::Duration::from_secs(5)
                {
                    std::hint::spin_loop();
                }
            });
            assert!(
                on_worker.load(Ordering::SeqCst),
                "no worker woke up for the job"
            );
        }
    }

    #[test]
    fn chunking_covers_items() {
        for n in [1usize, 5, 576, 49152] {
            let (k, size) = chunking(n, 2, 8, 16);
            assert!(k * size >= n && (k - 1) * size < n, "{n}: {k} x {size}");
        }
    }
}
