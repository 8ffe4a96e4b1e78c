//! `llama`: Llama 2/3.x, Mistral 7B, SmolLM2, DeepSeek-R1-Distill-Llama.
//! Pre-norm decoder, GQA with normal-order RoPE (llama.cpp permutes Q/K at conversion), SwiGLU,
//! tied or separate output head, optional `rope_freqs` (Llama 3 scaling).

use owl_kernels::rope::RopeOrder;

use crate::blocks::ffn::SwiGluFfn;
use crate::blocks::gqa::Gqa;
use crate::blocks::norm::RmsNorm;
use crate::decoder::{Decoder, DecoderLayer};
use crate::hparams::HParams;
use crate::loader::Loader;
use crate::{Model, ModelError};

pub fn load(ld: &Loader<'_>) -> Result<Box<dyn Model>, ModelError> {
    let mut hp = HParams::from_gguf(ld.file, "llama", RopeOrder::Normal)?;
    if ld.has("rope_freqs.weight") {
        hp.rope.freq_factors = Some(ld.vector("rope_freqs.weight", hp.rope.n_dims / 2)?);
    }
    let (e, ff) = (hp.n_embd, hp.n_ff);
    let token_embd = ld.matrix("token_embd.weight", e, hp.n_vocab)?;
    let output = if ld.has("output.weight") {
        ld.matrix("output.weight", e, hp.n_vocab)?
    } else {
        token_embd.clone()
    };
    let norm = |name: &str| -> Result<RmsNorm, ModelError> {
        Ok(RmsNorm {
            weight: ld.vector(name, e)?,
            eps: hp.rms_eps,
        })
    };
    let mut layers = Vec::with_capacity(hp.n_layer);
    for i in 0..hp.n_layer {
        let t = |s: &str| format!("blk.{i}.{s}.weight");
        layers.push(DecoderLayer {
            attn_norm: norm(&t("attn_norm"))?,
            attn: Gqa {
                wq: ld.matrix(&t("attn_q"), e, hp.q_dim())?,
                wk: ld.matrix(&t("attn_k"), e, hp.kv_dim())?,
                wv: ld.matrix(&t("attn_v"), e, hp.kv_dim())?,
                wo: ld.matrix(&t("attn_output"), hp.q_dim(), e)?,
                bq: None,
                bk: None,
                bv: None,
                n_head: hp.n_head,
                n_head_kv: hp.n_head_kv,
                head_dim: hp.head_dim,
                rope: hp.rope.clone(),
            },
            ffn_norm: norm(&t("ffn_norm"))?,
            ffn: SwiGluFfn {
                gate: ld.matrix(&t("ffn_gate"), e, ff)?,
                up: ld.matrix(&t("ffn_up"), e, ff)?,
                down: ld.matrix(&t("ffn_down"), ff, e)?,
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
