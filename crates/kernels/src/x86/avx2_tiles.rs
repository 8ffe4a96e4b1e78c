//! Batched AVX2 dot products (one weight row × four tokens, two rows × four tokens) for the
//! formats whose ggml AVX2 kernel is "signed 8-bit values in blocks of 32 with one f32 scale
//! product per block" against `Q8_0` activations: `Q8_0`, `Q4_0`, `Q5_0` and `MXFP4`.
//!
//! The tile code exists once, generic over [`SignedBlock32`], which only says how a format
//! stores its block: its size, its scale, and how its 32 values become 32 signed bytes.
//!
//! Why every (row, token) result is bit-identical to the single-token kernel of the same format
//! (and so `linear`'s output does not depend on the batch size or on which kernel a token ends
//! up in): per block the tile forms the same f32 scale product `d_w * d_a` (f16 → f32 and e8m0
//! → f32 are exact, and f32 multiplication is commutative), the same eight 32-bit integer lanes
//! (the same `sign`/`maddubs`/`madd` on the same bytes), and adds them with the same
//! `_mm256_fmadd_ps(d, q, acc)` into an accumulator of its own per (row, token), visiting the
//! blocks in the same order; the final reduction is the same `hsum_float_8`. What the tile
//! saves is work that does not touch a single (row, token) sum: a weight block is decoded once
//! for four tokens, an activation block is loaded once for two rows, and a block's scales are
//! converted together and multiplied four products at a time.
//!
//! `MXFP4`'s ggml kernel alternates two accumulators (even and odd blocks), adds them before
//! the horizontal sum and handles an odd last block in scalar code; the tile does the same,
//! with the even blocks and the odd blocks in two passes so that a 2×4 tile never needs more
//! than eight accumulators in registers.

use std::arch::x86_64::*;

use owl_quant::{mxfp4, q4_0, q5_0, q8_0, GgmlType};

use super::common::*;
use crate::Kernels;

pub(super) fn register(k: &mut Kernels) {
    k.set_vec_dot_x4(GgmlType::Q8_0, vec_dot_x4::<Q8_0>, "q8_0·q8_0 x4/avx2");
    k.set_vec_dot_2x4(GgmlType::Q8_0, vec_dot_2x4::<Q8_0>, "q8_0·q8_0 2x4/avx2");
    k.set_vec_dot_x4(GgmlType::Q4_0, vec_dot_x4::<Q4_0>, "q4_0·q8_0 x4/avx2");
    k.set_vec_dot_2x4(GgmlType::Q4_0, vec_dot_2x4::<Q4_0>, "q4_0·q8_0 2x4/avx2");
    k.set_vec_dot_x4(GgmlType::Q5_0, vec_dot_x4::<Q5_0>, "q5_0·q8_0 x4/avx2");
    k.set_vec_dot_2x4(GgmlType::Q5_0, vec_dot_2x4::<Q5_0>, "q5_0·q8_0 2x4/avx2");
    k.set_vec_dot_x4(GgmlType::MXFP4, vec_dot_x4::<Mxfp4>, "mxfp4·q8_0 x4/avx2");
    k.set_vec_dot_2x4(GgmlType::MXFP4, vec_dot_2x4::<Mxfp4>, "mxfp4·q8_0 2x4/avx2");
}

/// A weight format of 32-element blocks whose AVX2 dot product with `Q8_0` is, per block,
/// `acc = fmadd(d_w * d_a, Σ₄ w·a as f32, acc)` over 32 signed bytes `w`.
pub(super) trait SignedBlock32 {
    /// Bytes per block.
    const BYTES: usize;
    /// Whether the single kernel alternates two accumulators over even and odd blocks and does
    /// an odd last block with [`SignedBlock32::odd_last_block`] (`MXFP4`).
    const PAIRED: bool = false;

    /// Whether [`SignedBlock32::scale_bits`] gives f16 bits (else the bits of an f32).
    const F16_SCALE: bool = true;

    /// The scale of the block at `p`: by default the little-endian f16 at its start.
    ///
    /// # Safety
    /// `p` points to a whole block.
    #[inline(always)]
    unsafe fn scale_bits(p: *const u8) -> u32 {
        // SAFETY: the block starts with its scale (caller's contract); unaligned read.
        u32::from(u16::from_le(unsafe { p.cast::<u16>().read_unaligned() }))
    }

