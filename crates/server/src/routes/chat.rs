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
use owl_engine::TokenLogprob;
use owl_text::tools::{ToolCall, ToolChoice};
use owl_text::{ChatMessage, Tokenizer};
use std::convert::Infallible;
use std::sync::Arc;

use crate::body;
use crate::config::MAX_TOP_LOGPROBS;
use crate::error::ApiError;
use crate::generation::RequestLog;
use crate::ids::{fingerprint, new_id, unix_now};
use crate::logprobs::chat_entry;
use crate::openai::{
    AssistantMessage, ChatChoice, ChatChunk, ChatChunkChoice, ChatCompletion, ChatLogprobs,
    ChatMessageIn, ChatRequest, CommonFields, ContentPart, Delta, FunctionDelta, FunctionOut,
    MessageContent, ToolCallDelta, ToolCallOut, ToolIn, Usage,
};
use crate::params;
use crate::sse::{event_stream, frame, DONE};
use crate::state::AppState;
use crate::tool_params;
use crate::turn::{self, Ending, Piece, Turn, TurnEvent, TurnStream};

/// Every field this route reads; anything else but [`HARMLESS`] is refused with a 400.
const KNOWN: &[&str] = &[
    "messages",
    "model",
    "max_tokens",
    "max_completion_tokens",
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
    "logprobs",
    "top_logprobs",
    "chat_template_kwargs",
    "enable_thinking",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "reasoning_effort",
];

/// Fields that never change the reply (bookkeeping for OpenAI's platform); accepted and
/// dropped.
pub const HARMLESS: &[&str] = &[
    "user",
    "metadata",
    "store",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
];

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
            let role = role(&m.role, i)?;
            match (role, m.tool_calls) {
                ("assistant", Some(calls)) if !calls.is_empty() => {
                    let calls = calls
                        .into_iter()
                        .enumerate()
                        .map(|(j, c)| call_in(c, i, j))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(ChatMessage::assistant_calls(content, calls))
                }
                (_, Some(calls)) if !calls.is_empty() => Err(ApiError::bad_param(
                    &format!("messages[{i}].tool_calls"),
                    "only assistant messages carry `tool_calls`",
                )),
                ("tool", _) => {
                    let id = m.tool_call_id.ok_or_else(|| {
                        ApiError::bad_param(
                            &format!("messages[{i}].tool_call_id"),
                            "a tool message needs the `tool_call_id` it answers",
                        )
                    })?;
                    Ok(ChatMessage::tool_result(
                        id,
                        m.name.unwrap_or_default(),
                        content,
                    ))
                }
                _ => Ok(ChatMessage::new(role, content)),
            }
        })
        .collect()
}

/// A tool call of an earlier assistant turn.
fn call_in(c: crate::openai::ToolCallIn, i: usize, j: usize) -> Result<ToolCall, ApiError> {
    let field = format!("messages[{i}].tool_calls[{j}]");
    if c.kind.as_deref().is_some_and(|k| k != "function") {
        return Err(ApiError::bad_param(
            &format!("{field}.type"),
            "only function tool calls are supported",
        ));
    }
    let arguments = match c.function.arguments {
        None | Some(serde_json::Value::Null) => "{}".to_string(),
        Some(serde_json::Value::String(s)) => s,
        Some(v) => v.to_string(),
    };
    Ok(ToolCall {
        id: c.id.unwrap_or_else(|| format!("call_{i}_{j}")),
        name: c.function.name,
        arguments,
    })
}

/// The request's tools, checked.
fn tools(input: Option<Vec<ToolIn>>) -> Result<Vec<owl_text::tools::ToolSpec>, ApiError> {
    let mut out = Vec::new();
    for (i, t) in input.into_iter().flatten().enumerate() {
        let field = format!("tools[{i}]");
        if t.kind.as_deref() != Some("function") {
            return Err(ApiError::bad_param(
                &format!("{field}.type"),
                "only tools of type \"function\" are supported",
            ));
        }
        let f = t.function.ok_or_else(|| {
            ApiError::bad_param(&format!("{field}.function"), "a tool needs `function`")
        })?;
        out.push(tool_params::tool(
            &format!("{field}.function"),
            f.name.as_deref(),
            f.description.as_deref(),
            f.parameters.as_ref(),
            f.strict.unwrap_or(false),
        )?);
    }
    tool_params::unique(&out, "tools")?;
    Ok(out)
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
    body::check_fields(&bytes, KNOWN, HARMLESS)?;
    let model = state.model(common.model.as_deref()).await?;
    let mut common = common;
    params::with_model_defaults(&mut common, &model.spec().defaults.params);
    let settings = params::settings(&common, model.engine.n_vocab())?;
    let logprobs = logprobs_wanted(&req)?;
    let msgs = messages(req.messages)?;
    let tools = tools(req.tools)?;
    let default_choice = if tools.is_empty() {
        ToolChoice::None
    } else {
        ToolChoice::Auto
    };
    let choice = tool_params::openai_choice(req.tool_choice.as_ref())?.unwrap_or(default_choice);
    let choice = tool_params::choice(choice, &tools, "tool_choice")?;
    let output = tool_params::output_format(req.response_format.as_ref(), "response_format")?;
    let mut vars = req.chat_template_kwargs.unwrap_or_default();
    if let Some(on) = req.enable_thinking {
        vars.insert("enable_thinking".into(), serde_json::Value::Bool(on));
    }
    if let Some(effort) = req.reasoning_effort {
        if !["low", "medium", "high"].contains(&effort.as_str()) {
            return Err(ApiError::bad_param(
                "reasoning_effort",
                format!("`reasoning_effort` must be low, medium or high, got {effort:?}"),
            ));
        }
        vars.insert("reasoning_effort".into(), serde_json::Value::String(effort));
    }
    let (max_tokens, max_tokens_field) = match req.max_completion_tokens {
        Some(v) => (Some(v), "max_completion_tokens"),
        None => (common.max_tokens, "max_tokens"),
    };
    let stream_wanted = settings.stream;
    let include_usage = settings.include_usage;
    let turn = Turn {
        messages: msgs,
        tools,
        tool_choice: choice,
        parallel_tool_calls: req.parallel_tool_calls.unwrap_or(true),
        output,
        output_field: "response_format",
        settings,
        max_tokens,
        max_tokens_field,
        logprobs,
        template_vars: vars,
    };
    let stream = turn::start(&state, &model, turn, log.map(|Extension(l)| l)).await?;
    let id = new_id("chatcmpl-");
    let created = unix_now();
    let model_id = model.served_id();
    if stream_wanted {
        let sse = ChatSse {
            stream: Some(stream),
            id,
            created,
            model: model_id,
            fingerprint: fingerprint(),
            include_usage,
            tokenizer: Arc::clone(&model.tokenizer),
            started: false,
        };
        return Ok(sse.response());
    }
    let reply = turn::complete(stream).await?;
    let lp = logprobs.map(|_| ChatLogprobs {
        content: reply
            .tokens
            .iter()
            .filter_map(|(id, lp)| lp.as_ref().map(|l| chat_entry(&model.tokenizer, *id, l)))
            .collect(),
    });
    let u = reply.usage;
    let tool_calls: Vec<ToolCallOut> = reply
        .tool_calls
        .into_iter()
        .map(|c| ToolCallOut {
            id: c.id,
            kind: "function",
            function: FunctionOut {
                name: c.name,
                arguments: c.arguments,
            },
        })
        .collect();
    let content = (!reply.text.is_empty() || tool_calls.is_empty()).then_some(reply.text);
    Ok(Json(ChatCompletion {
        id,
        object: "chat.completion",
        created,
        model: model_id,
        system_fingerprint: fingerprint(),
        choices: vec![ChatChoice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content,
                reasoning_content: reply.reasoning,
                tool_calls,
            },
            logprobs: lp,
            finish_reason: finish_reason(reply.ending),
        }],
        usage: Usage::new(u.prompt, u.completion, u.cached),
    })
    .into_response())
}

