//! `Sampler::sample` must not allocate once warm. Counts allocations made by
//! this thread through a wrapping global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use owl_sample::{Sampler, SamplingParams};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: defers entirely to `System`; only bumps a thread-local counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}

#[test]
fn sample_does_not_allocate_after_first_call() {
    let vocab = 5000;
    let logits: Vec<Vec<f32>> = (0..8)
        .map(|k| {
            (0..vocab)
                .map(|i| (((i * 7919 + k * 31) % vocab) as f32 * 1e-3).sin() * 3.0)
                .collect()
        })
        .collect();
    let history: Vec<u32> = (0..200u32).map(|i| (i * 13) % vocab as u32).collect();
    let configs = [
        SamplingParams::greedy(),
        SamplingParams {
            seed: Some(1),
            ..SamplingParams::default()
        },
        SamplingParams {
            seed: Some(2),
            top_k: 0,
            top_p: 0.9,
            min_p: 0.01,
            repeat_penalty: 1.2,
            frequency_penalty: 0.3,
            presence_penalty: 0.2,
            logit_bias: vec![(3, -1.0), (4, f32::NEG_INFINITY)],
            ..SamplingParams::default()
        },
        SamplingParams {
            seed: Some(3),
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            temperature: 1.0,
            repeat_penalty: 1.1,
            ..SamplingParams::default()
        },
    ];
    for p in configs {
        let mut s = Sampler::new(p.clone()).expect("valid params");
        s.sample(&logits[0], &history);
        let before = allocs();
        for l in &logits {
            s.sample(l, &history);
        }
        assert_eq!(allocs() - before, 0, "allocated with {p:?}");
    }
}
