//! BF16 weights · BF16 activations: `ggml_vec_dot_bf16` in each of its x86 builds, and
//! multi-token versions that give every token the single dot product's bits.
//!
//! Hugging Face checkpoints are BF16, and owl reads them in place, so a BF16 decoder's every
//! matrix goes through this product. It was only the portable reference (an `f64` sum one
//! element at a time): a 0.5B model decoded at 4.5 tokens/s where llama.cpp does 30.
//!
//! llama.cpp computes these rows with `ggml_vec_dot_bf16` for a single token (its tinyBLAS
//! prompt GEMM declines one-column products). That function has one body per instruction set,
//! and each is copied here operation for operation, aiming at llama.cpp's bits on the same CPU.
//! The AVX2 body is held to them by the `tiny-llama-bf16` arch reference; against a native
//! AVX-512 BF16 build the first decode steps agreed bit for bit and a later one did not, which
//! is not yet explained (docs/PERFORMANCE.md).
//! - AVX2: four 8-lane accumulators over steps of 32, multiply-adds (GCC contracts the source's
//!   `add(mul(..))` into FMAs), reduced `(c1 + c3) + (c2 + c4)`, then across lanes as
//!   `_mm_movehl_ps` / `_mm_movehdup_ps` pair them;
//! - AVX-512F: two 16-lane accumulators over steps of 32, multiply-adds, each reduced by
//!   GCC's `_mm512_reduce_add_ps` tree into an `f64`;
//! - AVX-512 BF16: two `vdpbf16ps` accumulators over steps of 64, reduced the same way.
//!
//! The elements past the last full step are added one by one in `f64`, as in ggml. Prompts use
//! the same per-token arithmetic, four tokens per pass over a weight row (`*_x4`): a row's
//! result never depends on the batch.

use std::arch::x86_64::*;

use owl_quant::GgmlType;

use super::common::tail_f64;

use crate::Kernels;

/// The AVX2 kernels (registered with the AVX2 level).
pub(super) fn register_avx2(k: &mut Kernels) {
    k.set_vec_dot(GgmlType::BF16, vec_dot_avx2, "bf16·bf16/avx2");
    k.set_vec_dot_x4(GgmlType::BF16, vec_dot_avx2_x4, "bf16·bf16 x4/avx2");
}

/// The AVX-512 kernels (registered with the AVX-512 level): `vdpbf16ps` where the CPU has
/// AVX-512 BF16, else the AVX-512F body.
pub(super) fn register_avx512(k: &mut Kernels) {
    if std::is_x86_feature_detected!("avx512bf16") {
        k.set_vec_dot(GgmlType::BF16, vec_dot_dpbf16, "bf16·bf16/avx512bf16");
        k.set_vec_dot_x4(GgmlType::BF16, vec_dot_dpbf16_x4, "bf16·bf16 x4/avx512bf16");
        k.set_vec_dot_2x4(
            GgmlType::BF16,
            vec_dot_dpbf16_2x4,
            "bf16·bf16 2x4/avx512bf16",
        );
        k.set_float_tile(GgmlType::BF16, tile_dpbf16, "bf16·bf16 4x4/avx512bf16");
    } else {
        k.set_vec_dot(GgmlType::BF16, vec_dot_avx512f, "bf16·bf16/avx512f");
        k.set_vec_dot_x4(GgmlType::BF16, vec_dot_avx512f_x4, "bf16·bf16 x4/avx512f");
        k.set_float_tile(GgmlType::BF16, tile_avx512f, "bf16·bf16 4x4/avx512f");
    }
}

fn check(n: usize, w: &[u8], a: &[&[u8]]) {
    assert!(
        w.len() >= 2 * n && a.iter().all(|r| r.len() >= 2 * n),
        "bf16·bf16: short rows"
    );
}

/// `ggml_vec_dot_bf16`'s AVX2 body.
fn vec_dot_avx2(n: usize, w: &[u8], a: &[u8]) -> f32 {
    check(n, w, &[a]);
    // SAFETY: registered only after AVX2/FMA/F16C were detected; lengths checked above.
    unsafe { dot_avx2::<1>(n, w.as_ptr(), [a.as_ptr()])[0] }
}

/// Four tokens against one row, each bit for bit [`vec_dot_avx2`].
fn vec_dot_avx2_x4(n: usize, w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
    check(n, w, &a);
    // SAFETY: as `vec_dot_avx2`.
    unsafe { dot_avx2::<4>(n, w.as_ptr(), a.map(|r| r.as_ptr())) }
}

