//! `ernie4_5-moe`: Baidu ERNIE 4.5 MoE (21B-A3B, 300B-A47B).
//!
//! The shared pre-norm decoder with grouped-query attention (normal RoPE over the whole head,
//! optional Q/K/V and output biases) and, after `leading_dense_block_count` dense layers, a
//! softmax-routed mixture (weights always normalised, as llama.cpp's graph hard-codes) with an
//! optional selection bias and a shared expert of `expert_shared_feed_forward_length`
//! (`arch::routed`, every `interleave_moe_layer_step`-th layer).

use owl_kernels::rope::RopeOrder;

use super::dense::gqa_optional_biases;
use super::routed::RoutedSpec;
use crate::blocks::gqa::Gqa;
use crate::blocks::moe::Gating;
use crate::decoder::{AttnBlock, Decoder, DecoderLayer};
use crate::hparams::HParams;
use crate::loader::Loader;
use crate::{Model, ModelError};

const ARCH: &str = "ernie4_5-moe";

pub fn load(ld: &Loader<'_>) -> Result<Box<dyn Model>, ModelError> {
    let hp = HParams::from_gguf(ld.file, ARCH, RopeOrder::Normal)?;
    let mut routed = RoutedSpec::read(ld, ARCH, Gating::Softmax)?;
    routed.norm_weights = true;
    let key = |k: &str| format!("{ARCH}.{k}");
    let small = |k: &str, default: u64| -> Result<usize, ModelError> {
        let v = ld.file.get_u64(&key(k)).unwrap_or(default);
        usize::try_from(v)
            .ok()
            .filter(|&v| v < (1 << 24))
            .ok_or(ModelError::BadKey {
                key: key(k),
                why: format!("{v} is out of range"),
            })
    };
    routed.shared_ff = Some(small("expert_shared_feed_forward_length", 0)?);
    routed.moe_step = small("interleave_moe_layer_step", 1)?.max(1);
    let e = hp.n_embd;
    let norm = |name: &str| ld.rms_norm(name, e, hp.rms_eps);
    let mut layers = Vec::with_capacity(hp.n_layer);
    for i in 0..hp.n_layer {
        let t = |s: &str| format!("blk.{i}.{s}.weight");
        layers.push(DecoderLayer {
            attn_norm: norm(&t("attn_norm"))?,
            attn: AttnBlock::Gqa(Gqa {
                bo: ld.optional_vector(&format!("blk.{i}.attn_output.bias"), e)?,
                ..gqa_optional_biases(ld, &hp, i)?
            }),
            ffn_norm: norm(&t("ffn_norm"))?,
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
