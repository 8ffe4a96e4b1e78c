//! The vocabulary every other module of the crate shares: the kernel function-pointer types,
//! the weight `Layout`s and the paged KV row attention reads.
//!
//! Why a module of its own: the kernel table (`table`), the ISA registry (`isa`), the repacked
//! layouts (`repack`) and the SIMD kernels (`x86`) all speak these types. Were they defined in
//! any one of those, the others would import it and it would import them back (the registry
//! names the x86 kernels, the x86 kernels name the layouts, the layouts name the kernel type).
//! This module imports nothing from the crate, so the crate's modules form no cycle.

use half::f16;

/// One row scattered over KV pages: segment `s` (of `KV_PAGE` halves) starts at
/// `data[pages[s] * page_elems + offset]`.
#[derive(Clone, Copy)]
pub struct PagedRow<'a> {
    pub data: &'a [f16],
    pub pages: &'a [u32],
    pub page_elems: usize,
    pub offset: usize,
}

impl<'a> PagedRow<'a> {
    /// Segment `s`, `len` halves long (at most `KV_PAGE`).
    #[inline]
    pub fn segment(&self, s: usize, len: usize) -> &'a [f16] {
        let at = self.pages[s] as usize * self.page_elems + self.offset;
        &self.data[at..at + len]
    }

    /// Element `i` of segment `s`, unchecked: the SIMD kernels' address of it.
    ///
    /// # Safety
    /// `s` indexes `pages`, and the element lies inside `data` (as must every element the
    /// caller reads from the pointer).
    #[inline]
    pub unsafe fn segment_ptr(&self, s: usize, i: usize) -> *const f16 {
        // SAFETY: both in bounds (caller's contract).
        unsafe {
            let page = *self.pages.get_unchecked(s) as usize;
            self.data
                .as_ptr()
                .add(page * self.page_elems + self.offset + i)
        }
    }
}

/// The rows of one KV head's keys across pages: position `j`'s row starts at
/// `data[pages[j / KV_PAGE] * page_elems + offset + (j % KV_PAGE) * stride]`.
#[derive(Clone, Copy)]
pub struct PagedRows<'a> {
    pub data: &'a [f16],
    pub pages: &'a [u32],
    pub page_elems: usize,
    pub offset: usize,
    pub stride: usize,
}

impl<'a> PagedRows<'a> {
    /// Position `j`'s row, `d` halves long.
    #[inline]
    pub fn row(&self, j: usize, d: usize) -> &'a [f16] {
        let at = self.pages[j / KV_PAGE_OF_ROWS] as usize * self.page_elems
            + self.offset
            + (j % KV_PAGE_OF_ROWS) * self.stride;
        &self.data[at..at + d]
    }

    /// Position `j`'s row, unchecked: the SIMD kernels' address of it.
    ///
    /// # Safety
    /// `j / KV_PAGE` indexes `pages`, and the row starts inside `data` (as must every half the
    /// caller reads from the pointer).
    #[inline]
    pub unsafe fn row_ptr(&self, j: usize) -> *const f16 {
        // SAFETY: both in bounds (caller's contract).
        unsafe {
            let page = *self.pages.get_unchecked(j / KV_PAGE_OF_ROWS) as usize;
            let at = page * self.page_elems + self.offset + (j % KV_PAGE_OF_ROWS) * self.stride;
            self.data.as_ptr().add(at)
        }
    }
}

/// Positions per KV page (`crate::attention::KV_PAGE`, repeated here so this leaf module
/// imports nothing from the crate; a test checks the two agree).
pub const KV_PAGE_OF_ROWS: usize = 32;

