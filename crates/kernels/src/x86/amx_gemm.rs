//! AMX tile products of the 32-column repacked layouts (Q8_0×8, Q4_0×8, Q4_1×8, Q5_0×8): one
//! or two groups of eight rows against any number of tokens, sixteen tokens per tile.
//!
//! Why these give the AVX-512 kernels' bits: every layout's arithmetic (`crate::repack`) is an
//! exact integer per (row, token) and block, then a fixed float epilogue. The tile engine forms
//! the same integers (`TDPBSSD`/`TDPBSUD` sum 32 byte products per block exactly), and the
//! epilogue here is the scalar reference's operation for operation (`d_row·d_tok`, then one
//! `fma`; for Q4_1 the minimum term inside the block, then one add), eight rows per vector.
//! So a row's result does not depend on whether AMX, AVX-512 or the scalar loop made it, nor
//! on how many tokens were in the call.
//!
//! Shapes: per block, a group's weights are one `B` tile as they lie in memory (Q8_0×8) or
//! after unpacking the nibbles (and fifth bits) into bytes once per block and call; sixteen
//! tokens' activation rows are one `A` tile read straight from the activation buffer (a last
//! partial tile is copied into a zero-padded stage first, so no load runs past the buffer);
//! `C = A·B` is 16 tokens × 8 rows of `i32`, stored and turned into floats per token. The
//! `k = 32` tiles use a quarter of the engine's 16 × 16 × 64 multiply, because the float scales
//! change every 32 columns; the epilogue, not the multiply, bounds these kernels.
//!
//! The kernels run on the hardware ([`Amx`]) or on its exact software model ([`SoftTiles`]),
//! which is how they are tested on CPUs without AMX. The super-block layouts (Q4_K×8, Q5_K×8,
//! Q6_K×8) have their kernel in `amx_super_tiles.rs`; this file registers both families.

use std::arch::x86_64::*;

use owl_quant::{q8_0, q8_1, q8_k};

use super::amx_super_tiles::{gemm_super_tiles, SuperTileLayout, Q4K, Q5K, Q6K};
use super::amx_tiles::{Amx, SoftTiles, TileConfig, TileOps, C0, C1};
use crate::repack::{Q40_X8_BLOCK, Q41_X8_BLOCK, Q50_X8_BLOCK, Q80_X8_BLOCK, X8};
use crate::{Kernels, Layout};

pub(super) fn register(k: &mut Kernels) {
    k.set_repacked_tiles(Layout::Q80X8, gemm_q8_0_amx, "q8_0×8 tiles/amx-int8");
    k.set_repacked_tiles(Layout::Q40X8, gemm_q4_0_amx, "q4_0×8 tiles/amx-int8");
    k.set_repacked_tiles(Layout::Q41X8, gemm_q4_1_amx, "q4_1×8 tiles/amx-int8");
    k.set_repacked_tiles(Layout::Q50X8, gemm_q5_0_amx, "q5_0×8 tiles/amx-int8");
    k.set_repacked_tiles(Layout::Q4KX8, gemm_q4_k_amx, "q4_k×8 tiles/amx-int8");
    k.set_repacked_tiles(Layout::Q5KX8, gemm_q5_k_amx, "q5_k×8 tiles/amx-int8");
    k.set_repacked_tiles(Layout::Q6KX8, gemm_q6_k_amx, "q6_k×8 tiles/amx-int8");
}

