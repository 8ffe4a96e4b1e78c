//! A prompt token's attention for a group of heads in two calls, in the order of llama.cpp's
//! tiled GEMM: every score of every head (`head_scores_f16_tiled`) and every output dimension
//! of every head (`head_out_f16_tiled`).
//!
//! Why: a 512-token prompt of the default model spent over a third of its time in attention,
//! one `dot_f16_batch` call per (key, head) and one `dot_f16_batch_paged` per (dimension,
//! head): each call converted both operands from f16 again, computed page addresses per row,
//! reduced alone, and the query heads sharing a K/V head each read and converted the same rows.
//! Here the query (and the probabilities) come widened to f32 once per head, each K row's (or
//! V row's) step of eight is converted once and multiplied into every head of the group, and
//! several rows run at once so that enough accumulator chains hide the FMA latency.
//!
//! Bit-identity with `avx2::dot_f16_tiled` / `dot_f16_tiled_paged` per row and head: one 8-lane
//! accumulator over steps of 8 (page after page for V), the same fused multiply-adds in the same
//! order (f16 to f32 is exact, so a pre-widened operand gives the same products), then
//! `hsum_float_8` and a remainder past the last step of 8 added in f64.

use std::arch::x86_64::*;

use half::f16;

use super::avx2_attn_head::{max_ignoring_nan, out_in_parts, scores_in_parts, OutPart, ScoresPart};
use super::common::{hsum_float_8, tail_f64};
use crate::attention::{PagedRow, PagedRows, KV_PAGE};
use crate::Kernels;

pub(super) fn register(k: &mut Kernels) {
    k.set_head_f16_tiled(
        head_scores_f16_tiled,
        head_out_f16_tiled,
        "whole group tiled/avx2",
    );
}

/// With the AVX-512 level: the scores with twice the registers.
pub(super) fn register_avx512(k: &mut Kernels) {
    k.set_head_f16_tiled(
        head_scores_f16_tiled_vl,
        head_out_f16_tiled,
        "whole group tiled/avx512vl",
    );
}

/// Every score `first..n` of a group of prompt heads and their maxima (see
/// `crate::types::ScoresF16Fn`; `dot_f16_batch`'s bits), up to four heads per pass.
pub fn head_scores_f16_tiled(
    k: &PagedRows<'_>,
    qs: &[&[f32]],
    scale: f32,
    first: usize,
    outs: &mut [&mut [f32]],
    maxes: &mut [f32],
) {
    // Rows per pass: `R · G` accumulators (at most 12) and a converted row leave room in the
    // 16 registers.
    let pick = |g: usize| -> ScoresPart {
        match g {
            1 => scores_tiled::<1, 4>,
            2 => scores_tiled::<2, 4>,
            3 => scores_tiled::<3, 4>,
            _ => scores_tiled::<4, 3>,
        }
    };
    // SAFETY: registered only after AVX2/FMA/F16C were detected.
    unsafe { scores_in_parts(k, qs, scale, first, outs, maxes, 4, pick) }
}

/// The same at the AVX-512 level: the body compiled with AVX-512VL, whose 32 registers hold
/// eight rows' accumulators for up to three heads.
pub fn head_scores_f16_tiled_vl(
    k: &PagedRows<'_>,
    qs: &[&[f32]],
    scale: f32,
    first: usize,
    outs: &mut [&mut [f32]],
    maxes: &mut [f32],
) {
    let pick = |g: usize| -> ScoresPart {
        match g {
            1 => scores_tiled_vl::<1, 8>,
            2 => scores_tiled_vl::<2, 8>,
            3 => scores_tiled_vl::<3, 8>,
            _ => scores_tiled_vl::<4, 6>,
        }
    };
    // SAFETY: registered only with the AVX-512 level (AVX-512F/VL detected).
    unsafe { scores_in_parts(k, qs, scale, first, outs, maxes, 4, pick) }
}

