//! AVX-512 VNNI kernels that take two groups of a repacked layout at once: sixteen rows in one
//! zmm register, so one broadcast activation load feeds sixteen rows' `vpdpbusd` instead of
//! eight.
//!
//! Why: in the ×8 kernels (`vnni.rs`) every `vpdpbusd` reads its four activation bytes with an
//! embedded broadcast, and on Zen 4 that load-and-multiply form runs at about 1.6 per cycle
//! against 2 for the register form, while the kernels' float epilogue competes for the same two
//! pipes. A zmm `vpdpbusd` with a `{1to16}` broadcast does the work of two ymm ones on Zen 4's
//! halves with one load: measured alone, 0.98 zmm per cycle, i.e. 1.96 ymm equivalents. The
//! layout is unchanged: the two groups' 32-byte chunks are joined into one zmm when loaded
//! (`vinserti64x4`, once per chunk for all the call's tokens).
//!
//! Bit-identity: lane `r` of the low half is row `r` of the first group, lane `r` of the high
//! half row `r` of the second, and every lane goes through exactly the ymm kernel's integer
//! sums (exact) and float steps (`cvt`, `mul`, `fmadd`, `add`), so each half equals the single
//! group's result from the ×8 kernel and the scalar reference.

use std::arch::x86_64::*;

use owl_quant::{q8_0, q8_1};

use super::common::{by_token_count, in_fours};
use crate::repack::{Q41_X8_BLOCK, Q80_X8_BLOCK, X8};
use crate::{Kernels, Layout};

pub(super) fn register(k: &mut Kernels) {
    k.set_repacked_pair(Layout::Q41X8, gemm_q4_1_x16, "q4_1×8 pairs/avx512vnni");
    k.set_repacked_pair(Layout::Q80X8, gemm_q8_0_x16, "q8_0×8 pairs/avx512vnni");
}

/// The table entry of a pair kernel: checks the operands, then runs the `const T` kernel on
/// the tokens four at a time (as `repacked_entry!`, with two outputs per token); `$act_block`
/// is the activation bytes per block (with extras).
macro_rules! pair_entry {
    ($name:ident, $kernel:ident, $block:expr, $act_block:expr, $what:literal) => {
        /// Two consecutive groups (`2 * nb` blocks of `w`) against every token of `a`: `out[t]`
        /// is the first group's row results for token `t`, `out[a.len() + t]` the second's.
        fn $name(nb: usize, w: &[u8], a: &[&[u8]], out: &mut [[f32; X8]]) {
            let n = a.len();
            assert!(
                w.len() >= 2 * nb * $block
                    && out.len() == 2 * n
                    && a.iter().all(|r| r.len() >= nb * $act_block),
                concat!($what, " pairs: short operands")
            );
            let (w0, w1) = (w.as_ptr(), w[nb * $block..].as_ptr());
            in_fours(a, |t, m, y| {
                // SAFETY: registered only after AVX-512 F/BW/VL/VNNI were detected; lengths
                // checked above.
                let (r0, r1) = unsafe { by_token_count!(m, y, widen, $kernel(nb, w0, w1)) };
                out[t..t + m].copy_from_slice(&r0[..m]);
                out[n + t..n + t + m].copy_from_slice(&r1[..m]);
            });
        }
    };
}

pair_entry!(
    gemm_q4_1_x16,
    q4_1_x16,
    Q41_X8_BLOCK,
    q8_1::TYPE_SIZE + 8,
    "q4_1×8"
);
pair_entry!(
    gemm_q8_0_x16,
    q8_0_x16,
    Q80_X8_BLOCK,
    q8_0::TYPE_SIZE + 2,
    "q8_0×8"
);

type Halves<const T: usize> = ([[f32; X8]; T], [[f32; X8]; T]);

fn widen<const T: usize>((a, b): Halves<T>) -> Halves<4> {
    let w = |r: [[f32; X8]; T]| std::array::from_fn(|i| if i < T { r[i] } else { [0.0; X8] });
    (w(a), w(b))
}

