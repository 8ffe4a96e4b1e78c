//! Helpers shared by the AVX2 kernels: f16 scale conversion without false dependencies,
//! unaligned loads, ggml's byte-unpacking and horizontal-sum shapes.

use std::arch::x86_64::*;

use crate::repack::{Packed, X8};
use crate::types::Layout;

/// The two little-endian f16 at `p` and `p + 2`, widened with F16C into lanes 0 and 1.
///
/// Scales are converted in pairs where a block has two (and the weight and activation scales
/// of 32-element blocks are paired by [`f16_pair`]): when LLVM sees a single f16 lane used, it
/// loads it with `vpinsrw` into whichever register is at hand, often the accumulator, which
/// chains each block's scale onto the previous block's FMA and made the 32-element kernels
/// markedly slower than ggml's. (`Q3_K` and `Q6_K`, one scale per 256 values, still get that
/// `vpinsrw`; there it is hidden by the rest of the block's work.)
///
/// # Safety
/// `p` must point to four readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16x2_at(p: *const u8) -> __m128 {
    // SAFETY: forwarded from the caller.
    let bits = unsafe { u32_at(p) };
    _mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32))
}

/// The f16 at `x` in lane 0 and the f16 at `y` in lane 1, widened with F16C (two scales in one
/// zero-extending move; see [`f16x2_at`]).
///
/// # Safety
/// `x` and `y` must each point to two readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16_pair(x: *const u8, y: *const u8) -> __m128 {
    // SAFETY: forwarded from the caller; the reads are unaligned.
    let (bx, by) = unsafe {
        (
            x.cast::<u16>().read_unaligned(),
            y.cast::<u16>().read_unaligned(),
        )
    };
    let bits = u32::from(u16::from_le(bx)) | (u32::from(u16::from_le(by)) << 16);
    _mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32))
}

/// The four f16 scales at `p[j] + o` as f32 lanes.
///
/// # Safety
/// Each `p[j] + o` points to two readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16_x4(p: [*const u8; 4], o: usize) -> __m128 {
    // SAFETY: forwarded from the caller; unaligned reads.
    let h =
        |j: usize| unsafe { u64::from(u16::from_le(p[j].add(o).cast::<u16>().read_unaligned())) };
    let bits = h(0) | (h(1) << 16) | (h(2) << 32) | (h(3) << 48);
    _mm_cvtph_ps(_mm_cvtsi64_si128(bits as i64))
}

/// Lane 0 of `v`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn lane0(v: __m128) -> f32 {
    _mm_cvtss_f32(v)
}

/// Lane 1 of `v`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn lane1(v: __m128) -> f32 {
    _mm_cvtss_f32(_mm_movehdup_ps(v))
}

/// The little-endian f32 at `p` (the scale of a `Q8_K` block).
///
/// # Safety
/// `p` must point to four readable bytes.
#[inline]
pub(super) unsafe fn f32_at(p: *const u8) -> f32 {
    // SAFETY: the caller guarantees four readable bytes; the read is unaligned.
    f32::from_bits(u32::from_le(unsafe { p.cast::<u32>().read_unaligned() }))
}

/// The little-endian u32 at `p`.
///
/// # Safety
/// `p` must point to four readable bytes.
#[inline]
pub(super) unsafe fn u32_at(p: *const u8) -> u32 {
    // SAFETY: the caller guarantees four readable bytes; the read is unaligned.
    u32::from_le(unsafe { p.cast::<u32>().read_unaligned() })
}

/// 32 bytes at `p`.
///
/// # Safety
/// `p` must point to 32 readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn load32(p: *const u8) -> __m256i {
    // SAFETY: the caller guarantees 32 readable bytes; the load is unaligned.
    unsafe { _mm256_loadu_si256(p.cast::<__m256i>()) }
}

/// 16 bytes at `p`.
///
/// # Safety
/// `p` must point to 16 readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn load16(p: *const u8) -> __m128i {
    // SAFETY: the caller guarantees 16 readable bytes; the load is unaligned.
    unsafe { _mm_loadu_si128(p.cast::<__m128i>()) }
}

/// Horizontal sum of eight lanes in ggml's `hsum_float_8` order (high half + low half, then
/// the upper pair onto the lower, then lane 1 onto lane 0).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hsum_float_8(x: __m256) -> f32 {
    let mut res = _mm256_extractf128_ps(x, 1);
    res = _mm_add_ps(res, _mm256_castps256_ps128(x));
    res = _mm_add_ps(res, _mm_movehl_ps(res, res));
    res = _mm_add_ss(res, _mm_movehdup_ps(res));
    _mm_cvtss_f32(res)
}

/// Eight f32 lanes, lane i = the sum of the products of bytes 4i..4i+3 (`ax` unsigned, `sy`
/// signed; pairs are summed in 16 bits with saturation first, as `maddubs` does).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn mul_sum_us8_pairs_float(ax: __m256i, sy: __m256i) -> __m256 {
    let dot = _mm256_maddubs_epi16(ax, sy);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), dot))
}

/// As [`mul_sum_us8_pairs_float`] for two signed operands (the sign moved onto `y`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn mul_sum_i8_pairs_float(x: __m256i, y: __m256i) -> __m256 {
    let ax = _mm256_sign_epi8(x, x);
    let sy = _mm256_sign_epi8(y, x);
    mul_sum_us8_pairs_float(ax, sy)
}

