//! Weight layouts repacked at load time for faster matrix products: `Q4_K`, `Q5_K`, `Q6_K`,
//! `Q4_0`, `Q4_1`, `Q5_0` and `Q8_0` in groups of eight rows ("Q4_K×8", "Q4_0×8", ...).
//!
//! Why: ggml's `Q4_K` dot product keeps one 8-lane accumulator per (row, token) whose lanes are
//! positions inside a 32-value sub-block, so every sub-block of every (row, token) pair pays
//! its own scale multiply (`madd`) and accumulate. With eight rows interleaved four bytes at a
//! time, one 256-bit register holds the same four positions of eight rows: a `maddubs` against
//! a token's four activation bytes (broadcast) advances eight rows at once, eight of them sum a
//! whole sub-block in 16 bits without overflow (8 × 2 × 15 × 128 < 2¹⁵), and one `madd` applies
//! eight rows' scales. That is ~2.7 vector operations per 32 multiply-adds for four tokens,
//! against ~6 in the row layout. llama.cpp repacks `Q4_K` for the same reason (its own 8×8
//! layout); like its repacked path, this one sums in its own order, so results differ from the
//! row-layout dot product in the last bits.
//!
//! The arithmetic is defined by [`gemm_q4_k_x8_scalar`] and every ISA kernel must give the same
//! bits. Per (row, token) and super-block it forms two exact integers, `sumi = Σ_s sc_s Σ q·y`
//! and `summ = Σ_s m_s Σ y`, then `acc = fma(d_row·d_tok, sumi, acc)` and `accm =
//! fma(dmin_row·d_tok, summ, accm)`; the result is `acc - accm`. Each (row, token) result is the
//! same whatever the number of tokens in the call, so batching stays invisible in the output.
//!
//! Layout of one group of eight rows, per super-block of 256 columns ([`Q4K_X8_BLOCK`] bytes):
//! `d[8]: f16` at 0, `dmin[8]: f16` at 16, `scales[s][r]: u8` at 32 (sub-block `s` of row `r`),
//! `mins[p][r][2]: u8` at 96 (the mins of sub-blocks `2p` and `2p + 1` of row `r`), then 32
//! chunks of 32 bytes at 160: byte `4r + i` of chunk `c` holds, in its low nibble, the value of
//! row `r` at column `8c + i` and, in its high nibble, the value at column `8c + 4 + i`.
//! Groups follow each other; super-blocks follow each other inside a group.
//!
//! Q4_0×8 ([`Q40_X8_BLOCK`] bytes per 32 columns of eight rows, the size of eight `Q4_0`
//! blocks): `d[8]: f16` at 0, then 4 chunks of 32 bytes at 16 arranged as Q4_K×8's chunks. Its
//! activations are `Q8_0` rows followed by each block's integer sum (`i16`, see
//! [`quantize_q8_0_with_sums`]): per block, `acc = fma(d_row·d_tok, Σ q·y - 8·Σ y, acc)` with
//! the 4-bit `q` unsigned, so the 4-bit values need no sign handling and the offset costs one
//! subtraction per eight rows.
//!
//! Q4_1×8 ([`Q41_X8_BLOCK`] bytes, the size of eight `Q4_1` blocks): `d[8]: f16` at 0,
//! `m[8]: f16` at 16, then Q4_0×8's chunks at 32. Against `Q8_1` activations (`d`, `s = d·Σy`;
//! the kernels read both from the `f32` copies [`quantize_q8_1_with_scales`] appends):
//! per block `acc += fma(d_row·d_tok, Σ q·y, m_row·s_tok)`: the scale and minimum terms,
//! which nearly cancel, are combined inside each block (as ggml's reference does) before
//! anything is accumulated, so no large partial sums lose the small result's bits.
//!
//! Q5_0×8 ([`Q50_X8_BLOCK`] bytes, the size of eight `Q5_0` blocks): Q4_0×8's `d` and chunks
//! (the low four bits), then 32 bytes of fifth bits at 144: bit `2c + h` of byte `k` belongs to
//! byte `k` of chunk `c`'s low (`h = 0`) or high (`h = 1`) nibbles. Activations and arithmetic
//! as Q4_0×8 with an offset of 16.
//!
//! Q8_0×8 ([`Q80_X8_BLOCK`] bytes per 32 columns of eight rows, the size of eight `Q8_0`
//! blocks): `d[8]: f16` at 0, then 8 groups of 32 bytes at 16, byte `4r + i` of group `g` being
//! row `r`'s value at column `4g + i`. Its activations are `Q8_0` rows with their block sums,
//! as Q4_0×8's. Per block, `acc = fma(d_row·d_tok, Σ w·y, acc)`, the integer computed either
//! with ggml's sign trick (`|w|` times `y` with `w`'s sign: AVX2's `maddubs`) or, where VNNI's
//! `vpdpbusd` (u8 × i8) is, as `Σ (w ^ 0x80)·y - 128·Σ y`: flipping the sign bit makes the
//! bytes the unsigned `w + 128`, one `vpxor` per eight rows and four columns shared by all
//! tokens of a call, where the sign trick costs a `vpsignb` per token. The integer is the same
//! either way, so so are the bits.
//!
//! Q5_K×8 ([`Q5K_X8_BLOCK`] bytes per super-block): Q4_K×8's first 160 bytes (`d`, `dmin`,
//! scales, mins), then per 32-column sub-block `s` 160 bytes at `160 + 160s`
//! ([`q5k_chunk`], [`q5k_fifth`]): its four nibble chunks (Q4_K×8's chunks `4s..4s + 4`), then
//! 32 bytes of fifth bits: bit `k` of byte `4r + i` is the fifth bit of row `r`'s column
//! `32s + 4k + i` (so bit `2(c - 4s) + h` belongs to nibble chunk `c`'s low (`h = 0`) or high
//! nibbles, as in Q5_0×8). Arithmetic as Q4_K×8's ([`gemm_q5_k_x8_scalar`]).
//!
//! Q6_K×8 ([`Q6K_X8_BLOCK`] bytes per super-block, the size of eight `Q6_K` blocks): `d[8]: f16`
//! at 0, `scales[p][r][2]: i8` at 16 (the scales of 16-column sub-blocks `2p`, `2p + 1` of row
//! `r`), then per 16-column sub-block `s` 96 bytes at `144 + 96s` ([`q6k_low`], [`q6k_high`]):
//! two chunks of low nibbles arranged as Q4_K×8's (columns `16s..16s + 8`, then `+ 8..+ 16`),
//! then a chunk of high bits: bits `2j`, `2j + 1` of its byte `4r + i` are the top two bits of
//! row `r`'s column `16s + 4j + i`. The six-bit `q` stands for `q - 32`: against
//! `Q8_K` activations, whose `bsums` are exactly the sums of each 16-column sub-block, the
//! kernels multiply the unsigned `q` (no sign handling) and subtract `32·sc_s·bsums[s]`; per
//! (row, token) and super-block the exact integer `Σ_s sc_s (Σ q·y - 32·bsums[s])` then takes
//! one `acc = fma(d_row·d_tok, sumi, acc)` ([`gemm_q6_k_x8_scalar`]).
//!
//! Why each sub-block's high bits sit right after its nibbles (in Q5_K×8 and Q6_K×8) rather
//! than in a region of their own: a kernel then reads every block front to back in one
//! stream. With two regions (tried first), a single token's product, which waits on memory,
//! ran at a third of the row layout's speed once the weights came from DRAM rather than cache.
//!
//! Against the row layout: the K-quant references agree with ggml's row-layout dot products
//! (`vec_dot` of `Q4_K`/`Q5_K`/`Q6_K` · `Q8_K`) to float rounding, not bit for bit: those keep
//! eight partial integer sums per block in eight float lanes (positions, not rows) and add the
//! lanes at the end, where a ×8 lane is a whole row and takes one conversion per super-block.
//! Matching that would cost eight conversions and fused multiply-adds per (row, token) and
//! block; llama.cpp's own repacked kernels likewise sum in their own order.

