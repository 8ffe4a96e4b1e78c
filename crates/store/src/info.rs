//! What `list` says about a model: `ModelInfo`, where it came from (`Origin`), and the few
//! facts read from a GGUF header (family, quantization, parameter count). Reading them maps
//! the file and parses its header only; the weights are never read or hashed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use owl_gguf::GgufFile;
use sha2::{Digest, Sha256};

/// How a model's weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    /// One GGUF file: owl runs these.
    Gguf,
    /// A Hugging Face directory of `config.json` and `*.safetensors`, which owl reads as the
    /// GGUF it converts to (`owl-hf`).
    SafetensorsDir,
}

/// Where a model was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file in `$OWL_HOME/models`.
    Owl,
    /// A catalogue model, already pulled into `$OWL_HOME/models`.
    Catalog,
    /// A manifest in `$OWL_HOME/manifests` over another model.
    Derived { from: String },
    /// Ollama's store, found in place.
    Ollama,
    /// The Hugging Face cache, found in place.
    HuggingFace { repo: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Owl => f.write_str("owl"),
            Origin::Catalog => f.write_str("catalog"),
            Origin::Derived { from } => write!(f, "derived from {from}"),
            Origin::Ollama => f.write_str("ollama"),
            Origin::HuggingFace { repo } => write!(f, "hf:{repo}"),
        }
    }
}

/// One model the store found.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub name: String,
    /// The GGUF file (or, for `SafetensorsDir`, the snapshot directory).
    pub path: PathBuf,
    /// Bytes of weights (all files, for a directory).
    pub size: u64,
    pub format: ModelFormat,
    /// `general.architecture`.
    pub family: Option<String>,
    /// e.g. "Q4_1": `general.file_type` when the weights agree, else the tensor type holding
    /// most weights.
    pub quant: Option<String>,
    pub parameters: Option<u64>,
    pub modified: SystemTime,
    pub origin: Origin,
    /// A stable hex id: Ollama's model layer digest, else sha256 of (path, size, mtime).
    pub digest: String,
}

/// Facts from a GGUF header.
#[derive(Debug, Clone, Default)]
pub struct GgufFacts {
    pub family: Option<String>,
    pub quant: Option<String>,
    pub parameters: Option<u64>,
}

/// Reads family, quantization and parameter count from `path`'s header; all `None` when the
/// file is not a readable GGUF (a listing shows what it can rather than failing).
pub fn gguf_facts(path: &Path) -> GgufFacts {
    let Ok(g) = GgufFile::open(path) else {
        return GgufFacts::default();
    };
    let family = g.get_str("general.architecture").map(str::to_string);
    let present = tensor_types(&g);
    // `general.file_type` is more specific (Q4_K_M, not Q4_K) but some writers leave it stale
    // (a quantized file still saying F16, with a few F16 tensors left): trust a quantized file
    // type when the file holds tensors of its base type, else name the type holding the most
    // weights. (A Q4_K_M file may hold more Q8_0 than
    // Q4_K, as Gemma 3 270M does with its 262k-row embedding: it is still Q4_K_M.)
    let ft = g.get_u64("general.file_type").and_then(file_type_name);
    let quant = match ft {
        Some(ft)
            if present.is_empty()
                || (!is_float(ft) && present.keys().any(|t| ft.starts_with(t.as_str()))) =>
        {
            Some(ft.to_string())
        }
        _ => present
            .into_iter()
            .max_by_key(|&(_, n)| n)
            .map(|(name, _)| name),
    };
    let counted: u64 = g.tensors().iter().map(|t| t.n_elements).sum();
    let parameters = g
        .get_u64("general.parameter_count")
        .or((counted > 0).then_some(counted));
    GgufFacts {
        family,
        quant,
        parameters,
    }
}

/// Family (`model_type`) and weight type (`torch_dtype`, else the type holding the most weights
/// in the safetensors headers) of a Hugging Face directory, from its `config.json`; `None`s when
/// they cannot be read.
pub fn dir_facts(dir: &Path) -> GgufFacts {
    let Some(cfg) = std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return GgufFacts::default();
    };
    let s = |k: &str| cfg.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let weights = safetensors_types(dir);
    let quant = s("torch_dtype")
        .or_else(|| s("dtype"))
        .map(|d| {
            match d.as_str() {
                "bfloat16" => "BF16",
                "float16" => "F16",
                "float32" => "F32",
                other => other,
            }
            .to_string()
        })
        .or_else(|| {
            weights
                .iter()
                .max_by_key(|&(_, n)| n)
                .map(|(t, _)| t.clone())
        });
    let counted: u64 = weights.values().sum();
    GgufFacts {
        family: s("model_type"),
        quant,
        parameters: (counted > 0).then_some(counted),
    }
}

/// Elements per dtype over the directory's `*.safetensors` headers (an 8-byte length, then a
/// JSON table of `{"dtype", "shape", ...}` per tensor); headers that cannot be read are skipped.
fn safetensors_types(dir: &Path) -> BTreeMap<String, u64> {
    use std::io::Read;
    let mut n: BTreeMap<String, u64> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return n;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("safetensors") {
            continue;
        }
        let Ok(mut f) = std::fs::File::open(&path) else {
            continue;
        };
        let mut len = [0u8; 8];
        if f.read_exact(&mut len).is_err() {
            continue;
        }
        let len = u64::from_le_bytes(len);
        // A header is a table of names and shapes: refuse absurd lengths before allocating.
        if len > 100 << 20 {
            continue;
        }
        let mut header = vec![0u8; len as usize];
        if f.read_exact(&mut header).is_err() {
            continue;
        }
        let Ok(serde_json::Value::Object(table)) = serde_json::from_slice(&header) else {
            continue;
        };
        for (name, t) in &table {
            if name == "__metadata__" {
                continue;
            }
            let Some(dtype) = t.get("dtype").and_then(|d| d.as_str()) else {
                continue;
            };
            let elems = t
                .get("shape")
                .and_then(|s| s.as_array())
                .map(|dims| dims.iter().filter_map(|d| d.as_u64()).product::<u64>())
                .unwrap_or(0);
            *n.entry(dtype.to_string()).or_default() += elems;
        }
    }
    n
}

