//! [`ComputeGate`]: one forward pass at a time across the engines of a process.
//!
//! A server that keeps several models loaded runs one engine thread per model, and each engine
//! has a thread pool as wide as the machine. Two engines computing at once would put twice as
//! many busy threads as there are cores on the CPU; every fork-join would then wait for a
//! descheduled worker, and both models would run far slower than one after the other. Engines
//! that share a gate take turns instead: each step's forward pass holds the gate, and turns are
//! handed out first come, first served (a ticket lock), so a model with steady traffic cannot
//! starve another. An engine without a gate (the command line, a one-model server) never waits.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// A fair lock over "the cores", shared (by cloning) by every engine that computes on them.
#[derive(Clone, Default)]
pub struct ComputeGate {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    tickets: Mutex<Tickets>,
    turn: Condvar,
}

#[derive(Default)]
struct Tickets {
    /// The ticket the next caller of `enter` draws.
    next: u64,
    /// The ticket whose holder may compute now.
    serving: u64,
}

/// The right to compute; the next ticket is served when it drops.
pub struct GatePass<'a> {
    inner: &'a Inner,
}

impl std::fmt::Debug for ComputeGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ComputeGate")
    }
}

impl ComputeGate {
    pub fn new() -> ComputeGate {
        ComputeGate::default()
    }

    /// Waits for this caller's turn (callers are served in the order they arrived).
    pub fn enter(&self) -> GatePass<'_> {
        let inner = &*self.inner;
        let mut t = lock(&inner.tickets);
        let mine = t.next;
        t.next += 1;
        while t.serving != mine {
            t = inner.turn.wait(t).unwrap_or_else(|e| e.into_inner());
        }
        GatePass { inner }
    }

    /// Whether `other` is the same gate.
    pub fn same(&self, other: &ComputeGate) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Drop for GatePass<'_> {
    fn drop(&mut self) {
        lock(&self.inner.tickets).serving += 1;
        self.inner.turn.notify_all();
    }
}

/// The tickets stay consistent whatever panicked while holding them (two counters).
fn lock(m: &Mutex<Tickets>) -> MutexGuard<'_, Tickets> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn one_holder_at_a_time_and_everyone_gets_a_turn() {
        let gate = ComputeGate::new();
        let inside = Arc::new(AtomicUsize::new(0));
        let turns = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let (gate, inside, turns) = (gate.clone(), inside.clone(), turns.clone());
                s.spawn(move || {
                    for _ in 0..200 {
                        let _pass = gate.enter();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        std::hint::spin_loop();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        turns.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(turns.load(Ordering::SeqCst), 800);
    }

    #[test]
    fn turns_follow_arrival_order() {
        let gate = ComputeGate::new();
        let first = gate.enter();
        let order = Arc::new(Mutex::new(Vec::new()));
        std::thread::scope(|s| {
            let mut handles = Vec::new();
            for i in 0..3 {
                let (g, order) = (gate.clone(), order.clone());
                handles.push(s.spawn(move || {
                    let _pass = g.enter();
                    order.lock().unwrap_or_else(|e| e.into_inner()).push(i);
                }));
                // Let thread i draw its ticket before thread i + 1 starts.
                while lock(&gate.inner.tickets).next < i as u64 + 2 {
                    std::thread::yield_now();
                }
            }
            drop(first);
        });
        assert_eq!(
            *order.lock().unwrap_or_else(|e| e.into_inner()),
            vec![0, 1, 2]
        );
    }
}
