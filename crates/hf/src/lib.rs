//! owl-hf: Hugging Face model directories (`config.json`, `*.safetensors`, `tokenizer.json`)
//! opened as GGUF files.
//!
//! People already hold models in Hugging Face's layout. Converting each to GGUF first (with
//! llama.cpp's Python converter, torch and all) is a chore that also doubles the disk used.
//! owl instead reads such a directory as if it were the GGUF the converter would write: the
//! metadata keys and tensor names are translated (a table per architecture, `archs`), the
//! tokenizer is rewritten into `tokenizer.ggml.*` keys (`tokenizer`), and the weights stay in
//! the safetensors files, memory-mapped and read in place ([`owl_gguf::GgufAssembler`]).
//! Everything downstream — architectures, kernels, the tokenizer, `owl quantize` — sees an
//! ordinary [`GgufFile`].
//!
//! F32, F16 and BF16 weights are read in place. Copied are only what the converter changes:
//! Llama's Q/K rows (llama.cpp's RoPE wants them in another order), Gemma's norms (plus one),
//! F16/BF16 norms and routers (written as F32), and Mixture-of-Experts matrices, stacked into
//! one tensor per layer as llama.cpp wants them.

mod archs;
mod bert;
mod config;
mod decoder;
mod deepseek;
mod error;
mod gemma;
mod peft;
mod peft_write;
mod spm;
mod tokenizer;
mod weights;

use std::collections::BTreeMap;
use std::path::Path;

use owl_gguf::{GgmlType, GgufAssembler, GgufFile, Value};
use serde_json::Value as Json;

pub use error::HfError;
pub use peft::{is_peft_dir, open_adapter, open_peft};
pub use peft_write::{write_peft, PeftPair};

use archs::{Transform, ARCHS};
use config::Config;
use weights::Stored;

/// Whether `path` is a directory that looks like a Hugging Face model (has `config.json`).
pub fn is_model_dir(path: &Path) -> bool {
    path.is_dir() && path.join("config.json").is_file()
}

/// Opens a model: a GGUF file, or a Hugging Face directory as its GGUF view.
pub fn open_model(path: &Path) -> Result<GgufFile, HfError> {
    if path.is_dir() {
        open_dir(path)
    } else {
        Ok(GgufFile::open(path)?)
    }
}