    /// The block's 32 values as signed bytes, in the order of the `Q8_0` block they meet.
    ///
    /// # Safety
    /// AVX2/FMA/F16C present; `p` points to a whole block.
    unsafe fn values(p: *const u8) -> __m256i;

    /// `d_w * d_a * Σ w·a` of one block, computed as the single kernel computes its last odd
    /// block. Only called when `PAIRED`, and every `PAIRED` format overrides it.
    ///
    /// # Safety
    /// AVX2/FMA/F16C present; `w` points to a whole block and `a` to a whole `Q8_0` block.
    unsafe fn odd_last_block(_w: *const u8, _a: *const u8) -> f32 {
        0.0
    }
}

/// `Q8_0` weights: `d: f16`, then 32 signed bytes.
pub(super) struct Q8_0;

impl SignedBlock32 for Q8_0 {
    const BYTES: usize = q8_0::TYPE_SIZE;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn values(p: *const u8) -> __m256i {
        // SAFETY: the 32 quants follow the scale (caller's contract).
        unsafe { load32(p.add(q8_0::QS)) }
    }
}

/// `Q4_0` weights: `d: f16`, then 16 bytes of nibbles (low nibbles first); values `q - 8`.
pub(super) struct Q4_0;

impl SignedBlock32 for Q4_0 {
    const BYTES: usize = q4_0::TYPE_SIZE;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn values(p: *const u8) -> __m256i {
        // SAFETY: 16 nibble bytes at QS (caller's contract).
        let qx = unsafe { bytes_from_nibbles_32(p.add(q4_0::QS)) };
        _mm256_sub_epi8(qx, _mm256_set1_epi8(8))
    }
}

/// `Q5_0` weights: `d: f16`, 32 fifth bits, 16 bytes of nibbles; values `q - 16`.
pub(super) struct Q5_0;

impl SignedBlock32 for Q5_0 {
    const BYTES: usize = q5_0::TYPE_SIZE;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn values(p: *const u8) -> __m256i {
        // SAFETY: qh (4 bytes) at QH and qs (16 bytes) at QS (caller's contract).
        let (qx, hi) = unsafe {
            (
                bytes_from_nibbles_32(p.add(q5_0::QS)),
                bytes_from_bits_32(p.add(q5_0::QH)),
            )
        };
        // A clear fifth bit means q - 16 < 0: set the byte's top nibble to make it negative.
        _mm256_or_si256(qx, _mm256_andnot_si256(hi, _mm256_set1_epi8(0xf0u8 as i8)))
    }
}

/// `MXFP4` weights: an e8m0 exponent, then 16 bytes of nibbles indexing `KVALUES`.
pub(super) struct Mxfp4;

/// The bits of `mxfp4::e8m0_half(e)`.
#[inline(always)]
fn e8m0_half_bits(e: u8) -> u32 {
    if e < 2 {
        0x0020_0000u32 << e
    } else {
        u32::from(e - 1) << 23
    }
}

impl SignedBlock32 for Mxfp4 {
    const BYTES: usize = mxfp4::TYPE_SIZE;
    const PAIRED: bool = true;

    const F16_SCALE: bool = false;

