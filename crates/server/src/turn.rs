//! One chat turn, whatever API asked for it.
//!
//! OpenAI's Chat Completions, Anthropic's Messages and OpenAI's Responses all come down to
//! the same work: render a conversation (with tools) through the model's template, constrain
//! the reply when the request wants JSON or a tool call, generate, and sort the generated
//! text into reasoning, answer text and tool calls. That work lives here once; each API's
//! route only translates its request into a [`Turn`] and [`Piece`]s back into its own shapes.

use owl_engine::TokenLogprob;
use owl_grammar::Constraint;
use owl_text::tools::{ToolCall, ToolChoice, ToolSpec};
use owl_text::{ChatMessage, TemplateVars};

use crate::error::ApiError;
use crate::generation::RequestLog;
use crate::params::Settings;
use crate::state::AppState;

/// A checked chat request, in no API's shape.
pub struct Turn {
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
    pub tool_choice: ToolChoice,
    pub parallel_tool_calls: bool,
    /// A constraint on the reply text (`response_format`, `text.format`).
    pub output: Option<Constraint>,
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
    _private: (),
}

impl TurnStream {
    /// The next event; `None` after `Done`. An error ends the stream.
    pub async fn next(&mut self) -> Option<Result<TurnEvent, ApiError>> {
        None
    }
}

/// Checks, renders and submits `turn`. Errors are the request's (4xx) or the server's.
pub async fn start(
    _state: &AppState,
    _turn: Turn,
    _log: Option<RequestLog>,
) -> Result<TurnStream, ApiError> {
    Err(ApiError::server("turns are not wired yet"))
}

/// Runs `stream` to the end and assembles the reply.
pub async fn complete(_stream: TurnStream) -> Result<Reply, ApiError> {
    Err(ApiError::server("turns are not wired yet"))
}