use owl_quant::k_common::get_scale_min_k4;
use owl_quant::GgmlType;

use crate::types::{GemmX8Fn, Layout};
use owl_quant::{q4_0, q4_1, q4_k, q5_0, q5_k, q6_k, q8_0, q8_1, q8_k, QuantFn, QK_K};

/// How `linear` quantizes a token's activations for a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activations {
    /// `Q8_K` rows.
    Q8K,
    /// `Q8_0` rows followed by each block's `i16` sum ([`quantize_q8_0_with_sums`]).
    Q8_0WithSums,
    /// `Q8_0` rows.
    Q8_0,
    /// `Q8_1` rows.
    Q8_1,
    /// `Q8_1` rows followed by each block's `d` and `s` again as `f32`
    /// ([`quantize_q8_1_with_scales`]).
    Q8_1WithScales,
}

impl Activations {
    /// The quantized type of the rows (with sums or not).
    pub fn quant_type(self) -> GgmlType {
        match self {
            Activations::Q8K => GgmlType::Q8_K,
            Activations::Q8_0WithSums | Activations::Q8_0 => GgmlType::Q8_0,
            Activations::Q8_1 | Activations::Q8_1WithScales => GgmlType::Q8_1,
        }
    }

    /// Bytes of one block's activations (per `block_cols` columns).
    pub fn block_bytes(self) -> usize {
        match self {
            Activations::Q8K => q8_k::TYPE_SIZE,
            Activations::Q8_0WithSums => q8_0::TYPE_SIZE + 2,
            Activations::Q8_0 => q8_0::TYPE_SIZE,
            Activations::Q8_1 => q8_1::TYPE_SIZE,
            Activations::Q8_1WithScales => q8_1::TYPE_SIZE + 8,
        }
    }
}

/// One repacked layout: the registry `QMatrix::repacked`, `linear` and the kernel table read.
pub struct Packed {
    pub layout: Layout,
    /// The weight type it repacks.
    pub ty: GgmlType,
    /// Columns per block, and bytes per block of eight rows.
    pub block_cols: usize,
    pub block_bytes: usize,
    pub acts: Activations,
    pub repack: fn(&[u8], usize, usize) -> Option<Vec<u8>>,
    /// The scalar reference (the kernel table's default).
    pub reference: GemmX8Fn,
    /// Used without asking. A new layout starts opt-in (`OWL_REPACK_OPT_IN=1`) until a quiet
    /// whole-model run shows it faster; every layout here has passed that (Q6_K×8 and Q5_K×8 on
    /// 2026-12-05: a Q4_K_M prompt 1.12–1.20× faster, decoding no slower).
    pub by_default: bool,
}

/// Every repacked layout.
pub static PACKED: [Packed; 7] = [
    Packed {
        layout: Layout::Q4KX8,
        ty: GgmlType::Q4_K,
        block_cols: QK_K,
        block_bytes: Q4K_X8_BLOCK,
        acts: Activations::Q8K,
        repack: repack_q4_k_x8,
        reference: gemm_q4_k_x8_scalar,
        by_default: true,
    },
    Packed {
        layout: Layout::Q40X8,
        ty: GgmlType::Q4_0,
        block_cols: 32,
        block_bytes: Q40_X8_BLOCK,
        acts: Activations::Q8_0WithSums,
        repack: repack_q4_0_x8,
        reference: gemm_q4_0_x8_scalar,
        by_default: true,
    },
    Packed {
        layout: Layout::Q41X8,
        ty: GgmlType::Q4_1,
        block_cols: 32,
        block_bytes: Q41_X8_BLOCK,
        acts: Activations::Q8_1WithScales,
        repack: repack_q4_1_x8,
        reference: gemm_q4_1_x8_scalar,
        by_default: true,
    },
    Packed {
        layout: Layout::Q50X8,
        ty: GgmlType::Q5_0,
        block_cols: 32,
        block_bytes: Q50_X8_BLOCK,
        acts: Activations::Q8_0WithSums,
        repack: repack_q5_0_x8,
        reference: gemm_q5_0_x8_scalar,
        by_default: true,
    },
    Packed {
        layout: Layout::Q80X8,
        ty: GgmlType::Q8_0,
        block_cols: 32,
        block_bytes: Q80_X8_BLOCK,
        acts: Activations::Q8_0WithSums,
        repack: repack_q8_0_x8,
        reference: gemm_q8_0_x8_scalar,
        by_default: true,
    },
    Packed {
        layout: Layout::Q6KX8,
        ty: GgmlType::Q6_K,
        block_cols: QK_K,
        block_bytes: Q6K_X8_BLOCK,
        acts: Activations::Q8K,
        repack: repack_q6_k_x8,
        reference: gemm_q6_k_x8_scalar,
        by_default: true,
    },
    Packed {
        layout: Layout::Q5KX8,
        ty: GgmlType::Q5_K,
        block_cols: QK_K,
        block_bytes: Q5K_X8_BLOCK,
        acts: Activations::Q8K,
        repack: repack_q5_k_x8,
        reference: gemm_q5_k_x8_scalar,
        by_default: true,
    },
];