    #[inline(always)]
    unsafe fn scale_bits(p: *const u8) -> u32 {
        // SAFETY: the block starts with its exponent byte (caller's contract).
        e8m0_half_bits(unsafe { *p })
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn values(p: *const u8) -> __m256i {
        // SAFETY: KVALUES holds 16 bytes.
        let table = unsafe { _mm_loadu_si128(mxfp4::KVALUES.as_ptr().cast::<__m128i>()) };
        // SAFETY: 16 nibble bytes at QS (caller's contract).
        let idx = unsafe { bytes_from_nibbles_32(p.add(mxfp4::QS)) };
        // The same bytes as ggml's two 128-bit lookups: low nibbles' values, then high ones'.
        _mm256_shuffle_epi8(_mm256_set_m128i(table, table), idx)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn odd_last_block(w: *const u8, a: *const u8) -> f32 {
        // SAFETY: forwarded from the caller.
        unsafe { super::avx2_quants::mxfp4_block_scalar(w, a) }
    }
}

/// Four tokens against one weight row, bit-identical per token to the single kernel.
fn vec_dot_x4<B: SignedBlock32>(n: usize, w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
    let nb = blocks::<B>(n, &[w], &a);
    // SAFETY: registered only after AVX2/FMA/F16C were detected; every row holds `nb` blocks.
    unsafe { dot_1x4_avx2::<B>(nb, w.as_ptr(), a.map(|r| r.as_ptr())) }
}

/// Two weight rows against four tokens, bit-identical per (row, token) to the single kernel.
fn vec_dot_2x4<B: SignedBlock32>(n: usize, w: [&[u8]; 2], a: [&[u8]; 4]) -> [[f32; 4]; 2] {
    let nb = blocks::<B>(n, &w, &a);
    // SAFETY: registered only after AVX2/FMA/F16C were detected; every row holds `nb` blocks.
    unsafe { dot_2x4_avx2::<B>(nb, w.map(|r| r.as_ptr()), a.map(|r| r.as_ptr())) }
}

/// Whole blocks in `n` elements, after checking that every weight row holds that many blocks
/// of `B::BYTES` and every activation row that many `Q8_0` blocks.
fn blocks<B: SignedBlock32>(n: usize, w: &[&[u8]], a: &[&[u8]]) -> usize {
    let nb = n / 32;
    let covers = |len: usize, size: usize| nb.checked_mul(size).is_some_and(|need| len >= need);
    assert!(
        w.iter().all(|r| covers(r.len(), B::BYTES))
            && a.iter().all(|r| covers(r.len(), q8_0::TYPE_SIZE)),
        "vec_dot: rows shorter than {nb} blocks"
    );
    nb
}

/// Lane `t` of each 128-bit half of `d`, broadcast across that half.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn bcast(d: __m256, t: usize) -> __m256 {
    match t {
        0 => _mm256_shuffle_ps::<0x00>(d, d),
        1 => _mm256_shuffle_ps::<0x55>(d, d),
        2 => _mm256_shuffle_ps::<0xaa>(d, d),
        _ => _mm256_shuffle_ps::<0xff>(d, d),
    }
}

/// `acc[r][t] = fmadd(d_w[r] * d_a[t], Σ₄ w[r]·a[t], acc[r][t])` over blocks
/// `first, first + step, ...` below `end`: `R` weight rows (1 or 2) against four tokens.
///
/// # Safety
/// AVX2/FMA/F16C present; every `w[r]` holds `end` blocks of `B::BYTES` bytes and every `a[t]`
/// `end` blocks of `Q8_0`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn pass<B: SignedBlock32, const R: usize>(
    w: [*const u8; R],
    a: [*const u8; 4],
    first: usize,
    step: usize,
    end: usize,
) -> [[__m256; 4]; R] {
    let mut acc = [[_mm256_setzero_ps(); 4]; R];
    let mut ib = first;
    while ib < end {
        let (wo, ao) = (ib * B::BYTES, ib * q8_0::TYPE_SIZE);
        // SAFETY: block ib < end lies inside every row (caller's contract); every block starts
        // with its scale.
        let (wb, ab, qx) = unsafe {
            (
                w.map(|p| u64::from(B::scale_bits(p.add(wo)))),
                a.map(|p| u64::from(u16::from_le(p.add(ao).cast::<u16>().read_unaligned()))),
                w.map(|p| B::values(p.add(wo))),
            )
        };
        let ax = qx.map(|q| _mm256_sign_epi8(q, q));
        let abits = (ab[0] | (ab[1] << 16) | (ab[2] << 32) | (ab[3] << 48)) as i64;
        // The activation scales as f32, in lanes t and t + 4 of `ad2`, and the weight scales in
        // lanes 0 and R - 1 of `wd`. No conversion is of a single f16: LLVM loads a lone f16
        // with a `vpinsrw` into whatever register is at hand, often an accumulator, which
        // chains each block onto the previous one (the x4 kernel ran ~10% slower that way).
        let (ad2, wd) = if !B::F16_SCALE {
            let wbits = (wb[0] | (wb[R - 1] << 32)) as i64;
            (
                _mm256_cvtph_ps(_mm_set1_epi64x(abits)),
                _mm_castsi128_ps(_mm_cvtsi64_si128(wbits)),
            )
        } else if R == 2 {
            let wbits = (wb[0] | (wb[1] << 16)) as i32;
            (
                _mm256_cvtph_ps(_mm_set1_epi64x(abits)),
                _mm_cvtph_ps(_mm_cvtsi32_si128(wbits)),
            )
        } else {
            // One weight scale: converted with the activation scales, in lane 4.
            let v = _mm256_cvtph_ps(_mm_set_epi64x(wb[0] as i64, abits));
            let ad = _mm256_castps256_ps128(v);
            (_mm256_set_m128(ad, ad), _mm256_extractf128_ps::<1>(v))
        };
        // d[r] lanes t and t + 4 = d_w[r] * d_a[t], the f32 product the single kernel forms,
        // repeated in both 128-bit halves so that one in-lane shuffle broadcasts any of them.
        let d: [__m256; R] = std::array::from_fn(|r| {
            let wr = if r == 0 { lane0(wd) } else { lane1(wd) };
            _mm256_mul_ps(_mm256_set1_ps(wr), ad2)
        });
        for t in 0..4 {
            // SAFETY: as above, for token t's 32 quants.
            let qy = unsafe { load32(a[t].add(ao + q8_0::QS)) };
            for r in 0..R {
                let p = mul_sum_us8_pairs_float(ax[r], _mm256_sign_epi8(qy, qx[r]));
                acc[r][t] = _mm256_fmadd_ps(bcast(d[r], t), p, acc[r][t]);
            }
        }
        ib += step;
    }
    acc
}

