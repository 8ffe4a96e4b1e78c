//! The AVX-512 level's softmax exponentiation and SwiGLU: ggml's AVX2 `expf8` on sixteen lanes
//! at once, with the same bits.
//!
//! Why not ggml's own AVX-512 `ggml_v_expf`: it evaluates the polynomial with its `+ 1` inside
//! and scales with `vscalefps`, which rounds differently from the AVX2 routine's
//! `k·j + k`. owl's AVX-512 level keeps the AVX2 build's bits everywhere except where an
//! instruction decides otherwise (`vdpbf16ps`), so its attention and feed-forward results
//! match the AVX2 references; these kernels only do the same lane arithmetic twice as wide.
//!
//! How the bits stay the same: every operation of `expf8` is per lane, so sixteen lanes give
//! each element what eight would. A block whose lanes need the special path (|n| > 126) takes
//! it for all sixteen, which changes nothing for the others: there the special path's blend
//! picks `k·j + k`, the fast path's value. The sums keep the AVX2 grouping: each eight-lane
//! half is reduced as `hsum_float_8` does and added to the f64 total, low half first; after
//! the blocks of sixteen, a block of eight (if any) and the scalar remainder go exactly as
//! there.

use std::arch::x86_64::*;

use super::avx2::expf8;
use super::common::hsum_float_8;
use crate::Kernels;

pub(super) fn register(k: &mut Kernels) {
    k.set_softmax_exp(softmax_exp, "softmax_exp/avx512");
    k.set_swiglu(swiglu, "swiglu/avx512");
}

/// `expf8` on sixteen lanes: the same constants and operations (masks in place of the
/// compare-and-blend vectors; `abs` clears the sign bit as `andnot(-0.0, n)` does).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn expf16(x: __m512) -> __m512 {
    let r = _mm512_set1_ps(f32::from_bits(0x4b40_0000)); // 1.5 * 2^23
    let z = _mm512_fmadd_ps(x, _mm512_set1_ps(f32::from_bits(0x3fb8_aa3b)), r); // 1/ln2
    let n = _mm512_sub_ps(z, r);
    let ln2_hi = _mm512_set1_ps(f32::from_bits(0x3f31_7200));
    let ln2_lo = _mm512_set1_ps(f32::from_bits(0x35bf_be8e));
    let b = _mm512_fnmadd_ps(n, ln2_lo, _mm512_fnmadd_ps(n, ln2_hi, x));
    let e = _mm512_slli_epi32::<23>(_mm512_castps_si512(z));
    let k = _mm512_castsi512_ps(_mm512_add_epi32(
        e,
        _mm512_castps_si512(_mm512_set1_ps(1.0)),
    ));
    let abs_n = _mm512_abs_ps(n);
    let c = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(abs_n, _mm512_set1_ps(126.0));
    let u = _mm512_mul_ps(b, b);
    let c0 = _mm512_set1_ps(f32::from_bits(0x3f7f_fff6));
    let c1 = _mm512_set1_ps(f32::from_bits(0x3eff_fedb));
    let c2 = _mm512_set1_ps(f32::from_bits(0x3e2a_af33));
    let c3 = _mm512_set1_ps(f32::from_bits(0x3d2b_9f17));
    let c4 = _mm512_set1_ps(f32::from_bits(0x3c07_2010));
    let j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(_mm512_fmadd_ps(c4, b, c3), u, _mm512_fmadd_ps(c2, b, c1)),
        u,
        _mm512_mul_ps(c0, b),
    );
    let normal = _mm512_fmadd_ps(j, k, k);
    if c == 0 {
        return normal;
    }
    let le_zero = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(n, _mm512_setzero_ps());
    let g = _mm512_maskz_mov_epi32(le_zero, _mm512_set1_epi32(0x8200_0000u32 as i32));
    let s1 = _mm512_castsi512_ps(_mm512_add_epi32(g, _mm512_set1_epi32(0x7f00_0000)));
    let s2 = _mm512_castsi512_ps(_mm512_sub_epi32(e, g));
    let d = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(abs_n, _mm512_set1_ps(192.0));
    let huge = _mm512_mul_ps(s1, s1);
    let scaled = _mm512_mul_ps(_mm512_fmadd_ps(s2, j, s2), s1);
    _mm512_mask_blend_ps(d, _mm512_mask_blend_ps(c, normal, scaled), huge)
}

/// The low and high eight lanes of `v`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn halves(v: __m512) -> (__m256, __m256) {
    let hi = _mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v));
    (_mm512_castps512_ps256(v), _mm256_castpd_ps(hi))
}

/// Softmax exponentiation with `avx2::softmax_exp`'s bits (see the module notes).
pub fn softmax_exp(x: &mut [f32], max: f32) -> f64 {
    // SAFETY: registered only after the AVX-512 level was detected.
    unsafe { softmax_exp_avx512(x, max) }
}

