//! One chat turn, whatever API asked for it.
//!
//! OpenAI's Chat Completions, Anthropic's Messages and OpenAI's Responses all come down to
//! the same work: render a conversation (with tools) through the model's template, constrain
//! the reply when the request wants JSON or a tool call, generate, and sort the generated
//! text into reasoning, answer text and tool calls. That work lives here once; each API's
//! route only translates its request into a [`Turn`] and [`Piece`]s back into its own shapes.

use std::collections::VecDeque;

use owl_engine::{Event, Request, TokenLogprob};
use owl_grammar::{Constraint, GrammarError, TokenConstraint};
use owl_text::tools::{ReplyPiece, ToolCall, ToolCallParser, ToolChoice, ToolSpec};
use owl_text::{ChatMessage, ChatPrompt, ChatPromptError, ReplySplitter, TemplateVars};

use crate::error::ApiError;
use crate::generation::{finish_error, RequestLog, Tracked};
use crate::model::LoadedModel;
use crate::params::{self, Settings};
use crate::pool::Lease;
use crate::routes::blocking;
use crate::state::AppState;

/// A checked chat request, in no API's shape.
pub struct Turn {
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
    pub tool_choice: ToolChoice,
    pub parallel_tool_calls: bool,
    /// A constraint on the reply text (`response_format`, `text.format`).
    pub output: Option<Constraint>,
    /// The request field that carried `output` (named in errors).
    pub output_field: &'static str,
    pub settings: Settings,
    /// The requested maximum of generated tokens and the field that carried it (for errors).
    pub max_tokens: Option<i64>,
    pub max_tokens_field: &'static str,
    /// Logprobs with this many alternatives per token.
    pub logprobs: Option<usize>,
    /// Extra template variables (`enable_thinking`, …).
    pub template_vars: TemplateVars,
}

/// A piece of the reply, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Thinking of a reasoning model.
    Reasoning(String),
    /// Answer text.
    Text(String),
    /// A tool call opens: its id and function name come first.
    CallBegin {
        index: usize,
        id: String,
        name: String,
    },
    /// More of call `index`'s arguments (a JSON text, in pieces).
    CallArgs { index: usize, text: String },
}

/// Why the reply ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// End of generation or a stop string.
    Stop,
    /// `max_tokens` or the context.
    Length,
    /// The reply is one or more tool calls.
    ToolCalls,
}

/// Token counts of a finished turn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TurnUsage {
    pub prompt: usize,
    pub completion: usize,
    /// Prompt tokens reused from the prefix cache.
    pub cached: usize,
}

/// What a running turn reports.
#[derive(Clone, Debug)]
pub enum TurnEvent {
    /// Pieces released by the latest tokens, with those tokens' logprobs (if asked for).
    Pieces(Vec<Piece>, Vec<(u32, TokenLogprob)>),
    /// The end; nothing follows.
    Done { ending: Ending, usage: TurnUsage },
}

/// A whole reply (non-streaming).
#[derive(Clone, Debug)]
pub struct Reply {
    /// The thinking, when the model is a reasoning model (possibly empty).
    pub reasoning: Option<String>,
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub ending: Ending,
    pub usage: TurnUsage,
    /// Generated tokens with their logprobs (if asked for).
    pub tokens: Vec<(u32, Option<TokenLogprob>)>,
}

/// A submitted turn. Dropping it cancels the generation.
pub struct TurnStream {
    tracked: Option<Tracked>,
    splitter: Option<ReplySplitter>,
    parser: Option<ToolCallParser>,
    /// Logprobs of tokens whose text has not come out as a piece yet.
    pending: Vec<(u32, TokenLogprob)>,
    queue: VecDeque<TurnEvent>,
    calls: usize,
    /// Prompt tokens (for the usage of a turn that ends early).
    prompt_tokens: usize,
}

/// What [`start`] prepares off the async workers.
struct Prepared {
    ids: Vec<u32>,
    splitter: Option<ReplySplitter>,
    parser: Option<ToolCallParser>,
    constraint: Option<TokenConstraint>,
    render_special: bool,
}

