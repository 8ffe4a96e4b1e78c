//! AVX2 twin of `crate::gemm_panel`: register tiles of 6 rows of A × one 16-column panel.
//!
//! Twelve ymm accumulators (6 rows × two 8-lane halves of the panel), two loads of the panel
//! and six broadcasts of A per step of `k`, twelve FMAs. Lane `j` of an accumulator is one
//! output `C[t, j]` and runs the scalar twin's chain of FMAs over `kk` in order, so the bits
//! are the twin's. Partial tiles (fewer rows, a panel cut short at `n`) go through the same
//! code with the missing rows computed into scratch and the missing columns not stored.

use std::arch::x86_64::*;

use crate::gemm_panel::PANEL;
use crate::Kernels;

pub(super) fn register(k: &mut Kernels) {
    k.set_gemm_panel(gemm, "f32 gemm 6x16 panels/avx2");
}

const MR: usize = 6;

#[allow(clippy::too_many_arguments)]
fn gemm(
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
    assert!(
        panels.len() >= n.div_ceil(PANEL) * k * PANEL,
        "gemm_panel: short panels"
    );
    assert!(
        m == 0 || a.len() >= (m - 1) * lda + k,
        "gemm_panel: short A"
    );
    assert!(
        m == 0 || n == 0 || c.len() >= (m - 1) * ldc + n,
        "gemm_panel: short C"
    );
    for p in 0..n.div_ceil(PANEL) {
        let panel = &panels[p * k * PANEL..(p + 1) * k * PANEL];
        let w = PANEL.min(n - p * PANEL);
        for t0 in (0..m).step_by(MR) {
            let rows = MR.min(m - t0);
            let mut tile = [[0f32; PANEL]; MR];
            for (r, tr) in tile.iter_mut().enumerate().take(rows) {
                if accumulate {
                    tr[..w].copy_from_slice(&c[(t0 + r) * ldc + p * PANEL..][..w]);
                }
            }
            let mut arows = [0usize; MR];
            for (r, ar) in arows.iter_mut().enumerate() {
                // Missing rows repeat the last real one; their results are dropped.
                *ar = (t0 + r.min(rows - 1)) * lda;
            }
            // SAFETY: this module is registered only when AVX2 and FMA were detected
            // (`x86::detect_avx2`); the asserts above keep every index in bounds.
            unsafe { tile6x16(k, a, &arows, panel, &mut tile) };
            for (r, tr) in tile.iter().enumerate().take(rows) {
                c[(t0 + r) * ldc + p * PANEL..][..w].copy_from_slice(&tr[..w]);
            }
        }
    }
}

/// `tile[r][j] = fma chain over kk of a[arows[r] + kk] · panel[kk·16 + j]`, starting from the
/// tile's values.
///
/// # Safety
/// AVX2 and FMA must be available; `a[arows[r] + kk]` and `panel[kk·16 + 15]` in bounds for
/// every `kk < k`.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile6x16(
    k: usize,
    a: &[f32],
    arows: &[usize; MR],
    panel: &[f32],
    tile: &mut [[f32; PANEL]; MR],
) {
    let pa = a.as_ptr();
    let pb = panel.as_ptr();
    // SAFETY: the caller guarantees the features and the bounds of every access below.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        for (r, row) in acc.iter_mut().enumerate() {
            row[0] = _mm256_loadu_ps(tile[r].as_ptr());
            row[1] = _mm256_loadu_ps(tile[r].as_ptr().add(8));
        }
        let ar: [*const f32; MR] = std::array::from_fn(|r| pa.add(arows[r]));
        for kk in 0..k {
            let b0 = _mm256_loadu_ps(pb.add(kk * PANEL));
            let b1 = _mm256_loadu_ps(pb.add(kk * PANEL + 8));
            for r in 0..MR {
                let av = _mm256_broadcast_ss(&*ar[r].add(kk));
                acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
            }
        }
        for (r, row) in acc.iter().enumerate() {
            _mm256_storeu_ps(tile[r].as_mut_ptr(), row[0]);
            _mm256_storeu_ps(tile[r].as_mut_ptr().add(8), row[1]);
        }
    }
}
