//! AVX2 twin of `crate::gemm_float`: register tiles of three weight rows × four tokens.
//!
//! Why this shape: with sixteen ymm registers, twelve hold accumulators (one 8-lane vector per
//! (row, token)), three the current weight vectors (converted to f32 once, then used by four
//! tokens) and one the current token vector (used by three rows). Each accumulator lane is
//! exactly lane `l` of the scalar twin's order, and the lanes are reduced by the scalar twin's
//! own tree, so any tile shape (remainders use 1-row and 1..3-token tiles) gives the same bits.

use std::arch::x86_64::*;

use owl_quant::GgmlType;

use crate::gemm_float::{reduce8, tail, KIND_BF16, KIND_F16, KIND_F32, LANES};
use crate::Kernels;

pub(super) fn register(k: &mut Kernels) {
    k.set_gemm_float(
        GgmlType::F16,
        gemm::<KIND_F16>,
        "f16 weights·f32 gemm 3x4/avx2",
    );
    k.set_gemm_float(
        GgmlType::BF16,
        gemm::<KIND_BF16>,
        "bf16 weights·f32 gemm 3x4/avx2",
    );
    k.set_gemm_float(
        GgmlType::F32,
        gemm::<KIND_F32>,
        "f32 weights·f32 gemm 3x4/avx2",
    );
}

const MR: usize = 3;
const NT: usize = 4;

const fn elem_bytes(kind: u8) -> usize {
    if kind == KIND_F32 {
        4
    } else {
        2
    }
}

fn gemm<const KIND: u8>(cols: usize, w: &[u8], x: &[f32], out: &mut [f32]) {
    let rb = cols * elem_bytes(KIND);
    let (nr, nt) = (w.len() / rb.max(1), x.len() / cols.max(1));
    assert!(out.len() >= nr * nt, "gemm_float: short output");
    let mut r = 0;
    while r < nr {
        let mr = if nr - r >= MR { MR } else { 1 };
        let wr = &w[r * rb..(r + mr) * rb];
        let mut t = 0;
        while t < nt {
            let n = (nt - t).min(NT);
            let xt = &x[t * cols..(t + n) * cols];
            // SAFETY: registered only after AVX2/FMA/F16C were detected; `wr` holds `mr` rows
            // and `xt` `n` tokens of `cols` elements, as each tile reads.
            let v = unsafe {
                match (mr, n) {
                    (MR, 4) => tile::<KIND, MR, 4>(cols, wr, xt),
                    (MR, 3) => tile::<KIND, MR, 3>(cols, wr, xt),
                    (MR, 2) => tile::<KIND, MR, 2>(cols, wr, xt),
                    (MR, _) => tile::<KIND, MR, 1>(cols, wr, xt),
                    (_, 4) => tile::<KIND, 1, 4>(cols, wr, xt),
                    (_, 3) => tile::<KIND, 1, 3>(cols, wr, xt),
                    (_, 2) => tile::<KIND, 1, 2>(cols, wr, xt),
                    _ => tile::<KIND, 1, 1>(cols, wr, xt),
                }
            };
            for (i, row) in v.iter().enumerate().take(mr) {
                for (j, &s) in row.iter().enumerate().take(n) {
                    out[(t + j) * nr + r + i] = s;
                }
            }
            t += n;
        }
        r += mr;
    }
}

/// Eight weights of row `p` as f32 (exact).
///
/// # Safety
/// AVX2/F16C present; `p` points to eight readable elements.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn load<const KIND: u8>(p: *const u8) -> __m256 {
    // SAFETY: the caller guarantees the features and eight readable elements at `p`.
    unsafe {
        match KIND {
            KIND_F16 => _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)),
            KIND_BF16 => _mm256_castsi256_ps(_mm256_slli_epi32(
                _mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i)),
                16,
            )),
            _ => _mm256_loadu_ps(p as *const f32),
        }
    }
}

/// `R` rows of `w` × `T` tokens of `x`: `out[r][t]` (only `[..R][..T]` is written).
///
/// # Safety
/// AVX2/FMA/F16C present; `w` holds `R` rows and `x` `T` tokens of `cols` elements.
// Index loops: (row, token) pairs of register arrays read clearer as `acc[r][t]`.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile<const KIND: u8, const R: usize, const T: usize>(
    cols: usize,
    w: &[u8],
    x: &[f32],
) -> [[f32; NT]; MR] {
    let rb = cols * elem_bytes(KIND);
    let (pw, px) = (w.as_ptr(), x.as_ptr());
    let mut acc = [[_mm256_setzero_ps(); T]; R];
    for i in 0..cols / LANES {
        let k = i * LANES;
        let mut wv = [_mm256_setzero_ps(); R];
        for (r, v) in wv.iter_mut().enumerate() {
            // SAFETY: row r < R of `w` has `cols` elements; k + 8 <= cols.
            *v = unsafe { load::<KIND>(pw.add(r * rb + k * elem_bytes(KIND))) };
        }
        for t in 0..T {
            // SAFETY: token t < T of `x` has `cols` elements; k + 8 <= cols.
            let xv = unsafe { _mm256_loadu_ps(px.add(t * cols + k)) };
            for r in 0..R {
                acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
            }
        }
    }
    let mut out = [[0f32; NT]; MR];
    for r in 0..R {
        for t in 0..T {
            let mut lanes = [0f32; LANES];
            // SAFETY: `lanes` holds eight f32.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc[r][t]) };
            out[r][t] = tail::<KIND>(
                cols,
                &w[r * rb..(r + 1) * rb],
                &x[t * cols..(t + 1) * cols],
                reduce8(lanes),
            );
        }
    }
    out
}
