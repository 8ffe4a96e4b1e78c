//! Activation quantizers (`Q8_0`, `Q8_1`) in AVX2, bit for bit ggml's x86 formula (`id = 127 /
//! amax`, round half to even; its plain-Rust form is the tests' reference below).
//!
//! Why: that formula was plain Rust compiled for the x86-64 baseline, with its `f32::max` fold
//! kept scalar and `half`'s software `f16` conversion. Every `linear` quantizes its input, so in
//! a 16-sequence decode step of the default model (small matrices, many calls) the Q8_1
//! quantizer alone took 6 % of the time. Here a block is four registers: `max_ps` over the
//! absolute values, one multiply and `round_ps` (nearest even, as the scalar `+ 1.5·2²³`
//! trick), packs to bytes, and F16C for the scales. The scalar formula stays the reference: the
//! tests below compare the bytes.

use std::arch::x86_64::*;

use owl_quant::GgmlType;

use crate::Kernels;

pub(super) fn register(k: &mut Kernels) {
    k.set_quantize(GgmlType::Q8_0, quantize_q8_0, "quantize_q8_0/avx2");
    k.set_quantize(GgmlType::Q8_1, quantize_q8_1, "quantize_q8_1/avx2");
}

/// Q8_0 activations: per block `d: f16, qs: [i8; 32]`.
pub fn quantize_q8_0(x: &[f32], out: &mut [u8]) {
    for (xb, ob) in x.chunks_exact(32).zip(out.chunks_exact_mut(34)) {
        // SAFETY: registered only after AVX2/FMA/F16C were detected; `xb` holds 32 floats and
        // `ob[2..]` 32 bytes.
        let (d, _) = unsafe { block(xb.as_ptr(), ob[2..].as_mut_ptr()) };
        // SAFETY: as above.
        ob[0..2].copy_from_slice(&unsafe { to_f16(d) }.to_le_bytes());
    }
}

/// Q8_1 activations: per block `d: f16, s: f16 (= d * sum(qs)), qs: [i8; 32]`.
pub fn quantize_q8_1(x: &[f32], out: &mut [u8]) {
    for (xb, ob) in x.chunks_exact(32).zip(out.chunks_exact_mut(36)) {
        // SAFETY: registered only after AVX2/FMA/F16C were detected; `xb` holds 32 floats and
        // `ob[4..]` 32 bytes.
        let (d, sum) = unsafe { block(xb.as_ptr(), ob[4..].as_mut_ptr()) };
        // SAFETY: as above.
        let (dh, sh) = unsafe { (to_f16(d), to_f16(d * sum as f32)) };
        ob[0..2].copy_from_slice(&dh.to_le_bytes());
        ob[2..4].copy_from_slice(&sh.to_le_bytes());
    }
}

/// `f32` → `f16` bits, rounding to nearest even (as `half::f16::from_f32`).
///
/// # Safety
/// F16C present.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn to_f16(v: f32) -> u16 {
    _mm_extract_epi16::<0>(_mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set_ss(v))) as u16
}

/// One block: writes the 32 quantized values to `qs` and returns `(d, Σ q)`.
///
/// # Safety
/// AVX2/FMA/F16C present; `x` points to 32 readable floats and `qs` to 32 writable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn block(x: *const f32, qs: *mut u8) -> (f32, i32) {
    // SAFETY: 32 floats at `x` (caller's contract), read unaligned.
    let v = unsafe {
        [
            _mm256_loadu_ps(x),
            _mm256_loadu_ps(x.add(8)),
            _mm256_loadu_ps(x.add(16)),
            _mm256_loadu_ps(x.add(24)),
        ]
    };
    let sign = _mm256_set1_ps(-0.0);
    let abs = |a: __m256| _mm256_andnot_ps(sign, a);
    let m = _mm256_max_ps(
        _mm256_max_ps(abs(v[0]), abs(v[1])),
        _mm256_max_ps(abs(v[2]), abs(v[3])),
    );
    let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
    let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    let amax = _mm_cvtss_f32(_mm_max_ss(m2, _mm_movehdup_ps(m2)));
    let d = amax / 127.0;
    let id = _mm256_set1_ps(if amax != 0.0 { 127.0 / amax } else { 0.0 });
    let mut q = [_mm256_setzero_si256(); 4];
    for (q, v) in q.iter_mut().zip(v) {
        let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(v, id),
        );
        *q = _mm256_cvtps_epi32(r);
    }
    let s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    let s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
    let s2 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
    let sum = _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32::<1>(s2)));
    // |q| <= 127: the packs cannot saturate. They interleave the 128-bit lanes, which the
    // permutation puts back in order.
    let w = _mm256_packs_epi16(
        _mm256_packs_epi32(q[0], q[1]),
        _mm256_packs_epi32(q[2], q[3]),
    );
    let w = _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    // SAFETY: 32 bytes at `qs` (caller's contract), written unaligned.
    unsafe { _mm256_storeu_si256(qs.cast(), w) };
    (d, sum)
}

