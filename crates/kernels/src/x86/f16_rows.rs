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
//!
//! At the AVX-512 level prompts go through a 4×4 tile (four rows × four tokens) that keeps
//! ggml's four 8-lane accumulators as two 16-lane ones: lanes 0–7 of the first are accumulator
//! 0 and lanes 8–15 accumulator 1 (elements `i..i + 16` of each step of 32); the second holds
//! accumulators 2 and 3. Per lane the operations are the same fused multiply-adds in the same
//! order, so the halves are the AVX2 accumulators bit for bit. They are computed in two passes
//! over the rows, sixteen accumulators each, which fit the 32 registers with the four rows'
//! converted weights (one pass would need 32). A step converts four rows' and four tokens'
//! halves for sixteen multiply-adds, where the one-row kernel converted four tokens' for four.
//! (Activations widened to `f32` once per matrix were tried: they double the bytes each step
//! reads, and the tile ran slower than the conversions it saved.)

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

/// With the AVX-512 level: the same arithmetic with twice the registers, and the 4×4 tile.
pub(super) fn register_avx512(k: &mut Kernels) {
    k.set_vec_dot_x4(
        GgmlType::F16,
        vec_dot_x4_avx512vl,
        "f16 weights·f16 x4/avx512vl",
    );
    k.set_float_tile(GgmlType::F16, tile_avx512, "f16 weights·f16 4x4/avx512");
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

fn tile_avx512(n: usize, w: [&[u8]; 4], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    for w in &w {
        check(n, w, &a);
    }
    // SAFETY: registered only with the AVX-512 level (AVX-512F detected); lengths checked.
    unsafe { tile_zmm(n, w.map(|r| r.as_ptr()), a.map(|r| r.as_ptr())) }
}

/// Sixteen halves at `p` as floats.
///
/// # Safety
/// AVX-512F present; `p` points to 32 readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
unsafe fn load16(p: *const u8) -> __m512 {
    // SAFETY: caller's contract; unaligned load.
    _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(p.cast()) })
}

/// The 4×4 tile in two passes of sixteen 16-lane accumulators (see the module essay).
///
/// # Safety
/// AVX-512F present; each `w[r]` and `a[t]` points to `2 * n` readable bytes.
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
unsafe fn tile_zmm(n: usize, w: [*const u8; 4], a: [*const u8; 4]) -> [[f32; 4]; 4] {
    let np = n - n % 32;
    // passes[p][r][t]: ggml's accumulators 2p (lanes 0–7) and 2p + 1 (lanes 8–15).
    let mut passes = [[[_mm512_setzero_ps(); 4]; 4]; 2];
    for (p, pass) in passes.iter_mut().enumerate() {
        let mut acc = [[_mm512_setzero_ps(); 4]; 4];
        let mut i = 16 * p;
        while i < np {
            // SAFETY: i + 16 <= np <= n halves of every row and token.
            let x: [__m512; 4] = std::array::from_fn(|r| unsafe { load16(w[r].add(2 * i)) });
            for t in 0..4 {
                // SAFETY: as above.
                let y = unsafe { load16(a[t].add(2 * i)) };
                for r in 0..4 {
                    acc[r][t] = _mm512_fmadd_ps(x[r], y, acc[r][t]);
                }
            }
            i += 32;
        }
        *pass = acc;
    }
    let halves = |v: __m512| {
        (
            _mm512_castps512_ps256(v),
            _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))),
        )
    };
    let mut out = [[0.0; 4]; 4];
    for (r, out) in out.iter_mut().enumerate() {
        for (t, out) in out.iter_mut().enumerate() {
            let (c0, c1) = halves(passes[0][r][t]);
            let (c2, c3) = halves(passes[1][r][t]);
            // SAFETY: the tail's indices are below n (caller's contract).
            *out = unsafe { tail(f16_reduce([c0, c1, c2, c3]), np, n, w[r], a[t]) };
        }
    }
    out
}

/// ggml's `f64` tail: elements `from..n` one by one.
///
/// # Safety
/// `w` and `a` point to `2 * n` readable bytes.
unsafe fn tail(sum: f32, from: usize, n: usize, w: *const u8, a: *const u8) -> f32 {
    tail_f64(f64::from(sum), from, n, |k| {
        // SAFETY: k < n (caller's contract).
        let (x, y) = unsafe {
            (
                (w.add(2 * k) as *const u16).read_unaligned(),
                (a.add(2 * k) as *const u16).read_unaligned(),
            )
        };
        f16::from_bits(x).to_f32() * f16::from_bits(y).to_f32()
    })
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
                // SAFETY: the tail's indices are below n (caller's contract).
                *out = unsafe { tail(f16_reduce(acc[t]), np, n, w, a[t]) };
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

    /// Every (row, token) of the 4×4 tile has the single product's bits, at every length.
    #[test]
    fn the_tile_equals_one_product_each() {
        if !crate::x86::detect_avx512() {
            eprintln!("skipped: no AVX-512 on this CPU");
            return;
        }
        for n in [1, 7, 16, 31, 32, 33, 48, 64, 100, 576, 896, 1000] {
            let ws: Vec<Vec<u8>> = (0..4).map(|r| row(n, 7 * r + n as u64)).collect();
            let acts: Vec<Vec<u8>> = (0..4).map(|t| row(n, 500 + t + n as u64)).collect();
            let w: [&[u8]; 4] = std::array::from_fn(|r| ws[r].as_slice());
            let a: [&[u8]; 4] = std::array::from_fn(|t| acts[t].as_slice());
            let got = tile_avx512(n, w, a);
            for r in 0..4 {
                for t in 0..4 {
                    let one = super::super::avx2::vec_dot_f16_f16(n, w[r], a[t]);
                    assert_eq!(got[r][t].to_bits(), one.to_bits(), "n={n} r={r} t={t}");
                }
            }
        }
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
