//! F16 weights · F16 activations for several tokens at once: prompts of F16 models.
//!
//! A single token's product is `avx2::vec_dot_f16_f16`, ggml's AVX2 `ggml_vec_dot_f16` (four
//! 8-lane accumulators over steps of 32, the pairwise reduction, an `f64` tail), which is
//! what llama.cpp computes for one token. A prompt ran that product once per token and row, so
//! every token converted the weight row from halves again, and each product was one chain of
//! four accumulators: F16 prompts ran at 0.58× llama.cpp's. Here one pass over a weight row
//! serves four tokens, each with its own four accumulators and the same operations in the
//! same order, so every token gets the single product's bits (a row's result never depends on
//! the batch). Sixteen accumulators fill AVX2's sixteen registers; the AVX-512 level compiles
//! the same body with AVX-512VL, whose 32 registers hold them without spilling.

use std::arch::x86_64::*;

use half::f16;
use owl_quant::GgmlType;

use super::avx2::f16_reduce;
use super::common::tail_f64;
use crate::Kernels;

/// With the AVX2 level.
pub(super) fn register_avx2(k: &mut Kernels) {
    k.set_vec_dot_x4(GgmlType::F16, vec_dot_x4_avx2, "f16 weights·f16 x4/avx2");
}

/// With the AVX-512 level: the same arithmetic with twice the registers.
pub(super) fn register_avx512(k: &mut Kernels) {
    k.set_vec_dot_x4(
        GgmlType::F16,
        vec_dot_x4_avx512vl,
        "f16 weights·f16 x4/avx512vl",
    );
}

fn check(n: usize, w: &[u8], a: &[&[u8]; 4]) {
    assert!(
        w.len() >= 2 * n && a.iter().all(|r| r.len() >= 2 * n),
        "f16·f16 x4: short rows"
    );
}

fn vec_dot_x4_avx2(n: usize, w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
    check(n, w, &a);
    // Two tokens at a time: four tokens' sixteen accumulators would spill from AVX2's sixteen
    // registers (measured: no faster than one token at a time).
    // SAFETY: registered only after AVX2/FMA/F16C were detected; lengths checked above.
    let [a, b] = unsafe {
        [[a[0], a[1]], [a[2], a[3]]]
            .map(|p| dot_tokens_avx2::<2>(n, w.as_ptr(), p.map(|r| r.as_ptr())))
    };
    [a[0], a[1], b[0], b[1]]
}

fn vec_dot_x4_avx512vl(n: usize, w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
    check(n, w, &a);
    // SAFETY: registered only with the AVX-512 level (AVX-512F/VL detected); lengths checked.
    unsafe { dot_tokens_avx512vl::<4>(n, w.as_ptr(), a.map(|r| r.as_ptr())) }
}

/// The four-token body, compiled once per target feature set.
macro_rules! dot_x4 {
    ($name:ident, $features:literal) => {
        /// # Safety
        /// `w` and each `a[t]` point to `2 * n` readable bytes.
        #[target_feature(enable = $features)]
        unsafe fn $name<const T: usize>(n: usize, w: *const u8, a: [*const u8; T]) -> [f32; T] {
            let np = n - n % 32;
            let mut acc = [[_mm256_setzero_ps(); 4]; T];
            let mut i = 0;
            while i < np {
                let mut x = [_mm256_setzero_ps(); 4];
                for (j, x) in x.iter_mut().enumerate() {
                    // SAFETY: i + 32 <= n halves.
                    let h = unsafe { _mm_loadu_si128(w.add(2 * (i + 8 * j)) as *const __m128i) };
                    *x = _mm256_cvtph_ps(h);
                }
                for (t, acc) in acc.iter_mut().enumerate() {
                    for (j, acc) in acc.iter_mut().enumerate() {
                        // SAFETY: as above, for token t's row.
                        let h =
                            unsafe { _mm_loadu_si128(a[t].add(2 * (i + 8 * j)) as *const __m128i) };
                        *acc = _mm256_fmadd_ps(x[j], _mm256_cvtph_ps(h), *acc);
                    }
                }
                i += 32;
            }
            let mut out = [0.0; T];
            for (t, out) in out.iter_mut().enumerate() {
                *out = tail_f64(f64::from(f16_reduce(acc[t])), np, n, |k| {
                    // SAFETY: k < n.
                    let (x, y) = unsafe {
                        (
                            (w.add(2 * k) as *const u16).read_unaligned(),
                            (a[t].add(2 * k) as *const u16).read_unaligned(),
                        )
                    };
                    f16::from_bits(x).to_f32() * f16::from_bits(y).to_f32()
                });
            }
            out
        }
    };
}

dot_x4!(dot_tokens_avx2, "avx2,fma,f16c");
dot_x4!(dot_tokens_avx512vl, "avx2,fma,f16c,avx512f,avx512vl");

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: usize, seed: u64) -> Vec<u8> {
        crate::x86::common::test_half_row(n, seed, |v| f16::from_f32(v).to_bits())
    }

    /// Every token of the four-token product has the single product's bits, at every length
    /// (full steps, a tail, both), on each compilation this CPU runs.
    #[test]
    fn four_tokens_equal_one_token_each() {
        if !crate::x86::detect_avx2() {
            eprintln!("skipped: no AVX2 on this CPU");
            return;
        }
        let mut kernels: Vec<crate::types::VecDotX4Fn> = vec![vec_dot_x4_avx2];
        if crate::x86::detect_avx512() {
            kernels.push(vec_dot_x4_avx512vl);
        }
        for n in [1, 7, 31, 32, 33, 64, 100, 576, 896, 1000] {
            let w = row(n, n as u64);
            let acts: Vec<Vec<u8>> = (0..4).map(|t| row(n, 500 + t + n as u64)).collect();
            let a: [&[u8]; 4] = std::array::from_fn(|t| acts[t].as_slice());
            for four in &kernels {
                let got = four(n, &w, a);
                for t in 0..4 {
                    let one = super::super::avx2::vec_dot_f16_f16(n, &w, a[t]);
                    assert_eq!(got[t].to_bits(), one.to_bits(), "n={n} t={t}");
                }
            }
        }
    }
}
