//! `qwen2`: Qwen2, Qwen2.5, Qwen2.5-Coder, DeepSeek-R1-Distill-Qwen.
//! The llama block with biases on the Q/K/V projections and NeoX-order RoPE.

use owl_kernels::rope::RopeOrder;

use super::dense::{load_dense, DenseSpec};
use crate::loader::Loader;
use crate::{Model, ModelError};

pub fn load(ld: &Loader<'_>) -> Result<Box<dyn Model>, ModelError> {
    load_dense(
        ld,
        &DenseSpec {
            arch: "qwen2",
            rope: RopeOrder::Neox,
            qkv_bias: true,
            qk_norm: false,
            moe: false,
        },
    )
}
