//! AMX tile products of the super-block layouts (Q4_K×8, Q5_K×8, Q6_K×8): the sub-blocks are
//! tile products, folded exactly into each layout's per-super-block integers.
//!
//! Why a kernel of their own: a super-block's rows carry a scale per sub-block (32 columns, or
//! 16 for Q6_K×8) and, for Q4_K×8/Q5_K×8, a minimum. The layouts' references
//! (`crate::repack`) form `sumi = Σ_s sc_s Σ q·y` and `summ = Σ_s m_s Σ y` as exact integers,
//! then two `fma`s per super-block. So each sub-block is one tile product with `k` = its
//! columns, its 16 × 8 integer sums are scaled by the rows' `sc_s` and added in integers, and
//! the float epilogue runs once per super-block, as in the reference: the same bits as the
//! scalar reference and the AVX-512 kernels, whatever the number of tokens. Q6_K×8's six-bit
//! `q` stands for `q - 32`, which fits a signed byte: unpacked so, `TDPBSSD` gives
//! `Σ (q - 32)·y`, the reference's `Σ q·y - 32·bsums[s]`, with no offset term.
//!
//! Shared with the 32-column kernels (`amx_gemm.rs`): the tile engine (`amx_tiles.rs`), the
//! operands, the nibble and fifth-bit unpacking.

use std::arch::x86_64::*;

use owl_quant::q8_k;

use super::amx_gemm::{add_fifth_bits, f16x8, load_tokens, unpack_nibbles, Operands, TILE_TOKENS};
use super::amx_tiles::{TileConfig, TileOps, C0, C1};
use crate::repack::{
    q5k_chunk, q5k_fifth, q6k_high, q6k_low, Q4K_X8_BLOCK, Q5K_X8_BLOCK, Q6K_X8_BLOCK, X8,
};

/// How a super-block layout (256 columns: Q4_K×8, Q5_K×8, Q6_K×8) meets the tiles: its
/// sub-blocks of `K` columns are tile products whose integer sums fold, with the rows' scales,
/// into the layout's exact per-super-block integer `sumi`.
///
/// # Safety
/// AVX2, FMA and F16C present; `wb` points to one whole super-block of one group, `stage` to
/// `K / 4 · 32` writable bytes, `s < 256 / K`.
pub(super) trait SuperTileLayout {
    /// Weight bytes of one super-block of one group.
    const BLOCK: usize;
    /// Columns per sub-block (the tiles' `k`).
    const K: usize;
    /// Whether the unpacked values are signed bytes (`TDPBSSD`) rather than unsigned.
    const SIGNED: bool;
    /// Whether the layout has minima (`acc - accm`, Q4_K×8 and Q5_K×8) or not (Q6_K×8).
    const MINS: bool;
    /// Sub-block `s`'s values as a `B` operand (`K / 4` rows of 32 bytes) in `stage`.
    unsafe fn sub_block(wb: *const u8, s: usize, stage: *mut u8);
    /// The eight rows' scales of sub-block `s`.
    unsafe fn scales(wb: *const u8, s: usize) -> __m256i;
    /// The eight rows' minima of sub-block `s` (only where `MINS`).
    unsafe fn mins(wb: *const u8, s: usize) -> __m256i;
    /// The eight rows' `dmin` (only where `MINS`).
    unsafe fn dmin(wb: *const u8) -> __m256;
}

/// Eight bytes of rows `r` at `p + 2r` (the pairs of Q4_K×8's minima and Q6_K×8's scales), as
/// `i32`, signed or not.
///
/// # Safety
/// AVX2 present; 16 readable bytes at `p`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn strided_bytes(p: *const u8, signed: bool) -> __m256i {
    // SAFETY: bytes `p + 2r` for r < 8 (caller's contract).
    let v: [i32; 8] = std::array::from_fn(|r| unsafe {
        let b = *p.add(2 * r);
        if signed {
            i32::from(b as i8)
        } else {
            i32::from(b)
        }
    });
    // SAFETY: eight i32 in `v`.
    unsafe { _mm256_loadu_si256(v.as_ptr().cast()) }
}

/// Q4_K×8's (and Q5_K×8's) scales, minima and `dmin`: `scales[s][r]` at 32, the minima of
/// sub-blocks `2p`, `2p + 1` of row `r` at `96 + 16p + 2r`, `dmin[8]` at 16.
macro_rules! k4_scales_and_mins {
    () => {
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn scales(wb: *const u8, s: usize) -> __m256i {
            // SAFETY: eight scale bytes of sub-block `s` (trait contract).
            let sc = unsafe { wb.add(32 + 8 * s).cast::<i64>().read_unaligned() };
            _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(sc))
        }

        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn mins(wb: *const u8, s: usize) -> __m256i {
            // SAFETY: the minima pairs at 96 (trait contract).
            unsafe { strided_bytes(wb.add(96 + 16 * (s / 2) + s % 2), false) }
        }

        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn dmin(wb: *const u8) -> __m256 {
            // SAFETY: `dmin[8]` at 16 (trait contract).
            unsafe { f16x8(wb.add(16)) }
        }
    };
}

