//! Command-line arguments and dispatch.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use owl_sample::SamplingParams;

use crate::{generate, models, show};

#[derive(Parser)]
#[command(
    name = "owl",
    version,
    about = "Run open-weight language models on your own CPU"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// One chat turn (or a raw completion with --raw); the reply streams to stdout.
    Run(RunArgs),
    /// Interactive multi-turn chat in the terminal (/reset clears history, /bye or Ctrl-D leaves).
    Chat(ChatArgs),
    /// Describe a model: architecture, parameters, formats, context, template, license.
    Show(ShowArgs),
    /// Fetch a catalogue model into $OWL_HOME/models, or hf:ORG/REPO[:QUANT|:FILE] from the
    /// Hugging Face Hub into the HF cache; prints the stored path last.
    Pull {
        /// Model name (see `owl list`) or hf:ORG/REPO[:QUANT|:FILE].
        model: Option<String>,
    },
    /// List every model found: owl's, derived, Ollama's and the Hugging Face cache's.
    #[command(alias = "ls")]
    List,
    /// Remove owl's own model files and derived models (not Ollama's or the HF cache's).
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Make TO a derived model of FROM (a manifest; the weights are not copied).
    Cp { from: String, to: String },
    /// Create a derived model: a base model with its own system prompt, params and template.
    Create(CreateArgs),
    /// Train a LoRA adapter on chat conversations (JSONL) and create a derived model using it.
    Finetune(crate::finetune::FinetuneArgs),
    /// Convert an F32/F16/BF16 GGUF to a quantized format (Q4_0 … Q8_0, Q4_K_M, Q5_K_M).
    Quantize(crate::quantize::QuantizeArgs),
    /// Measure prompt and generation speed (llama-bench style).
    Bench(crate::bench::BenchArgs),
    /// Serve every model over OpenAI's, Anthropic's and Ollama's APIs, with a chat page at /.
    Serve(ServeArgs),
    /// Show what a running `owl serve` has loaded, its size, and until when it stays.
    Ps {
        /// The server's address.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// The server's port.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// The server's API key (or OWL_API_KEY).
        #[arg(long, env = "OWL_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
    },
    /// Embed each TEXT (or each line of stdin): one JSON line per text, {"index","embedding"}.
    Embed(EmbedArgs),
    /// Score each DOC against --query with a reranker: JSON lines, best first.
    Rerank(RerankArgs),
    /// Perplexity of a model on a text, or its KL divergence from a saved run (llama-perplexity's protocol).
    Perplexity(crate::perplexity::PerplexityArgs),
}

#[derive(Args, Clone)]
pub struct ModelArgs {
    /// Path to a .gguf file, or a model name from the store (default: smollm2-135m-instruct).
    #[arg(short, long)]
    pub model: Option<String>,
    /// Threads for compute (default: physical cores available to this process).
    #[arg(short, long)]
    pub threads: Option<usize>,
    /// Context size in tokens (default: the model's, capped at 4096).
    #[arg(short = 'c', long)]
    pub ctx_size: Option<usize>,
    /// Quantize F32/F16/BF16 weights (a Hugging Face directory, an unquantized GGUF) at load,
    /// in memory: Q8_0, Q4_K_M, Q4_0, Q6_K, ... (as `owl quantize`).
    #[arg(long, value_name = "TYPE")]
    pub quantize: Option<String>,
    /// Print prompt and generation speed to stderr.
    #[arg(short, long)]
    pub verbose: bool,
}

impl ModelArgs {
    /// How to open the model these flags name, with `ctx` positions.
    pub fn open_options(&self, ctx: Option<usize>) -> anyhow::Result<owl_engine::OpenOptions> {
        let mut o = owl_engine::OpenOptions::from_env(self.threads, ctx);
        o.quantize = quantize_at_load(self.quantize.as_deref(), true)?;
        Ok(o)
    }
}

/// `--quantize TYPE` as the engine takes it (`strict`: an already-quantized model is an error).
pub fn quantize_at_load(
    ty: Option<&str>,
    strict: bool,
) -> anyhow::Result<Option<owl_engine::QuantizeAtLoad>> {
    ty.map(|t| {
        Ok(owl_engine::QuantizeAtLoad {
            to: crate::quantize::parse_type(t)?,
            strict,
        })
    })
    .transpose()
}

#[derive(Args, Clone)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// L2-normalise each embedding (as the server does).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub normalize: bool,
    /// Cut inputs longer than the model's positions instead of refusing them.
    #[arg(long)]
    pub truncate: bool,
    /// The texts to embed (none: one per line of stdin).
    pub texts: Vec<String>,
}