/// Renders the conversation (tools in the model's own format) and compiles the constraint.
fn prepare(m: &LoadedModel, turn: &mut Turn) -> Result<Prepared, ApiError> {
    if m.engine.is_encoder() {
        return Err(owl_engine::SubmitError::EncoderOnly.into());
    }
    let template = m.template.as_ref().ok_or_else(|| {
        ApiError::bad_request("this model has no chat template; use /v1/completions")
    })?;
    let format = template.tool_format();
    let calls_allowed = !turn.tools.is_empty() && turn.tool_choice != ToolChoice::None;
    let mut messages = std::mem::take(&mut turn.messages);
    name_tool_results(&mut messages);
    let (messages, mut vars) = if turn.tools.is_empty() {
        (messages, TemplateVars::new())
    } else {
        format.prepare(&messages, &turn.tools, &turn.tool_choice)
    };
    for (k, v) in std::mem::take(&mut turn.template_vars) {
        vars.insert(k, v);
    }
    let prompt =
        ChatPrompt::render(template, &m.tokenizer, &messages, &vars).map_err(|e| match e {
            ChatPromptError::Template(_) => ApiError::bad_param("messages", e.to_string()),
            ChatPromptError::Tokenize(_) => ApiError::bad_request(e.to_string()),
        })?;
    let tool_grammar = if calls_allowed {
        format.grammar(&turn.tools, &turn.tool_choice, turn.parallel_tool_calls)
    } else {
        None
    };
    let (constraint, field) = match (tool_grammar, turn.output.take()) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_param(
                turn.output_field,
                format!(
                    "`{}` cannot be combined with tool calls on this server; drop it or set the tool choice to none",
                    turn.output_field
                ),
            ))
        }
        (Some(g), None) => (Some(Constraint::Lark(g)), "tools"),
        (None, o) => (o, turn.output_field),
    };
    let constraint = match constraint {
        None => None,
        Some(c) => {
            let grammars = m.grammars().map_err(|e| {
                ApiError::server(format!("constrained decoding is unavailable: {e}"))
            })?;
            Some(grammars.compile(&c).map_err(|e| match e {
                GrammarError::Invalid(msg) => {
                    ApiError::bad_param(field, format!("invalid `{field}`: {msg}"))
                }
                other => ApiError::server(other.to_string()),
            })?)
        }
    };
    let render_special =
        prompt.needs_special_tokens() || (calls_allowed && format.needs_special_tokens());
    let mut splitter = prompt.splitter;
    if calls_allowed {
        if let Some(s) = splitter.as_mut() {
            // gpt-oss: calls (messages to `functions.NAME`) go to the tool parser.
            s.keep_tool_calls();
        }
    }
    Ok(Prepared {
        ids: prompt.ids,
        splitter,
        parser: calls_allowed.then(|| format.parser(&turn.tools)),
        constraint,
        render_special,
    })
}

/// Gives each `tool` result without a function name the name of the call it answers (OpenAI
/// sends only the call id; several templates print the name).
fn name_tool_results(messages: &mut [ChatMessage]) {
    let mut names: Vec<(String, String)> = Vec::new();
    for m in messages.iter_mut() {
        for c in &m.tool_calls {
            names.push((c.id.clone(), c.name.clone()));
        }
        if m.role == "tool" && m.name.as_deref().is_none_or(str::is_empty) {
            if let Some(id) = &m.tool_call_id {
                m.name = names.iter().find(|(i, _)| i == id).map(|(_, n)| n.clone());
            }
        }
    }
}

/// Checks, renders and submits `turn`. Errors are the request's (4xx) or the server's.
pub async fn start(
    state: &AppState,
    model: &Lease,
    mut turn: Turn,
    log: Option<RequestLog>,
) -> Result<TurnStream, ApiError> {
    with_default_system(model, &mut turn);
    let m = model.share();
    let (p, turn) = blocking(move || {
        let p = prepare(&m, &mut turn)?;
        Ok((p, turn))
    })
    .await?;
    let max_tokens = params::max_tokens(
        turn.max_tokens,
        turn.max_tokens_field,
        1,
        p.ids.len(),
        model.n_ctx(),
    )?;
    let prompt_tokens = p.ids.len();
    let request = Request {
        prompt: p.ids,
        max_tokens,
        sampling: turn.settings.sampling,
        stop: turn.settings.stop,
        stop_at_eog: turn.settings.stop_at_eog,
        logprobs: turn.logprobs,
        prompt_logprobs: false,
        render_special: p.render_special,
        constraint: p.constraint,
        adapter: None,
    };
    let tracked = Tracked::submit(state, model, request, log)?;
    Ok(TurnStream {
        tracked: Some(tracked),
        splitter: p.splitter,
        parser: p.parser,
        pending: Vec::new(),
        queue: VecDeque::new(),
        calls: 0,
        prompt_tokens,
    })
}

