//! Gemma 3 (`Gemma3ForCausalLM`, and the language model of `Gemma3ForConditionalGeneration`):
//! keys and names as `convert_hf_to_gguf.py`'s `Gemma3Model` writes them.
//!
//! What differs from the Llama layout: every RMSNorm weight `w` is stored for `(1 + w)`, so the
//! converter adds one (and so does owl, into owned F32 copies); there are four norms per layer
//! (`post_attention_norm`, `ffn_norm` before the MLP, `post_ffw_norm` after it); local layers
//! attend over a sliding window with their own RoPE base; the vocabulary is SentencePiece's
//! (`tokenizer.model`, see `spm`).

use std::path::Path;

use owl_gguf::{GgufAssembler, Value};
use serde_json::Value as Json;

use crate::archs::{ConfigDefault, Mapped, Transform};
use crate::config::Config;
use crate::decoder::{common_keys, head_dim};
use crate::HfError;

/// `Gemma3TextConfig`'s defaults for the settings the converter reads (multimodal checkpoints'
/// `text_config` leaves most of them out).
pub const DEFAULTS: &[(&str, ConfigDefault)] = &[
    ("vocab_size", ConfigDefault::Int(262_208)),
    ("hidden_size", ConfigDefault::Int(2304)),
    ("intermediate_size", ConfigDefault::Int(9216)),
    ("num_hidden_layers", ConfigDefault::Int(26)),
    ("num_attention_heads", ConfigDefault::Int(8)),
    ("num_key_value_heads", ConfigDefault::Int(4)),
    ("head_dim", ConfigDefault::Int(256)),
    ("max_position_embeddings", ConfigDefault::Int(131_072)),
    ("rms_norm_eps", ConfigDefault::Float(1e-6)),
    ("rope_theta", ConfigDefault::Float(1_000_000.0)),
    ("rope_local_base_freq", ConfigDefault::Float(10_000.0)),
    ("sliding_window", ConfigDefault::Int(4096)),
];

/// llama.cpp's layer pattern for Gemma 3: five local layers, then a global one.
const PERIOD: usize = 6;

pub fn keys(c: &Config, _dir: &Path, asm: &mut GgufAssembler) -> Result<(), HfError> {
    common_keys("gemma3", c, asm)?;
    let u = |v: usize| Value::U32(v as u32);
    let d = u(head_dim(c)?);
    asm.set("gemma3.attention.key_length", d.clone());
    asm.set("gemma3.attention.value_length", d);
    if c.opt_f64("attn_logit_softcapping")?.is_some() {
        return Err(HfError::BadConfig {
            key: "attn_logit_softcapping".into(),
            why: "is set; Gemma 3 has none (Gemma 2 does, and owl does not read Gemma 2)".into(),
        });
    }
    if let Some(cap) = c.opt_f64("final_logit_softcapping")?.filter(|&x| x != 0.0) {
        asm.set("gemma3.final_logit_softcapping", Value::F32(cap as f32));
    }
    // transformers 5 writes `rope_parameters` per attention kind instead.
    let params = |kind: &str| {
        c.json
            .get("rope_parameters")
            .and_then(|p| p.get(kind))
            .filter(|p| p.is_object())
    };
    let theta = |p: Option<&Json>| p.and_then(|p| p.get("rope_theta")).and_then(Json::as_f64);
    if let Some(t) = theta(params("full_attention")) {
        asm.set("gemma3.rope.freq_base", Value::F32(t as f32));
    }
    if let Some(full) = params("full_attention") {
        let kind = full.get("rope_type").and_then(Json::as_str).unwrap_or("");
        if let (Some(f), "linear") = (full.get("factor").and_then(Json::as_f64), kind) {
            asm.set("gemma3.rope.scaling.type", Value::String("linear".into()));
            asm.set("gemma3.rope.scaling.factor", Value::F32(f as f32));
        }
    }
    let local = theta(params("sliding_attention")).or(c.opt_f64("rope_local_base_freq")?);
    if let Some(t) = local {
        asm.set("gemma3.rope.freq_base_swa", Value::F32(t as f32));
    }
    let n_layer = c.dim("num_hidden_layers")?;
    let sliding = sliding_layers(c, n_layer)?;
    if sliding.iter().any(|&s| s) {
        asm.set(
            "gemma3.attention.sliding_window",
            u(c.dim("sliding_window")?),
        );
        // The converter writes no pattern: llama.cpp assumes five local layers in six. A
        // checkpoint that says otherwise gets the pattern spelled out (owl reads it).
        let default: Vec<bool> = (0..n_layer).map(|i| i % PERIOD < PERIOD - 1).collect();
        if sliding != default {
            asm.set(
                "gemma3.attention.sliding_window_pattern",
                Value::Array(sliding.into_iter().map(Value::Bool).collect()),
            );
        }
    }
    Ok(())
}

