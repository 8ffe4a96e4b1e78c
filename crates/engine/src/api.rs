//! What the serving engine accepts and reports: requests in, a stream of events out.
//!
//! The HTTP side never touches the model: it tokenizes, calls [`EngineHandle::submit`], and
//! reads [`Event`]s from the returned [`RequestStream`]. Dropping the stream (a client that
//! disconnects, a handler future that is cancelled) cancels the request; the engine frees its
//! sequence and KV pages before its next step.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use owl_sample::SamplingParams;

/// One generation request, already tokenized.
#[derive(Clone, Debug)]
pub struct Request {
    /// Prompt token ids (at least one).
    pub prompt: Vec<u32>,
    /// Most tokens to generate; generation also ends when the sequence fills its context.
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    /// Stop strings: generation ends when the text contains one; the text up to it (not the
    /// stop string itself) is reported.
    pub stop: Vec<String>,
    /// End at an end-of-generation token (which is not reported).
    pub stop_at_eog: bool,
    /// Report each generated token's logprob with this many alternatives (`Some(0)`: the
    /// chosen token's only).
    pub logprobs: Option<usize>,
    /// Report the logprob of every prompt token after the first (legacy completions `echo`),
    /// with `logprobs` alternatives.
    pub prompt_logprobs: bool,
    /// Decode special tokens into the reported text (gpt-oss's channel markers, which the
    /// HTTP side splits into reasoning and answer).
    pub render_special: bool,
    /// A grammar the reply must follow (JSON Schema, regex, Lark, a tool call), compiled
    /// for this model by [`owl_grammar::Grammars`]; `None` for free text.
    pub constraint: Option<owl_grammar::TokenConstraint>,
    /// The LoRA adapter to generate with, by the name it was loaded under
    /// ([`crate::EngineHandle::load_adapter`]); `None`: the base model.
    pub adapter: Option<String>,
}

/// A token's logprob and the best alternatives (token id, logprob), best first.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprob {
    pub logprob: f32,
    pub top: Vec<(u32, f32)>,
}

/// Why a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// End-of-generation token or a stop string.
    Stop,
    /// `max_tokens` reached or the context is full.
    Length,
    /// The request was cancelled (its stream was dropped or the server is shutting down).
    Cancelled,
    /// The engine failed on this request; the message says why.
    Error(String),
}

/// What the engine reports for a request, in order: `Token`s, then exactly one `Done`.
#[derive(Clone, Debug)]
pub enum Event {
    /// One generated token. `text` is the text this token released: it may be empty (an
    /// unfinished UTF-8 character, or text held back because it could be the start of a stop
    /// string) and may include text held back from earlier tokens.
    Token {
        id: u32,
        text: String,
        logprob: Option<TokenLogprob>,
    },
    /// The end. `text` is the last released text (what was held back, up to a stop string).
    Done(Finish),
}

#[derive(Clone, Debug)]
pub struct Finish {
    pub reason: FinishReason,
    pub text: String,
    /// Prompt tokens of the request.
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV rows came from the prefix cache.
    pub cached_tokens: usize,
    /// Generated tokens (end-of-generation tokens not counted).
    pub completion_tokens: usize,
    /// With `Request::prompt_logprobs`: one entry per prompt token; the first is `None`.
    pub prompt_logprobs: Option<Vec<Option<TokenLogprob>>>,
}

/// Why a request was refused before it was queued.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("the prompt has {prompt} tokens but the context holds {n_ctx}; use a shorter prompt or a larger --ctx-size")]
    PromptTooLong { prompt: usize, n_ctx: usize },
    #[error("the queue is full ({capacity} requests waiting); try again later")]
    QueueFull { capacity: usize },
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("invalid sampling parameters: {0}")]
    BadSampling(String),
    #[error("token id {id} is outside the vocabulary ({n_vocab} tokens)")]
    BadToken { id: u32, n_vocab: usize },
    #[error("this is an embedding model (an encoder): it embeds and ranks, it does not generate text; use /v1/embeddings or /v1/rerank")]
    EncoderOnly,
}

/// The receiving end of one request. Dropping it cancels the request.
pub struct RequestStream {
    pub(crate) events: tokio::sync::mpsc::UnboundedReceiver<Event>,
    pub(crate) cancel: Arc<AtomicBool>,
}

impl RequestStream {
    /// The next event; `None` after `Done` (or if the engine is gone).
    pub async fn next(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Blocking variant for non-async callers (tests, the CLI).
    pub fn next_blocking(&mut self) -> Option<Event> {
        self.events.blocking_recv()
    }

    /// Asks the engine to stop this request; a `Done` with `Cancelled` follows.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

impl Drop for RequestStream {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// Live counters of the engine, readable from any thread (for `/metrics`).
#[derive(Default, Debug)]
pub struct EngineStats {
    /// Requests waiting to start (or to resume after pre-emption).
    pub waiting: AtomicU64,
    /// Sequences being prefilled or decoded.
    pub running: AtomicU64,
    pub kv_pages_used: AtomicU64,
    pub kv_pages_total: AtomicU64,
    /// Positions per KV page.
    pub kv_page_size: AtomicU64,
    /// Prompt tokens evaluated (not counting reused ones) since start.
    pub prompt_tokens_evaluated: AtomicU64,
    /// Prompt tokens reused from the prefix cache since start.
    pub prompt_tokens_cached: AtomicU64,
    pub generated_tokens: AtomicU64,
    pub preemptions: AtomicU64,
    /// Forward passes run.
    pub steps: AtomicU64,
    /// Tokens guessed ahead by speculative decoding, and how many of them were right.
    pub spec_drafted: AtomicU64,
    pub spec_accepted: AtomicU64,
    /// The part of those two that the draft model guessed (`--spec draft`).
    pub spec_model_drafted: AtomicU64,
    pub spec_model_accepted: AtomicU64,
}

impl EngineStats {
    pub fn get(v: &AtomicU64) -> u64 {
        v.load(Ordering::Relaxed)
    }
}
