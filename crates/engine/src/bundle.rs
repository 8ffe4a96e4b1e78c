//! Opening a model, written once: file → runner, tokenizer, chat template and the defaults that
//! come with the model (its context cap), for `owl run`, `chat`, `serve`, `bench` and
//! `perplexity` alike.
//!
//! A [`ModelBundle`] is everything a front end needs before it generates: the runner (weights
//! loaded, kernels picked, threads started), the tokenizer and the template. `start` moves the
//! runner into an engine thread and keeps the text side ([`RunningModel`]) for the caller, so
//! the server never links the model crates just to load a model.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use owl_gguf::GgufFile;
use owl_grammar::{GrammarError, Grammars};
use owl_kernels::Kernels;
use owl_model::{LoadOptions, Runner};
use owl_quant::mix::FileType;
use owl_quant::model::{check_unquantized, plan_for, quantize_model};
use owl_text::{ChatTemplate, Tokenizer};

use crate::config::EngineConfig;
use crate::error::EngineError;
use crate::handle::{Engine, EngineHandle};
use crate::pair::PairLayout;

/// Default context cap, so a 128k-context model does not reserve a huge cache by default.
pub const DEFAULT_CTX_CAP: usize = 4096;
/// The smallest context a model is opened with.
const MIN_CTX: usize = 16;

/// How to open a model.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Compute threads (`None`: the physical cores this process may use).
    pub threads: Option<usize>,
    /// Positions per sequence (`None`: the model's training context capped at
    /// [`DEFAULT_CTX_CAP`]).
    pub ctx_size: Option<usize>,
    /// How weights are laid out in memory ([`LoadOptions::from_env`] reads `OWL_NO_REPACK`).
    pub load: LoadOptions,
    /// Write every intermediate tensor of every pass to `DIR/NAME.f32` (`OWL_TRACE`).
    pub trace_dir: Option<PathBuf>,
    /// Quantize F32/F16/BF16 weights to this llama.cpp file type at load (`--quantize`), in
    /// memory, with owl's quantizer and llama-quantize's per-tensor recipe.
    pub quantize: Option<QuantizeAtLoad>,
}

/// `--quantize TYPE` at load.
#[derive(Clone, Copy, Debug)]
pub struct QuantizeAtLoad {
    pub to: FileType,
    /// What an already-quantized model does: `true` refuses it (the user asked for this model
    /// in this type: `owl run`), `false` loads it as it is (a server's setting for every
    /// model it may load).
    pub strict: bool,
}

impl OpenOptions {
    /// Options with the environment's settings (`OWL_NO_REPACK`, `OWL_TRACE`).
    pub fn from_env(threads: Option<usize>, ctx_size: Option<usize>) -> OpenOptions {
        OpenOptions {
            threads,
            ctx_size,
            load: LoadOptions::from_env(),
            trace_dir: std::env::var_os("OWL_TRACE").map(PathBuf::from),
            quantize: None,
        }
    }
}

/// A model, opened.
pub struct ModelBundle {
    /// The loaded weights; `runner.file` is the GGUF file they came from.
    pub runner: Runner,
    pub tokenizer: Arc<Tokenizer>,
    pub template: Option<ChatTemplate>,
    /// Positions per sequence.
    pub n_ctx: usize,
    /// The special tokens of a reranker's (query, document) input.
    pub pair: PairLayout,
}