/// How one 32-column layout meets the tile engine.
///
/// # Safety
/// Every method needs AVX2, FMA and F16C; `wb` points to one whole block of one group, `stage`
/// to 256 writable bytes, `act` to a token's whole activation row (`nb` blocks and extras),
/// `b < nb`.
trait TileLayout {
    /// Weight bytes of one block of one group.
    const BLOCK: usize;
    /// Activation bytes of one block (the `Q8_0`/`Q8_1` block), and where its values start.
    const ACT_BLOCK: usize;
    const ACT_QS: usize;
    /// Whether the weight bytes are unsigned (`TDPBSUD`) rather than signed (`TDPBSSD`).
    const UNSIGNED: bool;
    /// The per-block row constants the epilogue needs (scales), read once per group and block.
    type Rows: Copy;
    /// The block's weights as a `B` operand (8 rows of 32 bytes): `wb` itself or `stage`,
    /// filled.
    unsafe fn b_operand(wb: *const u8, stage: *mut u8) -> *const u8;
    unsafe fn rows(wb: *const u8) -> Self::Rows;
    /// Folds one token's integer sums of block `b` (`isum`, eight rows) into `acc`. `act` is
    /// the token's activation row (`nb` blocks and their extras).
    unsafe fn epilogue(
        rows: Self::Rows,
        isum: __m256i,
        act: *const u8,
        nb: usize,
        b: usize,
        acc: __m256,
    ) -> __m256;
}

/// Eight `f16` at `p` as `f32`.
///
/// # Safety
/// F16C present; 16 readable bytes at `p`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16x8(p: *const u8) -> __m256 {
    // SAFETY: 16 bytes at `p` (caller's contract); unaligned load.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(p.cast()) })
}

/// One `f16` at `p`, broadcast as `f32`.
///
/// # Safety
/// F16C present; two readable bytes at `p`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_splat(p: *const u8) -> __m256 {
    // SAFETY: two bytes at `p` (caller's contract).
    let h = unsafe { p.cast::<u16>().read_unaligned() };
    _mm256_set1_ps(_mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(h)))))
}

/// Unpacks four chunks of nibbles (`crate::repack`: chunk `c`'s byte `4r + i` holds row `r`'s
/// columns `8c + i` low and `8c + 4 + i` high) into the eight `B` rows: row `2c` the low
/// nibbles, row `2c + 1` the high ones, so row `j` holds columns `4j..4j + 4` of each row.
///
/// # Safety
/// AVX2 present; 128 readable bytes at `chunks`, 256 writable at `stage`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn unpack_nibbles(chunks: *const u8, stage: *mut u8) {
    let low = _mm256_set1_epi8(0x0f);
    for c in 0..4 {
        // SAFETY: chunk `c` of four and rows `2c`, `2c + 1` of eight (caller's contract).
        unsafe {
            let v = _mm256_loadu_si256(chunks.add(32 * c).cast());
            let lo = _mm256_and_si256(v, low);
            let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
            _mm256_storeu_si256(stage.add(64 * c).cast(), lo);
            _mm256_storeu_si256(stage.add(64 * c + 32).cast(), hi);
        }
    }
}

/// Adds the fifth bits at `fifth` (bit `j` of byte `k` for byte `k` of `B` row `j`) to the
/// nibbles in `stage` (Q5_0×8 and each Q5_K×8 sub-block keep them so).
///
/// # Safety
/// AVX2 present; 32 readable bytes at `fifth`, 256 writable at `stage`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn add_fifth_bits(fifth: *const u8, stage: *mut u8) {
    let one = _mm256_set1_epi8(1);
    // SAFETY: 32 bytes at `fifth`, eight rows of 32 at `stage` (caller's contract).
    unsafe {
        let fifth = _mm256_loadu_si256(fifth.cast());
        for j in 0..8 {
            let shift = _mm_cvtsi32_si128(j as i32);
            let bit = _mm256_and_si256(_mm256_srl_epi16(fifth, shift), one);
            let row = stage.add(32 * j);
            let v = _mm256_loadu_si256(row.cast());
            _mm256_storeu_si256(row.cast(), _mm256_or_si256(v, _mm256_slli_epi16(bit, 4)));
        }
    }
}

