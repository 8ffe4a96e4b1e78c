//! `qwen3moe`: Qwen3-30B-A3B, Qwen3-235B-A22B.
//! Qwen3's attention (per-head Q/K RMSNorm, NeoX RoPE) with a mixture-of-experts FFN in every
//! layer: softmax router, top-k experts, weights normalised over the chosen ones, no shared
//! expert.

use owl_kernels::rope::RopeOrder;

use super::dense::{load_dense, DenseSpec};
use crate::loader::Loader;
use crate::{Model, ModelError};

pub fn load(ld: &Loader<'_>) -> Result<Box<dyn Model>, ModelError> {
    load_dense(
        ld,
        &DenseSpec {
            arch: "qwen3moe",
            rope: RopeOrder::Neox,
            qkv_bias: false,
            qk_norm: true,
            moe: true,
        },
    )
}
