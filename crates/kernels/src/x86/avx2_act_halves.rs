//! Activation quantizers for 16-bit float weights (`F16`, `BF16`) in AVX2, byte for byte the
//! portable ones in `owl_quant` (the tests below compare them on ordinary, tiny, huge, infinite
//! and NaN values).
//!
//! Why: every `linear` of an F16 or BF16 model first rounds its input to the weights' format.
//! The portable loops convert one value per call (`half`'s conversion checks the CPU each
//! time), which took over a quarter of a one-thread F16 prompt product at `linear_speed`'s
//! shape. Here eight values are one conversion:
//! - F16: F16C's `vcvtps2ph` with round-to-nearest-even, which is what `half::f16::from_f32`
//!   computes (it uses the same instruction where the CPU has it; NaNs stay quiet NaNs with
//!   the payload's top bits, the same in both);
//! - BF16: ggml's integer rounding (`u + 0x7fff + ((u >> 16) & 1)`, quiet NaNs by `| 64`) on
//!   eight lanes, then the high halves packed.

use std::arch::x86_64::*;

use owl_quant::GgmlType;

use crate::Kernels;

pub(super) fn register(k: &mut Kernels) {
    k.set_quantize(GgmlType::F16, quantize_f16, "quantize_f16/f16c");
    k.set_quantize(GgmlType::BF16, quantize_bf16, "quantize_bf16/avx2");
}

fn check(x: &[f32], out: &[u8]) {
    assert!(out.len() >= 2 * x.len(), "16-bit quantize: short output");
}

/// `x` rounded to F16, two little-endian bytes per value.
pub fn quantize_f16(x: &[f32], out: &mut [u8]) {
    check(x, out);
    // SAFETY: registered only after AVX2/FMA/F16C were detected; length checked above.
    unsafe { f16_avx2(x, out.as_mut_ptr()) }
}

/// `x` rounded to BF16, two little-endian bytes per value.
pub fn quantize_bf16(x: &[f32], out: &mut [u8]) {
    check(x, out);
    // SAFETY: as `quantize_f16`.
    unsafe { bf16_avx2(x, out.as_mut_ptr()) }
}

/// # Safety
/// F16C present; `out` points to `2 * x.len()` writable bytes.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_avx2(x: &[f32], out: *mut u8) {
    let n = x.len();
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n values in, 16 bytes out; unaligned accesses.
        unsafe {
            let h =
                _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(x.as_ptr().add(i)));
            _mm_storeu_si128(out.add(2 * i) as *mut __m128i, h);
        }
        i += 8;
    }
    for (k, &v) in x.iter().enumerate().skip(i) {
        let h = _mm_extract_epi16::<0>(_mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set_ss(v)));
        // SAFETY: k < n values, two bytes each.
        unsafe { (out.add(2 * k) as *mut u16).write_unaligned((h as u16).to_le()) };
    }
}

/// # Safety
/// AVX2 present; `out` points to `2 * x.len()` writable bytes.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bf16_avx2(x: &[f32], out: *mut u8) {
    let n = x.len();
    let abs_mask = _mm256_set1_epi32(0x7fff_ffff);
    let inf = _mm256_set1_epi32(0x7f80_0000);
    let one = _mm256_set1_epi32(1);
    let bias = _mm256_set1_epi32(0x7fff);
    let quiet = _mm256_set1_epi32(64);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n values in; unaligned load.
        let u = unsafe { _mm256_loadu_si256(x.as_ptr().add(i) as *const __m256i) };
        let nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
        let rounded = _mm256_srli_epi32::<16>(_mm256_add_epi32(
            u,
            _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32::<16>(u), one)),
        ));
        let quieted = _mm256_or_si256(_mm256_srli_epi32::<16>(u), quiet);
        let v = _mm256_blendv_epi8(rounded, quieted, nan);
        // Each lane holds its value in the low 16 bits (the high ones are zero): pack them.
        let packed = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        // SAFETY: 16 bytes out; unaligned store.
        unsafe { _mm_storeu_si128(out.add(2 * i) as *mut __m128i, packed) };
        i += 8;
    }
    for (k, &v) in x.iter().enumerate().skip(i) {
        let b = owl_quant::bf16::fp32_to_bf16(v);
        // SAFETY: k < n values, two bytes each.
        unsafe { (out.add(2 * k) as *mut u16).write_unaligned(b.to_le()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ordinary values of every size, halves' and brain floats' rounding ties, subnormals of
    /// both, overflow to infinity, infinities and NaNs with payloads.
    fn values() -> Vec<f32> {
        let mut v: Vec<f32> = (0..4000)
            .map(|i| {
                ((i as f32 * 0.37).sin() * 10f32.powi(i % 13 - 6))
                    * if i % 2 == 0 { 1.0 } else { -1.0 }
            })
            .collect();
        for bits in [
            0x3f80_8000u32, // a BF16 tie
            0x3f81_8000,
            0x3f80_1000, // an F16 tie
            0x3f80_3000,
            0x0000_0001, // smallest subnormal
            0x0080_0000,
            0x3380_0000, // F16's smallest subnormal
            0x477f_f000, // just below F16's overflow
            0x4780_0000,
            0x7f7f_ffff,
            0x7f80_0000,
            0xff80_0000,
            0x7fc0_0000,
            0x7f80_0001, // signalling NaN
            0xffbf_ffff,
            0x7fff_ffff,
            0x8000_0000,
        ] {
            v.push(f32::from_bits(bits));
        }
        v
    }

    #[test]
    fn eight_lanes_give_the_portable_bytes() {
        if !crate::x86::detect_avx2() {
            eprintln!("skipped: no AVX2 on this CPU");
            return;
        }
        let v = values();
        for n in [0, 1, 7, 8, 9, 31, v.len()] {
            let x = &v[v.len() - n..];
            for (fast, portable) in [
                (
                    quantize_f16 as fn(&[f32], &mut [u8]),
                    owl_quant::fp16::quantize as fn(&[f32], &mut [u8]),
                ),
                (quantize_bf16, owl_quant::bf16::quantize),
            ] {
                let (mut got, mut want) = (vec![0u8; 2 * n], vec![0u8; 2 * n]);
                fast(x, &mut got);
                portable(x, &mut want);
                assert_eq!(got, want, "n={n}");
            }
        }
    }
}