#[derive(Args, Clone)]
pub struct RerankArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The query the documents are scored against.
    #[arg(long, short)]
    pub query: String,
    /// Print only the best N documents.
    #[arg(long)]
    pub top_n: Option<usize>,
    /// Cut documents that do not fit the model's positions instead of refusing them.
    #[arg(long)]
    pub truncate: bool,
    /// The documents to score.
    #[arg(required = true)]
    pub docs: Vec<String>,
}

#[derive(Args, Clone)]
pub struct SamplingArgs {
    // Unset flags take the model's defaults (a derived or Ollama model's params), then
    // owl's; the defaults shown are owl's.
    /// Sampling temperature; 0 = greedy [default: 0.8].
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Keep the k most likely tokens (0 = off) [default: 40].
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Nucleus sampling threshold (1 = off) [default: 0.95].
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Drop tokens below min_p × the top probability (0 = off) [default: 0.05].
    #[arg(long)]
    pub min_p: Option<f32>,
    /// Penalty for repeating recent tokens (1 = off) [default: 1].
    #[arg(long)]
    pub repeat_penalty: Option<f32>,
    /// Subtract presence_penalty from tokens already generated (0 = off) [default: 0].
    #[arg(long)]
    pub presence_penalty: Option<f32>,
    /// Subtract frequency_penalty × count from tokens already generated (0 = off) [default: 0].
    #[arg(long)]
    pub frequency_penalty: Option<f32>,
    /// Random seed (same seed and input give the same output).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Maximum tokens to generate [default: 512].
    #[arg(short = 'n', long)]
    pub max_tokens: Option<usize>,
    /// Keep generating past end-of-generation tokens (for benchmarks).
    #[arg(long)]
    pub ignore_eos: bool,
    /// End the reply where this text appears (not included); repeat for several.
    #[arg(long = "stop", value_name = "TEXT")]
    pub stop: Vec<String>,
    /// Report each generated token's logprob and its N best alternatives (shown with
    /// --verbose, or in the --json lines).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(0..=20))]
    pub logprobs: Option<u16>,
    /// Write the reply as JSON lines on stdout: one per token, then a summary.
    #[arg(long)]
    pub json: bool,
}

impl RunArgs {
    /// Splits the positionals into the model (moved into `--model`) and the prompt.
    pub fn take_prompt(&mut self) -> anyhow::Result<Option<String>> {
        let mut args = std::mem::take(&mut self.args);
        let prompt = args.pop();
        if let Some(name) = args.pop() {
            merge_model(&mut self.model, name)?;
        }
        Ok(prompt)
    }
}

/// A model named as a positional argument, unless --model names another.
pub fn merge_model(m: &mut ModelArgs, name: String) -> anyhow::Result<()> {
    match &m.model {
        Some(other) if *other != name => {
            anyhow::bail!("two models given: '{name}' and --model '{other}'")
        }
        _ => m.model = Some(name),
    }
    Ok(())
}

impl SamplingArgs {
    pub fn params(&self) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature.unwrap_or(0.8),
            top_k: self.top_k.unwrap_or(40),
            top_p: self.top_p.unwrap_or(0.95),
            min_p: self.min_p.unwrap_or(0.05),
            repeat_penalty: self.repeat_penalty.unwrap_or(1.0),
            frequency_penalty: self.frequency_penalty.unwrap_or(0.0),
            presence_penalty: self.presence_penalty.unwrap_or(0.0),
            seed: self.seed,
            ..SamplingParams::default()
        }
    }

    pub fn max_tokens(&self) -> usize {
        self.max_tokens.unwrap_or(512)
    }
}

#[derive(Args)]
pub struct RunArgs {
    /// `[MODEL] PROMPT`: the prompt; `-` (or nothing, with stdin not a terminal) reads it
    /// from stdin. With two values the first names the model (like --model).
    #[arg(value_name = "[MODEL] PROMPT", num_args = 0..=2)]
    pub args: Vec<String>,
    /// Plain text completion: no chat template.
    #[arg(long)]
    pub raw: bool,
    /// System message for the chat template.
    #[arg(long)]
    pub system: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub thinking: ThinkingArgs,
    #[command(flatten)]
    pub constraint: ConstraintArgs,
    #[command(flatten)]
    pub lora: LoraArgs,
    #[command(flatten)]
    pub spec: SpecArgs,
}

