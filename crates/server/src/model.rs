//! Loading a model and starting its serving engine (slow: call it on a blocking thread),
//! through the engine's one way of opening a model (`owl_engine::ModelBundle`).

use anyhow::{Context, Result};
use owl_engine::{ComputeGate, EngineConfig, ModelBundle, OpenOptions, RunningModel};

use crate::config::ModelOptions;

/// The loaded model: the engine that runs it and what turns text into its tokens.
pub type LoadedModel = RunningModel;

/// Opens the model and starts its engine, which has the cores to itself.
pub fn load(opts: &ModelOptions) -> Result<LoadedModel> {
    load_gated(opts, None)
}

/// Opens the model and starts its engine; engines given the same `gate` take turns on the
/// cores (see `owl_engine::ComputeGate`).
pub fn load_gated(opts: &ModelOptions, gate: Option<ComputeGate>) -> Result<LoadedModel> {
    let mut open = OpenOptions::from_env(Some(opts.threads.max(1)), opts.ctx_size);
    open.quantize = opts.quantize;
    let bundle = ModelBundle::open(&opts.path, &open)?;
    let mut cfg = EngineConfig::new(bundle.n_ctx, opts.parallel.max(1));
    cfg.queue = opts.queue;
    cfg.kv_tokens = opts.kv_tokens;
    cfg.gate = gate;
    cfg.spec = opts.spec;
    bundle.start(cfg).context("cannot start the engine")
}
