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

use super::dense::{gqa_optional_biases, moe_dims, swiglu_experts};
use crate::blocks::gqa::Gqa;
use crate::blocks::moe::{ExpertAct, Gating, MoeBias, MoeFfn};
use crate::decoder::{AttnBlock, Decoder, DecoderLayer, FfnBlock};
use crate::hparams::{swa_layers, HParams};
use crate::loader::Loader;
use crate::{Model, ModelError};

const ARCH: &str = "gpt-oss";

pub fn load(ld: &Loader<'_>) -> Result<Box<dyn Model>, ModelError> {
    let hp = HParams::from_gguf(ld.file, ARCH, RopeOrder::Neox)?;
    let e = hp.n_embd;
    let (n_expert, n_used, ffe) = moe_dims(ld, ARCH)?;
    let window_key = format!("{ARCH}.attention.sliding_window");
    let window = ld
        .file
        .get_u64(&window_key)
        .ok_or_else(|| ModelError::MissingKey(window_key.clone()))?;
    let window = usize::try_from(window)
        .ok()
        .filter(|&w| w > 0)
        .ok_or(ModelError::BadKey {
            key: window_key,
            why: format!("a window of {window} positions"),
        })?;
    let swa = swa_layers(ld.file, ARCH, hp.n_layer, 2, false)?;
    // Sliding-window layers may have their own frequency base; the scaling is shared.
    let rope_swa = match ld.file.get_f32(&format!("{ARCH}.rope.freq_base_swa")) {
        Some(base) => hp.rope.clone().with_freq_base(base),
        None => hp.rope.clone(),
    };
    let norm = |name: &str| ld.rms_norm(name, e, hp.rms_eps);
    let mut layers = Vec::with_capacity(hp.n_layer);
    for (i, &slides) in swa.iter().enumerate() {
        let t = |s: &str| format!("blk.{i}.{s}.weight");
        let b = |s: &str| format!("blk.{i}.{s}.bias");
        layers.push(DecoderLayer {
            attn_norm: norm(&t("attn_norm"))?,
            attn: AttnBlock::Gqa(Gqa {
                bo: Some(ld.vector(&b("attn_output"), e)?),
                sinks: Some(ld.vector(&t("attn_sinks"), hp.n_head)?),
                window: slides.then_some(window),
                rope: if slides {
                    rope_swa.clone()
                } else {
                    hp.rope.clone()
                },
                ..gqa_optional_biases(ld, &hp, i)?
            }),
            ffn_norm: norm(&t("post_attention_norm"))?,
            ffn: FfnBlock::Moe(Box::new(MoeFfn {
                router: ld.matrix(&t("ffn_gate_inp"), e, n_expert)?,
                experts: swiglu_experts(ld, i, e, ffe, n_expert)?,
                n_used,
                norm_weights: false,
                gating: Gating::SoftmaxWeighted,
                act: ExpertAct::SwiGluOai {
                    alpha: 1.702,
                    limit: 7.0,
                },
                bias: Some(MoeBias {
                    router: ld.vector(&b("ffn_gate_inp"), n_expert)?,
                    gate: ld.vectors(&b("ffn_gate_exps"), ffe, n_expert)?,
                    up: ld.vectors(&b("ffn_up_exps"), ffe, n_expert)?,
                    down: ld.vectors(&b("ffn_down_exps"), e, n_expert)?,
                }),
                selection_bias: None,
                groups: None,
                weights_scale: 1.0,
                shared: None,
            })),
        });
    }
    Ok(Box::new(Decoder {
        // Row layout (read row by row); a repacked Q8_0/Q4_0/... embedding would read as
        // nothing. The output head is required here (llama.cpp's flag 0): never tied.
        token_embd: ld.token_embd(e, hp.n_vocab)?,
        output: ld.matrix("output.weight", e, hp.n_vocab)?,
        output_norm: norm("output_norm.weight")?,
        layers,
        hp,
    }))
}