/// A float file type says nothing a listing can trust: writers leave F16 on quantized files
/// that keep a few F16 tensors.
fn is_float(file_type: &str) -> bool {
    matches!(file_type, "F32" | "F16" | "BF16")
}

/// llama.cpp's `llama_ftype` names.
fn file_type_name(id: u64) -> Option<&'static str> {
    Some(match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        _ => return None,
    })
}

/// Weights per tensor type (upper-case names: "Q4_K", "F32").
fn tensor_types(g: &GgufFile) -> BTreeMap<String, u64> {
    let mut n: BTreeMap<String, u64> = BTreeMap::new();
    for t in g.tensors() {
        *n.entry(t.ty.name().to_ascii_uppercase()).or_default() += t.n_elements;
    }
    n
}

/// Size and modification time of `path` (following symlinks, as the HF cache uses them).
pub fn stat(path: &Path) -> Option<(u64, SystemTime)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
}

/// sha256 of (path, size, mtime), hex: stable while the file is unchanged, and cheap.
pub fn cheap_digest(path: &Path, size: u64, modified: SystemTime) -> String {
    let mut h = Sha256::new();
    h.update(path.to_string_lossy().as_bytes());
    h.update(size.to_le_bytes());
    let t = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.update(t.to_le_bytes());
    hex(&h.finalize())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `ModelInfo` of a GGUF file at `path`, or `None` if it cannot be read.
pub fn gguf_info(name: String, path: &Path, origin: Origin) -> Option<ModelInfo> {
    let (size, modified) = stat(path)?;
    let facts = gguf_facts(path);
    Some(ModelInfo {
        name,
        path: path.to_path_buf(),
        size,
        format: ModelFormat::Gguf,
        family: facts.family,
        quant: facts.quant,
        parameters: facts.parameters,
        modified,
        origin,
        digest: cheap_digest(path, size, modified),
    })
}

#[cfg(test)]
mod tests {
    use owl_gguf::{GgmlType, GgufWriter, Value};

    use super::*;

    /// A GGUF whose tensors hold `n` elements of each type, with `file_type` if given.
    fn gguf(dir: &Path, file_type: Option<u32>, tensors: &[(GgmlType, usize)]) -> PathBuf {
        let mut w = GgufWriter::new();
        w.add_kv("general.architecture", Value::String("llama".into()));
        if let Some(ft) = file_type {
            w.add_kv("general.file_type", Value::U32(ft));
        }
        for (i, &(ty, n)) in tensors.iter().enumerate() {
            let bytes = n / ty.block_size() * ty.type_size();
            w.add_tensor(&format!("t{i}"), &[n as u64], ty, vec![0u8; bytes])
                .expect("tensor");
        }
        let path = dir.join("m.gguf");
        std::fs::write(&path, w.to_bytes()).expect("write");
        path
    }

    #[test]
    fn file_type_names_the_quant_when_its_base_type_is_present() {
        let d = tempfile::tempdir().expect("tmp");
        // Gemma 3 270M: more Q8_0 (the embedding) than Q4_K, and still Q4_K_M.
        let p = gguf(
            d.path(),
            Some(15),
            &[(GgmlType::Q8_0, 4096), (GgmlType::Q4_K, 512)],
        );
        assert_eq!(gguf_facts(&p).quant.as_deref(), Some("Q4_K_M"));
        // A stale F16 on a Q4_0 file: the weights win.
        let p = gguf(
            d.path(),
            Some(1),
            &[(GgmlType::Q4_0, 4096), (GgmlType::F32, 64)],
        );
        assert_eq!(gguf_facts(&p).quant.as_deref(), Some("Q4_0"));
        // ... even when a few F16 tensors remain.
        let p = gguf(
            d.path(),
            Some(1),
            &[(GgmlType::Q8_0, 4096), (GgmlType::F16, 64)],
        );
        assert_eq!(gguf_facts(&p).quant.as_deref(), Some("Q8_0"));
        let p = gguf(
            d.path(),
            None,
            &[(GgmlType::Q6_K, 4096), (GgmlType::F32, 64)],
        );
        assert_eq!(gguf_facts(&p).quant.as_deref(), Some("Q6_K"));
    }

    #[test]
    fn directory_facts_fall_back_to_the_safetensors_headers() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::write(d.path().join("config.json"), r#"{"model_type": "bert"}"#).expect("cfg");
        let header = br#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[4,8],"data_offsets":[0,128]},"b":{"dtype":"F16","shape":[2],"data_offsets":[128,132]}}"#;
        let mut st = (header.len() as u64).to_le_bytes().to_vec();
        st.extend_from_slice(header);
        st.extend_from_slice(&[0u8; 132]);
        std::fs::write(d.path().join("model.safetensors"), st).expect("st");
        let f = dir_facts(d.path());
        assert_eq!(f.family.as_deref(), Some("bert"));
        assert_eq!(f.quant.as_deref(), Some("F32"));
        assert_eq!(f.parameters, Some(34));
    }
}