#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn softmax_exp_avx512(x: &mut [f32], max: f32) -> f64 {
    let n = x.len();
    let p = x.as_mut_ptr();
    let mut sum = 0.0f64;
    let mut i = 0;
    let m = _mm512_set1_ps(max);
    while i + 16 <= n {
        // SAFETY: i + 16 <= n floats in `x`.
        let v = unsafe { _mm512_loadu_ps(p.add(i)) };
        let e = expf16(_mm512_sub_ps(v, m));
        // SAFETY: as above.
        unsafe { _mm512_storeu_ps(p.add(i), e) };
        let (lo, hi) = halves(e);
        sum += hsum_float_8(lo) as f64;
        sum += hsum_float_8(hi) as f64;
        i += 16;
    }
    if i + 8 <= n {
        // SAFETY: i + 8 <= n floats in `x`.
        let v = unsafe { _mm256_loadu_ps(p.add(i)) };
        let e = expf8(_mm256_sub_ps(v, _mm256_set1_ps(max)));
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(p.add(i), e) };
        sum += hsum_float_8(e) as f64;
        i += 8;
    }
    for v in &mut x[i..] {
        let e = (*v - max).exp();
        sum += e as f64;
        *v = e;
    }
    sum
}

/// SwiGLU with `avx2::swiglu`'s bits: `x / (1 + exp(0 - x)) * g`, sixteen lanes at a time,
/// then eight, then the C library's `expf` for a remainder.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "swiglu: length mismatch");
    // SAFETY: registered only after the AVX-512 level was detected; lengths are equal.
    unsafe { swiglu_avx512(gate, up) }
}

#[target_feature(enable = "avx512f,avx2,fma,f16c")]
unsafe fn swiglu_avx512(gate: &mut [f32], up: &[f32]) {
    let n = gate.len();
    let (gp, upp) = (gate.as_mut_ptr(), up.as_ptr());
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n floats in both slices.
        let (x, g) = unsafe { (_mm512_loadu_ps(gp.add(i)), _mm512_loadu_ps(upp.add(i))) };
        let e = expf16(_mm512_sub_ps(_mm512_setzero_ps(), x));
        let silu = _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0), e));
        // SAFETY: as above.
        unsafe { _mm512_storeu_ps(gp.add(i), _mm512_mul_ps(silu, g)) };
        i += 16;
    }
    if i + 8 <= n {
        // SAFETY: i + 8 <= n floats in both slices.
        let (x, g) = unsafe { (_mm256_loadu_ps(gp.add(i)), _mm256_loadu_ps(upp.add(i))) };
        let e = expf8(_mm256_sub_ps(_mm256_setzero_ps(), x));
        let silu = _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0), e));
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(gp.add(i), _mm256_mul_ps(silu, g)) };
        i += 8;
    }
    for (x, &g) in gate[i..].iter_mut().zip(&up[i..]) {
        *x = *x / (1.0 + (-*x).exp()) * g;
    }
}

#[cfg(test)]
mod tests {
    use crate::{Isa, Kernels};

    /// Values over the whole range the exponent sees: ordinary ones, the special path's
    /// (|x| past 87 and 133), -inf (masked scores), and a NaN, at every offset in a block.
    fn values(n: usize, salt: usize) -> Vec<f32> {
        (0..n)
            .map(|i| match (i * 7 + salt) % 23 {
                0 => f32::NEG_INFINITY,
                1 => -100.0 - i as f32,
                2 => 90.0 + (i % 5) as f32,
                3 => -140.0,
                4 if salt == 3 => f32::NAN,
                _ => ((i as f32 * 0.731 + salt as f32).sin()) * 12.0,
            })
            .collect()
    }

    /// The AVX-512 softmax exponentiation and SwiGLU give the AVX2 kernels' bits, element by
    /// element and in the softmax sum, for every length around the blocks of 16 and 8.
    #[test]
    fn sixteen_lanes_give_the_avx2_bits() {
        if !Isa::available().contains(&Isa::AVX512) {
            eprintln!("no AVX-512 here: skipped");
            return;
        }
        let (wide, avx2) = (Kernels::for_isa(Isa::AVX512), Kernels::for_isa(Isa::AVX2));
        for n in (0..70).chain([255, 256, 1000]) {
            for salt in 0..4 {
                let x = values(n, salt);
                let (mut a, mut b) = (x.clone(), x.clone());
                let max = 3.5;
                let sa = (wide.softmax_exp())(&mut a, max);
                let sb = (avx2.softmax_exp())(&mut b, max);
                assert_eq!(sa.to_bits(), sb.to_bits(), "softmax sum, n {n} salt {salt}");
                for (i, (p, q)) in a.iter().zip(&b).enumerate() {
                    assert_eq!(p.to_bits(), q.to_bits(), "softmax n {n} salt {salt} at {i}");
                }
                let up = values(n, salt + 1);
                let (mut a, mut b) = (x.clone(), x);
                (wide.swiglu())(&mut a, &up);
                (avx2.swiglu())(&mut b, &up);
                for (i, (p, q)) in a.iter().zip(&b).enumerate() {
                    assert!(
                        p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()),
                        "swiglu n {n} salt {salt} at {i}: {p} vs {q}"
                    );
                }
            }
        }
    }
}
