//! Micro-benchmark of `linear` per weight format: one thread, a weight matrix that fits in L2,
//! a prompt-sized batch and a single token. Prints multiply-accumulates per second, so kernel
//! changes can be judged without a whole model. Timings only; nothing here is a test.
//!
//! `[LINEAR_SPEED_SHAPE=ROWSxCOLS] cargo run --release -p owl-kernels --example linear_speed [-- TYPE...]`

use std::time::Instant;

use owl_kernels::{linear, ActBuffer, Kernels, QMatrix, ThreadPool, WeightBytes};
use owl_quant::GgmlType;

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let k = Kernels::detect();
    let pool = ThreadPool::new(1);
    // `LINEAR_SPEED_SHAPE=ROWSxCOLS` picks another shape (e.g. a model's, 896 or 4864 wide).
    let (rows, cols) = std::env::var("LINEAR_SPEED_SHAPE")
        .ok()
        .and_then(|s| {
            let (r, c) = s.split_once('x')?;
            Some((r.parse().ok()?, c.parse().ok()?))
        })
        .unwrap_or((256usize, 2048usize));
    println!("isa {} — {rows}×{cols} weights, 1 thread", k.isa().name());
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::MXFP4,
        GgmlType::F16,
        GgmlType::BF16,
    ] {
        if !wanted.is_empty()
            && !wanted
                .iter()
                .any(|w| w.eq_ignore_ascii_case(&ty.to_string()))
        {
            continue;
        }
        let Some(q) = owl_quant::format(ty).and_then(|f| f.quantize) else {
            continue;
        };
        let rb = owl_quant::row_bytes(ty, cols);
        let w_f32 = data(rows * cols, 7);
        let mut bytes = vec![0u8; rb * rows];
        for (r, dst) in bytes.chunks_exact_mut(rb).enumerate() {
            q(&w_f32[r * cols..(r + 1) * cols], dst);
        }
        let w = QMatrix {
            ty,
            rows,
            cols,
            bytes: WeightBytes::Owned(std::sync::Arc::new(bytes)),
            layout: owl_kernels::Layout::Rows,
        };
        println!("{}", measure(&k, &pool, &w, &format!("{ty:>5}")));
        if let Some(p) = w.repacked_with(true) {
            println!("{}", measure(&k, &pool, &p, &format!("{ty}×8")));
        }
    }
}

/// One line: multiply-accumulates per second for a single token and a 64-token batch.
fn measure(k: &Kernels, pool: &ThreadPool, w: &QMatrix, label: &str) -> String {
    let mut act = ActBuffer::default();
    let mut line = label.to_string();
    for n_tokens in [1usize, 16, 64] {
        let x = data(n_tokens * w.cols, 11);
        let mut out = vec![0f32; n_tokens * w.rows];
        let macs = (w.rows * w.cols * n_tokens) as f64;
        let reps = ((4e8 / macs) as usize).max(3);
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..reps {
                linear(k, pool, w, &x, n_tokens, &mut out, &mut act);
            }
            best = best.min(t.elapsed().as_secs_f64() / reps as f64);
        }
        line += &format!("  t={n_tokens:<3} {:7.2} GMAC/s", macs / best / 1e9);
    }
    line
}
