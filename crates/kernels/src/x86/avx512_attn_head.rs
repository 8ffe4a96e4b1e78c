//! The whole-head decode attention of `avx2_attn_head` with 512-bit registers and eight rows
//! reduced together: the same bits, about half the instructions.
//!
//! Why: a wide serving step (16 sequences) spent a sixth of its time in the two head kernels
//! (`scores_avx2`, `out_avx2`), and `examples/attend_speed` put them at about 27 cycles per
//! cached position for a 64-wide head, against 128 multiply-adds of work. They were bound by
//! instruction count: a conversion and an FMA per eight halves, and a horizontal reduction per
//! row that cost as much as a 64-wide row's products.
//!
//! How the bits stay those of ggml's AVX2 `ggml_vec_dot_f16` (`avx2::dot_f16`): its four 8-lane
//! accumulators over steps of 32 are kept as two 16-lane ones, `[acc0 | acc1]` over elements
//! `32s..32s + 16` and `[acc2 | acc3]` over `32s + 16..32s + 32`: every lane gets the same fused
//! multiply-adds in the same order. The reduction `(acc0 + acc2) + (acc1 + acc3)` is one add of
//! the two registers and one of their halves; then `lo + hi` of 128 bits and `(t0 + t1) +
//! (t2 + t3)` follow as in `f16_reduce`, done for eight rows at once with shuffles that only move
//! values (`reduce_eight`). A remainder past the last step of 32 is added in f64 as there
//! (`with_tail`). Products and sums are commutative in IEEE arithmetic, so the operand order of
//! each add does not matter; the grouping does, and it is kept.
//!
//! Groups of heads: the query heads that share a K/V head (`attention::attend_group`) are
//! taken up to four at a time. Each K row's step of 32 (or each V row's, for the outputs) is
//! widened from f16 once and multiplied into every head's own accumulators, so the conversions
//! and loads are paid once per group while each head's lanes get the same multiply-adds in the
//! same order as alone. With three heads this took a third off the time per head
//! (`examples/attend_speed`, 300 positions: 2.2 µs alone, 1.4 µs in a group). The output kernel
//! takes fewer dimensions per pass as the group grows (`out_avx512::<G, DIMS>`) so the
//! accumulators stay in the 32 registers.

use std::arch::x86_64::*;

use half::f16;

use super::avx2_attn_head::{
    max_ignoring_nan, out_in_parts, scores_in_parts, widen_f16, with_tail, OutPart, ScoresPart,
};
use crate::attention::{PagedRow, PagedRows, KV_PAGE};
use crate::Kernels;

pub(super) fn register(k: &mut Kernels) {
    k.set_head_f16(
        head_scores_f16,
        head_out_f16,
        widen_f16,
        "whole group/avx512",
    );
}

/// Every score `first..n` of a group of decoding heads and their maxima (see
/// `crate::types::ScoresF16Fn`), up to four heads per pass over the rows.
pub fn head_scores_f16(
    k: &PagedRows<'_>,
    qs: &[&[f32]],
    scale: f32,
    first: usize,
    outs: &mut [&mut [f32]],
    maxes: &mut [f32],
) {
    let d = qs.first().map_or(0, |q| q.len());
    let kernel = |heads: usize| match heads {
        1 => scores_for::<1>(d),
        2 => scores_for::<2>(d),
        3 => scores_for::<3>(d),
        _ => scores_for::<4>(d),
    };
    // SAFETY: registered only after the AVX-512 level was detected.
    unsafe { scores_in_parts(k, qs, scale, first, outs, maxes, 4, kernel) }
}

/// The scores kernel for `G` heads of width `d`: the common head sizes get their steps of 32
/// unrolled.
fn scores_for<const G: usize>(d: usize) -> ScoresPart {
    match d {
        64 => scores_avx512::<2, G>,
        128 => scores_avx512::<4, G>,
        _ => scores_avx512::<0, G>,
    }
}

