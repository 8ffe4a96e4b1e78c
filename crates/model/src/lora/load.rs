//! Reading a llama.cpp GGUF adapter and checking it against the base model.
//!
//! The rules are llama.cpp's (`llama-adapter.cpp`): `general.type` must be `adapter` and
//! `adapter.type` `lora`; each adapted tensor `X` comes as `X.lora_a` (GGUF dims
//! `[n_in, rank]`) and `X.lora_b` (`[rank, n_out]`), where X is `[n_in, n_out]`; the scale
//! is `user_scale · alpha / rank`, or `user_scale` when alpha is 0 or absent.

use std::collections::BTreeMap;

use owl_gguf::{GgufFile, TensorInfo};

use super::{LoraAdapter, LoraError, LoraPair, LoraTarget, Target};

/// Loads the adapter in `file` (named `source` in messages) for a model whose adaptable
/// matrices are `targets`, scaled by `user_scale`.
pub fn load(
    file: &GgufFile,
    source: &str,
    targets: &[LoraTarget],
    arch: &str,
    user_scale: f32,
) -> Result<LoraAdapter, LoraError> {
    let src = || source.to_string();
    if !user_scale.is_finite() {
        return Err(LoraError::BadScale(user_scale));
    }
    let not = |why: String| LoraError::NotAdapter { file: src(), why };
    match file.get_str("general.type") {
        Some("adapter") => {}
        other => {
            return Err(not(format!(
                "general.type is {:?}, expected \"adapter\"",
                other.unwrap_or("absent")
            )))
        }
    }
    match file.get_str("adapter.type") {
        Some("lora") => {}
        other => {
            return Err(not(format!(
                "adapter.type is {:?}, expected \"lora\"",
                other.unwrap_or("absent")
            )))
        }
    }
    if let Some(a) = file.get_str("general.architecture") {
        if a != arch {
            return Err(not(format!(
                "it is for the '{a}' architecture, the model is '{arch}'"
            )));
        }
    }
    let alpha = file.get_f32("adapter.lora.alpha").unwrap_or(0.0);
    if targets.is_empty() {
        return Err(LoraError::Unsupported { arch: arch.into() });
    }

    // Pair up `X.lora_a` and `X.lora_b`.
    let mut halves: BTreeMap<&str, (Option<&TensorInfo>, Option<&TensorInfo>)> = BTreeMap::new();
    for t in file.tensors() {
        if let Some(base) = t.name.strip_suffix(".lora_a") {
            halves.entry(base).or_default().0 = Some(t);
        } else if let Some(base) = t.name.strip_suffix(".lora_b") {
            halves.entry(base).or_default().1 = Some(t);
        } else {
            return Err(LoraError::BadTensor {
                file: src(),
                tensor: t.name.clone(),
                why: "is neither a .lora_a nor a .lora_b tensor".into(),
            });
        }
    }
    if halves.is_empty() {
        return Err(LoraError::Empty { file: src() });
    }
    let n_layer = targets.iter().map(|t| t.layer + 1).max().unwrap_or(0);
    let mut layers: Vec<[Option<LoraPair>; 7]> = (0..n_layer).map(|_| Default::default()).collect();
    for (base, (a, b)) in halves {
        let missing = |half: &str| LoraError::BadTensor {
            file: src(),
            tensor: base.to_string(),
            why: format!("has no {half} tensor"),
        };
        let a = a.ok_or_else(|| missing("lora_a"))?;
        let b = b.ok_or_else(|| missing("lora_b"))?;
        let target =
            targets
                .iter()
                .find(|t| t.name() == base)
                .ok_or_else(|| LoraError::NoTarget {
                    file: src(),
                    tensor: base.to_string(),
                    supported: supported(targets),
                })?;
        let rank = a.dims.get(1).copied().unwrap_or(0);
        let want_a = vec![target.n_in as u64, rank];
        let want_b = vec![rank, target.n_out as u64];
        let shape = |t: &TensorInfo, want: Vec<u64>| LoraError::Shape {
            file: src(),
            tensor: t.name.clone(),
            got: t.dims.clone(),
            want,
        };
        if rank == 0 || a.dims != want_a {
            return Err(shape(a, want_a));
        }
        if b.dims != want_b {
            return Err(shape(b, want_b));
        }
        let rank = rank as usize;
        let pair = LoraPair {
            rank,
            n_in: target.n_in,
            n_out: target.n_out,
            a: values(file, a, source)?,
            b: values(file, b, source)?,
            scale: if alpha != 0.0 {
                user_scale * alpha / rank as f32
            } else {
                user_scale
            },
        };
        layers[target.layer][target.target as usize] = Some(pair);
    }
    Ok(LoraAdapter {
        source: source.to_string(),
        alpha,
        user_scale,
        layers,
    })
}

/// A tensor dequantized to f32 (any type owl reads: F32, F16, BF16, the quantized ones).
fn values(file: &GgufFile, t: &TensorInfo, source: &str) -> Result<Vec<f32>, LoraError> {
    let format = owl_quant::format(t.ty).ok_or_else(|| LoraError::BadTensor {
        file: source.to_string(),
        tensor: t.name.clone(),
        why: format!("type {} is not supported", t.ty),
    })?;
    let mut out = vec![0.0f32; t.n_elements as usize];
    (format.dequantize)(file.tensor_data(t), &mut out);
    if out.iter().any(|v| !v.is_finite()) {
        return Err(LoraError::BadTensor {
            file: source.to_string(),
            tensor: t.name.clone(),
            why: "holds a value that is not finite".into(),
        });
    }
    Ok(out)
}

/// The roles a model adapts, for messages.
fn supported(targets: &[LoraTarget]) -> String {
    let mut roles: Vec<&str> = Target::ALL
        .iter()
        .filter(|r| targets.iter().any(|t| t.target == **r))
        .map(|r| r.role())
        .collect();
    roles.dedup();
    format!("blk.N.{{{}}}.weight", roles.join(","))
}
