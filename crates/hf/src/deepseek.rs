//! DeepSeek-V2/V3 (`DeepseekV2ForCausalLM`, `DeepseekV3ForCausalLM`): keys and names as
//! `convert_hf_to_gguf.py`'s `DeepseekV2Model` writes them.
//!
//! Multi-head latent attention is stored for llama.cpp's absorbed form: `kv_b_proj` is split
//! per head into `attn_k_b` (the K part, transposed) and `attn_v_b`, both owned copies. The
//! routed experts are stacked like Qwen 3 MoE's; the shared experts, the router and its
//! selection bias (`e_score_correction_bias` → `exp_probs_b.bias`) keep their own tensors.
//! The converter writes the attention as MQA (`head_count_kv` 1) with K of `kv_lora_rank +
//! qk_rope_head_dim` and V of `kv_lora_rank`, the per-head sizes in the `_mla` keys. Layers past
//! `num_hidden_layers` (the multi-token-prediction block) are left out, as there.

use std::path::Path;

use owl_gguf::{GgufAssembler, Value};
use serde_json::Value as Json;

use crate::archs::{Mapped, Transform};
use crate::config::Config;
use crate::decoder::{common_keys, moe_tensor};
use crate::HfError;

/// llama.cpp's `LLAMA_EXPERT_GATING_FUNC_TYPE_*`.
const GATING_SOFTMAX: u32 = 1;
const GATING_SIGMOID: u32 = 2;

pub fn keys(c: &Config, _dir: &Path, asm: &mut GgufAssembler) -> Result<(), HfError> {
    const A: &str = "deepseek2";
    let k = |s: &str| format!("{A}.{s}");
    let u = |v: usize| Value::U32(v as u32);
    common_keys(A, c, asm)?;
    // MLA is written as MQA.
    asm.set(&k("attention.head_count_kv"), u(1));
    let n_layer = c.dim("num_hidden_layers")?;
    let experts = c.opt_dim("n_routed_experts")?;
    let dense = match c.json.get("first_k_dense_replace").and_then(Json::as_u64) {
        Some(n) => n as usize,
        None if experts.is_none() => n_layer,
        None => 0,
    };
    asm.set(&k("leading_dense_block_count"), u(dense));
    asm.set(&k("vocab_size"), u(c.dim("vocab_size")?));
    if let Some(r) = c.opt_dim("q_lora_rank")? {
        asm.set(&k("attention.q_lora_rank"), u(r));
    }
    let kv_rank = c.opt_dim("kv_lora_rank")?.unwrap_or(512);
    let rope = c.dim("qk_rope_head_dim")?;
    let nope = c.dim("qk_nope_head_dim")?;
    let v = c.dim("v_head_dim")?;
    asm.set(&k("attention.kv_lora_rank"), u(kv_rank));
    asm.set(&k("attention.key_length"), u(kv_rank + rope));
    asm.set(&k("attention.value_length"), u(kv_rank));
    asm.set(&k("attention.key_length_mla"), u(nope + rope));
    asm.set(&k("attention.value_length_mla"), u(v));
    let ff_exp = match c.opt_dim("moe_intermediate_size")? {
        Some(n) => n,
        None => c.dim("intermediate_size")?,
    };
    asm.set(&k("expert_feed_forward_length"), u(ff_exp));
    if let Some(n) = experts {
        asm.set(&k("expert_count"), u(n));
    }
    if let Some(n) = c.opt_dim("num_experts_per_tok")? {
        asm.set(&k("expert_used_count"), u(n));
    }
    if let Some(n) = c.opt_dim("n_group")? {
        asm.set(&k("expert_group_count"), u(n));
    }
    if let Some(n) = c.opt_dim("topk_group")? {
        asm.set(&k("expert_group_used_count"), u(n));
    }
    if let Some(f) = c.str("scoring_func") {
        let g = match f {
            "sigmoid" => GATING_SIGMOID,
            "softmax" => GATING_SOFTMAX,
            other => {
                return Err(HfError::BadConfig {
                    key: "scoring_func".into(),
                    why: format!("is `{other}` (sigmoid and softmax are supported)"),
                })
            }
        };
        asm.set(&k("expert_gating_func"), Value::U32(g));
    }
    let shared = c
        .json
        .get("n_shared_experts")
        .and_then(Json::as_u64)
        .unwrap_or(0);
    asm.set(&k("expert_shared_count"), Value::U32(shared as u32));
    if let Some(s) = c.opt_f64("routed_scaling_factor")? {
        asm.set(&k("expert_weights_scale"), Value::F32(s as f32));
    }
    if c.json.get("norm_topk_prob").and_then(Json::as_bool) == Some(true) {
        asm.set(&k("expert_weights_norm"), Value::Bool(true));
    }
    asm.set(&k("rope.dimension_count"), u(rope));
    let mscale_all = c
        .json
        .get("rope_scaling")
        .and_then(|r| r.get("mscale_all_dim"))
        .and_then(Json::as_f64);
    if let Some(m) = mscale_all {
        // The converter's legacy 0.1 × mscale_all_dim (TAG_DEEPSEEK2_YARN_LOG_MUL_FIX).
        asm.set(
            &k("rope.scaling.yarn_log_multiplier"),
            Value::F32((0.1 * m) as f32),
        );
    }
    Ok(())
}

pub fn tensor(name: &str, c: &Config) -> Result<Mapped, HfError> {
    let n_layer = c.dim("num_hidden_layers")?;
    let tied = c.json.get("tie_word_embeddings").and_then(Json::as_bool) == Some(true);
    if tied && (name == "lm_head.weight" || name == "model.lm_head.weight") {
        return Ok(None);
    }
    let Some(rest) = name.strip_prefix("model.layers.") else {
        return moe_tensor(name, c);
    };
    let Some((layer, part)) = rest.split_once('.') else {
        return moe_tensor(name, c);
    };
    let Ok(i) = layer.parse::<usize>() else {
        return moe_tensor(name, c);
    };
    if i >= n_layer {
        return Ok(None);
    }
    let to = |g: &str, how| Ok(Some((format!("blk.{i}.{g}"), how)));
    match part {
        "self_attn.q_proj.weight" => to("attn_q.weight", Transform::AsIs),
        "self_attn.q_a_proj.weight" => to("attn_q_a.weight", Transform::AsIs),
        "self_attn.q_a_layernorm.weight" => to("attn_q_a_norm.weight", Transform::AsIs),
        "self_attn.q_b_proj.weight" => to("attn_q_b.weight", Transform::AsIs),
        "self_attn.kv_a_proj_with_mqa.weight" => to("attn_kv_a_mqa.weight", Transform::AsIs),
        "self_attn.kv_a_layernorm.weight" => to("attn_kv_a_norm.weight", Transform::AsIs),
        "self_attn.kv_b_proj.weight" => to(
            "attn_kv_b.weight",
            Transform::SplitKvB {
                n_head: c.dim("num_attention_heads")?,
                nope: c.dim("qk_nope_head_dim")?,
                v: c.dim("v_head_dim")?,
            },
        ),
        "mlp.gate.e_score_correction_bias" => to("exp_probs_b.bias", Transform::AsIs),
        "mlp.shared_experts.gate_proj.weight" => to("ffn_gate_shexp.weight", Transform::AsIs),
        "mlp.shared_experts.up_proj.weight" => to("ffn_up_shexp.weight", Transform::AsIs),
        "mlp.shared_experts.down_proj.weight" => to("ffn_down_shexp.weight", Transform::AsIs),
        _ => {
            // DeepSeek names its expert count `n_routed_experts`.
            moe_tensor(name, c)
        }
    }
}
