//! `POST /api/generate`: a completion in Ollama's shapes. The prompt goes through the chat
//! template as one user turn (after `system`, or the derived model's system prompt), or as
//! is with `raw: true`. An empty prompt only loads the model (`keep_alive: 0` unloads it).

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use owl_text::tools::ToolChoice;
use owl_text::ChatMessage;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body;
use crate::error::ApiError;
use crate::generation::RequestLog;
use crate::ollama::ndjson::{self, Kind, Meta};
use crate::ollama::options;
use crate::ollama::OllamaError;
use crate::params;
use crate::pool::KeepAlive;
use crate::state::AppState;
use crate::turn::{self, Turn};

const KNOWN: &[&str] = &[
    "model",
    "prompt",
    "suffix",
    "system",
    "template",
    "context",
    "stream",
    "raw",
    "format",
    "options",
    "keep_alive",
    "think",
    "images",
];

#[derive(Deserialize)]
struct GenerateIn {
    model: Option<String>,
    prompt: Option<String>,
    suffix: Option<String>,
    system: Option<String>,
    template: Option<String>,
    context: Option<Vec<i64>>,
    stream: Option<bool>,
    raw: Option<bool>,
    format: Option<Value>,
    options: Option<Value>,
    keep_alive: Option<Value>,
    think: Option<Value>,
    images: Option<Value>,
}

pub async fn generate(
    State(state): State<AppState>,
    log: Option<Extension<RequestLog>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OllamaError> {
    let started = Instant::now();
    let bytes = body::bytes(body)?;
    let req: GenerateIn = body::parse(&bytes)?;
    body::check_fields(&bytes, KNOWN, &[])?;
    options::no_images(req.images.as_ref(), "images")?;
    if req.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::bad_param(
            "suffix",
            "`suffix` (fill-in-the-middle) is not supported",
        )
        .into());
    }
    if req.template.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::bad_param(
            "template",
            "`template` (a Go template) is not supported: owl renders the model's own Jinja chat template; use `raw` to send a prompt as is",
        )
        .into());
    }
    if req.context.as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(ApiError::bad_param(
            "context",
            "`context` (token ids of an earlier reply) is not supported; use /api/chat for conversations",
        )
        .into());
    }
    let keep_alive = options::keep_alive(req.keep_alive.as_ref())?;
    let prompt = req.prompt.unwrap_or_default();
    if prompt.is_empty() {
        let unload = keep_alive == Some(KeepAlive::For(Duration::ZERO));
        let spec = state
            .pool()
            .preload(req.model.as_deref(), keep_alive)
            .await?;
        return Ok(Json(json!({
            "model": spec.id,
            "created_at": crate::ollama::time::now(),
            "response": "",
            "done": true,
            "done_reason": if unload { "unload" } else { "load" },
        }))
        .into_response());
    }
    let model = state.pool().get(req.model.as_deref(), keep_alive).await?;
    let load = started.elapsed();
    let opts = options::options(req.options.as_ref(), &model.spec().defaults.params)?;
    let mut settings = params::settings(&opts.common, model.engine.n_vocab())?;
    settings.stream = req.stream.unwrap_or(true);
    let stream_wanted = settings.stream;
    let output = options::format(req.format.as_ref())?;
    let log = log.map(|Extension(l)| l);
    let running = if req.raw.unwrap_or(false) {
        if req.system.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(ApiError::bad_param(
                "system",
                "`system` has no place in a `raw` prompt; put it in the prompt",
            )
            .into());
        }
        turn::start_raw(
            &state,
            &model,
            prompt,
            settings,
            (options::max_tokens(&opts), "options.num_predict"),
            output.map(|c| (c, "format")),
            log,
        )
        .await?
    } else {
        let mut messages = Vec::new();
        if let Some(s) = req.system.filter(|s| !s.is_empty()) {
            messages.push(ChatMessage::new("system", s));
        }
        messages.push(ChatMessage::new("user", prompt));
        let turn = Turn {
            messages,
            tools: Vec::new(),
            tool_choice: ToolChoice::None,
            parallel_tool_calls: false,
            output,
            output_field: "format",
            settings,
            max_tokens: options::max_tokens(&opts),
            max_tokens_field: "options.num_predict",
            logprobs: None,
            template_vars: options::think(req.think.as_ref())?,
        };
        turn::start(&state, &model, turn, log).await?
    };
    let meta = Meta {
        kind: Kind::Generate,
        model: model.spec().id.clone(),
        started,
        load,
        show_thinking: options::thinking_shown(req.think.as_ref()),
    };
    if stream_wanted {
        return Ok(ndjson::stream(running, meta));
    }
    Ok(Json(ndjson::complete(running, meta).await?).into_response())
}
