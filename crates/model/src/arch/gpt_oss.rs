//! `gpt-oss`: OpenAI gpt-oss-20b and gpt-oss-120b (llama.cpp's LLM_ARCH_OPENAI_MOE).
//!
//! The shared pre-norm decoder with: GQA with Q/K/V and output biases, NeoX RoPE with YaRN
//! scaling, a sink logit per head, and sliding-window attention on every other layer
//! (`load_swa_pattern(ml, 2)`: layers 0, 2, 4, ... slide over `attention.sliding_window`
//! positions, the odd ones see everything); the FFN norm is `blk.N.post_attention_norm`
//! (llama.cpp's `attn_post_norm`, which it applies to the residual stream before the MoE: the
//! pre-FFN norm, not a norm of the attention output); a mixture of
//! experts in every layer with a biased router, top-k on the logits then a softmax over the
//! chosen ones (SOFTMAX_WEIGHT, no renormalisation), biased experts and `swiglu_oai`
//! (alpha 1.702, limit 7); a separate output head.

use owl_kernels::rope::RopeOrder;

use super::dense::{decoder, moe_dims, rms};
use crate::blocks::ffn::SwiGluFfn;
use crate::blocks::gqa::Gqa;
use crate::blocks::moe::{ExpertAct, Gating, MoeBias, MoeFfn};
use crate::decoder::{AttnBlock, DecoderLayer, FfnBlock};
use crate::hparams::{swa_layers, HParams};
use crate::keys::Keys;
use crate::loader::Loader;
use crate::tensors::part::{ATTN_NORM, ATTN_POST_NORM, FFN_EXPERTS, FFN_ROUTER};
use crate::{Model, ModelError};

const ARCH: &str = "gpt-oss";

pub fn load(ld: &Loader<'_>) -> Result<Box<dyn Model>, ModelError> {
    let hp = HParams::from_gguf(ld.file, ARCH, RopeOrder::Neox)?;
    let keys = Keys::new(ld.file, ARCH);
    let e = hp.n_embd;
    let (n_expert, n_used, ffe) = moe_dims(ld, ARCH)?;
    let window = keys
        .sliding_window()?
        .ok_or_else(|| ModelError::MissingKey(keys.name("attention.sliding_window")))?;
    let swa = swa_layers(ld.file, ARCH, hp.n_layer, 2, false)?;
    // Sliding-window layers may have their own frequency base; the scaling is shared.
    let rope_swa = match keys.f32("rope.freq_base_swa")? {
        Some(base) => hp.rope.clone().with_freq_base(base),
        None => hp.rope.clone(),
    };
    let mut layers = Vec::with_capacity(hp.n_layer);
    for (i, &slides) in swa.iter().enumerate() {
        let t = ld.layer(i);
        let [gate, up, down] = FFN_EXPERTS;
        layers.push(DecoderLayer {
            attn_norm: rms(&t, ATTN_NORM, &hp)?,
            attn: AttnBlock::Gqa(Gqa {
                bo: Some(Gqa::load_output_bias(&t, e)?),
                sinks: Some(Gqa::load_sinks(&t, hp.n_head)?),
                window: slides.then_some(window),
                rope: if slides {
                    rope_swa.clone()
                } else {
                    hp.rope.clone()
                },
                ..Gqa::load(&t, &hp)?
            }),
            ffn_norm: rms(&t, ATTN_POST_NORM, &hp)?,
            ffn: FfnBlock::Moe(Box::new(MoeFfn {
                router: t.matrix(FFN_ROUTER, e, n_expert)?,
                experts: SwiGluFfn::load_experts(&t, e, ffe, n_expert)?,
                n_used,
                norm_weights: false,
                gating: Gating::SoftmaxWeighted,
                act: ExpertAct::SwiGluOai {
                    alpha: 1.702,
                    limit: 7.0,
                },
                bias: Some(MoeBias {
                    router: t.bias(FFN_ROUTER, n_expert)?,
                    gate: t.biases(gate, ffe, n_expert)?,
                    up: t.biases(up, ffe, n_expert)?,
                    down: t.biases(down, e, n_expert)?,
                }),
                selection_bias: None,
                groups: None,
                weights_scale: 1.0,
                shared: None,
            })),
        });
    }
    // The output head is required here (llama.cpp's flag 0): never tied.
    if !ld.has("output.weight") {
        return Err(ModelError::MissingTensor("output.weight".into()));
    }
    decoder(ld, hp, layers)
}
