//! The exponentiation step of softmax.

/// `x[i] = exp(x[i] - max)` in place; returns the sum, accumulated in f64 (the reference).
pub fn softmax_exp_scalar(x: &mut [f32], max: f32) -> f64 {
    let mut sum = 0.0f64;
    for v in x.iter_mut() {
        let e = (*v - max).exp();
        sum += e as f64;
        *v = e;
    }
    sum
}
