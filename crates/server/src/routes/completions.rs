//! `POST /v1/completions` (legacy text completion).
//!
//! `prompt` may be a string, a one-element array of strings, an array of token ids, or a
//! one-element array of token-id arrays; several prompts per request are refused (400). Text
//! is tokenized like llama-server does: BOS per the model, control tokens parsed. `echo`
//! prepends the prompt; with `logprobs` (0..=5 alternatives) the prompt tokens' logprobs come
//! first in the legacy arrays, the first one `null`. When streaming, the echoed prompt is the
//! first chunk and carries no logprobs. `max_tokens` defaults to (and is capped at) what the
//! context leaves; 0 is allowed with `echo` (score a prompt without generating).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use owl_engine::{Request, TokenLogprob};
use owl_text::Tokenizer;
use serde_json::Value;

use crate::body;
use crate::config::MAX_LEGACY_LOGPROBS;
use crate::error::ApiError;
use crate::generation::{collect, finish_error, RequestLog, Tracked};
use crate::ids::{fingerprint, new_id, unix_now};
use crate::logprobs::LegacyBuilder;
use crate::openai::{CommonFields, Completion, CompletionChoice, CompletionRequest, Usage};
use crate::params;
use crate::routes::blocking;
use crate::sse::{self, ChunkFormat};
use crate::state::AppState;

enum Prompt {
    Text(String),
    Tokens(Vec<u32>),
}

fn token_ids(v: &[Value], n_vocab: usize) -> Result<Vec<u32>, ApiError> {
    v.iter()
        .map(|x| match x.as_u64() {
            Some(id) if (id as usize) < n_vocab => Ok(id as u32),
            _ => Err(ApiError::bad_param(
                "prompt",
                format!("prompt token {x} is not a token id of this model ({n_vocab} tokens)"),
            )),
        })
        .collect()
}

fn one_prompt(v: Option<Value>, n_vocab: usize) -> Result<Prompt, ApiError> {
    let shape = || {
        ApiError::bad_param(
            "prompt",
            "`prompt` must be a string, an array of token ids, or a one-element array of either",
        )
    };
    let several = |n: usize| {
        ApiError::bad_param(
            "prompt",
            format!("only one prompt per request is supported, got {n}"),
        )
    };
    match v {
        None | Some(Value::Null) => Err(ApiError::bad_param("prompt", "`prompt` is required")),
        Some(Value::String(s)) => Ok(Prompt::Text(s)),
        Some(Value::Array(a)) => {
            if a.is_empty() {
                return Err(ApiError::bad_param("prompt", "`prompt` is empty"));
            }
            if a.iter().all(Value::is_number) {
                return Ok(Prompt::Tokens(token_ids(&a, n_vocab)?));
            }
            if a.len() > 1 {
                return Err(several(a.len()));
            }
            match a.into_iter().next() {
                Some(Value::String(s)) => Ok(Prompt::Text(s)),
                Some(Value::Array(ids)) if ids.iter().all(Value::is_number) => {
                    Ok(Prompt::Tokens(token_ids(&ids, n_vocab)?))
                }
                _ => Err(shape()),
            }
        }
        Some(_) => Err(shape()),
    }
}

/// Every field this route reads; anything else but the harmless ones is refused with a 400.
const KNOWN: &[&str] = &[
    "prompt",
    "model",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "repeat_penalty",
    "logit_bias",
    "n",
    "stream",
    "stream_options",
    "ignore_eos",
    "echo",
    "logprobs",
    "suffix",
    "best_of",
];

