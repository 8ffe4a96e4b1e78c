//! Rotary position embeddings: normal (adjacent pairs) and NeoX (split halves) orders,
//! frequency base, linear scaling, per-dimension frequency factors (Llama 3 scaling) and YaRN.
//!
//! Angles are built the way ggml builds its cache (`ggml_rope_cache_init` and `rope_yarn` in
//! ggml-cpu's ops.cpp): `theta_i = pos * base^(-2i/n_dims)` with `base^(-2/n_dims)` computed once
//! and multiplied in step by step in f32, divided by the frequency factor when one is given, then
//! scaled by `freq_scale`; with YaRN (`ext_factor != 0`) the scaled and unscaled angles are mixed
//! by a ramp between the correction dims and cos/sin get the magnitude factor
//! `attn_factor * (1 + 0.1 ln(1/freq_scale))`. Without YaRN cos/sin are multiplied by
//! `attn_factor` (1 unless the model says otherwise), which leaves them bit-identical.

use std::f32::consts::PI;

/// How rotation pairs are laid out in a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeOrder {
    /// Pairs (2i, 2i+1): llama.cpp's LLAMA_ROPE_TYPE_NORM.
    Normal,
    /// Pairs (i, i + n_dims/2): LLAMA_ROPE_TYPE_NEOX.
    Neox,
}

/// What a GGUF says about YaRN scaling, before llama.cpp derives the RoPE values from it.
#[derive(Clone, Copy, Debug)]
pub struct YarnParams {
    /// `rope.scaling.original_context_length` (else the training context).
    pub n_ctx_orig: u32,
    /// llama.cpp's defaults are 32 and 1 (its generic loader does not read the GGUF's
    /// `rope.scaling.yarn_beta_*` keys).
    pub beta_fast: f32,
    pub beta_slow: f32,
    /// `rope.scaling.yarn_log_multiplier` as llama.cpp holds it (`mscale_all_dim`; 0 if absent).
    pub log_mul: f32,
    /// The `mscale` llama.cpp pairs with `log_mul` (1, or `log_mul` for DeepSeek-V2).
    pub mscale: f32,
}

impl Default for YarnParams {
    fn default() -> Self {
        YarnParams {
            n_ctx_orig: 0,
            beta_fast: 32.0,
            beta_slow: 1.0,
            log_mul: 0.0,
            mscale: 1.0,
        }
    }
}

/// RoPE configuration of a model (or of one layer, when layers differ in frequency base).
#[derive(Clone, Debug)]
pub struct RopeConfig {
    /// Rotated dimensions per head (may be less than the head size).
    pub n_dims: usize,
    pub freq_base: f32,
    /// 1 / scaling factor (linear or YaRN).
    pub freq_scale: f32,
    pub order: RopeOrder,
    /// Per-pair divisors of the angle (`rope_freqs.weight`), length n_dims / 2.
    pub freq_factors: Option<Vec<f32>>,
    /// YaRN extrapolation mix (ggml's `ext_factor`): 0 turns YaRN off, 1 with YaRN scaling.
    pub ext_factor: f32,
    /// Magnitude factor of cos/sin (ggml's `attn_factor`, llama.cpp's `cparams.yarn_attn_factor`).
    pub attn_factor: f32,
    /// YaRN's original context (ggml's `n_ctx_orig`) and ramp betas, kept so `with_freq_base`
    /// can recompute `corr_dims`.
    pub n_ctx_orig: u32,
    pub beta_fast: f32,
    pub beta_slow: f32,
    /// Dims where the ramp from extrapolation to interpolation starts and ends
    /// (`ggml_rope_yarn_corr_dims`).
    pub corr_dims: [f32; 2],
}

/// `ggml_rope_yarn_corr_dim`: the dim whose wavelength fits `n_rot` turns in `n_ctx_orig`.
fn corr_dim(n_dims: usize, n_ctx_orig: u32, n_rot: f32, base: f32) -> f32 {
    n_dims as f32 * (n_ctx_orig as f32 / (n_rot * 2.0 * PI)).ln() / (2.0 * base.ln())
}

/// `ggml_rope_yarn_corr_dims`.
pub fn yarn_corr_dims(
    n_dims: usize,
    n_ctx_orig: u32,
    freq_base: f32,
    beta_fast: f32,
    beta_slow: f32,
) -> [f32; 2] {
    let start = corr_dim(n_dims, n_ctx_orig, beta_fast, freq_base).floor();
    let end = corr_dim(n_dims, n_ctx_orig, beta_slow, freq_base).ceil();
    [start.max(0.0), end.min(n_dims as f32 - 1.0)]
}

