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
//! F32, F16 and BF16 weights are read in place; Llama's Q/K rows, which llama.cpp's RoPE
//! wants in another order, are the only tensors copied.

mod archs;
mod bert;
mod config;
mod decoder;
mod error;
mod peft;
mod tokenizer;
mod weights;

use std::path::Path;

use owl_gguf::{GgufAssembler, GgufFile, Value};
use serde_json::Value as Json;

pub use error::HfError;
pub use peft::{is_peft_dir, open_adapter, open_peft};

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
    let cfg = Config {
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
    let mut asm = GgufAssembler::new();
    asm.set("general.architecture", Value::String(arch.gguf.into()));
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    asm.set("general.name", Value::String(name));
    (arch.keys)(&cfg, dir, &mut asm)?;
    tokenizer::convert(dir, &cfg, &mut asm)?;
    let stored = weights::read(dir, &mut asm)?;
    for (name, st) in &stored {
        if let Some((gguf, how)) = (arch.tensor)(name, &cfg)? {
            add_tensor(&mut asm, name, &gguf, st, how)?;
        }
    }
    Ok(asm.build())
}

/// Adds one checkpoint tensor under its GGUF name.
fn add_tensor(
    asm: &mut GgufAssembler,
    hf_name: &str,
    gguf: &str,
    st: &Stored,
    how: Transform,
) -> Result<(), HfError> {
    let ty = st.ggml_type().ok_or_else(|| HfError::BadTensor {
        name: hf_name.into(),
        why: format!(
            "dtype {:?} is not supported (F32, F16 and BF16 are)",
            st.dtype
        ),
    })?;
    match how {
        Transform::AsIs => asm.add_mapped(gguf, st.dims(), ty, st.map, st.start)?,
        Transform::PermuteRows { n_head } => {
            let rows = st.shape.first().copied().unwrap_or(0);
            let n_bytes = ty
                .bytes_for(st.shape.iter().product::<usize>() as u64)
                .and_then(|b| usize::try_from(b).ok())
                .unwrap_or(usize::MAX);
            let src = asm
                .mapped(st.map)
                .get(st.start..st.start.saturating_add(n_bytes))
                .ok_or_else(|| HfError::BadTensor {
                    name: hf_name.into(),
                    why: "lies outside its file".into(),
                })?;
            let bytes = permute_rows(src, rows, n_head).ok_or_else(|| HfError::BadTensor {
                name: hf_name.into(),
                why: format!("{rows} rows do not split into {n_head} heads of pairs"),
            })?;
            asm.add_owned(gguf, st.dims(), ty, bytes)?;
        }
    }
    Ok(())
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
