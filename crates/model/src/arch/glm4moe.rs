//! `glm4moe`: GLM-4.5, GLM-4.5-Air (and Solar Open, which llama.cpp files under it).
//!
//! The shared pre-norm decoder with grouped-query attention (Q/K/V biases, optional per-head
//! Q/K RMSNorm, NeoX RoPE over part of each head: `rope.dimension_count` is half the head for
//! GLM-4.5), the pre-FFN norm named `blk.N.post_attention_norm`, and DeepSeek-style routing
//! (`arch::routed`): leading dense layers, then sigmoid-scored experts with a selection bias,
//! normalised and scaled weights and shared experts. The multi-token-prediction layers some
//! files append after `block_count` are not used for generation (llama.cpp skips them too).

use owl_kernels::rope::RopeOrder;

use super::dense::gqa_optional_biases;
use super::routed::RoutedSpec;
use crate::blocks::gqa::{Gqa, QkNorm};
use crate::blocks::moe::Gating;
use crate::decoder::{AttnBlock, Decoder, DecoderLayer};
use crate::hparams::HParams;
use crate::loader::Loader;
use crate::{Model, ModelError};

const ARCH: &str = "glm4moe";

pub fn load(ld: &Loader<'_>) -> Result<Box<dyn Model>, ModelError> {
    let sections = format!("{ARCH}.rope.dimension_sections");
    if ld.file.get(&sections).is_some() {
        return Err(ModelError::BadKey {
            key: sections,
            why: "multimodal RoPE sections (GLM-4.5V) are not supported".into(),
        });
    }
    let hp = HParams::from_gguf(ld.file, ARCH, RopeOrder::Neox)?;
    let routed = RoutedSpec::read(ld, ARCH, Gating::Sigmoid)?;
    let (e, hd) = (hp.n_embd, hp.head_dim);
    let norm = |name: &str| ld.rms_norm(name, e, hp.rms_eps);
    let mut layers = Vec::with_capacity(hp.n_layer);
    for i in 0..hp.n_layer {
        let t = |s: &str| format!("blk.{i}.{s}.weight");
        let qk_norm = if ld.has(&t("attn_q_norm")) {
            Some(QkNorm {
                q: ld.vector(&t("attn_q_norm"), hd)?,
                k: ld.vector(&t("attn_k_norm"), hd)?,
                eps: hp.rms_eps,
            })
        } else {
            None
        };
        layers.push(DecoderLayer {
            attn_norm: norm(&t("attn_norm"))?,
            attn: AttnBlock::Gqa(Gqa {
                qk_norm,
                ..gqa_optional_biases(ld, &hp, i)?
            }),
            ffn_norm: norm(&t("post_attention_norm"))?,
            ffn: routed.ffn(ld, &hp, i)?,
        });
    }
    let (token_embd, output) = ld.embeddings(e, hp.n_vocab)?;
    Ok(Box::new(Decoder {
        output_norm: norm("output_norm.weight")?,
        token_embd,
        output,
        layers,
        hp,
    }))
}
