//! Decoder-only families with the Llama layout (`model.layers.N.self_attn.q_proj`, …): Llama,
//! Mistral, Qwen 2, Qwen 3 and Qwen 3 MoE. Their keys and tensor names follow
//! `convert_hf_to_gguf.py`'s `LlamaModel`, `Qwen2Model`, `Qwen3Model` and `Qwen3MoeModel`.

use std::path::Path;

use owl_gguf::{GgmlType, GgufAssembler, Value};
use serde_json::Value as Json;

use crate::archs::{Mapped, Transform};
use crate::config::Config;
use crate::HfError;

/// Keys every decoder family writes under `{arch}.`.
pub(crate) fn common_keys(arch: &str, c: &Config, asm: &mut GgufAssembler) -> Result<(), HfError> {
    let k = |s: &str| format!("{arch}.{s}");
    let u = |v: usize| Value::U32(v as u32);
    let n_head = c.dim("num_attention_heads")?;
    asm.set(&k("block_count"), u(c.dim("num_hidden_layers")?));
    asm.set(&k("embedding_length"), u(c.dim("hidden_size")?));
    asm.set(&k("feed_forward_length"), u(c.dim("intermediate_size")?));
    asm.set(&k("attention.head_count"), u(n_head));
    let n_kv = c.opt_dim("num_key_value_heads")?.unwrap_or(n_head);
    asm.set(&k("attention.head_count_kv"), u(n_kv));
    if let Some(n) = c.opt_dim("max_position_embeddings")? {
        asm.set(&k("context_length"), u(n));
    }
    let eps = c
        .opt_f64("rms_norm_eps")?
        .ok_or_else(|| HfError::BadConfig {
            key: "rms_norm_eps".into(),
            why: "is missing".into(),
        })?;
    asm.set(
        &k("attention.layer_norm_rms_epsilon"),
        Value::F32(eps as f32),
    );
    asm.set(
        &k("rope.freq_base"),
        Value::F32(c.f64_or("rope_theta", 10000.0)? as f32),
    );
    rope_scaling(arch, c, asm)
}

/// `head_dim` from the config, else `hidden_size / num_attention_heads`.
pub(crate) fn head_dim(c: &Config) -> Result<usize, HfError> {
    match c.opt_dim("head_dim")? {
        Some(d) => Ok(d),
        None => Ok(c.dim("hidden_size")? / c.dim("num_attention_heads")?),
    }
}

/// `rope_scaling`: linear and YaRN become keys, Llama 3's becomes `rope_freqs.weight`.
pub(crate) fn rope_scaling(arch: &str, c: &Config, asm: &mut GgufAssembler) -> Result<(), HfError> {
    let Some(rs) = c.json.get("rope_scaling").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let kind = rs
        .get("rope_type")
        .or_else(|| rs.get("type"))
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let num = |key: &str, default: f64| rs.get(key).and_then(Json::as_f64).unwrap_or(default);
    let k = |s: &str| format!("{arch}.{s}");
    match kind.as_str() {
        "default" | "" => {}
        "linear" => {
            asm.set(&k("rope.scaling.type"), Value::String("linear".into()));
            asm.set(
                &k("rope.scaling.factor"),
                Value::F32(num("factor", 1.0) as f32),
            );
        }
        "yarn" => {
            asm.set(&k("rope.scaling.type"), Value::String("yarn".into()));
            asm.set(
                &k("rope.scaling.factor"),
                Value::F32(num("factor", 1.0) as f32),
            );
            if let Some(n) = rs
                .get("original_max_position_embeddings")
                .and_then(Json::as_u64)
            {
                asm.set(
                    &k("rope.scaling.original_context_length"),
                    Value::U32(n as u32),
                );
            }
            // The optional YaRN settings, as the converter writes them.
            let extra = [
                ("extrapolation_factor", "yarn_ext_factor"),
                ("attention_factor", "yarn_attn_factor"),
                ("attn_factor", "yarn_attn_factor"),
                ("beta_fast", "yarn_beta_fast"),
                ("beta_slow", "yarn_beta_slow"),
            ];
            for (from, to) in extra {
                if to == "yarn_attn_factor" && asm.has(&k("rope.scaling.yarn_attn_factor")) {
                    continue;
                }
                if let Some(x) = rs.get(from).and_then(Json::as_f64) {
                    asm.set(&k(&format!("rope.scaling.{to}")), Value::F32(x as f32));
                }
            }
        }
        "llama3" => {
            let factors = llama3_factors(
                c.f64_or("rope_theta", 10000.0)? as f32,
                head_dim(c)?,
                num("factor", 8.0) as f32,
                num("low_freq_factor", 1.0) as f32,
                num("high_freq_factor", 4.0) as f32,
                num("original_max_position_embeddings", 8192.0) as f32,
            );
            let n = factors.len() as u64;
            let bytes = factors.iter().flat_map(|f| f.to_le_bytes()).collect();
            asm.add_owned("rope_freqs.weight", vec![n], GgmlType::F32, bytes)?;
        }
        other => {
            return Err(HfError::BadConfig {
                key: "rope_scaling".into(),
                why: format!("type `{other}` is not supported (linear, yarn and llama3 are)"),
            })
        }
    }
    Ok(())
}

