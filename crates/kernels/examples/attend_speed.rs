//! Micro-benchmark of one decode-order attention head (`attend_head`) over a hot KV cache:
//! head_dim 64, three KV heads per position, a few context lengths. Timings only.
//!
//! `cargo run --release -p owl-kernels --example attend_speed`

use std::time::Instant;

use half::f16;
use owl_kernels::attention::{attend_head, pad_kv, AttnScratch, HeadOptions, HeadView, KV_PAGE};
use owl_kernels::Kernels;

fn main() {
    let k = Kernels::detect();
    let (d, kv_dim) = (64usize, 192usize);
    for n_kv in [100usize, 300, 1000] {
        let n_pages = pad_kv(n_kv) / KV_PAGE;
        let page_elems = KV_PAGE * kv_dim;
        let kc: Vec<f16> = (0..n_pages * page_elems)
            .map(|i| f16::from_f32(((i * 7 % 13) as f32 - 6.0) / 8.0))
            .collect();
        let vt = kc.clone();
        let pages: Vec<u32> = (0..n_pages as u32).rev().collect();
        let view = HeadView {
            k: &kc,
            vt: &vt,
            pages: &pages,
            page_elems,
            k_offset: d,
            k_stride: kv_dim,
            vt_page_elems: page_elems,
            vt_offset: d * KV_PAGE,
        };
        let q: Vec<f32> = (0..d).map(|i| (i as f32 - 30.0) / 40.0).collect();
        let (mut scores, mut p16, mut q16) = (
            vec![0f32; pad_kv(n_kv)],
            vec![f16::ZERO; pad_kv(n_kv)],
            vec![f16::ZERO; d],
        );
        let mut out = vec![0f32; d];
        let reps = 2_000_000 / n_kv;
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..reps {
                let mut s = AttnScratch {
                    scores: &mut scores,
                    p16: &mut p16,
                    q16: &mut q16,
                };
                attend_head(
                    &k,
                    &q,
                    &view,
                    n_kv,
                    0.125,
                    false,
                    HeadOptions::default(),
                    &mut s,
                    &mut out,
                );
            }
            best = best.min(t.elapsed().as_secs_f64() / reps as f64);
        }
        println!(
            "n_kv {n_kv:5}: {:7.2} µs per head, {:5.1} ns per position",
            best * 1e6,
            best * 1e9 / n_kv as f64
        );
    }
}
