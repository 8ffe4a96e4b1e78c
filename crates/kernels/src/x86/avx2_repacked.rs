//! AVX2 kernels for the repacked layouts of `crate::repack` (Q4_K×8, Q5_K×8, Q6_K×8, Q4_0×8,
//! Q4_1×8, Q5_0×8, Q8_0×8). Each gives exactly the bits of its scalar reference there: the integer sums are
//! exact, and the float steps are the same multiplies and fused multiply-adds per (row, token)
//! lane.

use std::arch::x86_64::*;

use owl_quant::{q8_0, q8_1, q8_k};

use super::common::*;
use crate::repack::{
    q5k_chunk, q5k_fifth, q6k_high, q6k_low, Q40_X8_BLOCK, Q41_X8_BLOCK, Q4K_X8_BLOCK,
    Q50_X8_BLOCK, Q5K_X8_BLOCK, Q6K_X8_BLOCK, Q80_X8_BLOCK, X8,
};
use crate::{Kernels, Layout};

pub(super) fn register(k: &mut Kernels) {
    k.set_repacked(Layout::Q4KX8, gemm_q4_k_x8, "q4_k×8 repacked/avx2");
    k.set_repacked(Layout::Q40X8, gemm_q4_0_x8, "q4_0×8 repacked/avx2");
    k.set_repacked(Layout::Q41X8, gemm_q4_1_x8, "q4_1×8 repacked/avx2");
    k.set_repacked(Layout::Q50X8, gemm_q5_0_x8, "q5_0×8 repacked/avx2");
    k.set_repacked(Layout::Q80X8, gemm_q8_0_x8, "q8_0×8 repacked/avx2");
    k.set_repacked(Layout::Q6KX8, gemm_q6_k_x8, "q6_k×8 repacked/avx2");
    k.set_repacked(Layout::Q5KX8, gemm_q5_k_x8, "q5_k×8 repacked/avx2");
}

repacked_entry!(gemm_q4_k_x8, q4_k_x8, Layout::Q4KX8);
repacked_entry!(gemm_q4_0_x8, q4_0_x8, Layout::Q40X8);
repacked_entry!(gemm_q4_1_x8, q4_1_x8, Layout::Q41X8);
repacked_entry!(gemm_q5_0_x8, q5_0_x8, Layout::Q50X8);
repacked_entry!(gemm_q8_0_x8, q8_0_x8, Layout::Q80X8);
repacked_entry!(gemm_q6_k_x8, q6_k_x8, Layout::Q6KX8);
repacked_entry!(gemm_q5_k_x8, q5_k_x8, Layout::Q5KX8);

/// For four 32-byte chunks of eight rows' 4-bit values (see `crate::repack`) and `T` tokens'
/// 32 activation bytes: per token, the 16-bit sums (two per row) of value × activation over
/// the block (at most 8 × 2 × 15 × 128 per lane: no overflow).
///
/// # Safety
/// AVX2 present; `chunks` points to 128 bytes and each `ys[t]` to 32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn nibble_dots<const T: usize>(chunks: *const u8, ys: [*const u8; T]) -> [__m256i; T] {
    let m4 = _mm256_set1_epi8(0x0f);
    let mut acc16 = [_mm256_setzero_si256(); T];
    for c in 0..4 {
        // SAFETY: chunk c (32 bytes) is inside the 128 (caller's contract).
        let v = unsafe { load32(chunks.add(32 * c)) };
        let lo = _mm256_and_si256(v, m4);
        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), m4);
        for t in 0..T {
            // SAFETY: columns 8c..8c + 8 of token t's 32 bytes.
            let (ylo, yhi) = unsafe {
                let q = ys[t].add(8 * c);
                (
                    _mm256_set1_epi32(q.cast::<i32>().read_unaligned()),
                    _mm256_set1_epi32(q.add(4).cast::<i32>().read_unaligned()),
                )
            };
            acc16[t] = _mm256_add_epi16(acc16[t], _mm256_maddubs_epi16(lo, ylo));
            acc16[t] = _mm256_add_epi16(acc16[t], _mm256_maddubs_epi16(hi, yhi));
        }
    }
    acc16
}

