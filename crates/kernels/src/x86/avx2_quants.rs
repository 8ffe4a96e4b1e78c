//! AVX2 dot products for `Q4_0`, `Q5_0`, `Q5_1` and the K-quants (`Q2_K`..`Q6_K`).
//!
//! Each kernel follows the AVX2 branch of ggml's `ggml_vec_dot_*` in
//! `ggml-cpu/arch/x86/quants.c`: the same bytes meet in the same saturating 8/16-bit
//! instructions, every 32-bit lane ends up holding the same integer sum, and the float work
//! (scale products, per-lane FMAs, the horizontal reductions) happens in the same order, so the
//! results are llama.cpp's to the bit. Where ggml keeps a scalar running sum beside the vectors
//! (`summs` of `Q5_1` and `Q5_K`), llama.cpp's `-march=native` GCC build contracts `s += a * b`
//! into a fused multiply-add, and so do these kernels.
//!
//! Integer intermediates that only feed an exact sum may be formed differently from ggml's
//! (the high-bit planes of `Q3_K`/`Q5_K` come from a compare instead of a variable shift) as
//! long as every value entering `maddubs`/`madd` is the same.
//!
//! Each public kernel checks up front that both rows hold `n / block_size` whole blocks, then
//! walks them with raw pointers.

use std::arch::x86_64::*;

use owl_quant::{
    mxfp4, q2_k, q3_k, q4_0, q4_k, q5_0, q5_1, q5_k, q6_k, q8_0, q8_1, q8_k, GgmlType,
};

use super::common::*;
use crate::Kernels;

pub(super) fn register(k: &mut Kernels) {
    k.set_vec_dot(GgmlType::Q4_0, vec_dot_q4_0_q8_0, "q4_0·q8_0/avx2");
    k.set_vec_dot(GgmlType::Q5_0, vec_dot_q5_0_q8_0, "q5_0·q8_0/avx2");
    k.set_vec_dot(GgmlType::Q5_1, vec_dot_q5_1_q8_1, "q5_1·q8_1/avx2");
    k.set_vec_dot(GgmlType::Q2_K, vec_dot_q2_k_q8_k, "q2_k·q8_k/avx2");
    k.set_vec_dot(GgmlType::Q3_K, vec_dot_q3_k_q8_k, "q3_k·q8_k/avx2");
    k.set_vec_dot(GgmlType::Q4_K, vec_dot_q4_k_q8_k, "q4_k·q8_k/avx2");
    k.set_vec_dot(GgmlType::MXFP4, vec_dot_mxfp4_q8_0, "mxfp4·q8_0/avx2");
    k.set_vec_dot_x4(GgmlType::Q6_K, vec_dot_q6_k_q8_k_x4, "q6_k·q8_k x4/avx2");
    k.set_vec_dot_x4(GgmlType::Q4_K, vec_dot_q4_k_q8_k_x4, "q4_k·q8_k x4/avx2");
    k.set_vec_dot(GgmlType::Q5_K, vec_dot_q5_k_q8_k, "q5_k·q8_k/avx2");
    k.set_vec_dot(GgmlType::Q6_K, vec_dot_q6_k_q8_k, "q6_k·q8_k/avx2");
}

/// Whole blocks in `n` elements, after checking that `w` and `a` hold that many blocks of
/// `w_size` and `a_size` bytes.
fn blocks(n: usize, block: usize, w: &[u8], w_size: usize, a: &[u8], a_size: usize) -> usize {
    let nb = n / block;
    let covers = |len: usize, size: usize| nb.checked_mul(size).is_some_and(|need| len >= need);
    assert!(
        covers(w.len(), w_size) && covers(a.len(), a_size),
        "vec_dot: rows of {} and {} bytes are shorter than {nb} blocks",
        w.len(),
        a.len()
    );
    nb
}

// ---------------------------------------------------------------------------------------------
// Helpers (the same building blocks as ggml's x86 helpers).

/// `pshufb` control that broadcasts 16-bit element `lo` across the low 128-bit lane and `hi`
/// across the high one (ggml's `get_scale_shuffle_q3k(i)` is `pair_shuffle(2i, 2i + 1)`, its
/// `get_scale_shuffle_k4(i)` is `pair_shuffle(i, i)`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn pair_shuffle(lo: usize, hi: usize) -> __m256i {
    let pick = |e: usize| _mm_set1_epi16((((2 * e + 1) << 8) | (2 * e)) as i16);
    _mm256_insertf128_si256(_mm256_castsi128_si256(pick(lo)), pick(hi), 1)
}

/// ggml's `get_scale_shuffle(i)`: byte `2i` eight times, then byte `2i + 1` eight times.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn byte_pair_shuffle(i: usize) -> __m128i {
    let rep = |b: usize| (0x0101_0101_0101_0101u64 * b as u64) as i64;
    _mm_set_epi64x(rep(2 * i + 1), rep(2 * i))
}

/// Bytes equal to `v` where `bits & mask` equals `mask` (one bit per byte), 0 elsewhere.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn bit_plane(bits: __m256i, mask: __m256i, v: i8) -> __m256i {
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(bits, mask), mask);
    _mm256_and_si256(set, _mm256_set1_epi8(v))
}