pub(crate) fn read_json(path: &Path) -> Result<Json, HfError> {
    let text = std::fs::read(path).map_err(|e| HfError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    serde_json::from_slice(&text).map_err(|e| HfError::Json {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Opens the Hugging Face model directory `dir` as a GGUF view.
pub fn open_dir(dir: &Path) -> Result<GgufFile, HfError> {
    let cfg_path = dir.join("config.json");
    if !cfg_path.is_file() {
        return Err(HfError::MissingFile(cfg_path));
    }
    let mut cfg = Config {
        json: read_json(&cfg_path)?,
    };
    let hf_arch = cfg.architecture()?;
    let arch = ARCHS
        .iter()
        .find(|a| a.hf.contains(&hf_arch))
        .ok_or_else(|| {
            HfError::Unsupported(format!(
                "architecture `{hf_arch}` is not supported in Hugging Face directories (owl reads {})",
                archs::names()
            ))
        })?;
    cfg.lift_text_config();
    cfg.fill_defaults(arch.defaults);
    let mut asm = GgufAssembler::new();
    asm.set("general.architecture", Value::String(arch.gguf.into()));
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    asm.set("general.name", Value::String(name));
    (arch.keys)(&cfg, dir, &mut asm)?;
    tokenizer::convert(dir, &cfg, arch.gguf, &mut asm)?;
    let stored = weights::read(dir, &mut asm)?;
    let mut experts: BTreeMap<String, Vec<Option<(&str, &Stored)>>> = BTreeMap::new();
    for (name, st) in &stored {
        match (arch.tensor)(name, &cfg)? {
            None => {}
            Some((gguf, Transform::Expert { index, count })) => {
                let slots = experts.entry(gguf).or_insert_with(|| vec![None; count]);
                let slot = slots.get_mut(index).ok_or_else(|| HfError::BadTensor {
                    name: name.clone(),
                    why: format!("expert {index} is out of range ({count} experts)"),
                })?;
                *slot = Some((name, st));
            }
            Some((gguf, how)) => add_tensor(&mut asm, name, &gguf, st, how)?,
        }
    }
    for (gguf, slots) in &experts {
        add_stacked(&mut asm, gguf, slots)?;
    }
    Ok(asm.build())
}

/// The bytes of a checkpoint tensor, checked against its file.
fn tensor_bytes<'a>(
    asm: &'a GgufAssembler,
    hf_name: &str,
    st: &Stored,
    ty: GgmlType,
) -> Result<&'a [u8], HfError> {
    let n_bytes = ty
        .bytes_for(st.shape.iter().product::<usize>() as u64)
        .and_then(|b| usize::try_from(b).ok())
        .unwrap_or(usize::MAX);
    asm.mapped(st.map)
        .get(st.start..st.start.saturating_add(n_bytes))
        .ok_or_else(|| HfError::BadTensor {
            name: hf_name.into(),
            why: "lies outside its file".into(),
        })
}

fn ggml_type(hf_name: &str, st: &Stored) -> Result<GgmlType, HfError> {
    st.ggml_type().ok_or_else(|| HfError::BadTensor {
        name: hf_name.into(),
        why: format!(
            "dtype {:?} is not supported (F32, F16 and BF16 are)",
            st.dtype
        ),
    })
}

/// Whether the converter writes `gguf` as F32 whatever its stored type: 1-D tensors, norms
/// and MoE routers (`prepare_tensors` in `convert_hf_to_gguf.py`).
fn forced_f32(gguf: &str, st: &Stored) -> bool {
    st.shape.len() <= 1 || gguf.ends_with("_norm.weight") || gguf.contains(".ffn_gate_inp.")
}

/// F16/BF16/F32 bytes as F32 values, with `add` added (for F16 in F16, as torch does).
fn to_f32(bytes: &[u8], ty: GgmlType, add: f32) -> Vec<u8> {
    let out: Vec<f32> = match ty {
        GgmlType::F16 => bytes
            .chunks_exact(2)
            .map(|b| {
                let x = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
                if add == 0.0 {
                    x
                } else {
                    half::f16::from_f32(x + add).to_f32()
                }
            })
            .collect(),
        GgmlType::BF16 => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32() + add)
            .collect(),
        _ => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) + add)
            .collect(),
    };
    out.iter().flat_map(|f| f.to_le_bytes()).collect()
}

/// Stacks one layer's per-expert matrices into llama.cpp's `[count, rows, cols]` tensor.
///
/// GGUF wants each tensor contiguous and the experts are separate tensors in the checkpoint
/// (often in different shards), so this is a copy: owned memory as large as the experts.
fn add_stacked(
    asm: &mut GgufAssembler,
    gguf: &str,
    slots: &[Option<(&str, &Stored)>],
) -> Result<(), HfError> {
    let mut first: Option<(&str, &Stored, GgmlType)> = None;
    let mut bytes = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        let Some((name, st)) = *slot else {
            return Err(HfError::MissingTensor(format!(
                "expert {i} of {} (for {gguf})",
                slots.len()
            )));
        };
        let ty = ggml_type(name, st)?;
        match first {
            None => first = Some((name, st, ty)),
            Some((n0, s0, t0)) => {
                if s0.shape != st.shape || t0 != ty {
                    return Err(HfError::BadTensor {
                        name: name.into(),
                        why: format!(
                            "is {ty:?} {:?}, but `{n0}` is {t0:?} {:?}: experts must match",
                            st.shape, s0.shape
                        ),
                    });
                }
            }
        }
        let src = tensor_bytes(asm, name, st, ty)?;
        if bytes.is_empty() {
            bytes.reserve(src.len() * slots.len());
        }
        bytes.extend_from_slice(src);
    }
    let Some((_, st, ty)) = first else {
        return Ok(());
    };
    let mut dims = st.dims();
    dims.push(slots.len() as u64);
    asm.add_owned(gguf, dims, ty, bytes)?;
    Ok(())
}