/// Each token's eight row results, out of their registers.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn rows_of<const T: usize>(acc: [__m256; T]) -> [[f32; X8]; T] {
    std::array::from_fn(|t| {
        let mut o = [0f32; X8];
        // SAFETY: `o` holds eight f32; unaligned store.
        unsafe { _mm256_storeu_ps(o.as_mut_ptr(), acc[t]) };
        o
    })
}

/// The little-endian f16 at `p` as f32 in all eight lanes.
///
/// # Safety
/// `p` points to two readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16_broadcast(p: *const u8) -> __m256 {
    // SAFETY: two bytes at `p` (caller's contract); unaligned read.
    _mm256_cvtph_ps(_mm_set1_epi16(unsafe { p.cast::<i16>().read_unaligned() }))
}

/// Token activations' `d` and `s` of block `b` in all lanes, from the `f32` copies that
/// `crate::repack::quantize_q8_1_with_scales` appends after the `nb` `Q8_1` blocks (the same
/// values as the blocks' `f16`s, without a conversion per block and token).
///
/// # Safety
/// `y` holds `nb` `Q8_1` blocks followed by `nb` `[d, s]: f32` pairs, and `b < nb`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q8_1_scales(y: *const u8, nb: usize, b: usize) -> (__m256, __m256) {
    // SAFETY: the pair of block b lies inside the scales (caller's contract); unaligned reads.
    unsafe {
        let p = y.add(nb * q8_1::TYPE_SIZE + 8 * b).cast::<f32>();
        (
            _mm256_set1_ps(p.read_unaligned()),
            _mm256_set1_ps(p.add(1).read_unaligned()),
        )
    }
}

/// Bit `I` of every byte of `h` moved to bit 4 (the fifth bit of a `Q5_0` value), others 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn fifth_bit<const I: i32>(h: __m256i) -> __m256i {
    let m = _mm256_set1_epi8(0x10);
    // 16-bit shifts by at most 4 keep bit 4 of each byte inside its byte.
    let moved = match I {
        0 => _mm256_slli_epi16::<4>(h),
        1 => _mm256_slli_epi16::<3>(h),
        2 => _mm256_slli_epi16::<2>(h),
        3 => _mm256_slli_epi16::<1>(h),
        4 => h,
        5 => _mm256_srli_epi16::<1>(h),
        6 => _mm256_srli_epi16::<2>(h),
        _ => _mm256_srli_epi16::<3>(h),
    };
    _mm256_and_si256(moved, m)
}

/// # Safety
/// AVX2/FMA/F16C present; `w` holds `nb` Q5_0×8 blocks and each `y[t]` `nb` `Q8_0` blocks
/// followed by their `nb` sums.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_0_x8<const T: usize>(nb: usize, w: *const u8, y: [*const u8; T]) -> [[f32; X8]; T] {
    let m4 = _mm256_set1_epi8(0x0f);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); T];
    for b in 0..nb {
        // SAFETY: block b of the group and of every token is in bounds (caller's contract).
        let wb = unsafe { w.add(b * Q50_X8_BLOCK) };
        // SAFETY: the fifth bits (32 bytes) at 144.
        let h = unsafe { load32(wb.add(144)) };
        let mut sumi = [_mm256_setzero_si256(); T];
        // Two halves of two chunks each: at most 4 × 2 products of 31 × 127 per 16-bit lane.
        for half in 0..2 {
            let mut acc16 = [_mm256_setzero_si256(); T];
            for c in 2 * half..2 * half + 2 {
                // SAFETY: chunk c (32 bytes) at 16 + 32c.
                let v = unsafe { load32(wb.add(16 + 32 * c)) };
                let (hl, hh) = match c {
                    0 => (fifth_bit::<0>(h), fifth_bit::<1>(h)),
                    1 => (fifth_bit::<2>(h), fifth_bit::<3>(h)),
                    2 => (fifth_bit::<4>(h), fifth_bit::<5>(h)),
                    _ => (fifth_bit::<6>(h), fifth_bit::<7>(h)),
                };
                let lo = _mm256_or_si256(_mm256_and_si256(v, m4), hl);
                let hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(v), m4), hh);
                for t in 0..T {
                    // SAFETY: columns 8c..8c + 8 of token t's block b (qs at 2).
                    let (ylo, yhi) = unsafe {
                        let q = y[t].add(b * q8_0::TYPE_SIZE + 2 + 8 * c);
                        (
                            _mm256_set1_epi32(q.cast::<i32>().read_unaligned()),
                            _mm256_set1_epi32(q.add(4).cast::<i32>().read_unaligned()),
                        )
                    };
                    acc16[t] = _mm256_add_epi16(acc16[t], _mm256_maddubs_epi16(lo, ylo));
                    acc16[t] = _mm256_add_epi16(acc16[t], _mm256_maddubs_epi16(hi, yhi));
                }
            }
            for t in 0..T {
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(acc16[t], ones));
            }
        }
        // SAFETY: d[8] (f16) at 0.
        let d = unsafe { _mm256_cvtph_ps(load16(wb)) };
        for t in 0..T {
            // SAFETY: token t's block b scale (f16 at its start) and sum (i16 after all blocks).
            let (dt, sum16) = unsafe {
                let blk = y[t].add(b * q8_0::TYPE_SIZE);
                let s = y[t]
                    .add(nb * q8_0::TYPE_SIZE + 2 * b)
                    .cast::<i16>()
                    .read_unaligned();
                (
                    f16_broadcast(blk),
                    _mm256_set1_epi32(16 * i32::from(i16::from_le(s))),
                )
            };
            let dot = _mm256_sub_epi32(sumi[t], sum16);
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, dt), _mm256_cvtepi32_ps(dot), acc[t]);
        }
    }
    rows_of(acc)
}

