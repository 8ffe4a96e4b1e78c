//! Ollama's store, found in place and never copied: `manifests/<registry>/<namespace>/
//! <model>/<tag>` JSON files whose layers point at `blobs/sha256-<hex>`. The model layer is
//! a GGUF owl loads directly; system and params layers become `Defaults`; the template
//! layer is a Go template owl cannot use (it keeps the GGUF's Jinja template), so it is
//! ignored.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

use crate::info::{gguf_facts, stat, ModelFormat, ModelInfo, Origin};
use crate::names::OLLAMA_PREFIX;
use crate::{Defaults, StoreError};

const DEFAULT_REGISTRY: &str = "registry.ollama.ai";
const DEFAULT_NAMESPACE: &str = "library";
const MODEL: &str = "application/vnd.ollama.image.model";
const SYSTEM: &str = "application/vnd.ollama.image.system";
const PARAMS: &str = "application/vnd.ollama.image.params";
const ADAPTER: &str = "application/vnd.ollama.image.adapter";

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Layer {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: u64,
}

/// A model in Ollama's store.
pub struct OllamaModel {
    /// `ollama:MODEL:TAG` (or with namespace / host).
    pub name: String,
    /// The model layer's blob.
    pub blob: PathBuf,
    /// The model layer's digest, hex (without `sha256:`).
    pub digest: String,
    pub size: u64,
    pub modified: SystemTime,
    pub defaults: Defaults,
}

impl OllamaModel {
    pub fn info(&self) -> ModelInfo {
        let facts = gguf_facts(&self.blob);
        ModelInfo {
            name: self.name.clone(),
            path: self.blob.clone(),
            size: self.size,
            format: ModelFormat::Gguf,
            family: facts.family,
            quant: facts.quant,
            parameters: facts.parameters,
            modified: self.modified,
            origin: Origin::Ollama,
            digest: self.digest.clone(),
        }
    }
}

/// The store name of the manifest at `host/namespace/model/tag`.
fn display_name(host: &str, namespace: &str, model: &str, tag: &str) -> String {
    if host == DEFAULT_REGISTRY && namespace == DEFAULT_NAMESPACE {
        format!("{OLLAMA_PREFIX}{model}:{tag}")
    } else if host == DEFAULT_REGISTRY {
        format!("{OLLAMA_PREFIX}{namespace}/{model}:{tag}")
    } else {
        format!("{OLLAMA_PREFIX}{host}/{namespace}/{model}:{tag}")
    }
}

/// Splits `[HOST/][NAMESPACE/]MODEL[:TAG]` into its four parts (defaults filled in).
pub fn parse(name: &str) -> Option<[String; 4]> {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], &name[slash + i + 1..]),
        None => (name, "latest"),
    };
    let parts: Vec<&str> = path.split('/').collect();
    let (host, ns, model) = match parts.as_slice() {
        [m] => (DEFAULT_REGISTRY, DEFAULT_NAMESPACE, *m),
        [n, m] => (DEFAULT_REGISTRY, *n, *m),
        [h, n, m] => (*h, *n, *m),
        _ => return None,
    };
    let all = [host, ns, model, tag];
    if all
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains('\\'))
    {
        return None;
    }
    Some(all.map(str::to_string))
}