/// Adds one checkpoint tensor under its GGUF name.
fn add_tensor(
    asm: &mut GgufAssembler,
    hf_name: &str,
    gguf: &str,
    st: &Stored,
    how: Transform,
) -> Result<(), HfError> {
    let ty = ggml_type(hf_name, st)?;
    match how {
        Transform::AddOne => {
            let bytes = to_f32(tensor_bytes(asm, hf_name, st, ty)?, ty, 1.0);
            asm.add_owned(gguf, st.dims(), GgmlType::F32, bytes)?;
        }
        Transform::AsIs if ty != GgmlType::F32 && forced_f32(gguf, st) => {
            let bytes = to_f32(tensor_bytes(asm, hf_name, st, ty)?, ty, 0.0);
            asm.add_owned(gguf, st.dims(), GgmlType::F32, bytes)?;
        }
        Transform::AsIs => asm.add_mapped(gguf, st.dims(), ty, st.map, st.start)?,
        Transform::Expert { .. } => {
            return Err(HfError::BadTensor {
                name: hf_name.into(),
                why: "an expert matrix cannot stand alone".into(),
            })
        }
        Transform::SplitGateUp => {
            let src = tensor_bytes(asm, hf_name, st, ty)?;
            let (gate, up) = split_halves(src, &st.shape).ok_or_else(|| HfError::BadTensor {
                name: hf_name.into(),
                why: format!("shape {:?} is not [n_expert, 2 × n_ff, n_embd]", st.shape),
            })?;
            let mut dims = st.dims();
            dims[1] /= 2;
            let base = gguf.strip_suffix("ffn_gate_up_exps.weight").unwrap_or(gguf);
            asm.add_owned(
                &format!("{base}ffn_gate_exps.weight"),
                dims.clone(),
                ty,
                gate,
            )?;
            asm.add_owned(&format!("{base}ffn_up_exps.weight"), dims, ty, up)?;
        }
        Transform::SplitKvB { n_head, nope, v } => {
            let src = tensor_bytes(asm, hf_name, st, ty)?;
            let (k_b, v_b, rank) =
                split_kv_b(src, &st.shape, ty, n_head, nope, v).ok_or_else(|| {
                    HfError::BadTensor {
                        name: hf_name.into(),
                        why: format!(
                            "shape {:?} is not [{n_head} × ({nope} + {v}), kv_lora_rank]",
                            st.shape
                        ),
                    }
                })?;
            let (n_head, nope, v, rank) = (n_head as u64, nope as u64, v as u64, rank as u64);
            let base = gguf.strip_suffix("attn_kv_b.weight").unwrap_or(gguf);
            asm.add_owned(
                &format!("{base}attn_k_b.weight"),
                vec![nope, rank, n_head],
                ty,
                k_b,
            )?;
            asm.add_owned(
                &format!("{base}attn_v_b.weight"),
                vec![rank, v, n_head],
                ty,
                v_b,
            )?;
        }
        Transform::PermuteRows { n_head } => {
            let rows = st.shape.first().copied().unwrap_or(0);
            let src = tensor_bytes(asm, hf_name, st, ty)?;
            let bytes = permute_rows(src, rows, n_head).ok_or_else(|| HfError::BadTensor {
                name: hf_name.into(),
                why: format!("{rows} rows do not split into {n_head} heads of pairs"),
            })?;
            asm.add_owned(gguf, st.dims(), ty, bytes)?;
        }
    }
    Ok(())
}

/// A `[n_expert, 2 × n_ff, n_embd]` tensor's halves along the middle axis, per expert (the
/// converter's `data[..., :n_ff, :]` and `data[..., n_ff:, :]`).
fn split_halves(src: &[u8], shape: &[usize]) -> Option<(Vec<u8>, Vec<u8>)> {
    let &[n_expert, rows, _] = <&[usize; 3]>::try_from(shape).ok()?;
    if n_expert == 0 || rows % 2 != 0 || src.len() % n_expert != 0 {
        return None;
    }
    let per = src.len() / n_expert;
    let half = per / 2;
    let mut gate = Vec::with_capacity(src.len() / 2);
    let mut up = Vec::with_capacity(src.len() / 2);
    for e in src.chunks_exact(per) {
        gate.extend_from_slice(&e[..half]);
        up.extend_from_slice(&e[half..]);
    }
    Some((gate, up))
}