/// # Safety
/// AVX2/FMA/F16C present; `w` holds `nb` Q4_1×8 blocks and each `y[t]` `nb` `Q8_1` blocks
/// followed by their `nb` `[d, s]: f32` pairs.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_1_x8<const T: usize>(nb: usize, w: *const u8, y: [*const u8; T]) -> [[f32; X8]; T] {
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); T];
    for b in 0..nb {
        // SAFETY: block b of the group and of every token is in bounds (caller's contract).
        let wb = unsafe { w.add(b * Q41_X8_BLOCK) };
        // SAFETY: the chunks at 32 and each token's 32 values (qs at 4 of its block b).
        let acc16 =
            unsafe { nibble_dots(wb.add(32), y.map(|p| p.add(b * q8_1::TYPE_SIZE + q8_1::QS))) };
        // SAFETY: d[8] and m[8] (f16) at 0 and 16.
        let (d, m) = unsafe {
            (
                _mm256_cvtph_ps(load16(wb)),
                _mm256_cvtph_ps(load16(wb.add(16))),
            )
        };
        for t in 0..T {
            // SAFETY: token t's block-b scales (two f32 after its nb blocks).
            let (dt, st) = unsafe { q8_1_scales(y[t], nb, b) };
            let dot = _mm256_madd_epi16(acc16[t], ones);
            let block = _mm256_fmadd_ps(
                _mm256_mul_ps(d, dt),
                _mm256_cvtepi32_ps(dot),
                _mm256_mul_ps(m, st),
            );
            acc[t] = _mm256_add_ps(acc[t], block);
        }
    }
    rows_of(acc)
}

/// # Safety
/// AVX2/FMA/F16C present; `w` holds `nb` Q8_0×8 blocks and each `y[t]` `nb` `Q8_0` blocks (and their sums, unread here).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_0_x8<const T: usize>(nb: usize, w: *const u8, y: [*const u8; T]) -> [[f32; X8]; T] {
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); T];
    for b in 0..nb {
        // SAFETY: block b of the group and of every token is in bounds (caller's contract).
        let wb = unsafe { w.add(b * Q80_X8_BLOCK) };
        let mut sumi = [_mm256_setzero_si256(); T];
        for g in 0..8 {
            // SAFETY: group g (32 bytes) at 16 + 32g.
            let v = unsafe { load32(wb.add(16 + 32 * g)) };
            let av = _mm256_sign_epi8(v, v);
            for t in 0..T {
                // SAFETY: columns 4g..4g + 4 of token t's block b (qs at 2).
                let yv = unsafe {
                    let q = y[t].add(b * q8_0::TYPE_SIZE + 2 + 4 * g);
                    _mm256_set1_epi32(q.cast::<i32>().read_unaligned())
                };
                let p = _mm256_maddubs_epi16(av, _mm256_sign_epi8(yv, v));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, ones));
            }
        }
        // SAFETY: d[8] (f16) at 0.
        let d = unsafe { _mm256_cvtph_ps(load16(wb)) };
        for t in 0..T {
            // SAFETY: token t's block b scale (f16 at its start).
            let dt = unsafe {
                let blk = y[t].add(b * q8_0::TYPE_SIZE);
                f16_broadcast(blk)
            };
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, dt), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
        }
    }
    rows_of(acc)
}

