//! The training loop: epochs of shuffled batches, one AdamW step per batch, evaluation after
//! each epoch, a checkpoint every N steps, and a clean stop on request.
//!
//! Reproducible by construction: the data order of epoch `e` is a shuffle seeded by
//! `(seed, e)`, every product sums in an order that does not depend on the thread count, and a
//! checkpoint holds the pairs and their AdamW moments. So a run resumed from step `s`
//! continues exactly as the uninterrupted run would have, bit for bit.

use std::path::PathBuf;
use std::time::Instant;

use crate::adamw::AdamW;
use crate::adapter_file::{write_checkpoint, RunState};
use crate::lora::Rng;
use crate::model::{Sequence, TrainModel};
use crate::TrainError;

/// How a run goes.
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub epochs: usize,
    /// Conversations per optimizer step.
    pub batch: usize,
    pub seed: u64,
    pub optimizer: AdamW,
    /// Write a checkpoint every this many steps (0: only at the end or on a stop).
    pub checkpoint_every: usize,
    pub checkpoint: Option<PathBuf>,
    /// The settings recorded in checkpoints (JSON).
    pub settings: String,
    pub arch: String,
}

impl FitOptions {
    pub fn steps_per_epoch(&self, n_train: usize) -> usize {
        n_train.div_ceil(self.batch.max(1))
    }
}

/// What a step reports.
#[derive(Clone, Debug)]
pub struct StepReport {
    pub step: usize,
    pub total_steps: usize,
    pub epoch: usize,
    /// Mean loss over the step's trained tokens.
    pub loss: f64,
    pub grad_norm: f32,
    pub lr: f32,
    /// Tokens (all positions, prompt included) of the step.
    pub tokens: usize,
    pub seconds: f64,
}

/// An evaluation after an epoch.
#[derive(Clone, Debug)]
pub struct EvalReport {
    pub epoch: usize,
    pub loss: f64,
    pub perplexity: f64,
}

/// Receives the run's progress and may stop it.
pub trait Observer {
    fn step(&mut self, r: &StepReport);
    fn eval(&mut self, r: &EvalReport);
    fn checkpoint(&mut self, step: usize, path: &std::path::Path);
    /// Asked after every step: stop now (a checkpoint is written first).
    fn should_stop(&self) -> bool;
}

/// How the run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// Stopped on request after this many steps; the checkpoint holds them.
    Stopped(usize),
}

/// The order of the training set in epoch `epoch`.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Rng(seed ^ (epoch as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F));
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// Mean loss per trained token over `data`, in batches of `batch`.
pub fn evaluate(
    model: &TrainModel<'_>,
    data: &[Sequence],
    batch: usize,
) -> Result<f64, TrainError> {
    let (mut sum, mut n) = (0f64, 0usize);
    for b in data.chunks(batch.max(1)) {
        let (s, k) = model.loss(b)?;
        sum += s;
        n += k;
    }
    Ok(if n == 0 { f64::NAN } else { sum / n as f64 })
}

fn save(
    model: &TrainModel<'_>,
    opts: &FitOptions,
    step: usize,
    obs: &mut dyn Observer,
) -> Result<(), TrainError> {
    if let Some(path) = &opts.checkpoint {
        let state = RunState {
            step,
            settings: opts.settings.clone(),
        };
        write_checkpoint(&model.lora, &opts.arch, &state, path)?;
        obs.checkpoint(step, path);
    }
    Ok(())
}

/// Trains from step `start` (0, or a checkpoint's) to the end of the last epoch.
pub fn fit(
    model: &mut TrainModel<'_>,
    train: &[Sequence],
    eval: &[Sequence],
    opts: &FitOptions,
    start: usize,
    obs: &mut dyn Observer,
) -> Result<Outcome, TrainError> {
    let per_epoch = opts.steps_per_epoch(train.len());
    let total = per_epoch * opts.epochs;
    let mut step = start;
    while step < total {
        let epoch = step / per_epoch;
        let order = epoch_order(train.len(), opts.seed, epoch);
        let i = step % per_epoch;
        let picked: Vec<Sequence> = order
            .iter()
            .skip(i * opts.batch)
            .take(opts.batch)
            .map(|&k| train[k].clone())
            .collect();
        let t0 = Instant::now();
        let n_targets: usize = picked.iter().map(Sequence::n_targets).sum();
        model.lora.zero_grad();
        let (loss, _) = model.accumulate(&picked, 1.0 / n_targets.max(1) as f32)?;
        let grad_norm = opts.optimizer.step(&mut model.lora, step);
        step += 1;
        obs.step(&StepReport {
            step,
            total_steps: total,
            epoch,
            loss: loss / n_targets.max(1) as f64,
            grad_norm,
            lr: opts.optimizer.lr_at(step - 1),
            tokens: picked.iter().map(|s| s.tokens.len()).sum(),
            seconds: t0.elapsed().as_secs_f64(),
        });
        if step % per_epoch == 0 && !eval.is_empty() {
            let loss = evaluate(model, eval, opts.batch)?;
            obs.eval(&EvalReport {
                epoch,
                loss,
                perplexity: loss.exp(),
            });
        }
        if step < total && obs.should_stop() {
            save(model, opts, step, obs)?;
            return Ok(Outcome::Stopped(step));
        }
        if opts.checkpoint_every > 0 && step % opts.checkpoint_every == 0 && step < total {
            save(model, opts, step, obs)?;
        }
    }
    save(model, opts, step, obs)?;
    Ok(Outcome::Finished)
}