/// The repacked layout for weights of type `ty`, if there is one.
pub fn for_type(ty: GgmlType) -> Option<&'static Packed> {
    PACKED.iter().find(|p| p.ty == ty)
}

/// The registry entry of `layout` (`None` for `Layout::Rows`).
pub fn for_layout(layout: Layout) -> Option<&'static Packed> {
    PACKED.iter().find(|p| p.layout == layout)
}

/// Rows per group.
pub const X8: usize = 8;
/// Bytes of one super-block of one group of eight rows.
pub const Q4K_X8_BLOCK: usize = 160 + 8 * 128;
const DMIN: usize = 16;
const SCALES: usize = 32;
const MINS: usize = 96;
const QS: usize = 160;

/// Repacks a `rows × cols` `Q4_K` matrix (rows of `cols / 256` blocks of 144 bytes) into the
/// Q4_K×8 layout. `None` when the shape does not fit or `src` is too short.
pub fn repack_q4_k_x8(src: &[u8], rows: usize, cols: usize) -> Option<Vec<u8>> {
    let map = k4_nibble_map(|c| QS + 32 * c);
    let (from, to) = (q4_k::TYPE_SIZE, Q4K_X8_BLOCK);
    repack_with(src, rows, cols, QK_K, from, to, |dst, r, blk| {
        place_k4(dst, r, blk, &blk[q4_k::QS..q4_k::QS + 128], &map);
    })
}

/// Where each of a `Q4_K`/`Q5_K` block's 256 nibbles comes from (ggml's byte
/// 32·(col / 64) + col % 32, low nibble for even sub-blocks) and goes to (chunk col / 8, at
/// `chunk(c)` in the block, byte 4r + col % 4, low nibble for col % 8 < 4), without the row's 4r.
fn k4_nibble_map(chunk: impl Fn(usize) -> usize) -> [(u8, u8, u16, u8); QK_K] {
    std::array::from_fn(|col| {
        let (src, src_shift) = (32 * (col / 64) + col % 32, 4 * ((col / 32) % 2));
        let (dst, dst_shift) = (chunk(col / 8) + col % 4, 4 * ((col % 8) / 4));
        (src as u8, src_shift as u8, dst as u16, dst_shift as u8)
    })
}

/// Row `r`'s `d`, `dmin`, unpacked scales and mins and low nibbles (`qs`, 128 bytes) of one
/// `Q4_K` or `Q5_K` block (`blk`: `d`, `dmin` and the 12 scale bytes at 0, as both have them)
/// into a Q4_K×8 (or Q5_K×8) block.
fn place_k4(dst: &mut [u8], r: usize, blk: &[u8], qs: &[u8], map: &[(u8, u8, u16, u8); QK_K]) {
    dst[2 * r..2 * r + 2].copy_from_slice(&blk[0..2]);
    dst[DMIN + 2 * r..DMIN + 2 * r + 2].copy_from_slice(&blk[2..4]);
    let sm = &blk[q4_k::SCALES..q4_k::SCALES + 12];
    for s in 0..8 {
        let (sc, m) = get_scale_min_k4(s, sm);
        dst[SCALES + 8 * s + r] = sc;
        dst[MINS + 16 * (s / 2) + 2 * r + s % 2] = m;
    }
    for &(from, shift, to, to_shift) in map {
        let v = (qs[from as usize] >> shift) & 0x0f;
        dst[to as usize + 4 * r] |= v << to_shift;
    }
}

/// The shared frame of every repacker: checks that the shape fits (rows in groups of eight,
/// whole blocks of `block_cols`) and `src` is long enough, then calls `place(dst block, r,
/// source block of row r)` for every block of every row, groups split across threads.
fn repack_with(
    src: &[u8],
    rows: usize,
    cols: usize,
    block_cols: usize,
    from_bytes: usize,
    to_bytes: usize,
    place: impl Fn(&mut [u8], usize, &[u8]) + Sync,
) -> Option<Vec<u8>> {
    if rows == 0 || !rows.is_multiple_of(X8) || cols == 0 || !cols.is_multiple_of(block_cols) {
        return None;
    }
    let nb = cols / block_cols;
    let row_bytes = nb * from_bytes;
    if src.len() < rows * row_bytes {
        return None;
    }
    let mut out = vec![0u8; rows / X8 * nb * to_bytes];
    in_parallel(&mut out, nb * to_bytes, |g, group| {
        for (b, dst) in group.chunks_exact_mut(to_bytes).enumerate() {
            for r in 0..X8 {
                let at = (g * X8 + r) * row_bytes + b * from_bytes;
                place(dst, r, &src[at..at + from_bytes]);
            }
        }
    });
    Some(out)
}

/// `out[t][r] = row r of the group · token t` for one group of eight rows (`w`: `nb` blocks of
/// [`Q4K_X8_BLOCK`] bytes) and up to four tokens of `Q8_K` activations (`a[t]`: `nb` blocks).
/// The reference every ISA kernel must match bit for bit.
pub fn gemm_q4_k_x8_scalar(nb: usize, w: &[u8], a: &[&[u8]], out: &mut [[f32; X8]]) {
    k_reference(nb, w, a, out, Q4K_X8_BLOCK, |wb, r, col| {
        let byte = wb[QS + 32 * (col / 8) + 4 * r + col % 4];
        if col % 8 < 4 {
            byte & 0x0f
        } else {
            byte >> 4
        }
    });
}