/// `ggml_vec_dot_bf16`'s AVX-512F body.
fn vec_dot_avx512f(n: usize, w: &[u8], a: &[u8]) -> f32 {
    check(n, w, &[a]);
    // SAFETY: registered only with the AVX-512 level (AVX-512F detected); lengths checked.
    unsafe { dot_avx512f::<1>(n, w.as_ptr(), [a.as_ptr()])[0] }
}

/// Four tokens against one row, each bit for bit [`vec_dot_avx512f`].
fn vec_dot_avx512f_x4(n: usize, w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
    check(n, w, &a);
    // SAFETY: as `vec_dot_avx512f`.
    unsafe { dot_avx512f::<4>(n, w.as_ptr(), a.map(|r| r.as_ptr())) }
}

/// `ggml_vec_dot_bf16`'s AVX-512 BF16 body.
fn vec_dot_dpbf16(n: usize, w: &[u8], a: &[u8]) -> f32 {
    check(n, w, &[a]);
    // SAFETY: registered only where AVX-512F and AVX-512 BF16 were detected; lengths checked.
    unsafe { dot_dpbf16::<1, 1>(n, [w.as_ptr()], [a.as_ptr()])[0][0] }
}

/// Four tokens against one row, each bit for bit [`vec_dot_dpbf16`].
fn vec_dot_dpbf16_x4(n: usize, w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
    check(n, w, &a);
    // SAFETY: as `vec_dot_dpbf16`.
    unsafe { dot_dpbf16::<1, 4>(n, [w.as_ptr()], a.map(|r| r.as_ptr()))[0] }
}

/// Two rows against four tokens, each bit for bit [`vec_dot_dpbf16`].
fn vec_dot_dpbf16_2x4(n: usize, w: [&[u8]; 2], a: [&[u8]; 4]) -> [[f32; 4]; 2] {
    check(n, w[0], &a);
    check(n, w[1], &a);
    // SAFETY: as `vec_dot_dpbf16`.
    unsafe { dot_dpbf16::<2, 4>(n, w.map(|r| r.as_ptr()), a.map(|r| r.as_ptr())) }
}

/// Four rows against four tokens, each bit for bit [`vec_dot_dpbf16`].
fn tile_dpbf16(n: usize, w: [&[u8]; 4], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    for w in &w {
        check(n, w, &a);
    }
    // SAFETY: as `vec_dot_dpbf16`.
    unsafe { tile_dpbf16_passes(n, w.map(|r| r.as_ptr()), a.map(|r| r.as_ptr())) }
}

/// Four rows against four tokens, each bit for bit [`vec_dot_avx512f`].
fn tile_avx512f(n: usize, w: [&[u8]; 4], a: [&[u8]; 4]) -> [[f32; 4]; 4] {
    for w in &w {
        check(n, w, &a);
    }
    // SAFETY: as `vec_dot_avx512f`.
    unsafe { tile_avx512f_passes(n, w.map(|r| r.as_ptr()), a.map(|r| r.as_ptr())) }
}

/// A brain float as a float.
fn widen(b: u16) -> f32 {
    f32::from_bits(u32::from(b) << 16)
}

/// ggml's scalar tail: elements `from..n` added one by one, each product rounded to `f32`,
/// the sum in `f64`.
///
/// # Safety
/// `w` and `a` point to `2 * n` readable bytes.
unsafe fn tail(sum: f64, from: usize, n: usize, w: *const u8, a: *const u8) -> f32 {
    tail_f64(sum, from, n, |k| {
        // SAFETY: k < n (caller's contract).
        let (x, y) = unsafe {
            (
                (w.add(2 * k) as *const u16).read_unaligned(),
                (a.add(2 * k) as *const u16).read_unaligned(),
            )
        };
        widen(x) * widen(y)
    })
}

/// Eight brain floats at `p` widened to floats.
///
/// # Safety
/// `p` points to 16 readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load8(p: *const u8) -> __m256 {
    // SAFETY: caller's contract.
    let h = unsafe { _mm_loadu_si128(p as *const __m128i) };
    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))
}