/// The results of `R` rows × four tokens, the accumulators combined as the single kernel
/// combines its own.
///
/// # Safety
/// AVX2/FMA/F16C present; each `w[r]` holds `nb` blocks of `B::BYTES` and each `a[t]` `nb`
/// `Q8_0` blocks.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile<B: SignedBlock32, const R: usize>(
    nb: usize,
    w: [*const u8; R],
    a: [*const u8; 4],
) -> [[f32; 4]; R] {
    if !B::PAIRED {
        // SAFETY: forwarded from the caller.
        let acc = unsafe { pass::<B, R>(w, a, 0, 1, nb) };
        return acc.map(|row| row.map(|v| hsum_float_8(v)));
    }
    let pairs = nb - nb % 2;
    // SAFETY: forwarded from the caller; both passes stay below `pairs <= nb`.
    let (even, odd) = unsafe {
        (
            pass::<B, R>(w, a, 0, 2, pairs),
            pass::<B, R>(w, a, 1, 2, pairs),
        )
    };
    std::array::from_fn(|r| {
        std::array::from_fn(|t| {
            let mut s = hsum_float_8(_mm256_add_ps(even[r][t], odd[r][t]));
            if pairs < nb {
                // SAFETY: block `pairs < nb` lies inside the rows.
                s += unsafe {
                    B::odd_last_block(
                        w[r].add(pairs * B::BYTES),
                        a[t].add(pairs * q8_0::TYPE_SIZE),
                    )
                };
            }
            s
        })
    })
}

/// # Safety
/// AVX2/FMA/F16C present; `w` holds `nb` blocks of `B::BYTES` and each `a[t]` `nb` `Q8_0`
/// blocks.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_1x4_avx2<B: SignedBlock32>(nb: usize, w: *const u8, a: [*const u8; 4]) -> [f32; 4] {
    // SAFETY: forwarded from the caller.
    let [r] = unsafe { tile::<B, 1>(nb, [w], a) };
    r
}

/// # Safety
/// AVX2/FMA/F16C present; each `w[r]` holds `nb` blocks of `B::BYTES` and each `a[t]` `nb`
/// `Q8_0` blocks.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_2x4_avx2<B: SignedBlock32>(
    nb: usize,
    w: [*const u8; 2],
    a: [*const u8; 4],
) -> [[f32; 4]; 2] {
    // SAFETY: forwarded from the caller.
    unsafe { tile::<B, 2>(nb, w, a) }
}
