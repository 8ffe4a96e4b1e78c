//! Writing a LoRA adapter in PEFT's layout (`adapter_config.json` +
//! `adapter_model.safetensors`), for `owl finetune --peft-out`: the inverse of
//! [`crate::peft::open_peft`].
//!
//! Names come from the same per-architecture table the readers use, asked the other way round:
//! for each Hugging Face module name of a decoder layer the table says which GGUF tensor it
//! becomes and how. Where it permutes rows (Llama's Q and K, into llama.cpp's RoPE order), the
//! adapter's B rows — trained against the permuted base — are permuted back, so the PEFT file
//! applies to the original Hugging Face weights.

use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use serde_json::json;

use crate::archs::{Transform, ARCHS};
use crate::config::Config;
use crate::HfError;

/// One trained pair, by its GGUF name (`blk.3.attn_q.weight`).
pub struct PeftPair<'a> {
    pub gguf_name: String,
    pub rank: usize,
    pub n_in: usize,
    pub n_out: usize,
    /// [rank, n_in]
    pub a: &'a [f32],
    /// [n_out, rank], rows in the GGUF base's order.
    pub b: &'a [f32],
}

/// The Hugging Face module names of decoder layer `i` that adapters target.
fn candidates(i: usize) -> [String; 7] {
    let p = format!("model.layers.{i}");
    [
        format!("{p}.self_attn.q_proj"),
        format!("{p}.self_attn.k_proj"),
        format!("{p}.self_attn.v_proj"),
        format!("{p}.self_attn.o_proj"),
        format!("{p}.mlp.gate_proj"),
        format!("{p}.mlp.up_proj"),
        format!("{p}.mlp.down_proj"),
    ]
}

/// `rows` rows of `src` (each `src.len() / rows` floats) back from llama.cpp's Q/K order.
fn unpermute_rows(src: &[f32], rows: usize, n_head: usize) -> Option<Vec<f32>> {
    if rows == 0 || n_head == 0 || rows % (2 * n_head) != 0 || src.len() % rows != 0 {
        return None;
    }
    let row = src.len() / rows;
    let hd = rows / n_head;
    let half = hd / 2;
    let mut out = vec![0f32; src.len()];
    for h in 0..n_head {
        for j in 0..2 {
            for i in 0..half {
                let hf = h * hd + j * half + i;
                let gguf = h * hd + 2 * i + j;
                out[hf * row..(hf + 1) * row].copy_from_slice(&src[gguf * row..(gguf + 1) * row]);
            }
        }
    }
    Some(out)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes `pairs` (an adapter for a base of architecture `arch` with `n_head` / `n_head_kv`
/// heads) as a PEFT directory `dir` (created if missing).
pub fn write_peft(
    dir: &Path,
    arch: &str,
    n_head: usize,
    n_head_kv: usize,
    alpha: f32,
    pairs: &[PeftPair<'_>],
    base_name: &str,
) -> Result<(), HfError> {
    let io = |path: &Path, source| HfError::Io {
        path: path.to_path_buf(),
        source,
    };
    let a = ARCHS.iter().find(|a| a.gguf == arch).ok_or_else(|| {
        HfError::Unsupported(format!("PEFT output for the '{arch}' architecture"))
    })?;
    let cfg = Config {
        json: json!({"num_attention_heads": n_head, "num_key_value_heads": n_head_kv}),
    };
    let n_layer = pairs
        .iter()
        .filter_map(|p| p.gguf_name.split('.').nth(1)?.parse::<usize>().ok())
        .max()
        .map_or(0, |l| l + 1);
    let mut tensors: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
    let mut modules = std::collections::BTreeSet::new();
    let mut rank = 0;
    for i in 0..n_layer {
        for hf in candidates(i) {
            let Some((gguf, how)) = (a.tensor)(&format!("{hf}.weight"), &cfg)? else {
                continue;
            };
            let Some(p) = pairs.iter().find(|p| p.gguf_name == gguf) else {
                continue;
            };
            let b = match how {
                Transform::PermuteRows { n_head } => unpermute_rows(p.b, p.n_out, n_head)
                    .ok_or_else(|| HfError::BadTensor {
                        name: gguf.clone(),
                        why: format!("{} rows do not split into {n_head} heads", p.n_out),
                    })?,
                Transform::AsIs => p.b.to_vec(),
                _ => {
                    return Err(HfError::Unsupported(format!(
                        "PEFT output for {gguf}, which the converter transforms"
                    )))
                }
            };
            let stem = format!("base_model.model.{hf}");
            tensors.push((
                format!("{stem}.lora_A.weight"),
                f32_bytes(p.a),
                vec![p.rank, p.n_in],
            ));
            tensors.push((
                format!("{stem}.lora_B.weight"),
                f32_bytes(&b),
                vec![p.n_out, p.rank],
            ));
            if let Some(m) = hf.rsplit('.').next() {
                modules.insert(m.to_string());
            }
            rank = p.rank;
        }
    }
    if tensors.len() != 2 * pairs.len() {
        return Err(HfError::Unsupported(format!(
            "PEFT output: {} of {} pairs have a Hugging Face name",
            tensors.len() / 2,
            pairs.len()
        )));
    }
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, bytes, shape)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| HfError::BadTensor {
                    name: name.clone(),
                    why: e.to_string(),
                })
        })
        .collect::<Result<_, _>>()?;
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let st = dir.join("adapter_model.safetensors");
    let bytes = safetensors::serialize(views, None).map_err(|e| HfError::Safetensors {
        path: st.clone(),
        why: e.to_string(),
    })?;
    std::fs::write(&st, bytes).map_err(|e| io(&st, e))?;
    let config = json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_name,
        "r": rank,
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": false,
        "use_rslora": false,
        "use_dora": false,
        "target_modules": modules.into_iter().collect::<Vec<_>>(),
    });
    let cp = dir.join("adapter_config.json");
    let text = serde_json::to_string_pretty(&config).map_err(|e| HfError::Json {
        path: cp.clone(),
        source: e,
    })?;
    std::fs::write(&cp, text + "\n").map_err(|e| io(&cp, e))?;
    Ok(())
}