pub(super) struct Q4K;
impl SuperTileLayout for Q4K {
    const BLOCK: usize = Q4K_X8_BLOCK;
    const K: usize = 32;
    const SIGNED: bool = false;
    const MINS: bool = true;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn sub_block(wb: *const u8, s: usize, stage: *mut u8) {
        // SAFETY: sub-block `s` is chunks `4s..4s + 4` at 160 (trait contract).
        unsafe { unpack_nibbles(wb.add(160 + 128 * s), stage) }
    }

    k4_scales_and_mins!();
}

pub(super) struct Q5K;
impl SuperTileLayout for Q5K {
    const BLOCK: usize = Q5K_X8_BLOCK;
    const K: usize = 32;
    const SIGNED: bool = false;
    const MINS: bool = true;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn sub_block(wb: *const u8, s: usize, stage: *mut u8) {
        // SAFETY: sub-block `s`'s nibbles and fifth bits (`q5k_chunk`, `q5k_fifth`; trait
        // contract).
        unsafe {
            unpack_nibbles(wb.add(q5k_chunk(4 * s)), stage);
            add_fifth_bits(wb.add(q5k_fifth(s)), stage);
        }
    }

    k4_scales_and_mins!();
}

/// Q6_K×8's sixteen-column sub-block `s` as a signed `B` operand (4 rows of 32 bytes, row `j`
/// holding columns `16s + 4j..16s + 4j + 4` of each row): the six-bit `q` (low nibble from
/// chunk `2s + j / 2`, top two bits from bits `2j`, `2j + 1` of the high-bit chunk) minus 32,
/// which fits a signed byte, so `TDPBSSD` gives `Σ (q - 32)·y` with no offset term.
///
/// # Safety
/// AVX2 present; `wb` one whole Q6_K×8 super-block, `s < 16`, 128 writable bytes at `stage`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6k_sub_block(wb: *const u8, s: usize, stage: *mut u8) {
    let (low, three, offset) = (
        _mm256_set1_epi8(0x0f),
        _mm256_set1_epi8(3),
        _mm256_set1_epi8(32),
    );
    // SAFETY: sub-block `s`'s two nibble chunks and its high bits (`q6k_low`, `q6k_high`), and
    // four 32-byte rows of `stage` (caller's contract).
    unsafe {
        let high = _mm256_loadu_si256(wb.add(q6k_high(s)).cast());
        for half in 0..2 {
            let v = _mm256_loadu_si256(wb.add(q6k_low(2 * s + half)).cast());
            let nibbles = [
                _mm256_and_si256(v, low),
                _mm256_and_si256(_mm256_srli_epi16(v, 4), low),
            ];
            for (h, nibble) in nibbles.into_iter().enumerate() {
                let j = 2 * half + h;
                let shift = _mm_cvtsi32_si128(2 * j as i32);
                let top = _mm256_and_si256(_mm256_srl_epi16(high, shift), three);
                let q = _mm256_or_si256(nibble, _mm256_slli_epi16(top, 4));
                _mm256_storeu_si256(stage.add(32 * j).cast(), _mm256_sub_epi8(q, offset));
            }
        }
    }
}

pub(super) struct Q6K;
impl SuperTileLayout for Q6K {
    const BLOCK: usize = Q6K_X8_BLOCK;
    const K: usize = 16;
    const SIGNED: bool = true;
    const MINS: bool = false;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn sub_block(wb: *const u8, s: usize, stage: *mut u8) {
        // SAFETY: the trait's contract is `q6k_sub_block`'s.
        unsafe { q6k_sub_block(wb, s, stage) }
    }