/// Reads the manifest at `path` (for the model named by the four parts).
fn read(root: &Path, parts: &[String; 4], path: &Path) -> Result<OllamaModel, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let blob = |digest: &str| root.join("blobs").join(digest.replace(':', "-"));
    let model = m
        .layers
        .iter()
        .find(|l| l.media_type == MODEL)
        .ok_or("the manifest has no model layer")?;
    let model_blob = blob(&model.digest);
    if !model_blob.is_file() {
        return Err(format!(
            "its model blob {} is missing",
            model_blob.display()
        ));
    }
    let mut defaults = Defaults::default();
    for l in &m.layers {
        match l.media_type.as_str() {
            SYSTEM => {
                let s = std::fs::read_to_string(blob(&l.digest)).map_err(|e| e.to_string())?;
                defaults.system = Some(s);
            }
            PARAMS => {
                let s = std::fs::read_to_string(blob(&l.digest)).map_err(|e| e.to_string())?;
                let v: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&s).map_err(|e| format!("its params layer: {e}"))?;
                defaults.params.extend(v);
            }
            ADAPTER => defaults.adapters.push(blob(&l.digest)),
            _ => {}
        }
    }
    let modified = stat(path).map_or(SystemTime::UNIX_EPOCH, |(_, t)| t);
    let size = if model.size > 0 {
        model.size
    } else {
        stat(&model_blob).map_or(0, |(s, _)| s)
    };
    Ok(OllamaModel {
        name: display_name(&parts[0], &parts[1], &parts[2], &parts[3]),
        blob: model_blob,
        digest: model
            .digest
            .strip_prefix("sha256:")
            .unwrap_or(&model.digest)
            .to_string(),
        size,
        modified,
        defaults,
    })
}

/// Every readable model in Ollama's store at `root` (unreadable manifests are skipped).
pub fn scan(root: &Path) -> Vec<OllamaModel> {
    let mut out = Vec::new();
    for (parts, path) in manifests(root) {
        if let Ok(m) = read(root, &parts, &path) {
            out.push(m);
        }
    }
    out
}

/// `(host, namespace, model, tag)` and path of every manifest file.
fn manifests(root: &Path) -> Vec<([String; 4], PathBuf)> {
    let mut out = Vec::new();
    let dirs = |p: &Path| -> Vec<(String, PathBuf)> {
        std::fs::read_dir(p)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
            .collect()
    };
    for (host, hp) in dirs(&root.join("manifests")) {
        for (ns, np) in dirs(&hp) {
            for (model, mp) in dirs(&np) {
                for (tag, tp) in dirs(&mp) {
                    if tp.is_file() {
                        out.push(([host.clone(), ns.clone(), model.clone(), tag], tp));
                    }
                }
            }
        }
    }
    out
}

/// The model `name` (without the `ollama:` prefix) in the store at `root`.
pub fn find(root: &Path, name: &str) -> Result<OllamaModel, StoreError> {
    let full = format!("{OLLAMA_PREFIX}{name}");
    let parts = parse(name).ok_or_else(|| StoreError::InvalidName {
        name: full.clone(),
        reason: "expected ollama:[HOST/][NAMESPACE/]MODEL[:TAG]".into(),
    })?;
    let exact = root
        .join("manifests")
        .join(&parts[0])
        .join(&parts[1])
        .join(&parts[2])
        .join(&parts[3]);
    // Ollama's names are case-insensitive; the files keep the case they were pulled with.
    let found = if exact.is_file() {
        Some((parts.clone(), exact))
    } else {
        manifests(root).into_iter().find(|(p, _)| {
            p.iter()
                .zip(parts.iter())
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
        })
    };
    let Some((parts, path)) = found else {
        return Err(StoreError::not_found(
            &full,
            format!("no such manifest in Ollama's store {}", root.display()),
        ));
    };
    read(root, &parts, &path).map_err(|reason| StoreError::BadManifest {
        name: full,
        path,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_with_defaults() {
        let p = |s: &str| parse(s).map(|a| a.join(" "));
        assert_eq!(
            p("llama3").as_deref(),
            Some("registry.ollama.ai library llama3 latest")
        );
        assert_eq!(p("me/m:1b").as_deref(), Some("registry.ollama.ai me m 1b"));
        assert_eq!(p("h:5000/me/m:q4").as_deref(), Some("h:5000 me m q4"));
        assert_eq!(p("a/b/c/d"), None);
        assert_eq!(p("../x"), None);
        assert_eq!(
            display_name("registry.ollama.ai", "library", "m", "t"),
            "ollama:m:t"
        );
    }
}