/// `STEPS`: the head's steps of 32 when known at compile time (`d == 32 * STEPS`), else 0.
/// Each K row's step is widened once and multiplied into all `G` heads' accumulators.
///
/// # Safety
/// AVX-512F/AVX2/FMA/F16C present; `scores_in_parts` checked the group; `qs`, `outs` and `maxes` hold `G` heads.
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn scores_avx512<const STEPS: usize, const G: usize>(
    k: &PagedRows<'_>,
    qs: &[&[f32]],
    scale: f32,
    first: usize,
    outs: &mut [&mut [f32]],
    maxes: &mut [f32],
) {
    let (d, n) = (qs[0].len(), outs[0].len());
    let np = d - d % 32;
    let steps = if STEPS > 0 { STEPS } else { np / 32 };
    let qp: [*const f32; G] = std::array::from_fn(|h| qs[h].as_ptr());
    // Blocks of eight positions start at multiples of eight, so a block never straddles a
    // page (KV_PAGE is a multiple of eight) and its rows are `stride` apart.
    let mut j = first - first % 8;
    while j < n {
        // SAFETY: `check_rows` indexed `k.pages[s]` for every page s holding a position
        // first..n, which page j / KV_PAGE does (it holds max(j, first)).
        let page = unsafe { *k.pages.get_unchecked(j / KV_PAGE) } as usize;
        let at = page * k.page_elems + k.offset + (j % KV_PAGE) * k.stride;
        // Rows past n - 1 repeat row n - 1, rows before `first` lie in the same checked page;
        // neither is stored.
        let last = n - 1 - j;
        // SAFETY: every row j..n of this page is inside `k.data` (checked), and so is each
        // earlier row of the page (lower addresses).
        let rows: [*const f16; 8] =
            std::array::from_fn(|r| unsafe { k.data.as_ptr().add(at + r.min(last) * k.stride) });
        let mut sums = [[_mm512_setzero_ps(); 8]; G];
        for (r, &p) in rows.iter().enumerate() {
            let mut lo = [_mm512_setzero_ps(); G];
            let mut hi = [_mm512_setzero_ps(); G];
            for s in 0..steps {
                // SAFETY: 32s + 32 <= np <= d: inside the row (d halves) and every query (d
                // floats).
                unsafe {
                    let x = p.add(32 * s);
                    let (x0, x1) = (widen16(x), widen16(x.add(16)));
                    for h in 0..G {
                        let y = qp[h].add(32 * s);
                        lo[h] = _mm512_fmadd_ps(x0, _mm512_loadu_ps(y), lo[h]);
                        hi[h] = _mm512_fmadd_ps(x1, _mm512_loadu_ps(y.add(16)), hi[h]);
                    }
                }
            }
            for h in 0..G {
                sums[h][r] = _mm512_add_ps(lo[h], hi[h]);
            }
        }
        for h in 0..G {
            let reduced = reduce_eight(sums[h]);
            let out = &mut *outs[h];
            if np == d && j >= first && j + 8 <= n {
                // SAFETY: j + 8 <= n floats in `out`.
                unsafe {
                    _mm256_storeu_ps(
                        out.as_mut_ptr().add(j),
                        _mm256_mul_ps(reduced, _mm256_set1_ps(scale)),
                    )
                };
            } else {
                let mut lanes = [0f32; 8];
                // SAFETY: `lanes` holds eight floats.
                unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), reduced) };
                for r in first.max(j) - j..(n - j).min(8) {
                    let full = with_tail(lanes[r], np, qs[h], |c| {
                        // SAFETY: c < d: inside row j + r (checked by the caller).
                        unsafe { *rows[r].add(c) }
                    });
                    out[j + r] = full * scale;
                }
            }
        }
        j += 8;
    }
    for h in 0..G {
        // SAFETY: AVX2 present (caller's contract); first < n.
        maxes[h] = unsafe { max_ignoring_nan(&outs[h][first..]) };
    }
}

/// Every output dimension of a group of decoding heads (see `crate::types::HeadOutF16Fn`), up
/// to four heads per pass over the V rows.
pub fn head_out_f16(vt: &PagedRow<'_>, ps: &[&[f32]], outs: &mut [&mut [f32]]) {
    // Dimensions per pass: the `G · DIMS` pairs of accumulators and the widened V rows fit
    // the 32 registers.
    let kernel = |heads: usize| -> OutPart {
        match heads {
            1 => out_avx512::<1, 8>,
            2 => out_avx512::<2, 4>,
            3 => out_avx512::<3, 4>,
            _ => out_avx512::<4, 2>,
        }
    };
    // SAFETY: registered only after the AVX-512 level was detected.
    unsafe { out_in_parts(vt, ps, outs, 4, kernel) }
}