/// The scores kernel's body, compiled once per target (`$features`): `R` rows at a time
/// (a multiple of 4), each step of eight converted once for the `G` heads.
macro_rules! scores_tiled {
    ($name:ident, $features:literal) => {
        /// # Safety
        /// The CPU has `$features`; `scores_in_parts` checked the group; `qs`, `outs` and `maxes` hold `G` heads.
        #[target_feature(enable = $features)]
        unsafe fn $name<const G: usize, const R: usize>(
            k: &PagedRows<'_>,
            qs: &[&[f32]],
            scale: f32,
            first: usize,
            outs: &mut [&mut [f32]],
            maxes: &mut [f32],
        ) {
            let (d, n) = (qs[0].len(), outs[0].len());
            let np = d - d % 8;
            let qp: [*const f32; G] = std::array::from_fn(|h| qs[h].as_ptr());
            // SAFETY: `check_rows` put every row first..n (d halves) inside `k.data` and
            // indexed `k.pages[j / KV_PAGE]` for every such j.
            let row = |j: usize| unsafe { k.row_ptr(j) };
            let mut j = first;
            while j < n {
                // Rows past n - 1 repeat row n - 1 and are not stored.
                let rows: [*const f16; R] = std::array::from_fn(|r| row((j + r).min(n - 1)));
                let mut acc = [[_mm256_setzero_ps(); G]; R];
                let mut i = 0;
                while i < np {
                    for r in 0..R {
                        // SAFETY: i + 8 <= np <= d halves in every row and floats in every
                        // query.
                        unsafe {
                            let x = _mm256_cvtph_ps(_mm_loadu_si128(rows[r].add(i).cast()));
                            for h in 0..G {
                                let y = _mm256_loadu_ps(qp[h].add(i));
                                acc[r][h] = _mm256_fmadd_ps(x, y, acc[r][h]);
                            }
                        }
                    }
                    i += 8;
                }
                let live = R.min(n - j);
                for r0 in (0..live).step_by(4) {
                    for h in 0..G {
                        let sums = hsum_four(std::array::from_fn(|r| acc[(r0 + r).min(R - 1)][h]));
                        for (r, &sum) in sums.iter().enumerate().take(live - r0) {
                            let r = r0 + r;
                            let v = if np == d {
                                sum
                            } else {
                                tail_f64(f64::from(sum), np, d, |c| {
                                    // SAFETY: c < d: inside row j + r (checked by the caller).
                                    unsafe { (*rows[r].add(c)).to_f32() * qs[h][c] }
                                })
                            };
                            outs[h][j + r] = v * scale;
                        }
                    }
                }
                j += R;
            }
            for h in 0..G {
                // SAFETY: AVX2 present (the features include it); first < n.
                maxes[h] = unsafe { max_ignoring_nan(&outs[h][first..]) };
            }
        }
    };
}

scores_tiled!(scores_tiled, "avx2,fma,f16c");
scores_tiled!(scores_tiled_vl, "avx512f,avx512vl,avx2,fma,f16c");

/// `hsum_float_8` of four registers at once: `[hsum(x[0]), .., hsum(x[3])]`, each with the
/// same additions (`lo128 + hi128`, then lanes `(0 + 2) + (1 + 3)`), gathered by shuffles that
/// only move values.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_four(x: [__m256; 4]) -> [f32; 4] {
    // [t0 | t1] and [t2 | t3]: each row's 128-bit halves added.
    let halves = |a: __m256, b: __m256| {
        _mm256_add_ps(
            _mm256_permute2f128_ps::<0x20>(a, b),
            _mm256_permute2f128_ps::<0x31>(a, b),
        )
    };
    let (t01, t23) = (halves(x[0], x[1]), halves(x[2], x[3]));
    // Low 128 bits: (t0[0] + t0[2], t0[1] + t0[3], t2[0] + t2[2], t2[1] + t2[3]); high: rows
    // 1 and 3.
    let u = _mm256_add_ps(
        _mm256_shuffle_ps::<0b01_00_01_00>(t01, t23),
        _mm256_shuffle_ps::<0b11_10_11_10>(t01, t23),
    );
    // Low 128 bits: (row 0, row 2, ..); high: (row 1, row 3, ..).
    let v = _mm256_add_ps(
        _mm256_shuffle_ps::<0b10_00_10_00>(u, u),
        _mm256_shuffle_ps::<0b11_01_11_01>(u, u),
    );
    let rows = _mm_unpacklo_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let mut out = [0f32; 4];
    // SAFETY: `out` holds four floats.
    unsafe { _mm_storeu_ps(out.as_mut_ptr(), rows) };
    out
}

