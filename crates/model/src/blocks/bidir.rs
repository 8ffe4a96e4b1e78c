//! Bidirectional attention within each input of a batch, for encoders.
//!
//! An encoder sees its whole input at once: every token attends to every token of its own
//! input, before and after it, and to nothing of the other inputs that share the batch. There
//! is no KV cache: K and V are this pass's `[n_tokens, n_embd]` projections. The float order is
//! llama.cpp's non-flash CPU path without a cache (all f32): scores `q·k` scaled, softmax with
//! the max subtracted and an f64 denominator (`ggml_soft_max_ext`), then the probabilities
//! weighting V. Each (input, head) pair is one task on the thread pool, writing its own head
//! columns of its own rows.

use owl_kernels::pool::SharedMut;

use crate::batch::Batch;
use crate::scratch::Compute;

/// Attention of `n_head` heads of `head_dim` over `q`, `k`, `v` (each `[n_tokens, n_head *
/// head_dim]`), into `out` (the same shape); every chunk of `batch` is one input.
#[allow(clippy::too_many_arguments)]
pub fn attend_within_inputs(
    cx: &Compute<'_>,
    batch: &Batch,
    n_head: usize,
    head_dim: usize,
    scale: f32,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) {
    let width = n_head * head_dim;
    let n_tasks = batch.chunks.len() * n_head;
    let shared = SharedMut::new(out);
    cx.pool.run_chunks(n_tasks, |task, _thread| {
        let c = &batch.chunks[task / n_head];
        let h = task % n_head;
        let col = h * head_dim;
        let mut p = vec![0.0f32; c.len];
        let mut acc = vec![0.0f32; head_dim];
        for i in 0..c.len {
            let row = c.start + i;
            let qi = &q[row * width + col..row * width + col + head_dim];
            let mut max = f32::NEG_INFINITY;
            for (j, pj) in p.iter_mut().enumerate() {
                let r = c.start + j;
                *pj = dot(qi, &k[r * width + col..r * width + col + head_dim]) * scale;
                max = max.max(*pj);
            }
            let mut sum = 0.0f64;
            for pj in p.iter_mut() {
                *pj = (*pj - max).exp();
                sum += *pj as f64;
            }
            let inv = (1.0 / sum) as f32;
            acc.fill(0.0);
            for (j, pj) in p.iter().enumerate() {
                let w = pj * inv;
                let r = c.start + j;
                for (a, &x) in acc
                    .iter_mut()
                    .zip(&v[r * width + col..r * width + col + head_dim])
                {
                    *a += w * x;
                }
            }
            // SAFETY: task (chunk, head) alone writes the columns of head `h` in the rows of
            // its own chunk; chunks do not overlap, and `out` outlives `run_chunks`.
            let dst = unsafe { shared.slice(row * width + col, head_dim) };
            dst.copy_from_slice(&acc);
        }
    });
}

/// An f32 dot product with eight running sums (vectorisable without reassociation flags).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut s = [0.0f32; 8];
    let (ac, ar) = a.split_at(a.len() / 8 * 8);
    let (bc, br) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(8).zip(bc.chunks_exact(8)) {
        for l in 0..8 {
            s[l] += x[l] * y[l];
        }
    }
    let mut t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (x, y) in ar.iter().zip(br) {
        t += x * y;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use owl_kernels::{Kernels, ThreadPool};

    /// Two inputs in one batch give what each gives alone, and match an f64 softmax attention.
    #[test]
    fn inputs_do_not_see_each_other() {
        let (n_head, hd) = (2, 4);
        let w = n_head * hd;
        let n = 5;
        let val = |i: usize, s: usize| ((i * 31 + s * 7) % 13) as f32 * 0.1 - 0.6;
        let q: Vec<f32> = (0..n * w).map(|i| val(i, 1)).collect();
        let k: Vec<f32> = (0..n * w).map(|i| val(i, 2)).collect();
        let v: Vec<f32> = (0..n * w).map(|i| val(i, 3)).collect();
        let kernels = Kernels::detect();
        let pool = ThreadPool::new(2);
        let cx = Compute {
            kernels: &kernels,
            pool: &pool,
            trace: None,
            lora: None,
        };
        let mut both = Batch::new();
        both.push(0, 0, &[0, 0], crate::LogitsWanted::All);
        both.push(1, 0, &[0, 0, 0], crate::LogitsWanted::All);
        let mut out = vec![0.0; n * w];
        attend_within_inputs(&cx, &both, n_head, hd, 0.5, &q, &k, &v, &mut out);
        let mut second = Batch::new();
        second.push(0, 0, &[0, 0, 0], crate::LogitsWanted::All);
        let mut alone = vec![0.0; 3 * w];
        attend_within_inputs(
            &cx,
            &second,
            n_head,
            hd,
            0.5,
            &q[2 * w..],
            &k[2 * w..],
            &v[2 * w..],
            &mut alone,
        );
        assert_eq!(&out[2 * w..], &alone[..]);
        // f64 reference for the first input.
        for i in 0..2 {
            for h in 0..n_head {
                let s: Vec<f64> = (0..2)
                    .map(|j| {
                        (0..hd)
                            .map(|d| (q[i * w + h * hd + d] * k[j * w + h * hd + d]) as f64)
                            .sum::<f64>()
                            * 0.5
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for d in 0..hd {
                    let want: f64 = (0..2)
                        .map(|j| e[j] / z * v[j * w + h * hd + d] as f64)
                        .sum();
                    let got = out[i * w + h * hd + d] as f64;
                    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
                }
            }
        }
    }
}