/// The eight 6-bit scales and eight 6-bit mins of a `Q4_K`/`Q5_K` block (12 packed bytes at
/// `p`) as 16 bytes: scales 0-7, then mins 0-7 (ggml's `utmp` shuffle).
///
/// # Safety
/// `p` must point to 12 readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn k4_scales_mins(p: *const u8) -> __m128i {
    const KMASK1: u32 = 0x3f3f_3f3f;
    const KMASK2: u32 = 0x0f0f_0f0f;
    const KMASK3: u32 = 0x0303_0303;
    // SAFETY: forwarded from the caller (bytes 0..12).
    let (u0, u1, u2) = unsafe { (u32_at(p), u32_at(p.add(4)), u32_at(p.add(8))) };
    let t3 = ((u2 >> 4) & KMASK2) | (((u1 >> 6) & KMASK3) << 4);
    let t2 = u1 & KMASK1;
    let t1 = (u2 & KMASK2) | (((u0 >> 6) & KMASK3) << 4);
    let t0 = u0 & KMASK1;
    _mm_set_epi32(t3 as i32, t2 as i32, t1 as i32, t0 as i32)
}

// ---------------------------------------------------------------------------------------------
// 32-element blocks.

fn vec_dot_q4_0_q8_0(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = blocks(n, 32, w, q4_0::TYPE_SIZE, a, q8_0::TYPE_SIZE);
    // SAFETY: registered only after AVX2/FMA/F16C were detected; both rows hold `nb` blocks.
    unsafe { q4_0_q8_0(nb, w.as_ptr(), a.as_ptr()) }
}

/// # Safety
/// AVX2/FMA/F16C present; `x` and `y` point to `nb` `Q4_0` and `Q8_0` blocks.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_0_q8_0(nb: usize, x: *const u8, y: *const u8) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for ib in 0..nb {
        // SAFETY: block `ib < nb` of each row is in bounds; offsets stay inside the block.
        let (xb, yb) = unsafe { (x.add(ib * q4_0::TYPE_SIZE), y.add(ib * q8_0::TYPE_SIZE)) };
        // SAFETY: d at 0, 16 bytes of qs at QS (Q4_0); d at 0, 32 bytes at QS (Q8_0).
        let (dxy, qx, qy) = unsafe {
            (
                f16_pair(xb, yb),
                bytes_from_nibbles_32(xb.add(q4_0::QS)),
                load32(yb.add(q8_0::QS)),
            )
        };
        let d = _mm256_set1_ps(lane0(dxy) * lane1(dxy));
        let qx = _mm256_sub_epi8(qx, _mm256_set1_epi8(8));
        let q = mul_sum_i8_pairs_float(qx, qy);
        acc = _mm256_fmadd_ps(d, q, acc);
    }
    hsum_float_8(acc)
}

fn vec_dot_q5_0_q8_0(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = blocks(n, 32, w, q5_0::TYPE_SIZE, a, q8_0::TYPE_SIZE);
    // SAFETY: registered only after AVX2/FMA/F16C were detected; both rows hold `nb` blocks.
    unsafe { q5_0_q8_0(nb, w.as_ptr(), a.as_ptr()) }
}

/// # Safety
/// AVX2/FMA/F16C present; `x` and `y` point to `nb` `Q5_0` and `Q8_0` blocks.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_0_q8_0(nb: usize, x: *const u8, y: *const u8) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for ib in 0..nb {
        // SAFETY: block `ib < nb` of each row is in bounds; offsets stay inside the block.
        let (xb, yb) = unsafe { (x.add(ib * q5_0::TYPE_SIZE), y.add(ib * q8_0::TYPE_SIZE)) };
        // SAFETY: d at 0, qh (4 bytes) at QH, qs (16 bytes) at QS; Q8_0 as above.
        let (dxy, qx, hi, qy) = unsafe {
            (
                f16_pair(xb, yb),
                bytes_from_nibbles_32(xb.add(q5_0::QS)),
                bytes_from_bits_32(xb.add(q5_0::QH)),
                load32(yb.add(q8_0::QS)),
            )
        };
        let d = _mm256_set1_ps(lane0(dxy) * lane1(dxy));
        // A clear fifth bit means q - 16 < 0: set the byte's top nibble to make it negative.
        let hi = _mm256_andnot_si256(hi, _mm256_set1_epi8(0xf0u8 as i8));
        let qx = _mm256_or_si256(qx, hi);
        let q = mul_sum_i8_pairs_float(qx, qy);
        acc = _mm256_fmadd_ps(d, q, acc);
    }
    hsum_float_8(acc)
}

fn vec_dot_q5_1_q8_1(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = blocks(n, 32, w, q5_1::TYPE_SIZE, a, q8_1::TYPE_SIZE);
    // SAFETY: registered only after AVX2/FMA/F16C were detected; both rows hold `nb` blocks.
    unsafe { q5_1_q8_1(nb, w.as_ptr(), a.as_ptr()) }
}

