//! RMSNorm, in the same float order as ggml (sum of squares in f64, scale in f32, then the
//! weight multiplied as a separate step) so results match llama.cpp to the last bit where possible.

/// `out[i] = (x[i] * (1 / sqrt(mean(x^2) + eps))) * weight[i]`.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let n = x.len();
    let mut sum = 0.0f64;
    for &v in x {
        sum += (v * v) as f64;
    }
    let mean = (sum / n as f64) as f32;
    let scale = 1.0f32 / (mean + eps).sqrt();
    for ((o, &v), &w) in out.iter_mut().zip(x).zip(weight) {
        *o = (v * scale) * w;
    }
}

/// `rms_norm` in place, for short rows such as one attention head (Qwen3's Q/K norms).
pub fn rms_norm_in_place(x: &mut [f32], weight: &[f32], eps: f32) {
    let n = x.len();
    let mut sum = 0.0f64;
    for &v in x.iter() {
        sum += (v * v) as f64;
    }
    let mean = (sum / n as f64) as f32;
    let scale = 1.0f32 / (mean + eps).sqrt();
    for (v, &w) in x.iter_mut().zip(weight) {
        *v = (*v * scale) * w;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_f64_reference() {
        let x: Vec<f32> = (0..97)
            .map(|i| ((i * 37 % 19) as f32 - 9.0) * 0.37)
            .collect();
        let w: Vec<f32> = (0..97).map(|i| 0.5 + (i % 7) as f32 * 0.1).collect();
        let mut out = vec![0.0; 97];
        rms_norm(&x, &w, 1e-5, &mut out);
        let ms: f64 = x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / 97.0;
        for i in 0..97 {
            let r = x[i] as f64 / (ms + 1e-5).sqrt() * w[i] as f64;
            assert!((out[i] as f64 - r).abs() < 1e-5 * (1.0 + r.abs()), "{i}");
        }
        let mut y = x.clone();
        rms_norm_in_place(&mut y, &w, 1e-5);
        assert_eq!(y, out, "in place gives the same bits");
    }
}