/// The 32 nibbles of the 16 bytes at `p` as bytes: low nibbles first, then high nibbles.
///
/// # Safety
/// `p` must point to 16 readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn bytes_from_nibbles_32(p: *const u8) -> __m256i {
    // SAFETY: forwarded from the caller.
    let tmp = unsafe { load16(p) };
    let both = _mm256_insertf128_si256(_mm256_castsi128_si256(tmp), _mm_srli_epi16(tmp, 4), 1);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0f))
}

/// The 32 bits of the u32 at `p` spread to 32 bytes: 0xFF where the bit is set, 0 elsewhere.
///
/// # Safety
/// `p` must point to four readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn bytes_from_bits_32(p: *const u8) -> __m256i {
    // SAFETY: forwarded from the caller.
    let x32 = unsafe { u32_at(p) };
    let shuf = _mm256_set_epi64x(
        0x0303_0303_0303_0303,
        0x0202_0202_0202_0202,
        0x0101_0101_0101_0101,
        0,
    );
    let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(x32 as i32), shuf);
    let bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe));
    _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1))
}

/// ggml's scalar tail of a 16-bit float dot product (F16, BF16): the elements `from..n` past
/// the last full vector step, each `product(k)` rounded to `f32` and added one by one to `sum`
/// in `f64`.
#[inline]
pub(super) fn tail_f64(mut sum: f64, from: usize, n: usize, product: impl Fn(usize) -> f32) -> f32 {
    for k in from..n {
        sum += f64::from(product(k));
    }
    sum as f32
}

/// Runs `f(t, n, y)` on the tokens of `a` four at a time: `y[..n]` points to tokens
/// `t..t + n` (`n` is 4 but for the last call, which may take fewer; the rest of `y` is null).
#[inline]
pub(super) fn in_fours(a: &[&[u8]], mut f: impl FnMut(usize, usize, [*const u8; 4])) {
    let mut t = 0;
    while t < a.len() {
        let n = (a.len() - t).min(4);
        let mut ptrs = [std::ptr::null(); 4];
        for (p, r) in ptrs.iter_mut().zip(&a[t..t + n]) {
            *p = r.as_ptr();
        }
        f(t, n, ptrs);
        t += n;
    }
}

/// The `T` token results of a repacked kernel, padded to four.
pub(super) fn widen<const T: usize>(r: [[f32; X8]; T]) -> [[f32; X8]; 4] {
    std::array::from_fn(|i| if i < T { r[i] } else { [0.0; X8] })
}

/// `$kernel::<T>($arg, .., [$y[0], .., $y[T - 1]])` for `T = $n` (1 to 4; `$y` holds at least
/// `$n` token pointers), a narrower result padded to four tokens by `$widen`: the one place
/// that picks a token count's monomorphised kernel, for `repacked_entry!` and the pair entries.
/// A macro because a `const T` kernel is one function per `T`, which no generic function can
/// take as one argument; the expansion is the direct calls written out by hand before. It
/// calls `unsafe fn`s: use it inside an `unsafe` block whose `// SAFETY:` covers them.
macro_rules! by_token_count {
    ($n:expr, $y:ident, $widen:path, $kernel:ident($($arg:expr),* $(,)?)) => {
        match $n {
            1 => $widen($kernel::<1>($($arg,)* [$y[0]])),
            2 => $widen($kernel::<2>($($arg,)* [$y[0], $y[1]])),
            3 => $widen($kernel::<3>($($arg,)* [$y[0], $y[1], $y[2]])),
            _ => $kernel::<4>($($arg,)* [$y[0], $y[1], $y[2], $y[3]]),
        }
    };
}
pub(super) use by_token_count;

/// The table entry for a layout: checks the operands' lengths against the layout's block
/// sizes, then runs the `const T` kernel on the tokens four at a time.
macro_rules! repacked_entry {
    ($name:ident, $kernel:ident, $layout:expr) => {
        /// SIMD twin of the layout's scalar reference in `crate::repack`.
        fn $name(nb: usize, w: &[u8], a: &[&[u8]], out: &mut [[f32; X8]]) {
            let p = $crate::x86::common::packed(&$layout);
            assert!(
                w.len() >= nb * p.block_bytes
                    && a.len() == out.len()
                    && a.iter().all(|r| r.len() >= nb * p.acts.block_bytes()),
                "{:?}: short operands",
                p.layout
            );
            $crate::x86::common::in_fours(a, |t, n, y| {
                // SAFETY: registered only after the kernel's ISA was detected (see
                // `crate::isa::ISAS`); lengths checked above.
                let r = unsafe {
                    $crate::x86::common::by_token_count!(
                        n,
                        y,
                        $crate::x86::common::widen,
                        $kernel(nb, w.as_ptr())
                    )
                };
                out[t..t + n].copy_from_slice(&r[..n]);
            });
        }
    };
}
pub(super) use repacked_entry;

/// The registry entry of `layout` (every repacked layout has one).
pub(super) fn packed(layout: &Layout) -> &'static Packed {
    crate::repack::for_layout(*layout).expect("a repacked layout")
}

/// A row of `n` 16-bit floats for the tests (`bits` converts each value): a wide range of
/// pseudo-random values, every thirteenth fifty times larger, every sixty-first exactly zero.
#[cfg(test)]
pub(super) fn test_half_row(n: usize, seed: u64, bits: fn(f32) -> u16) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(2 * n);
    for i in 0..n {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let v = ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0;
        let v = match i % 61 {
            0 => 0.0,
            _ if i % 13 == 0 => v * 50.0,
            _ => v,
        };
        out.extend_from_slice(&bits(v).to_le_bytes());
    }
    out
}