/// # Safety
/// AVX2/FMA/F16C present; `x` and `y` point to `nb` `Q5_1` and `Q8_1` blocks.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_1_q8_1(nb: usize, x: *const u8, y: *const u8) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let mut summs = 0.0f32;
    for ib in 0..nb {
        // SAFETY: block `ib < nb` of each row is in bounds; offsets stay inside the block.
        let (xb, yb) = unsafe { (x.add(ib * q5_1::TYPE_SIZE), y.add(ib * q8_1::TYPE_SIZE)) };
        // SAFETY: d, m, qh, qs of Q5_1 and d, s, qs of Q8_1 at their offsets.
        let (dm, ds, qx, hi, qy) = unsafe {
            (
                f16x2_at(xb),
                f16x2_at(yb),
                bytes_from_nibbles_32(xb.add(q5_1::QS)),
                bytes_from_bits_32(xb.add(q5_1::QH)),
                load32(yb.add(q8_1::QS)),
            )
        };
        let (dx, mx, dy, sy) = (lane0(dm), lane1(dm), lane0(ds), lane1(ds));
        // llama.cpp's GCC build contracts `summs += m * s` into an FMA (the same bits as a
        // multiply and an add here: the product of two f16 values is exact in f32).
        summs = mx.mul_add(sy, summs);
        let hi = _mm256_and_si256(hi, _mm256_set1_epi8(0x10));
        let qx = _mm256_or_si256(qx, hi);
        let q = mul_sum_us8_pairs_float(qx, qy);
        let dxdy = _mm256_mul_ps(_mm256_set1_ps(dx), _mm256_set1_ps(dy));
        acc = _mm256_fmadd_ps(q, dxdy, acc);
    }
    hsum_float_8(acc) + summs
}

// ---------------------------------------------------------------------------------------------
// K-quants: 256-element super-blocks against Q8_K (`d: f32` at 0, `qs` at QS, `bsums` at BSUMS).

fn vec_dot_q2_k_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = blocks(n, 256, w, q2_k::TYPE_SIZE, a, q8_k::TYPE_SIZE);
    // SAFETY: registered only after AVX2/FMA/F16C were detected; both rows hold `nb` blocks.
    unsafe { q2_k_q8_k(nb, w.as_ptr(), a.as_ptr()) }
}

/// # Safety
/// AVX2/FMA/F16C present; `x` and `y` point to `nb` `Q2_K` and `Q8_K` blocks.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q2_k_q8_k(nb: usize, x: *const u8, y: *const u8) -> f32 {
    let m3 = _mm256_set1_epi8(3);
    let m4 = _mm_set1_epi8(0x0f);
    let mut acc = _mm256_setzero_ps();
    for i in 0..nb {
        // SAFETY: block `i < nb` of each row is in bounds; every offset below stays inside it
        // (Q2_K: scales 0..16, qs 16..80, d 80..82, dmin 82..84; Q8_K: d 0, qs 4..260, bsums 260..292).
        let (xb, yb) = unsafe { (x.add(i * q2_k::TYPE_SIZE), y.add(i * q8_k::TYPE_SIZE)) };
        // SAFETY: as above.
        let (yd, xdm, mins_and_scales, bsums) = unsafe {
            (
                f32_at(yb),
                f16x2_at(xb.add(q2_k::D)),
                load16(xb),
                load32(yb.add(q8_k::BSUMS)),
            )
        };
        let d = yd * lane0(xdm);
        let dmin = -yd * lane1(xdm);

        let scales8 = _mm_and_si128(mins_and_scales, m4);
        let mins8 = _mm_and_si128(_mm_srli_epi16(mins_and_scales, 4), m4);
        let mins = _mm256_cvtepi8_epi16(mins8);
        let prod = _mm256_madd_epi16(mins, bsums);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(prod), acc);

        let all_scales = _mm256_cvtepi8_epi16(scales8);
        let l_scales = _mm256_castsi256_si128(all_scales);
        let h_scales = _mm256_extracti128_si256(all_scales, 1);
        let scales = [
            _mm256_set_m128i(l_scales, l_scales),
            _mm256_set_m128i(h_scales, h_scales),
        ];

        let mut sumi = _mm256_setzero_si256();
        for (j, sc) in scales.iter().enumerate() {
            // SAFETY: qs chunk j (32 bytes) and Q8_K quants 128j..128j + 128 are in the block.
            let (q2bits, q8_0, q8_1, q8_2, q8_3) = unsafe {
                let q8 = yb.add(q8_k::QS + 128 * j);
                (
                    load32(xb.add(q2_k::QS + 32 * j)),
                    load32(q8),
                    load32(q8.add(32)),
                    load32(q8.add(64)),
                    load32(q8.add(96)),
                )
            };
            let q2_0 = _mm256_and_si256(q2bits, m3);
            let q2_1 = _mm256_and_si256(_mm256_srli_epi16(q2bits, 2), m3);
            let q2_2 = _mm256_and_si256(_mm256_srli_epi16(q2bits, 4), m3);
            let q2_3 = _mm256_and_si256(_mm256_srli_epi16(q2bits, 6), m3);

            let p0 = _mm256_maddubs_epi16(q2_0, q8_0);
            let p1 = _mm256_maddubs_epi16(q2_1, q8_1);
            let p2 = _mm256_maddubs_epi16(q2_2, q8_2);
            let p3 = _mm256_maddubs_epi16(q2_3, q8_3);

            let p0 = _mm256_madd_epi16(_mm256_shuffle_epi8(*sc, pair_shuffle(0, 1)), p0);
            let p1 = _mm256_madd_epi16(_mm256_shuffle_epi8(*sc, pair_shuffle(2, 3)), p1);
            let p2 = _mm256_madd_epi16(_mm256_shuffle_epi8(*sc, pair_shuffle(4, 5)), p2);
            let p3 = _mm256_madd_epi16(_mm256_shuffle_epi8(*sc, pair_shuffle(6, 7)), p3);

            let p01 = _mm256_add_epi32(p0, p1);
            let p23 = _mm256_add_epi32(p2, p3);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p01, p23));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_float_8(acc)
}

