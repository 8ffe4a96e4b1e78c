//! BERT encoders (`BertModel`, sentence-transformers checkpoints such as all-MiniLM-L6-v2,
//! and cross-encoders): keys and names as `convert_hf_to_gguf.py`'s `BertModel` writes them,
//! the pooling from sentence-transformers' `modules.json` → `N_Pooling/config.json`.

use std::path::Path;

use owl_gguf::{GgufAssembler, Value};
use serde_json::Value as Json;

use crate::archs::{Mapped, Transform};
use crate::config::Config;
use crate::{read_json, HfError};

/// llama.cpp's `LLAMA_POOLING_TYPE_*` values.
const POOL_MEAN: u32 = 1;
const POOL_CLS: u32 = 2;
const POOL_LAST: u32 = 3;

pub fn keys(c: &Config, dir: &Path, asm: &mut GgufAssembler) -> Result<(), HfError> {
    let u = |v: usize| Value::U32(v as u32);
    asm.set("bert.block_count", u(c.dim("num_hidden_layers")?));
    asm.set("bert.embedding_length", u(c.dim("hidden_size")?));
    asm.set("bert.feed_forward_length", u(c.dim("intermediate_size")?));
    asm.set(
        "bert.attention.head_count",
        u(c.dim("num_attention_heads")?),
    );
    asm.set("bert.context_length", u(c.dim("max_position_embeddings")?));
    let eps = c.f64_or("layer_norm_eps", 1e-12)?;
    asm.set("bert.attention.layer_norm_epsilon", Value::F32(eps as f32));
    asm.set("bert.attention.causal", Value::Bool(false));
    asm.set(
        "tokenizer.ggml.token_type_count",
        u(c.opt_dim("type_vocab_size")?.unwrap_or(1)),
    );
    if let Some(act) = c.str("hidden_act") {
        if act != "gelu" {
            return Err(HfError::BadConfig {
                key: "hidden_act".into(),
                why: format!("is `{act}`; owl's BERT uses GELU (erf)"),
            });
        }
    }
    if let Some(p) = pooling(dir)? {
        asm.set("bert.pooling_type", Value::U32(p));
    }
    if let Some(labels) = classifier_labels(c) {
        asm.set(
            "bert.classifier.output_labels",
            Value::Array(labels.into_iter().map(Value::String).collect()),
        );
    }
    Ok(())
}

/// The pooling of a sentence-transformers directory, if it says.
fn pooling(dir: &Path) -> Result<Option<u32>, HfError> {
    let modules = dir.join("modules.json");
    if !modules.is_file() {
        return Ok(None);
    }
    let list = read_json(&modules)?;
    let Some(path) = list.as_array().and_then(|a| {
        a.iter().find_map(|m| {
            let ty = m.get("type")?.as_str()?;
            ty.ends_with("Pooling")
                .then(|| m.get("path")?.as_str())
                .flatten()
        })
    }) else {
        return Ok(None);
    };
    if path.contains("..") || path.starts_with('/') {
        return Err(HfError::Unsupported(format!(
            "{}: pooling path `{path}` leaves the directory",
            modules.display()
        )));
    }
    let p = read_json(&dir.join(path).join("config.json"))?;
    let on = |k: &str| p.get(k).and_then(Json::as_bool).unwrap_or(false);
    let mode = p.get("pooling_mode").and_then(Json::as_str);
    Ok(Some(
        if on("pooling_mode_mean_tokens") || mode == Some("mean") {
            POOL_MEAN
        } else if on("pooling_mode_cls_token") || mode == Some("cls") {
            POOL_CLS
        } else if on("pooling_mode_lasttoken") || mode == Some("lasttoken") {
            POOL_LAST
        } else {
            return Err(HfError::Unsupported(format!(
                "{path}/config.json: only mean, CLS and last-token pooling are supported"
            )));
        },
    ))
}

/// `id2label` names, unless they are the two placeholders transformers invents.
fn classifier_labels(c: &Config) -> Option<Vec<String>> {
    let map = c.json.get("id2label")?.as_object()?;
    let mut labels: Vec<(usize, String)> = map
        .iter()
        .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_str()?.to_string())))
        .collect();
    labels.sort();
    let labels: Vec<String> = labels.into_iter().map(|(_, v)| v).collect();
    if labels.len() == 2 && labels[0] == "LABEL_0" {
        return None;
    }
    Some(labels)
}

pub fn tensor(name: &str, c: &Config) -> Result<Mapped, HfError> {
    let unknown =
        || HfError::Unsupported(format!("tensor `{name}` has no GGUF counterpart in BERT"));
    let name = name.strip_prefix("bert.").unwrap_or(name);
    let (stem, suffix) = match name.rsplit_once('.') {
        Some((s, "weight" | "gamma")) => (s, "weight"),
        Some((s, "bias" | "beta")) => (s, "bias"),
        _ if name == "embeddings.position_ids" => return Ok(None),
        _ => return Err(unknown()),
    };
    let to = |g: &str| Ok(Some((format!("{g}.{suffix}"), Transform::AsIs)));
    match stem {
        "embeddings.word_embeddings" => return to("token_embd"),
        "embeddings.position_embeddings" => return to("position_embd"),
        "embeddings.token_type_embeddings" => return to("token_types"),
        "embeddings.LayerNorm" => return to("token_embd_norm"),
        "pooler.dense" => return Ok(None),
        "classifier" if classifier_labels(c).is_some() => return to("cls.output"),
        "classifier" => return to("cls"),
        s if s.starts_with("cls.predictions") || s.starts_with("cls.seq_relationship") => {
            return Ok(None)
        }
        _ => {}
    }
    let Some((layer, part)) = stem
        .strip_prefix("encoder.layer.")
        .and_then(|r| r.split_once('.'))
    else {
        return Err(unknown());
    };
    let Ok(i) = layer.parse::<usize>() else {
        return Err(unknown());
    };
    let g = match part {
        "attention.self.query" => "attn_q",
        "attention.self.key" => "attn_k",
        "attention.self.value" => "attn_v",
        "attention.output.dense" => "attn_output",
        "attention.output.LayerNorm" => "attn_output_norm",
        "intermediate.dense" => "ffn_up",
        "output.dense" => "ffn_down",
        "output.LayerNorm" => "layer_output_norm",
        _ => return Err(unknown()),
    };
    to(&format!("blk.{i}.{g}"))
}
