//! `owl finetune`: trains a LoRA adapter on chat conversations, writes it in llama.cpp's GGUF
//! adapter format, and records a derived model so `owl run NAME` / `owl serve` use it at once.
//!
//! The defaults are chosen to "just work" on a few hundred short chats with the default
//! 135M model on two cores: rank 8 on every projection, alpha 16, learning rate 1e-3 with a
//! short warm-up and linear decay, 8 conversations per step, 3 epochs. The base model is
//! opened in its file's row layout (no repacking): training reads its weights tile by tile.
//!
//! Ctrl-C stops after the current step, writes the checkpoint and the adapter so far, and
//! says how to `--resume`; a second Ctrl-C exits at once.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use owl_kernels::{Kernels, ThreadPool};
use owl_model::lora::Target;
use owl_store::DerivedSpec;
use owl_train::adapter_file::{read_checkpoint, target_by_short_name, write_adapter};
use owl_train::fit::{EvalReport, StepReport};
use owl_train::frozen::Gemm;
use owl_train::{AdamW, FitOptions, LoraSet, Observer, Outcome, Sequence, TrainModel};

#[derive(Args, Debug)]
pub struct FinetuneArgs {
    /// The base model (any name `owl run` accepts; default: smollm2-135m-instruct).
    #[arg(short, long)]
    pub model: Option<String>,
    /// Training conversations: JSONL, one {"messages": [...]} per line.
    #[arg(long)]
    pub data: PathBuf,
    /// The name of the tuned model (a derived model in the store; its adapter is
    /// $OWL_HOME/adapters/NAME.gguf).
    #[arg(long)]
    pub out: String,
    /// Held-out conversations: loss and perplexity after every epoch.
    #[arg(long)]
    pub eval: Option<PathBuf>,
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Peak learning rate (AdamW; linear warm-up, then linear decay to 0).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// LoRA alpha (the pair's scale is alpha / rank; default: twice the rank).
    #[arg(long)]
    pub alpha: Option<f32>,
    /// Matrices to adapt: q, k, v, o, gate, up, down (comma-separated).
    #[arg(long, default_value = "q,k,v,o,gate,up,down")]
    pub targets: String,
    /// Conversations per optimizer step.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Longest conversation in tokens (longer ones are cut).
    #[arg(long, default_value_t = 512)]
    pub seq_len: usize,
    /// Threads (default: physical cores available to this process).
    #[arg(short, long)]
    pub threads: Option<usize>,
    /// Continue the run from its last checkpoint ($OWL_HOME/adapters/NAME.ckpt.gguf).
    #[arg(long)]
    pub resume: bool,
    /// Write a checkpoint every N steps.
    #[arg(long, default_value_t = 20)]
    pub checkpoint_every: usize,
    /// Seed of the adapter's initial values and of the data order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Memory for layer activations kept from the forward pass, in MiB; the layers past it
    /// are recomputed in the backward pass (activation checkpointing; 0: all of them).
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub activation_memory: usize,
    /// Stop after this many steps in this invocation, as Ctrl-C would (checkpoint written;
    /// `--resume` continues).
    #[arg(long, value_name = "N")]
    pub max_steps: Option<usize>,
    /// Also write the adapter here (GGUF).
    #[arg(long, value_name = "PATH")]
    pub adapter_out: Option<PathBuf>,
    /// Also write the adapter in PEFT's layout to this directory (`adapter_config.json` +
    /// `adapter_model.safetensors`, for the base model's Hugging Face weights).
    #[arg(long, value_name = "DIR")]
    pub peft_out: Option<PathBuf>,
}