fn vec_dot_q3_k_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = blocks(n, 256, w, q3_k::TYPE_SIZE, a, q8_k::TYPE_SIZE);
    // SAFETY: registered only after AVX2/FMA/F16C were detected; both rows hold `nb` blocks.
    unsafe { q3_k_q8_k(nb, w.as_ptr(), a.as_ptr()) }
}

/// # Safety
/// AVX2/FMA/F16C present; `x` and `y` point to `nb` `Q3_K` and `Q8_K` blocks.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q3_k_q8_k(nb: usize, x: *const u8, y: *const u8) -> f32 {
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let m3 = _mm256_set1_epi8(3);
    let m32 = _mm_set1_epi8(32);
    let mut acc = _mm256_setzero_ps();
    for i in 0..nb {
        // SAFETY: block `i < nb` of each row is in bounds; every offset below stays inside it
        // (Q3_K: hmask 0..32, qs 32..96, scales 96..108, d 108..110, read as lane 1 of the four
        // bytes 106..110; Q8_K: d 0, qs 4..260).
        let (xb, yb) = unsafe { (x.add(i * q3_k::TYPE_SIZE), y.add(i * q8_k::TYPE_SIZE)) };
        // SAFETY: as above.
        let (yd, xd, a0, a1, a2, hbits) = unsafe {
            let s = xb.add(q3_k::SCALES);
            (
                f32_at(yb),
                f16x2_at(xb.add(q3_k::D - 2)),
                u32_at(s),
                u32_at(s.add(4)),
                u32_at(s.add(8)),
                load32(xb),
            )
        };
        let d = yd * lane1(xd);

        let scales128 = _mm_set_epi32(
            (((a1 >> 4) & KMASK2) | (((a2 >> 6) & KMASK1) << 4)) as i32,
            (((a0 >> 4) & KMASK2) | (((a2 >> 4) & KMASK1) << 4)) as i32,
            ((a1 & KMASK2) | (((a2 >> 2) & KMASK1) << 4)) as i32,
            ((a0 & KMASK2) | ((a2 & KMASK1) << 4)) as i32,
        );
        let scales128 = _mm_sub_epi8(scales128, m32);
        let all_scales = _mm256_cvtepi8_epi16(scales128);
        let l_scales = _mm256_castsi256_si128(all_scales);
        let h_scales = _mm256_extracti128_si256(all_scales, 1);
        let scales = [
            _mm256_set_m128i(l_scales, l_scales),
            _mm256_set_m128i(h_scales, h_scales),
        ];

        let mut sumi = _mm256_setzero_si256();
        for (j, sc) in scales.iter().enumerate() {
            // SAFETY: qs chunk j (32 bytes) and Q8_K quants 128j..128j + 128 are in the block.
            let (q3bits, q8_0, q8_1, q8_2, q8_3) = unsafe {
                let q8 = yb.add(q8_k::QS + 128 * j);
                (
                    load32(xb.add(q3_k::QS + 32 * j)),
                    load32(q8),
                    load32(q8.add(32)),
                    load32(q8.add(64)),
                    load32(q8.add(96)),
                )
            };
            // Low two bits, and 4 where the high bit is clear (subtracted below).
            let bit = |k: usize| _mm256_set1_epi8((1u8 << (4 * j + k)) as i8);
            let q3l_0 = _mm256_and_si256(q3bits, m3);
            let q3h_0 = _mm256_andnot_si256(bit_plane(hbits, bit(0), -1), _mm256_set1_epi8(4));
            let q3l_1 = _mm256_and_si256(_mm256_srli_epi16(q3bits, 2), m3);
            let q3h_1 = _mm256_andnot_si256(bit_plane(hbits, bit(1), -1), _mm256_set1_epi8(4));
            let q3l_2 = _mm256_and_si256(_mm256_srli_epi16(q3bits, 4), m3);
            let q3h_2 = _mm256_andnot_si256(bit_plane(hbits, bit(2), -1), _mm256_set1_epi8(4));
            let q3l_3 = _mm256_and_si256(_mm256_srli_epi16(q3bits, 6), m3);
            let q3h_3 = _mm256_andnot_si256(bit_plane(hbits, bit(3), -1), _mm256_set1_epi8(4));

            let q8s_0 = _mm256_maddubs_epi16(q3h_0, q8_0);
            let q8s_1 = _mm256_maddubs_epi16(q3h_1, q8_1);
            let q8s_2 = _mm256_maddubs_epi16(q3h_2, q8_2);
            let q8s_3 = _mm256_maddubs_epi16(q3h_3, q8_3);

            let p16_0 = _mm256_sub_epi16(_mm256_maddubs_epi16(q3l_0, q8_0), q8s_0);
            let p16_1 = _mm256_sub_epi16(_mm256_maddubs_epi16(q3l_1, q8_1), q8s_1);
            let p16_2 = _mm256_sub_epi16(_mm256_maddubs_epi16(q3l_2, q8_2), q8s_2);
            let p16_3 = _mm256_sub_epi16(_mm256_maddubs_epi16(q3l_3, q8_3), q8s_3);

            let p16_0 = _mm256_madd_epi16(_mm256_shuffle_epi8(*sc, pair_shuffle(0, 1)), p16_0);
            let p16_1 = _mm256_madd_epi16(_mm256_shuffle_epi8(*sc, pair_shuffle(2, 3)), p16_1);
            let p16_2 = _mm256_madd_epi16(_mm256_shuffle_epi8(*sc, pair_shuffle(4, 5)), p16_2);
            let p16_3 = _mm256_madd_epi16(_mm256_shuffle_epi8(*sc, pair_shuffle(6, 7)), p16_3);

            let p01 = _mm256_add_epi32(p16_0, p16_1);
            let p23 = _mm256_add_epi32(p16_2, p16_3);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p01, p23));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_float_8(acc)
}