/// Speculative decoding flags (`owl run`, `owl chat`, `owl serve`). Unset flags take
/// `owl_engine::SpecConfig::default()`'s values.
#[derive(Args, Clone, Default)]
pub struct SpecArgs {
    /// Speculative decoding: `auto` (the default) guesses tokens ahead from the context (prompt
    /// lookup) and pauses while its guesses fail; `ngram` always guesses when the context has
    /// a match; `draft` guesses with a smaller model of the same vocabulary (`--draft-model`);
    /// `off`. The reply is the same either way, only faster where the guesses are right.
    #[arg(long, value_name = "MODE")]
    pub spec: Option<owl_engine::SpecMode>,
    /// Most tokens guessed ahead per step (default 8).
    #[arg(long, value_name = "N")]
    pub draft_max: Option<usize>,
    /// The model that guesses for `--spec draft` (implied by this flag): a name or a path, of
    /// the same vocabulary and much smaller than the model it guesses for.
    #[arg(long, value_name = "MODEL")]
    pub draft_model: Option<String>,
}

impl SpecArgs {
    pub fn config(&self) -> anyhow::Result<owl_engine::SpecConfig> {
        use owl_engine::SpecMode;
        let d = owl_engine::SpecConfig::default();
        let mode = match (self.spec, &self.draft_model) {
            (None, Some(_)) => SpecMode::Draft,
            (Some(SpecMode::Draft), None) => {
                anyhow::bail!("--spec draft needs --draft-model MODEL (a smaller model of the same vocabulary)")
            }
            (Some(m), Some(_)) if m != SpecMode::Draft => {
                anyhow::bail!(
                    "--draft-model goes with --spec draft, not --spec {}",
                    m.name()
                )
            }
            (m, _) => m.unwrap_or(d.mode),
        };
        Ok(owl_engine::SpecConfig {
            mode,
            max_draft: self.draft_max.unwrap_or(d.max_draft),
        })
    }
}

/// `NAME=PATH` of `owl serve --lora`.
fn parse_lora(s: &str) -> Result<(String, std::path::PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.trim().is_empty() && !path.is_empty() => {
            Ok((name.trim().to_string(), path.into()))
        }
        _ => Err(format!("{s:?}: give NAME=PATH")),
    }
}

/// A LoRA adapter over the model's weights.
#[derive(Args, Clone, Default)]
pub struct LoraArgs {
    /// Apply this LoRA adapter: a llama.cpp GGUF adapter or a PEFT directory
    /// (`adapter_config.json` + `adapter_model.safetensors`) made for the model.
    #[arg(long, value_name = "PATH")]
    pub lora: Option<std::path::PathBuf>,
    /// Multiplies the adapter's products (1: as trained; 0: the base model).
    #[arg(long, value_name = "S", default_value_t = 1.0, requires = "lora")]
    pub lora_scale: f32,
}

/// Constrained output: the reply must match a JSON Schema, a regular expression or a Lark
/// grammar (llguidance's dialect).
#[derive(Args, Clone, Default)]
#[group(multiple = false)]
pub struct ConstraintArgs {
    /// The reply is JSON valid under this schema: a file, or the schema itself as JSON.
    #[arg(long, value_name = "FILE|JSON")]
    pub json_schema: Option<String>,
    /// The reply matches this regular expression.
    #[arg(long, value_name = "REGEX")]
    pub regex: Option<String>,
    /// The reply follows the Lark grammar in this file.
    #[arg(long, value_name = "FILE")]
    pub grammar: Option<std::path::PathBuf>,
}

/// Reasoning models (Qwen3, DeepSeek-R1): their thinking is shown dimmed (on stderr when
/// stdout is not a terminal) unless hidden.
#[derive(Args, Clone)]
pub struct ThinkingArgs {
    /// Do not show a reasoning model's thinking.
    #[arg(long)]
    pub hide_thinking: bool,
    /// Ask the template not to think (`enable_thinking = false`, Qwen3).
    #[arg(long)]
    pub no_thinking: bool,
}

impl ThinkingArgs {
    pub fn display(&self) -> generate::ThinkingDisplay {
        generate::ThinkingDisplay {
            hide: self.hide_thinking,
        }
    }
}

#[derive(Args)]
pub struct ChatArgs {
    /// The model (like --model).
    #[arg(value_name = "MODEL")]
    pub name: Option<String>,
    /// System message for the conversation.
    #[arg(long)]
    pub system: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub thinking: ThinkingArgs,
    #[command(flatten)]
    pub lora: LoraArgs,
    #[command(flatten)]
    pub spec: SpecArgs,
}

