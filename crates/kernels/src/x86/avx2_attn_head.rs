//! A decoding head's attention in two calls: every score (`head_scores_f16`) and every output
//! dimension (`head_out_f16`), each in ggml's decode order, against operands widened to f32
//! once per head (`widen_f16`).
//!
//! Why: a decoding token's attention is thousands of short dot products, one per cached
//! position for the scores and one per head dimension for the output. Made one call per row
//! (`avx2::dot_f16`), each converted both operands from f16, paid a call, a bounds check per
//! row, a horizontal sum alone and a NaN-aware running maximum: `examples/attend_speed` put a
//! 64-wide head over 100 positions at 1.4 µs, about 50 cycles per position, and a 16-client
//! decode step spent a fifth of its time there. Here the shared operand is converted once
//! (f16 to f32 is exact, so the products are the same), each step of 32 loads it once for two
//! rows, two rows' horizontal sums share their shuffles, the pages are bounds-checked once
//! each, and the maximum is a vector pass at the end.
//!
//! Bit-identity with `avx2::dot_f16` / `dot_f16_paged`: per row the same accumulator lanes get
//! the same fused multiply-adds in the same order, the joint reduction adds exactly the pairs
//! `f16_reduce` adds (`lo + hi`, then two horizontal adds; one row per 128-bit half), and a
//! remainder past the last step of 32 is added in f64 as there. The maximum ignores NaN scores,
//! as `f32::max` does; a maximum of zero may come back as -0 where `f32::max` gave +0, which
//! the softmax cannot tell apart (`x - 0` and `x + 0` are equal and `exp(±0)` is 1).

use std::arch::x86_64::*;

use half::f16;

use crate::attention::{group_out_shape, group_shape, PagedRow, PagedRows, KV_PAGE};
use crate::Kernels;

pub(super) fn register(k: &mut Kernels) {
    k.set_head_f16(head_scores_f16, head_out_f16, widen_f16, "whole group/avx2");
}

/// `dst[i] = src[i]` as f32, eight at a time with F16C.
pub fn widen_f16(src: &[f16], dst: &mut [f32]) {
    let n = src.len().min(dst.len());
    // SAFETY: registered only after AVX2/FMA/F16C were detected; n fits both slices.
    unsafe { widen_f16c(&src[..n], &mut dst[..n]) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn widen_f16c(src: &[f16], dst: &mut [f32]) {
    let n = src.len();
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n elements in both slices; unaligned accesses.
        unsafe {
            let h = _mm_loadu_si128(src.as_ptr().add(i).cast());
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
        }
        i += 8;
    }
    for (d, x) in dst[i..].iter_mut().zip(&src[i..]) {
        *d = x.to_f32();
    }
}

/// Panics unless every row `first..n` of `k` (`d` halves each) lies inside `k.data`: checked
/// once per page, the positions of a page being at most `KV_PAGE - 1` strides apart.
fn check_rows(k: &PagedRows<'_>, d: usize, first: usize, n: usize) {
    let mut s = first / KV_PAGE;
    while s * KV_PAGE < n {
        let last = (n - 1).min(s * KV_PAGE + KV_PAGE - 1) % KV_PAGE;
        let end = k.pages[s] as usize * k.page_elems + k.offset + last * k.stride + d;
        assert!(
            end <= k.data.len(),
            "head_scores_f16: rows outside the cache"
        );
        s += 1;
    }
}

/// Every score `first..n` of a group of decoding heads and their maxima (see
/// `crate::types::ScoresF16Fn`): head by head.
pub fn head_scores_f16(
    k: &PagedRows<'_>,
    qs: &[&[f32]],
    scale: f32,
    first: usize,
    outs: &mut [&mut [f32]],
    maxes: &mut [f32],
) {
    let kernel = |heads: usize| -> ScoresPart {
        match heads {
            1 => scores_one,
            2 => scores_group::<2>,
            _ => scores_group::<3>,
        }
    };
    // SAFETY: registered only after AVX2/FMA/F16C were detected.
    unsafe {
        scores_in_parts(
            k,
            qs,
            scale,
            first,
            outs,
            maxes,
            group_part(qs.len()),
            kernel,
        )
    }
}

/// `scores_avx2` as a part of one head.
///
/// # Safety
/// As `scores_avx2`, for the one head of `qs`, `outs` and `maxes`.
unsafe fn scores_one(
    k: &PagedRows<'_>,
    qs: &[&[f32]],
    scale: f32,
    first: usize,
    outs: &mut [&mut [f32]],
    maxes: &mut [f32],
) {
    // SAFETY: the caller's contract.
    maxes[0] = unsafe { scores_avx2(k, qs[0], scale, first, outs[0]) };
}

/// Heads per part of a group at this level: at most three (their twelve accumulators and a
/// converted step fill the sixteen registers), the parts as even as can be (4 = 2 + 2).
fn group_part(g: usize) -> usize {
    g.div_ceil(g.div_ceil(3)).max(1)
}

/// `G` (2 or 3) heads' scores, one row at a time: each K step of eight converted once for
/// every head's own four accumulators (`group_row`), then reduced two heads at a time with
/// `f16_reduce`'s additions.
///
/// # Safety
/// AVX2/FMA/F16C present; `scores_in_parts` checked the group;
/// `qs`, `outs` and `maxes` hold `G` heads.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scores_group<const G: usize>(
    k: &PagedRows<'_>,
    qs: &[&[f32]],
    scale: f32,
    first: usize,
    outs: &mut [&mut [f32]],
    maxes: &mut [f32],
) {
    let (d, n) = (qs[0].len(), outs[0].len());
    let np = d - d % 32;
    let ys: [*const f32; G] = std::array::from_fn(|h| qs[h].as_ptr());
    // `j` indexes the rows and every head's scores.
    #[allow(clippy::needless_range_loop)]
    for j in first..n {
        // SAFETY: `check_rows` put row j (d halves) inside `k.data` and indexed
        // `k.pages[j / KV_PAGE]`.
        let row = unsafe { k.row_ptr(j) };
        // SAFETY: step s covers halves 32s..32s + 32 <= np of the row and floats of every
        // query.
        let sums = unsafe { group_row::<G>(np / 32, |s| row.add(32 * s), ys) };
        for (h, v) in reduce_heads(sums).into_iter().enumerate() {
            let full = with_tail(v, np, qs[h], |c| {
                // SAFETY: c < d: inside row j (checked by the caller).
                unsafe { *row.add(c) }
            });
            outs[h][j] = full * scale;
        }
    }
    for h in 0..G {
        // SAFETY: AVX2 present (caller's contract); first < n.
        maxes[h] = unsafe { max_ignoring_nan(&outs[h][first..]) };
    }
}