/// Which layers attend over the sliding window: `layer_types` when given, else every layer but
/// each `sliding_window_pattern`-th (default 6; 1 means none slide).
fn sliding_layers(c: &Config, n_layer: usize) -> Result<Vec<bool>, HfError> {
    if let Some(types) = c.json.get("layer_types").filter(|v| !v.is_null()) {
        let bad = |why: String| HfError::BadConfig {
            key: "layer_types".into(),
            why,
        };
        let list = types
            .as_array()
            .ok_or_else(|| bad("is not a list".into()))?;
        if list.len() != n_layer {
            return Err(bad(format!(
                "has {} entries for {n_layer} layers",
                list.len()
            )));
        }
        return list
            .iter()
            .map(|t| match t.as_str() {
                Some("sliding_attention") => Ok(true),
                Some("full_attention") => Ok(false),
                _ => Err(bad(format!(
                    "holds {t}, not \"sliding_attention\" or \"full_attention\""
                ))),
            })
            .collect();
    }
    let period = c.opt_dim("sliding_window_pattern")?.unwrap_or(PERIOD);
    Ok((0..n_layer).map(|i| (i + 1) % period != 0).collect())
}

/// Checkpoint names, with a multimodal checkpoint's `language_model.` prefix taken off (as the
/// converter does) and its vision tower and projector left out.
pub fn tensor(name: &str, _c: &Config) -> Result<Mapped, HfError> {
    if name.starts_with("vision_tower.")
        || name.starts_with("multi_modal_projector.")
        || name.starts_with("model.vision_tower.")
        || name.starts_with("model.multi_modal_projector.")
    {
        return Ok(None);
    }
    let full = name.replace("language_model.", "");
    let unknown = || {
        HfError::Unsupported(format!(
            "tensor `{name}` has no GGUF counterpart in Gemma 3"
        ))
    };
    let (stem, suffix) = match full.rsplit_once('.') {
        Some((s, x @ ("weight" | "bias"))) => (s, x),
        _ => return Err(unknown()),
    };
    let how = if full.ends_with("norm.weight") {
        Transform::AddOne
    } else {
        Transform::AsIs
    };
    let to = |g: &str| Ok(Some((format!("{g}.{suffix}"), how)));
    match stem {
        "model.embed_tokens" => return to("token_embd"),
        "model.norm" => return to("output_norm"),
        "lm_head" => return to("output"),
        _ => {}
    }
    let Some((layer, part)) = stem
        .strip_prefix("model.layers.")
        .and_then(|r| r.split_once('.'))
    else {
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
        "post_attention_layernorm" => "post_attention_norm",
        "pre_feedforward_layernorm" => "ffn_norm",
        "post_feedforward_layernorm" => "post_ffw_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return Err(unknown()),
    };
    to(&format!("blk.{i}.{g}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cfg(json: Json) -> Config {
        Config { json }
    }

    #[test]
    fn names_map_like_the_converter() {
        let c = cfg(serde_json::json!({}));
        let m = |n: &str| tensor(n, &c).unwrap();
        assert_eq!(
            m("model.layers.2.pre_feedforward_layernorm.weight"),
            Some(("blk.2.ffn_norm.weight".into(), Transform::AddOne))
        );
        assert_eq!(
            m("language_model.model.layers.0.post_attention_layernorm.weight"),
            Some(("blk.0.post_attention_norm.weight".into(), Transform::AddOne))
        );
        assert_eq!(
            m("model.language_model.layers.1.self_attn.k_norm.weight"),
            Some(("blk.1.attn_k_norm.weight".into(), Transform::AddOne))
        );
        assert_eq!(
            m("model.layers.0.mlp.down_proj.weight"),
            Some(("blk.0.ffn_down.weight".into(), Transform::AsIs))
        );
        assert_eq!(m("vision_tower.vision_model.embeddings.weight"), None);
        assert!(tensor("model.layers.0.mlp.experts.weight", &c).is_err());
    }

    #[test]
    fn layer_patterns() {
        let c = cfg(serde_json::json!({"sliding_window_pattern": 6}));
        let s = sliding_layers(&c, 7).unwrap();
        assert_eq!(s, vec![true, true, true, true, true, false, true]);
        let c = cfg(serde_json::json!({
            "layer_types": ["sliding_attention", "full_attention"]
        }));
        assert_eq!(sliding_layers(&c, 2).unwrap(), vec![true, false]);
        assert!(sliding_layers(&c, 3).is_err());
    }
}