pub async fn completions(
    State(state): State<AppState>,
    log: Option<Extension<RequestLog>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body::bytes(body)?;
    let common: CommonFields = body::parse(&bytes)?;
    let req: CompletionRequest = body::parse(&bytes)?;
    body::check_fields(&bytes, KNOWN, crate::routes::chat::HARMLESS)?;
    let model = state.model(common.model.as_deref()).await?;
    let mut common = common;
    params::with_model_defaults(&mut common, &model.spec().defaults.params);
    let settings = params::settings(&common, model.engine.n_vocab())?;
    if req.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::bad_param("suffix", "`suffix` is not supported"));
    }
    if let Some(b) = req.best_of {
        if b != 1 {
            return Err(ApiError::bad_param(
                "best_of",
                "only best_of=1 is supported",
            ));
        }
    }
    let logprobs = match req.logprobs {
        None => None,
        Some(n) if (0..=MAX_LEGACY_LOGPROBS).contains(&n) => Some(n as usize),
        Some(n) => {
            return Err(ApiError::bad_param(
                "logprobs",
                format!("`logprobs` must be between 0 and {MAX_LEGACY_LOGPROBS}, got {n}"),
            ))
        }
    };
    let echo = req.echo.unwrap_or(false);
    let prompt = one_prompt(req.prompt, model.engine.n_vocab())?;
    let tok = std::sync::Arc::clone(&model.tokenizer);
    let (ids, echo_text) = blocking(move || {
        Ok(match prompt {
            Prompt::Text(s) => {
                let ids = tok.encode(&s, true, true).map_err(|e| {
                    ApiError::bad_request(format!("cannot tokenize the prompt: {e}"))
                })?;
                (ids, s)
            }
            Prompt::Tokens(ids) => {
                let text = tok.decode(&ids, false);
                (ids, text)
            }
        })
    })
    .await?;
    if ids.is_empty() {
        return Err(ApiError::bad_param("prompt", "the prompt is empty"));
    }
    let min = if echo { 0 } else { 1 };
    let max_tokens = params::max_tokens(
        common.max_tokens,
        "max_tokens",
        min,
        ids.len(),
        model.n_ctx(),
    )?;
    let prompt_ids = ids.clone();
    let request = Request {
        prompt: ids,
        max_tokens,
        sampling: settings.sampling,
        stop: settings.stop,
        stop_at_eog: settings.stop_at_eog,
        logprobs,
        prompt_logprobs: echo && logprobs.is_some() && !settings.stream,
        render_special: false,
        constraint: None,
        adapter: None,
    };
    let mut tracked = Tracked::submit(&state, &model, request, log.map(|Extension(l)| l))?;
    let id = new_id("cmpl-");
    let created = unix_now();
    let model_id = model.served_id();
    let tokenizer = Arc::clone(&model.tokenizer);
    let echo_text = echo.then_some(echo_text);
    let mut builder = LegacyBuilder::new();
    if settings.stream {
        if let Some(t) = &echo_text {
            builder.set_offset(t.chars().count());
        }
        let fmt = CompletionStream {
            id,
            created,
            model: model_id,
            fingerprint: fingerprint(),
            include_usage: settings.include_usage,
            tokenizer,
            echo: echo_text,
            logprobs: logprobs.is_some(),
            builder,
        };
        return Ok(sse::response(tracked, fmt, settings.include_usage));
    }
    let done = collect(&mut tracked).await?;
    drop(tracked);
    let finish_reason = finish_error(&done.finish.reason)?;
    let lp = logprobs.map(|_| {
        if let Some(t) = &echo_text {
            let prompt_lps = done.finish.prompt_logprobs.as_deref().unwrap_or(&[]);
            for (i, &pid) in prompt_ids.iter().enumerate() {
                let l = prompt_lps.get(i).and_then(Option::as_ref);
                builder.push(&tokenizer, pid, l);
            }
            builder.set_offset(t.chars().count());
        }
        for (tid, l) in &done.tokens {
            builder.push(&tokenizer, *tid, l.as_ref());
        }
        builder.take()
    });
    let text = match echo_text {
        Some(mut t) => {
            t.push_str(&done.text);
            t
        }
        None => done.text,
    };
    let f = &done.finish;
    Ok(Json(Completion {
        id: &id,
        object: "text_completion",
        created,
        model: &model_id,
        system_fingerprint: &fingerprint(),
        choices: vec![CompletionChoice {
            index: 0,
            text,
            logprobs: lp,
            finish_reason: Some(finish_reason),
        }],
        usage: Some(Some(Usage::new(
            f.prompt_tokens,
            f.completion_tokens,
            f.cached_tokens,
        ))),
    })
    .into_response())
}

/// Legacy completion chunk shapes for [`sse::response`].
struct CompletionStream {
    id: String,
    created: u64,
    model: String,
    fingerprint: String,
    include_usage: bool,
    tokenizer: Arc<Tokenizer>,
    echo: Option<String>,
    logprobs: bool,
    builder: LegacyBuilder,
}

impl CompletionStream {
    fn chunk(&self, choices: Vec<CompletionChoice>, usage: Option<Usage>) -> String {
        let c = Completion {
            id: &self.id,
            object: "text_completion",
            created: self.created,
            model: &self.model,
            system_fingerprint: &self.fingerprint,
            choices,
            usage: self.include_usage.then_some(usage),
        };
        serde_json::to_string(&c).unwrap_or_default()
    }

    fn text_choice(
        &self,
        text: String,
        logprobs: Option<crate::openai::LegacyLogprobs>,
        finish: Option<&'static str>,
    ) -> CompletionChoice {
        CompletionChoice {
            index: 0,
            text,
            logprobs,
            finish_reason: finish,
        }
    }
}

impl ChunkFormat for CompletionStream {
    fn opening(&mut self) -> Vec<String> {
        match self.echo.take() {
            Some(t) if !t.is_empty() => {
                let c = self.text_choice(t, None, None);
                vec![self.chunk(vec![c], None)]
            }
            _ => Vec::new(),
        }
    }

    fn content(&mut self, text: String, tokens: Vec<(u32, TokenLogprob)>) -> String {
        let lp = self.logprobs.then(|| {
            for (id, l) in &tokens {
                self.builder.push(&self.tokenizer, *id, Some(l));
            }
            self.builder.take()
        });
        let c = self.text_choice(text, lp, None);
        self.chunk(vec![c], None)
    }

    fn finish(&mut self, reason: &'static str) -> String {
        let c = self.text_choice(String::new(), None, Some(reason));
        self.chunk(vec![c], None)
    }

    fn usage(&mut self, usage: Usage) -> String {
        self.chunk(Vec::new(), Some(usage))
    }
}