/// Llama 3.1's per-frequency RoPE divisors, computed as the converter does (in f32).
fn llama3_factors(base: f32, dim: usize, factor: f32, low: f32, high: f32, old: f32) -> Vec<f32> {
    let low_wavelen = old / low;
    let high_wavelen = old / high;
    (0..dim)
        .step_by(2)
        .map(|i| {
            let freq = 1.0 / base.powf(i as f32 / dim as f32);
            let wavelen = 2.0 * std::f32::consts::PI / freq;
            if wavelen < high_wavelen {
                1.0
            } else if wavelen > low_wavelen {
                factor
            } else {
                let smooth = (old / wavelen - low) / (high - low);
                1.0 / ((1.0 - smooth) / factor + smooth)
            }
        })
        .collect()
}

pub fn llama_keys(c: &Config, _dir: &Path, asm: &mut GgufAssembler) -> Result<(), HfError> {
    common_keys("llama", c, asm)?;
    if let Some(v) = c.opt_dim("vocab_size")? {
        asm.set("llama.vocab_size", Value::U32(v as u32));
    }
    asm.set(
        "llama.rope.dimension_count",
        Value::U32(head_dim(c)? as u32),
    );
    if c.opt_dim("head_dim")?.is_some() {
        let d = Value::U32(head_dim(c)? as u32);
        asm.set("llama.attention.key_length", d.clone());
        asm.set("llama.attention.value_length", d);
    }
    Ok(())
}

pub fn qwen2_keys(c: &Config, _dir: &Path, asm: &mut GgufAssembler) -> Result<(), HfError> {
    common_keys("qwen2", c, asm)
}

pub fn qwen3_keys(c: &Config, _dir: &Path, asm: &mut GgufAssembler) -> Result<(), HfError> {
    common_keys("qwen3", c, asm)?;
    let d = Value::U32(head_dim(c)? as u32);
    asm.set("qwen3.attention.key_length", d.clone());
    asm.set("qwen3.attention.value_length", d);
    Ok(())
}

/// Qwen 3 MoE: Qwen 3's keys and the experts' (`Qwen2MoeModel.set_gguf_parameters` and the
/// shared `expert_count`/`expert_used_count`). The router always renormalises its top-k
/// weights in llama.cpp's `qwen3moe` (`norm_topk_prob` is true in every release), so the
/// converter writes no key for it.
pub fn qwen3moe_keys(c: &Config, _dir: &Path, asm: &mut GgufAssembler) -> Result<(), HfError> {
    common_keys("qwen3moe", c, asm)?;
    let u = |v: usize| Value::U32(v as u32);
    let d = u(head_dim(c)?);
    asm.set("qwen3moe.attention.key_length", d.clone());
    asm.set("qwen3moe.attention.value_length", d);
    let n_expert = c
        .opt_dim("num_experts")?
        .or(c.opt_dim("num_local_experts")?)
        .ok_or_else(|| HfError::BadConfig {
            key: "num_experts".into(),
            why: "is missing".into(),
        })?;
    asm.set("qwen3moe.expert_count", u(n_expert));
    asm.set(
        "qwen3moe.expert_used_count",
        u(c.dim("num_experts_per_tok")?),
    );
    if let Some(n) = c.opt_dim("moe_intermediate_size")? {
        asm.set("qwen3moe.expert_feed_forward_length", u(n));
    }
    if c.json.get("norm_topk_prob").and_then(Json::as_bool) == Some(false) {
        return Err(HfError::BadConfig {
            key: "norm_topk_prob".into(),
            why: "is false; llama.cpp's qwen3moe always renormalises the chosen experts' weights"
                .into(),
        });
    }
    Ok(())
}