/// The reference of the layouts with Q4_K×8's scales, mins and nibbles (Q4_K×8, Q5_K×8)
/// against `Q8_K` activations: per (row, token) and super-block the exact integers
/// `sumi = Σ_s sc_s Σ q·y` and `summ = Σ_s m_s Σ y`, then `acc = fma(d_row·d_tok, sumi, acc)`,
/// `accm = fma(dmin_row·d_tok, summ, accm)`, and finally `acc - accm`. `value(block, r, col)`
/// reads row `r`'s unsigned value at column `col`.
fn k_reference(
    nb: usize,
    w: &[u8],
    a: &[&[u8]],
    out: &mut [[f32; X8]],
    block_bytes: usize,
    value: impl Fn(&[u8], usize, usize) -> u8,
) {
    for (a, out) in a.iter().zip(out.iter_mut()) {
        let mut acc = [0f32; X8];
        let mut accm = [0f32; X8];
        for b in 0..nb {
            let wb = &w[b * block_bytes..(b + 1) * block_bytes];
            let ab = &a[b * q8_k::TYPE_SIZE..(b + 1) * q8_k::TYPE_SIZE];
            let d_tok = f32::from_le_bytes([ab[0], ab[1], ab[2], ab[3]]);
            let y = |k: usize| i32::from(ab[q8_k::QS + k] as i8);
            let bsum = |i: usize| q8_k_bsum(ab, i);
            for r in 0..X8 {
                let mut sumi = 0i32;
                let mut summ = 0i32;
                for s in 0..8 {
                    let mut dot = 0i32;
                    for col in 32 * s..32 * s + 32 {
                        dot += i32::from(value(wb, r, col)) * y(col);
                    }
                    sumi += i32::from(wb[SCALES + 8 * s + r]) * dot;
                    let m = wb[MINS + 16 * (s / 2) + 2 * r + s % 2];
                    summ += i32::from(m) * (bsum(2 * s) + bsum(2 * s + 1));
                }
                let f16_at = |o: usize| half::f16::from_le_bytes([wb[o], wb[o + 1]]).to_f32();
                let (d, dmin) = (f16_at(2 * r), f16_at(DMIN + 2 * r));
                acc[r] = (d * d_tok).mul_add(sumi as f32, acc[r]);
                accm[r] = (dmin * d_tok).mul_add(summ as f32, accm[r]);
            }
        }
        for r in 0..X8 {
            out[r] = acc[r] - accm[r];
        }
    }
}

/// The `i`-th of a `Q8_K` block's sixteen sums of 16 quantized values.
fn q8_k_bsum(ab: &[u8], i: usize) -> i32 {
    i32::from(i16::from_le_bytes([
        ab[q8_k::BSUMS + 2 * i],
        ab[q8_k::BSUMS + 2 * i + 1],
    ]))
}

/// Bytes of one super-block of one group of eight `Q5_K` rows: Q4_K×8's, then the fifth bits.
pub const Q5K_X8_BLOCK: usize = Q4K_X8_BLOCK + 8 * 32;
/// Offset in a Q5_K×8 block of nibble chunk `c` (sub-block `c / 4`'s 160 bytes start with its
/// four nibble chunks).
pub const fn q5k_chunk(c: usize) -> usize {
    QS + 160 * (c / 4) + 32 * (c % 4)
}

/// Offset in a Q5_K×8 block of sub-block `s`'s fifth bits, right after its nibble chunks.
pub const fn q5k_fifth(s: usize) -> usize {
    QS + 160 * s + 128
}

/// Repacks a `rows × cols` `Q5_K` matrix (rows of `cols / 256` blocks of 176 bytes) into the
/// Q5_K×8 layout. `None` when the shape does not fit or `src` is too short.
pub fn repack_q5_k_x8(src: &[u8], rows: usize, cols: usize) -> Option<Vec<u8>> {
    let map = k4_nibble_map(q5k_chunk);
    let (from, to) = (q5_k::TYPE_SIZE, Q5K_X8_BLOCK);
    repack_with(src, rows, cols, QK_K, from, to, |dst, r, blk| {
        place_k4(dst, r, blk, &blk[q5_k::QS..q5_k::QS + 128], &map);
        // ggml keeps column col's fifth bit in bit col / 32 of qh[col % 32].
        let qh = &blk[q5_k::QH..q5_k::QH + 32];
        for col in 0..QK_K {
            let high = (qh[col % 32] >> (col / 32)) & 1;
            let (s, k, i) = (col / 32, (col % 32) / 4, col % 4);
            dst[q5k_fifth(s) + 4 * r + i] |= high << k;
        }
    })
}

/// The Q5_K×8 reference: `out[t][r]` for one group of eight rows (`w`: `nb` blocks of
/// [`Q5K_X8_BLOCK`] bytes) and up to four tokens of `Q8_K` activations; Q4_K×8's arithmetic
/// with five-bit values.
pub fn gemm_q5_k_x8_scalar(nb: usize, w: &[u8], a: &[&[u8]], out: &mut [[f32; X8]]) {
    k_reference(nb, w, a, out, Q5K_X8_BLOCK, |wb, r, col| {
        let byte = wb[q5k_chunk(col / 8) + 4 * r + col % 4];
        let low = if col % 8 < 4 { byte & 0x0f } else { byte >> 4 };
        let (s, k, i) = (col / 32, (col % 32) / 4, col % 4);
        let high = (wb[q5k_fifth(s) + 4 * r + i] >> k) & 1;
        low | (high << 4)
    });
}

/// Bytes of one super-block of one group of eight `Q6_K` rows (the size of eight `Q6_K`
/// blocks).
pub const Q6K_X8_BLOCK: usize = 16 + 128 + 32 * 32 + 16 * 32;
/// Offset of Q6_K×8's scales.
const Q6K_SCALES: usize = 16;

/// Offset in a Q6_K×8 block of low-nibble chunk `c` (sub-block `c / 2`'s 96 bytes start with
/// its two nibble chunks).
pub const fn q6k_low(c: usize) -> usize {
    144 + 96 * (c / 2) + 32 * (c % 2)
}

/// Offset in a Q6_K×8 block of sub-block `s`'s high bits, right after its nibble chunks.
pub const fn q6k_high(s: usize) -> usize {
    144 + 96 * s + 64
}

/// Repacks a `rows × cols` `Q6_K` matrix (rows of `cols / 256` blocks of 210 bytes) into the
/// Q6_K×8 layout. `None` when the shape does not fit or `src` is too short.
pub fn repack_q6_k_x8(src: &[u8], rows: usize, cols: usize) -> Option<Vec<u8>> {
    let (from, to) = (q6_k::TYPE_SIZE, Q6K_X8_BLOCK);
    repack_with(src, rows, cols, QK_K, from, to, |dst, r, blk| {
        dst[2 * r..2 * r + 2].copy_from_slice(&blk[q6_k::D..q6_k::D + 2]);
        for s in 0..16 {
            dst[Q6K_SCALES + 16 * (s / 2) + 2 * r + s % 2] = blk[q6_k::SCALES + s];
        }
        for col in 0..QK_K {
            // ggml: in half j = col / 128, with l = col % 32 and k = (col % 128) / 32, the low
            // nibble is in ql[64j + l + 32(k & 1)] (high nibble for k ≥ 2), the high bits are
            // bits 2k, 2k + 1 of qh[32j + l].
            let (j, k, l) = (col / 128, (col % 128) / 32, col % 32);
            let ql = blk[64 * j + l + 32 * (k & 1)];
            let low = if k < 2 { ql & 0x0f } else { ql >> 4 };
            let high = (blk[q6_k::QH + 32 * j + l] >> (2 * k)) & 3;
            let (c, i) = (col / 8, col % 4);
            dst[q6k_low(c) + 4 * r + i] |= low << (4 * ((col % 8) / 4));
            let (s, jj) = (col / 16, (col % 16) / 4);
            dst[q6k_high(s) + 4 * r + i] |= high << (2 * jj);
        }
    })
}