/// One row against `G` heads in ggml's AVX2 `vec_dot_f16` order: per step of 32 (`seg(s)`
/// points to the row's 32 halves of step `s`, `ys[h] + 32 s` to head `h`'s floats) the four
/// 8-lane accumulators of every head, each eight halves converted once; returns each head's
/// `(acc0 + acc2) + (acc1 + acc3)`.
///
/// # Safety
/// AVX2/FMA/F16C present; for every `s < steps`, `seg(s)` points to 32 readable halves and
/// every `ys[h]` to `32 s + 32` readable floats.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn group_row<const G: usize>(
    steps: usize,
    seg: impl Fn(usize) -> *const f16,
    ys: [*const f32; G],
) -> [__m256; G] {
    let mut acc = [[_mm256_setzero_ps(); 4]; G];
    for s in 0..steps {
        let x0 = seg(s);
        // `j` indexes the step's eights and every head's accumulators.
        #[allow(clippy::needless_range_loop)]
        for j in 0..4 {
            // SAFETY: 8j + 8 <= 32 halves of the step and floats of every head (contract).
            unsafe {
                let x = _mm256_cvtph_ps(_mm_loadu_si128(x0.add(8 * j).cast()));
                for h in 0..G {
                    let y = _mm256_loadu_ps(ys[h].add(32 * s + 8 * j));
                    acc[h][j] = _mm256_fmadd_ps(x, y, acc[h][j]);
                }
            }
        }
    }
    acc.map(|a| _mm256_add_ps(_mm256_add_ps(a[0], a[2]), _mm256_add_ps(a[1], a[3])))
}

/// `f16_reduce`'s remaining additions for `G` heads' sums, two at a time (`reduce_two`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn reduce_heads<const G: usize>(sums: [__m256; G]) -> [f32; G] {
    let mut out = [0f32; G];
    let mut h = 0;
    while h < G {
        let two = reduce_two([sums[h], sums[(h + 1).min(G - 1)]]);
        out[h] = two[0];
        if h + 1 < G {
            out[h + 1] = two[1];
        }
        h += 2;
    }
    out
}

