//! PEFT LoRA adapters (`adapter_config.json` + `adapter_model.safetensors`) opened as the
//! GGUF adapter llama.cpp's `convert_lora_to_gguf.py` would write.
//!
//! Fine-tunes are published in PEFT's layout far more often than as GGUF. As for model
//! directories, owl reads them in place instead of asking for a Python conversion: each
//! `base_model.model.<hf name>.lora_A.weight` / `.lora_B.weight` becomes
//! `<gguf name>.lora_a` / `.lora_b`, the GGUF name coming from the same per-architecture
//! table the base model's directory would use. Where that table permutes a weight's rows
//! (Llama's Q and K, for llama.cpp's RoPE order), the adapter's B rows are permuted the same
//! way: `B A x` then lands in the permuted rows exactly as `W x` does; A is never permuted.
//!
//! PEFT's scale `lora_alpha / r` is llama.cpp's `alpha / rank`, so `lora_alpha` becomes
//! `adapter.lora.alpha` (rsLoRA's `lora_alpha / sqrt(r)` is written as an alpha of
//! `lora_alpha · sqrt(r)`). DoRA, per-module alphas and Conv1D (`fan_in_fan_out`) layouts
//! change the arithmetic and are refused.

use std::path::Path;

use owl_gguf::{GgufAssembler, GgufFile, Value};
use serde_json::Value as Json;

use crate::archs::{Transform, ARCHS};
use crate::config::Config;
use crate::{read_json, weights, HfError};

/// Whether `path` is a PEFT adapter directory (has `adapter_config.json`).
pub fn is_peft_dir(path: &Path) -> bool {
    path.is_dir() && path.join("adapter_config.json").is_file()
}

/// Opens a LoRA adapter for the model `base`: a GGUF adapter file as it is, or a PEFT
/// directory as its GGUF view.
pub fn open_adapter(path: &Path, base: &GgufFile) -> Result<GgufFile, HfError> {
    if path.is_dir() {
        open_peft(path, base)
    } else {
        Ok(GgufFile::open(path)?)
    }
}

/// The GGUF view of the PEFT directory `dir`, for the model `base`.
pub fn open_peft(dir: &Path, base: &GgufFile) -> Result<GgufFile, HfError> {
    let cfg_path = dir.join("adapter_config.json");
    if !cfg_path.is_file() {
        return Err(HfError::MissingFile(cfg_path));
    }
    let cfg = read_json(&cfg_path)?;
    let bad = |key: &str, why: String| HfError::BadConfig {
        key: format!("adapter_config.json: {key}"),
        why,
    };
    if let Some(t) = cfg.get("peft_type").and_then(Json::as_str) {
        if t != "LORA" {
            return Err(bad(
                "peft_type",
                format!("is \"{t}\", owl reads LORA adapters"),
            ));
        }
    }
    let r = cfg
        .get("r")
        .and_then(Json::as_u64)
        .filter(|&r| r > 0)
        .ok_or_else(|| bad("r", "is missing or not a positive integer".into()))?;
    let alpha = cfg
        .get("lora_alpha")
        .and_then(Json::as_f64)
        .filter(|a| a.is_finite())
        .ok_or_else(|| bad("lora_alpha", "is missing or not a number".into()))?;
    let truthy = |key: &str| cfg.get(key).and_then(Json::as_bool).unwrap_or(false);
    for key in ["use_dora", "fan_in_fan_out"] {
        if truthy(key) {
            return Err(bad(key, "is true, which owl does not support".into()));
        }
    }
    if cfg
        .get("alpha_pattern")
        .and_then(Json::as_object)
        .is_some_and(|m| !m.is_empty())
    {
        return Err(bad(
            "alpha_pattern",
            "sets per-module alphas, which owl does not support".into(),
        ));
    }
    // rsLoRA scales by alpha / sqrt(r); llama.cpp's rule is alpha / rank.
    let alpha = if truthy("use_rslora") {
        alpha * (r as f64).sqrt()
    } else {
        alpha
    };

    let arch_name = base
        .get_str("general.architecture")
        .ok_or_else(|| HfError::Unsupported("the base model names no architecture".into()))?;
    let arch = ARCHS.iter().find(|a| a.gguf == arch_name).ok_or_else(|| {
        HfError::Unsupported(format!(
            "PEFT adapters for the '{arch_name}' architecture are not supported"
        ))
    })?;
    // The name table reads the head counts (for the Q/K permutation) from config.json keys.
    let heads = |key: &str| base.get_u32(&format!("{arch_name}.{key}"));
    let mut base_cfg = serde_json::Map::new();
    if let Some(h) = heads("attention.head_count") {
        base_cfg.insert("num_attention_heads".into(), h.into());
        let kv = heads("attention.head_count_kv").unwrap_or(h);
        base_cfg.insert("num_key_value_heads".into(), kv.into());
    }
    let base_cfg = Config {
        json: Json::Object(base_cfg),
    };

    let mut asm = GgufAssembler::new();
    asm.set("general.architecture", Value::String(arch_name.into()));
    asm.set("general.type", Value::String("adapter".into()));
    asm.set("adapter.type", Value::String("lora".into()));
    asm.set("adapter.lora.alpha", Value::F32(alpha as f32));
    let stored = weights::read(dir, &mut asm)?;
    for (name, st) in &stored {
        let unknown = |why: &str| HfError::BadTensor {
            name: name.clone(),
            why: why.into(),
        };
        let inner = name
            .strip_prefix("base_model.model.")
            .ok_or_else(|| unknown("does not start with `base_model.model.`"))?;
        let (stem, half) = if let Some(s) = inner.strip_suffix(".lora_A.weight") {
            (s, "lora_a")
        } else if let Some(s) = inner.strip_suffix(".lora_B.weight") {
            (s, "lora_b")
        } else {
            return Err(unknown(
                "is not a lora_A or lora_B weight (DoRA, embeddings and saved modules are not supported)",
            ));
        };
        let Some((gguf, how)) = (arch.tensor)(&format!("{stem}.weight"), &base_cfg)? else {
            return Err(unknown("adapts a weight that has no GGUF counterpart"));
        };
        let how = match (half, how) {
            ("lora_b", t @ Transform::PermuteRows { .. }) => t,
            _ => Transform::AsIs,
        };
        crate::add_tensor(&mut asm, name, &format!("{gguf}.{half}"), st, how)?;
    }
    Ok(asm.build())
}