/// Row `r`'s unsigned six-bit value (`q`, standing for `q - 32`) at column `col` of a Q6_K×8
/// block.
fn q6_k_x8_value(wb: &[u8], r: usize, col: usize) -> u8 {
    let byte = wb[q6k_low(col / 8) + 4 * r + col % 4];
    let low = if col % 8 < 4 { byte & 0x0f } else { byte >> 4 };
    let high = (wb[q6k_high(col / 16) + 4 * r + col % 4] >> (2 * ((col % 16) / 4))) & 3;
    low | (high << 4)
}

/// The Q6_K×8 reference: `out[t][r]` for one group of eight rows (`w`: `nb` blocks of
/// [`Q6K_X8_BLOCK`] bytes) and up to four tokens of `Q8_K` activations. Per (row, token) and
/// super-block the exact integer `sumi = Σ_s sc_s (Σ q·y - 32·Σ y)` over the sixteen
/// sub-blocks (`Σ y` is the activations' `bsums[s]`), then `acc = fma(d_row·d_tok, sumi, acc)`.
pub fn gemm_q6_k_x8_scalar(nb: usize, w: &[u8], a: &[&[u8]], out: &mut [[f32; X8]]) {
    for (a, out) in a.iter().zip(out.iter_mut()) {
        let mut acc = [0f32; X8];
        for b in 0..nb {
            let wb = &w[b * Q6K_X8_BLOCK..(b + 1) * Q6K_X8_BLOCK];
            let ab = &a[b * q8_k::TYPE_SIZE..(b + 1) * q8_k::TYPE_SIZE];
            let d_tok = f32::from_le_bytes([ab[0], ab[1], ab[2], ab[3]]);
            for (r, acc) in acc.iter_mut().enumerate() {
                let mut sumi = 0i32;
                for s in 0..16 {
                    let dot: i32 = (16 * s..16 * s + 16)
                        .map(|col| {
                            let y = i32::from(ab[q8_k::QS + col] as i8);
                            i32::from(q6_k_x8_value(wb, r, col)) * y
                        })
                        .sum();
                    let sc = i32::from(wb[Q6K_SCALES + 16 * (s / 2) + 2 * r + s % 2] as i8);
                    sumi += sc * (dot - 32 * q8_k_bsum(ab, s));
                }
                let d = half::f16::from_le_bytes([wb[2 * r], wb[2 * r + 1]]).to_f32();
                *acc = (d * d_tok).mul_add(sumi as f32, *acc);
            }
        }
        *out = acc;
    }
}

/// Runs `f(group index, group bytes)` over the `group_bytes`-long groups of `out`, split across
/// the machine's threads (repacking happens once, at load, for every big matrix).
fn in_parallel(out: &mut [u8], group_bytes: usize, f: impl Fn(usize, &mut [u8]) + Sync) {
    let n_groups = out.len() / group_bytes.max(1);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = n_groups.div_ceil(threads).max(16);
    if n_groups <= per {
        for (g, group) in out.chunks_exact_mut(group_bytes).enumerate() {
            f(g, group);
        }
        return;
    }
    std::thread::scope(|s| {
        for (i, part) in out.chunks_mut(per * group_bytes).enumerate() {
            let f = &f;
            s.spawn(move || {
                for (j, group) in part.chunks_exact_mut(group_bytes).enumerate() {
                    f(i * per + j, group);
                }
            });
        }
    });
}

/// Writes row `r`'s 32 four-bit values, given as `Q4_0`'s 16 bytes (value `j` in the low nibble
/// of byte `j`, value `j + 16` in its high nibble), into a block's four 32-byte chunks.
fn place_nibbles(chunks: &mut [u8], r: usize, qs: &[u8]) {
    for col in 0..32 {
        let byte = qs[col % 16];
        let v = if col < 16 { byte & 0x0f } else { byte >> 4 };
        let i = col % 8;
        chunks[32 * (col / 8) + 4 * r + i % 4] |= if i < 4 { v } else { v << 4 };
    }
}

/// Row `r`'s four-bit value at column `col` of a block's chunks (the inverse of
/// [`place_nibbles`]).
fn nibble(chunks: &[u8], r: usize, col: usize) -> u8 {
    let byte = chunks[32 * (col / 8) + 4 * r + col % 4];
    if col % 8 < 4 {
        byte & 0x0f
    } else {
        byte >> 4
    }
}

/// Bytes of 32 columns of one group of eight `Q4_0` rows.
pub const Q40_X8_BLOCK: usize = 16 + 4 * 32;

/// Repacks a `rows × cols` `Q4_0` matrix into the Q4_0×8 layout (`None` if the shape does not
/// fit or `src` is too short).
pub fn repack_q4_0_x8(src: &[u8], rows: usize, cols: usize) -> Option<Vec<u8>> {
    let (from, to) = (q4_0::TYPE_SIZE, Q40_X8_BLOCK);
    repack_with(src, rows, cols, 32, from, to, |dst, r, blk| {
        dst[2 * r..2 * r + 2].copy_from_slice(&blk[0..2]);
        place_nibbles(&mut dst[16..144], r, &blk[2..18]);
    })
}

/// Bytes of one token's activations for Q4_0×8, Q5_0×8 and Q8_0×8: `Q8_0` blocks, then one
/// `i16` sum per block.
pub fn q8_0_with_sums_bytes(cols: usize) -> usize {
    cols / 32 * (q8_0::TYPE_SIZE + 2)
}

/// `x` quantized to `Q8_0` by `quantize` (any ISA's; they agree bit for bit), followed by the
/// sum of each block's 32 quantized values as a little-endian `i16`. (Tried: the block's `d`
/// as an `f32` beside it, as Q4_1×8's activations have, so kernels broadcast it without a
/// conversion: Q4_0×8 and Q5_0×8 gained 2 %, Q8_0×8 lost 6 %.)
pub fn quantize_q8_0_with_sums(quantize: QuantFn, x: &[f32], dst: &mut [u8]) {
    quantize_with_extras(quantize, x, dst, q8_0::TYPE_SIZE, |blk| {
        let sum: i32 = blk[2..34].iter().map(|&v| i32::from(v as i8)).sum();
        (sum as i16).to_le_bytes()
    });
}