#[cfg(test)]
mod tests {
    use half::f16;

    use super::*;

    /// The x86 formula in plain Rust (what was registered before): scale and values of a block.
    fn reference_block(x: &[f32], qs: &mut [u8]) -> (f32, i32) {
        let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in qs.iter_mut().zip(x) {
            // Round half to even: adding and subtracting 1.5 · 2²³ leaves the nearest integer
            // for |x| <= 2²² (here |x| <= 127).
            let r = ((v * id + 12_582_912.0) - 12_582_912.0) as i32;
            sum += r;
            *q = r as i8 as u8;
        }
        (d, sum)
    }

    fn reference_q8_0(x: &[f32], out: &mut [u8]) {
        for (xb, ob) in x.chunks_exact(32).zip(out.chunks_exact_mut(34)) {
            let (d, _) = reference_block(xb, &mut ob[2..34]);
            ob[0..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
        }
    }

    fn reference_q8_1(x: &[f32], out: &mut [u8]) {
        for (xb, ob) in x.chunks_exact(32).zip(out.chunks_exact_mut(36)) {
            let (d, sum) = reference_block(xb, &mut ob[4..36]);
            ob[0..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
            ob[2..4].copy_from_slice(&f16::from_f32(d * sum as f32).to_le_bytes());
        }
    }

    fn inputs() -> Vec<Vec<f32>> {
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        let mut cases: Vec<Vec<f32>> = (0..64)
            .map(|i| {
                let scale = [1e-6f32, 0.01, 1.0, 37.0, 3e4][i % 5];
                (0..32 * 7).map(|_| rnd() * scale).collect()
            })
            .collect();
        // All zero, a single spike, exact ties of the rounding (x·127/amax = k + 1/2), negative
        // zeros, and f16-subnormal scales.
        cases.push(vec![0.0; 64]);
        cases.push((0..64).map(|i| if i == 5 { -3.0 } else { 0.0 }).collect());
        cases.push(
            (0..64)
                .map(|i| (i as f32 - 31.5) * (127.0 / 254.0))
                .collect(),
        );
        cases.push(
            (0..64)
                .map(|i| if i % 2 == 0 { -0.0 } else { 1.0 })
                .collect(),
        );
        cases.push((0..64).map(|i| (i as f32 - 30.0) * 1e-7).collect());
        cases
    }

    /// Both quantizers, byte for byte against the plain x86 formula.
    #[test]
    fn equal_the_scalar_x86_formula() {
        if !(is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c"))
        {
            eprintln!("skipped: no AVX2/FMA/F16C");
            return;
        }
        for x in inputs() {
            let nb = x.len() / 32;
            let (mut a, mut b) = (vec![0u8; nb * 34], vec![0u8; nb * 34]);
            quantize_q8_0(&x, &mut a);
            reference_q8_0(&x, &mut b);
            assert_eq!(a, b, "q8_0 of {:?}", &x[..4]);
            let (mut a, mut b) = (vec![0u8; nb * 36], vec![0u8; nb * 36]);
            quantize_q8_1(&x, &mut a);
            reference_q8_1(&x, &mut b);
            assert_eq!(a, b, "q8_1 of {:?}", &x[..4]);
        }
    }
}