/// # Safety
/// `w` and each `a[t]` point to `2 * n` readable bytes.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_avx2<const T: usize>(n: usize, w: *const u8, a: [*const u8; T]) -> [f32; T] {
    let np = n - n % 32;
    let mut acc = [[_mm256_setzero_ps(); 4]; T];
    let mut i = 0;
    while i < np {
        let mut x = [_mm256_setzero_ps(); 4];
        for (j, x) in x.iter_mut().enumerate() {
            // SAFETY: i + 32 <= n elements of two bytes.
            *x = unsafe { load8(w.add(2 * (i + 8 * j))) };
        }
        for t in 0..T {
            for j in 0..4 {
                // SAFETY: as above, for token t's row.
                let y = unsafe { load8(a[t].add(2 * (i + 8 * j))) };
                acc[t][j] = _mm256_fmadd_ps(x[j], y, acc[t][j]);
            }
        }
        i += 32;
    }
    let mut out = [0.0; T];
    for t in 0..T {
        let [c1, c2, c3, c4] = acc[t];
        let c = _mm256_add_ps(_mm256_add_ps(c1, c3), _mm256_add_ps(c2, c4));
        let g = _mm_add_ps(_mm256_extractf128_ps(c, 1), _mm256_castps256_ps128(c));
        let g = _mm_add_ps(g, _mm_movehl_ps(g, g));
        let g = _mm_add_ss(g, _mm_movehdup_ps(g));
        // SAFETY: caller's contract.
        out[t] = unsafe { tail(f64::from(_mm_cvtss_f32(g)), np, n, w, a[t]) };
    }
    out
}

/// GCC's `_mm512_reduce_add_ps`: the upper half onto the lower, twice, then lanes 0 + 2 and
/// 1 + 3, then those two.
#[inline]
#[target_feature(enable = "avx512f")]
fn reduce_add(v: __m512) -> f32 {
    let h = _mm256_add_ps(
        _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))),
        _mm256_castpd_ps(_mm512_extractf64x4_pd::<0>(_mm512_castps_pd(v))),
    );
    let q = _mm_add_ps(_mm256_extractf128_ps::<1>(h), _mm256_castps256_ps128(h));
    let mut l = [0.0f32; 4];
    // SAFETY: `l` holds four floats.
    unsafe { _mm_storeu_ps(l.as_mut_ptr(), q) };
    (l[0] + l[2]) + (l[1] + l[3])
}

/// Sixteen brain floats at `p` widened to floats.
///
/// # Safety
/// `p` points to 32 readable bytes.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn load16(p: *const u8) -> __m512 {
    // SAFETY: caller's contract.
    let h = unsafe { _mm256_loadu_si256(p as *const __m256i) };
    _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
}

/// # Safety
/// `w` and each `a[t]` point to `2 * n` readable bytes.
#[target_feature(enable = "avx512f")]
unsafe fn dot_avx512f<const T: usize>(n: usize, w: *const u8, a: [*const u8; T]) -> [f32; T] {
    let np = n - n % 32;
    let mut acc = [[_mm512_setzero_ps(); 2]; T];
    let mut i = 0;
    while i < np {
        // SAFETY: i + 32 <= n elements of two bytes.
        let x = unsafe { [load16(w.add(2 * i)), load16(w.add(2 * i + 32))] };
        for t in 0..T {
            for j in 0..2 {
                // SAFETY: as above, for token t's row.
                let y = unsafe { load16(a[t].add(2 * i + 32 * j)) };
                acc[t][j] = _mm512_fmadd_ps(x[j], y, acc[t][j]);
            }
        }
        i += 32;
    }
    let mut out = [0.0; T];
    for t in 0..T {
        let sum = f64::from(reduce_add(acc[t][0])) + f64::from(reduce_add(acc[t][1]));
        // SAFETY: caller's contract.
        out[t] = unsafe { tail(sum, np, n, w, a[t]) };
    }
    out
}

/// `R` weight rows against `T` tokens (a register tile: each weight vector loaded once for
/// `T` tokens, each activation vector once for `R` rows); `out[r][t]` is the single dot
/// product of row `r` and token `t`, bit for bit.
///
/// # Safety
/// Each `w[r]` and `a[t]` points to `2 * n` readable bytes.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn dot_dpbf16<const R: usize, const T: usize>(
    n: usize,
    w: [*const u8; R],
    a: [*const u8; T],
) -> [[f32; T]; R] {
    let np = n - n % 64;
    let mut acc = [[[_mm512_setzero_ps(); 2]; T]; R];
    let mut i = 0;
    while i < np {
        for (j, off) in [0, 64].into_iter().enumerate() {
            // SAFETY: i + 64 <= n elements of two bytes, for every row.
            let x: [__m512bh; R] =
                std::array::from_fn(|r| unsafe { load32(w[r].add(2 * i + off)) });
            for t in 0..T {
                // SAFETY: as above, for token t's row.
                let y = unsafe { load32(a[t].add(2 * i + off)) };
                for r in 0..R {
                    acc[r][t][j] = _mm512_dpbf16_ps(acc[r][t][j], x[r], y);
                }
            }
        }
        i += 64;
    }
    let mut out = [[0.0; T]; R];
    for r in 0..R {
        for t in 0..T {
            let [c1, c2] = acc[r][t];
            let sum = f64::from(reduce_add(c1)) + f64::from(reduce_add(c2));
            // SAFETY: caller's contract.
            out[r][t] = unsafe { tail(sum, np, n, w[r], a[t]) };
        }
    }
    out
}