/// DeepSeek's `kv_b_proj` split as the converter does: per head, the first `nope` rows
/// transposed (`k_b`, `[n_head, rank, nope]`) and the next `v` rows as they are (`v_b`).
/// Returns both and the rank, or `None` when the shape does not fit.
fn split_kv_b(
    src: &[u8],
    shape: &[usize],
    ty: GgmlType,
    n_head: usize,
    nope: usize,
    v: usize,
) -> Option<(Vec<u8>, Vec<u8>, usize)> {
    let es = match ty {
        GgmlType::F32 => 4,
        GgmlType::F16 | GgmlType::BF16 => 2,
        _ => return None,
    };
    let &[rows, rank] = <&[usize; 2]>::try_from(shape).ok()?;
    if rows != n_head.checked_mul(nope.checked_add(v)?)? || src.len() != rows * rank * es {
        return None;
    }
    let mut k_b = Vec::with_capacity(n_head * rank * nope * es);
    let mut v_b = Vec::with_capacity(n_head * v * rank * es);
    for h in 0..n_head {
        let head = h * (nope + v);
        for r in 0..rank {
            for j in 0..nope {
                let at = ((head + j) * rank + r) * es;
                k_b.extend_from_slice(&src[at..at + es]);
            }
        }
        let from = (head + nope) * rank * es;
        v_b.extend_from_slice(&src[from..from + v * rank * es]);
    }
    Some((k_b, v_b, rank))
}

/// llama.cpp's converter `permute`: within each head of `rows / n_head` rows, row
/// `j * half + i` (j = 0, 1) moves to `2 * i + j`. Rows are opaque byte strings.
fn permute_rows(src: &[u8], rows: usize, n_head: usize) -> Option<Vec<u8>> {
    if rows == 0 || n_head == 0 || rows % (2 * n_head) != 0 || src.len() % rows != 0 {
        return None;
    }
    let row = src.len() / rows;
    let hd = rows / n_head;
    let half = hd / 2;
    let mut out = vec![0u8; src.len()];
    for h in 0..n_head {
        for j in 0..2 {
            for i in 0..half {
                let from = h * hd + j * half + i;
                let to = h * hd + 2 * i + j;
                out[to * row..(to + 1) * row].copy_from_slice(&src[from * row..(from + 1) * row]);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fused_gate_up_splits_per_expert() {
        // 2 experts of 4 rows (2 gate, 2 up), one byte per row.
        let src = [0u8, 1, 2, 3, 10, 11, 12, 13];
        let (g, u) = split_halves(&src, &[2, 4, 1]).unwrap();
        assert_eq!((g, u), (vec![0, 1, 10, 11], vec![2, 3, 12, 13]));
        assert!(split_halves(&src, &[2, 3, 1]).is_none());
    }

    #[test]
    fn kv_b_splits_per_head_with_k_transposed() {
        // 1 head, nope 2, v 1, rank 2 (one byte each): rows k0 = [a b], k1 = [c d], v0 = [e f].
        let src16: Vec<u8> = [1u16, 2, 3, 4, 5, 6]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let (k, v, rank) = split_kv_b(&src16, &[3, 2], GgmlType::F16, 1, 2, 1).unwrap();
        assert_eq!(rank, 2);
        let as16 = |b: &[u8]| -> Vec<u16> {
            b.chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect()
        };
        // k_b[h][r][j] = kv[j][r]: [[1, 3], [2, 4]]; v_b = [5, 6].
        assert_eq!(as16(&k), vec![1, 3, 2, 4]);
        assert_eq!(as16(&v), vec![5, 6]);
        assert!(split_kv_b(&src16, &[4, 2], GgmlType::F16, 1, 2, 1).is_none());
    }

    #[test]
    fn permutation_interleaves_the_halves_of_each_head() {
        // 2 heads of 4 rows, one byte per row: [a0 a1 b0 b1] -> [a0 b0 a1 b1].
        let src = [0u8, 1, 2, 3, 10, 11, 12, 13];
        assert_eq!(
            permute_rows(&src, 8, 2).unwrap(),
            vec![0, 2, 1, 3, 10, 12, 11, 13]
        );
        assert!(permute_rows(&src, 8, 3).is_none());
    }
}