static STOP: AtomicBool = AtomicBool::new(false);
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_sigint(_: libc::c_int) {
    if SIGNALS.fetch_add(1, Ordering::SeqCst) >= 1 {
        // SAFETY: `_exit` is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
    STOP.store(true, Ordering::SeqCst);
}

fn catch_ctrl_c() {
    #[cfg(unix)]
    // SAFETY: the handler only touches atomics and calls `_exit`, both async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

struct Progress {
    bar: indicatif::ProgressBar,
    started: Instant,
    tokens: usize,
    first_step: usize,
    /// The step this invocation stops at (`--max-steps`).
    stop_at: Option<usize>,
    last_step: usize,
}

impl Observer for Progress {
    fn step(&mut self, r: &StepReport) {
        self.tokens += r.tokens;
        self.last_step = r.step;
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let done = r.step - self.first_step;
        let left = r.total_steps - r.step;
        let eta = secs / done.max(1) as f64 * left as f64;
        self.bar.set_position(r.step as u64);
        self.bar.set_message(format!(
            "epoch {} loss {:.4} | {:.0} tok/s | eta {}",
            r.epoch + 1,
            r.loss,
            self.tokens as f64 / secs,
            indicatif::HumanDuration(std::time::Duration::from_secs_f64(eta))
        ));
    }

    fn eval(&mut self, r: &EvalReport) {
        // `suspend` prints whether or not the bar is drawn (stderr may not be a terminal).
        self.bar.suspend(|| {
            eprintln!(
                "owl: epoch {}: eval loss {:.4}, perplexity {:.3}",
                r.epoch + 1,
                r.loss,
                r.perplexity
            )
        });
    }

    fn checkpoint(&mut self, _step: usize, _path: &std::path::Path) {}

    fn should_stop(&self) -> bool {
        STOP.load(Ordering::SeqCst) || self.stop_at.is_some_and(|s| self.last_step >= s)
    }
}

fn parse_targets(s: &str) -> Result<Vec<Target>> {
    let mut out = Vec::new();
    for name in s.split(',').filter(|n| !n.trim().is_empty()) {
        let t = target_by_short_name(name).with_context(|| {
            format!("--targets: unknown matrix {name:?}; known: q, k, v, o, gate, up, down")
        })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.is_empty() {
        bail!("--targets: name at least one matrix");
    }
    Ok(out)
}

fn encode_all(
    path: &std::path::Path,
    template: &owl_text::ChatTemplate,
    tokenizer: &owl_text::Tokenizer,
    seq_len: usize,
) -> Result<Vec<Sequence>> {
    let convs = owl_train::data::read_jsonl(path)?;
    let n = convs.len();
    let mut out = Vec::with_capacity(n);
    for c in &convs {
        if let Some(s) = owl_train::data::encode(template, tokenizer, c, seq_len)? {
            out.push(s);
        }
    }
    if out.len() < n {
        eprintln!(
            "owl: {}: {} of {n} conversations have no assistant token within --seq-len {seq_len} and are skipped",
            path.display(),
            n - out.len()
        );
    }
    if out.is_empty() {
        bail!("{}: nothing to train on", path.display());
    }
    Ok(out)
}

pub fn run(a: FinetuneArgs) -> Result<()> {
    if a.rank == 0 || a.batch == 0 || a.epochs == 0 || a.seq_len < 2 {
        bail!("--rank, --batch and --epochs must be at least 1, --seq-len at least 2");
    }
    if !(a.lr.is_finite() && a.lr > 0.0) {
        bail!("--lr must be a positive number");
    }
    let targets = parse_targets(&a.targets)?;
    let store = crate::models::store()?;
    let r = crate::models::resolve(a.model.as_deref())?;
    crate::models::refuse_adapters(&r, "finetune")?;
    let threads = a.threads.unwrap_or_else(owl_engine::default_threads).max(1);
    let mut opts = owl_engine::OpenOptions::from_env(Some(threads), None);
    opts.load.no_repack = true;
    let bundle = owl_engine::ModelBundle::open(&r.path, &opts)?;
    let model = &bundle.runner.model;
    let Some(dec) = model.as_decoder() else {
        bail!(
            "owl cannot fine-tune the '{}' architecture yet (only the shared decoder: llama, qwen2, qwen3, …)",
            model.hparams().arch
        );
    };
    let Some(template) = &bundle.template else {
        bail!(
            "model '{}' has no chat template to render the conversations with",
            r.name
        );
    };
    let seq_len = a.seq_len.min(dec.hp.n_ctx_train.max(2));
    let train = encode_all(&a.data, template, &bundle.tokenizer, seq_len)?;
    let eval = match &a.eval {
        Some(p) => encode_all(p, template, &bundle.tokenizer, seq_len)?,
        None => Vec::new(),
    };

    let alpha = a.alpha.unwrap_or(2.0 * a.rank as f32);
    let lora = LoraSet::new(
        &model.lora_targets(),
        &targets,
        dec.hp.n_layer,
        a.rank,
        alpha,
        a.seed,
    );
    if lora.n_params() == 0 {
        bail!("the model offers none of the matrices in --targets to an adapter");
    }
    let kernels = Kernels::detect();
    let pool = ThreadPool::new(threads);
    let g = Gemm {
        kernels: &kernels,
        pool: &pool,
    };
    let mut tm = TrainModel::new(dec, lora, g)?;
    tm.keep_bytes = a.activation_memory.saturating_mul(1 << 20);

    let adapters_dir = store.roots().owl.join("adapters");
    std::fs::create_dir_all(&adapters_dir)
        .with_context(|| format!("cannot create {}", adapters_dir.display()))?;
    let name = a.out.trim_end_matches(":latest").to_string();
    if name.is_empty() || name.contains(['/', '\\']) {
        bail!("--out {:?}: a model name, without slashes", a.out);
    }
    let adapter_path = adapters_dir.join(format!("{name}.gguf"));
    let ckpt_path = adapters_dir.join(format!("{name}.ckpt.gguf"));

    let per_epoch = train.len().div_ceil(a.batch);
    let total = per_epoch * a.epochs;
    let settings = serde_json::json!({
        "base": r.path.display().to_string(),
        "data": a.data.display().to_string(),
        "train_sequences": train.len(),
        "epochs": a.epochs, "lr": a.lr, "rank": a.rank, "alpha": alpha,
        "targets": a.targets, "batch": a.batch, "seq_len": seq_len, "seed": a.seed,
    })
    .to_string();
    let start = if a.resume {
        let st = read_checkpoint(&ckpt_path, &mut tm.lora)
            .with_context(|| format!("--resume: cannot read {}", ckpt_path.display()))?;
        if st.settings != settings {
            bail!(
                "--resume: the checkpoint was made with other settings:\n  checkpoint: {}\n  now:        {settings}",
                st.settings
            );
        }
        eprintln!("owl: resuming at step {} of {total}", st.step);
        st.step
    } else {
        0
    };

    let n_tokens: usize = train.iter().map(|s| s.tokens.len()).sum();
    let n_targets: usize = train.iter().map(Sequence::n_targets).sum();
    eprintln!(
        "owl: fine-tuning {} ({}) on {} conversations ({n_tokens} tokens, {n_targets} trained) for {} epochs: {total} steps of {} conversations, {} LoRA parameters (rank {}, alpha {alpha}), {threads} threads",
        r.name,
        dec.hp.arch,
        train.len(),
        a.epochs,
        a.batch,
        tm.lora.n_params(),
        a.rank,
    );
    let fit_opts = FitOptions {
        epochs: a.epochs,
        batch: a.batch,
        seed: a.seed,
        optimizer: AdamW {
            lr: a.lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            warmup: (total / 20).clamp(1, 20),
            total,
        },
        checkpoint_every: a.checkpoint_every,
        checkpoint: Some(ckpt_path.clone()),
        settings,
        arch: dec.hp.arch.clone(),
    };
    if !eval.is_empty() && start == 0 {
        let loss = owl_train::fit::evaluate(&tm, &eval, a.batch)?;
        eprintln!(
            "owl: before training: eval loss {loss:.4}, perplexity {:.3}",
            loss.exp()
        );
    }
    let bar = crate::quantize::progress_bar(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("training [{bar:30}] {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_position(start as u64);
    let mut progress = Progress {
        bar,
        started: Instant::now(),
        tokens: 0,
        first_step: start,
        stop_at: a.max_steps.map(|n| start + n),
        last_step: start,
    };
    catch_ctrl_c();
    let outcome = owl_train::fit(&mut tm, &train, &eval, &fit_opts, start, &mut progress)?;
    progress.bar.finish_and_clear();
    let secs = progress.started.elapsed().as_secs_f64();
    write_adapter(&tm.lora, &dec.hp.arch, &name, &adapter_path)?;
    if let Some(p) = &a.adapter_out {
        write_adapter(&tm.lora, &dec.hp.arch, &name, p)?;
    }
    if let Some(dir) = &a.peft_out {
        let pairs: Vec<owl_hf::PeftPair<'_>> = tm
            .lora
            .params()
            .map(|p| owl_hf::PeftPair {
                gguf_name: p.target.name(),
                rank: p.rank,
                n_in: p.target.n_in,
                n_out: p.target.n_out,
                a: &p.a,
                b: &p.b,
            })
            .collect();
        owl_hf::write_peft(
            dir,
            &dec.hp.arch,
            dec.hp.n_head,
            dec.hp.n_head_kv,
            tm.lora.alpha,
            &pairs,
            &r.name,
        )
        .with_context(|| format!("--peft-out {}", dir.display()))?;
    }
    eprintln!(
        "owl: {} steps in {secs:.0} s ({:.0} tokens/s); adapter {}",
        match outcome {
            Outcome::Finished => total - start,
            Outcome::Stopped(s) => s - start,
        },
        progress.tokens as f64 / secs.max(1e-9),
        adapter_path.display()
    );
    if let Outcome::Stopped(s) = outcome {
        eprintln!(
            "owl: stopped at step {s} of {total}; continue with the same command and --resume"
        );
        return Ok(());
    }
    let spec = DerivedSpec {
        from: r.name.clone(),
        adapters: vec![adapter_path],
        ..DerivedSpec::default()
    };
    let m = store.create(&name, &spec)?;
    eprintln!(
        "owl: created {} (from {}); try: owl run {} \"...\"",
        m.name, r.name, m.name
    );
    Ok(())
}
