//! `glm4moe`: GLM-4.5, GLM-4.5-Air (and Solar Open, which llama.cpp files under it).
//!
//! The shared pre-norm decoder with grouped-query attention (Q/K/V biases, optional per-head
//! Q/K RMSNorm, NeoX RoPE over part of each head: `rope.dimension_count` is half the head for
//! GLM-4.5), the pre-FFN norm named `blk.N.post_attention_norm`, and DeepSeek-style routing
//! (`arch::routed`): leading dense layers, then sigmoid-scored experts with a selection bias,
//! normalised and scaled weights and shared experts. The multi-token-prediction layers some
//! files append after `block_count` are not used for generation (llama.cpp skips them too).

use owl_kernels::rope::RopeOrder;

use super::dense::{decoder, rms};
use super::routed::RoutedSpec;
use crate::blocks::gqa::{Gqa, QkNorm};
use crate::blocks::moe::Gating;
use crate::decoder::{AttnBlock, DecoderLayer};
use crate::hparams::HParams;
use crate::keys::Keys;
use crate::loader::Loader;
use crate::tensors::part::{ATTN_NORM, ATTN_POST_NORM};
use crate::{Model, ModelError};

const ARCH: &str = "glm4moe";

pub fn load(ld: &Loader<'_>) -> Result<Box<dyn Model>, ModelError> {
    let keys = Keys::new(ld.file, ARCH);
    if keys.has("rope.dimension_sections") {
        return Err(ModelError::BadKey {
            key: keys.name("rope.dimension_sections"),
            why: "multimodal RoPE sections (GLM-4.5V) are not supported".into(),
        });
    }
    let hp = HParams::from_gguf(ld.file, ARCH, RopeOrder::Neox)?;
    let routed = RoutedSpec::read(ld, ARCH, Gating::Sigmoid)?;
    let mut layers = Vec::with_capacity(hp.n_layer);
    for i in 0..hp.n_layer {
        let t = ld.layer(i);
        layers.push(DecoderLayer {
            attn_norm: rms(&t, ATTN_NORM, &hp)?,
            attn: AttnBlock::Gqa(Gqa {
                qk_norm: QkNorm::load_if_present(&t, hp.head_dim, hp.rms_eps)?,
                ..Gqa::load(&t, &hp)?
            }),
            ffn_norm: rms(&t, ATTN_POST_NORM, &hp)?,
            ffn: routed.ffn(ld, &hp, i)?,
        });
    }
    decoder(ld, hp, layers)
}
