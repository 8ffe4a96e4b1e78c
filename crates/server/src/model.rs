//! Loading the model and starting the serving engine (done once, on a blocking thread), through
//! the engine's one way of opening a model (`owl_engine::ModelBundle`).

use anyhow::{Context, Result};
use owl_engine::{EngineConfig, ModelBundle, OpenOptions, RunningModel};

use crate::config::ModelOptions;

/// The loaded model: the engine that runs it and what turns text into its tokens.
pub type LoadedModel = RunningModel;

/// Opens the model and starts the engine thread. Slow (reads and repacks the weights): call it
/// from a blocking task.
pub fn load(opts: &ModelOptions) -> Result<LoadedModel> {
    let bundle = ModelBundle::open(
        &opts.path,
        &OpenOptions::from_env(Some(opts.threads.max(1)), opts.ctx_size),
    )?;
    let mut cfg = EngineConfig::new(bundle.n_ctx, opts.parallel.max(1));
    cfg.queue = opts.queue;
    cfg.kv_tokens = opts.kv_tokens;
    bundle.start(cfg).context("cannot start the engine")
}
