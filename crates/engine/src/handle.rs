//! Starting the serving engine and talking to it from other threads.
//!
//! `Engine::start` moves the model runner, the paged KV cache and the tokenizer into one engine
//! thread (the only owner of engine state) and returns a cheap, cloneable [`EngineHandle`].
//! Requests reach the thread through a channel; events come back through one channel per
//! request. The queue is bounded: `submit` refuses at once when it is full.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use owl_model::{Pooling, Runner};
use owl_text::Tokenizer;

use crate::adapters::{AdapterBase, AdapterError, AdapterInfo};
use crate::api::{EngineStats, Request, RequestStream, SubmitError};
use crate::command::Command;
use crate::config::EngineConfig;
use crate::error::EngineError;
use crate::scheduler::Scheduler;

/// One vector per input, or why the engine could not embed them.
pub type EmbedResult = Result<Vec<Vec<f32>>, String>;

pub struct Engine;

impl Engine {
    /// Starts the engine thread.
    pub fn start(
        runner: Runner,
        tokenizer: Arc<Tokenizer>,
        cfg: EngineConfig,
    ) -> Result<EngineHandle, EngineError> {
        Engine::start_with_draft(runner, tokenizer, cfg, None)
    }

    /// Starts the engine thread with a draft model and its tokenizer for `--spec draft`
    /// (`cfg.spec.mode` must be `SpecMode::Draft` exactly when `draft` is given).
    pub fn start_with_draft(
        runner: Runner,
        tokenizer: Arc<Tokenizer>,
        cfg: EngineConfig,
        draft: Option<(Runner, Arc<Tokenizer>)>,
    ) -> Result<EngineHandle, EngineError> {
        if cfg.n_ctx == 0 || cfg.parallel == 0 || cfg.n_batch == 0 {
            return Err(EngineError::BadConfig(
                "context, parallel and batch sizes must be at least 1".into(),
            ));
        }
        let stats = Arc::new(EngineStats::default());
        let queued = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel();
        let n_vocab = runner.model.hparams().n_vocab;
        let encoder = runner.model.is_encoder();
        let pooling = runner.model.pooling();
        let adapter_base = AdapterBase::new(&runner);
        let copied_weight_bytes = copied_weight_bytes(&runner);
        static SERIAL: AtomicU64 = AtomicU64::new(1);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let sched = Scheduler::new(
            runner,
            tokenizer,
            cfg.clone(),
            stats.clone(),
            queued.clone(),
            draft,
        )?;
        let kv_bytes = sched.kv_bytes();
        let thread = std::thread::Builder::new()
            .name("owl-engine".into())
            .spawn(move || sched.run(rx))
            .map_err(|e| EngineError::BadConfig(format!("cannot start the engine thread: {e}")))?;
        Ok(EngineHandle {
            inner: Arc::new(Inner {
                cmd: Mutex::new(tx),
                stats,
                queued,
                closed: AtomicBool::new(false),
                thread: Mutex::new(Some(thread)),
                n_ctx: cfg.n_ctx,
                n_vocab,
                encoder,
                pooling,
                queue: cfg.queue,
                parallel: cfg.parallel,
                kv_bytes,
                copied_weight_bytes,
                adapter_base,
                serial,
            }),
        })
    }
}

struct Inner {
    cmd: Mutex<mpsc::Sender<Command>>,
    stats: Arc<EngineStats>,
    /// Submitted requests the engine has not started yet.
    queued: Arc<AtomicU64>,
    closed: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    n_ctx: usize,
    n_vocab: usize,
    encoder: bool,
    pooling: Pooling,
    queue: usize,
    parallel: usize,
    kv_bytes: usize,
    copied_weight_bytes: usize,
    adapter_base: AdapterBase,
    /// Unique among the engines of the process.
    serial: u64,
}

/// A handle to the engine thread; clone it freely.
#[derive(Clone)]
pub struct EngineHandle {
    inner: Arc<Inner>,
}

impl EngineHandle {
    /// Queues a request. Refuses at once when the prompt cannot fit, the queue is full or the
    /// engine is shutting down.
    pub fn submit(&self, req: Request) -> Result<RequestStream, SubmitError> {
        let i = &self.inner;
        if i.closed.load(Ordering::Relaxed) {
            return Err(SubmitError::ShuttingDown);
        }
        if i.encoder {
            return Err(SubmitError::EncoderOnly);
        }
        if req.prompt.is_empty() {
            return Err(SubmitError::EmptyPrompt);
        }
        if req.prompt.len() > i.n_ctx {
            return Err(SubmitError::PromptTooLong {
                prompt: req.prompt.len(),
                n_ctx: i.n_ctx,
            });
        }
        if let Some(&id) = req.prompt.iter().find(|&&t| t as usize >= i.n_vocab) {
            return Err(SubmitError::BadToken {
                id,
                n_vocab: i.n_vocab,
            });
        }
        req.sampling
            .validate()
            .map_err(|e| SubmitError::BadSampling(e.to_string()))?;
        // Reserve a queue place; give it back if the queue was full.
        if i.queued.fetch_add(1, Ordering::AcqRel) >= i.queue as u64 {
            i.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(SubmitError::QueueFull { capacity: i.queue });
        }
        let (etx, erx) = tokio::sync::mpsc::unbounded_channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let cmd = Command::Submit {
            req: Box::new(req),
            events: etx,
            cancel: cancel.clone(),
        };
        let sent = match i.cmd.lock() {
            Ok(tx) => tx.send(cmd).is_ok(),
            Err(_) => false,
        };
        if !sent {
            i.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(SubmitError::ShuttingDown);
        }
        Ok(RequestStream {
            events: erx,
            cancel,
        })
    }