/// Blocks of eight output dimensions, computed `DIMS` (a divisor of 8) at a time: each V
/// segment is widened once and multiplied into all `G` heads' accumulators.
///
/// # Safety
/// AVX-512F/AVX2/FMA/F16C present; `out_in_parts` checked the group; `ps`
/// and `outs` hold `G` heads.
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn out_avx512<const G: usize, const DIMS: usize>(
    vt: &PagedRow<'_>,
    ps: &[&[f32]],
    outs: &mut [&mut [f32]],
) {
    let (n, dims) = (ps[0].len(), outs[0].len());
    let np = n - n % 32;
    // SAFETY: `check_segments` checked every segment read and indexed `vt.pages[s]` for every
    // s < n / KV_PAGE rounded up.
    let seg = |i: usize, s: usize| unsafe { vt.segment_ptr(s, i * KV_PAGE) };
    let pp: [*const f32; G] = std::array::from_fn(|h| ps[h].as_ptr());
    let mut i = 0;
    while i < dims {
        // A last block of fewer than eight dimensions repeats dimension dims - 1; the
        // dimensions' segments of a page are KV_PAGE halves apart.
        let last = dims - 1 - i;
        let take = (dims - i).min(8);
        let mut sums = [[_mm512_setzero_ps(); 8]; G];
        for d0 in (0..take).step_by(DIMS) {
            let mut lo = [[_mm512_setzero_ps(); G]; DIMS];
            let mut hi = [[_mm512_setzero_ps(); G]; DIMS];
            for s in 0..np / 32 {
                let x0 = seg(i, s);
                // SAFETY: 32s + 32 <= np floats in every `ps[h]`; each dimension's page-s
                // segment holds 32 halves (checked by the caller).
                unsafe {
                    for r in 0..DIMS {
                        let x = x0.add((d0 + r).min(last) * KV_PAGE);
                        let (w0, w1) = (widen16(x), widen16(x.add(16)));
                        for h in 0..G {
                            let y = pp[h].add(32 * s);
                            lo[r][h] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(y), lo[r][h]);
                            hi[r][h] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(y.add(16)), hi[r][h]);
                        }
                    }
                }
            }
            for r in 0..DIMS {
                for h in 0..G {
                    sums[h][d0 + r] = _mm512_add_ps(lo[r][h], hi[r][h]);
                }
            }
        }
        for h in 0..G {
            let reduced = reduce_eight(sums[h]);
            let out = &mut *outs[h];
            if np == n && take == 8 {
                // SAFETY: i + 8 <= dims floats in `out`.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(i), reduced) };
            } else {
                let mut lanes = [0f32; 8];
                // SAFETY: `lanes` holds eight floats.
                unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), reduced) };
                for (r, &v) in lanes.iter().enumerate().take(take) {
                    out[i + r] = with_tail(v, np, ps[h], |c| {
                        // SAFETY: c < n: inside page c / KV_PAGE's checked segment.
                        unsafe { *seg(i + r, c / KV_PAGE).add(c % KV_PAGE) }
                    });
                }
            }
        }
        i += 8;
    }
}

/// Sixteen halves at `p` as f32 (exact).
///
/// # Safety
/// AVX-512F present; `p` points to 16 readable halves (unaligned).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn widen16(p: *const f16) -> __m512 {
    // SAFETY: 32 readable bytes at `p` (caller's contract).
    _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(p.cast()) })
}

/// `f16_reduce` of eight rows at once: row `r`'s `[acc0 + acc2 | acc1 + acc3]` in `sums[r]`,
/// its reduced sum in lane `r`.
///
/// Per row, as `f16_reduce`: `s = lo256 + hi256` (that is `(acc0 + acc2) + (acc1 + acc3)`),
/// `t = lo128(s) + hi128(s)`, then `(t0 + t1) + (t2 + t3)`. The shuffles gather the operands of
/// each add for several rows into one register; no value is combined other than by those adds.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn reduce_eight(sums: [__m512; 8]) -> __m256 {
    // [s_a | s_b]: 128-bit chunks (a0 + a2, a1 + a3, b0 + b2, b1 + b3) of rows a, b.
    let pair = |a: __m512, b: __m512| {
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x44>(a, b),
            _mm512_shuffle_f32x4::<0xEE>(a, b),
        )
    };
    let s = [
        pair(sums[0], sums[1]),
        pair(sums[2], sums[3]),
        pair(sums[4], sums[5]),
        pair(sums[6], sums[7]),
    ];
    // [t_a, t_b, t_c, t_d]: chunk c = lo128(s) + hi128(s) of row c of the four.
    let quad = |ab: __m512, cd: __m512| {
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x88>(ab, cd),
            _mm512_shuffle_f32x4::<0xDD>(ab, cd),
        )
    };
    let (t_lo, t_hi) = (quad(s[0], s[1]), quad(s[2], s[3]));
    // Per chunk c: (t0 + t1, t2 + t3) of row c, then of row c + 4.
    let h = _mm512_add_ps(
        _mm512_shuffle_ps::<0x88>(t_lo, t_hi),
        _mm512_shuffle_ps::<0xDD>(t_lo, t_hi),
    );
    // Per chunk c: lane 0 holds row c's sum, lane 1 row c + 4's.
    let r = _mm512_add_ps(
        _mm512_shuffle_ps::<0x88>(h, h),
        _mm512_shuffle_ps::<0xDD>(h, h),
    );
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
    _mm512_castps512_ps256(_mm512_permutexvar_ps(order, r))
}
