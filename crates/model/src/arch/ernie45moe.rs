//! `ernie4_5-moe`: Baidu ERNIE 4.5 MoE (21B-A3B, 300B-A47B).
//!
//! The shared pre-norm decoder with grouped-query attention (normal RoPE over the whole head,
//! optional Q/K/V and output biases) and, after `leading_dense_block_count` dense layers, a
//! softmax-routed mixture (weights always normalised, as llama.cpp's graph hard-codes) with an
//! optional selection bias and a shared expert of `expert_shared_feed_forward_length`
//! (`arch::routed`, every `interleave_moe_layer_step`-th layer).

use owl_kernels::rope::RopeOrder;

use super::dense::{decoder, rms};
use super::routed::RoutedSpec;
use crate::blocks::gqa::Gqa;
use crate::blocks::moe::Gating;
use crate::decoder::{AttnBlock, DecoderLayer};
use crate::hparams::HParams;
use crate::keys::Keys;
use crate::loader::Loader;
use crate::tensors::part::{ATTN_NORM, FFN_NORM};
use crate::{Model, ModelError};

const ARCH: &str = "ernie4_5-moe";

pub fn load(ld: &Loader<'_>) -> Result<Box<dyn Model>, ModelError> {
    let hp = HParams::from_gguf(ld.file, ARCH, RopeOrder::Normal)?;
    let keys = Keys::new(ld.file, ARCH);
    let mut routed = RoutedSpec::read(ld, ARCH, Gating::Softmax)?;
    routed.norm_weights = true;
    routed.shared_ff = Some(keys.count_or("expert_shared_feed_forward_length", 0)?);
    routed.moe_step = keys.count_or("interleave_moe_layer_step", 1)?.max(1);
    let mut layers = Vec::with_capacity(hp.n_layer);
    for i in 0..hp.n_layer {
        let t = ld.layer(i);
        layers.push(DecoderLayer {
            attn_norm: rms(&t, ATTN_NORM, &hp)?,
            attn: AttnBlock::Gqa(Gqa::load(&t, &hp)?),
            ffn_norm: rms(&t, FFN_NORM, &hp)?,
            ffn: routed.ffn(ld, &hp, i)?,
        });
    }
    decoder(ld, hp, layers)
}
