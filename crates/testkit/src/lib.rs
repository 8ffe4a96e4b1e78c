//! Test support shared by owl's crates (a dev-dependency, never part of the binary).
//!
//! One place for what integration tests used to copy: where the committed fixtures are, where
//! the downloaded default model is (tests that need it fail with instructions rather than skip),
//! and [`Stepper`], a forward-pass driver that feeds a prompt and then one token at a time and
//! hands back the logits, for comparing with llama.cpp's references. It is not a generation
//! loop (no sampling, no stopping): generation goes through `owl_engine` everywhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use owl_gguf::GgufFile;
use owl_kernels::Kernels;
use owl_model::{Batch, KvCache, LoadOptions, Logits, LogitsWanted, Runner};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/fixtures/<rel>` of the repository.
pub fn fixture_path(rel: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(rel)
}

/// A committed tiny random model: `tests/fixtures/arch/tiny-<name>.gguf` (SmolLM2's vocabulary
/// and chat template, a few MB, loads in milliseconds).
pub fn tiny_model(name: &str) -> PathBuf {
    let p = fixture_path(&format!("arch/tiny-{name}.gguf"));
    assert!(p.is_file(), "missing fixture {}", p.display());
    p
}

/// A committed JSON reference under `tests/fixtures/reference/`, parsed.
pub fn reference(name: &str) -> serde_json::Value {
    let p = fixture_path(&format!("reference/{name}"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The default model's file: `$OWL_TEST_MODEL`, else the store (`$OWL_HOME` or `~/.owl`).
/// Panics with instructions when it is absent: these tests never skip silently.
pub fn default_model() -> PathBuf {
    if let Some(p) = std::env::var_os("OWL_TEST_MODEL").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("OWL_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".owl")))
        .expect("neither OWL_HOME nor HOME is set");
    let p = home.join("models").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.is_file(),
        "the default model is not at {}: run `owl pull` first (scripts/test.sh does)",
        p.display()
    );
    p
}

/// Token ids from a JSON array.
pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("array of token ids")
        .iter()
        .map(|x| x.as_u64().expect("token id") as u32)
        .collect()
}

/// A runner for `path` (weights repacked unless `exact`).
pub fn runner(path: &std::path::Path, kernels: Kernels, threads: usize, exact: bool) -> Runner {
    let file = Arc::new(GgufFile::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
    let opts = LoadOptions {
        no_repack: exact,
        ..LoadOptions::default()
    };
    Runner::new(file, kernels, threads, &opts).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Drives one sequence through forward passes: the prompt as one chunk (llama.cpp's prompt
/// path), then one token per pass (its decode path), returning the last logits each time.
pub struct Stepper {
    pub runner: Runner,
    kv: KvCache,
    batch: Batch,
    logits: Logits,
    n_past: usize,
}

impl Stepper {
    pub fn new(runner: Runner, n_ctx: usize) -> Stepper {
        let kv = runner.model.new_cache(n_ctx, 1);
        Stepper {
            runner,
            kv,
            batch: Batch::new(),
            logits: Logits::default(),
            n_past: 0,
        }
    }

    /// Forgets the sequence (later passes start at position 0).
    pub fn reset(&mut self) {
        self.n_past = 0;
    }

    /// Evaluates `tokens` after what is already there, as one chunk; the last token's logits.
    pub fn prefill(&mut self, tokens: &[u32]) -> &[f32] {
        self.batch.clear();
        self.batch.push(0, self.n_past, tokens, LogitsWanted::Last);
        self.runner
            .forward(&self.batch, &mut self.kv, &mut self.logits)
            .expect("forward pass");
        self.n_past += tokens.len();
        self.logits.row(0)
    }

    /// Evaluates one token; its logits.
    pub fn decode(&mut self, token: u32) -> &[f32] {
        self.prefill(&[token])
    }
}
