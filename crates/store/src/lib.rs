//! owl's model store: one place that turns a model name into a GGUF file to load, for the
//! `owl` CLI and the server alike. It owns `$OWL_HOME` (pulled catalogue models, files put in
//! `models/`, derived-model manifests) and finds the models of Ollama's store and of the
//! Hugging Face cache in place, never copying their weights.
//!
//! Names: a path to a `.gguf`; a store or catalogue name (or alias); a derived model's name;
//! `ollama:[NAMESPACE/]MODEL[:TAG]`; `hf:ORG/REPO[:QUANT|:FILE]`. A trailing `:latest`
//! equals the bare name. A bare name no one else claims falls back to Ollama's store, so
//! `llama3.2:1b` finds what `ollama pull llama3.2:1b` fetched.

mod catalog;
mod derived;
mod error;
mod hf_cache;
mod hf_pull;
mod info;
mod names;
mod ollama;
mod resolved;
mod unzip;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use catalog::{find_entry, CatalogEntry, Source, CATALOG, DEFAULT_MODEL};
pub use derived::{DerivedSpec, KNOWN_PARAMS};
pub use error::StoreError;
pub use hf_pull::Hub;
pub use info::{gguf_info, ModelFormat, ModelInfo, Origin};
pub use names::{strip_latest, validate_new as validate_name, HF_PREFIX, OLLAMA_PREFIX};
pub use resolved::{Defaults, Resolved};

/// What a fetch reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum PullEvent {
    Status(String),
    Progress {
        file: String,
        completed: u64,
        total: u64,
    },
}

/// The directories the store reads.
#[derive(Debug, Clone)]
pub struct Roots {
    /// `$OWL_HOME`, or `~/.owl`: `models/` and `manifests/`.
    pub owl: PathBuf,
    /// Ollama's models directory (`$OLLAMA_MODELS`, or `~/.ollama/models`).
    pub ollama: Option<PathBuf>,
    /// The Hugging Face hub cache (`$HF_HUB_CACHE`, `$HF_HOME/hub`, or
    /// `~/.cache/huggingface/hub`).
    pub hf: Option<PathBuf>,
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl Roots {
    /// The directories named by the environment (missing directories are fine).
    pub fn from_env() -> Result<Roots, StoreError> {
        let home = env_path("HOME");
        let owl = match env_path("OWL_HOME") {
            Some(p) => p,
            None => home
                .as_ref()
                .ok_or(StoreError::NoHome { var: "OWL_HOME" })?
                .join(".owl"),
        };
        let ollama = env_path("OLLAMA_MODELS")
            .or_else(|| home.as_ref().map(|h| h.join(".ollama").join("models")));
        let hf = env_path("HF_HUB_CACHE")
            .or_else(|| env_path("HF_HOME").map(|h| h.join("hub")))
            .or_else(|| env_path("XDG_CACHE_HOME").map(|c| c.join("huggingface").join("hub")))
            .or_else(|| {
                home.as_ref()
                    .map(|h| h.join(".cache").join("huggingface").join("hub"))
            });
        Ok(Roots { owl, ollama, hf })
    }
}

/// The model store. Cheap to build; every call reads the disk afresh.
#[derive(Debug, Clone)]
pub struct Store {
    roots: Roots,
    hub: Hub,
}

impl Store {
    pub fn from_env() -> Result<Store, StoreError> {
        Ok(Store::new(Roots::from_env()?).with_hub(Hub::from_env()))
    }

    /// A store over `roots`, pulling from huggingface.co (see [`Store::with_hub`]).
    pub fn new(roots: Roots) -> Store {
        Store {
            roots,
            hub: Hub::default(),
        }
    }

    /// The Hub `pull hf:…` downloads from (`from_env` reads `HF_ENDPOINT` and `HF_TOKEN`).
    pub fn with_hub(mut self, hub: Hub) -> Store {
        self.hub = hub;
        self
    }

    pub fn roots(&self) -> &Roots {
        &self.roots
    }

    /// Where pulled catalogue models and owl's own GGUF files live.
    pub fn models_dir(&self) -> PathBuf {
        self.roots.owl.join("models")
    }