/// Bytes of one token's activations for Q4_1×8: `Q8_1` blocks, then `[d, s]: f32` per block.
pub fn q8_1_with_scales_bytes(cols: usize) -> usize {
    cols / 32 * (q8_1::TYPE_SIZE + 8)
}

/// `x` quantized to `Q8_1` by `quantize` (any ISA's; they agree bit for bit), followed by each
/// block's `d` and `s` widened to little-endian `f32` (exactly: every `f16` is an `f32`). A
/// kernel then broadcasts a token's scales straight from memory, where the `f16` pair cost a
/// broadcast and a conversion each per block and token: four of the nine vector operations
/// of the Q4_1×8 kernels' per-block epilogue.
pub fn quantize_q8_1_with_scales(quantize: QuantFn, x: &[f32], dst: &mut [u8]) {
    quantize_with_extras(quantize, x, dst, q8_1::TYPE_SIZE, |blk| {
        let f = |o: usize| f16_to_f32(u16::from_le_bytes([blk[o], blk[o + 1]]));
        let mut out = [0; 8];
        out[..4].copy_from_slice(&f(0).to_le_bytes());
        out[4..].copy_from_slice(&f(q8_1::S).to_le_bytes());
        out
    });
}

/// `x` quantized by `quantize` into its `block`-byte blocks at the front of `dst`, followed by
/// `extras(block)` for each block in order: the layout of the activations whose kernels read
/// per-block values ready-made from after the blocks (sums, widened scales).
fn quantize_with_extras<const N: usize>(
    quantize: QuantFn,
    x: &[f32],
    dst: &mut [u8],
    block: usize,
    extras: impl Fn(&[u8]) -> [u8; N],
) {
    let nb = x.len() / 32;
    let (q, tail) = dst.split_at_mut(nb * block);
    quantize(x, q);
    for (blk, out) in q.chunks_exact(block).zip(tail.chunks_exact_mut(N)) {
        out.copy_from_slice(&extras(blk));
    }
}

/// `f16` bits widened to `f32`, exactly as `half::f16::to_f32`: normal numbers by moving the
/// fields (a few integer operations, inlined), the rest (zero, subnormal, infinite, NaN)
/// through `half`. The test below checks all 65,536 values.
#[inline]
fn f16_to_f32(h: u16) -> f32 {
    let h = u32::from(h);
    let exp = (h >> 10) & 0x1f;
    if exp != 0 && exp != 0x1f {
        f32::from_bits(((h & 0x8000) << 16) | ((exp + 112) << 23) | ((h & 0x3ff) << 13))
    } else {
        half::f16::from_bits(h as u16).to_f32()
    }
}

/// The Q4_0×8 reference: `out[t][r]` for one group of eight rows (`w`: `nb` blocks of
/// [`Q40_X8_BLOCK`] bytes) and up to four tokens (`a[t]`: [`quantize_q8_0_with_sums`] rows).
pub fn gemm_q4_0_x8_scalar(nb: usize, w: &[u8], a: &[&[u8]], out: &mut [[f32; X8]]) {
    offset_reference(nb, w, a, out, Q40_X8_BLOCK, 8, |wb, r, col| {
        nibble(&wb[16..144], r, col)
    });
}

/// The reference of the layouts whose unsigned values `q` stand for `q - offset` against
/// [`quantize_q8_0_with_sums`] activations (Q4_0×8, Q5_0×8): per block,
/// `acc = fma(d_row·d_tok, Σ q·y - offset·Σ y, acc)`; `value(block, r, col)` reads `q`.
fn offset_reference(
    nb: usize,
    w: &[u8],
    a: &[&[u8]],
    out: &mut [[f32; X8]],
    block_bytes: usize,
    offset: i32,
    value: impl Fn(&[u8], usize, usize) -> u8,
) {
    for (a, out) in a.iter().zip(out.iter_mut()) {
        let mut acc = [0f32; X8];
        for b in 0..nb {
            let wb = &w[b * block_bytes..(b + 1) * block_bytes];
            let ab = &a[b * q8_0::TYPE_SIZE..(b + 1) * q8_0::TYPE_SIZE];
            let s = nb * q8_0::TYPE_SIZE + 2 * b;
            let sum_y = i32::from(i16::from_le_bytes([a[s], a[s + 1]]));
            let d_tok = half::f16::from_le_bytes([ab[0], ab[1]]).to_f32();
            for (r, acc) in acc.iter_mut().enumerate() {
                let dot: i32 = (0..32)
                    .map(|col| i32::from(value(wb, r, col)) * i32::from(ab[2 + col] as i8))
                    .sum();
                let d = half::f16::from_le_bytes([wb[2 * r], wb[2 * r + 1]]).to_f32();
                *acc = (d * d_tok).mul_add((dot - offset * sum_y) as f32, *acc);
            }
        }
        *out = acc;
    }
}

/// Bytes of 32 columns of one group of eight `Q4_1` rows.
pub const Q41_X8_BLOCK: usize = 32 + 4 * 32;

/// Repacks a `rows × cols` `Q4_1` matrix into the Q4_1×8 layout (`None` if the shape does not
/// fit or `src` is too short).
pub fn repack_q4_1_x8(src: &[u8], rows: usize, cols: usize) -> Option<Vec<u8>> {
    let (from, to) = (q4_1::TYPE_SIZE, Q41_X8_BLOCK);
    repack_with(src, rows, cols, 32, from, to, |dst, r, blk| {
        dst[2 * r..2 * r + 2].copy_from_slice(&blk[0..2]);
        dst[16 + 2 * r..16 + 2 * r + 2].copy_from_slice(&blk[2..4]);
        place_nibbles(&mut dst[32..160], r, &blk[q4_1::QS..q4_1::QS + 16]);
    })
}

