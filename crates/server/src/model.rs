//! Loading a model and starting its serving engine (slow: call it on a blocking thread),
//! through the engine's one way of opening a model (`owl_engine::ModelBundle`).

use anyhow::{Context, Result};
use owl_engine::{ComputeGate, EngineConfig, ModelBundle, OpenOptions, RunningModel, SpecMode};

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
    let draft = match (&opts.draft_model, opts.spec.mode) {
        (Some(path), SpecMode::Draft) => {
            let mut o = OpenOptions::from_env(Some(opts.threads.max(1)), Some(bundle.n_ctx));
            o.quantize = opts.quantize;
            let d = ModelBundle::open(path, &o).context("cannot open the draft model")?;
            match owl_engine::check_draft_vocabulary(&d.tokenizer, &bundle.tokenizer) {
                Ok(()) => Some(d),
                Err(why) => {
                    eprintln!(
                        "owl serve: {}: the draft model {} {why}; this model guesses by prompt lookup (--spec auto)",
                        opts.path.display(),
                        path.display()
                    );
                    cfg.spec.mode = SpecMode::Auto;
                    None
                }
            }
        }
        _ => None,
    };
    bundle
        .start_with_draft(cfg, draft)
        .context("cannot start the engine")
}