fn vec_dot_q4_k_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = blocks(n, 256, w, q4_k::TYPE_SIZE, a, q8_k::TYPE_SIZE);
    // SAFETY: registered only after AVX2/FMA/F16C were detected; both rows hold `nb` blocks.
    unsafe { q4_k_q8_k(nb, w.as_ptr(), [a.as_ptr()])[0] }
}

/// Four tokens against one Q4_K row; each result is bit-identical to `vec_dot_q4_k_q8_k`
/// (the same operations per token; the weight block is unpacked once for all four).
fn vec_dot_q4_k_q8_k_x4(n: usize, w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
    let nb = n / 256;
    assert!(
        n.is_multiple_of(256)
            && w.len() >= nb * q4_k::TYPE_SIZE
            && a.iter().all(|r| r.len() >= nb * q8_k::TYPE_SIZE),
        "q4_k·q8_k x4: short rows"
    );
    // SAFETY: registered only after AVX2/FMA/F16C were detected; lengths checked above.
    unsafe { q4_k_q8_k(nb, w.as_ptr(), a.map(|r| r.as_ptr())) }
}

/// `T` tokens (1 or 4) against one Q4_K row, in ggml's AVX2 order per token.
///
/// # Safety
/// AVX2/FMA/F16C present; `x` points to `nb` `Q4_K` blocks and each `y[t]` to `nb` `Q8_K` blocks.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_k_q8_k<const T: usize>(nb: usize, x: *const u8, y: [*const u8; T]) -> [f32; T] {
    let m4 = _mm256_set1_epi8(0x0f);
    let mut acc = [_mm256_setzero_ps(); T];
    let mut acc_m = [_mm_setzero_ps(); T];
    for i in 0..nb {
        // SAFETY: block `i < nb` of each row is in bounds; every offset below stays inside it
        // (Q4_K: d 0, dmin 2, scales 4..16, qs 16..144; Q8_K: d 0, qs 4..260, bsums 260..292).
        let xb = unsafe { x.add(i * q4_k::TYPE_SIZE) };
        let yb: [*const u8; T] = std::array::from_fn(|t| {
            // SAFETY: as above.
            unsafe { y[t].add(i * q8_k::TYPE_SIZE) }
        });
        // SAFETY: as above.
        let (xdm, sm) = unsafe { (f16x2_at(xb), k4_scales_mins(xb.add(q4_k::SCALES))) };
        let mins_and_scales = _mm256_cvtepu8_epi16(sm);
        let mins = _mm256_extracti128_si256(mins_and_scales, 1);
        let mut d = [0.0f32; T];
        for t in 0..T {
            // SAFETY: as above.
            let (yd, q8sums) = unsafe { (f32_at(yb[t]), load32(yb[t].add(q8_k::BSUMS))) };
            d[t] = yd * lane0(xdm);
            let dmin = -yd * lane1(xdm);
            let q8s = _mm_hadd_epi16(
                _mm256_castsi256_si128(q8sums),
                _mm256_extracti128_si256(q8sums, 1),
            );
            let prod = _mm_madd_epi16(mins, q8s);
            acc_m[t] = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m[t]);
        }

        let sc128 = _mm256_castsi256_si128(mins_and_scales);
        let scales = _mm256_set_m128i(sc128, sc128);

        let mut sumi = [_mm256_setzero_si256(); T];
        for j in 0..4 {
            let scale_l = _mm256_shuffle_epi8(scales, pair_shuffle(2 * j, 2 * j));
            let scale_h = _mm256_shuffle_epi8(scales, pair_shuffle(2 * j + 1, 2 * j + 1));
            // SAFETY: qs chunk j (32 bytes) is in the block.
            let q4bits = unsafe { load32(xb.add(q4_k::QS + 32 * j)) };
            let q4l = _mm256_and_si256(q4bits, m4);
            let q4h = _mm256_and_si256(_mm256_srli_epi16(q4bits, 4), m4);
            for t in 0..T {
                // SAFETY: Q8_K quants 64j..64j + 64 of token t's block are in bounds.
                let (q8l, q8h) = unsafe {
                    let q8 = yb[t].add(q8_k::QS + 64 * j);
                    (load32(q8), load32(q8.add(32)))
                };
                let p16l = _mm256_madd_epi16(scale_l, _mm256_maddubs_epi16(q4l, q8l));
                let p16h = _mm256_madd_epi16(scale_h, _mm256_maddubs_epi16(q4h, q8h));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(p16l, p16h));
            }
        }
        for t in 0..T {
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d[t]), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
        }
    }
    std::array::from_fn(|t| {
        let mut m = acc_m[t];
        m = _mm_add_ps(m, _mm_movehl_ps(m, m));
        m = _mm_add_ss(m, _mm_movehdup_ps(m));
        hsum_float_8(acc[t]) + _mm_cvtss_f32(m)
    })
}

