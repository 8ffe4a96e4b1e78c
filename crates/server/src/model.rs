//! Loading the model and starting the serving engine (done once, on a blocking thread).

use std::sync::Arc;

use anyhow::{Context, Result};
use owl_engine::{Engine, EngineConfig, EngineHandle};
use owl_gguf::GgufFile;
use owl_kernels::Kernels;
use owl_model::{LoadOptions, Runner};
use owl_text::{ChatTemplate, Tokenizer};

use crate::config::{ModelOptions, DEFAULT_CTX_CAP};

/// The loaded model: the engine that runs it and what turns text into its tokens.
pub struct LoadedModel {
    pub engine: EngineHandle,
    pub tokenizer: Arc<Tokenizer>,
    pub template: Option<ChatTemplate>,
}

impl LoadedModel {
    /// Reads the GGUF file, builds tokenizer and template, and starts the engine thread.
    /// Slow (reads and repacks the weights): call it from a blocking task.
    pub fn load(opts: &ModelOptions) -> Result<LoadedModel> {
        let path = &opts.path;
        let file = Arc::new(
            GgufFile::open(path).with_context(|| format!("cannot load {}", path.display()))?,
        );
        let tokenizer =
            Arc::new(Tokenizer::from_gguf(&file).context("cannot build the tokenizer")?);
        let template = ChatTemplate::from_gguf(&file).context("cannot read the chat template")?;
        let runner = Runner::new(
            Arc::clone(&file),
            Kernels::detect(),
            opts.threads.max(1),
            &LoadOptions::from_env(),
        )
        .with_context(|| format!("cannot load {}", path.display()))?;
        let n_ctx_train = runner.model.hparams().n_ctx_train.max(1);
        let n_ctx = opts
            .ctx_size
            .unwrap_or(n_ctx_train.min(DEFAULT_CTX_CAP))
            .max(16);
        let mut cfg = EngineConfig::new(n_ctx, opts.parallel.max(1));
        cfg.queue = opts.queue;
        cfg.kv_tokens = opts.kv_tokens;
        let engine = Engine::start(runner, Arc::clone(&tokenizer), cfg)
            .context("cannot start the engine")?;
        Ok(LoadedModel {
            engine,
            tokenizer,
            template,
        })
    }

    /// Positions one sequence may hold (prompt + generated).
    pub fn n_ctx(&self) -> usize {
        self.engine.n_ctx()
    }
}
