//! `deepseek2`: DeepSeek-V2/V2.5/V3/R1, Kimi K2 (and other models llama.cpp files under it).
//!
//! Multi-head latent attention (`blocks::mla`, latent-only KV cache) and, after
//! `leading_dense_block_count` dense layers, a mixture of experts with shared experts, softmax or
//! sigmoid scores, an optional selection bias (`exp_probs_b`), expert groups, normalised and
//! scaled weights. The tensor names and keys are those of llama.cpp's converter, which splits
//! `kv_b_proj` into `attn_k_b` (transposed) and `attn_v_b` for the absorbed form.

use owl_kernels::rope::{RopeOrder, YarnParams};

use super::dense::{decoder, rms};
use super::routed::RoutedSpec;
use crate::blocks::mla::{Mla, MlaQuery};
use crate::blocks::moe::Gating;
use crate::decoder::{AttnBlock, DecoderLayer};
use crate::hparams::{rope_from_gguf, HParams};
use crate::keys::Keys;
use crate::loader::Loader;
use crate::tensors::part::{ATTN_NORM, ATTN_OUT, ATTN_Q, FFN_NORM};
use crate::{Model, ModelError};

const ARCH: &str = "deepseek2";

fn bad(keys: &Keys<'_>, k: &str, why: String) -> ModelError {
    ModelError::BadKey {
        key: keys.name(k),
        why,
    }
}

pub fn load(ld: &Loader<'_>) -> Result<Box<dyn Model>, ModelError> {
    let hp = HParams::from_gguf(ld.file, ARCH, RopeOrder::Normal)?;
    let keys = Keys::new(ld.file, ARCH);
    let e = hp.n_embd;
    let n_head = hp.n_head;
    let n_rot = hp.rope.n_dims;
    let kv_lora = keys.dim_req("attention.kv_lora_rank")?;
    if hp.n_head_kv != 1 || hp.head_dim != kv_lora + n_rot {
        return Err(bad(
            &keys,
            "attention.key_length",
            format!(
                "expected the absorbed MLA layout (1 KV head of kv_lora_rank + rope dims = {}), \
                 found {} KV heads of {}",
                kv_lora + n_rot,
                hp.n_head_kv,
                hp.head_dim
            ),
        ));
    }
    let k_head = keys.dim_req("attention.key_length_mla")?;
    let v_head = keys.dim_req("attention.value_length_mla")?;
    if k_head <= n_rot {
        return Err(bad(
            &keys,
            "attention.key_length_mla",
            format!("heads of {k_head} with {n_rot} RoPE dims"),
        ));
    }
    let nope = k_head - n_rot;
    let routed = RoutedSpec::read(ld, ARCH, Gating::Softmax)?;
    // RoPE of the n_rot dims, with DeepSeek's YaRN log multiplier: the GGUF holds
    // 0.1 * mscale_all_dim, llama.cpp divides the 0.1 back out, and for DeepSeek-V2 (whose
    // mscale_all_dim is not 1) uses it as mscale too.
    let log_mul = keys
        .f32("rope.scaling.yarn_log_multiplier")?
        .map_or(0.0, |v| v / 0.1);
    let yarn = YarnParams {
        log_mul,
        mscale: if log_mul != 0.0 && log_mul != 1.0 {
            log_mul
        } else {
            1.0
        },
        ..YarnParams::default()
    };
    let rope = rope_from_gguf(
        ld.file,
        ARCH,
        n_rot,
        hp.rope.freq_base,
        RopeOrder::Normal,
        hp.n_ctx_train,
        yarn,
    )?;
    // The score scale carries YaRN's magnitude correction squared, computed as llama.cpp's
    // deepseek2 graph does: undo the attention factor's 1/(1 + 0.1 ln f), apply the log
    // multiplier's (plain f32 arithmetic, no fused multiply-adds, like libllama).
    let l = (1.0 / rope.freq_scale).ln();
    let attn_factor_org = rope.attn_factor * (1.0 + 0.1 * l);
    let mscale = attn_factor_org * (1.0 + 0.1 * log_mul * l);
    let kq_scale = 1.0 * mscale * mscale / (k_head as f32).sqrt();

    let mut layers = Vec::with_capacity(hp.n_layer);
    for i in 0..hp.n_layer {
        let t = ld.layer(i);
        let q = if t.has("attn_q_a") {
            let q_lora = keys.dim_req("attention.q_lora_rank")?;
            MlaQuery::LowRank {
                a: t.matrix("attn_q_a", e, q_lora)?,
                norm: t.vector("attn_q_a_norm", q_lora)?,
                b: t.matrix("attn_q_b", q_lora, n_head * k_head)?,
            }
        } else {
            MlaQuery::Direct(t.matrix(ATTN_Q, e, n_head * k_head)?)
        };
        let attn = Mla {
            q,
            wkv_a: t.matrix("attn_kv_a_mqa", e, kv_lora + n_rot)?,
            kv_norm: t.vector("attn_kv_a_norm", kv_lora)?,
            wk_b: t.experts("attn_k_b", nope, kv_lora, n_head)?,
            wv_b: t.experts("attn_v_b", kv_lora, v_head, n_head)?,
            wo: t.matrix(ATTN_OUT, n_head * v_head, e)?,
            n_head,
            nope,
            n_rot,
            kv_lora,
            v_head,
            eps: hp.rms_eps,
            rope: rope.clone(),
            kq_scale,
        };
        layers.push(DecoderLayer {
            attn_norm: rms(&t, ATTN_NORM, &hp)?,
            attn: AttnBlock::Mla(attn),
            ffn_norm: rms(&t, FFN_NORM, &hp)?,
            ffn: routed.ffn(ld, &hp, i)?,
        });
    }
    decoder(ld, hp, layers)
}