/// Submits a plain completion of `prompt` (no chat template: Ollama's `raw` mode), tokenized
/// with the model's BOS and control tokens parsed, as llama-server does.
pub async fn start_raw(
    state: &AppState,
    model: &Lease,
    prompt: String,
    settings: Settings,
    max_tokens: (Option<i64>, &'static str),
    output: Option<(Constraint, &'static str)>,
    log: Option<RequestLog>,
) -> Result<TurnStream, ApiError> {
    let m = model.share();
    let (ids, constraint) = blocking(move || {
        let ids = m.tokenizer.encode(&prompt, true, true).map_err(|e| {
            ApiError::bad_param("prompt", format!("cannot tokenize the prompt: {e}"))
        })?;
        let constraint = match output {
            None => None,
            Some((c, field)) => {
                let g = m.grammars().map_err(|e| {
                    ApiError::server(format!("constrained decoding is unavailable: {e}"))
                })?;
                Some(g.compile(&c).map_err(|e| match e {
                    GrammarError::Invalid(msg) => {
                        ApiError::bad_param(field, format!("invalid `{field}`: {msg}"))
                    }
                    other => ApiError::server(other.to_string()),
                })?)
            }
        };
        Ok((ids, constraint))
    })
    .await?;
    if ids.is_empty() {
        return Err(ApiError::bad_param("prompt", "the prompt is empty"));
    }
    let max_tokens = params::max_tokens(max_tokens.0, max_tokens.1, 1, ids.len(), model.n_ctx())?;
    let prompt_tokens = ids.len();
    let request = Request {
        prompt: ids,
        max_tokens,
        sampling: settings.sampling,
        stop: settings.stop,
        stop_at_eog: settings.stop_at_eog,
        logprobs: None,
        prompt_logprobs: false,
        render_special: false,
        constraint,
        adapter: None,
    };
    let tracked = Tracked::submit(state, model, request, log)?;
    Ok(TurnStream {
        tracked: Some(tracked),
        splitter: None,
        parser: None,
        pending: Vec::new(),
        queue: VecDeque::new(),
        calls: 0,
        prompt_tokens,
    })
}

/// Prompt tokens of `turn`, rendered exactly as [`start`] renders it (tools included), for
/// Anthropic's `count_tokens`. The reply constraint is not compiled: it changes no prompt.
pub async fn prompt_tokens(model: &Lease, mut turn: Turn) -> Result<usize, ApiError> {
    turn.output = None;
    with_default_system(model, &mut turn);
    let m = model.share();
    blocking(move || prepare(&m, &mut turn).map(|p| p.ids.len())).await
}

/// A derived model's system prompt opens a conversation that has none.
fn with_default_system(model: &Lease, turn: &mut Turn) {
    if let Some(system) = &model.spec().defaults.system {
        if !turn.messages.iter().any(|m| m.role == "system") {
            turn.messages
                .insert(0, ChatMessage::new("system", system.clone()));
        }
    }
}

impl TurnStream {
    /// Whether the reply is split into reasoning and answer (a reasoning model).
    pub fn reasons(&self) -> bool {
        self.splitter.is_some()
    }

    /// The next event; `None` after `Done`. An error ends the stream.
    pub async fn next(&mut self) -> Option<Result<TurnEvent, ApiError>> {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Some(Ok(ev));
            }
            let tracked = self.tracked.as_mut()?;
            match tracked.next().await {
                Some(Event::Token { id, text, logprob }) => {
                    if let Some(lp) = logprob {
                        self.pending.push((id, lp));
                    }
                    if text.is_empty() {
                        continue;
                    }
                    let pieces = self.sort(&text);
                    if !pieces.is_empty() {
                        let lps = std::mem::take(&mut self.pending);
                        return Some(Ok(TurnEvent::Pieces(pieces, lps)));
                    }
                }
                Some(Event::Done(f)) => {
                    self.tracked = None;
                    let reason = match finish_error(&f.reason) {
                        Ok(r) => r,
                        Err(e) => return Some(Err(e)),
                    };
                    let mut pieces = self.sort(&f.text);
                    pieces.extend(self.flush());
                    if !pieces.is_empty() || !self.pending.is_empty() {
                        let lps = std::mem::take(&mut self.pending);
                        self.queue.push_back(TurnEvent::Pieces(pieces, lps));
                    }
                    let ending = match reason {
                        "length" => Ending::Length,
                        _ if self.calls > 0 => Ending::ToolCalls,
                        _ => Ending::Stop,
                    };
                    let usage = TurnUsage {
                        prompt: f.prompt_tokens,
                        completion: f.completion_tokens,
                        cached: f.cached_tokens,
                    };
                    self.queue.push_back(TurnEvent::Done { ending, usage });
                }
                None => {
                    self.tracked = None;
                    return Some(Err(ApiError::server(
                        "the engine stopped before the request finished",
                    )));
                }
            }
        }
    }

    /// Prompt tokens of the turn.
    pub fn prompt_tokens(&self) -> usize {
        self.prompt_tokens
    }

    /// Sorts released text into reasoning, answer text and tool calls.
    fn sort(&mut self, text: &str) -> Vec<Piece> {
        let (reasoning, content) = match self.splitter.as_mut() {
            None => (String::new(), text.to_string()),
            Some(s) => s.push(text),
        };
        self.pieces(reasoning, content, false)
    }

    /// The end of the reply: whatever the splitter and the parser held back.
    fn flush(&mut self) -> Vec<Piece> {
        let (reasoning, content) = match self.splitter.as_mut() {
            None => (String::new(), String::new()),
            Some(s) => s.finish(),
        };
        self.pieces(reasoning, content, true)
    }

    fn pieces(&mut self, reasoning: String, content: String, last: bool) -> Vec<Piece> {
        let mut out = Vec::new();
        if !reasoning.is_empty() {
            out.push(Piece::Reasoning(reasoning));
        }
        match self.parser.as_mut() {
            None => {
                if !content.is_empty() {
                    out.push(Piece::Text(content));
                }
            }
            Some(p) => {
                let mut rp = if content.is_empty() {
                    Vec::new()
                } else {
                    p.push(&content)
                };
                if last {
                    rp.extend(p.finish());
                }
                for piece in rp {
                    out.push(match piece {
                        ReplyPiece::Text(t) => Piece::Text(t),
                        ReplyPiece::CallBegin { index, id, name } => {
                            self.calls += 1;
                            Piece::CallBegin { index, id, name }
                        }
                        ReplyPiece::CallArgs { index, text } => Piece::CallArgs { index, text },
                    });
                }
            }
        }
        out.retain(|p| !matches!(p, Piece::Text(t) | Piece::Reasoning(t) if t.is_empty()));
        out
    }
}