    /// Whether the catalogue model `entry` has been pulled.
    pub fn is_stored(&self, entry: &CatalogEntry) -> bool {
        let p = self.models_dir().join(entry.file_name);
        if entry.is_dir() {
            p.join("config.json").is_file()
        } else {
            p.is_file()
        }
    }

    /// Every model found, sorted by name.
    pub fn list(&self) -> Vec<ModelInfo> {
        let mut out = self.owl_files();
        for m in derived::all(&self.roots.owl) {
            out.push(self.derived_info(&m));
        }
        if let Some(root) = &self.roots.ollama {
            out.extend(ollama::scan(root).iter().map(|m| m.info()));
        }
        if let Some(root) = &self.roots.hf {
            out.extend(hf_cache::scan(root).iter().filter_map(|m| m.info()));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// GGUF files in `models/`: catalogue models under their names, others by file stem.
    fn owl_files(&self) -> Vec<ModelInfo> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(self.models_dir()) else {
            return out;
        };
        for e in rd.filter_map(|e| e.ok()) {
            let Ok(file) = e.file_name().into_string() else {
                continue;
            };
            if file.starts_with('.') || !file.to_ascii_lowercase().ends_with(".gguf") {
                continue;
            }
            let (name, origin) = match catalog::entry_for_file(&file) {
                Some(c) => (c.name.to_string(), Origin::Catalog),
                None => (file[..file.len() - 5].to_string(), Origin::Owl),
            };
            out.extend(info::gguf_info(name, &e.path(), origin));
        }
        // Catalogue models that are Hugging Face directories.
        for entry in CATALOG.iter().filter(|e| e.is_dir() && self.is_stored(e)) {
            let path = self.models_dir().join(entry.file_name);
            let Some((_, modified)) = info::stat(&path) else {
                continue;
            };
            let size = hf_cache::walk(&path)
                .iter()
                .filter_map(|(_, p)| info::stat(p))
                .map(|(s, _)| s)
                .sum();
            let facts = info::dir_facts(&path);
            out.push(ModelInfo {
                name: entry.name.to_string(),
                digest: info::cheap_digest(&path, size, modified),
                path,
                size,
                format: ModelFormat::SafetensorsDir,
                family: facts.family,
                quant: facts.quant,
                parameters: facts.parameters,
                modified,
                origin: Origin::Catalog,
            });
        }
        out
    }

    fn derived_info(&self, m: &derived::Manifest) -> ModelInfo {
        let manifest = derived::path(&self.roots.owl, &m.name);
        let modified = info::stat(&manifest).map_or(std::time::SystemTime::UNIX_EPOCH, |(_, t)| t);
        let base = self
            .resolve(&m.name)
            .ok()
            .and_then(|r| info::gguf_info(r.name.clone(), &r.path, Origin::Owl));
        let mut h = Sha256::new();
        h.update(std::fs::read(&manifest).unwrap_or_default());
        h.update(base.as_ref().map(|b| b.digest.clone()).unwrap_or_default());
        let digest = info::hex(&h.finalize());
        let origin = Origin::Derived {
            from: m.spec.from.clone(),
        };
        match base {
            Some(b) => ModelInfo {
                name: m.name.clone(),
                modified,
                origin,
                digest,
                ..b
            },
            None => ModelInfo {
                name: m.name.clone(),
                path: manifest,
                size: 0,
                format: ModelFormat::Gguf,
                family: None,
                quant: None,
                parameters: None,
                modified,
                origin,
                digest,
            },
        }
    }

    /// Resolves `name` to a GGUF to load. Never fetches.
    pub fn resolve(&self, name: &str) -> Result<Resolved, StoreError> {
        self.resolve_in(name, &mut Vec::new())
    }

    /// Resolves `name`; `chain` holds the derived models being resolved above it.
    fn resolve_in(&self, name: &str, chain: &mut Vec<String>) -> Result<Resolved, StoreError> {
        let plain = |name: String, path: PathBuf| Resolved {
            lineage: vec![name.clone()],
            name,
            path,
            defaults: Defaults::default(),
        };
        let prefixed = name.starts_with(OLLAMA_PREFIX) || name.starts_with(HF_PREFIX);
        let path_like = !prefixed
            && (name.contains(['/', '\\'])
                || name.starts_with('.')
                || name.to_ascii_lowercase().ends_with(".gguf"));
        if path_like {
            if let Some(r) = path_model(name)? {
                return Ok(plain(name.to_string(), r));
            }
        }
        let n = strip_latest(name);
        if chain.iter().any(|c| c == n) {
            let mut cycle = chain.clone();
            cycle.push(n.to_string());
            return Err(StoreError::Cycle {
                name: cycle[0].clone(),
                chain: cycle,
            });
        }
        if let Some(rest) = name.strip_prefix(OLLAMA_PREFIX) {
            let root = self.roots.ollama.as_deref().ok_or_else(|| {
                StoreError::not_found(name, "no Ollama models directory is configured")
            })?;
            let m = ollama::find(root, rest)?;
            return Ok(Resolved {
                lineage: vec![m.name.clone()],
                name: m.name,
                path: m.blob,
                defaults: m.defaults,
            });
        }
        if let Some(rest) = name.strip_prefix(HF_PREFIX) {
            let root = self.roots.hf.as_deref().ok_or_else(|| {
                StoreError::not_found(name, "no Hugging Face cache directory is configured")
            })?;
            let m = hf_cache::find(root, rest)?;
            return Ok(plain(m.name(), m.path));
        }
        if let Some(m) = derived::read(&self.roots.owl, n)? {
            chain.push(n.to_string());
            let parent = self.resolve_in(&m.spec.from, chain)?;
            chain.pop();
            let mut defaults = parent.defaults;
            defaults.overlay(&m.spec.defaults());
            let mut lineage = vec![n.to_string()];
            lineage.extend(parent.lineage);
            return Ok(Resolved {
                name: n.to_string(),
                path: parent.path,
                defaults,
                lineage,
            });
        }
        if let Some(entry) = find_entry(n) {
            let path = self.models_dir().join(entry.file_name);
            // A directory entry (a Hugging Face model, read by owl-hf) or a GGUF file.
            if (entry.is_dir() && self.is_stored(entry)) || (!entry.is_dir() && path.is_file()) {
                return Ok(plain(entry.name.to_string(), path));
            }
            return Err(StoreError::NotPulled {
                name: entry.name.to_string(),
            });
        }
        if !path_like && !n.is_empty() && !n.contains("..") {
            for f in [format!("{n}.gguf"), n.to_string()] {
                let p = self.models_dir().join(&f);
                if p.is_file() {
                    return Ok(plain(n.to_string(), p));
                }
            }
        }
        if let Some(root) = self.roots.ollama.as_deref() {
            if let Ok(m) = ollama::find(root, n) {
                return Ok(Resolved {
                    lineage: vec![m.name.clone()],
                    name: m.name,
                    path: m.blob,
                    defaults: m.defaults,
                });
            }
        }
        if !path_like {
            if let Some(p) = path_model(name)? {
                return Ok(plain(name.to_string(), p));
            }
        }
        if name.starts_with(['/', '.']) || name.to_ascii_lowercase().ends_with(".gguf") {
            return Err(StoreError::NoFile { path: name.into() });
        }
        let known: Vec<&str> = CATALOG.iter().map(|e| e.name).collect();
        Err(StoreError::not_found(
            name,
            format!(
                "give a path to a .gguf file, a name from `owl list`, ollama:NAME, hf:ORG/REPO, or one of: {}",
                known.join(", ")
            ),
        ))
    }

    /// Resolves `name` (the default model when `None`), fetching a catalogue model on first
    /// use.
    pub fn resolve_or_fetch(
        &self,
        name: Option<&str>,
        progress: &mut dyn FnMut(&PullEvent),
    ) -> Result<Resolved, StoreError> {
        let name = name.unwrap_or(DEFAULT_MODEL);
        let mut fetched = Vec::new();
        loop {
            match self.resolve(name) {
                Err(StoreError::NotPulled { name: missing }) if !fetched.contains(&missing) => {
                    let Some(entry) = find_entry(&missing) else {
                        return Err(StoreError::NotPulled { name: missing });
                    };
                    catalog::fetch(entry, &self.models_dir(), progress)?;
                    fetched.push(missing);
                }
                r => return r,
            }
        }
    }

    /// Fetches a catalogue model or `hf:ORG/REPO[:QUANT|:FILE]`; for a safetensors repository
    /// (or a catalogue model that is a Hugging Face directory, e.g. `all-minilm`) `path` is its
    /// directory (owl cannot run it yet).
    pub fn pull(
        &self,
        name: &str,
        progress: &mut dyn FnMut(&PullEvent),
    ) -> Result<Resolved, StoreError> {
        if let Some(rest) = name.strip_prefix(HF_PREFIX) {
            let root = self.roots.hf.as_deref().ok_or_else(|| {
                StoreError::not_found(name, "no Hugging Face cache directory is configured")
            })?;
            let path = hf_pull::pull(&self.hub, root, rest, progress)?;
            if path.is_file() {
                if let Ok(r) = self.resolve(name) {
                    if r.path == path {
                        return Ok(r);
                    }
                }
            }
            let (repo, _) = hf_cache::parse(rest)?;
            let shown = match path.file_name() {
                Some(f) if path.is_file() => format!("{HF_PREFIX}{repo}:{}", f.to_string_lossy()),
                _ => format!("{HF_PREFIX}{repo}"),
            };
            return Ok(Resolved {
                lineage: vec![shown.clone()],
                name: shown,
                path,
                defaults: Defaults::default(),
            });
        }
        if let Some(entry) = find_entry(name) {
            if self.is_stored(entry) {
                progress(&PullEvent::Status(format!(
                    "{} is already in the store",
                    entry.name
                )));
            } else {
                catalog::fetch(entry, &self.models_dir(), progress)?;
            }
            if entry.is_dir() {
                // A Hugging Face directory: pulled and listed, not resolvable to a GGUF.
                let name = entry.name.to_string();
                return Ok(Resolved {
                    lineage: vec![name.clone()],
                    name,
                    path: self.models_dir().join(entry.file_name),
                    defaults: Defaults::default(),
                });
            }
            return self.resolve(entry.name);
        }
        match self.resolve_or_fetch(Some(name), progress) {
            Ok(r) => Ok(r),
            Err(StoreError::NotFound { .. }) => Err(StoreError::not_found(
                name,
                "owl pulls catalogue models (see `owl list`) and hf:ORG/REPO[:QUANT|:FILE]",
            )),
            Err(e) => Err(e),
        }
    }

    /// Removes owl's own file or a derived model's manifest. Models in Ollama's store or the
    /// Hugging Face cache belong to those tools and are refused.
    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        let n = strip_latest(name);
        if let Some(rest) = n.strip_prefix(OLLAMA_PREFIX) {
            return Err(not_owned_ollama(name, rest));
        }
        if n.starts_with(HF_PREFIX) {
            return Err(not_owned_hf(name));
        }
        if derived::read(&self.roots.owl, n)?.is_some() {
            self.refuse_if_used(n, &[n])?;
            let p = derived::path(&self.roots.owl, n);
            return std::fs::remove_file(&p).map_err(|e| StoreError::io("remove", p, e));
        }
        let file = if let Some(entry) = find_entry(n) {
            let mut names = vec![entry.name];
            names.extend(entry.aliases);
            self.refuse_if_used(entry.name, &names)?;
            let p = self.models_dir().join(entry.file_name);
            if entry.is_dir() && p.is_dir() {
                return std::fs::remove_dir_all(&p).map_err(|e| StoreError::io("remove", p, e));
            }
            Some(p)
        } else if !n.is_empty() && !n.contains(['/', '\\']) && !n.contains("..") {
            self.refuse_if_used(n, &[n])?;
            [format!("{n}.gguf"), n.to_string()]
                .into_iter()
                .map(|f| self.models_dir().join(f))
                .find(|p| p.is_file())
        } else {
            None
        };
        if let Some(p) = file.filter(|p| p.is_file()) {
            return std::fs::remove_file(&p).map_err(|e| StoreError::io("remove", p, e));
        }
        if let Ok(r) = self.resolve(n) {
            if let Some(rest) = r.name.strip_prefix(OLLAMA_PREFIX) {
                return Err(not_owned_ollama(&r.name, rest));
            }
            return Err(StoreError::NotOwned {
                name: name.to_string(),
                owner: "the file system, not owl's store",
                how: format!("delete {} yourself if you mean to", r.path.display()),
            });
        }
        Err(StoreError::not_found(
            name,
            "not in owl's store (see `owl list`)",
        ))
    }