fn vec_dot_q5_k_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = blocks(n, 256, w, q5_k::TYPE_SIZE, a, q8_k::TYPE_SIZE);
    // SAFETY: registered only after AVX2/FMA/F16C were detected; both rows hold `nb` blocks.
    unsafe { q5_k_q8_k(nb, w.as_ptr(), a.as_ptr()) }
}

/// # Safety
/// AVX2/FMA/F16C present; `x` and `y` point to `nb` `Q5_K` and `Q8_K` blocks.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_k_q8_k(nb: usize, x: *const u8, y: *const u8) -> f32 {
    let m4 = _mm256_set1_epi8(0x0f);
    let mzero = _mm_setzero_si128();
    let mut acc = _mm256_setzero_ps();
    let mut summs = 0.0f32;
    for i in 0..nb {
        // SAFETY: block `i < nb` of each row is in bounds; every offset below stays inside it
        // (Q5_K: d 0, dmin 2, scales 4..16, qh 16..48, qs 48..176; Q8_K: d 0, qs 4..260,
        // bsums 260..292).
        let (xb, yb) = unsafe { (x.add(i * q5_k::TYPE_SIZE), y.add(i * q8_k::TYPE_SIZE)) };
        // SAFETY: as above.
        let (yd, xdm, sm, q8sums, hbits) = unsafe {
            (
                f32_at(yb),
                f16x2_at(xb),
                k4_scales_mins(xb.add(q5_k::SCALES)),
                load32(yb.add(q8_k::BSUMS)),
                load32(xb.add(q5_k::QH)),
            )
        };
        let d = yd * lane0(xdm);
        let dmin = -yd * lane1(xdm);

        let mins_and_scales = _mm256_cvtepu8_epi16(sm);
        let q8s = _mm_hadd_epi16(
            _mm256_castsi256_si128(q8sums),
            _mm256_extracti128_si256(q8sums, 1),
        );
        let prod = _mm_madd_epi16(_mm256_extracti128_si256(mins_and_scales, 1), q8s);
        let hsum = _mm_hadd_epi32(_mm_hadd_epi32(prod, mzero), mzero);
        // llama.cpp's GCC build contracts `summs += dmin * hsum` into one FMA.
        summs = dmin.mul_add(_mm_cvtsi128_si32(hsum) as f32, summs);

        let sc128 = _mm256_castsi256_si128(mins_and_scales);
        let scales = _mm256_set_m128i(sc128, sc128);

        let mut sumi = _mm256_setzero_si256();
        for j in 0..4 {
            let scale_0 = _mm256_shuffle_epi8(scales, pair_shuffle(2 * j, 2 * j));
            let scale_1 = _mm256_shuffle_epi8(scales, pair_shuffle(2 * j + 1, 2 * j + 1));
            // SAFETY: qs chunk j (32 bytes) and Q8_K quants 64j..64j + 64 are in the block.
            let (q5bits, q8_0, q8_1) = unsafe {
                let q8 = yb.add(q8_k::QS + 64 * j);
                (
                    load32(xb.add(q5_k::QS + 32 * j)),
                    load32(q8),
                    load32(q8.add(32)),
                )
            };
            // Fifth bits 2j and 2j + 1 of each qh byte add 16.
            let h0 = bit_plane(hbits, _mm256_set1_epi8((1u8 << (2 * j)) as i8), 16);
            let h1 = bit_plane(hbits, _mm256_set1_epi8((1u8 << (2 * j + 1)) as i8), 16);
            let q5_0 = _mm256_add_epi8(_mm256_and_si256(q5bits, m4), h0);
            let q5_1 = _mm256_add_epi8(_mm256_and_si256(_mm256_srli_epi16(q5bits, 4), m4), h1);

            let p16_0 = _mm256_madd_epi16(scale_0, _mm256_maddubs_epi16(q5_0, q8_0));
            let p16_1 = _mm256_madd_epi16(scale_1, _mm256_maddubs_epi16(q5_1, q8_1));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p16_0, p16_1));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_float_8(acc) + summs
}