/// Dot product of two f16 vectors of equal length (attention scores and outputs).
pub type DotF16Fn = fn(a: &[f16], b: &[f16]) -> f32;
/// The same dot product with `a` scattered over KV pages; must sum in exactly the order of the
/// contiguous `DotF16Fn` of its kind (tested bit for bit).
pub type DotF16PagedFn = fn(a: &PagedRow<'_>, b: &[f16]) -> f32;
/// Four dot products of one weight row with four activation rows. Each result must be
/// bit-identical to the single `VecDotFn` of the same format (the batch-invariance promise).
pub type VecDotX4Fn = fn(n: usize, w: &[u8], a: [&[u8]; 4]) -> [f32; 4];
/// Two weight rows against four tokens' activations: `out[r][t]`, each bit-identical to the
/// single dot product of row `r` and token `t` (a 2×4 register tile: weights loaded once for
/// four tokens, activations once for two rows, scales converted four at a time).
pub type VecDot2x4Fn = fn(n: usize, w: [&[u8]; 2], a: [&[u8]; 4]) -> [[f32; 4]; 2];
/// Four weight rows of a 16-bit float format (F16, BF16) against four tokens' activations in
/// that format: `out[r][t]`, bit-identical to the single `VecDotFn` of row `r` and token `t`.
/// Prompts of 16-bit models (a Hugging Face checkpoint read in place) spend their time here.
pub type FloatTileFn = fn(n: usize, w: [&[u8]; 4], a: [&[u8]; 4]) -> [[f32; 4]; 4];
/// The scores of a group of decoding heads that share one K head, in one call: for head `h`,
/// `outs[h][j] = DotF16Fn(row j, f16(qs[h])) * scale` for `j` in `first..n` (rows of `d`
/// halves), and `maxes[h]` their maximum (NaN scores ignored, `-inf` when there are none).
/// Every query holds `d` f16 values widened to f32 and every `outs[h]` holds `n` floats, so
/// the bits are those of the single decode-order dot product; each K row is read once for
/// the whole group. Panics if the group's shapes disagree.
pub type ScoresF16Fn = fn(
    k: &PagedRows<'_>,
    qs: &[&[f32]],
    scale: f32,
    first: usize,
    outs: &mut [&mut [f32]],
    maxes: &mut [f32],
);
/// The outputs of a group of decoding heads that share one V head, in one call:
/// `outs[h][i] = DotF16PagedFn(row i, f16(ps[h]))` (decode order), where row `i` is `vt` with
/// its offset moved by `i * KV_PAGE` (V stored transposed) and every `ps[h]` holds the same
/// number of f16 values widened to f32. Each V row is read once for the whole group.
pub type HeadOutF16Fn = fn(vt: &PagedRow<'_>, ps: &[&[f32]], outs: &mut [&mut [f32]]);
/// `dst[i] = src[i]` as f32 (exact).
pub type WidenF16Fn = fn(src: &[f16], dst: &mut [f32]);
/// `dst[i] = f16(src[i] * scale)`: the f32 product, then round-to-nearest-even to f16.
pub type ScaleToF16Fn = fn(src: &[f32], scale: f32, dst: &mut [f16]);
/// One group of eight repacked weight rows against up to four tokens (`crate::repack`):
/// `out[t][r]`, bit-identical to the layout's scalar reference.
pub type GemmX8Fn = fn(nb: usize, w: &[u8], a: &[&[u8]], out: &mut [[f32; 8]]);
/// Two consecutive groups of a repacked layout (`w` holds `2 * nb` blocks) against every
/// token of `a`: `out[t]` is the first group's rows for token `t`, `out[a.len() + t]` the
/// second's, each bit-identical to the layout's single-group kernel and scalar reference.
pub type GemmX8PairFn = fn(nb: usize, w: &[u8], a: &[&[u8]], out: &mut [[f32; 8]]);
/// One or two consecutive groups of a repacked layout (`groups · nb` blocks of `w`) against
/// many tokens at once through a tile engine (AMX): `acts` holds the tokens' activation rows,
/// `a_row` bytes each, and `out[t · 8·groups + 8g + r]` gets row `r` of group `g` for token
/// `t`, bit-identical to the layout's scalar reference.
pub type GemmTilesFn =
    fn(nb: usize, w: &[u8], groups: usize, acts: &[u8], a_row: usize, out: &mut [f32]);
/// `x[i] = exp(x[i] - max)` in place, returning the sum.
pub type SoftmaxExpFn = fn(x: &mut [f32], max: f32) -> f64;
/// `gate[i] = silu(gate[i]) * up[i]` in place.
pub type SwigluFn = fn(gate: &mut [f32], up: &[f32]);

/// How a matrix's bytes are arranged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// The file's layout: one row after another, each `row_bytes()` long.
    #[default]
    Rows,
    /// `Q4_K` repacked in groups of eight rows (`crate::repack`), made at load time.
    Q4KX8,
    /// `Q4_0` repacked in groups of eight rows.
    Q40X8,
    /// `Q8_0` repacked in groups of eight rows.
    Q80X8,
    /// `Q4_1` repacked in groups of eight rows.
    Q41X8,
    /// `Q5_0` repacked in groups of eight rows.
    Q50X8,
    /// `Q6_K` repacked in groups of eight rows.
    Q6KX8,
    /// `Q5_K` repacked in groups of eight rows.
    Q5KX8,
}

/// An instruction-set level owl has kernels for: an index into the registry
/// `crate::isa::ISAS` (`Isa::SCALAR`, `Isa::AVX2`, ...). Levels are ordered as the registry
/// is: a later one is registered on top of the earlier ones it builds on.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Isa(pub(crate) u8);
