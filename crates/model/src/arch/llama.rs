//! `llama`: Llama 2/3.x, Mistral 7B, SmolLM2, DeepSeek-R1-Distill-Llama.
//! Pre-norm decoder, GQA with normal-order RoPE (llama.cpp permutes Q/K at conversion), SwiGLU,
//! tied or separate output head, optional `rope_freqs` (Llama 3 scaling).

use owl_kernels::rope::RopeOrder;

use super::dense::{load_dense, DenseSpec};
use crate::loader::Loader;
use crate::{Model, ModelError};

pub fn load(ld: &Loader<'_>) -> Result<Box<dyn Model>, ModelError> {
    load_dense(
        ld,
        &DenseSpec {
            arch: "llama",
            rope: RopeOrder::Normal,
            qkv_bias: false,
            qk_norm: false,
            moe: false,
        },
    )
}
