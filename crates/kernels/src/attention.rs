//! Causal attention of one query head over a KV cache stored in f16.
//!
//! The numerics follow llama.cpp's CPU path without flash attention: the query is rounded to f16
//! (its K·Q product runs in f16 × f16 with f32 accumulation), the scaled scores go through a
//! softmax whose sum is accumulated in f64, and the probabilities are rounded to f16 before they
//! weight the f16 values. Matching these roundings is what lets greedy decoding reproduce
//! llama.cpp token for token.

use half::f16;

/// Where one KV head's rows sit in a cache: row `j` of the head starts at `j * row_stride`.
pub struct HeadView<'a> {
    pub k: &'a [f16],
    pub v: &'a [f16],
    pub row_stride: usize,
}

/// `out = softmax(scale * K q) V` over the first `n_kv` cache rows.
///
/// `q`: [head_dim]; `scores`: scratch of at least `n_kv`; `q16`: scratch of `head_dim`;
/// `out`: [head_dim].
pub fn attend_head(
    q: &[f32],
    kv: &HeadView<'_>,
    n_kv: usize,
    scale: f32,
    scores: &mut [f32],
    q16: &mut [f32],
    out: &mut [f32],
) {
    let d = q.len();
    for (dst, &x) in q16.iter_mut().zip(q) {
        *dst = f16::from_f32(x).to_f32();
    }
    let scores = &mut scores[..n_kv];
    let mut max = f32::NEG_INFINITY;
    for (j, s) in scores.iter_mut().enumerate() {
        let krow = &kv.k[j * kv.row_stride..j * kv.row_stride + d];
        let mut acc = 0.0f32;
        for (a, b) in krow.iter().zip(q16.iter()) {
            acc += a.to_f32() * b;
        }
        *s = acc * scale;
        max = max.max(*s);
    }
    let mut sum = 0.0f64;
    for s in scores.iter_mut() {
        let e = (*s - max).exp();
        sum += e as f64;
        *s = e;
    }
    let inv = (1.0 / sum) as f32;
    for s in scores.iter_mut() {
        *s = f16::from_f32(*s * inv).to_f32();
    }
    out.iter_mut().for_each(|o| *o = 0.0);
    for (j, &p) in scores.iter().enumerate() {
        let vrow = &kv.v[j * kv.row_stride..j * kv.row_stride + d];
        for (o, v) in out.iter_mut().zip(vrow) {
            *o += v.to_f32() * p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_f64_softmax_attention() {
        let d = 8;
        let n = 13;
        let stride = 3 * d;
        let mut k = vec![f16::ZERO; n * stride];
        let mut v = vec![f16::ZERO; n * stride];
        for j in 0..n {
            for i in 0..d {
                k[j * stride + d + i] = f16::from_f32(((j * 7 + i * 3) % 11) as f32 * 0.1 - 0.5);
                v[j * stride + d + i] = f16::from_f32(((j * 5 + i) % 13) as f32 * 0.2 - 1.0);
            }
        }
        let q: Vec<f32> = (0..d).map(|i| i as f32 * 0.25 - 1.0).collect();
        let view = HeadView { k: &k[d..], v: &v[d..], row_stride: stride };
        let mut scores = vec![0.0; n];
        let mut q16 = vec![0.0; d];
        let mut out = vec![0.0; d];
        attend_head(&q, &view, n, 0.3, &mut scores, &mut q16, &mut out);
        let logits: Vec<f64> = (0..n)
            .map(|j| (0..d).map(|i| k[j * stride + d + i].to_f64() * q[i] as f64).sum::<f64>() * 0.3)
            .collect();
        let m = logits.iter().cloned().fold(f64::MIN, f64::max);
        let z: f64 = logits.iter().map(|l| (l - m).exp()).sum();
        for i in 0..d {
            let r: f64 = (0..n).map(|j| (logits[j] - m).exp() / z * v[j * stride + d + i].to_f64()).sum();
            assert!((out[i] as f64 - r).abs() < 2e-3, "{i}: {} vs {r}", out[i]);
        }
    }
}