/// # Safety
/// AVX2/FMA/F16C present; `w` holds `nb` Q4_0×8 blocks and each `y[t]` `nb` `Q8_0` blocks
/// followed by their `nb` sums.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_0_x8<const T: usize>(nb: usize, w: *const u8, y: [*const u8; T]) -> [[f32; X8]; T] {
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); T];
    for b in 0..nb {
        // SAFETY: block b of the group and of every token is in bounds (caller's contract).
        let wb = unsafe { w.add(b * Q40_X8_BLOCK) };
        // SAFETY: the chunks at 16 and each token's 32 values (qs at 2 of its block b).
        let acc16 = unsafe { nibble_dots(wb.add(16), y.map(|p| p.add(b * q8_0::TYPE_SIZE + 2))) };
        // SAFETY: d[8] (f16) at 0.
        let d = unsafe { _mm256_cvtph_ps(load16(wb)) };
        for t in 0..T {
            // SAFETY: token t's block b scale (f16 at its start) and sum (i16 after all blocks).
            let (dt, sum8) = unsafe {
                let blk = y[t].add(b * q8_0::TYPE_SIZE);
                let s = y[t]
                    .add(nb * q8_0::TYPE_SIZE + 2 * b)
                    .cast::<i16>()
                    .read_unaligned();
                (
                    f16_broadcast(blk),
                    _mm256_set1_epi32(8 * i32::from(i16::from_le(s))),
                )
            };
            let dot = _mm256_sub_epi32(_mm256_madd_epi16(acc16[t], ones), sum8);
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, dt), _mm256_cvtepi32_ps(dot), acc[t]);
        }
    }
    rows_of(acc)
}

/// # Safety
/// AVX2/FMA/F16C present; `w` holds `nb` Q4_K×8 blocks and each `y[t]` `nb` `Q8_K` blocks.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_k_x8<const T: usize>(nb: usize, w: *const u8, y: [*const u8; T]) -> [[f32; X8]; T] {
    let m4 = _mm256_set1_epi8(0x0f);
    let mut acc = [_mm256_setzero_ps(); T];
    let mut accm = [_mm256_setzero_ps(); T];
    for b in 0..nb {
        // SAFETY: block b of the group and of every token is in bounds (caller's contract);
        // every offset below stays inside its block (see `crate::repack` for the layout).
        let wb = unsafe { w.add(b * Q4K_X8_BLOCK) };
        let yb: [*const u8; T] = std::array::from_fn(|t| unsafe { y[t].add(b * q8_k::TYPE_SIZE) });
        let mut sumi = [_mm256_setzero_si256(); T];
        for s in 0..8 {
            // Eight rows' scales of sub-block s, each repeated for its two 16-bit lanes.
            // SAFETY: 8 bytes at 32 + 8s.
            let sc = unsafe { _mm_loadl_epi64(wb.add(32 + 8 * s) as *const __m128i) };
            let scales = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(sc, sc));
            let mut acc16 = [_mm256_setzero_si256(); T];
            for c in 4 * s..4 * s + 4 {
                // SAFETY: chunk c (32 bytes) at 160 + 32c.
                let v = unsafe { load32(wb.add(160 + 32 * c)) };
                let lo = _mm256_and_si256(v, m4);
                let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), m4);
                for t in 0..T {
                    // SAFETY: columns 8c..8c + 8 of token t's block (qs at 4).
                    let (ylo, yhi) = unsafe {
                        let q = yb[t].add(q8_k::QS + 8 * c);
                        (
                            _mm256_set1_epi32(q.cast::<i32>().read_unaligned()),
                            _mm256_set1_epi32(q.add(4).cast::<i32>().read_unaligned()),
                        )
                    };
                    acc16[t] = _mm256_add_epi16(acc16[t], _mm256_maddubs_epi16(lo, ylo));
                    acc16[t] = _mm256_add_epi16(acc16[t], _mm256_maddubs_epi16(hi, yhi));
                }
            }
            for t in 0..T {
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(acc16[t], scales));
            }
        }
        // SAFETY: d[8] at 0 and dmin[8] at 16 (f16).
        let (d, dmin) = unsafe {
            (
                _mm256_cvtph_ps(load16(wb)),
                _mm256_cvtph_ps(load16(wb.add(16))),
            )
        };
        for t in 0..T {
            // Sub-block sums of the activations: B[s] = bsums[2s] + bsums[2s + 1].
            // SAFETY: d (f32) at 0 and bsums (16 × i16) at BSUMS of token t's block.
            let (dt, bs) = unsafe {
                let bsums = load32(yb[t].add(q8_k::BSUMS));
                (
                    _mm256_set1_ps(yb[t].cast::<f32>().read_unaligned()),
                    _mm_hadd_epi16(
                        _mm256_castsi256_si128(bsums),
                        _mm256_extracti128_si256::<1>(bsums),
                    ),
                )
            };
            let mut summ = _mm256_setzero_si256();
            macro_rules! pair {
                ($p:literal) => {{
                    // SAFETY: mins of sub-blocks 2p, 2p + 1 (16 bytes) at 96 + 16p.
                    let m = unsafe { _mm256_cvtepu8_epi16(load16(wb.add(96 + 16 * $p))) };
                    let bp = _mm256_broadcastd_epi32(_mm_shuffle_epi32::<{ $p * 0x55 }>(bs));
                    summ = _mm256_add_epi32(summ, _mm256_madd_epi16(m, bp));
                }};
            }
            pair!(0);
            pair!(1);
            pair!(2);
            pair!(3);
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, dt), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
            accm[t] = _mm256_fmadd_ps(_mm256_mul_ps(dmin, dt), _mm256_cvtepi32_ps(summ), accm[t]);
        }
    }
    rows_of(std::array::from_fn(|t| _mm256_sub_ps(acc[t], accm[t])))
}