/// The 32 bytes at `p0` in the low half and at `p1` in the high half.
///
/// # Safety
/// AVX-512 F present; both point to 32 readable bytes.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn join(p0: *const u8, p1: *const u8) -> __m512i {
    // SAFETY: 32 bytes at each (caller's contract); unaligned loads.
    unsafe {
        _mm512_inserti64x4::<1>(
            _mm512_castsi256_si512(_mm256_loadu_si256(p0.cast())),
            _mm256_loadu_si256(p1.cast()),
        )
    }
}

/// Sixteen f16 (eight at `p0`, eight at `p1`) as f32.
///
/// # Safety
/// AVX-512 F present; 16 readable bytes at each.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn f16x16(p0: *const u8, p1: *const u8) -> __m512 {
    // SAFETY: 16 bytes at each (caller's contract); unaligned loads.
    unsafe { _mm512_cvtph_ps(_mm256_loadu2_m128i(p1.cast(), p0.cast())) }
}

/// The four activation bytes at `p` in all sixteen 32-bit lanes.
///
/// # Safety
/// `p` points to four readable bytes.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn bcast4(p: *const u8) -> __m512i {
    // SAFETY: four bytes at `p` (caller's contract); unaligned read.
    _mm512_set1_epi32(unsafe { p.cast::<i32>().read_unaligned() })
}

/// # Safety
/// AVX-512 F/BW/VL/VNNI present; `w0` and `w1` each hold `nb` Q4_1×8 blocks and each `y[t]`
/// `nb` `Q8_1` blocks followed by their `nb` `[d, s]: f32` pairs.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn q4_1_x16<const T: usize>(
    nb: usize,
    w0: *const u8,
    w1: *const u8,
    y: [*const u8; T],
) -> Halves<T> {
    let m4 = _mm512_set1_epi8(0x0f);
    let mut acc = [_mm512_setzero_ps(); T];
    for b in 0..nb {
        // SAFETY: block b of both groups and of every token is in bounds (caller's contract).
        let (wb0, wb1) = unsafe { (w0.add(b * Q41_X8_BLOCK), w1.add(b * Q41_X8_BLOCK)) };
        let (mut lo, mut hi) = ([_mm512_setzero_si512(); 4], [_mm512_setzero_si512(); 4]);
        for c in 0..4 {
            // SAFETY: chunk c (32 bytes) of the 128 at 32 in each block.
            let v = unsafe { join(wb0.add(32 + 32 * c), wb1.add(32 + 32 * c)) };
            lo[c] = _mm512_and_si512(v, m4);
            hi[c] = _mm512_and_si512(_mm512_srli_epi16::<4>(v), m4);
        }
        // SAFETY: d[8] and m[8] (f16) at 0 and 16 of each block.
        let (d, m) = unsafe { (f16x16(wb0, wb1), f16x16(wb0.add(16), wb1.add(16))) };
        let off = b * q8_1::TYPE_SIZE + q8_1::QS;
        for t in 0..T {
            let (mut sa, mut sb) = (_mm512_setzero_si512(), _mm512_setzero_si512());
            for c in 0..4 {
                // SAFETY: columns 8c..8c + 8 of token t's 32 bytes in block b.
                let (ylo, yhi) = unsafe {
                    let p = y[t].add(off + 8 * c);
                    (bcast4(p), bcast4(p.add(4)))
                };
                sa = _mm512_dpbusd_epi32(sa, lo[c], ylo);
                sb = _mm512_dpbusd_epi32(sb, hi[c], yhi);
            }
            let dots = _mm512_add_epi32(sa, sb);
            // SAFETY: token t's block-b scales (two f32 after its nb blocks).
            let (dt, st) = unsafe {
                let p = y[t].add(nb * q8_1::TYPE_SIZE + 8 * b).cast::<f32>();
                (
                    _mm512_set1_ps(p.read_unaligned()),
                    _mm512_set1_ps(p.add(1).read_unaligned()),
                )
            };
            let block = _mm512_fmadd_ps(
                _mm512_mul_ps(d, dt),
                _mm512_cvtepi32_ps(dots),
                _mm512_mul_ps(m, st),
            );
            acc[t] = _mm512_add_ps(acc[t], block);
        }
    }
    halves(acc)
}