/// The 4×4 tile of the `vdpbf16ps` body. Each output has two accumulators (the first and the
/// second 32 elements of every step of 64); sixteen outputs' 32 would not fit the registers with
/// the rows' vectors, so the tile runs two passes over the rows, one per accumulator, sixteen
/// accumulators each. Every accumulator sees the same operations in the same order as in
/// `dot_dpbf16`, so the bits are the same; a step loads four rows' and four tokens' vectors for
/// sixteen `vdpbf16ps` (the 2×4 tile: six loads for eight).
///
/// # Safety
/// AVX-512F and AVX-512 BF16 present; each `w[r]` and `a[t]` points to `2 * n` readable bytes.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn tile_dpbf16_passes(n: usize, w: [*const u8; 4], a: [*const u8; 4]) -> [[f32; 4]; 4] {
    let np = n - n % 64;
    // passes[j][r][t]: the accumulator of the j-th 32 elements of every step.
    let mut passes = [[[_mm512_setzero_ps(); 4]; 4]; 2];
    for (j, pass) in passes.iter_mut().enumerate() {
        let mut acc = [[_mm512_setzero_ps(); 4]; 4];
        let mut i = 0;
        while i < np {
            let off = 2 * i + 64 * j;
            // SAFETY: i + 64 <= n elements of two bytes, for every row and token.
            let x: [__m512bh; 4] = std::array::from_fn(|r| unsafe { load32(w[r].add(off)) });
            for t in 0..4 {
                // SAFETY: as above.
                let y = unsafe { load32(a[t].add(off)) };
                for r in 0..4 {
                    acc[r][t] = _mm512_dpbf16_ps(acc[r][t], x[r], y);
                }
            }
            i += 64;
        }
        *pass = acc;
    }
    // SAFETY: caller's contract.
    unsafe { finish_passes(&passes, np, n, w, a) }
}

/// The two passes' accumulators of each (row, token) summed as the single product sums its
/// pair (each reduced by GCC's tree into an `f64`), then ggml's tail from `np`.
///
/// # Safety
/// AVX-512F present; each `w[r]` and `a[t]` points to `2 * n` readable bytes.
#[target_feature(enable = "avx512f")]
unsafe fn finish_passes(
    passes: &[[[__m512; 4]; 4]; 2],
    np: usize,
    n: usize,
    w: [*const u8; 4],
    a: [*const u8; 4],
) -> [[f32; 4]; 4] {
    let mut out = [[0.0; 4]; 4];
    for r in 0..4 {
        for t in 0..4 {
            let sum =
                f64::from(reduce_add(passes[0][r][t])) + f64::from(reduce_add(passes[1][r][t]));
            // SAFETY: caller's contract.
            out[r][t] = unsafe { tail(sum, np, n, w[r], a[t]) };
        }
    }
    out
}

/// 32 brain floats at `p`, as `vdpbf16ps` takes them.
///
/// # Safety
/// AVX-512F present; `p` points to 64 readable bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn load32(p: *const u8) -> __m512bh {
    // SAFETY: 64 bytes at `p` (caller's contract); unaligned load. The transmute reinterprets
    // 64 bytes of plain data (`__m512i` and `__m512bh` have the same size).
    unsafe { std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(p.cast())) }
}

