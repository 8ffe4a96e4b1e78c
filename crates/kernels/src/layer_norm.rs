//! LayerNorm for encoder models (BERT): `(x - mean) / sqrt(var + eps) * weight + bias`.
//!
//! Decoders normalise with RMSNorm (`norm.rs`); BERT-style encoders use the original LayerNorm
//! with a bias, after each residual add (post-norm). The float order follows ggml's `norm` op on
//! the CPU: the mean from an f64 sum, the variance of the centred row from an f64 sum, the scale
//! `1 / sqrt(var + eps)` in f32, then weight and bias as separate steps (llama.cpp builds them as
//! `ggml_mul` and `ggml_add` after `ggml_norm`). Scalar only: it is a few operations per element
//! against a matrix product per element, so it has no SIMD twin to keep in step.

/// `out = ((x - mean(x)) * (1 / sqrt(var(x) + eps))) * weight + bias` over one row.
pub fn layer_norm(x: &[f32], weight: &[f32], bias: &[f32], eps: f32, out: &mut [f32]) {
    let n = x.len();
    let mut sum = 0.0f64;
    for &v in x {
        sum += v as f64;
    }
    let mean = (sum / n as f64) as f32;
    let mut sq = 0.0f64;
    for (o, &v) in out.iter_mut().zip(x) {
        let c = v - mean;
        *o = c;
        sq += (c * c) as f64;
    }
    let var = (sq / n as f64) as f32;
    let scale = 1.0f32 / (var + eps).sqrt();
    for ((o, &w), &b) in out.iter_mut().zip(weight).zip(bias) {
        *o = (*o * scale) * w + b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_f64_reference() {
        let x: Vec<f32> = (0..97)
            .map(|i| ((i * 37 % 19) as f32 - 7.0) * 0.37)
            .collect();
        let w: Vec<f32> = (0..97).map(|i| 0.5 + (i % 5) as f32 * 0.25).collect();
        let b: Vec<f32> = (0..97).map(|i| (i % 3) as f32 * 0.1 - 0.1).collect();
        let mut out = vec![0.0; 97];
        layer_norm(&x, &w, &b, 1e-12, &mut out);
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        for i in 0..97 {
            let want = (x[i] as f64 - mean) / (var + 1e-12).sqrt() * w[i] as f64 + b[i] as f64;
            assert!(
                (out[i] as f64 - want).abs() < 1e-5,
                "{i}: {} vs {want}",
                out[i]
            );
        }
        // The normalised row (before weight and bias) has mean 0 and variance 1.
        let ones = vec![1.0; 97];
        let zeros = vec![0.0; 97];
        layer_norm(&x, &ones, &zeros, 0.0, &mut out);
        let m = out.iter().map(|&v| v as f64).sum::<f64>() / n;
        let v = out.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n;
        assert!(
            m.abs() < 1e-6 && (v - 1.0).abs() < 1e-5,
            "mean {m}, var {v}"
        );
    }
}
