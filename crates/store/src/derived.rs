//! Derived models: a name over another model with its own defaults (system prompt, sampling
//! params, chat template, adapters), like an Ollama Modelfile. Each is a small JSON manifest
//! in `$OWL_HOME/manifests/`; the weights are never copied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::names::{escape, unescape};
use crate::{Defaults, StoreError};

/// Parameters a derived model may set (the names Ollama's Modelfile uses).
pub const KNOWN_PARAMS: &[&str] = &[
    "frequency_penalty",
    "min_p",
    "num_ctx",
    "num_predict",
    "presence_penalty",
    "repeat_penalty",
    "seed",
    "stop",
    "temperature",
    "top_k",
    "top_p",
];

/// What `create` makes: a model over `from` with these defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DerivedSpec {
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, serde_json::Value>,
    /// A Jinja chat template (the text, not a path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adapters: Vec<PathBuf>,
}

impl DerivedSpec {
    /// This spec's own defaults (not yet merged with its parents').
    pub fn defaults(&self) -> Defaults {
        Defaults {
            system: self.system.clone(),
            params: self.params.clone(),
            template: self.template.clone(),
            adapters: self.adapters.clone(),
        }
    }

    /// Checks param names and that adapters exist.
    pub fn check(&self, name: &str) -> Result<(), StoreError> {
        for key in self.params.keys() {
            if !KNOWN_PARAMS.contains(&key.as_str()) {
                return Err(StoreError::UnknownParam {
                    name: name.to_string(),
                    key: key.clone(),
                    known: KNOWN_PARAMS.to_vec(),
                });
            }
        }
        for a in &self.adapters {
            // A llama.cpp GGUF adapter is a file, a PEFT adapter a directory.
            if !a.exists() {
                return Err(StoreError::MissingAdapter {
                    name: name.to_string(),
                    path: a.clone(),
                });
            }
        }
        Ok(())
    }
}

/// A manifest as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    #[serde(flatten)]
    pub spec: DerivedSpec,
}

pub fn dir(owl_root: &Path) -> PathBuf {
    owl_root.join("manifests")
}

pub fn path(owl_root: &Path, name: &str) -> PathBuf {
    dir(owl_root).join(format!("{}.json", escape(name)))
}

/// The manifest called `name`, if there is one.
pub fn read(owl_root: &Path, name: &str) -> Result<Option<Manifest>, StoreError> {
    let p = path(owl_root, name);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("read", p, e)),
    };
    let m: Manifest = serde_json::from_str(&text).map_err(|e| StoreError::BadManifest {
        name: name.to_string(),
        path: p.clone(),
        reason: e.to_string(),
    })?;
    Ok(Some(m))
}

/// Writes `m` atomically (a temporary file renamed over the old one).
pub fn write(owl_root: &Path, m: &Manifest) -> Result<(), StoreError> {
    let d = dir(owl_root);
    std::fs::create_dir_all(&d).map_err(|e| StoreError::io("create", &d, e))?;
    let p = path(owl_root, &m.name);
    let text = serde_json::to_string_pretty(m).map_err(|e| StoreError::BadManifest {
        name: m.name.clone(),
        path: p.clone(),
        reason: e.to_string(),
    })?;
    let tmp = d.join(format!(".{}.tmp", escape(&m.name)));
    std::fs::write(&tmp, text).map_err(|e| StoreError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, &p).map_err(|e| StoreError::io("write", &p, e))
}

/// Every readable manifest (its name taken from the file name, which is what resolves).
pub fn all(owl_root: &Path) -> Vec<Manifest> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir(owl_root)) else {
        return out;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let Ok(file) = e.file_name().into_string() else {
            continue;
        };
        let Some(stem) = file.strip_suffix(".json") else {
            continue;
        };
        if stem.starts_with('.') {
            continue;
        }
        let Some(name) = unescape(stem) else { continue };
        if let Ok(Some(m)) = read(owl_root, &name) {
            out.push(Manifest { name, spec: m.spec });
        }
    }
    out
}