    /// Queues the embedding of every input (see the scheduler's `embed`): one vector per
    /// input, L2-normalised when `normalize` (rank pooling gives scores, never normalised).
    /// The answer comes on the returned channel once the engine reaches it, between two steps.
    pub fn embed(
        &self,
        inputs: Vec<Vec<u32>>,
        normalize: bool,
    ) -> Result<tokio::sync::oneshot::Receiver<EmbedResult>, SubmitError> {
        let i = &self.inner;
        if i.closed.load(Ordering::Relaxed) {
            return Err(SubmitError::ShuttingDown);
        }
        if inputs.is_empty() || inputs.iter().any(|t| t.is_empty()) {
            return Err(SubmitError::EmptyPrompt);
        }
        for tokens in &inputs {
            if tokens.len() > i.n_ctx {
                return Err(SubmitError::PromptTooLong {
                    prompt: tokens.len(),
                    n_ctx: i.n_ctx,
                });
            }
            if let Some(&id) = tokens.iter().find(|&&t| t as usize >= i.n_vocab) {
                return Err(SubmitError::BadToken {
                    id,
                    n_vocab: i.n_vocab,
                });
            }
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = match i.cmd.lock() {
            Ok(c) => c
                .send(Command::Embed {
                    inputs,
                    normalize,
                    reply: tx,
                })
                .is_ok(),
            Err(_) => false,
        };
        if !sent {
            return Err(SubmitError::ShuttingDown);
        }
        Ok(rx)
    }

    /// Reads the LoRA adapter at `path` (a llama.cpp GGUF adapter or a PEFT directory) on
    /// this thread and registers it as `name`, its products scaled by `scale`. The reply
    /// comes once the engine has registered it, between two steps.
    pub fn load_adapter(
        &self,
        name: &str,
        path: &std::path::Path,
        scale: f32,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<(), AdapterError>>, AdapterError> {
        let adapter = Arc::new(self.inner.adapter_base.open(name, path, scale)?);
        self.ask(|reply| Command::LoadAdapter { adapter, reply })
    }

    /// Unregisters the adapter `name`: new requests naming it are refused; running ones
    /// finish with it.
    pub fn unload_adapter(
        &self,
        name: &str,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<(), AdapterError>>, AdapterError> {
        let name = name.to_string();
        self.ask(|reply| Command::UnloadAdapter { name, reply })
    }

    /// The registered adapters, by name.
    pub fn adapters(
        &self,
    ) -> Result<tokio::sync::oneshot::Receiver<Vec<AdapterInfo>>, AdapterError> {
        self.ask(|reply| Command::ListAdapters { reply })
    }

    /// Sends the command `make` builds around a reply channel; the receiving end.
    fn ask<T>(
        &self,
        make: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> Command,
    ) -> Result<tokio::sync::oneshot::Receiver<T>, AdapterError> {
        let i = &self.inner;
        if i.closed.load(Ordering::Relaxed) {
            return Err(AdapterError::ShuttingDown);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = match i.cmd.lock() {
            Ok(c) => c.send(make(tx)).is_ok(),
            Err(_) => false,
        };
        if !sent {
            return Err(AdapterError::ShuttingDown);
        }
        Ok(rx)
    }

    /// Unique among the engines this process started (a new engine for a reloaded model has
    /// a new one).
    pub fn serial(&self) -> u64 {
        self.inner.serial
    }

    /// The model is an encoder (BERT): it embeds and ranks; `submit` refuses it.
    pub fn is_encoder(&self) -> bool {
        self.inner.encoder
    }

    /// How the model pools an input into its embedding ([`Pooling::Rank`]: a reranker).
    pub fn pooling(&self) -> Pooling {
        self.inner.pooling
    }

    pub fn stats(&self) -> &EngineStats {
        &self.inner.stats
    }

    /// Positions one sequence may hold.
    pub fn n_ctx(&self) -> usize {
        self.inner.n_ctx
    }

    pub fn n_vocab(&self) -> usize {
        self.inner.n_vocab
    }

    /// Bytes of the KV cache the engine allocated.
    pub fn kv_bytes(&self) -> usize {
        self.inner.kv_bytes
    }

    /// Bytes of weights held in memory besides the model file's size: a tied output head's
    /// repacked copy of the token embeddings (see `owl_model::LoadOptions::shared_tied_head`).
    pub fn copied_weight_bytes(&self) -> usize {
        self.inner.copied_weight_bytes
    }

    pub fn parallel(&self) -> usize {
        self.inner.parallel
    }

    /// Requests submitted but not started.
    pub fn queued(&self) -> u64 {
        self.inner.queued.load(Ordering::Relaxed)
    }

    /// Stops accepting requests, lets running ones finish for up to `grace`, then cancels what
    /// is left and waits for the engine thread to end.
    pub fn shutdown(&self, grace: Duration) {
        let i = &self.inner;
        i.closed.store(true, Ordering::Relaxed);
        if let Ok(tx) = i.cmd.lock() {
            let _ = tx.send(Command::Shutdown { grace });
        }
        let thread = i.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// A tied output head (no `output.weight` in the file) loaded in a repacked layout is a copy of
/// `token_embd`, which stays in the file's layout for lookups: its bytes are held twice.
fn copied_weight_bytes(runner: &Runner) -> usize {
    if runner.file.tensor("output.weight").is_some() {
        return 0;
    }
    runner
        .model
        .weights()
        .into_iter()
        .find(|(name, _)| *name == "output")
        .filter(|(_, m)| m.layout != owl_kernels::Layout::Rows)
        .map_or(0, |(_, m)| m.bytes.as_slice().len())
}