/// The 4×4 tile of the AVX-512F body, in two passes as [`tile_dpbf16_passes`] (the first and
/// the second 16 elements of every step of 32).
///
/// # Safety
/// AVX-512F present; each `w[r]` and `a[t]` points to `2 * n` readable bytes.
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512f_passes(n: usize, w: [*const u8; 4], a: [*const u8; 4]) -> [[f32; 4]; 4] {
    let np = n - n % 32;
    // passes[j][r][t]: the accumulator of the j-th 16 elements of every step.
    let mut passes = [[[_mm512_setzero_ps(); 4]; 4]; 2];
    for (j, pass) in passes.iter_mut().enumerate() {
        let mut acc = [[_mm512_setzero_ps(); 4]; 4];
        let mut i = 0;
        while i < np {
            let off = 2 * i + 32 * j;
            // SAFETY: i + 32 <= n elements of two bytes, for every row and token.
            let x: [__m512; 4] = std::array::from_fn(|r| unsafe { load16(w[r].add(off)) });
            for t in 0..4 {
                // SAFETY: as above.
                let y = unsafe { load16(a[t].add(off)) };
                for r in 0..4 {
                    acc[r][t] = _mm512_fmadd_ps(x[r], y, acc[r][t]);
                }
            }
            i += 32;
        }
        *pass = acc;
    }
    // SAFETY: caller's contract.
    unsafe { finish_passes(&passes, np, n, w, a) }
}

/// Scalar twins: the same operations one lane at a time, for the tests.
#[cfg(test)]
mod twins {
    use super::super::common::tail_f64;
    use super::widen;

    fn at(r: &[u8], k: usize) -> f32 {
        widen(u16::from_le_bytes([r[2 * k], r[2 * k + 1]]))
    }

    fn tail(sum: f64, from: usize, n: usize, w: &[u8], a: &[u8]) -> f32 {
        tail_f64(sum, from, n, |k| at(w, k) * at(a, k))
    }

    /// GCC's 16-lane reduction tree.
    fn reduce16(v: [f32; 16]) -> f32 {
        let h: [f32; 8] = std::array::from_fn(|i| v[i + 8] + v[i]);
        let q: [f32; 4] = std::array::from_fn(|i| h[i + 4] + h[i]);
        (q[0] + q[2]) + (q[1] + q[3])
    }

    pub fn avx2(n: usize, w: &[u8], a: &[u8]) -> f32 {
        let np = n - n % 32;
        let mut c = [[0.0f32; 8]; 4];
        for i in (0..np).step_by(32) {
            for (j, acc) in c.iter_mut().enumerate() {
                for (l, s) in acc.iter_mut().enumerate() {
                    let k = i + 8 * j + l;
                    *s = at(w, k).mul_add(at(a, k), *s);
                }
            }
        }
        let v: [f32; 8] = std::array::from_fn(|l| (c[0][l] + c[2][l]) + (c[1][l] + c[3][l]));
        let g: [f32; 4] = std::array::from_fn(|l| v[l + 4] + v[l]);
        let g = [g[0] + g[2], g[1] + g[3]];
        tail(f64::from(g[0] + g[1]), np, n, w, a)
    }

    pub fn avx512f(n: usize, w: &[u8], a: &[u8]) -> f32 {
        let np = n - n % 32;
        let mut c = [[0.0f32; 16]; 2];
        for i in (0..np).step_by(32) {
            for (j, acc) in c.iter_mut().enumerate() {
                for (l, s) in acc.iter_mut().enumerate() {
                    let k = i + 16 * j + l;
                    *s = at(w, k).mul_add(at(a, k), *s);
                }
            }
        }
        tail(
            f64::from(reduce16(c[0])) + f64::from(reduce16(c[1])),
            np,
            n,
            w,
            a,
        )
    }

