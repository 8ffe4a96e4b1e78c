//! The loader shared by dense decoder architectures: hyper-parameters from `{arch}.*` keys and
//! llama.cpp's tensor names (`token_embd`, `blk.N.attn_q`, ..., `output_norm`, `output`),
//! with the per-family differences stated as options.

use owl_kernels::rope::RopeOrder;

use crate::blocks::ffn::SwiGluFfn;
use crate::blocks::gqa::{Gqa, QkNorm};
use crate::blocks::moe::MoeFfn;
use crate::blocks::norm::RmsNorm;
use crate::decoder::{AttnBlock, Decoder, DecoderLayer, FfnBlock};
use crate::hparams::HParams;
use crate::keys::Keys;
use crate::loader::Loader;
use crate::pooling::{ClassifierHead, Pooling};
use crate::tensors::part::{ATTN_NORM, FFN_NORM, FFN_ROUTER, OUTPUT_NORM};
use crate::tensors::Tensors;
use crate::{Model, ModelError};

/// What distinguishes one dense family from another.
pub struct DenseSpec {
    /// The GGUF `general.architecture` value, also the metadata key prefix.
    pub arch: &'static str,
    /// RoPE pairing (llama.cpp's LLAMA_ROPE_TYPE_NORM or _NEOX for this architecture).
    pub rope: RopeOrder,
    /// Q/K/V projections carry biases (`blk.N.attn_{q,k,v}.bias`).
    pub qkv_bias: bool,
    /// Per-head RMSNorm of Q and K before RoPE (`blk.N.attn_{q,k}_norm.weight`, Qwen3).
    pub qk_norm: bool,
    /// The FFN is a mixture of experts with a softmax router (`ffn_gate_inp`,
    /// `ffn_{gate,up,down}_exps`; `{arch}.expert_count`, `.expert_used_count`,
    /// `.expert_feed_forward_length`), weights normalised over the chosen experts.
    pub moe: bool,
}

/// Expert counts and sizes of a mixture-of-experts model.
pub(super) fn moe_dims(ld: &Loader<'_>, arch: &str) -> Result<(usize, usize, usize), ModelError> {
    let keys = Keys::new(ld.file, arch);
    let (n_expert, n_used, n_ff) = (
        keys.dim_req("expert_count")?,
        keys.dim_req("expert_used_count")?,
        keys.dim_req("expert_feed_forward_length")?,
    );
    if n_used > n_expert {
        return Err(ModelError::BadKey {
            key: keys.name("expert_used_count"),
            why: format!("{n_used} experts used of {n_expert}"),
        });
    }
    Ok((n_expert, n_used, n_ff))
}

/// The RMSNorm `part` of width `n_embd` with the model's epsilon.
pub(super) fn rms(t: &Tensors<'_>, part: &str, hp: &HParams) -> Result<RmsNorm, ModelError> {
    RmsNorm::load(t, part, hp.n_embd, hp.rms_eps)
}

/// The softmax-routed mixture of layer `t` (Qwen3-MoE): weights normalised over the chosen.
pub(super) fn softmax_moe(
    ld: &Loader<'_>,
    t: &Tensors<'_>,
    arch: &str,
    n_embd: usize,
) -> Result<MoeFfn, ModelError> {
    let (n_expert, n_used, ffe) = moe_dims(ld, arch)?;
    Ok(MoeFfn::softmax(
        t.matrix(FFN_ROUTER, n_embd, n_expert)?,
        SwiGluFfn::load_experts(t, n_embd, ffe, n_expert)?,
        n_used,
    ))
}

/// The shared pre-norm decoder's tail: `output_norm`, and the embeddings with the output head
/// (tied when the file has no `output.weight`).
pub(super) fn decoder(
    ld: &Loader<'_>,
    hp: HParams,
    layers: Vec<DecoderLayer>,
) -> Result<Box<dyn Model>, ModelError> {
    let (token_embd, output) = ld.embeddings(hp.n_embd, hp.n_vocab)?;
    // A reranker (Qwen3-Reranker as llama.cpp converts it: rank pooling, `cls.output` holding
    // the "yes" and "no" rows of the output head); llama.cpp applies the softmax for Qwen3 only.
    let head = if hp.pooling == Some(Pooling::Rank) {
        Some(ClassifierHead::load(
            &ld.root(),
            hp.n_embd,
            hp.arch == "qwen3",
        )?)
    } else {
        None
    };
    Ok(Box::new(Decoder {
        head,
        output_norm: rms(&ld.root(), OUTPUT_NORM, &hp)?,
        token_embd,
        output,
        layers,
        hp,
    }))
}

pub fn load_dense(ld: &Loader<'_>, spec: &DenseSpec) -> Result<Box<dyn Model>, ModelError> {
    let mut hp = HParams::from_gguf(ld.file, spec.arch, spec.rope)?;
    if ld.has("rope_freqs.weight") {
        hp.rope.freq_factors = Some(ld.vector("rope_freqs.weight", hp.rope.n_dims / 2)?);
    }
    let e = hp.n_embd;
    let mut layers = Vec::with_capacity(hp.n_layer);
    for i in 0..hp.n_layer {
        let t = ld.layer(i);
        let gqa = if spec.qkv_bias {
            Gqa::load_biased(&t, &hp)?
        } else {
            Gqa::load(&t, &hp)?
        };
        let qk_norm = if spec.qk_norm {
            Some(QkNorm::load(&t, hp.head_dim, hp.rms_eps)?)
        } else {
            None
        };
        layers.push(DecoderLayer {
            attn_norm: rms(&t, ATTN_NORM, &hp)?,
            attn: AttnBlock::Gqa(Gqa { qk_norm, ..gqa }),
            ffn_norm: rms(&t, FFN_NORM, &hp)?,
            ffn: if spec.moe {
                FfnBlock::Moe(Box::new(softmax_moe(ld, &t, spec.arch, e)?))
            } else {
                FfnBlock::Dense(SwiGluFfn::load(&t, e, hp.dense_ff()?)?)
            },
        });
    }
    decoder(ld, hp, layers)
}