/// The Q4_1×8 reference: `out[t][r]` for one group of eight rows (`w`: `nb` blocks of
/// [`Q41_X8_BLOCK`] bytes) and up to four tokens of `Q8_1` activations.
pub fn gemm_q4_1_x8_scalar(nb: usize, w: &[u8], a: &[&[u8]], out: &mut [[f32; X8]]) {
    let f16 = |b: &[u8], o: usize| half::f16::from_le_bytes([b[o], b[o + 1]]).to_f32();
    for (a, out) in a.iter().zip(out.iter_mut()) {
        let mut acc = [0f32; X8];
        for b in 0..nb {
            let wb = &w[b * Q41_X8_BLOCK..(b + 1) * Q41_X8_BLOCK];
            let ab = &a[b * q8_1::TYPE_SIZE..(b + 1) * q8_1::TYPE_SIZE];
            let (d_tok, s_tok) = (f16(ab, 0), f16(ab, q8_1::S));
            for (r, acc) in acc.iter_mut().enumerate() {
                let mut dot = 0i32;
                for col in 0..32 {
                    let q = nibble(&wb[32..160], r, col);
                    dot += i32::from(q) * i32::from(ab[q8_1::QS + col] as i8);
                }
                *acc += (f16(wb, 2 * r) * d_tok).mul_add(dot as f32, f16(wb, 16 + 2 * r) * s_tok);
            }
        }
        *out = acc;
    }
}

/// Bytes of 32 columns of one group of eight `Q5_0` rows.
pub const Q50_X8_BLOCK: usize = 16 + 4 * 32 + 32;

/// Repacks a `rows × cols` `Q5_0` matrix into the Q5_0×8 layout (`None` if the shape does not
/// fit or `src` is too short).
pub fn repack_q5_0_x8(src: &[u8], rows: usize, cols: usize) -> Option<Vec<u8>> {
    let (from, to) = (q5_0::TYPE_SIZE, Q50_X8_BLOCK);
    repack_with(src, rows, cols, 32, from, to, |dst, r, blk| {
        dst[2 * r..2 * r + 2].copy_from_slice(&blk[0..2]);
        place_nibbles(&mut dst[16..144], r, &blk[6..22]);
        let qh = u32::from_le_bytes([blk[2], blk[3], blk[4], blk[5]]);
        for col in 0..32 {
            let high = ((qh >> col) & 1) as u8;
            dst[144 + 4 * r + col % 4] |= high << (2 * (col / 8) + (col % 8) / 4);
        }
    })
}

/// The Q5_0×8 reference: `out[t][r]` for one group of eight rows (`w`: `nb` blocks of
/// [`Q50_X8_BLOCK`] bytes) and up to four tokens (`a[t]`: [`quantize_q8_0_with_sums`] rows).
pub fn gemm_q5_0_x8_scalar(nb: usize, w: &[u8], a: &[&[u8]], out: &mut [[f32; X8]]) {
    offset_reference(nb, w, a, out, Q50_X8_BLOCK, 16, |wb, r, col| {
        let high = (wb[144 + 4 * r + col % 4] >> (2 * (col / 8) + (col % 8) / 4)) & 1;
        nibble(&wb[16..144], r, col) | (high << 4)
    });
}

/// Bytes of 32 columns of one group of eight `Q8_0` rows.
pub const Q80_X8_BLOCK: usize = 16 + 8 * 32;

/// Repacks a `rows × cols` `Q8_0` matrix into the Q8_0×8 layout (`None` if the shape does not
/// fit or `src` is too short).
pub fn repack_q8_0_x8(src: &[u8], rows: usize, cols: usize) -> Option<Vec<u8>> {
    let (from, to) = (q8_0::TYPE_SIZE, Q80_X8_BLOCK);
    repack_with(src, rows, cols, 32, from, to, |dst, r, blk| {
        dst[2 * r..2 * r + 2].copy_from_slice(&blk[0..2]);
        for (col, &v) in blk[2..34].iter().enumerate() {
            dst[16 + 32 * (col / 4) + 4 * r + col % 4] = v;
        }
    })
}

