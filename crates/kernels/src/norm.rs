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

/// `rms_norm` of every `weight.len()`-long row of `x` into `out`, four rows at a time: each
/// row's sum of squares is the same sequential f64 chain as `rms_norm`'s (so the same bits),
/// but four independent chains run side by side. One chain is bound by the latency of an f64
/// add, about four cycles a value: a 16-token decode step spent 3 % of its time there, on one
/// thread.
pub fn rms_norm_rows(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let n = weight.len();
    assert!(n > 0, "rms_norm_rows: empty weight");
    // Whole rows present in both (as a zip of `chunks_exact` takes them).
    let len = x.len().min(out.len()) / n * n;
    let (x, out) = (&x[..len], &mut out[..len]);
    let mut xs = x.chunks_exact(4 * n);
    let mut outs = out.chunks_exact_mut(4 * n);
    for (x4, o4) in (&mut xs).zip(&mut outs) {
        let mut sum = [0.0f64; 4];
        for i in 0..n {
            for (r, s) in sum.iter_mut().enumerate() {
                let v = x4[r * n + i];
                *s += (v * v) as f64;
            }
        }
        for (r, s) in sum.iter().enumerate() {
            let mean = (s / n as f64) as f32;
            let scale = 1.0f32 / (mean + eps).sqrt();
            let (xr, or) = (&x4[r * n..(r + 1) * n], &mut o4[r * n..(r + 1) * n]);
            for ((o, &v), &w) in or.iter_mut().zip(xr).zip(weight) {
                *o = (v * scale) * w;
            }
        }
    }
    for (xr, or) in xs
        .remainder()
        .chunks_exact(n)
        .zip(outs.into_remainder().chunks_exact_mut(n))
    {
        rms_norm(xr, weight, eps, or);
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

    #[test]
    fn rows_four_at_a_time_give_each_rows_bits() {
        let n = 61;
        for rows in [1usize, 3, 4, 5, 9] {
            let x: Vec<f32> = (0..rows * n)
                .map(|i| ((i * 7919 % 1013) as f32 - 506.0) * 10f32.powi((i % 9) as i32 - 4))
                .collect();
            let w: Vec<f32> = (0..n).map(|i| 0.25 + (i % 11) as f32 * 0.3).collect();
            let mut got = vec![0.0; rows * n];
            rms_norm_rows(&x, &w, 1e-6, &mut got);
            for r in 0..rows {
                let mut want = vec![0.0; n];
                rms_norm(&x[r * n..(r + 1) * n], &w, 1e-6, &mut want);
                let same = want
                    .iter()
                    .zip(&got[r * n..(r + 1) * n])
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{rows} rows: row {r}");
            }
        }
    }
}
