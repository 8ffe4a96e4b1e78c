//! What `owl serve` is configured with, and the fixed limits of the HTTP side.

use std::path::PathBuf;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::pool::KeepAlive;

/// Largest request body accepted; larger ones get 413.
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;
/// Most stop strings in one request (OpenAI allows 4; more get 400).
pub const MAX_STOP: usize = 16;
/// Longest stop string in bytes (UTF-8); longer ones get 400.
pub const MAX_STOP_LEN: usize = 1024;
/// Most bytes of a request body the server reads at all. A body over [`BODY_LIMIT`] is read
/// and discarded up to this many bytes before the 413 goes out, so a client still sending
/// sees the answer instead of a reset connection; past it the connection is closed.
pub const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;
/// Longest the server keeps reading an unwanted request body before closing instead.
pub const DRAIN_TIMEOUT_SECS: u64 = 30;
/// Most alternatives per token for chat `top_logprobs`.
pub const MAX_TOP_LOGPROBS: i64 = 20;
/// Most alternatives per token for legacy completions `logprobs`.
pub const MAX_LEGACY_LOGPROBS: i64 = 5;
/// Default per-sequence context cap, so a 128k-context model does not reserve a huge cache.
pub use owl_engine::DEFAULT_CTX_CAP;
/// How long in-flight requests may run on after SIGINT/SIGTERM.
pub const SHUTDOWN_GRACE_SECS: u64 = 5;

/// How the model is loaded and how the engine is sized.
#[derive(Clone, Debug)]
pub struct ModelOptions {
    /// The `.gguf` file.
    pub path: PathBuf,
    /// Compute threads.
    pub threads: usize,
    /// Positions per sequence; `None`: the model's training context capped at
    /// [`DEFAULT_CTX_CAP`].
    pub ctx_size: Option<usize>,
    /// Sequences decoded together.
    pub parallel: usize,
    /// Requests that may wait for a free sequence; more get 429.
    pub queue: usize,
    /// KV cache budget in positions shared by all sequences; `None`: ctx × parallel.
    pub kv_tokens: Option<usize>,
    /// Quantize unquantized weights at load (`--quantize`).
    pub quantize: Option<owl_engine::QuantizeAtLoad>,
    /// Speculative decoding (`--spec`, `--draft-max`).
    pub spec: owl_engine::SpecConfig,
    /// The draft model of `--spec draft`: it guesses for every served model of its
    /// vocabulary; the others fall back to `auto`.
    pub draft_model: Option<PathBuf>,
}

impl ModelOptions {
    /// The id clients use for the model: the file name without `.gguf`.
    pub fn model_id(&self) -> String {
        crate::catalog::file_id(&self.path)
    }
}

impl Default for ModelOptions {
    fn default() -> ModelOptions {
        ModelOptions {
            path: PathBuf::new(),
            threads: owl_engine::default_threads(),
            ctx_size: None,
            parallel: 1,
            queue: 64,
            kv_tokens: None,
            quantize: None,
            spec: owl_engine::SpecConfig::default(),
            draft_model: None,
        }
    }
}

/// Everything `owl serve` needs.
#[derive(Clone)]
pub struct ServeOptions {
    /// Engine sizes of every model (`path` unused).
    pub engine: ModelOptions,
    /// What requests may name.
    pub catalog: Arc<dyn Catalog>,
    /// The model a request without `model` gets, loaded at start (the server reports
    /// healthy once it is); `None`: nothing is loaded before it is asked for.
    pub default_model: Option<String>,
    /// How long an idle model stays loaded.
    pub keep_alive: KeepAlive,
    /// Bytes all loaded models may take together.
    pub max_memory: u64,
    pub host: String,
    pub port: u16,
    /// When set, every route but `/health` wants `Authorization: Bearer <key>` (or
    /// `x-api-key: <key>`, as Anthropic's clients send it).
    pub api_key: Option<String>,
    /// Origins browsers may call from (CORS); `*` for any; empty: no CORS headers.
    pub cors_origins: Vec<String>,
    /// LoRA adapters over the default model, `(name, path)`, loaded at start (a request
    /// naming one uses it).
    pub adapters: Vec<(String, PathBuf)>,
}

/// The HTTP side's own settings (what the router needs besides the models).
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// The default model's id (listed while it loads).
    pub model_id: String,
    /// Unix time reported as the model's `created`.
    pub created: u64,
    pub api_key: Option<String>,
    /// Origins browsers may call from (CORS); `*` for any; empty: no CORS headers.
    pub cors_origins: Vec<String>,
}
