//! The loader shared by dense decoder architectures: hyper-parameters from `{arch}.*` keys and
//! llama.cpp's tensor names (`token_embd`, `blk.N.attn_q`, ..., `output_norm`, `output`),
//! with the per-family differences stated as options.

use owl_kernels::rope::RopeOrder;

use crate::blocks::ffn::SwiGluFfn;
use crate::blocks::gqa::{Gqa, QkNorm};
use crate::blocks::moe::MoeFfn;
use crate::decoder::{AttnBlock, Decoder, DecoderLayer, FfnBlock};
use crate::hparams::{positive_dim, HParams};
use crate::loader::Loader;
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
    let get = |k: &str| positive_dim(ld.file, &format!("{arch}.{k}"));
    let (n_expert, n_used, n_ff) = (
        get("expert_count")?,
        get("expert_used_count")?,
        get("expert_feed_forward_length")?,
    );
    if n_used > n_expert {
        return Err(ModelError::BadKey {
            key: format!("{arch}.expert_used_count"),
            why: format!("{n_used} experts used of {n_expert}"),
        });
    }
    Ok((n_expert, n_used, n_ff))
}

/// Layer `i`'s `n` SwiGLU experts of width `ffe` from its 3-D `ffn_{gate,up,down}_exps`
/// tensors.
pub(super) fn swiglu_experts(
    ld: &Loader<'_>,
    i: usize,
    n_embd: usize,
    ffe: usize,
    n: usize,
) -> Result<Vec<SwiGluFfn>, ModelError> {
    let t = |s: &str| format!("blk.{i}.{s}.weight");
    let gate = ld.experts(&t("ffn_gate_exps"), n_embd, ffe, n)?;
    let up = ld.experts(&t("ffn_up_exps"), n_embd, ffe, n)?;
    let down = ld.experts(&t("ffn_down_exps"), ffe, n_embd, n)?;
    Ok(gate
        .into_iter()
        .zip(up)
        .zip(down)
        .map(|((gate, up), down)| SwiGluFfn { gate, up, down })
        .collect())
}

/// Layer `i`'s grouped-query attention with the Q/K/V biases the file has (llama.cpp's
/// `create_tensor_qkv` treats them as optional): no Q/K norm, output bias, sinks or window,
/// and the model's RoPE; architectures set those fields themselves.
pub(super) fn gqa_optional_biases(
    ld: &Loader<'_>,
    hp: &HParams,
    i: usize,
) -> Result<Gqa, ModelError> {
    let t = |s: &str| format!("blk.{i}.{s}.weight");
    let bias = |s: &str, len: usize| ld.optional_vector(&format!("blk.{i}.{s}.bias"), len);
    let (e, q_dim, kv_dim) = (hp.n_embd, hp.q_dim(), hp.kv_dim());
    Ok(Gqa {
        wq: ld.matrix(&t("attn_q"), e, q_dim)?,
        wk: ld.matrix(&t("attn_k"), e, kv_dim)?,
        wv: ld.matrix(&t("attn_v"), e, kv_dim)?,
        wo: ld.matrix(&t("attn_output"), q_dim, e)?,
        bq: bias("attn_q", q_dim)?,
        bk: bias("attn_k", kv_dim)?,
        bv: bias("attn_v", kv_dim)?,
        qk_norm: None,
        bo: None,
        sinks: None,
        window: None,
        q_scale: None,
        n_head: hp.n_head,
        n_head_kv: hp.n_head_kv,
        head_dim: hp.head_dim,
        rope: hp.rope.clone(),
    })
}

pub fn load_dense(ld: &Loader<'_>, spec: &DenseSpec) -> Result<Box<dyn Model>, ModelError> {
    let mut hp = HParams::from_gguf(ld.file, spec.arch, spec.rope)?;
    if ld.has("rope_freqs.weight") {
        hp.rope.freq_factors = Some(ld.vector("rope_freqs.weight", hp.rope.n_dims / 2)?);
    }
    let e = hp.n_embd;
    let (token_embd, output) = ld.embeddings(e, hp.n_vocab)?;
    let norm = |name: &str| ld.rms_norm(name, e, hp.rms_eps);
    let mut layers = Vec::with_capacity(hp.n_layer);
    for i in 0..hp.n_layer {
        let t = |s: &str| format!("blk.{i}.{s}.weight");
        let bias = |s: &str, len: usize| -> Result<Option<Vec<f32>>, ModelError> {
            if spec.qkv_bias {
                Ok(Some(ld.vector(&format!("blk.{i}.{s}.bias"), len)?))
            } else {
                Ok(None)
            }
        };
        layers.push(DecoderLayer {
            attn_norm: norm(&t("attn_norm"))?,
            attn: AttnBlock::Gqa(Gqa {
                wq: ld.matrix(&t("attn_q"), e, hp.q_dim())?,
                wk: ld.matrix(&t("attn_k"), e, hp.kv_dim())?,
                wv: ld.matrix(&t("attn_v"), e, hp.kv_dim())?,
                wo: ld.matrix(&t("attn_output"), hp.q_dim(), e)?,
                bq: bias("attn_q", hp.q_dim())?,
                bk: bias("attn_k", hp.kv_dim())?,
                bv: bias("attn_v", hp.kv_dim())?,
                qk_norm: if spec.qk_norm {
                    Some(QkNorm {
                        q: ld.vector(&t("attn_q_norm"), hp.head_dim)?,
                        k: ld.vector(&t("attn_k_norm"), hp.head_dim)?,
                        eps: hp.rms_eps,
                    })
                } else {
                    None
                },
                bo: None,
                sinks: None,
                window: None,
                q_scale: None,
                n_head: hp.n_head,
                n_head_kv: hp.n_head_kv,
                head_dim: hp.head_dim,
                rope: hp.rope.clone(),
            }),
            ffn_norm: norm(&t("ffn_norm"))?,
            ffn: if spec.moe {
                let (n_expert, n_used, ffe) = moe_dims(ld, spec.arch)?;
                FfnBlock::Moe(Box::new(MoeFfn::softmax(
                    ld.matrix(&t("ffn_gate_inp"), e, n_expert)?,
                    swiglu_experts(ld, i, e, ffe, n_expert)?,
                    n_used,
                )))
            } else {
                let ff = hp.dense_ff()?;
                FfnBlock::Dense(SwiGluFfn {
                    gate: ld.matrix(&t("ffn_gate"), e, ff)?,
                    up: ld.matrix(&t("ffn_up"), e, ff)?,
                    down: ld.matrix(&t("ffn_down"), ff, e)?,
                })
            },
        });
    }
    let output_norm = norm("output_norm.weight")?;
    Ok(Box::new(Decoder {
        hp,
        token_embd,
        layers,
        output_norm,
        output,
    }))
}
