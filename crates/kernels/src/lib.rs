//! owl-kernels: the compute layer (matrix products, attention, norms, RoPE) and the thread pool.
//!
//! Two rules shape this crate. First, every fast path has a scalar twin: the formats' reference
//! dot products live in `owl-quant`, and `Kernels` starts from them, then lets the best ISA the
//! CPU offers (detected once, at run time, never by `target-cpu=native`) override entries. Tests
//! force `Isa::Scalar` to compare. Second, a row's result never depends on what else shares its
//! batch: `linear` computes every (weight row, activation row) pair with the same dot-product
//! function and the same reduction order whether the batch holds one token or a hundred, so
//! batched and solo generation give bit-identical logits.

pub mod attention;
pub mod isa;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod repack;
pub mod rope;
pub mod softmax;
pub mod swiglu;
mod x86;

pub use isa::{Isa, Kernels};
pub use matmul::{linear, linear_many, ActBuffer, Layout, QMatrix, WeightBytes};
pub use pool::ThreadPool;
