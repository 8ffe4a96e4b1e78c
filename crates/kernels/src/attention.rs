//! Causal attention of one query head over an f16 KV cache.
//!
//! The numerics follow llama.cpp's CPU path without flash attention, so greedy decoding can
//! reproduce it token for token: the query is rounded to f16 and each score is an f16·f16 dot
//! product (`Kernels::dot_f16`); the scaled scores go through a softmax whose sum is accumulated
//! in f64; the probabilities are rounded to f16; and each output dimension is an f16·f16 dot
//! product of a row of the *transposed* V cache with the probabilities. Like llama.cpp, the
//! probability vector is padded with zeros to a multiple of `KV_PAD` so both use the same
//! accumulation lanes.

use half::f16;

use crate::Kernels;

/// Cache lengths are padded to a multiple of this (zeros beyond the live rows).
pub const KV_PAD: usize = 32;

/// `n` rounded up to a multiple of `KV_PAD`.
pub fn pad_kv(n: usize) -> usize {
    n.div_ceil(KV_PAD) * KV_PAD
}

/// One KV head inside a cache: K rows `k[j * k_stride ..][..head_dim]` for position `j`, and
/// V transposed: `vt[d * vt_stride ..][..n]` holds dimension `d` for positions `0..n`.
pub struct HeadView<'a> {
    pub k: &'a [f16],
    pub k_stride: usize,
    pub vt: &'a [f16],
    pub vt_stride: usize,
}

/// Per-thread scratch: `scores` and `p16` hold at least `pad_kv(n_kv)`, `q16` holds head_dim.
pub struct AttnScratch<'a> {
    pub scores: &'a mut [f32],
    pub p16: &'a mut [f16],
    pub q16: &'a mut [f16],
}

/// The reference f16 dot product: f32 products summed in f64 (ggml's generic path).
pub fn dot_f16_scalar(a: &[f16], b: &[f16]) -> f32 {
    let mut sum = 0.0f64;
    for (x, y) in a.iter().zip(b) {
        sum += (x.to_f32() * y.to_f32()) as f64;
    }
    sum as f32
}

/// `out = softmax(scale * K q) V` over the first `n_kv` positions. `out`: [head_dim].
///
/// `in_prompt_chunk` is true when the query's token belongs to a chunk of two or more tokens of
/// its sequence: llama.cpp then computes attention with its tiled GEMM, whose dot products sum
/// in a different order, and owl follows it so prompts give the same bits. The choice depends
/// only on the sequence's own chunk, never on other sequences in the batch.
#[allow(clippy::too_many_arguments)]
pub fn attend_head(
    k: &Kernels,
    q: &[f32],
    kv: &HeadView<'_>,
    n_kv: usize,
    scale: f32,
    in_prompt_chunk: bool,
    s: &mut AttnScratch<'_>,
    out: &mut [f32],
) {
    let d = q.len();
    let dot = if in_prompt_chunk {
        k.dot_f16_batch()
    } else {
        k.dot_f16()
    };
    let q16 = &mut s.q16[..d];
    for (dst, &x) in q16.iter_mut().zip(q) {
        *dst = f16::from_f32(x);
    }
    let n_pad = pad_kv(n_kv).min(kv.vt_stride);
    let mut max = f32::NEG_INFINITY;
    for (j, sc) in s.scores[..n_kv].iter_mut().enumerate() {
        let krow = &kv.k[j * kv.k_stride..j * kv.k_stride + d];
        *sc = dot(krow, q16) * scale;
        max = max.max(*sc);
    }
    // Masked positions (as in llama.cpp's padded KV window) are -inf and come out as zero.
    s.scores[n_kv..n_pad].fill(f32::NEG_INFINITY);
    let scores = &mut s.scores[..n_pad];
    let sum = (k.softmax_exp())(scores, max);
    let inv = (1.0 / sum) as f32;
    let p16 = &mut s.p16[..n_pad];
    for (p, &sc) in p16.iter_mut().zip(scores.iter()) {
        *p = f16::from_f32(sc * inv);
    }
    p16[n_kv..].fill(f16::ZERO);
    for (i, o) in out.iter_mut().enumerate() {
        let vrow = &kv.vt[i * kv.vt_stride..i * kv.vt_stride + n_pad];
        *o = dot(vrow, p16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Isa;

    #[test]
    fn matches_f64_softmax_attention_for_every_isa() {
        let d = 64;
        let n = 45;
        let stride = 3 * d;
        let vt_stride = pad_kv(n) + 32;
        let mut kc = vec![f16::ZERO; n * stride];
        let mut vt = vec![f16::ZERO; 3 * d * vt_stride];
        let val = |a: usize, b: usize, m: usize| ((a * 7 + b * 3) % m) as f32 / m as f32 - 0.5;
        for j in 0..n {
            for i in 0..d {
                kc[j * stride + d + i] = f16::from_f32(val(j, i, 11));
                vt[(d + i) * vt_stride + j] = f16::from_f32(val(j + 1, i * 5, 13) * 2.0);
            }
        }
        // Stale values beyond n must not leak into the result.
        for i in 0..d {
            vt[(d + i) * vt_stride + n] = f16::from_f32(100.0);
        }
        let q: Vec<f32> = (0..d).map(|i| (i as f32 * 0.37).sin()).collect();
        for isa in Isa::available() {
            let k = Kernels::for_isa(isa);
            let view = HeadView {
                k: &kc[d..],
                k_stride: stride,
                vt: &vt[d * vt_stride..],
                vt_stride,
            };
            let mut scores = vec![0.0; vt_stride];
            let mut p16 = vec![f16::ZERO; vt_stride];
            let mut q16 = vec![f16::ZERO; d];
            let mut out = vec![0.0; d];
            let mut s = AttnScratch {
                scores: &mut scores,
                p16: &mut p16,
                q16: &mut q16,
            };
            attend_head(&k, &q, &view, n, 0.125, isa == Isa::Avx2, &mut s, &mut out);
            let logits: Vec<f64> = (0..n)
                .map(|j| {
                    (0..d)
                        .map(|i| kc[j * stride + d + i].to_f64() * q[i] as f64)
                        .sum::<f64>()
                        * 0.125
                })
                .collect();
            let m = logits.iter().cloned().fold(f64::MIN, f64::max);
            let z: f64 = logits.iter().map(|l| (l - m).exp()).sum();
            for i in 0..d {
                let r: f64 = (0..n)
                    .map(|j| (logits[j] - m).exp() / z * vt[(d + i) * vt_stride + j].to_f64())
                    .sum();
                assert!(
                    (out[i] as f64 - r).abs() < 2e-3,
                    "{isa:?} {i}: {} vs {r}",
                    out[i]
                );
            }
        }
    }
}