/// A scores kernel for one part of a group: the arguments of `ScoresF16Fn`. It may assume
/// its ISA, that the part's shapes agree, that every row `first..n` lies inside the cache and
/// that `first < n`.
pub(super) type ScoresPart =
    unsafe fn(&PagedRows<'_>, &[&[f32]], f32, usize, &mut [&mut [f32]], &mut [f32]);

/// What every scores entry does around its kernels: checks the group's shapes and that every
/// row `first..n` lies inside the cache (nothing to score: every maximum `-inf`), then runs
/// `kernel(heads)` on each part of at most `per` heads.
///
/// # Safety
/// The CPU has what every kernel `kernel` gives was compiled for, and each handles the number
/// of heads it is given for.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn scores_in_parts(
    k: &PagedRows<'_>,
    qs: &[&[f32]],
    scale: f32,
    first: usize,
    outs: &mut [&mut [f32]],
    maxes: &mut [f32],
    per: usize,
    kernel: impl Fn(usize) -> ScoresPart,
) {
    let (d, n) = group_shape(qs, outs, maxes);
    if qs.is_empty() || first >= n {
        maxes[..qs.len()].fill(f32::NEG_INFINITY);
        return;
    }
    check_rows(k, d, first, n);
    let parts = qs
        .chunks(per)
        .zip(outs.chunks_mut(per))
        .zip(maxes.chunks_mut(per));
    for ((qs, outs), maxes) in parts {
        // SAFETY: shapes and rows checked above, first < n; the ISA and the part size are
        // the caller's contract.
        unsafe { kernel(qs.len())(k, qs, scale, first, outs, maxes) }
    }
}

/// # Safety
/// AVX2/FMA/F16C present; `check_rows(k, q.len(), first, out.len())` passed and
/// `first < out.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scores_avx2(
    k: &PagedRows<'_>,
    q: &[f32],
    scale: f32,
    first: usize,
    out: &mut [f32],
) -> f32 {
    let (d, n) = (q.len(), out.len());
    let np = d - d % 32;
    // SAFETY: `check_rows` put every row first..n (d halves) inside `k.data`; the pages were
    // indexed there, so `k.pages[j / KV_PAGE]` is in bounds for every j < n.
    let row = |j: usize| unsafe { k.row_ptr(j) };
    let mut j = first;
    while j < n {
        let (a, b) = (row(j), row((j + 1).min(n - 1)));
        // SAFETY: both rows hold d >= np halves and `q` d floats.
        let two = unsafe { pair_contiguous(np, [a, b], q.as_ptr()) };
        for (r, v) in two.iter().enumerate().take((n - j).min(2)) {
            let jj = j + r;
            let full = with_tail(*v, np, q, |c| {
                // SAFETY: c < d: inside row jj (checked by the caller).
                unsafe { *row(jj).add(c) }
            });
            out[jj] = full * scale;
        }
        j += 2;
    }
    // SAFETY: AVX2 present (caller's contract); first < n.
    unsafe { max_ignoring_nan(&out[first..]) }
}

/// Every output dimension of a group of decoding heads (see `crate::types::HeadOutF16Fn`):
/// head by head.
pub fn head_out_f16(vt: &PagedRow<'_>, ps: &[&[f32]], outs: &mut [&mut [f32]]) {
    let kernel = |heads: usize| -> OutPart {
        match heads {
            1 => out_one,
            2 => out_group::<2>,
            _ => out_group::<3>,
        }
    };
    // SAFETY: registered only after AVX2/FMA/F16C were detected.
    unsafe { out_in_parts(vt, ps, outs, group_part(ps.len()), kernel) }
}

/// `out_avx2` as a part of one head.
///
/// # Safety
/// As `out_avx2`, for the one head of `ps` and `outs`.
unsafe fn out_one(vt: &PagedRow<'_>, ps: &[&[f32]], outs: &mut [&mut [f32]]) {
    // SAFETY: the caller's contract.
    unsafe { out_avx2(vt, ps[0], outs[0]) }
}