    /// `vdpbf16ps` as the Intel SDM states it: per lane, the odd pair's product added first,
    /// then the even pair's, each add rounded to nearest even; denormal inputs read as zero
    /// and denormal results flushed to zero.
    pub fn dpbf16(n: usize, w: &[u8], a: &[u8]) -> f32 {
        let daz = |x: f32| {
            if x.is_subnormal() {
                0.0f32.copysign(x)
            } else {
                x
            }
        };
        let np = n - n % 64;
        let mut c = [[0.0f32; 16]; 2];
        for i in (0..np).step_by(64) {
            for (j, acc) in c.iter_mut().enumerate() {
                for (l, s) in acc.iter_mut().enumerate() {
                    let k = i + 32 * j + 2 * l;
                    for e in [k + 1, k] {
                        *s = daz(*s + daz(at(w, e)) * daz(at(a, e)));
                    }
                }
            }
        }
        tail(
            f64::from(reduce16(c[0])) + f64::from(reduce16(c[1])),
            np,
            n,
            w,
            a,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brain floats with a wide range and some exact zeros.
    fn row(n: usize, seed: u64) -> Vec<u8> {
        crate::x86::common::test_half_row(n, seed, owl_quant::bf16::fp32_to_bf16)
    }

    type Single = fn(usize, &[u8], &[u8]) -> f32;
    type Four = fn(usize, &[u8], [&[u8]; 4]) -> [f32; 4];

    /// Each kernel equals its twin bit for bit at every length (full steps, tails, both), its
    /// four-token version equals it for every token, and it stays within rounding of the
    /// portable reference.
    fn check_kernel(single: Single, four: Four, twin: Single) {
        for n in [1, 7, 31, 32, 33, 63, 64, 65, 128, 200, 576, 896, 1000] {
            let w = row(n, n as u64);
            let acts: Vec<Vec<u8>> = (0..4).map(|t| row(n, 1000 + 7 * t + n as u64)).collect();
            let a: [&[u8]; 4] = std::array::from_fn(|t| acts[t].as_slice());
            let got = four(n, &w, a);
            for t in 0..4 {
                let one = single(n, &w, a[t]);
                assert_eq!(one.to_bits(), twin(n, &w, a[t]).to_bits(), "n={n} t={t}");
                assert_eq!(got[t].to_bits(), one.to_bits(), "x4 n={n} t={t}");
                let exact = owl_quant::bf16::vec_dot(n, &w, a[t]);
                let mag: f32 = (0..n)
                    .map(|k| (twins_at(&w, k) * twins_at(a[t], k)).abs())
                    .sum();
                assert!(
                    (one - exact).abs() <= 1e-5 * mag.max(1.0),
                    "n={n}: {one} vs {exact}"
                );
            }
        }
    }

    fn twins_at(r: &[u8], k: usize) -> f32 {
        widen(u16::from_le_bytes([r[2 * k], r[2 * k + 1]]))
    }

    /// Every (row, token) of a 4×4 tile equals the single product, at every length.
    fn check_tile(single: Single, tile: crate::types::FloatTileFn) {
        for n in [1, 7, 31, 32, 33, 63, 64, 65, 128, 200, 576, 896, 1000] {
            let rows: Vec<Vec<u8>> = (0..4).map(|r| row(n, 50 + 3 * r + n as u64)).collect();
            let acts: Vec<Vec<u8>> = (0..4).map(|t| row(n, 90 + t + n as u64)).collect();
            let w: [&[u8]; 4] = std::array::from_fn(|r| rows[r].as_slice());
            let a: [&[u8]; 4] = std::array::from_fn(|t| acts[t].as_slice());
            let got = tile(n, w, a);
            for r in 0..4 {
                for t in 0..4 {
                    let one = single(n, w[r], a[t]);
                    assert_eq!(got[r][t].to_bits(), one.to_bits(), "4x4 n={n} r={r} t={t}");
                }
            }
        }
    }

    #[test]
    fn avx2_is_ggml_avx2_body() {
        if !crate::x86::detect_avx2() {
            eprintln!("skipped: no AVX2 on this CPU");
            return;
        }
        check_kernel(vec_dot_avx2, vec_dot_avx2_x4, twins::avx2);
    }

    #[test]
    fn avx512f_is_ggml_avx512f_body() {
        if !std::is_x86_feature_detected!("avx512f") {
            eprintln!("skipped: no AVX-512F on this CPU");
            return;
        }
        check_kernel(vec_dot_avx512f, vec_dot_avx512f_x4, twins::avx512f);
        check_tile(vec_dot_avx512f, tile_avx512f);
    }

    #[test]
    fn dpbf16_is_ggml_avx512bf16_body() {
        if !std::is_x86_feature_detected!("avx512bf16") {
            eprintln!("skipped: no AVX-512 BF16 on this CPU");
            return;
        }
        check_kernel(vec_dot_dpbf16, vec_dot_dpbf16_x4, twins::dpbf16);
        check_tile(vec_dot_dpbf16, tile_dpbf16);
        for n in [64, 65, 200, 896] {
            let rows: Vec<Vec<u8>> = (0..2).map(|r| row(n, 50 + r)).collect();
            let acts: Vec<Vec<u8>> = (0..4).map(|t| row(n, 90 + t)).collect();
            let a: [&[u8]; 4] = std::array::from_fn(|t| acts[t].as_slice());
            let got = vec_dot_dpbf16_2x4(n, [&rows[0], &rows[1]], a);
            for r in 0..2 {
                for t in 0..4 {
                    let one = vec_dot_dpbf16(n, &rows[r], a[t]);
                    assert_eq!(got[r][t].to_bits(), one.to_bits(), "2x4 n={n} r={r} t={t}");
                }
            }
        }
    }
}
