//! [`Catalog`]: what a client may name. The server asks it to turn a request's `model` into
//! a file to load and to list everything for `/v1/models` and `/api/tags`.
//!
//! The server does not walk stores itself: `owl serve` hands it a catalog over owl's model
//! store (its own files, derived models, Ollama's store and the Hugging Face cache found in
//! place) plus the files named with `--model`; tests hand it a few fixture files. A catalog is
//! asked on every request that names a model not loaded yet, so it always reflects the store
//! as it is now (a model pulled a second ago is servable at once).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One servable model, as a catalog describes it.
#[derive(Clone, Debug, Default)]
pub struct ModelSpec {
    /// The id clients name and `/v1/models` lists.
    pub id: String,
    /// The GGUF file.
    pub path: PathBuf,
    /// Bytes on disk.
    pub size: u64,
    /// Unix seconds of the last change.
    pub modified: u64,
    /// `general.architecture` (llama, qwen2, …).
    pub family: Option<String>,
    /// Weight format, e.g. `Q4_K_M`.
    pub quant: Option<String>,
    pub parameters: Option<u64>,
    /// Where it was found (`owl`, `ollama`, `hf:ORG/REPO`, `derived from X`, `file`).
    pub origin: String,
    /// A stable hex id of the model (Ollama clients show it).
    pub digest: String,
    /// What a derived model adds to its base.
    pub defaults: ModelDefaults,
    /// A LoRA adapter (a llama.cpp GGUF adapter or a PEFT directory) applied over `path`'s
    /// weights at scale 1 to every request for this id (a derived model's `--adapter`). The
    /// pool loads it into this id's engine; a base and its derived model loaded side by side
    /// have an engine each (their weights are one mapping of the same file).
    pub adapter: Option<PathBuf>,
}

/// A derived model's defaults: a system prompt used when a conversation has none, sampling
/// options (Ollama's names) that a request's own values override, and a chat template that
/// replaces the file's.
#[derive(Clone, Debug, Default)]
pub struct ModelDefaults {
    pub system: Option<String>,
    pub params: BTreeMap<String, Value>,
    pub template: Option<String>,
    /// The chain of models this one derives from, itself first.
    pub lineage: Vec<String>,
}

/// Why a name does not give a servable model, or a store operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogError {
    /// Nothing by that name (404).
    NotFound,
    /// Found, or asked for, but it cannot be done; the message says why (400).
    Unusable(String),
    /// The store failed (a download, a write); the message says why (500).
    Failed(String),
}

/// Progress of a pull, as the store reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullProgress {
    Status(String),
    Bytes {
        file: String,
        completed: u64,
        total: u64,
    },
}

/// A derived model to record (Ollama's `/api/create`, `owl create`).
#[derive(Clone, Debug, Default)]
pub struct CreateRequest {
    pub from: String,
    pub system: Option<String>,
    pub params: BTreeMap<String, Value>,
    pub template: Option<String>,
    pub adapters: Vec<PathBuf>,
}

impl CatalogError {
    /// The API error for this failure about model `name`.
    pub fn into_api(self, name: &str) -> crate::error::ApiError {
        use crate::error::ApiError;
        match self {
            CatalogError::NotFound => ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "invalid_request_error",
                format!(
                    "model '{name}' not found: GET /v1/models lists the models this server has"
                ),
            )
            .with_param("model")
            .with_code("model_not_found"),
            CatalogError::Unusable(why) => ApiError::bad_param("model", why),
            CatalogError::Failed(why) => ApiError::server(why),
        }
    }
}

fn read_only() -> CatalogError {
    CatalogError::Unusable(
        "this server's model list is fixed (started without a model store)".into(),
    )
}

/// What the server may load, by name, and (for a store) how to change it.
pub trait Catalog: Send + Sync + 'static {
    /// The model `name` names.
    fn resolve(&self, name: &str) -> Result<ModelSpec, CatalogError>;
    /// Every model a client may name, sorted by id.
    fn list(&self) -> Vec<ModelSpec>;
    /// Fetches `name` into the store.
    fn pull(
        &self,
        _name: &str,
        _progress: &mut dyn FnMut(PullProgress),
    ) -> Result<ModelSpec, CatalogError> {
        Err(read_only())
    }
    /// Removes `name` from the store.
    fn remove(&self, _name: &str) -> Result<(), CatalogError> {
        Err(read_only())
    }
    /// Makes `to` a model equal to `from` (no weights are copied).
    fn copy(&self, _from: &str, _to: &str) -> Result<(), CatalogError> {
        Err(read_only())
    }
    /// Records a derived model.
    fn create(&self, _name: &str, _req: &CreateRequest) -> Result<ModelSpec, CatalogError> {
        Err(read_only())
    }
}

/// A fixed set of GGUF files, each known by its file name without `.gguf` (what `--model
/// PATH` serves, and what tests use).
pub struct FileCatalog {
    specs: Vec<ModelSpec>,
}

impl FileCatalog {
    pub fn new(paths: &[PathBuf]) -> FileCatalog {
        let mut specs: Vec<ModelSpec> = paths.iter().map(|p| file_spec(p)).collect();
        specs.sort_by(|a, b| a.id.cmp(&b.id));
        specs.dedup_by(|a, b| a.id == b.id);
        FileCatalog { specs }
    }
}

impl Catalog for FileCatalog {
    fn resolve(&self, name: &str) -> Result<ModelSpec, CatalogError> {
        self.specs
            .iter()
            .find(|s| same_name(&s.id, name))
            .cloned()
            .ok_or(CatalogError::NotFound)
    }

    fn list(&self) -> Vec<ModelSpec> {
        self.specs.clone()
    }
}

/// The id of a model file: its name without `.gguf`.
pub fn file_id(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".to_string())
}

/// A spec for a plain file (size and time from the file system).
pub fn file_spec(path: &Path) -> ModelSpec {
    let meta = std::fs::metadata(path).ok();
    let modified = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let size = meta.as_ref().map_or(0, |m| m.len());
    let id = file_id(path);
    ModelSpec {
        digest: format!(
            "{:016x}{:016x}",
            fnv(path.to_string_lossy().as_bytes()),
            size ^ modified
        ),
        defaults: ModelDefaults {
            lineage: vec![id.clone()],
            ..ModelDefaults::default()
        },
        id,
        path: path.to_path_buf(),
        size,
        modified,
        origin: "file".into(),
        ..ModelSpec::default()
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether a request's `name` names the model `id`: exactly, with `.gguf`, or with Ollama's
/// default tag `:latest`.
pub fn same_name(id: &str, name: &str) -> bool {
    let name = name.strip_suffix(":latest").unwrap_or(name);
    let id = id.strip_suffix(":latest").unwrap_or(id);
    name == id || name.strip_suffix(".gguf") == Some(id)
}