/// Runs `stream` to the end and assembles the reply.
pub async fn complete(mut stream: TurnStream) -> Result<Reply, ApiError> {
    let mut reasoning = stream.reasons().then(String::new);
    let mut text = String::new();
    let mut calls: Vec<ToolCall> = Vec::new();
    let mut tokens = Vec::new();
    while let Some(ev) = stream.next().await {
        match ev? {
            TurnEvent::Pieces(pieces, lps) => {
                tokens.extend(lps.into_iter().map(|(id, lp)| (id, Some(lp))));
                for p in pieces {
                    match p {
                        Piece::Reasoning(r) => {
                            reasoning.get_or_insert_with(String::new).push_str(&r)
                        }
                        Piece::Text(t) => text.push_str(&t),
                        Piece::CallBegin { index, id, name } => {
                            if calls.len() <= index {
                                calls.resize_with(index + 1, || ToolCall {
                                    id: String::new(),
                                    name: String::new(),
                                    arguments: String::new(),
                                });
                            }
                            calls[index].id = id;
                            calls[index].name = name;
                        }
                        Piece::CallArgs { index, text } => {
                            if let Some(c) = calls.get_mut(index) {
                                c.arguments.push_str(&text);
                            }
                        }
                    }
                }
            }
            TurnEvent::Done { ending, usage } => {
                return Ok(Reply {
                    reasoning,
                    text,
                    tool_calls: calls,
                    ending,
                    usage,
                    tokens,
                })
            }
        }
    }
    Err(ApiError::server(
        "the engine stopped before the request finished",
    ))
}
