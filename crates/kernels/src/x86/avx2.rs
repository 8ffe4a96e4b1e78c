//! AVX2 kernels. Each mirrors the lane structure of ggml's x86 kernel for the same format (eight
//! f32 lanes, each accumulating the integer sum of four adjacent products times the block
//! scales, then the same horizontal reduction), so on an AVX2 machine owl's dot products give
//! the same bits as llama.cpp's. The activation quantizers use ggml's x86 formula too
//! (`id = 127 / amax`, round half to even), which can differ from the portable reference by one
//! step on exact ties; tests bound that difference.

use std::arch::x86_64::*;

use half::f16;
use owl_quant::GgmlType;

use crate::Kernels;

pub(super) fn register(k: &mut Kernels) {
    k.set_quantize(GgmlType::Q8_0, quantize_q8_0, "quantize_q8_0/x86");
    k.set_quantize(GgmlType::Q8_1, quantize_q8_1, "quantize_q8_1/x86");
    k.set_vec_dot(GgmlType::Q4_1, vec_dot_q4_1_q8_1, "q4_1·q8_1/avx2");
    k.set_vec_dot(GgmlType::Q8_0, vec_dot_q8_0_q8_0, "q8_0·q8_0/avx2");
    k.set_dot_f16(dot_f16, "f16·f16/avx2");
}

/// The f16 at `b[at..at + 2]`, converted with F16C (inlined, unlike a runtime-dispatched call).
#[target_feature(enable = "avx2,fma,f16c")]
fn f16_fast(b: &[u8], at: usize) -> f32 {
    let bits = u16::from_le_bytes([b[at], b[at + 1]]);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
}