impl ModelBundle {
    /// Reads the file, builds tokenizer and template, loads the weights. Slow (reads and
    /// repacks the weights): call it from a blocking context.
    pub fn open(path: &Path, opts: &OpenOptions) -> Result<ModelBundle, EngineError> {
        let shown = path.display().to_string();
        // A GGUF file, or a Hugging Face directory read as the GGUF it converts to.
        let file = owl_hf::open_model(path).map_err(|e| EngineError::Open {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let threads = opts.threads.unwrap_or_else(default_threads).max(1);
        let file = Arc::new(match opts.quantize {
            Some(q) => quantized(file, q, threads).map_err(|reason| EngineError::Open {
                path: shown.clone(),
                reason,
            })?,
            None => file,
        });
        let tokenizer = Arc::new(Tokenizer::from_gguf(&file).map_err(|e| EngineError::Open {
            path: shown.clone(),
            reason: format!("cannot build the tokenizer: {e}"),
        })?);
        let template = ChatTemplate::from_gguf(&file).map_err(|e| EngineError::Open {
            path: shown.clone(),
            reason: format!("cannot read the chat template: {e}"),
        })?;
        let mut runner = Runner::new(Arc::clone(&file), Kernels::detect(), threads, &opts.load)
            .map_err(|e| EngineError::Open {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
        if let Some(dir) = &opts.trace_dir {
            runner.set_trace(Some(trace_to_dir(dir.clone())?));
        }
        let n_ctx_train = runner.model.hparams().n_ctx_train.max(1);
        let mut n_ctx = opts
            .ctx_size
            .unwrap_or(n_ctx_train.min(DEFAULT_CTX_CAP))
            .max(MIN_CTX);
        if runner.model.is_encoder() {
            // Absolute position embeddings: an encoder has no positions past its training
            // context, whatever --ctx-size says.
            n_ctx = n_ctx.min(n_ctx_train);
        }
        let pair = PairLayout::from_gguf(&file, &tokenizer);
        Ok(ModelBundle {
            runner,
            tokenizer,
            template,
            n_ctx,
            pair,
        })
    }

    /// Starts an engine thread that owns the runner; `cfg.n_ctx` is this bundle's context.
    pub fn start(self, cfg: EngineConfig) -> Result<RunningModel, EngineError> {
        self.start_with_draft(cfg, None)
    }

    /// [`ModelBundle::start`] with `draft` guessing tokens for `--spec draft` (its vocabulary
    /// must be this model's; `cfg.spec.mode` must be `SpecMode::Draft` exactly when it is given).
    pub fn start_with_draft(
        self,
        mut cfg: EngineConfig,
        draft: Option<ModelBundle>,
    ) -> Result<RunningModel, EngineError> {
        cfg.n_ctx = self.n_ctx;
        let draft = draft.map(|d| (d.runner, d.tokenizer));
        let engine =
            Engine::start_with_draft(self.runner, Arc::clone(&self.tokenizer), cfg, draft)?;
        Ok(RunningModel {
            engine,
            pair: self.pair,
            tokenizer: self.tokenizer,
            template: self.template,
            grammars: std::sync::OnceLock::new(),
        })
    }
}

/// `file` quantized in memory as `q` says: a GGUF image built by `owl_quant::model` and read
/// back, so the loaders see a quantized file like any other. An already-quantized `file` is
/// refused (`q.strict`) or returned as it is.
fn quantized(file: GgufFile, q: QuantizeAtLoad, threads: usize) -> Result<GgufFile, String> {
    if let Err(e) = check_unquantized(&file) {
        return if q.strict {
            Err(format!("--quantize {}: {e}", q.to.name()))
        } else {
            Ok(file)
        };
    }
    let why = |e: &dyn std::fmt::Display| format!("cannot quantize to {}: {e}", q.to.name());
    let plan = plan_for(&file, q.to, false).map_err(|e| why(&e))?;
    let out = quantize_model(&file, q.to, &plan, threads, &|_, _| {}).map_err(|e| why(&e))?;
    GgufFile::from_bytes(out.writer.to_bytes()).map_err(|e| why(&e))
}

/// A model whose runner lives in an engine thread: what front ends hold.
pub struct RunningModel {
    pub engine: EngineHandle,
    /// The special tokens of a reranker's (query, document) input.
    pub pair: PairLayout,
    pub tokenizer: Arc<Tokenizer>,
    pub template: Option<ChatTemplate>,
    /// The constraint compiler, built on first use (a trie of the vocabulary).
    grammars: std::sync::OnceLock<Result<Grammars, GrammarError>>,
}

impl RunningModel {
    /// The model's constraint compiler (built once, on the first constrained request).
    pub fn grammars(&self) -> Result<&Grammars, GrammarError> {
        self.grammars
            .get_or_init(|| Grammars::new(Arc::clone(&self.tokenizer), self.engine.n_vocab()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Positions one sequence may hold (prompt + generated).
    pub fn n_ctx(&self) -> usize {
        self.engine.n_ctx()
    }
}

/// Physical cores this process may use (affinity and cgroup quota respected by std).
pub fn default_threads() -> usize {
    let avail = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let physical = physical_cores().unwrap_or(avail);
    physical.min(avail).max(1)
}

fn physical_cores() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mut cores = std::collections::HashSet::new();
    let mut phys = "";
    for line in info.lines() {
        if let Some(v) = line.strip_prefix("physical id") {
            phys = v.trim_start_matches([' ', '\t', ':']);
        } else if let Some(v) = line.strip_prefix("core id") {
            cores.insert((
                phys.to_string(),
                v.trim_start_matches([' ', '\t', ':']).to_string(),
            ));
        }
    }
    (!cores.is_empty()).then_some(cores.len())
}

/// A tracer that writes each intermediate tensor to `dir/NAME.f32` (debugging aid: compare with
/// llama.cpp using scripts/trace_llama_cpp.py and scripts/compare_trace.py).
fn trace_to_dir(dir: PathBuf) -> Result<Box<owl_model::scratch::TraceFn>, EngineError> {
    std::fs::create_dir_all(&dir)
        .map_err(|e| EngineError::BadConfig(format!("cannot create {}: {e}", dir.display())))?;
    Ok(Box::new(move |name: &str, data: &[f32]| {
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        if let Err(e) = std::fs::write(dir.join(format!("{name}.f32")), bytes) {
            eprintln!("owl: trace write failed: {e}");
        }
    }))
}

/// What a model's header says about its size, read without loading the weights (to plan
/// memory before a load).
#[derive(Clone, Copy, Debug)]
pub struct HeaderFacts {
    pub n_layer: usize,
    /// Width of one position's K (and V) rows over all KV heads.
    pub kv_dim: usize,
    pub n_ctx_train: usize,
}

/// [`HeaderFacts`] of the GGUF at `path`, or `None` if the header lacks them.
pub fn gguf_header(path: &Path) -> Option<HeaderFacts> {
    let g = owl_hf::open_model(path).ok()?;
    let arch = g.get_str("general.architecture")?;
    let get = |k: &str| g.get_u64(&format!("{arch}.{k}")).map(|v| v as usize);
    let n_layer = get("block_count")?;
    let n_embd = get("embedding_length")?;
    let n_head = get("attention.head_count").filter(|&h| h > 0)?;
    let n_head_kv = get("attention.head_count_kv").unwrap_or(n_head);
    let head_dim = get("attention.key_length").unwrap_or(n_embd / n_head);
    Some(HeaderFacts {
        n_layer,
        kv_dim: n_head_kv * head_dim,
        n_ctx_train: get("context_length").unwrap_or(2048),
    })
}
