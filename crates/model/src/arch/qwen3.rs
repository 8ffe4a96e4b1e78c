//! `qwen3`: Qwen3 dense models.
//! The llama block with RMSNorm on every Q and K head before NeoX-order RoPE, no biases; the
//! head size comes from `qwen3.attention.key_length` (wider than `n_embd / n_head`).

use owl_kernels::rope::RopeOrder;

use super::dense::{load_dense, DenseSpec};
use crate::loader::Loader;
use crate::{Model, ModelError};

pub fn load(ld: &Loader<'_>) -> Result<Box<dyn Model>, ModelError> {
    load_dense(
        ld,
        &DenseSpec {
            arch: "qwen3",
            rope: RopeOrder::Neox,
            qkv_bias: false,
            qk_norm: true,
            moe: false,
        },
    )
}