/// OpenAI's `finish_reason`.
fn finish_reason(e: Ending) -> &'static str {
    match e {
        Ending::Stop => "stop",
        Ending::Length => "length",
        Ending::ToolCalls => "tool_calls",
    }
}

/// The streaming reply: a role chunk, one chunk per batch of pieces (content, reasoning and
/// tool-call deltas), the finish chunk, the usage chunk if asked for, `[DONE]`. The body owns
/// the turn, so a client that leaves cancels the generation.
struct ChatSse {
    stream: Option<TurnStream>,
    id: String,
    created: u64,
    model: String,
    fingerprint: String,
    include_usage: bool,
    tokenizer: Arc<Tokenizer>,
    started: bool,
}

impl ChatSse {
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
        frame(&serde_json::to_string(&c).unwrap_or_default())
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

    fn pieces(&self, pieces: Vec<Piece>, lps: Vec<(u32, TokenLogprob)>) -> String {
        let mut delta = Delta::default();
        for p in pieces {
            match p {
                Piece::Text(t) => delta.content.get_or_insert_with(String::new).push_str(&t),
                Piece::Reasoning(r) => delta
                    .reasoning_content
                    .get_or_insert_with(String::new)
                    .push_str(&r),
                Piece::CallBegin { index, id, name } => delta.tool_calls.push(ToolCallDelta {
                    index,
                    id: Some(id),
                    kind: Some("function"),
                    function: FunctionDelta {
                        name: Some(name),
                        arguments: String::new(),
                    },
                }),
                Piece::CallArgs { index, text } => delta.tool_calls.push(ToolCallDelta {
                    index,
                    id: None,
                    kind: None,
                    function: FunctionDelta {
                        name: None,
                        arguments: text,
                    },
                }),
            }
        }
        let lp = (!lps.is_empty()).then(|| ChatLogprobs {
            content: lps
                .iter()
                .map(|(id, l)| chat_entry(&self.tokenizer, *id, l))
                .collect(),
        });
        self.chunk(vec![Self::choice(delta, lp, None)], None)
    }

    async fn next_frames(&mut self) -> Option<Bytes> {
        if !self.started {
            self.started = true;
            let delta = Delta {
                role: Some("assistant"),
                content: Some(String::new()),
                ..Delta::default()
            };
            return Some(Bytes::from(
                self.chunk(vec![Self::choice(delta, None, None)], None),
            ));
        }
        let stream = self.stream.as_mut()?;
        match stream.next().await {
            Some(Ok(TurnEvent::Pieces(p, lps))) => Some(Bytes::from(self.pieces(p, lps))),
            Some(Ok(TurnEvent::Done { ending, usage })) => {
                self.stream = None;
                let mut out = self.chunk(
                    vec![Self::choice(
                        Delta::default(),
                        None,
                        Some(finish_reason(ending)),
                    )],
                    None,
                );
                if self.include_usage {
                    let u = Usage::new(usage.prompt, usage.completion, usage.cached);
                    out += &self.chunk(Vec::new(), Some(u));
                }
                out += DONE;
                Some(Bytes::from(out))
            }
            Some(Err(e)) => {
                self.stream = None;
                Some(Bytes::from(frame(&e.body()) + DONE))
            }
            None => {
                self.stream = None;
                None
            }
        }
    }

    fn response(self) -> Response {
        event_stream(futures_util::stream::unfold(self, |mut s| async move {
            s.next_frames()
                .await
                .map(|b| (Ok::<Bytes, Infallible>(b), s))
        }))
    }
}