/// The four activation bytes at `p` in all eight 32-bit lanes.
///
/// # Safety
/// `p` points to four readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bcast4(p: *const u8) -> __m256i {
    // SAFETY: four bytes at `p` (caller's contract); unaligned read.
    _mm256_set1_epi32(unsafe { p.cast::<i32>().read_unaligned() })
}

/// The four six-bit values of sub-block `s` of a Q6_K×8 block (`v0`, `v1`: its two chunks of
/// low nibbles, `h`: its chunk of high bits), for columns `16s + 4j + i` in `[j]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn q6_k_values(v0: __m256i, v1: __m256i, h: __m256i) -> [__m256i; 4] {
    let m4 = _mm256_set1_epi8(0x0f);
    let m3 = _mm256_set1_epi8(0x30);
    // 16-bit shifts by at most 4: the bits a shift moves across a byte boundary are masked off.
    [
        _mm256_or_si256(
            _mm256_and_si256(v0, m4),
            _mm256_and_si256(_mm256_slli_epi16::<4>(h), m3),
        ),
        _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16::<4>(v0), m4),
            _mm256_and_si256(_mm256_slli_epi16::<2>(h), m3),
        ),
        _mm256_or_si256(_mm256_and_si256(v1, m4), _mm256_and_si256(h, m3)),
        _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16::<4>(v1), m4),
            _mm256_and_si256(_mm256_srli_epi16::<2>(h), m3),
        ),
    ]
}