/// `G` (2 or 3) heads' outputs, one dimension at a time: each V step of eight converted once
/// for every head (`group_row`, page after page).
///
/// # Safety
/// AVX2/FMA/F16C present; `out_in_parts` checked the group; `ps` and `outs`
/// hold `G` heads.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn out_group<const G: usize>(vt: &PagedRow<'_>, ps: &[&[f32]], outs: &mut [&mut [f32]]) {
    let (n, dims) = (ps[0].len(), outs[0].len());
    let np = n - n % 32;
    // SAFETY: the caller checked every segment that is read, and indexed `vt.pages[s]` for
    // every s < n / KV_PAGE rounded up.
    let seg = |i: usize, s: usize| unsafe { vt.segment_ptr(s, i * KV_PAGE) };
    let ys: [*const f32; G] = std::array::from_fn(|h| ps[h].as_ptr());
    // `i` indexes the dimensions and every head's outputs.
    #[allow(clippy::needless_range_loop)]
    for i in 0..dims {
        // SAFETY: each of the np / 32 full pages' segments holds 32 halves, and every `ps[h]`
        // np floats.
        let sums = unsafe { group_row::<G>(np / 32, |s| seg(i, s), ys) };
        for (h, v) in reduce_heads(sums).into_iter().enumerate() {
            outs[h][i] = with_tail(v, np, ps[h], |c| {
                // SAFETY: c < n: inside page c / KV_PAGE's checked segment.
                unsafe { *seg(i, c / KV_PAGE).add(c % KV_PAGE) }
            });
        }
    }
}

/// An output kernel for one part of a group: the arguments of `HeadOutF16Fn`. It may assume
/// its ISA, that the part's shapes agree, that every segment it reads lies inside the cache and
/// that the outputs are not empty.
pub(super) type OutPart = unsafe fn(&PagedRow<'_>, &[&[f32]], &mut [&mut [f32]]);

/// What every output entry does around its kernels: checks the group's shapes and that every
/// segment read lies inside the cache, then runs `kernel(heads)` on each part of at most `per`
/// heads (nothing when there are no outputs).
///
/// # Safety
/// The CPU has what every kernel `kernel` gives was compiled for, and each handles the number
/// of heads it is given for.
pub(super) unsafe fn out_in_parts(
    vt: &PagedRow<'_>,
    ps: &[&[f32]],
    outs: &mut [&mut [f32]],
    per: usize,
    kernel: impl Fn(usize) -> OutPart,
) {
    let (n, dims) = group_out_shape(ps, outs);
    if ps.is_empty() || dims == 0 {
        return;
    }
    check_segments(vt, n, dims);
    for (ps, outs) in ps.chunks(per).zip(outs.chunks_mut(per)) {
        // SAFETY: shapes and segments checked above, outputs not empty; the ISA and the part
        // size are the caller's contract.
        unsafe { kernel(ps.len())(vt, ps, outs) }
    }
}

/// Panics unless every segment `head_out_f16` reads lies inside `vt.data`: page `s` of the
/// `n` positions, dimension rows `0..dims` (not 0), `KV_PAGE` halves each (the tail page only
/// its first `n % 32`).
fn check_segments(vt: &PagedRow<'_>, n: usize, dims: usize) {
    for s in 0..n.div_ceil(KV_PAGE) {
        let len = (n - s * KV_PAGE).min(KV_PAGE);
        let end = vt.pages[s] as usize * vt.page_elems + vt.offset + (dims - 1) * KV_PAGE + len;
        assert!(end <= vt.data.len(), "head_out_f16: rows outside the cache");
    }
}

/// # Safety
/// AVX2/FMA/F16C present; every segment read (page `s < p.len() / 32` rounded up, dimension
/// rows `0..out.len()`) lies inside `vt.data`, `out` is not empty.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn out_avx2(vt: &PagedRow<'_>, p: &[f32], out: &mut [f32]) {
    let (n, dims) = (p.len(), out.len());
    let np = n - n % 32;
    // SAFETY: the caller checked every segment that is read, and indexed `vt.pages[s]` for
    // every s < n / KV_PAGE rounded up.
    let seg = |i: usize, s: usize| unsafe { vt.segment_ptr(s, i * KV_PAGE) };
    let mut i = 0;
    while i < dims {
        let (a, b) = (i, (i + 1).min(dims - 1));
        // SAFETY: each segment of the np / 32 full pages holds 32 halves and `p` np floats.
        let two = unsafe { pair_paged(np, |s| [seg(a, s), seg(b, s)], p.as_ptr()) };
        for (r, v) in two.iter().enumerate().take((dims - i).min(2)) {
            let ii = i + r;
            out[ii] = with_tail(*v, np, p, |c| {
                // SAFETY: c < n: inside page c / KV_PAGE's checked segment.
                unsafe { *seg(ii, c / KV_PAGE).add(c % KV_PAGE) }
            });
        }
        i += 2;
    }
}