#[derive(Args)]
pub struct ServeArgs {
    /// A model to serve besides the store's, by path or name (repeatable). The first is the
    /// default for requests that name none, and is loaded at start (default:
    /// smollm2-135m-instruct).
    #[arg(short, long)]
    pub model: Vec<String>,
    /// How long an idle model stays loaded: "5m", "1h", "30s", "0" (unload after each
    /// request), "-1" (forever). Requests may set their own (Ollama's `keep_alive`).
    #[arg(long, default_value = "5m")]
    pub keep_alive: String,
    /// Memory all loaded models may take together (weights plus KV caches), e.g. "8G",
    /// "512M" (default: 75% of the memory available at start). Past it, the least recently
    /// used idle model is unloaded.
    #[arg(long)]
    pub max_memory: Option<String>,
    /// A LoRA adapter over the default model, as NAME=PATH (repeatable): requests whose
    /// `model` is NAME use it. PATH is a llama.cpp GGUF adapter or a PEFT directory.
    #[arg(long, value_name = "NAME=PATH", value_parser = parse_lora)]
    pub lora: Vec<(String, std::path::PathBuf)>,
    /// Address to listen on (loopback by default; 0.0.0.0 exposes the server to the network).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Sequences generated at once (continuous batching).
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Context size per sequence in tokens (default: the model's, capped at 4096).
    #[arg(short = 'c', long)]
    pub ctx_size: Option<usize>,
    /// Threads for compute (default: physical cores available to this process).
    #[arg(short, long)]
    pub threads: Option<usize>,
    /// Require `Authorization: Bearer KEY` on every route but /health (or set OWL_API_KEY,
    /// which keeps the key out of process listings).
    #[arg(long, env = "OWL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Allow browser pages from this origin to call the API (CORS); repeat for several, or
    /// `*` for any. Off by default.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Requests that may wait for a free sequence; more are refused with 429.
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// KV cache budget in tokens shared by all sequences (default: ctx-size × parallel).
    #[arg(long)]
    pub kv_tokens: Option<usize>,
    /// Quantize every model whose weights are F32/F16/BF16 (Hugging Face directories,
    /// unquantized GGUFs) to TYPE at load, in memory; quantized models load as they are.
    #[arg(long, value_name = "TYPE")]
    pub quantize: Option<String>,
    #[command(flatten)]
    pub spec: SpecArgs,
}

#[derive(Args)]
pub struct CreateArgs {
    /// The new model's name.
    pub name: String,
    /// The base model (any name `owl run` accepts).
    #[arg(long)]
    pub from: String,
    /// A LoRA adapter to apply at scale 1 (a llama.cpp GGUF adapter or a PEFT directory),
    /// checked against the base model now. owl applies one adapter per model.
    #[arg(long = "adapter", value_name = "PATH")]
    pub adapters: Vec<std::path::PathBuf>,
    /// The default system prompt.
    #[arg(long)]
    pub system: Option<String>,
    /// A default parameter, KEY=VALUE (VALUE as JSON when it parses, else a string): temperature,
    /// top_k, top_p, min_p, num_predict, num_ctx, seed, stop, repeat_penalty, presence_penalty,
    /// frequency_penalty. Repeat for several.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// A Jinja chat template file replacing the model's.
    #[arg(long, value_name = "FILE")]
    pub template: Option<std::path::PathBuf>,
}

#[derive(Args)]
pub struct ShowArgs {
    /// Model path or name.
    pub model: Option<String>,
    /// Show this machine's CPU features and the kernels owl picks instead.
    #[arg(long)]
    pub system: bool,
}

pub fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(a) => generate::run(a),
        Command::Chat(a) => generate::chat(a),
        Command::Show(a) => {
            if a.system {
                show::system();
                Ok(())
            } else {
                show::model(a.model.as_deref())
            }
        }
        Command::Pull { model } => models::pull(model.as_deref()),
        Command::Rm { names } => models::remove(&names),
        Command::Cp { from, to } => models::copy(&from, &to),
        Command::Create(a) => models::create(&a),
        Command::Finetune(a) => crate::finetune::run(a),
        Command::Quantize(a) => crate::quantize::run(a),
        Command::Bench(a) => crate::bench::run(a),
        Command::Serve(a) => crate::serve::run(a),
        Command::Ps {
            host,
            port,
            api_key,
        } => crate::ps::run(crate::ps::PsArgs {
            host,
            port,
            api_key,
        }),
        Command::Perplexity(a) => crate::perplexity::run(a),
        Command::Embed(a) => crate::embed::embed(a),
        Command::Rerank(a) => crate::embed::rerank(a),
        Command::List => models::list(),
    }
}