/// `rope_yarn_ramp`: 1 below the low dim (extrapolate), 0 above the high one (interpolate).
fn yarn_ramp(low: f32, high: f32, i: usize) -> f32 {
    let y = (i as f32 - low) / (high - low).max(0.001);
    1.0 - y.clamp(0.0, 1.0)
}

/// llama.cpp's `cparams.yarn_attn_factor` for YaRN with `freq_scale` (llama_context's
/// constructor, compiled without FMA): `get_mscale(factor, mscale) / get_mscale(factor, log_mul)`
/// when a log multiplier is given, else `get_mscale(factor, 1)`, then divided by
/// `1 + 0.1 ln(factor)` to cancel the factor ggml's `rope_yarn` multiplies in again.
/// The GGUF's `rope.scaling.attn_factor` multiplies the result (not included here).
pub fn yarn_attn_factor(freq_scale: f32, y: &YarnParams) -> f32 {
    let get_mscale = |scale: f32, mscale: f32| -> f32 {
        if scale <= 1.0 {
            1.0
        } else {
            0.1 * mscale * scale.ln() + 1.0
        }
    };
    let factor = 1.0 / freq_scale;
    let mut a = if y.log_mul != 0.0 {
        get_mscale(factor, y.mscale) / get_mscale(factor, y.log_mul)
    } else {
        get_mscale(factor, 1.0)
    };
    a *= 1.0 / (1.0 + 0.1 * factor.ln());
    a
}

impl RopeConfig {
    /// Plain RoPE (no YaRN): `freq_scale` 1 or the linear scaling's 1/factor.
    pub fn new(n_dims: usize, freq_base: f32, freq_scale: f32, order: RopeOrder) -> RopeConfig {
        RopeConfig {
            n_dims,
            freq_base,
            freq_scale,
            order,
            freq_factors: None,
            ext_factor: 0.0,
            attn_factor: 1.0,
            n_ctx_orig: 0,
            beta_fast: 32.0,
            beta_slow: 1.0,
            corr_dims: [0.0, 0.0],
        }
    }

    /// Turns on YaRN as llama.cpp does for `rope.scaling.type = yarn`: `ext_factor` 1,
    /// `attn_factor` from `yarn_attn_factor` (times whatever `attn_factor` held), corr dims from
    /// the original context and the betas.
    pub fn with_yarn(mut self, y: &YarnParams) -> RopeConfig {
        self.ext_factor = 1.0;
        self.attn_factor *= yarn_attn_factor(self.freq_scale, y);
        self.n_ctx_orig = y.n_ctx_orig;
        self.beta_fast = y.beta_fast;
        self.beta_slow = y.beta_slow;
        self.corr_dims = yarn_corr_dims(
            self.n_dims,
            self.n_ctx_orig,
            self.freq_base,
            self.beta_fast,
            self.beta_slow,
        );
        self
    }

    /// The same configuration with another frequency base (e.g. sliding-window layers); the
    /// YaRN corr dims depend on the base and are recomputed.
    pub fn with_freq_base(mut self, freq_base: f32) -> RopeConfig {
        self.freq_base = freq_base;
        if self.ext_factor != 0.0 {
            self.corr_dims = yarn_corr_dims(
                self.n_dims,
                self.n_ctx_orig,
                freq_base,
                self.beta_fast,
                self.beta_slow,
            );
        }
        self
    }