struct Q80;
impl TileLayout for Q80 {
    const BLOCK: usize = Q80_X8_BLOCK;
    const ACT_BLOCK: usize = q8_0::TYPE_SIZE;
    const ACT_QS: usize = q8_0::QS;
    const UNSIGNED: bool = false;
    type Rows = __m256;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn b_operand(wb: *const u8, _stage: *mut u8) -> *const u8 {
        // SAFETY: the eight 32-byte rows follow the block's eight scales (trait contract).
        unsafe { wb.add(16) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn rows(wb: *const u8) -> __m256 {
        // SAFETY: a block starts with its eight rows' `d` (trait contract).
        unsafe { f16x8(wb) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn epilogue(
        d: __m256,
        isum: __m256i,
        act: *const u8,
        _: usize,
        b: usize,
        acc: __m256,
    ) -> __m256 {
        // SAFETY: block `b` of the token's row (trait contract).
        let d_tok = unsafe { f16_splat(act.add(b * Self::ACT_BLOCK)) };
        _mm256_fmadd_ps(_mm256_mul_ps(d, d_tok), _mm256_cvtepi32_ps(isum), acc)
    }
}

/// The epilogue of the layouts whose unsigned values stand for `q - OFFSET` against
/// [`crate::repack::quantize_q8_0_with_sums`] activations: `Σ q·y - OFFSET·Σ y` in integers.
///
/// # Safety
/// As [`TileLayout::epilogue`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn offset_epilogue<const OFFSET: i32>(
    d: __m256,
    isum: __m256i,
    act: *const u8,
    nb: usize,
    b: usize,
    acc: __m256,
) -> __m256 {
    // SAFETY: block `b` and its sum after the row's `nb` blocks (caller's contract).
    let (d_tok, sum_y) = unsafe {
        let s = act.add(nb * q8_0::TYPE_SIZE + 2 * b).cast::<i16>();
        (
            f16_splat(act.add(b * q8_0::TYPE_SIZE)),
            i32::from(s.read_unaligned()),
        )
    };
    let dot = _mm256_sub_epi32(isum, _mm256_set1_epi32(OFFSET * sum_y));
    _mm256_fmadd_ps(_mm256_mul_ps(d, d_tok), _mm256_cvtepi32_ps(dot), acc)
}

/// Q4_0×8 (`OffsetLayout<8, false>`) and Q5_0×8 (`OffsetLayout<16, true>`): unsigned values
/// standing for `q - OFFSET`, the fifth bits (Q5_0×8) at 144.
struct OffsetLayout<const OFFSET: i32, const FIFTH: bool>;
type Q40 = OffsetLayout<8, false>;
type Q50 = OffsetLayout<16, true>;

impl<const OFFSET: i32, const FIFTH: bool> TileLayout for OffsetLayout<OFFSET, FIFTH> {
    const BLOCK: usize = if FIFTH { Q50_X8_BLOCK } else { Q40_X8_BLOCK };
    const ACT_BLOCK: usize = q8_0::TYPE_SIZE;
    const ACT_QS: usize = q8_0::QS;
    const UNSIGNED: bool = true;
    type Rows = __m256;

    /// The nibbles, then for Q5_0×8 the fifth bits: bit `j` of byte `k` at 144 is the fifth
    /// bit of byte `k` of `B` row `j` (chunk `j / 2`, low nibbles for even `j`).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn b_operand(wb: *const u8, stage: *mut u8) -> *const u8 {
        // SAFETY: four chunks after the eight scales, Q5_0×8's fifth bits at 144; a 256-byte
        // stage (trait contract).
        unsafe {
            unpack_nibbles(wb.add(16), stage);
            if FIFTH {
                add_fifth_bits(wb.add(144), stage);
            }
        }
        stage
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn rows(wb: *const u8) -> __m256 {
        // SAFETY: a block starts with its eight rows' `d` (trait contract).
        unsafe { f16x8(wb) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn epilogue(
        d: __m256,
        isum: __m256i,
        act: *const u8,
        nb: usize,
        b: usize,
        acc: __m256,
    ) -> __m256 {
        // SAFETY: the trait's contract is `offset_epilogue`'s.
        unsafe { offset_epilogue::<OFFSET>(d, isum, act, nb, b, acc) }
    }
}

struct Q41;
impl TileLayout for Q41 {
    const BLOCK: usize = Q41_X8_BLOCK;
    const ACT_BLOCK: usize = q8_1::TYPE_SIZE;
    const ACT_QS: usize = q8_1::QS;
    const UNSIGNED: bool = true;
    /// The rows' `d` and `m`.
    type Rows = (__m256, __m256);

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn b_operand(wb: *const u8, stage: *mut u8) -> *const u8 {
        // SAFETY: four chunks after the scales and minima; a 256-byte stage (trait contract).
        unsafe { unpack_nibbles(wb.add(32), stage) };
        stage
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn rows(wb: *const u8) -> (__m256, __m256) {
        // SAFETY: a block starts with its eight rows' `d`, then their `m` (trait contract).
        unsafe { (f16x8(wb), f16x8(wb.add(16))) }
    }

    /// `acc += fma(d_row·d_tok, Σ q·y, m_row·s_tok)`, the tokens' `d` and `s` read from the
    /// `f32` copies after the blocks ([`crate::repack::quantize_q8_1_with_scales`]).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn epilogue(
        (d, m): (__m256, __m256),
        isum: __m256i,
        act: *const u8,
        nb: usize,
        b: usize,
        acc: __m256,
    ) -> __m256 {
        // SAFETY: block `b`'s `[d, s]: f32` after the row's `nb` blocks (trait contract).
        let (d_tok, s_tok) = unsafe {
            let scales = act.add(nb * q8_1::TYPE_SIZE + 8 * b).cast::<f32>();
            (scales.read_unaligned(), scales.add(1).read_unaligned())
        };
        let block = _mm256_fmadd_ps(
            _mm256_mul_ps(d, _mm256_set1_ps(d_tok)),
            _mm256_cvtepi32_ps(isum),
            _mm256_mul_ps(m, _mm256_set1_ps(s_tok)),
        );
        _mm256_add_ps(acc, block)
    }
}

/// One call's operands (checked by the table entry): `groups` (1 or 2) consecutive groups of
/// `nb` blocks at `w`, the `n` token rows of `acts` (`a_row` bytes apart), and `out`, whose
/// `out[t · 8·groups + 8g + r]` gets row `r` of group `g` for token `t`.
#[derive(Clone, Copy)]
pub(super) struct Operands {
    pub(super) nb: usize,
    pub(super) w: *const u8,
    pub(super) groups: usize,
    pub(super) acts: *const u8,
    pub(super) a_row: usize,
    pub(super) n: usize,
    pub(super) out: *mut f32,
}

impl Operands {
    fn new(nb: usize, w: &[u8], groups: usize, acts: &[u8], a_row: usize, out: &mut [f32]) -> Self {
        Operands {
            nb,
            w: w.as_ptr(),
            groups,
            acts: acts.as_ptr(),
            a_row,
            n: acts.len() / a_row.max(1),
            out: out.as_mut_ptr(),
        }
    }
}

/// Tokens per tile (the rows of `A` and `C`).
pub(super) const TILE_TOKENS: usize = 16;

/// Loads `m` tokens' `k` activation bytes at `first`, rows `a_row` apart, as the `A` tile:
/// straight from the buffer for a full tile; for a partial one through `stage` (rows past `m`
/// are stale and their results unused), so no load runs past the buffer.
///
/// # Safety
/// As [`TileOps::load_a`]: `m` rows of `k` readable bytes at `first`, `a_row` apart, and 16
/// of them where `m` is [`TILE_TOKENS`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn load_tokens<T: TileOps>(
    tiles: &mut T,
    first: *const u8,
    a_row: usize,
    m: usize,
    k: usize,
    stage: &mut [[u8; 32]; TILE_TOKENS],
) {
    // SAFETY: the rows the caller's contract names; `stage` holds 16 rows of 32 bytes.
    unsafe {
        if m == TILE_TOKENS {
            tiles.load_a(first, a_row);
        } else {
            for (j, row) in stage.iter_mut().enumerate().take(m) {
                std::ptr::copy_nonoverlapping(first.add(j * a_row), row.as_mut_ptr(), k);
            }
            tiles.load_a(stage.as_ptr().cast(), 32);
        }
    }
}

/// The product of one call's [`Operands`] for a 32-column layout.
///
/// # Safety
/// AVX2, FMA and F16C must be present; on [`Amx`] the tile state must be granted. `w` holds
/// `groups · nb` blocks, `acts` `n` rows of at least `nb` blocks and their extras, `out`
/// `n · 8 · groups` floats.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gemm_tiles<L: TileLayout, T: TileOps>(tiles: &mut T, op: Operands) {
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
    let stride = X8 * groups;
    let cfg = TileConfig::int8(32);
    // The unpacked weights of the two groups, the last partial token tile, the results.
    let mut stage_b = [[0u8; 256]; 2];
    let mut stage_a = [[0u8; 32]; TILE_TOKENS];
    let mut c = [[[0i32; X8]; TILE_TOKENS]; 2];
    let which = [C0, C1];
    // SAFETY: every pointer below stays inside the operands of the function's contract: block
    // `b < nb` of group `g < groups` of `w`; rows `t < n` of `acts`, each read from block `b`'s
    // values (32 bytes, inside the row); `out`'s `n · stride` floats. A full token tile's 16
    // rows end inside `acts`; a partial one is read from `stage_a`.
    unsafe {
        std::ptr::write_bytes(out, 0, n * stride);
        tiles.configure(&cfg);
        for b in 0..nb {
            let block = |g: usize| w.add((g * nb + b) * L::BLOCK);
            // The second entry is unused (and the first group's again) for one group.
            let rows = [L::rows(block(0)), L::rows(block(groups - 1))];
            for (g, &tile) in which.iter().enumerate().take(groups) {
                tiles.load_b(tile, L::b_operand(block(g), stage_b[g].as_mut_ptr()));
            }
            for t0 in (0..n).step_by(TILE_TOKENS) {
                let m = (n - t0).min(TILE_TOKENS);
                let first = acts.add(t0 * a_row + b * L::ACT_BLOCK + L::ACT_QS);
                load_tokens(tiles, first, a_row, m, 32, &mut stage_a);
                for (g, &tile) in which.iter().enumerate().take(groups) {
                    tiles.zero(tile);
                    if L::UNSIGNED {
                        tiles.dot_unsigned(tile);
                    } else {
                        tiles.dot_signed(tile);
                    }
                    tiles.store(tile, c[g].as_mut_ptr().cast());
                }
                for j in 0..m {
                    let act = acts.add((t0 + j) * a_row);
                    for (g, c) in c.iter().enumerate().take(groups) {
                        let o = out.add((t0 + j) * stride + X8 * g);
                        let isum = _mm256_loadu_si256(c[j].as_ptr().cast());
                        let acc = L::epilogue(rows[g], isum, act, nb, b, _mm256_loadu_ps(o));
                        _mm256_storeu_ps(o, acc);
                    }
                }
            }
        }
        tiles.release();
    }
}

/// The table entry of a layout: checks the operands, then runs `$run` (the 32-column or the
/// super-block kernel) on the hardware.
macro_rules! tiles_entry {
    ($name:ident, $run:ident, $layout:ty, $block:expr, $act_block:expr, $what:literal) => {
        /// `groups` consecutive groups (`groups · nb` blocks of `w`) against every token row
        /// of `acts` (`a_row` bytes each): `out[t · 8·groups + 8g + r]`.
        fn $name(nb: usize, w: &[u8], groups: usize, acts: &[u8], a_row: usize, out: &mut [f32]) {
            let n = acts.len() / a_row.max(1);
            assert!(
                (groups == 1 || groups == 2)
                    && w.len() >= groups * nb * $block
                    && acts.len() == n * a_row
                    && a_row >= nb * $act_block
                    && out.len() == n * X8 * groups,
                concat!($what, " tiles: operands")
            );
            // SAFETY: registered only where AVX-512 was detected and the kernel granted the
            // tile state (`crate::amx::state`); lengths checked above.
            unsafe {
                $run::<$layout, Amx>(&mut Amx, Operands::new(nb, w, groups, acts, a_row, out))
            }
        }
    };
}

tiles_entry!(
    gemm_q8_0_amx,
    gemm_tiles,
    Q80,
    Q80::BLOCK,
    Q80::ACT_BLOCK,
    "q8_0×8"
);
tiles_entry!(
    gemm_q4_0_amx,
    gemm_tiles,
    Q40,
    Q40::BLOCK,
    Q40::ACT_BLOCK,
    "q4_0×8"
);
tiles_entry!(
    gemm_q4_1_amx,
    gemm_tiles,
    Q41,
    Q41::BLOCK,
    Q41::ACT_BLOCK,
    "q4_1×8"
);
tiles_entry!(
    gemm_q5_0_amx,
    gemm_tiles,
    Q50,
    Q50::BLOCK,
    Q50::ACT_BLOCK,
    "q5_0×8"
);
tiles_entry!(
    gemm_q4_k_amx,
    gemm_super_tiles,
    Q4K,
    Q4K::BLOCK,
    q8_k::TYPE_SIZE,
    "q4_k×8"
);
tiles_entry!(
    gemm_q5_k_amx,
    gemm_super_tiles,
    Q5K,
    Q5K::BLOCK,
    q8_k::TYPE_SIZE,
    "q5_k×8"
);
tiles_entry!(
    gemm_q6_k_amx,
    gemm_super_tiles,
    Q6K,
    Q6K::BLOCK,
    q8_k::TYPE_SIZE,
    "q6_k×8"
);

/// The same kernels on the software model of the tiles (tests, and the twin of each hardware
/// kernel): `None` for a layout without a tile kernel or where AVX2/FMA/F16C are absent.
pub(crate) fn soft_kernel(layout: Layout) -> Option<crate::types::GemmTilesFn> {
    macro_rules! soft {
        ($run:ident, $layout:ty, $block:expr) => {{
            fn run(nb: usize, w: &[u8], groups: usize, acts: &[u8], a_row: usize, out: &mut [f32]) {
                let n = acts.len() / a_row;
                assert!(w.len() >= groups * nb * $block && out.len() == n * X8 * groups);
                // SAFETY: AVX2/FMA/F16C checked by `soft_kernel`; lengths checked above.
                unsafe {
                    $run::<$layout, SoftTiles>(
                        &mut SoftTiles::new(),
                        Operands::new(nb, w, groups, acts, a_row, out),
                    )
                }
            }
            run as crate::types::GemmTilesFn
        }};
    }
    if !super::detect_avx2() {
        return None;
    }
    Some(match layout {
        Layout::Q80X8 => soft!(gemm_tiles, Q80, Q80::BLOCK),
        Layout::Q40X8 => soft!(gemm_tiles, Q40, Q40::BLOCK),
        Layout::Q41X8 => soft!(gemm_tiles, Q41, Q41::BLOCK),
        Layout::Q50X8 => soft!(gemm_tiles, Q50, Q50::BLOCK),
        Layout::Q4KX8 => soft!(gemm_super_tiles, Q4K, Q4K::BLOCK),
        Layout::Q5KX8 => soft!(gemm_super_tiles, Q5K, Q5K::BLOCK),
        Layout::Q6KX8 => soft!(gemm_super_tiles, Q6K, Q6K::BLOCK),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repack::{
        for_layout, quantize_q8_0_with_sums, quantize_q8_1_with_scales, Activations,
    };

    const LAYOUTS: [Layout; 7] = [
        Layout::Q80X8,
        Layout::Q40X8,
        Layout::Q41X8,
        Layout::Q50X8,
        Layout::Q4KX8,
        Layout::Q5KX8,
        Layout::Q6KX8,
    ];

    fn data(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
            })
            .collect()
    }

    /// Checks `kernel` against the layout's scalar reference, bit for bit, over one and two
    /// groups and token counts around the tile size.
    fn check(layout: Layout, kernel: crate::types::GemmTilesFn, what: &str) {
        let p = for_layout(layout).expect("a repacked layout");
        let kernels = Kernels::for_isa(crate::Isa::SCALAR);
        let quantize = kernels.quantize(p.acts.quant_type()).expect("quantizer");
        let reference = kernels.repacked(layout).expect("scalar reference");
        for (blocks, n_tokens) in [(2, 1), (3, 5), (4, 16), (2, 17), (8, 33), (1, 40)] {
            let cols = blocks * p.block_cols;
            let rows = 16;
            let rb = owl_quant::row_bytes(p.ty, cols);
            let mut src = vec![0u8; rows * rb];
            let quantize_w = kernels.quantize(p.ty).expect("weight quantizer");
            for (r, dst) in src.chunks_exact_mut(rb).enumerate() {
                quantize_w(&data(cols, (cols + r) as u64 + 7), dst);
            }
            let w = (p.repack)(&src, rows, cols).expect("repack");
            let nb = cols / p.block_cols;
            let a_row = nb * p.acts.block_bytes();
            let x = data(n_tokens * cols, n_tokens as u64);
            let mut acts = vec![0u8; n_tokens * a_row];
            for (x, dst) in x.chunks_exact(cols).zip(acts.chunks_exact_mut(a_row)) {
                match p.acts {
                    Activations::Q8_0WithSums => quantize_q8_0_with_sums(quantize, x, dst),
                    Activations::Q8_1WithScales => quantize_q8_1_with_scales(quantize, x, dst),
                    _ => quantize(x, dst),
                }
            }
            let group_bytes = nb * p.block_bytes;
            for groups in [1, 2] {
                let mut out = vec![f32::NAN; n_tokens * X8 * groups];
                kernel(
                    nb,
                    &w[..groups * group_bytes],
                    groups,
                    &acts,
                    a_row,
                    &mut out,
                );
                for g in 0..groups {
                    let a: Vec<&[u8]> = acts.chunks(a_row).collect();
                    let mut want = vec![[0f32; X8]; n_tokens];
                    for (t4, o4) in a.chunks(4).zip(want.chunks_mut(4)) {
                        reference(nb, &w[g * group_bytes..(g + 1) * group_bytes], t4, o4);
                    }
                    for (t, want) in want.iter().enumerate() {
                        for r in 0..X8 {
                            let got = out[t * X8 * groups + X8 * g + r];
                            assert_eq!(
                                got.to_bits(),
                                want[r].to_bits(),
                                "{what} {layout:?} cols {cols} tokens {n_tokens} groups \
                                 {groups}: token {t} group {g} row {r}: {got} vs {}",
                                want[r]
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn soft_tiles_equal_the_scalar_references() {
        for layout in LAYOUTS {
            let Some(kernel) = soft_kernel(layout) else {
                eprintln!("skipped: no AVX2/FMA/F16C");
                return;
            };
            check(layout, kernel, "soft tiles");
        }
    }

    #[test]
    fn amx_tiles_equal_the_scalar_references() {
        if !matches!(crate::amx::state(), crate::amx::AmxState::Granted { .. })
            || !super::super::detect_avx512()
        {
            eprintln!(
                "skipped: AMX not granted here ({})",
                crate::amx::state().describe()
            );
            return;
        }
        let k = Kernels::for_isa(crate::Isa::AMX);
        for layout in LAYOUTS {
            let kernel = k.repacked_tiles(layout).expect("an AMX kernel");
            check(layout, kernel, "amx");
        }
    }
}
