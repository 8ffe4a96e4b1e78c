//! Tensor formats as data: one [`Format`] record per ggml type owl computes with, holding the
//! block geometry and plain function pointers to the scalar reference kernels.
//!
//! Why it is built this way:
//!
//! * **A table, not a trait hierarchy.** Every consumer (model loading, the matmul kernels, the
//!   ISA-specific overrides in `owl-kernels`) needs the same four facts about a type: its block
//!   geometry, how to turn its bytes into `f32`, how to make it from `f32`, and how to dot it
//!   with an activation row. `fn` pointers in a `static` slice make that a lookup
//!   ([`format()`]) with no generics, no allocation and no dynamic dispatch beyond one indirect
//!   call per row. Faster kernels replace entries in their own table; this crate stays the
//!   reference they are tested against.
//! * **Bit-exact with ggml, not merely close.** owl compares generated tokens with llama.cpp, so
//!   every function here mirrors the ggml reference it is named after *in the order of its
//!   float operations*: the `*_ref` quantizers of `ggml-quants.c`, the
//!   `ggml_vec_dot_*_generic` dot products of `ggml-cpu/quants.c` (integer sums inside a block,
//!   then the same `f32` multiply/add sequence), ggml's `nearest_int` magic-number rounding,
//!   and dequantizers that produce the same `f32` bits as the `gguf` Python package. Loops keep
//!   ggml's index structure so the two can be read side by side; Rust never fuses `a*b+c`, which
//!   matches ggml built without FMA contraction. The tests pin this down against files made by
//!   the `gguf` package and by ggml's own C code (`tests/fixtures/`). Two limits: a llama.cpp
//!   built with `-march=native` lets the C compiler contract into FMAs (which moves some K-quant
//!   quantizer and dot-product results by an ulp), and its SIMD dot products (AVX2, NEON) sum in
//!   a different order than the generic ones mirrored here; matching those is the job of the
//!   ISA kernels, tested against these references. `F32`/`F16`/`BF16` dots follow ggml's non-SIMD
//!   path: `f32` products summed in an `f64`.
//! * **Bytes in, bytes out.** Blocks are decoded from little-endian byte slices (the GGUF on-disk
//!   layout) with safe indexing, so the crate has no `unsafe`, no alignment requirements, and
//!   cannot read outside the slices it is given. Malformed data gives meaningless numbers, never a
//!   panic; a caller passing slices of mismatched lengths trips a `debug_assert!`, and in release
//!   builds only the whole blocks present in both slices are processed.
//! * **One file per format** (`q4_0.rs`, `q4_k.rs`, ...), each with its layout constants,
//!   `dequantize`, `quantize` and `vec_dot`; helpers shared by the K-quants live in
//!   [`k_common`].

#![allow(clippy::needless_range_loop)] // loops mirror ggml's indexing so the float order is auditable

pub use owl_gguf::GgmlType;

mod common;
pub use common::{fp16_to_fp32, fp32_to_fp16, nearest_int};

pub mod bf16;
pub mod fp16;
pub mod fp32;
pub mod k_common;
pub mod mix;
pub mod model;
pub mod mxfp4;
pub mod q2_k;
pub mod q3_k;
pub mod q4_0;
pub mod q4_1;
pub mod q4_k;
pub mod q5_0;
pub mod q5_1;
pub mod q5_k;
pub mod q6_k;
pub mod q8_0;
pub mod q8_1;
pub mod q8_k;

/// Elements per K-quant super-block (`QK_K` in ggml).
pub const QK_K: usize = 256;

/// `dst[..n] = src` decoded; `src.len() == n / block_size * type_size`, `dst.len() == n`.
pub type DequantFn = fn(src: &[u8], dst: &mut [f32]);
/// Encodes `src` (`n` floats, a whole number of blocks) into `dst` (`n / block_size * type_size`).
pub type QuantFn = fn(src: &[f32], dst: &mut [u8]);
/// Dot product of `n` elements: `w` in the weight format, `a` in its `vec_dot_type`.
pub type VecDotFn = fn(n: usize, w: &[u8], a: &[u8]) -> f32;