    /// Fills `cos_sin` ([n_dims/2] pairs of (cos, sin)) for position `pos`.
    ///
    /// `fused` says whether llama.cpp's CPU backend (compiled with FMA) contracts `rope_yarn`'s
    /// `a*b + c*d` sums; it only matters with YaRN.
    pub fn angles(&self, pos: u32, cos_sin: &mut [(f32, f32)], fused: bool) {
        let theta_scale = self.freq_base.powf(-2.0 / self.n_dims as f32);
        let mut theta = pos as f32;
        for (i, cs) in cos_sin.iter_mut().enumerate().take(self.n_dims / 2) {
            let ff = self
                .freq_factors
                .as_ref()
                .and_then(|f| f.get(i).copied())
                .unwrap_or(1.0);
            let theta_extrap = theta / ff;
            let theta_interp = self.freq_scale * theta_extrap;
            let (t, mscale) = if self.ext_factor != 0.0 {
                let [low, high] = self.corr_dims;
                let mix = yarn_ramp(low, high, i) * self.ext_factor;
                let l = (1.0 / self.freq_scale).ln();
                if fused {
                    (
                        theta_interp.mul_add(1.0 - mix, theta_extrap * mix),
                        self.attn_factor * 0.1f32.mul_add(l, 1.0),
                    )
                } else {
                    (
                        theta_interp * (1.0 - mix) + theta_extrap * mix,
                        self.attn_factor * (1.0 + 0.1 * l),
                    )
                }
            } else {
                (theta_interp, self.attn_factor)
            };
            *cs = (t.cos() * mscale, t.sin() * mscale);
            theta *= theta_scale;
        }
    }