/// The reduced vector sum plus the remainder `np..` in f64, as the single kernels do.
#[inline]
pub(super) fn with_tail(reduced: f32, np: usize, b: &[f32], x: impl Fn(usize) -> f16) -> f32 {
    if np == b.len() {
        return reduced;
    }
    let mut res = reduced as f64;
    for (c, &y) in b.iter().enumerate().skip(np) {
        res += (x(c).to_f32() * y) as f64;
    }
    res as f32
}

/// The largest value of `x` (not empty), NaNs ignored.
///
/// # Safety
/// AVX2 present.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn max_ignoring_nan(x: &[f32]) -> f32 {
    let mut acc = _mm256_set1_ps(f32::NEG_INFINITY);
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        // SAFETY: eight floats in `c`; `max(v, acc)` gives `acc` where `v` is NaN.
        acc = _mm256_max_ps(unsafe { _mm256_loadu_ps(c.as_ptr()) }, acc);
    }
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds eight floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
    lanes
        .into_iter()
        .chain(chunks.remainder().iter().copied())
        .fold(f32::NEG_INFINITY, f32::max)
}

/// One step of 32: the four accumulators of each of two rows get `row[8j..8j + 8] · b[8j..]`.
///
/// # Safety
/// AVX2/FMA/F16C present; each row points to 32 halves and `b` to 32 floats.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn step32(sum: &mut [[__m256; 4]; 2], rows: [*const f16; 2], b: *const f32) {
    for j in 0..4 {
        // SAFETY: 8j + 8 <= 32 (caller's contract); unaligned loads.
        unsafe {
            let bj = _mm256_loadu_ps(b.add(8 * j));
            for (s, row) in sum.iter_mut().zip(rows) {
                let x = _mm256_cvtph_ps(_mm_loadu_si128(row.add(8 * j).cast()));
                s[j] = _mm256_fmadd_ps(x, bj, s[j]);
            }
        }
    }
}

/// `f16_reduce` of two rows' accumulators at once: row 0 in the low 128-bit half, row 1 in the
/// high half, the same additions for each.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn reduce_pair(sum: [[__m256; 4]; 2]) -> [f32; 2] {
    reduce_two(sum.map(|a| _mm256_add_ps(_mm256_add_ps(a[0], a[2]), _mm256_add_ps(a[1], a[3]))))
}

/// The rest of `f16_reduce` for two rows' `(acc0 + acc2) + (acc1 + acc3)`: row 0 in the low
/// 128-bit half, row 1 in the high half, `lo + hi` and two horizontal adds for each.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn reduce_two(s: [__m256; 2]) -> [f32; 2] {
    let lo = _mm256_permute2f128_ps::<0x20>(s[0], s[1]);
    let hi = _mm256_permute2f128_ps::<0x31>(s[0], s[1]);
    let t = _mm256_add_ps(lo, hi);
    let h = _mm256_hadd_ps(t, t);
    let h = _mm256_hadd_ps(h, h);
    [
        _mm256_cvtss_f32(h),
        _mm_cvtss_f32(_mm256_extractf128_ps::<1>(h)),
    ]
}

/// Two contiguous rows over `np` (a multiple of 32) values.
///
/// # Safety
/// AVX2/FMA/F16C present; each row holds `np` halves and `b` `np` floats.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn pair_contiguous(np: usize, rows: [*const f16; 2], b: *const f32) -> [f32; 2] {
    let mut sum = [[_mm256_setzero_ps(); 4]; 2];
    let mut i = 0;
    while i < np {
        // SAFETY: i + 32 <= np (caller's contract).
        unsafe { step32(&mut sum, [rows[0].add(i), rows[1].add(i)], b.add(i)) };
        i += 32;
    }
    reduce_pair(sum)
}

/// Two paged rows over `np` (a multiple of 32) values; `seg(s)` gives both rows' page-`s`
/// segments.
///
/// # Safety
/// AVX2/FMA/F16C present; every segment `seg` gives for `s < np / 32` holds 32 halves and `b`
/// holds `np` floats.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn pair_paged(np: usize, seg: impl Fn(usize) -> [*const f16; 2], b: *const f32) -> [f32; 2] {
    let mut sum = [[_mm256_setzero_ps(); 4]; 2];
    for s in 0..np / 32 {
        // SAFETY: page s's segments hold 32 halves and 32s + 32 <= np (caller's contract).
        unsafe { step32(&mut sum, seg(s), b.add(32 * s)) };
    }
    reduce_pair(sum)
}