/// The Q8_0×8 reference: `out[t][r]` for one group of eight rows (`w`: `nb` blocks of
/// [`Q80_X8_BLOCK`] bytes) and up to four tokens of `Q8_0` activations with their sums (which
/// the reference does not need: its integer is the plain `Σ w·y`).
pub fn gemm_q8_0_x8_scalar(nb: usize, w: &[u8], a: &[&[u8]], out: &mut [[f32; X8]]) {
    for (a, out) in a.iter().zip(out.iter_mut()) {
        let mut acc = [0f32; X8];
        for b in 0..nb {
            let wb = &w[b * Q80_X8_BLOCK..(b + 1) * Q80_X8_BLOCK];
            let ab = &a[b * q8_0::TYPE_SIZE..(b + 1) * q8_0::TYPE_SIZE];
            let d_tok = half::f16::from_le_bytes([ab[0], ab[1]]).to_f32();
            for (r, acc) in acc.iter_mut().enumerate() {
                let dot: i32 = (0..32)
                    .map(|col| {
                        let w = wb[16 + 32 * (col / 4) + 4 * r + col % 4] as i8;
                        i32::from(w) * i32::from(ab[2 + col] as i8)
                    })
                    .sum();
                let d = half::f16::from_le_bytes([wb[2 * r], wb[2 * r + 1]]).to_f32();
                *acc = (d * d_tok).mul_add(dot as f32, *acc);
            }
        }
        *out = acc;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_widening_is_halfs_for_every_value() {
        for h in 0..=u16::MAX {
            let (a, b) = (f16_to_f32(h), half::f16::from_bits(h).to_f32());
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{h:#06x}"
            );
        }
    }

    fn data(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let u = ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
                if i % 61 == 0 {
                    u * 6.0
                } else {
                    u
                }
            })
            .collect()
    }

    /// Every registered layout: its scalar reference agrees with the row layout's dot product
    /// (another summation order, so to rounding) for every row of two groups and three tokens.
    #[test]
    fn every_layout_matches_the_row_layout_dot_product() {
        let (rows, cols) = (16, 2 * QK_K);
        for p in &PACKED {
            let f = owl_quant::format(p.ty).expect("format");
            let quantize = f.quantize.expect("quantizer");
            let dot = f.vec_dot.expect("dot");
            let row_bytes = owl_quant::row_bytes(p.ty, cols);
            let mut w = vec![0u8; rows * row_bytes];
            let w_f32 = data(rows * cols, 3);
            for (r, dst) in w.chunks_exact_mut(row_bytes).enumerate() {
                quantize(&w_f32[r * cols..(r + 1) * cols], dst);
            }
            let packed = (p.repack)(&w, rows, cols).expect("fits");
            let nb = cols / p.block_cols;
            // Activations in the layout's format, and the row dot product's own format.
            let (acts, row_acts): (Vec<Vec<u8>>, Vec<Vec<u8>>) = (0..3)
                .map(|t| {
                    let x = data(cols, 100 + t);
                    let mut row = vec![0u8; owl_quant::row_bytes(f.vec_dot_type, cols)];
                    (owl_quant::format(f.vec_dot_type).and_then(|v| v.quantize))
                        .expect("activation quantizer")(&x, &mut row);
                    let mut a = vec![0u8; nb * p.acts.block_bytes()];
                    match p.acts {
                        Activations::Q8_0WithSums => {
                            quantize_q8_0_with_sums(q8_0::quantize, &x, &mut a)
                        }
                        Activations::Q8_1WithScales => {
                            quantize_q8_1_with_scales(q8_1::quantize, &x, &mut a)
                        }
                        _ => a.copy_from_slice(&row),
                    }
                    (a, row)
                })
                .unzip();
            let a: Vec<&[u8]> = acts.iter().map(|v| v.as_slice()).collect();
            for g in 0..rows / X8 {
                let mut out = vec![[0f32; X8]; a.len()];
                let gw = &packed[g * nb * p.block_bytes..(g + 1) * nb * p.block_bytes];
                (p.reference)(nb, gw, &a, &mut out);
                for (t, at) in row_acts.iter().enumerate() {
                    for r in 0..X8 {
                        let row = &w[(g * X8 + r) * row_bytes..(g * X8 + r + 1) * row_bytes];
                        let want = dot(cols, row, at);
                        let got = out[t][r];
                        assert!(
                            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                            "{:?} group {g} row {r} token {t}: {got} vs {want}",
                            p.layout
                        );
                    }
                }
            }
        }
    }

    /// Row `r`'s values of a Q5_K×8 or Q6_K×8 group (`nb` blocks), dequantized from the
    /// repacked bytes with ggml's formulas (`d1·q - m1` for Q5_K, `(d·sc)·(q - 32)` for Q6_K).
    fn dequantize_x8(layout: Layout, nb: usize, group: &[u8], r: usize) -> Vec<f32> {
        let f16 = |b: &[u8], o: usize| half::f16::from_le_bytes([b[o], b[o + 1]]).to_f32();
        let mut out = Vec::with_capacity(nb * QK_K);
        for b in 0..nb {
            match layout {
                Layout::Q5KX8 => {
                    let wb = &group[b * Q5K_X8_BLOCK..(b + 1) * Q5K_X8_BLOCK];
                    let (d, dmin) = (f16(wb, 2 * r), f16(wb, DMIN + 2 * r));
                    for col in 0..QK_K {
                        let s = col / 32;
                        let d1 = d * f32::from(wb[SCALES + 8 * s + r]);
                        let m1 = dmin * f32::from(wb[MINS + 16 * (s / 2) + 2 * r + s % 2]);
                        let byte = wb[q5k_chunk(col / 8) + 4 * r + col % 4];
                        let low = if col % 8 < 4 { byte & 0x0f } else { byte >> 4 };
                        let high = (wb[q5k_fifth(s) + 4 * r + col % 4] >> ((col % 32) / 4)) & 1;
                        out.push(d1 * f32::from(low | (high << 4)) - m1);
                    }
                }
                _ => {
                    let wb = &group[b * Q6K_X8_BLOCK..(b + 1) * Q6K_X8_BLOCK];
                    let d = f16(wb, 2 * r);
                    for col in 0..QK_K {
                        let s = col / 16;
                        let sc = wb[Q6K_SCALES + 16 * (s / 2) + 2 * r + s % 2] as i8;
                        let q = i32::from(q6_k_x8_value(wb, r, col)) - 32;
                        out.push(d * f32::from(sc) * q as f32);
                    }
                }
            }
        }
        out
    }

    /// Q5_K×8 and Q6_K×8 hold every value, scale and minimum of the rows they repack: each row
    /// read back from the repacked bytes dequantizes to the row format's values bit for bit.
    #[test]
    fn k_quant_repacks_round_trip() {
        for (ty, layout) in [
            (GgmlType::Q5_K, Layout::Q5KX8),
            (GgmlType::Q6_K, Layout::Q6KX8),
        ] {
            let p = for_layout(layout).expect("registered");
            assert_eq!(for_type(ty).map(|p| p.layout), Some(layout));
            let (rows, nb) = (24, 3);
            let cols = nb * QK_K;
            let f = owl_quant::format(ty).expect("format");
            let row_bytes = owl_quant::row_bytes(ty, cols);
            let mut w = vec![0u8; rows * row_bytes];
            let w_f32 = data(rows * cols, 9);
            for (r, dst) in w.chunks_exact_mut(row_bytes).enumerate() {
                f.quantize.expect("quantizer")(&w_f32[r * cols..(r + 1) * cols], dst);
            }
            let packed = (p.repack)(&w, rows, cols).expect("fits");
            assert_eq!(packed.len(), rows / X8 * nb * p.block_bytes);
            for row in 0..rows {
                let mut want = vec![0f32; cols];
                (f.dequantize)(&w[row * row_bytes..(row + 1) * row_bytes], &mut want);
                let (g, r) = (row / X8, row % X8);
                let group = &packed[g * nb * p.block_bytes..(g + 1) * nb * p.block_bytes];
                let got = dequantize_x8(layout, nb, group, r);
                for (c, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(a.to_bits(), b.to_bits(), "{layout:?} row {row} col {c}");
                }
            }
        }
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused() {
        assert!(repack_q8_0_x8(&[0u8; 34 * 4], 4, 32).is_none());
        assert!(repack_q4_0_x8(&[0u8; 18 * 4], 4, 32).is_none());
        assert!(repack_q4_0_x8(&[0u8; 18 * 8], 8, 16).is_none());
        assert!(repack_q4_k_x8(&[0u8; 144 * 4], 4, QK_K).is_none());
        assert!(repack_q4_k_x8(&[0u8; 144 * 8], 8, 128).is_none());
        assert!(repack_q4_k_x8(&[0u8; 144 * 7], 8, QK_K).is_none());
        assert!(repack_q6_k_x8(&[0u8; 210 * 4], 4, QK_K).is_none());
        assert!(repack_q6_k_x8(&[0u8; 210 * 7], 8, QK_K).is_none());
        assert!(repack_q5_k_x8(&[0u8; 176 * 8], 8, 128).is_none());
        assert!(repack_q5_k_x8(&[0u8; 176 * 7], 8, QK_K).is_none());
    }
}
