//! What `owl serve` serves: the whole store (owl's files, derived models, Ollama's store and
//! the Hugging Face cache, found in place) plus the files named with `--model`, as the
//! server's [`Catalog`]. The server asks it on every request for a model not loaded yet, so a
//! model pulled or created a second ago is servable at once.

use std::path::{Path, PathBuf};

use owl_server::catalog::{file_spec, same_name, PullProgress};
use owl_server::{Catalog, CatalogError, ModelDefaults, ModelSpec};
use owl_store::{
    DerivedSpec, ModelFormat, ModelInfo, Origin, PullEvent, Resolved, Store, StoreError,
};

/// The store plus the models named on the command line (`(id, resolved)`, the first being
/// the default).
pub struct StoreCatalog {
    store: Store,
    named: Vec<(String, Resolved)>,
}

impl StoreCatalog {
    pub fn new(store: Store, named: Vec<(String, Resolved)>) -> StoreCatalog {
        StoreCatalog { store, named }
    }

    /// The store's facts about the file at `path`, if it lists it.
    fn info(&self, path: &Path) -> Option<ModelInfo> {
        self.store.list().into_iter().find(|i| i.path == path)
    }

    fn spec(
        &self,
        id: &str,
        r: &Resolved,
        info: Option<ModelInfo>,
    ) -> Result<ModelSpec, CatalogError> {
        let adapter = crate::models::adapter_of(r)
            .map_err(|e| CatalogError::Unusable(e.to_string()))?
            .map(Path::to_path_buf);
        // A file outside the store: its header still gives family, quant and size.
        let info = info.or_else(|| owl_store::gguf_info(id.to_string(), &r.path, Origin::Owl));
        let mut s = match info {
            Some(i) => from_info(&i),
            None => file_spec(&r.path),
        };
        s.id = id.to_string();
        s.adapter = adapter;
        s.defaults = ModelDefaults {
            system: r.defaults.system.clone(),
            params: r.defaults.params.clone(),
            template: r.defaults.template.clone(),
            lineage: if r.lineage.is_empty() {
                vec![id.to_string()]
            } else {
                r.lineage.clone()
            },
        };
        Ok(s)
    }
}

fn from_info(i: &ModelInfo) -> ModelSpec {
    ModelSpec {
        id: i.name.clone(),
        path: i.path.clone(),
        size: i.size,
        modified: i
            .modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        family: i.family.clone(),
        quant: i.quant.clone(),
        parameters: i.parameters,
        origin: i.origin.to_string(),
        digest: i.digest.clone(),
        defaults: ModelDefaults {
            lineage: vec![i.name.clone()],
            ..ModelDefaults::default()
        },
        adapter: None,
    }
}

fn catalog_error(e: StoreError) -> CatalogError {
    match e {
        StoreError::NotFound { .. } | StoreError::NoFile { .. } | StoreError::NotPulled { .. } => {
            CatalogError::NotFound
        }
        StoreError::Io { .. } | StoreError::Fetch { .. } | StoreError::Checksum { .. } => {
            CatalogError::Failed(e.to_string())
        }
        other => CatalogError::Unusable(other.to_string()),
    }
}

impl Catalog for StoreCatalog {
    fn resolve(&self, name: &str) -> Result<ModelSpec, CatalogError> {
        if let Some((id, r)) = self.named.iter().find(|(id, _)| same_name(id, name)) {
            return self.spec(id, r, self.info(&r.path));
        }
        let r = self.store.resolve(name).map_err(catalog_error)?;
        let info = self.store.list().into_iter().find(|i| i.name == r.name);
        let info = info.or_else(|| self.info(&r.path));
        self.spec(&r.name, &r, info)
    }

    fn list(&self) -> Vec<ModelSpec> {
        let all = self.store.list();
        let mut out: Vec<ModelSpec> = self
            .named
            .iter()
            .filter_map(|(id, r)| {
                let info = all.iter().find(|i| i.path == r.path).cloned();
                self.spec(id, r, info).ok()
            })
            .collect();
        for i in all.iter().filter(|i| i.format == ModelFormat::Gguf) {
            let shadowed = self
                .named
                .iter()
                .any(|(id, r)| (r.path == i.path && !is_derived(i)) || id == &i.name);
            if !shadowed {
                let mut s = from_info(i);
                if is_derived(i) {
                    // A derived model's defaults come with its resolution.
                    match self.store.resolve(&i.name) {
                        Ok(r) => match self.spec(&i.name, &r, Some(i.clone())) {
                            Ok(d) => s = d,
                            Err(_) => continue,
                        },
                        Err(_) => continue,
                    }
                }
                out.push(s);
            }
        }
        out
    }

    fn pull(
        &self,
        name: &str,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<ModelSpec, CatalogError> {
        let r = self
            .store
            .pull(name, &mut |e| {
                progress(match e {
                    PullEvent::Status(s) => PullProgress::Status(s.clone()),
                    PullEvent::Progress {
                        file,
                        completed,
                        total,
                    } => PullProgress::Bytes {
                        file: file.clone(),
                        completed: *completed,
                        total: *total,
                    },
                })
            })
            .map_err(catalog_error)?;
        let info = self.info(&r.path);
        self.spec(&r.name, &r, info)
    }

    fn remove(&self, name: &str) -> Result<(), CatalogError> {
        if self.named.iter().any(|(id, _)| same_name(id, name)) {
            return Err(CatalogError::Unusable(format!(
                "'{name}' was named on the command line (--model); stop the server to remove it"
            )));
        }
        self.store.remove(name).map_err(catalog_error)
    }

    fn copy(&self, from: &str, to: &str) -> Result<(), CatalogError> {
        let from = self.canonical(from);
        self.store
            .copy(&from, to)
            .map(|_| ())
            .map_err(catalog_error)
    }

    fn create(
        &self,
        name: &str,
        req: &owl_server::catalog::CreateRequest,
    ) -> Result<ModelSpec, CatalogError> {
        if let Some(t) = &req.template {
            owl_text::ChatTemplate::new(t, "", "").map_err(|e| {
                CatalogError::Unusable(format!("`template` must be a Jinja chat template (owl renders templates with minijinja, not Go templates): {e}"))
            })?;
        }
        let spec = DerivedSpec {
            from: self.canonical(&req.from),
            system: req.system.clone(),
            params: req.params.clone(),
            template: req.template.clone(),
            adapters: req.adapters.clone(),
        };
        crate::models::check_adapters(&self.store, &spec.from, &spec.adapters)
            .map_err(|e| CatalogError::Unusable(format!("{e:#}")))?;
        let i = self.store.create(name, &spec).map_err(catalog_error)?;
        Ok(from_info(&i))
    }
}

impl StoreCatalog {
    /// A `--model` file's id as a name the store knows (its path).
    fn canonical(&self, name: &str) -> String {
        match self.named.iter().find(|(id, _)| same_name(id, name)) {
            Some((_, r)) => r.path.display().to_string(),
            None => name.to_string(),
        }
    }
}

fn is_derived(i: &ModelInfo) -> bool {
    matches!(i.origin, Origin::Derived { .. })
}

/// The id a `--model` argument is served as: the file name without `.gguf` for a path, the
/// store's name otherwise.
pub fn served_id(arg: &str, r: &Resolved) -> String {
    let as_path = PathBuf::from(arg);
    if as_path.is_file() {
        owl_server::catalog::file_id(&as_path)
    } else {
        r.name.clone()
    }
}
