//! `nomic-bert`: nomic-embed-text v1 / v1.5 (Ollama's `nomic-embed-text`).
//!
//! BERT's post-norm encoder (`arch/bert.rs`, llama.cpp's shared `bert` graph) with three
//! differences: no position rows, RoPE (NeoX pairing, `nomic-bert.rope.freq_base`) on Q and K
//! instead; Q/K/V from one fused `attn_qkv` projection; and a SwiGLU FFN
//! (`silu(ffn_gate(x)) * ffn_up(x)`, then `ffn_down`) without biases. Mean pooling.

use super::bert::{load_encoder, EncoderSpec};
use crate::loader::Loader;
use crate::{Model, ModelError};

pub fn load(ld: &Loader<'_>) -> Result<Box<dyn Model>, ModelError> {
    load_encoder(
        ld,
        &EncoderSpec {
            arch: "nomic-bert",
            rope: true,
            swiglu: true,
        },
    )
}
