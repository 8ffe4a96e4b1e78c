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
    let dominant = dominant_type(&g);
    // `general.file_type` is more specific (Q4_K_M, not Q4_K) but some writers leave it stale
    // (a quantized file still saying F16): trust it only when the weights agree.
    let quant = match (
        g.get_u64("general.file_type").and_then(file_type_name),
        dominant,
    ) {
        (Some(ft), Some(d)) if ft.starts_with(d.as_str()) => Some(ft.to_string()),
        (Some(ft), None) => Some(ft.to_string()),
        (_, d) => d,
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

/// Family (`model_type`) and weight type (`torch_dtype`) of a Hugging Face directory, from its
/// `config.json`; `None`s when it cannot be read.
pub fn dir_facts(dir: &Path) -> GgufFacts {
    let Some(cfg) = std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return GgufFacts::default();
    };
    let s = |k: &str| cfg.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let quant = s("torch_dtype").or_else(|| s("dtype")).map(|d| {
        match d.as_str() {
            "bfloat16" => "BF16",
            "float16" => "F16",
            "float32" => "F32",
            other => other,
        }
        .to_string()
    });
    GgufFacts {
        family: s("model_type"),
        quant,
        parameters: None,
    }
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

/// The tensor type holding the most weights.
fn dominant_type(g: &GgufFile) -> Option<String> {
    let mut bytes: BTreeMap<&'static str, u64> = BTreeMap::new();
    for t in g.tensors() {
        *bytes.entry(t.ty.name()).or_default() += t.n_elements;
    }
    bytes
        .into_iter()
        .max_by_key(|&(_, b)| b)
        .map(|(name, _)| name.to_ascii_uppercase())
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