/// # Safety
/// AVX2/FMA/F16C present; `w` holds `nb` Q6_K×8 blocks and each `y[t]` `nb` `Q8_K` blocks.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6_k_x8<const T: usize>(nb: usize, w: *const u8, y: [*const u8; T]) -> [[f32; X8]; T] {
    // Per 32-bit lane (row), the i16 scale of the even (or odd) sub-block of a pair, twice.
    let even = _mm256_setr_epi8(
        0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13, 0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12,
        13, 12, 13,
    );
    let odd = _mm256_add_epi8(even, _mm256_set1_epi8(2));
    let mut acc = [_mm256_setzero_ps(); T];
    for b in 0..nb {
        // SAFETY: block b of the group and of every token is in bounds (caller's contract);
        // every offset below stays inside its block (see `crate::repack` for the layout).
        let wb = unsafe { w.add(b * Q6K_X8_BLOCK) };
        let yb: [*const u8; T] = std::array::from_fn(|t| unsafe { y[t].add(b * q8_k::TYPE_SIZE) });
        let mut sumi = [_mm256_setzero_si256(); T];
        let mut summ = [_mm256_setzero_si256(); T];
        for p in 0..8 {
            // Eight rows' scales of sub-blocks 2p and 2p + 1, as i16 lanes [r][2].
            // SAFETY: 16 bytes at 16 + 16p.
            let sc = unsafe { _mm256_cvtepi8_epi16(load16(wb.add(16 + 16 * p))) };
            for (e, pick) in [even, odd].into_iter().enumerate() {
                let s = 2 * p + e;
                let scales = _mm256_shuffle_epi8(sc, pick);
                // SAFETY: sub-block s's two low-nibble chunks and its high bits (96 bytes) at
                // 144 + 96s.
                let q = unsafe {
                    q6_k_values(
                        load32(wb.add(q6k_low(2 * s))),
                        load32(wb.add(q6k_low(2 * s + 1))),
                        load32(wb.add(q6k_high(s))),
                    )
                };
                for t in 0..T {
                    // SAFETY: columns 16s..16s + 16 of token t's block (qs at QS).
                    let ys = unsafe { yb[t].add(q8_k::QS + 16 * s) };
                    // SAFETY: as above, four bytes each.
                    let yv = unsafe {
                        [
                            bcast4(ys),
                            bcast4(ys.add(4)),
                            bcast4(ys.add(8)),
                            bcast4(ys.add(12)),
                        ]
                    };
                    // Two products of at most 63 × 128 per 16-bit lane and maddubs, so two
                    // maddubs per sum (≤ 32256) before widening.
                    let lo = _mm256_add_epi16(
                        _mm256_maddubs_epi16(q[0], yv[0]),
                        _mm256_maddubs_epi16(q[1], yv[1]),
                    );
                    let hi = _mm256_add_epi16(
                        _mm256_maddubs_epi16(q[2], yv[2]),
                        _mm256_maddubs_epi16(q[3], yv[3]),
                    );
                    let dot = _mm256_add_epi32(
                        _mm256_madd_epi16(lo, scales),
                        _mm256_madd_epi16(hi, scales),
                    );
                    sumi[t] = _mm256_add_epi32(sumi[t], dot);
                }
            }
            for t in 0..T {
                // SAFETY: bsums[2p], bsums[2p + 1] (i16) at BSUMS + 4p of token t's block.
                let bp = unsafe { bcast4(yb[t].add(q8_k::BSUMS + 4 * p)) };
                summ[t] = _mm256_add_epi32(summ[t], _mm256_madd_epi16(sc, bp));
            }
        }
        // SAFETY: d[8] (f16) at 0.
        let d = unsafe { _mm256_cvtph_ps(load16(wb)) };
        for t in 0..T {
            // SAFETY: token t's d (f32) at the start of its block.
            let dt = unsafe { _mm256_set1_ps(yb[t].cast::<f32>().read_unaligned()) };
            let dot = _mm256_sub_epi32(sumi[t], _mm256_slli_epi32::<5>(summ[t]));
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, dt), _mm256_cvtepi32_ps(dot), acc[t]);
        }
    }
    rows_of(acc)
}

