//! owl-kernels: the compute layer (matrix products, attention, norms, RoPE) and the thread pool.
//!
//! Two rules shape this crate. First, every fast path has a scalar twin: the formats' reference dot
//! products live in `owl-quant`, and `Kernels` starts from them, then lets the best ISA the CPU
//! offers (detected once, at run time, never by `target-cpu=native`) override entries, as the
//! registry `isa::ISAS` lists them. Tests build the table of every `Isa::available()` level and
//! compare it with `Isa::SCALAR`'s. Second, a row's result never depends on what else shares its
//! batch: `linear` computes every (weight row, activation row) pair with the same dot-product
//! function and the same reduction order whether the batch holds one token or a hundred, so batched
//! and solo generation give bit-identical logits.

pub mod amx;
pub mod attention;
pub mod gelu;
pub mod gemm_float;
pub mod gemm_panel;
pub mod isa;
pub mod layer_norm;
pub mod matmul;
pub mod norm;
pub mod par_rows;
pub mod pool;
pub mod repack;
pub mod rope;
mod scalar;
pub mod softmax;
pub mod swiglu;
pub mod table;
pub mod types;
mod x86;

pub use isa::{IsaDef, ISAS};
pub use matmul::{
    linear, linear_gemm, linear_many, linear_many_gemm, ActBuffer, QMatrix, WeightBytes,
};
pub use pool::ThreadPool;
pub use table::Kernels;
pub use types::{Isa, Layout};