/// Mixture-of-Experts layers (`Qwen2MoeModel.modify_tensors`): per-expert
/// `mlp.experts.E.{gate,up,down}_proj` become one stacked `ffn_*_exps` per layer, the router
/// `mlp.gate` is `ffn_gate_inp`; a checkpoint that already stacks `mlp.experts.down_proj` is
/// read in place and a fused `mlp.experts.gate_up_proj` (transformers 5) is split. Everything
/// else has the shared names.
pub fn moe_tensor(name: &str, c: &Config) -> Result<Mapped, HfError> {
    let Some(rest) = name.strip_prefix("model.layers.") else {
        return plain_tensor(name, c);
    };
    let Some((layer, part)) = rest.split_once('.') else {
        return plain_tensor(name, c);
    };
    let Ok(i) = layer.parse::<usize>() else {
        return plain_tensor(name, c);
    };
    if part == "mlp.gate.weight" {
        return Ok(Some((
            format!("blk.{i}.ffn_gate_inp.weight"),
            Transform::AsIs,
        )));
    }
    if part == "mlp.experts.down_proj" || part == "mlp.experts.down_proj.weight" {
        return Ok(Some((
            format!("blk.{i}.ffn_down_exps.weight"),
            Transform::AsIs,
        )));
    }
    if part == "mlp.experts.gate_up_proj" || part == "mlp.experts.gate_up_proj.weight" {
        return Ok(Some((
            format!("blk.{i}.ffn_gate_up_exps.weight"),
            Transform::SplitGateUp,
        )));
    }
    let Some(e) = part.strip_prefix("mlp.experts.") else {
        return plain_tensor(name, c);
    };
    let (index, which) = match e.split_once('.') {
        Some((x, w)) => match x.parse::<usize>() {
            Ok(x) => (x, w),
            Err(_) => return plain_tensor(name, c),
        },
        None => return plain_tensor(name, c),
    };
    let g = match which {
        "gate_proj.weight" => "ffn_gate_exps",
        "up_proj.weight" => "ffn_up_exps",
        "down_proj.weight" => "ffn_down_exps",
        _ => {
            return Err(HfError::Unsupported(format!(
                "tensor `{name}` has no GGUF counterpart in this architecture"
            )))
        }
    };
    let count = c
        .opt_dim("num_experts")?
        .or(c.opt_dim("num_local_experts")?)
        .or(c.opt_dim("n_routed_experts")?)
        .ok_or_else(|| HfError::BadConfig {
            key: "num_experts".into(),
            why: "is missing".into(),
        })?;
    if index >= count {
        return Err(HfError::BadTensor {
            name: name.into(),
            why: format!("expert {index} is out of range (config.json's num_experts is {count})"),
        });
    }
    Ok(Some((
        format!("blk.{i}.{g}.weight"),
        Transform::Expert { index, count },
    )))
}

/// Llama: the shared names, with Q and K rows permuted into llama.cpp's RoPE order.
pub fn llama_tensor(name: &str, c: &Config) -> Result<Mapped, HfError> {
    let mapped = plain_tensor(name, c)?;
    let Some((gguf, _)) = &mapped else {
        return Ok(None);
    };
    let n_head = c.dim("num_attention_heads")?;
    let n_kv = c.opt_dim("num_key_value_heads")?.unwrap_or(n_head);
    let heads = if gguf.contains(".attn_q.") {
        Some(n_head)
    } else if gguf.contains(".attn_k.") {
        Some(n_kv)
    } else {
        None
    };
    Ok(match heads {
        Some(n_head) => Some((gguf.clone(), Transform::PermuteRows { n_head })),
        None => mapped,
    })
}

/// The shared Llama-layout names.
pub fn plain_tensor(name: &str, _c: &Config) -> Result<Mapped, HfError> {
    let unknown = || {
        HfError::Unsupported(format!(
            "tensor `{name}` has no GGUF counterpart in this architecture"
        ))
    };
    let (stem, suffix) = match name.rsplit_once('.') {
        Some((s, x @ ("weight" | "bias"))) => (s, x),
        _ if name.ends_with("rotary_emb.inv_freq") => return Ok(None),
        _ => return Err(unknown()),
    };
    let to = |g: &str| Ok(Some((format!("{g}.{suffix}"), Transform::AsIs)));
    match stem {
        "model.embed_tokens" => return to("token_embd"),
        "model.norm" => return to("output_norm"),
        "lm_head" => return to("output"),
        _ => {}
    }
    let Some(rest) = stem.strip_prefix("model.layers.") else {
        return Err(unknown());
    };
    let Some((layer, part)) = rest.split_once('.') else {
        return Err(unknown());
    };
    let Ok(i) = layer.parse::<usize>() else {
        return Err(unknown());
    };
    let g = match part {
        "input_layernorm" => "attn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "post_attention_layernorm" => "ffn_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "self_attn.rotary_emb" => return Ok(None),
        _ => return Err(unknown()),
    };
    to(&format!("blk.{i}.{g}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn llama3_factors_span_one_to_factor() {
        // Llama 3.1 8B: theta 500000, 128-dim heads, factor 8.
        let f = llama3_factors(500000.0, 128, 8.0, 1.0, 4.0, 8192.0);
        assert_eq!(f.len(), 64);
        assert_eq!(f[0], 1.0);
        assert_eq!(f[63], 8.0);
        assert!(f.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn names_map_like_the_converter() {
        let c = Config {
            json: serde_json::json!({"num_attention_heads": 4, "num_key_value_heads": 2}),
        };
        let m = |n: &str| llama_tensor(n, &c).unwrap();
        assert_eq!(
            m("model.layers.3.self_attn.q_proj.weight"),
            Some((
                "blk.3.attn_q.weight".into(),
                Transform::PermuteRows { n_head: 4 }
            ))
        );
        assert_eq!(
            m("model.layers.0.self_attn.k_proj.weight"),
            Some((
                "blk.0.attn_k.weight".into(),
                Transform::PermuteRows { n_head: 2 }
            ))
        );
        assert_eq!(
            m("model.layers.0.mlp.down_proj.weight"),
            Some(("blk.0.ffn_down.weight".into(), Transform::AsIs))
        );
        assert_eq!(m("model.layers.0.self_attn.rotary_emb.inv_freq"), None);
        assert!(llama_tensor("model.layers.x.mlp.up_proj.weight", &c).is_err());
        assert!(llama_tensor("vision_tower.patch.weight", &c).is_err());
    }
}
