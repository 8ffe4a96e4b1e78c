//! What resolving a name gives a front end: the GGUF to load, the defaults a derived (or
//! Ollama) model carries, and its lineage. Defaults merge down a chain: a child's system
//! prompt and template replace its parent's, params merge key by key, adapters accumulate.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Settings a model carries for front ends to apply when the request does not say otherwise.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Defaults {
    pub system: Option<String>,
    /// temperature, top_k, top_p, min_p, num_predict, num_ctx, seed, stop, repeat_penalty…
    /// as given.
    pub params: BTreeMap<String, serde_json::Value>,
    /// A Jinja chat template replacing the GGUF's.
    pub template: Option<String>,
    /// LoRA adapters to apply over the weights.
    pub adapters: Vec<PathBuf>,
}

impl Defaults {
    /// `self` (a parent's) overridden by `child`.
    pub fn overlay(&mut self, child: &Defaults) {
        if child.system.is_some() {
            self.system.clone_from(&child.system);
        }
        if child.template.is_some() {
            self.template.clone_from(&child.template);
        }
        for (k, v) in &child.params {
            self.params.insert(k.clone(), v.clone());
        }
        self.adapters.extend(child.adapters.iter().cloned());
    }

    pub fn is_empty(&self) -> bool {
        *self == Defaults::default()
    }
}

/// A model name resolved to something loadable.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The name as resolved (a path, or the canonical store name).
    pub name: String,
    /// The GGUF to load.
    pub path: PathBuf,
    pub defaults: Defaults,
    /// `[name, parent, grandparent, ...]`, ending with the base model's name.
    pub lineage: Vec<String>,
}