/// Every output dimension of a group of prompt heads (see `crate::types::HeadOutF16Fn`;
/// `dot_f16_batch_paged`'s bits), up to four heads per pass.
pub fn head_out_f16_tiled(vt: &PagedRow<'_>, ps: &[&[f32]], outs: &mut [&mut [f32]]) {
    let kernel = |heads: usize| -> OutPart {
        match heads {
            1 => out_tiled::<1, 4>,
            2 => out_tiled::<2, 4>,
            3 => out_tiled::<3, 4>,
            _ => out_tiled::<4, 3>,
        }
    };
    // SAFETY: registered only after AVX2/FMA/F16C were detected.
    unsafe { out_in_parts(vt, ps, outs, 4, kernel) }
}

/// `R` dimensions at a time, each V step of eight converted once for the `G` heads.
///
/// # Safety
/// AVX2/FMA/F16C present; `out_in_parts` checked the group; `ps` and `outs`
/// hold `G` heads.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn out_tiled<const G: usize, const R: usize>(
    vt: &PagedRow<'_>,
    ps: &[&[f32]],
    outs: &mut [&mut [f32]],
) {
    let (n, dims) = (ps[0].len(), outs[0].len());
    let np = n - n % 8;
    // SAFETY: `check_segments` checked every segment read and indexed `vt.pages[s]` for every
    // s < n / KV_PAGE rounded up.
    let seg = |i: usize, s: usize| unsafe { vt.segment_ptr(s, i * KV_PAGE) };
    let pp: [*const f32; G] = std::array::from_fn(|h| ps[h].as_ptr());
    let mut i = 0;
    while i < dims {
        // Dimensions past dims - 1 repeat dims - 1 and are not stored.
        let dim: [usize; R] = std::array::from_fn(|r| (i + r).min(dims - 1));
        let mut acc = [[_mm256_setzero_ps(); G]; R];
        let mut start = 0;
        while start < np {
            let (page, len) = (start / KV_PAGE, KV_PAGE.min(np - start));
            let segs: [*const f16; R] = std::array::from_fn(|r| seg(dim[r], page));
            let mut t = 0;
            while t < len {
                for r in 0..R {
                    // SAFETY: t + 8 <= len halves in each segment (len is a multiple of 8),
                    // start + t + 8 <= np floats in every `ps[h]`.
                    unsafe {
                        let x = _mm256_cvtph_ps(_mm_loadu_si128(segs[r].add(t).cast()));
                        for h in 0..G {
                            let y = _mm256_loadu_ps(pp[h].add(start + t));
                            acc[r][h] = _mm256_fmadd_ps(x, y, acc[r][h]);
                        }
                    }
                }
                t += 8;
            }
            start += len;
        }
        for r in 0..R.min(dims - i) {
            for h in 0..G {
                outs[h][i + r] = tail_f64(f64::from(hsum_float_8(acc[r][h])), np, n, |c| {
                    // SAFETY: c < n: inside page c / KV_PAGE's checked segment.
                    unsafe { (*seg(i + r, c / KV_PAGE).add(c % KV_PAGE)).to_f32() * ps[h][c] }
                });
            }
        }
        i += R;
    }
}