/// Each token's sixteen lanes split into the two groups' eight rows.
#[inline]
#[target_feature(enable = "avx512f")]
fn halves<const T: usize>(acc: [__m512; T]) -> Halves<T> {
    let mut r0 = [[0f32; X8]; T];
    let mut r1 = [[0f32; X8]; T];
    for t in 0..T {
        let mut all = [0f32; 2 * X8];
        // SAFETY: `all` holds sixteen f32; unaligned store.
        unsafe { _mm512_storeu_ps(all.as_mut_ptr(), acc[t]) };
        r0[t].copy_from_slice(&all[..X8]);
        r1[t].copy_from_slice(&all[X8..]);
    }
    (r0, r1)
}

/// # Safety
/// AVX-512 F/BW/VL/VNNI present; `w0` and `w1` each hold `nb` Q8_0×8 blocks and each `y[t]`
/// `nb` `Q8_0` blocks followed by their `nb` sums.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn q8_0_x16<const T: usize>(
    nb: usize,
    w0: *const u8,
    w1: *const u8,
    y: [*const u8; T],
) -> Halves<T> {
    let flip = _mm512_set1_epi8(i8::MIN);
    let mut acc = [_mm512_setzero_ps(); T];
    for b in 0..nb {
        // SAFETY: block b of both groups and of every token is in bounds (caller's contract).
        let (wb0, wb1) = unsafe { (w0.add(b * Q80_X8_BLOCK), w1.add(b * Q80_X8_BLOCK)) };
        // As the ×8 kernel: even and odd groups in two accumulators, the odd one starting at
        // -128·Σy to take the flipped weights' offset back out.
        let mut sumi = [[_mm512_setzero_si512(); 2]; T];
        for (t, s) in sumi.iter_mut().enumerate() {
            // SAFETY: token t's block-b sum (i16 after its nb blocks).
            let sum = unsafe {
                y[t].add(nb * q8_0::TYPE_SIZE + 2 * b)
                    .cast::<i16>()
                    .read_unaligned()
            };
            s[1] = _mm512_set1_epi32(-128 * i32::from(i16::from_le(sum)));
        }
        for g in 0..8 {
            // SAFETY: group g (32 bytes) at 16 + 32g of each block; sign bits flipped.
            let v = _mm512_xor_si512(
                unsafe { join(wb0.add(16 + 32 * g), wb1.add(16 + 32 * g)) },
                flip,
            );
            for (t, s) in sumi.iter_mut().enumerate() {
                // SAFETY: columns 4g..4g + 4 of token t's block b (qs at 2).
                let yv = unsafe { bcast4(y[t].add(b * q8_0::TYPE_SIZE + 2 + 4 * g)) };
                s[g % 2] = _mm512_dpbusd_epi32(s[g % 2], v, yv);
            }
        }
        // SAFETY: d[8] (f16) at 0 of each block.
        let d = unsafe { f16x16(wb0, wb1) };
        for t in 0..T {
            // SAFETY: token t's block-b scale (f16 at its start).
            let dt = unsafe {
                let h = y[t].add(b * q8_0::TYPE_SIZE).cast::<u16>().read_unaligned();
                _mm512_cvtph_ps(_mm256_set1_epi16(h as i16))
            };
            let dot = _mm512_add_epi32(sumi[t][0], sumi[t][1]);
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(d, dt), _mm512_cvtepi32_ps(dot), acc[t]);
        }
    }
    halves(acc)
}
