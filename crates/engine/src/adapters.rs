//! LoRA adapters in the serving engine: loaded off the engine thread, registered on it by
//! name, held by the sequences that use them.
//!
//! Reading an adapter file is the slow part, so [`AdapterBase::open`] does it on the caller's
//! thread (an HTTP handler's blocking task, the CLI) against what it keeps of the base model
//! (its file, for PEFT's head counts, and its adaptable matrices); the finished [`Adapter`]
//! then goes to the engine thread, which owns the registry like all other engine state. A
//! request names an adapter; the engine resolves the name when the request arrives and the
//! sequence keeps the `Arc` until it ends, so unloading a name never disturbs a running
//! sequence: the adapter is freed when the last of its sequences finishes.
//!
//! Every load gets a fresh [`Adapter::id`], never reused: the prefix cache keys K/V rows by it,
//! so rows computed with one adapter (or the base model) are never reused by another, nor by
//! a later adapter loaded under the same name.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use owl_gguf::GgufFile;
use owl_model::lora::LoraTarget;
use owl_model::{LoraAdapter, Runner};

/// The id the base model's sequences carry; adapters count from 1.
pub(crate) const BASE: u64 = 0;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A loaded LoRA adapter and the name requests use for it.
#[derive(Debug)]
pub struct Adapter {
    /// Unique for the life of the process (prefix-cache key).
    pub id: u64,
    pub name: String,
    /// The path it was read from.
    pub source: String,
    pub lora: LoraAdapter,
}

/// A registered adapter as listings show it.
#[derive(Clone, Debug, PartialEq)]
pub struct AdapterInfo {
    pub name: String,
    pub source: String,
    pub scale: f32,
}

impl Adapter {
    pub fn info(&self) -> AdapterInfo {
        AdapterInfo {
            name: self.name.clone(),
            source: self.source.clone(),
            scale: self.lora.user_scale,
        }
    }
}

/// Why an adapter could not be loaded, registered or unloaded.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("cannot open LoRA adapter {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: owl_hf::HfError,
    },
    #[error("cannot open the base model {path}: {source}")]
    Base {
        path: String,
        #[source]
        source: owl_hf::HfError,
    },
    #[error(transparent)]
    Lora(#[from] owl_model::LoraError),
    #[error("a LoRA adapter named '{0}' is already loaded")]
    Exists(String),
    #[error("no LoRA adapter named '{0}' is loaded")]
    NotLoaded(String),
    #[error("the engine is shutting down")]
    ShuttingDown,
}

/// What loading an adapter needs of the base model.
pub struct AdapterBase {
    file: Arc<GgufFile>,
    arch: String,
    targets: Vec<LoraTarget>,
}

impl AdapterBase {
    pub fn new(runner: &Runner) -> AdapterBase {
        AdapterBase {
            file: Arc::clone(&runner.file),
            arch: runner.model.hparams().arch.clone(),
            targets: runner.model.lora_targets(),
        }
    }

    /// Reads the adapter at `path` (a llama.cpp GGUF adapter or a PEFT directory) for the
    /// base model, scaled by `scale`.
    pub fn open(&self, name: &str, path: &Path, scale: f32) -> Result<Adapter, AdapterError> {
        let lora = self.lora(path, scale)?;
        Ok(Adapter {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: name.to_string(),
            source: lora.source.clone(),
            lora,
        })
    }

    /// The adapter at `path` alone, for a caller that drives the [`Runner`] itself
    /// (`Runner::forward_with`).
    pub fn lora(&self, path: &Path, scale: f32) -> Result<LoraAdapter, AdapterError> {
        let shown = path.display().to_string();
        let file = owl_hf::open_adapter(path, &self.file).map_err(|e| AdapterError::Open {
            path: shown.clone(),
            source: e,
        })?;
        Ok(owl_model::lora::load(
            &file,
            &shown,
            &self.targets,
            &self.arch,
            scale,
        )?)
    }
}

/// What an adapter holds, as `owl show` and `owl create` report it.
#[derive(Clone, Debug, PartialEq)]
pub struct AdapterSummary {
    /// `gguf` (llama.cpp's adapter file) or `peft` (a PEFT directory).
    pub format: &'static str,
    /// The distinct ranks of its pairs, smallest first.
    pub ranks: Vec<usize>,
    /// `adapter.lora.alpha` (0: none; the scale is then the user's alone).
    pub alpha: f32,
    /// The roles it adapts (`attn_q`, `ffn_down`, ...).
    pub targets: Vec<&'static str>,
    /// How many layers it adapts.
    pub layers: usize,
    /// How many matrices it adapts.
    pub pairs: usize,
}

/// Reads the adapter at `adapter` against the base model at `base` without loading the base
/// (its file's header gives the matrices' names and shapes, see
/// [`owl_model::lora::targets_in_file`]): every tensor must pair up and match a base matrix.
/// An architecture owl cannot adapt, or a matrix the loaded model does not adapt (a fused or
/// mixture-of-experts one), is still refused when the model runs.
pub fn inspect_adapter(base: &Path, adapter: &Path) -> Result<AdapterSummary, AdapterError> {
    let base_file = owl_hf::open_model(base).map_err(|e| AdapterError::Base {
        path: base.display().to_string(),
        source: e,
    })?;
    let arch = base_file
        .get_str("general.architecture")
        .unwrap_or_default()
        .to_string();
    let targets = owl_model::lora::targets_in_file(&base_file);
    let shown = adapter.display().to_string();
    let file = owl_hf::open_adapter(adapter, &base_file).map_err(|e| AdapterError::Open {
        path: shown.clone(),
        source: e,
    })?;
    let lora = owl_model::lora::load(&file, &shown, &targets, &arch, 1.0)?;
    let mut ranks: Vec<usize> = lora.pairs().map(|(_, _, p)| p.rank).collect();
    ranks.sort_unstable();
    ranks.dedup();
    let mut layers: Vec<usize> = lora.pairs().map(|(l, _, _)| l).collect();
    layers.dedup();
    Ok(AdapterSummary {
        format: if adapter.is_dir() { "peft" } else { "gguf" },
        ranks,
        alpha: lora.alpha,
        targets: owl_model::lora::Target::ALL
            .into_iter()
            .filter(|t| lora.pairs().any(|(_, r, _)| r == *t))
            .map(|t| t.role())
            .collect(),
        layers: layers.len(),
        pairs: lora.n_pairs(),
    })
}

/// The engine thread's adapters, by name.
#[derive(Default)]
pub(crate) struct Registry {
    by_name: BTreeMap<String, Arc<Adapter>>,
}

impl Registry {
    pub fn add(&mut self, a: Arc<Adapter>) -> Result<(), AdapterError> {
        if self.by_name.contains_key(&a.name) {
            return Err(AdapterError::Exists(a.name.clone()));
        }
        self.by_name.insert(a.name.clone(), a);
        Ok(())
    }

    /// Forgets `name`; sequences that hold it keep it until they end.
    pub fn remove(&mut self, name: &str) -> Result<(), AdapterError> {
        self.by_name
            .remove(name)
            .map(drop)
            .ok_or_else(|| AdapterError::NotLoaded(name.to_string()))
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Adapter>> {
        self.by_name.get(name)
    }

    pub fn list(&self) -> Vec<AdapterInfo> {
        self.by_name.values().map(|a| a.info()).collect()
    }
}