    /// The signed scales of sixteen-column sub-blocks `2p`, `2p + 1` of row `r` at
    /// `16 + 16p + 2r`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn scales(wb: *const u8, s: usize) -> __m256i {
        // SAFETY: the scale pairs at 16 (trait contract).
        unsafe { strided_bytes(wb.add(16 + 16 * (s / 2) + s % 2), true) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn mins(_: *const u8, _: usize) -> __m256i {
        _mm256_setzero_si256()
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dmin(_: *const u8) -> __m256 {
        _mm256_setzero_ps()
    }
}

/// Sub-blocks per super-block, at most (Q6_K×8's sixteen).
const MAX_SUBS: usize = 16;

/// The super-block tile product: per super-block and sub-block `s` the tiles give `Σ q·y`
/// (Q6_K×8: `Σ (q - 32)·y`), folded exactly into `sumi = Σ_s sc_s Σ q·y`; with minima,
/// `summ = Σ_s m_s Σ y` from the activations' `bsums`. Then `acc = fma(d_row·d_tok, sumi,
/// acc)`, `accm = fma(dmin_row·d_tok, summ, accm)` and finally `acc - accm`, as
/// `crate::repack`'s `k_reference` and `gemm_q6_k_x8_scalar`.
///
/// # Safety
/// As `amx_gemm::gemm_tiles`, with `Q8_K` activation rows.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn gemm_super_tiles<L: SuperTileLayout, T: TileOps>(tiles: &mut T, op: Operands) {
    let Operands {
        nb,
        w,
        groups,
        acts,
        a_row,
        n,
        out,
    } = op;
    debug_assert!(groups == 1 || groups == 2);
    let (k, subs) = (L::K, 256 / L::K);
    let stride = X8 * groups;
    let cfg = TileConfig::int8(k);
    let mut accm = if L::MINS {
        vec![0f32; n * stride]
    } else {
        Vec::new()
    };
    // A super-block's unpacked sub-blocks per group, the partial token tile, results.
    let mut stage_b = [[[0u8; 256]; MAX_SUBS]; 2];
    let mut stage_a = [[0u8; 32]; TILE_TOKENS];
    let mut c = [[[0i32; X8]; TILE_TOKENS]; 2];
    let mut sumi = [[_mm256_setzero_si256(); TILE_TOKENS]; 2];
    let which = [C0, C1];
    // SAFETY: as in `gemm_tiles`: super-block `b < nb` of group `g < groups` (read through
    // `L`); rows `t < n` of `acts`, each read inside its `Q8_K` block `b` (`d`, 256 values, 16
    // `bsums`); `out`'s and `accm`'s `n · stride` floats.
    unsafe {
        std::ptr::write_bytes(out, 0, n * stride);
        tiles.configure(&cfg);
        for b in 0..nb {
            let mut scales = [[_mm256_setzero_si256(); MAX_SUBS]; 2];
            let mut mins = [[_mm256_setzero_si256(); MAX_SUBS]; 2];
            let mut d = [_mm256_setzero_ps(); 2];
            let mut dmin = [_mm256_setzero_ps(); 2];
            for g in 0..groups {
                let wb = w.add((g * nb + b) * L::BLOCK);
                d[g] = f16x8(wb);
                if L::MINS {
                    dmin[g] = L::dmin(wb);
                }
                for s in 0..subs {
                    L::sub_block(wb, s, stage_b[g][s].as_mut_ptr());
                    scales[g][s] = L::scales(wb, s);
                    if L::MINS {
                        mins[g][s] = L::mins(wb, s);
                    }
                }
            }
            for t0 in (0..n).step_by(TILE_TOKENS) {
                let m = (n - t0).min(TILE_TOKENS);
                for sumi in sumi.iter_mut().take(groups) {
                    *sumi = [_mm256_setzero_si256(); TILE_TOKENS];
                }
                for s in 0..subs {
                    let first = acts.add(t0 * a_row + b * q8_k::TYPE_SIZE + q8_k::QS + k * s);
                    load_tokens(tiles, first, a_row, m, k, &mut stage_a);
                    for (g, &tile) in which.iter().enumerate().take(groups) {
                        tiles.load_b(tile, stage_b[g][s].as_ptr());
                        tiles.zero(tile);
                        if L::SIGNED {
                            tiles.dot_signed(tile);
                        } else {
                            tiles.dot_unsigned(tile);
                        }
                        tiles.store(tile, c[g].as_mut_ptr().cast());
                        for j in 0..m {
                            let dot = _mm256_loadu_si256(c[g][j].as_ptr().cast());
                            sumi[g][j] =
                                _mm256_add_epi32(sumi[g][j], _mm256_mullo_epi32(scales[g][s], dot));
                        }
                    }
                }
                #[allow(clippy::needless_range_loop)] // `j` indexes two groups' sums and `acts`
                for j in 0..m {
                    let act = acts.add((t0 + j) * a_row + b * q8_k::TYPE_SIZE);
                    let d_tok = _mm256_set1_ps(act.cast::<f32>().read_unaligned());
                    let bsums = act.add(q8_k::BSUMS).cast::<i16>();
                    for g in 0..groups {
                        let at = (t0 + j) * stride + X8 * g;
                        let o = out.add(at);
                        let acc = _mm256_fmadd_ps(
                            _mm256_mul_ps(d[g], d_tok),
                            _mm256_cvtepi32_ps(sumi[g][j]),
                            _mm256_loadu_ps(o),
                        );
                        _mm256_storeu_ps(o, acc);
                        if L::MINS {
                            let mut summ = _mm256_setzero_si256();
                            for s in 0..subs {
                                let y = i32::from(bsums.add(2 * s).read_unaligned())
                                    + i32::from(bsums.add(2 * s + 1).read_unaligned());
                                summ = _mm256_add_epi32(
                                    summ,
                                    _mm256_mullo_epi32(mins[g][s], _mm256_set1_epi32(y)),
                                );
                            }
                            let om = accm.as_mut_ptr().add(at);
                            let accm_v = _mm256_fmadd_ps(
                                _mm256_mul_ps(dmin[g], d_tok),
                                _mm256_cvtepi32_ps(summ),
                                _mm256_loadu_ps(om),
                            );
                            _mm256_storeu_ps(om, accm_v);
                        }
                    }
                }
            }
        }
        tiles.release();
        for (i, m) in accm.iter().enumerate() {
            *out.add(i) -= *m;
        }
    }
}