    /// Rotates every head of `x` ([n_heads, head_dim]) in place with precomputed angles.
    ///
    /// With `fused`, the rotation uses fused multiply-adds exactly where a C compiler contracts
    /// `x0*c - x1*s` and `x0*s + x1*c` on FMA hardware (as llama.cpp's native x86 builds do):
    /// `fma(x0, c, -(x1*s))` and `fma(x0, s, x1*c)`. Without, plain products and sums.
    pub fn apply(&self, x: &mut [f32], head_dim: usize, cos_sin: &[(f32, f32)], fused: bool) {
        #[cfg(target_arch = "x86_64")]
        if fused && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: FMA was detected just above.
            unsafe { self.apply_fma(x, head_dim, cos_sin) };
            return;
        }
        self.rotate(x, head_dim, cos_sin, fused);
    }

    /// `apply` with `fused`, compiled for FMA: outside such a function `f32::mul_add` is a call
    /// to libm's `fmaf` per product (the same bits, but a wide decode step spent 1.7 % of its
    /// time in those calls).
    ///
    /// # Safety
    /// The CPU has FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "fma")]
    unsafe fn apply_fma(&self, x: &mut [f32], head_dim: usize, cos_sin: &[(f32, f32)]) {
        self.rotate(x, head_dim, cos_sin, true);
    }

    #[inline(always)]
    fn rotate(&self, x: &mut [f32], head_dim: usize, cos_sin: &[(f32, f32)], fused: bool) {
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

    /// The fused rotation (the FMA-compiled path where the CPU has FMA) is exactly
    /// `fma(x0, c, -(x1*s))` and `fma(x0, s, x1*c)`, bit for bit.
    #[test]
    fn fused_rotation_is_exactly_the_two_fmas() {
        let cfg = RopeConfig::new(64, 10000.0, 1.0, RopeOrder::Neox);
        let x: Vec<f32> = (0..128)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.173)
            .collect();
        for pos in [1u32, 7, 999] {
            let mut cs = vec![(0.0, 0.0); 32];
            cfg.angles(pos, &mut cs, true);
            let mut y = x.clone();
            cfg.apply(&mut y, 64, &cs, true);
            for head in 0..2 {
                for (i, &(c, s)) in cs.iter().enumerate() {
                    let (a, b) = (64 * head + i, 64 * head + i + 32);
                    let (x0, x1) = (x[a], x[b]);
                    assert_eq!(y[a].to_bits(), x0.mul_add(c, -(x1 * s)).to_bits());
                    assert_eq!(y[b].to_bits(), x0.mul_add(s, x1 * c).to_bits());
                }
            }
        }
    }

    #[test]
    fn matches_f64_for_both_orders() {
        for order in [RopeOrder::Normal, RopeOrder::Neox] {
            for ff in [None, Some((0..8).map(|i| 1.0 + i as f32).collect())] {
                let mut cfg = RopeConfig::new(16, 10000.0, 0.5, order);
                cfg.freq_factors = ff;
                let x: Vec<f32> = (0..16).map(|i| (i as f32 - 7.5) * 0.3).collect();
                for pos in [0u32, 1, 17, 300] {
                    let mut cs = vec![(0.0, 0.0); 8];
                    cfg.angles(pos, &mut cs, false);
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

    #[test]
    fn without_yarn_the_angles_are_the_plain_ones_bit_for_bit() {
        // The formula before YaRN existed: freq_scale * (theta / ff), no magnitude factor.
        let mut cfg = RopeConfig::new(16, 1e6, 0.25, RopeOrder::Neox);
        cfg.freq_factors = Some((0..8).map(|i| 1.0 + i as f32 * 0.5).collect());
        for pos in [0u32, 3, 1000, 40000] {
            let theta_scale = cfg.freq_base.powf(-2.0 / 16.0);
            let mut theta = pos as f32;
            let mut cs = vec![(0.0, 0.0); 8];
            for fused in [false, true] {
                cfg.angles(pos, &mut cs, fused);
                for (i, &(c, s)) in cs.iter().enumerate() {
                    let ff = cfg.freq_factors.as_ref().expect("factors")[i];
                    let t = cfg.freq_scale * (theta / ff);
                    assert_eq!(
                        (c.to_bits(), s.to_bits()),
                        (t.cos().to_bits(), t.sin().to_bits())
                    );
                    theta *= theta_scale;
                }
                theta = pos as f32;
            }
        }
    }

    /// ggml-cpu's `rope_yarn` + `ggml_rope_cache_init` and ggml.c's corr dims, transcribed
    /// statement by statement (with the contractions GCC makes when FMA is available).
    mod ggml {
        pub fn corr_dim(n_dims: i32, n_ctx_orig: i32, n_rot: f32, base: f32) -> f32 {
            n_dims as f32 * (n_ctx_orig as f32 / (n_rot * 2.0 * std::f32::consts::PI)).ln()
                / (2.0 * base.ln())
        }

        pub fn corr_dims(n_dims: i32, n_ctx_orig: i32, base: f32, bf: f32, bs: f32) -> [f32; 2] {
            let start = corr_dim(n_dims, n_ctx_orig, bf, base).floor();
            let end = corr_dim(n_dims, n_ctx_orig, bs, base).ceil();
            let d0 = if 0.0 > start { 0.0 } else { start };
            let d1 = if ((n_dims - 1) as f32) < end {
                (n_dims - 1) as f32
            } else {
                end
            };
            [d0, d1]
        }

        fn ramp(low: f32, high: f32, i0: i32) -> f32 {
            let d = high - low;
            let y = ((i0 / 2) as f32 - low) / if 0.001 > d { 0.001 } else { d };
            let m = if 0.0 > y { 0.0 } else { y };
            1.0 - if 1.0 < m { 1.0 } else { m }
        }

        #[allow(clippy::too_many_arguments)]
        fn rope_yarn(
            theta_extrap: f32,
            freq_scale: f32,
            corr: [f32; 2],
            i0: i32,
            ext_factor: f32,
            mut mscale: f32,
            fma: bool,
        ) -> (f32, f32) {
            let theta_interp = freq_scale * theta_extrap;
            let mut theta = theta_interp;
            if ext_factor != 0.0 {
                let ramp_mix = ramp(corr[0], corr[1], i0) * ext_factor;
                theta = if fma {
                    theta_interp.mul_add(1.0 - ramp_mix, theta_extrap * ramp_mix)
                } else {
                    theta_interp * (1.0 - ramp_mix) + theta_extrap * ramp_mix
                };
                let l = (1.0 / freq_scale).ln();
                mscale *= if fma {
                    0.1f32.mul_add(l, 1.0)
                } else {
                    1.0 + 0.1 * l
                };
            }
            (theta.cos() * mscale, theta.sin() * mscale)
        }

        #[allow(clippy::too_many_arguments)]
        pub fn cache(
            p: i64,
            freq_base: f32,
            n_dims: i32,
            freq_scale: f32,
            corr: [f32; 2],
            ext_factor: f32,
            mscale: f32,
            fma: bool,
        ) -> Vec<(f32, f32)> {
            let theta_scale = freq_base.powf(-2.0 / n_dims as f32);
            let mut theta = p as f32;
            let mut out = Vec::new();
            let mut i0 = 0;
            while i0 < n_dims {
                out.push(rope_yarn(
                    theta, freq_scale, corr, i0, ext_factor, mscale, fma,
                ));
                theta *= theta_scale;
                i0 += 2;
            }
            out
        }

        /// llama_context's derivation of `yarn_attn_factor` for YaRN without a log multiplier.
        pub fn attn_factor(freq_scale: f32, rope_attn_factor: f32) -> f32 {
            let factor = 1.0 / freq_scale;
            let mut a = if factor <= 1.0 {
                1.0
            } else {
                0.1 * 1.0 * factor.ln() + 1.0
            };
            a *= 1.0 / (1.0 + 0.1 * factor.ln());
            a * rope_attn_factor
        }
    }

    #[test]
    fn yarn_matches_ggml_bit_for_bit() {
        // gpt-oss's shape (64 dims, base 150000, factor 32, 4096 original positions) and a
        // small-head variant whose ramp covers a few dims.
        for (n_dims, base, factor, orig) in [
            (64usize, 150000.0f32, 32.0f32, 4096u32),
            (16, 150000.0, 32.0, 4096),
            (128, 10000.0, 4.0, 8192),
        ] {
            let y = YarnParams {
                n_ctx_orig: orig,
                ..YarnParams::default()
            };
            let cfg = RopeConfig::new(n_dims, base, 1.0 / factor, RopeOrder::Neox).with_yarn(&y);
            let corr = ggml::corr_dims(n_dims as i32, orig as i32, base, 32.0, 1.0);
            assert_eq!(cfg.corr_dims, corr);
            assert_eq!(cfg.ext_factor, 1.0);
            assert_eq!(
                cfg.attn_factor.to_bits(),
                ggml::attn_factor(1.0 / factor, 1.0).to_bits()
            );
            let mut cs = vec![(0.0, 0.0); n_dims / 2];
            for pos in [0u32, 1, 7, 100, 5000, 100000] {
                for fused in [false, true] {
                    cfg.angles(pos, &mut cs, fused);
                    let want = ggml::cache(
                        pos as i64,
                        base,
                        n_dims as i32,
                        1.0 / factor,
                        corr,
                        1.0,
                        cfg.attn_factor,
                        fused,
                    );
                    for (i, (g, w)) in cs.iter().zip(&want).enumerate() {
                        assert_eq!(
                            (g.0.to_bits(), g.1.to_bits()),
                            (w.0.to_bits(), w.1.to_bits()),
                            "dims {n_dims} pos {pos} fused {fused} pair {i}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn yarn_matches_the_f64_definition() {
        // YaRN by its definition (jquesnelle/yarn): per-dim frequencies mixed between the
        // interpolated and the original ones by a linear ramp over [low, high], and cos/sin
        // scaled by attn_factor * (1 + 0.1 ln(factor)).
        let (n_dims, base, factor, orig) = (64usize, 150000.0f64, 32.0f64, 4096.0f64);
        let y = YarnParams {
            n_ctx_orig: orig as u32,
            ..YarnParams::default()
        };
        let cfg = RopeConfig::new(n_dims, base as f32, (1.0 / factor) as f32, RopeOrder::Neox)
            .with_yarn(&y);
        let dim = |rot: f64| {
            n_dims as f64 * (orig / (rot * 2.0 * std::f64::consts::PI)).ln() / (2.0 * base.ln())
        };
        let (low, high) = (
            dim(32.0).floor().max(0.0),
            dim(1.0).ceil().min(n_dims as f64 - 1.0),
        );
        assert_eq!((low, high), (8.0, 18.0));
        let mscale = cfg.attn_factor as f64 * (1.0 + 0.1 * factor.ln());
        let mut cs = vec![(0.0, 0.0); n_dims / 2];
        for pos in [1u32, 33, 4000] {
            cfg.angles(pos, &mut cs, true);
            for (i, &(c, s)) in cs.iter().enumerate() {
                let f = base.powf(-2.0 * i as f64 / n_dims as f64);
                let r = 1.0 - ((i as f64 - low) / (high - low)).clamp(0.0, 1.0);
                let freq = f / factor * (1.0 - r) + f * r;
                let t = pos as f64 * freq;
                let tol = 1e-5 * (1.0 + t.abs());
                assert!(
                    (c as f64 - t.cos() * mscale).abs() < tol,
                    "pos {pos} pair {i}"
                );
                assert!(
                    (s as f64 - t.sin() * mscale).abs() < tol,
                    "pos {pos} pair {i}"
                );
            }
        }
        // The magnitude llama.cpp ends up with is HF's YaRN attention factor 1 + 0.1 ln(factor)
        // (its attn_factor cancels the factor ggml multiplies in).
        assert!((mscale - (1.0 + 0.1 * factor.ln())).abs() < 1e-6);
    }
}