fn vec_dot_q6_k_q8_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = blocks(n, 256, w, q6_k::TYPE_SIZE, a, q8_k::TYPE_SIZE);
    // SAFETY: registered only after AVX2/FMA/F16C were detected; both rows hold `nb` blocks.
    unsafe { q6_k_q8_k(nb, w.as_ptr(), [a.as_ptr()])[0] }
}

/// Four tokens against one Q6_K row; each result is bit-identical to `vec_dot_q6_k_q8_k`
/// (the same operations per token; the weight block is unpacked once for all four).
fn vec_dot_q6_k_q8_k_x4(n: usize, w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
    let nb = n / 256;
    assert!(
        n.is_multiple_of(256)
            && w.len() >= nb * q6_k::TYPE_SIZE
            && a.iter().all(|r| r.len() >= nb * q8_k::TYPE_SIZE),
        "q6_k·q8_k x4: short rows"
    );
    // SAFETY: registered only after AVX2/FMA/F16C were detected; lengths checked above.
    unsafe { q6_k_q8_k(nb, w.as_ptr(), a.map(|r| r.as_ptr())) }
}

/// `T` tokens (1 or 4) against one Q6_K row, in ggml's AVX2 order per token.
///
/// # Safety
/// AVX2/FMA/F16C present; `x` points to `nb` `Q6_K` blocks and each `y[t]` to `nb` `Q8_K` blocks.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6_k_q8_k<const T: usize>(nb: usize, x: *const u8, y: [*const u8; T]) -> [f32; T] {
    let m3 = _mm256_set1_epi8(3);
    let m15 = _mm256_set1_epi8(15);
    let mut acc = [_mm256_setzero_ps(); T];
    for i in 0..nb {
        // SAFETY: block `i < nb` of each row is in bounds; every offset below stays inside it
        // (Q6_K: ql 0..128, qh 128..192, scales 192..208, d 208..210, read as lane 1 of the four
        // bytes 206..210; Q8_K: d 0, qs 4..260, bsums 260..292).
        let xb = unsafe { x.add(i * q6_k::TYPE_SIZE) };
        let yb: [*const u8; T] = std::array::from_fn(|t| {
            // SAFETY: as above.
            unsafe { y[t].add(i * q8_k::TYPE_SIZE) }
        });
        // SAFETY: as above.
        let (xd, scales) = unsafe { (f16x2_at(xb.add(q6_k::D - 2)), load16(xb.add(q6_k::SCALES))) };
        // Σ sc·32·q8 per lane: the -32 offset of every value, applied once.
        let scales_16 = _mm256_cvtepi8_epi16(scales);
        let mut d = [0.0f32; T];
        let mut q8sclsub = [_mm256_setzero_si256(); T];
        for t in 0..T {
            // SAFETY: as above.
            let (yd, q8sums) = unsafe { (f32_at(yb[t]), load32(yb[t].add(q8_k::BSUMS))) };
            d[t] = yd * lane1(xd);
            q8sclsub[t] = _mm256_slli_epi32(_mm256_madd_epi16(q8sums, scales_16), 5);
        }

        let mut sumi = [_mm256_setzero_si256(); T];
        for j in 0..2 {
            // SAFETY: ql bytes 64j..64j + 64 and qh bytes 32j..32j + 32 are in the block.
            let (q4bits1, q4bits2, q4bits_h) = unsafe {
                let ql = xb.add(64 * j);
                (
                    load32(ql),
                    load32(ql.add(32)),
                    load32(xb.add(q6_k::QH + 32 * j)),
                )
            };
            let q4h_0 = _mm256_slli_epi16(_mm256_and_si256(q4bits_h, m3), 4);
            let q4h_1 = _mm256_slli_epi16(_mm256_and_si256(q4bits_h, _mm256_set1_epi8(12)), 2);
            let q4h_2 = _mm256_and_si256(q4bits_h, _mm256_set1_epi8(48));
            let q4h_3 = _mm256_srli_epi16(_mm256_and_si256(q4bits_h, _mm256_set1_epi8(-64)), 2);

            let q4 = [
                _mm256_or_si256(_mm256_and_si256(q4bits1, m15), q4h_0),
                _mm256_or_si256(_mm256_and_si256(q4bits2, m15), q4h_1),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4bits1, 4), m15), q4h_2),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4bits2, 4), m15), q4h_3),
            ];
            let is = 4 * j;
            let sc: [__m256i; 4] = std::array::from_fn(|k| {
                _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, byte_pair_shuffle(is + k)))
            });
            for t in 0..T {
                // SAFETY: Q8_K quants 128j..128j + 128 of token t's block are in bounds.
                let q8: [__m256i; 4] = std::array::from_fn(|k| unsafe {
                    load32(yb[t].add(q8_k::QS + 128 * j + 32 * k))
                });
                let p: [__m256i; 4] = std::array::from_fn(|k| {
                    _mm256_madd_epi16(sc[k], _mm256_maddubs_epi16(q4[k], q8[k]))
                });
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(p[0], p[1]));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(p[2], p[3]));
            }
        }
        for t in 0..T {
            let s = _mm256_sub_epi32(sumi[t], q8sclsub[t]);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d[t]), _mm256_cvtepi32_ps(s), acc[t]);
        }
    }
    std::array::from_fn(|t| hsum_float_8(acc[t]))
}

