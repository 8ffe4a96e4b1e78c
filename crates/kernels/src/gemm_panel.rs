//! f32 GEMM against a panel-packed right-hand side: `C[m, n] (+)= A[m, k] · B[k, n]`, with B
//! stored as panels of [`PANEL`] columns (`panel[kk * PANEL + j] = B[kk, p·PANEL + j]`).
//!
//! Why another GEMM next to `gemm_float`: that one multiplies weight *rows* by token rows
//! (each output a dot product reduced across lanes), which suits inference, where the weight is
//! stored by rows. Training also needs `dx = dy · W`, a product along W's *columns*, and both
//! directions are cheaper as an outer-product kernel: a register tile of 6 rows of A × 16
//! columns of B keeps twelve accumulators, and each step of `k` costs two loads of B, six
//! broadcasts of A and twelve fused multiply-adds — no lane reductions at all. Training
//! dequantizes its frozen weights tile by tile anyway, so it writes them straight into panels:
//! the layout costs nothing.
//!
//! Summation order (what every ISA must reproduce): each `C[t, j]` is one chain of fused
//! multiply-adds over `kk = 0, 1, …, k-1`, starting from `C[t, j]` itself when accumulating,
//! else from zero. A SIMD lane holds exactly one `(t, j)`, so an ISA's result equals the scalar
//! twin's bit for bit, whatever the tile shapes, and never depends on the thread count.

/// Columns of B per panel.
pub const PANEL: usize = 16;

/// `C[t, p·PANEL + j] (+)= Σ_kk A[t, kk] · panels[p][kk, j]` for `t < m`, every panel `p`, and
/// the first `n` columns (`n` may end inside the last panel, whose extra columns are not
/// written). `a` is [m, lda] (first `k` used), `c` is [m, ldc].
pub type GemmPanelFn = fn(
    k: usize,
    m: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    panels: &[f32],
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
);

/// Packs `n` columns of the row-major `src` ([k, ld], columns `c0..c0+n`) into panels
/// (`dst` gets `n.div_ceil(PANEL) · k · PANEL` values; columns past `n` are zero).
pub fn pack_columns(src: &[f32], ld: usize, k: usize, c0: usize, n: usize, dst: &mut Vec<f32>) {
    let np = n.div_ceil(PANEL);
    dst.clear();
    dst.resize(np * k * PANEL, 0.0);
    for p in 0..np {
        let w = PANEL.min(n - p * PANEL);
        let panel = &mut dst[p * k * PANEL..(p + 1) * k * PANEL];
        for kk in 0..k {
            let s = &src[kk * ld + c0 + p * PANEL..][..w];
            panel[kk * PANEL..kk * PANEL + w].copy_from_slice(s);
        }
    }
}

/// The scalar twin.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_panel_scalar(
    k: usize,
    m: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    panels: &[f32],
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    for p in 0..n.div_ceil(PANEL) {
        let panel = &panels[p * k * PANEL..(p + 1) * k * PANEL];
        let w = PANEL.min(n - p * PANEL);
        for t in 0..m {
            let ar = &a[t * lda..t * lda + k];
            for j in 0..w {
                let out = &mut c[t * ldc + p * PANEL + j];
                let mut acc = if accumulate { *out } else { 0.0 };
                for (kk, &av) in ar.iter().enumerate() {
                    acc = av.mul_add(panel[kk * PANEL + j], acc);
                }
                *out = acc;
            }
        }
    }
}

pub(crate) fn register_scalar(k: &mut crate::Kernels) {
    k.set_gemm_panel(gemm_panel_scalar, "scalar");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Isa;
    use crate::Kernels;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// Every ISA equals the scalar twin bit for bit, for row counts that leave partial
    /// register tiles, column counts that end inside a panel, both modes, and a result row
    /// does not depend on the rows computed with it.
    #[test]
    fn every_isa_equals_scalar() {
        let mut seed = 11u64;
        for &(k, m, n) in &[
            (1usize, 1usize, 1usize),
            (7, 5, 16),
            (64, 13, 40),
            (130, 6, 33),
            (33, 19, 48),
        ] {
            let ld = n + 3;
            let b: Vec<f32> = (0..k * ld).map(|_| lcg(&mut seed)).collect();
            let mut panels = Vec::new();
            pack_columns(&b, ld, k, 2, n, &mut panels);
            let lda = k + 2;
            let a: Vec<f32> = (0..m * lda).map(|_| lcg(&mut seed)).collect();
            let ldc = n + 5;
            let c0: Vec<f32> = (0..m * ldc).map(|_| lcg(&mut seed)).collect();
            for accumulate in [false, true] {
                let mut want = c0.clone();
                gemm_panel_scalar(k, m, n, &a, lda, &panels, &mut want, ldc, accumulate);
                // Against the definition (f64), loosely; the columns past n untouched.
                for t in 0..m {
                    for j in 0..ldc {
                        if j >= n {
                            assert_eq!(want[t * ldc + j], c0[t * ldc + j]);
                            continue;
                        }
                        let base = if accumulate {
                            c0[t * ldc + j] as f64
                        } else {
                            0.0
                        };
                        let d: f64 = base
                            + (0..k)
                                .map(|kk| a[t * lda + kk] as f64 * b[kk * ld + 2 + j] as f64)
                                .sum::<f64>();
                        assert!((d - want[t * ldc + j] as f64).abs() < 1e-4);
                    }
                }
                // One row alone gives the same bits.
                for t in 0..m {
                    let mut one = c0[t * ldc..(t + 1) * ldc].to_vec();
                    gemm_panel_scalar(
                        k,
                        1,
                        n,
                        &a[t * lda..],
                        lda,
                        &panels,
                        &mut one,
                        ldc,
                        accumulate,
                    );
                    assert_eq!(one, want[t * ldc..(t + 1) * ldc].to_vec());
                }
                for isa in Isa::available() {
                    let kern = Kernels::for_isa(isa);
                    let mut got = c0.clone();
                    (kern.gemm_panel())(k, m, n, &a, lda, &panels, &mut got, ldc, accumulate);
                    for (i, (x, y)) in got.iter().zip(&want).enumerate() {
                        assert_eq!(
                            x.to_bits(),
                            y.to_bits(),
                            "{} k{k} m{m} n{n} acc {accumulate} at {i}",
                            isa.name()
                        );
                    }
                }
            }
        }
    }
}