    /// Fails if a derived model is based on any of `names`.
    fn refuse_if_used(&self, name: &str, names: &[&str]) -> Result<(), StoreError> {
        let dependents: Vec<String> = derived::all(&self.roots.owl)
            .into_iter()
            .filter(|m| names.contains(&strip_latest(&m.spec.from)))
            .map(|m| m.name)
            .collect();
        if dependents.is_empty() {
            Ok(())
        } else {
            Err(StoreError::InUse {
                name: name.to_string(),
                dependents,
            })
        }
    }

    /// Makes `to` a derived model of `from` with no defaults of its own.
    pub fn copy(&self, from: &str, to: &str) -> Result<ModelInfo, StoreError> {
        self.create(
            to,
            &DerivedSpec {
                from: from.to_string(),
                ..DerivedSpec::default()
            },
        )
    }

    /// Creates (or replaces) the derived model `name`.
    pub fn create(&self, name: &str, spec: &DerivedSpec) -> Result<ModelInfo, StoreError> {
        let n = strip_latest(name);
        names::validate_new(n)?;
        if let Some(e) = find_entry(n) {
            return Err(StoreError::Exists {
                name: n.to_string(),
                what: format!("a catalogue model name ({})", e.name),
            });
        }
        if derived::read(&self.roots.owl, n)?.is_none() {
            if let Ok(r) = self.resolve(n) {
                return Err(StoreError::Exists {
                    name: n.to_string(),
                    what: r.path.display().to_string(),
                });
            }
        }
        let mut spec = spec.clone();
        spec.check(n)?;
        for a in &mut spec.adapters {
            if let Ok(abs) = std::fs::canonicalize(&*a) {
                *a = abs;
            }
        }
        let from_path = Path::new(&spec.from);
        let from_is_path = !spec.from.starts_with(OLLAMA_PREFIX)
            && !spec.from.starts_with(HF_PREFIX)
            && from_path.is_file()
            && (spec.from.contains(['/', '\\'])
                || spec.from.to_ascii_lowercase().ends_with(".gguf"));
        spec.from = if from_is_path {
            std::fs::canonicalize(from_path)
                .map_err(|e| StoreError::io("read", from_path, e))?
                .to_string_lossy()
                .into_owned()
        } else {
            strip_latest(&spec.from).to_string()
        };
        if spec.from.is_empty() {
            return Err(StoreError::InvalidName {
                name: spec.from.clone(),
                reason: "a derived model needs a base model".into(),
            });
        }
        match self.resolve(&spec.from) {
            Ok(parent) => {
                if parent.lineage.iter().any(|l| l == n) {
                    let mut chain = vec![n.to_string()];
                    chain.extend(parent.lineage);
                    return Err(StoreError::Cycle {
                        name: n.to_string(),
                        chain,
                    });
                }
            }
            // A catalogue base is fetched on first use.
            Err(StoreError::NotPulled { .. }) => {}
            Err(e) => return Err(e),
        }
        let m = derived::Manifest {
            name: n.to_string(),
            spec,
        };
        derived::write(&self.roots.owl, &m)?;
        Ok(self.derived_info(&m))
    }
}

/// A GGUF file at `name`, or a Hugging Face directory (one with `config.json`), if it is one.
fn path_model(name: &str) -> Result<Option<PathBuf>, StoreError> {
    let p = Path::new(name);
    if p.is_file() || (p.is_dir() && p.join("config.json").is_file()) {
        return Ok(Some(p.to_path_buf()));
    }
    Ok(None)
}

fn not_owned_ollama(name: &str, rest: &str) -> StoreError {
    StoreError::NotOwned {
        name: name.to_string(),
        owner: "Ollama's store (owl only reads it)",
        how: format!("use `ollama rm {rest}`"),
    }
}

fn not_owned_hf(name: &str) -> StoreError {
    StoreError::NotOwned {
        name: name.to_string(),
        owner: "the Hugging Face cache (owl only reads it)",
        how: "use `hf cache delete` (or `huggingface-cli delete-cache`)".into(),
    }
}