/// Everything owl knows how to do with one tensor type.
#[derive(Debug)]
pub struct Format {
    pub ty: GgmlType,
    /// Elements per block.
    pub block_size: usize,
    /// Bytes per block.
    pub type_size: usize,
    /// The format activations are quantized to before [`Format::vec_dot`] (ggml's type traits).
    pub vec_dot_type: GgmlType,
    /// Decodes blocks to `f32`, bit-identical to `gguf.quants.dequantize`.
    pub dequantize: DequantFn,
    /// ggml's reference (`*_ref`) quantizer, where owl has one.
    pub quantize: Option<QuantFn>,
    /// Scalar reference dot product with a `vec_dot_type` row (`None` for activation-only types).
    pub vec_dot: Option<VecDotFn>,
}

impl Format {
    /// Bytes occupied by `n` elements (`n` is expected to be a whole number of blocks; a partial
    /// trailing block is not counted).
    pub fn row_bytes(&self, n: usize) -> usize {
        n / self.block_size * self.type_size
    }

    /// The type's name as ggml and GGUF spell it ("Q4_K").
    pub fn name(&self) -> &'static str {
        self.ty.name()
    }
}

macro_rules! entry {
    ($ty:ident, $m:ident, $dot:ident, quantize: $q:expr, vec_dot: $vd:expr) => {
        Format {
            ty: GgmlType::$ty,
            block_size: $m::BLOCK_SIZE,
            type_size: $m::TYPE_SIZE,
            vec_dot_type: GgmlType::$dot,
            dequantize: $m::dequantize,
            quantize: $q,
            vec_dot: $vd,
        }
    };
}

static FORMATS: [Format; 16] = [
    entry!(F32, fp32, F32, quantize: Some(fp32::quantize), vec_dot: Some(fp32::vec_dot)),
    entry!(F16, fp16, F16, quantize: Some(fp16::quantize), vec_dot: Some(fp16::vec_dot)),
    entry!(BF16, bf16, BF16, quantize: Some(bf16::quantize), vec_dot: Some(bf16::vec_dot)),
    entry!(Q4_0, q4_0, Q8_0, quantize: Some(q4_0::quantize), vec_dot: Some(q4_0::vec_dot)),
    entry!(Q4_1, q4_1, Q8_1, quantize: Some(q4_1::quantize), vec_dot: Some(q4_1::vec_dot)),
    entry!(Q5_0, q5_0, Q8_0, quantize: Some(q5_0::quantize), vec_dot: Some(q5_0::vec_dot)),
    entry!(Q5_1, q5_1, Q8_1, quantize: Some(q5_1::quantize), vec_dot: Some(q5_1::vec_dot)),
    entry!(Q8_0, q8_0, Q8_0, quantize: Some(q8_0::quantize), vec_dot: Some(q8_0::vec_dot)),
    entry!(Q8_1, q8_1, Q8_1, quantize: Some(q8_1::quantize), vec_dot: None),
    entry!(Q2_K, q2_k, Q8_K, quantize: Some(q2_k::quantize), vec_dot: Some(q2_k::vec_dot)),
    entry!(Q3_K, q3_k, Q8_K, quantize: Some(q3_k::quantize), vec_dot: Some(q3_k::vec_dot)),
    entry!(Q4_K, q4_k, Q8_K, quantize: Some(q4_k::quantize), vec_dot: Some(q4_k::vec_dot)),
    entry!(Q5_K, q5_k, Q8_K, quantize: Some(q5_k::quantize), vec_dot: Some(q5_k::vec_dot)),
    entry!(Q6_K, q6_k, Q8_K, quantize: Some(q6_k::quantize), vec_dot: Some(q6_k::vec_dot)),
    entry!(Q8_K, q8_k, Q8_K, quantize: Some(q8_k::quantize), vec_dot: None),
    entry!(MXFP4, mxfp4, Q8_0, quantize: Some(mxfp4::quantize), vec_dot: Some(mxfp4::vec_dot)),
];

/// The format record for `ty`, or `None` for a type owl cannot compute with.
pub fn format(ty: GgmlType) -> Option<&'static Format> {
    formats().iter().find(|f| f.ty == ty)
}

/// Every supported format, one entry per type.
pub fn formats() -> &'static [Format] {
    &FORMATS
}

/// Bytes for `n` elements of `ty`: `n / block_size * type_size` (`n` is expected to be a whole
/// number of blocks). Works for every [`GgmlType`], supported or not.
pub fn row_bytes(ty: GgmlType, n: usize) -> usize {
    n / ty.block_size() * ty.type_size()
}
