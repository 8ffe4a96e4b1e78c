//! `POST /v1/chat/completions`.
//!
//! The conversation is rendered with the model's chat template (generation prompt added) and
//! tokenized exactly as `owl run` does (BOS per the model, control tokens parsed), so the
//! server and the CLI see the same prompt tokens. `model`, when given, must name the served
//! model (else 404). `max_tokens` / `max_completion_tokens` default to, and are capped at,
//! what the context leaves after the prompt.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use owl_engine::{Request, TokenLogprob};
use owl_text::{ChatMessage, ChatPrompt, ChatPromptError, ReplySplitter, Tokenizer};
use std::sync::Arc;

use crate::body;
use crate::config::MAX_TOP_LOGPROBS;
use crate::error::ApiError;
use crate::generation::{collect, RequestLog, Tracked};
use crate::ids::{fingerprint, new_id, unix_now};
use crate::logprobs::chat_entry;
use crate::openai::{
    AssistantMessage, ChatChoice, ChatChunk, ChatChunkChoice, ChatCompletion, ChatLogprobs,
    ChatMessageIn, ChatRequest, CommonFields, ContentPart, Delta, MessageContent, Usage,
};
use crate::params;
use crate::routes::blocking;
use crate::sse::{self, ChunkFormat};
use crate::state::AppState;

/// Roles the template may see; `developer` (OpenAI's newer name) becomes `system`.
fn role(r: &str, i: usize) -> Result<&'static str, ApiError> {
    Ok(match r {
        "system" | "developer" => "system",
        "user" => "user",
        "assistant" => "assistant",
        "tool" => "tool",
        other => {
            return Err(ApiError::bad_param(
                &format!("messages[{i}].role"),
                format!("unsupported role {other:?}: use system, user, assistant or tool"),
            ))
        }
    })
}

fn text_of(parts: Vec<ContentPart>, i: usize) -> Result<String, ApiError> {
    let mut out = String::new();
    for (j, p) in parts.into_iter().enumerate() {
        match (p.kind.as_str(), p.text) {
            ("text", Some(t)) => out.push_str(&t),
            ("text", None) => {
                return Err(ApiError::bad_param(
                    &format!("messages[{i}].content[{j}].text"),
                    "a text part needs `text`",
                ))
            }
            (kind, _) => {
                return Err(ApiError::bad_param(
                    &format!("messages[{i}].content[{j}].type"),
                    format!("unsupported content part type {kind:?}: only \"text\" is supported"),
                ))
            }
        }
    }
    Ok(out)
}

fn messages(input: Option<Vec<ChatMessageIn>>) -> Result<Vec<ChatMessage>, ApiError> {
    let input = input.ok_or_else(|| ApiError::bad_param("messages", "`messages` is required"))?;
    if input.is_empty() {
        return Err(ApiError::bad_param(
            "messages",
            "`messages` must hold at least one message",
        ));
    }
    input
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let content = match m.content {
                None => String::new(),
                Some(MessageContent::Text(t)) => t,
                Some(MessageContent::Parts(p)) => text_of(p, i)?,
            };
            Ok(ChatMessage::new(role(&m.role, i)?, content))
        })
        .collect()
}

fn logprobs_wanted(req: &ChatRequest) -> Result<Option<usize>, ApiError> {
    let top = req.top_logprobs;
    if let Some(n) = top {
        if !(0..=MAX_TOP_LOGPROBS).contains(&n) {
            return Err(ApiError::bad_param(
                "top_logprobs",
                format!("`top_logprobs` must be between 0 and {MAX_TOP_LOGPROBS}, got {n}"),
            ));
        }
    }
    match (req.logprobs.unwrap_or(false), top) {
        (true, n) => Ok(Some(n.unwrap_or(0) as usize)),
        (false, Some(n)) if n > 0 => Err(ApiError::bad_param(
            "top_logprobs",
            "`top_logprobs` needs `logprobs: true`",
        )),
        (false, _) => Ok(None),
    }
}

