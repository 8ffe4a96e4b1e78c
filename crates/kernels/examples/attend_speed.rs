//! Micro-benchmark of decode-order attention over a hot KV cache: head_dim 64, three KV heads
//! per position, a few context lengths; one head alone (`attend_head`), then the three query
//! heads that share a KV head in SmolLM2 as one group (`attend_group`). Timings only.
//!
//! `cargo run --release -p owl-kernels --example attend_speed`

use std::time::Instant;

use half::f16;
use owl_kernels::attention::{
    attend_group, attend_head, pad_kv, AttnScratch, HeadOptions, HeadView, KV_PAGE,
};
use owl_kernels::Kernels;

/// Query heads per KV head in the group timing.
const GROUP: usize = 3;

fn main() {
    let k = Kernels::detect();
    let (d, kv_dim) = (64usize, 192usize);
    let mut q32 = vec![0f32; GROUP * d];
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
        let q: Vec<f32> = (0..GROUP * d).map(|i| (i as f32 - 30.0) / 40.0).collect();
        let (mut scores, mut p16, mut q16) = (
            vec![0f32; GROUP * pad_kv(n_kv)],
            vec![f16::ZERO; GROUP * pad_kv(n_kv)],
            vec![f16::ZERO; GROUP * d],
        );
        let mut out = vec![0f32; GROUP * d];
        let opts = [HeadOptions::default(); GROUP];
        let reps = 2_000_000 / n_kv;
        let time = |f: &mut dyn FnMut()| {
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t = Instant::now();
                for _ in 0..reps {
                    f();
                }
                best = best.min(t.elapsed().as_secs_f64() / reps as f64);
            }
            best
        };
        let one = time(&mut || {
            let mut s = AttnScratch {
                scores: &mut scores,
                p16: &mut p16,
                q16: &mut q16,
                q32: &mut q32,
            };
            let (q, o) = (&q[..d], &mut out[..d]);
            attend_head(&k, q, &view, n_kv, 0.125, false, opts[0], &mut s, o);
        });
        let group = time(&mut || {
            let mut s = AttnScratch {
                scores: &mut scores,
                p16: &mut p16,
                q16: &mut q16,
                q32: &mut q32,
            };
            attend_group(&k, &q, &view, n_kv, 0.125, false, &opts, &mut s, &mut out);
        }) / GROUP as f64;
        println!(
            "n_kv {n_kv:5}: {:7.2} µs per head alone, {:7.2} in a group of {GROUP} ({:5.1} ns per position and head)",
            one * 1e6,
            group * 1e6,
            group * 1e9 / n_kv as f64
        );
    }
}
