//! The checkpoint's tensors: every `*.safetensors` file of the directory (or those its
//! `model.safetensors.index.json` names), memory-mapped, with each tensor's place in its map.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use owl_gguf::{GgmlType, GgufAssembler, MapId};
use safetensors::{Dtype, SafeTensors};

use crate::{read_json, HfError};

/// Where one checkpoint tensor lives.
#[derive(Clone, Debug)]
pub struct Stored {
    pub map: MapId,
    /// Byte offset of its data in the mapped file.
    pub start: usize,
    pub dtype: Dtype,
    /// Hugging Face (row-major, outermost first) shape.
    pub shape: Vec<usize>,
}

impl Stored {
    /// The GGUF type the bytes already are, if owl reads them as they are.
    pub fn ggml_type(&self) -> Option<GgmlType> {
        match self.dtype {
            Dtype::F32 => Some(GgmlType::F32),
            Dtype::F16 => Some(GgmlType::F16),
            Dtype::BF16 => Some(GgmlType::BF16),
            _ => None,
        }
    }

    /// GGUF dims: the shape reversed (`dims[0]` is the contiguous row).
    pub fn dims(&self) -> Vec<u64> {
        self.shape.iter().rev().map(|&d| d as u64).collect()
    }
}

/// The safetensors files of `dir`: those the index names, else every `*.safetensors`.
fn shard_files(dir: &Path) -> Result<Vec<PathBuf>, HfError> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let json = read_json(&index)?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| HfError::Safetensors {
                path: index.clone(),
                why: "has no `weight_map` object".into(),
            })?;
        let mut files: Vec<String> = map
            .values()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        files.sort();
        files.dedup();
        for f in &files {
            // A shard name is a file name in this directory, never a path out of it.
            if f.contains('/') || f.contains('\\') || f.starts_with('.') {
                return Err(HfError::Safetensors {
                    path: index.clone(),
                    why: format!("shard name `{f}` is not a plain file name"),
                });
            }
        }
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| HfError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(HfError::MissingFile(dir.join("model.safetensors")));
    }
    Ok(files)
}

/// Maps every shard into `asm` and lists its tensors by name.
pub fn read(dir: &Path, asm: &mut GgufAssembler) -> Result<BTreeMap<String, Stored>, HfError> {
    let mut out = BTreeMap::new();
    for path in shard_files(dir)? {
        if !path.is_file() {
            return Err(HfError::MissingFile(path));
        }
        let map = asm.map(&path)?;
        let bytes = asm.mapped(map);
        let (header, meta) =
            SafeTensors::read_metadata(bytes).map_err(|e| HfError::Safetensors {
                path: path.clone(),
                why: e.to_string(),
            })?;
        let data_start = 8 + header;
        for (name, info) in meta.tensors() {
            let (begin, end) = info.data_offsets;
            // read_metadata checked the offsets against the buffer; check again what we use.
            if data_start
                .checked_add(end)
                .is_none_or(|e| e > bytes.len() || begin > end)
            {
                return Err(HfError::Safetensors {
                    path: path.clone(),
                    why: format!("tensor `{name}` lies outside the file"),
                });
            }
            let stored = Stored {
                map,
                start: data_start + begin,
                dtype: info.dtype,
                shape: info.shape.clone(),
            };
            if out.insert(name.clone(), stored).is_some() {
                return Err(HfError::Safetensors {
                    path: path.clone(),
                    why: format!("tensor `{name}` appears in two shards"),
                });
            }
        }
    }
    Ok(out)
}