fn vec_dot_mxfp4_q8_0(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = blocks(n, 32, w, mxfp4::TYPE_SIZE, a, q8_0::TYPE_SIZE);
    // SAFETY: registered only after AVX2/FMA/F16C were detected; both rows hold `nb` blocks.
    unsafe { mxfp4_q8_0(nb, w.as_ptr(), a.as_ptr()) }
}

/// MXFP4 · Q8_0 as ggml's AVX2 kernel: two blocks per step into two accumulators, the nibbles
/// looked up in the value table with a byte shuffle; an odd last block in scalar code.
///
/// # Safety
/// AVX2/FMA/F16C present; `x` and `y` point to `nb` `MXFP4` and `Q8_0` blocks.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mxfp4_q8_0(nb: usize, x: *const u8, y: *const u8) -> f32 {
    // SAFETY: KVALUES holds 16 bytes.
    let values = unsafe { _mm_loadu_si128(mxfp4::KVALUES.as_ptr() as *const __m128i) };
    let m4b = _mm_set1_epi8(0x0f);
    let mut acc = [_mm256_setzero_ps(); 2];
    let block = |ib: usize| {
        // SAFETY: block ib < nb of each row is in bounds (caller's contract).
        unsafe { (x.add(ib * mxfp4::TYPE_SIZE), y.add(ib * q8_0::TYPE_SIZE)) }
    };
    let scale = |xb: *const u8, yb: *const u8| {
        // SAFETY: the Q8_0 block starts with its f16 scale, the MXFP4 block with its exponent.
        let (d, e) = unsafe { (yb.cast::<u16>().read_unaligned(), *xb) };
        half::f16::from_bits(d).to_f32() * mxfp4::e8m0_half(e)
    };
    let mut ib = 0;
    while ib + 1 < nb {
        for (k, a) in acc.iter_mut().enumerate() {
            let (xb, yb) = block(ib + k);
            // SAFETY: 16 nibble bytes after the exponent, 32 quants after the scale.
            let (q4bits, q8b) = unsafe {
                (
                    _mm_loadu_si128(xb.add(mxfp4::QS) as *const __m128i),
                    load32(yb.add(q8_0::QS)),
                )
            };
            let q4b = _mm256_set_m128i(
                _mm_shuffle_epi8(values, _mm_and_si128(_mm_srli_epi16(q4bits, 4), m4b)),
                _mm_shuffle_epi8(values, _mm_and_si128(q4bits, m4b)),
            );
            let p = mul_sum_i8_pairs_float(q4b, q8b);
            *a = _mm256_fmadd_ps(_mm256_set1_ps(scale(xb, yb)), p, *a);
        }
        ib += 2;
    }
    let mut sumf = hsum_float_8(_mm256_add_ps(acc[0], acc[1]));
    if ib < nb {
        let (xb, yb) = block(ib);
        // SAFETY: block ib < nb of each row is in bounds.
        sumf += unsafe { mxfp4_block_scalar(xb, yb) };
    }
    sumf
}

/// `d_a * d_w * (sumi1 + sumi2)` of one MXFP4 block against one Q8_0 block in scalar code, as
/// ggml's AVX2 kernel does an odd last block.
///
/// # Safety
/// `xb` points to a whole MXFP4 block and `yb` to a whole Q8_0 block.
pub(super) unsafe fn mxfp4_block_scalar(xb: *const u8, yb: *const u8) -> f32 {
    // SAFETY: the block's 17 and 34 bytes are in bounds (caller's contract).
    let (xs, ys) = unsafe {
        (
            std::slice::from_raw_parts(xb, mxfp4::TYPE_SIZE),
            std::slice::from_raw_parts(yb, q8_0::TYPE_SIZE),
        )
    };
    let (mut sumi1, mut sumi2) = (0i32, 0i32);
    for j in 0..16 {
        let q = xs[mxfp4::QS + j];
        sumi1 +=
            i32::from(ys[q8_0::QS + j] as i8) * i32::from(mxfp4::KVALUES[usize::from(q & 0x0f)]);
        sumi2 +=
            i32::from(ys[q8_0::QS + 16 + j] as i8) * i32::from(mxfp4::KVALUES[usize::from(q >> 4)]);
    }
    let d = half::f16::from_bits(u16::from_le_bytes([ys[0], ys[1]])).to_f32();
    d * mxfp4::e8m0_half(xs[0]) * (sumi1 + sumi2) as f32
}