pub async fn chat(
    State(state): State<AppState>,
    log: Option<Extension<RequestLog>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body::bytes(body)?;
    let common: CommonFields = body::parse(&bytes)?;
    let req: ChatRequest = body::parse(&bytes)?;
    state.check_model(common.model.as_deref())?;
    let model = state.model()?;
    let settings = params::settings(&common, model.engine.n_vocab())?;
    let logprobs = logprobs_wanted(&req)?;
    let msgs = messages(req.messages)?;
    let mut extra = req.chat_template_kwargs.unwrap_or_default();
    if let Some(on) = req.enable_thinking {
        extra.insert("enable_thinking".into(), serde_json::Value::Bool(on));
    }
    if model.template.is_none() {
        return Err(ApiError::bad_request(
            "this model has no chat template; use /v1/completions",
        ));
    }
    let st = state.clone();
    let prompt = blocking(move || {
        let m = st.model()?;
        let t = m
            .template
            .as_ref()
            .ok_or_else(|| ApiError::server("no template"))?;
        ChatPrompt::render(t, &m.tokenizer, &msgs, &extra).map_err(|e| match e {
            ChatPromptError::Template(_) => ApiError::bad_param("messages", e.to_string()),
            ChatPromptError::Tokenize(_) => ApiError::bad_request(e.to_string()),
        })
    })
    .await?;
    let render_special = prompt.needs_special_tokens();
    let ChatPrompt {
        ids: prompt,
        mut splitter,
    } = prompt;
    let max_tokens = match req.max_completion_tokens {
        Some(v) => params::max_tokens(
            Some(v),
            "max_completion_tokens",
            1,
            prompt.len(),
            model.n_ctx(),
        )?,
        None => params::max_tokens(
            common.max_tokens,
            "max_tokens",
            1,
            prompt.len(),
            model.n_ctx(),
        )?,
    };
    let request = Request {
        prompt,
        max_tokens,
        sampling: settings.sampling,
        stop: settings.stop,
        stop_at_eog: settings.stop_at_eog,
        logprobs,
        prompt_logprobs: false,
        render_special,
        constraint: None,
    };
    let mut tracked = Tracked::submit(&state, model, request, log.map(|Extension(l)| l))?;
    let id = new_id("chatcmpl-");
    let created = unix_now();
    let model_id = state.config().model_id.clone();
    if settings.stream {
        let fmt = ChatStream {
            id,
            created,
            model: model_id,
            fingerprint: fingerprint(),
            include_usage: settings.include_usage,
            tokenizer: Arc::clone(&model.tokenizer),
            splitter,
        };
        return Ok(sse::response(tracked, fmt, settings.include_usage));
    }
    let done = collect(&mut tracked).await?;
    drop(tracked);
    let finish_reason = crate::generation::finish_error(&done.finish.reason)?;
    let lp = logprobs.map(|_| ChatLogprobs {
        content: done
            .tokens
            .iter()
            .filter_map(|(id, lp)| lp.as_ref().map(|l| chat_entry(&model.tokenizer, *id, l)))
            .collect(),
    });
    let f = &done.finish;
    Ok(Json(ChatCompletion {
        id,
        object: "chat.completion",
        created,
        model: model_id,
        system_fingerprint: fingerprint(),
        choices: vec![ChatChoice {
            index: 0,
            message: split_message(done.text, splitter.as_mut()),
            logprobs: lp,
            finish_reason,
        }],
        usage: Usage::new(f.prompt_tokens, f.completion_tokens, f.cached_tokens),
    })
    .into_response())
}

/// The reply as a message, its thinking (if the template thinks) in `reasoning_content`.
fn split_message(text: String, splitter: Option<&mut ReplySplitter>) -> AssistantMessage {
    match splitter {
        None => AssistantMessage {
            role: "assistant",
            content: text,
            reasoning_content: None,
        },
        Some(s) => {
            let (r, c) = s.split_whole(&text);
            AssistantMessage {
                role: "assistant",
                content: c,
                reasoning_content: Some(r),
            }
        }
    }
}

/// Chat chunk shapes for [`sse::response`].
struct ChatStream {
    id: String,
    created: u64,
    model: String,
    fingerprint: String,
    include_usage: bool,
    tokenizer: Arc<Tokenizer>,
    splitter: Option<ReplySplitter>,
}

impl ChatStream {
    fn chunk(&self, choices: Vec<ChatChunkChoice>, usage: Option<Usage>) -> String {
        let c = ChatChunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            system_fingerprint: &self.fingerprint,
            choices,
            usage: self.include_usage.then_some(usage),
        };
        serde_json::to_string(&c).unwrap_or_default()
    }

    fn choice(
        delta: Delta,
        logprobs: Option<ChatLogprobs>,
        finish: Option<&'static str>,
    ) -> ChatChunkChoice {
        ChatChunkChoice {
            index: 0,
            delta,
            logprobs,
            finish_reason: finish,
        }
    }
}

/// A delta carrying what the splitter released (fields left out when empty).
fn split_delta((reasoning, content): (String, String)) -> Delta {
    Delta {
        content: (!content.is_empty()).then_some(content),
        reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
        ..Delta::default()
    }
}

impl ChunkFormat for ChatStream {
    fn opening(&mut self) -> Vec<String> {
        let delta = Delta {
            role: Some("assistant"),
            content: Some(String::new()),
            reasoning_content: None,
        };
        vec![self.chunk(vec![Self::choice(delta, None, None)], None)]
    }

    fn content(&mut self, text: String, tokens: Vec<(u32, TokenLogprob)>) -> String {
        let lp = (!tokens.is_empty()).then(|| ChatLogprobs {
            content: tokens
                .iter()
                .map(|(id, l)| chat_entry(&self.tokenizer, *id, l))
                .collect(),
        });
        let delta = match self.splitter.as_mut() {
            None => Delta {
                content: Some(text),
                ..Delta::default()
            },
            Some(s) => split_delta(s.push(&text)),
        };
        self.chunk(vec![Self::choice(delta, lp, None)], None)
    }

    fn finish(&mut self, reason: &'static str) -> String {
        let delta = match self.splitter.as_mut() {
            None => Delta::default(),
            Some(s) => split_delta(s.finish()),
        };
        self.chunk(vec![Self::choice(delta, None, Some(reason))], None)
    }

    fn usage(&mut self, usage: Usage) -> String {
        self.chunk(Vec::new(), Some(usage))
    }
}
