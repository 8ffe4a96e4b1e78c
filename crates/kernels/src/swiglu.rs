//! SwiGLU: `silu(gate) * up`, elementwise; and gpt-oss' clamped variant `swiglu_oai`.

/// `gate[i] = silu(gate[i]) * up[i]` in place, with the C library's `expf`.
pub fn swiglu_scalar(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        *g = x / (1.0 + (-x).exp()) * u;
    }
}

/// gpt-oss' activation, ggml's `swiglu_oai` float for float (one scalar loop in ggml too):
/// `x = min(gate, limit)`, `y = clamp(up, -limit, limit)`,
/// `gate = x / (1 + expf(alpha * -x)) * (y + 1)`.
pub fn swiglu_oai(gate: &mut [f32], up: &[f32], alpha: f32, limit: f32) {
    for (g, &u) in gate.iter_mut().zip(up) {
        // std::min and std::clamp, spelled out (no panic whatever `limit` is).
        let x = if limit < *g { limit } else { *g };
        let y = if u < -limit {
            -limit
        } else if limit < u {
            limit
        } else {
            u
        };
        let out_glu = x / (1.0 + (alpha * -x).exp());
        *g = out_glu * (y + 1.0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn swiglu_oai_values() {
        let mut g = vec![0.0f32, 1.0, -2.0, 9.0, 3.0];
        let u = [1.0f32, 0.5, -1.0, 2.0, -10.0];
        super::swiglu_oai(&mut g, &u, 1.702, 7.0);
        let f = |x: f64, y: f64| {
            let x = x.min(7.0);
            let y = y.clamp(-7.0, 7.0);
            x / (1.0 + (-1.702 * x).exp()) * (y + 1.0)
        };
        for (i, (&x, &y)) in [0.0, 1.0, -2.0, 9.0, 3.0].iter().zip(&u).enumerate() {
            let want = f(x, y as f64);
            assert!(
                (g[i] as f64 - want).abs() < 1e-5 * (1.0 + want.abs()),
                "{i}"
            );
        }
        // The gate is clamped from above only, the up input on both sides.
        assert!((g[3] as f64 - f(7.0, 2.0)).abs() < 1e-5);
        assert!((g[4] as f64 - f(3.0, -7.0)).abs() < 1e-5);
    }

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