/// # Safety
/// AVX2/FMA/F16C present; `w` holds `nb` Q5_K×8 blocks and each `y[t]` `nb` `Q8_K` blocks.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_k_x8<const T: usize>(nb: usize, w: *const u8, y: [*const u8; T]) -> [[f32; X8]; T] {
    let m4 = _mm256_set1_epi8(0x0f);
    let mut acc = [_mm256_setzero_ps(); T];
    let mut accm = [_mm256_setzero_ps(); T];
    for b in 0..nb {
        // SAFETY: block b of the group and of every token is in bounds (caller's contract);
        // every offset below stays inside its block (see `crate::repack` for the layout).
        let wb = unsafe { w.add(b * Q5K_X8_BLOCK) };
        let yb: [*const u8; T] = std::array::from_fn(|t| unsafe { y[t].add(b * q8_k::TYPE_SIZE) });
        let mut sumi = [_mm256_setzero_si256(); T];
        for s in 0..8 {
            // Eight rows' scales of sub-block s, each repeated for its two 16-bit lanes.
            // SAFETY: 8 bytes at 32 + 8s.
            let sc = unsafe { _mm_loadl_epi64(wb.add(32 + 8 * s) as *const __m128i) };
            let scales = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(sc, sc));
            // SAFETY: the fifth bits of sub-block s (32 bytes), after its four chunks.
            let h = unsafe { load32(wb.add(q5k_fifth(s))) };
            // Two halves of two chunks each: at most 4 × 2 products of 31 × 128 per 16-bit lane.
            for half in 0..2 {
                let mut acc16 = [_mm256_setzero_si256(); T];
                for k in 2 * half..2 * half + 2 {
                    let c = 4 * s + k;
                    // SAFETY: chunk c (32 bytes) of sub-block s.
                    let v = unsafe { load32(wb.add(q5k_chunk(c))) };
                    let (hl, hh) = match k {
                        0 => (fifth_bit::<0>(h), fifth_bit::<1>(h)),
                        1 => (fifth_bit::<2>(h), fifth_bit::<3>(h)),
                        2 => (fifth_bit::<4>(h), fifth_bit::<5>(h)),
                        _ => (fifth_bit::<6>(h), fifth_bit::<7>(h)),
                    };
                    let lo = _mm256_or_si256(_mm256_and_si256(v, m4), hl);
                    let hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(v), m4), hh);
                    for t in 0..T {
                        // SAFETY: columns 8c..8c + 8 of token t's block (qs at QS).
                        let (ylo, yhi) = unsafe {
                            let q = yb[t].add(q8_k::QS + 8 * c);
                            (bcast4(q), bcast4(q.add(4)))
                        };
                        acc16[t] = _mm256_add_epi16(acc16[t], _mm256_maddubs_epi16(lo, ylo));
                        acc16[t] = _mm256_add_epi16(acc16[t], _mm256_maddubs_epi16(hi, yhi));
                    }
                }
                for t in 0..T {
                    sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(acc16[t], scales));
                }
            }
        }
        // SAFETY: d[8] at 0 and dmin[8] at 16 (f16).
        let (d, dmin) = unsafe {
            (
                _mm256_cvtph_ps(load16(wb)),
                _mm256_cvtph_ps(load16(wb.add(16))),
            )
        };
        for t in 0..T {
            // SAFETY: token t's block and the group's block, as in `q4_k_x8`.
            let (dt, summ) = unsafe { k_mins(wb, yb[t]) };
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, dt), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
            accm[t] = _mm256_fmadd_ps(_mm256_mul_ps(dmin, dt), _mm256_cvtepi32_ps(summ), accm[t]);
        }
    }
    rows_of(std::array::from_fn(|t| _mm256_sub_ps(acc[t], accm[t])))
}

/// A token's `d` in all lanes and, per row, `Σ_s m_s (bsums[2s] + bsums[2s + 1])` for one
/// Q4_K×8 or Q5_K×8 block (`wb`, mins at 96) and the token's `Q8_K` block (`yb`).
///
/// # Safety
/// AVX2/FMA/F16C present; `wb` points to a Q4_K×8 or Q5_K×8 block, `yb` to a `Q8_K` block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn k_mins(wb: *const u8, yb: *const u8) -> (__m256, __m256i) {
    // Sub-block sums of the activations: B[s] = bsums[2s] + bsums[2s + 1].
    // SAFETY: d (f32) at 0 and bsums (16 × i16) at BSUMS of the token's block.
    let (dt, bs) = unsafe {
        let bsums = load32(yb.add(q8_k::BSUMS));
        (
            _mm256_set1_ps(yb.cast::<f32>().read_unaligned()),
            _mm_hadd_epi16(
                _mm256_castsi256_si128(bsums),
                _mm256_extracti128_si256::<1>(bsums),
            ),
        )
    };
    let mut summ = _mm256_setzero_si256();
    macro_rules! pair {
        ($p:literal) => {{
            // SAFETY: mins of sub-blocks 2p, 2p + 1 (16 bytes) at 96 + 16p.
            let m = unsafe { _mm256_cvtepu8_epi16(load16(wb.add(96 + 16 * $p))) };
            let bp = _mm256_broadcastd_epi32(_mm_shuffle_epi32::<{ $p * 0x55 }>(bs));
            summ = _mm256_add_epi32(summ, _mm256_madd_epi16(m, bp));
        }};
    }
    pair!(0);
    pair!(1);
    pair!(2);
    pair!(3);
    (dt, summ)
}
