//! SwiGLU: `silu(gate) * up`, elementwise.

/// `gate[i] = silu(gate[i]) * up[i]` in place, with the C library's `expf`.
pub fn swiglu_scalar(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        *g = x / (1.0 + (-x).exp()) * u;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn silu_values() {
        let mut g = vec![0.0f32, 1.0, -1.0, 10.0];
        super::swiglu_scalar(&mut g, &[1.0, 2.0, 1.0, 1.0]);
        assert_eq!(g[0], 0.0);
        assert!((g[1] - 2.0 * 0.731_058_6).abs() < 1e-6);
        assert!((g[2] + 0.268_941_43).abs() < 1e-6);
        assert!((g[3] - 9.999_546).abs() < 1e-4);
    }
}
