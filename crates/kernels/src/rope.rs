//! Rotary position embeddings: normal (adjacent pairs) and NeoX (split halves) orders,
//! frequency base, linear scaling and per-dimension frequency factors (Llama 3 scaling).
//!
//! Angles are built the way ggml builds its cache: `theta_i = pos * freq_scale * base^(-2i/n_dims)`,
//! with `base^(-2/n_dims)` computed once and multiplied in step by step in f32, then divided by the
//! frequency factor when one is given.

/// How rotation pairs are laid out in a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeOrder {
    /// Pairs (2i, 2i+1): llama.cpp's LLAMA_ROPE_TYPE_NORM.
    Normal,
    /// Pairs (i, i + n_dims/2): LLAMA_ROPE_TYPE_NEOX.
    Neox,
}

/// RoPE configuration of a model.
#[derive(Clone, Debug)]
pub struct RopeConfig {
    /// Rotated dimensions per head (may be less than the head size).
    pub n_dims: usize,
    pub freq_base: f32,
    /// 1 / linear scaling factor.
    pub freq_scale: f32,
    pub order: RopeOrder,
    /// Per-pair divisors of the angle (`rope_freqs.weight`), length n_dims / 2.
    pub freq_factors: Option<Vec<f32>>,
}

impl RopeConfig {
    /// Fills `cos_sin` ([n_dims/2] pairs of (cos, sin)) for position `pos`.
    pub fn angles(&self, pos: u32, cos_sin: &mut [(f32, f32)]) {
        let theta_scale = self.freq_base.powf(-2.0 / self.n_dims as f32);
        let mut theta = pos as f32;
        for (i, cs) in cos_sin.iter_mut().enumerate().take(self.n_dims / 2) {
            let ff = self
                .freq_factors
                .as_ref()
                .and_then(|f| f.get(i).copied())
                .unwrap_or(1.0);
            let t = self.freq_scale * (theta / ff);
            *cs = (t.cos(), t.sin());
            theta *= theta_scale;
        }
    }

    /// Rotates every head of `x` ([n_heads, head_dim]) in place with precomputed angles.
    ///
    /// With `fused`, the rotation uses fused multiply-adds exactly where a C compiler contracts
    /// `x0*c - x1*s` and `x0*s + x1*c` on FMA hardware (as llama.cpp's native x86 builds do):
    /// `fma(x0, c, -(x1*s))` and `fma(x0, s, x1*c)`. Without, plain products and sums.
    pub fn apply(&self, x: &mut [f32], head_dim: usize, cos_sin: &[(f32, f32)], fused: bool) {
        let half = self.n_dims / 2;
        for head in x.chunks_exact_mut(head_dim) {
            for (i, &(c, s)) in cos_sin.iter().enumerate().take(half) {
                let (a, b) = match self.order {
                    RopeOrder::Normal => (2 * i, 2 * i + 1),
                    RopeOrder::Neox => (i, i + half),
                };
                let x0 = head[a];
                let x1 = head[b];
                if fused {
                    head[a] = x0.mul_add(c, -(x1 * s));
                    head[b] = x0.mul_add(s, x1 * c);
                } else {
                    head[a] = x0 * c - x1 * s;
                    head[b] = x0 * s + x1 * c;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], pos: u32, cfg: &RopeConfig) -> Vec<f64> {
        let mut out: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let half = cfg.n_dims / 2;
        for i in 0..half {
            let ff = cfg
                .freq_factors
                .as_ref()
                .map(|f| f[i] as f64)
                .unwrap_or(1.0);
            let freq = (cfg.freq_base as f64).powf(-2.0 * i as f64 / cfg.n_dims as f64);
            let t = pos as f64 * freq / ff * cfg.freq_scale as f64;
            let (a, b) = match cfg.order {
                RopeOrder::Normal => (2 * i, 2 * i + 1),
                RopeOrder::Neox => (i, i + half),
            };
            let (x0, x1) = (x[a] as f64, x[b] as f64);
            out[a] = x0 * t.cos() - x1 * t.sin();
            out[b] = x0 * t.sin() + x1 * t.cos();
        }
        out
    }

    #[test]
    fn matches_f64_for_both_orders() {
        for order in [RopeOrder::Normal, RopeOrder::Neox] {
            for ff in [None, Some((0..8).map(|i| 1.0 + i as f32).collect())] {
                let cfg = RopeConfig {
                    n_dims: 16,
                    freq_base: 10000.0,
                    freq_scale: 0.5,
                    order,
                    freq_factors: ff,
                };
                let x: Vec<f32> = (0..16).map(|i| (i as f32 - 7.5) * 0.3).collect();
                for pos in [0u32, 1, 17, 300] {
                    let mut cs = vec![(0.0, 0.0); 8];
                    cfg.angles(pos, &mut cs);
                    let r = naive(&x, pos, &cfg);
                    for fused in [false, true] {
                        let mut y = x.clone();
                        cfg.apply(&mut y, 16, &cs, fused);
                        for i in 0..16 {
                            assert!(
                                (y[i] as f64 - r[i]).abs() < 2e-4,
                                "{order:?} pos {pos} i {i}"
                            );
                        }
                    }
                }
            }
        }
    }
}