/// f16 · f16 with ggml's AVX layout: four 8-lane f32 accumulators over steps of 32, reduced
/// pairwise, then the remainder added in f64.
pub fn dot_f16(a: &[f16], b: &[f16]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot_f16: length mismatch");
    // SAFETY: registered only after AVX2/FMA/F16C were detected; lengths are equal.
    unsafe { dot_f16_avx2(a, b) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_avx2(a: &[f16], b: &[f16]) -> f32 {
    let n = a.len();
    let np = n - n % 32;
    let mut sum = [_mm256_setzero_ps(); 4];
    let (pa, pb) = (a.as_ptr() as *const u8, b.as_ptr() as *const u8);
    let mut i = 0;
    while i < np {
        for (j, acc) in sum.iter_mut().enumerate() {
            // SAFETY: i + 8j + 8 <= np <= n elements of 2 bytes each.
            let (ax, ay) = unsafe {
                (
                    _mm256_cvtph_ps(_mm_loadu_si128(pa.add(2 * (i + 8 * j)) as *const __m128i)),
                    _mm256_cvtph_ps(_mm_loadu_si128(pb.add(2 * (i + 8 * j)) as *const __m128i)),
                )
            };
            *acc = _mm256_fmadd_ps(ax, ay, *acc);
        }
        i += 32;
    }
    let s02 = _mm256_add_ps(sum[0], sum[2]);
    let s13 = _mm256_add_ps(sum[1], sum[3]);
    let s = _mm256_add_ps(s02, s13);
    let t0 = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    let t1 = _mm_hadd_ps(t0, t0);
    let mut res = _mm_cvtss_f32(_mm_hadd_ps(t1, t1)) as f64;
    for k in np..n {
        res += (a[k].to_f32() * b[k].to_f32()) as f64;
    }
    res as f32
}

/// Scale and quantized values of one 32-element block, the x86 way.
#[inline]
fn quantize_block_32(x: &[f32], qs: &mut [u8]) -> (f32, i32) {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut sum = 0i32;
    for (q, &v) in qs.iter_mut().zip(x) {
        let r = (v * id).round_ties_even() as i32;
        sum += r;
        *q = r as i8 as u8;
    }
    (d, sum)
}

/// Q8_0 activations: per block `d: f16, qs: [i8; 32]`.
pub fn quantize_q8_0(x: &[f32], out: &mut [u8]) {
    for (xb, ob) in x.chunks_exact(32).zip(out.chunks_exact_mut(34)) {
        let (d, _) = quantize_block_32(xb, &mut ob[2..34]);
        ob[0..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
    }
}

/// Q8_1 activations: per block `d: f16, s: f16 (= d * sum(qs)), qs: [i8; 32]`.
pub fn quantize_q8_1(x: &[f32], out: &mut [u8]) {
    for (xb, ob) in x.chunks_exact(32).zip(out.chunks_exact_mut(36)) {
        let (d, sum) = quantize_block_32(xb, &mut ob[4..36]);
        ob[0..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
        ob[2..4].copy_from_slice(&f16::from_f32(d * sum as f32).to_le_bytes());
    }
}

#[target_feature(enable = "avx2,fma")]
fn hsum_float_8(x: __m256) -> f32 {
    let mut res = _mm256_extractf128_ps(x, 1);
    res = _mm_add_ps(res, _mm256_castps256_ps128(x));
    res = _mm_add_ps(res, _mm_movehl_ps(res, res));
    res = _mm_add_ss(res, _mm_movehdup_ps(res));
    _mm_cvtss_f32(res)
}

/// Eight f32 lanes, lane i = sum of products of bytes 4i..4i+3 (`a` unsigned, `b` signed).
#[target_feature(enable = "avx2,fma")]
fn mul_sum_us8_pairs_float(a: __m256i, b: __m256i) -> __m256 {
    let dot = _mm256_maddubs_epi16(a, b);
    let summed = _mm256_madd_epi16(dot, _mm256_set1_epi16(1));
    _mm256_cvtepi32_ps(summed)
}

/// As `mul_sum_us8_pairs_float` for two signed operands.
#[target_feature(enable = "avx2,fma")]
fn mul_sum_i8_pairs_float(x: __m256i, y: __m256i) -> __m256 {
    let ax = _mm256_sign_epi8(x, x);
    let sy = _mm256_sign_epi8(y, x);
    mul_sum_us8_pairs_float(ax, sy)
}

pub fn vec_dot_q4_1_q8_1(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = n / 32;
    assert!(w.len() >= nb * 20 && a.len() >= nb * 36, "q4_1·q8_1: short rows");
    // SAFETY: registered only after AVX2/FMA were detected; lengths checked above.
    unsafe { vec_dot_q4_1_q8_1_avx2(nb, w, a) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_q4_1_q8_1_avx2(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let mut summs = 0.0f32;
    let low = _mm256_set1_epi8(0x0f);
    for ib in 0..nb {
        let xb = &w[ib * 20..ib * 20 + 20];
        let yb = &a[ib * 36..ib * 36 + 36];
        let d0 = f16_fast(xb, 0);
        let m0 = f16_fast(xb, 2);
        let d1 = f16_fast(yb, 0);
        let s1 = f16_fast(yb, 2);
        summs += m0 * s1;
        let d0d1 = _mm256_mul_ps(_mm256_set1_ps(d0), _mm256_set1_ps(d1));
        // SAFETY: xb[4..20] holds 16 bytes, yb[4..36] holds 32 bytes.
        let packed = unsafe { _mm_loadu_si128(xb.as_ptr().add(4) as *const __m128i) };
        let both = _mm256_insertf128_si256(_mm256_castsi128_si256(packed), _mm_srli_epi16(packed, 4), 1);
        let qx = _mm256_and_si256(both, low);
        // SAFETY: as above.
        let qy = unsafe { _mm256_loadu_si256(yb.as_ptr().add(4) as *const __m256i) };
        let xy = mul_sum_us8_pairs_float(qx, qy);
        acc = _mm256_fmadd_ps(d0d1, xy, acc);
    }
    hsum_float_8(acc) + summs
}

pub fn vec_dot_q8_0_q8_0(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = n / 32;
    assert!(w.len() >= nb * 34 && a.len() >= nb * 34, "q8_0·q8_0: short rows");
    // SAFETY: registered only after AVX2/FMA were detected; lengths checked above.
    unsafe { vec_dot_q8_0_q8_0_avx2(nb, w, a) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_q8_0_q8_0_avx2(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for ib in 0..nb {
        let xb = &w[ib * 34..ib * 34 + 34];
        let yb = &a[ib * 34..ib * 34 + 34];
        let d = _mm256_set1_ps(f16_fast(xb, 0) * f16_fast(yb, 0));
        // SAFETY: both blocks hold 32 bytes after the 2-byte scale.
        let (qx, qy) = unsafe {
            (
                _mm256_loadu_si256(xb.as_ptr().add(2) as *const __m256i),
                _mm256_loadu_si256(yb.as_ptr().add(2) as *const __m256i),
            )
        };
        let q = mul_sum_i8_pairs_float(qx, qy);
        acc = _mm256_fmadd_ps(d, q, acc);
    }
    hsum_float_8(acc)
}
