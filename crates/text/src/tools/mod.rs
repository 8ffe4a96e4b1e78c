//! OpenAI-shaped tool calling for every model family owl runs.
//!
//! Each family writes calls in its own markup, learned in training and shown by its chat
//! template. Four things are needed per family, and each family's file holds them:
//!
//! * **detection** ([`ToolFormat::detect`]): which markup the chat template uses;
//! * **prompting** ([`ToolFormat::prepare`]): the template itself describes the tools when
//!   given OpenAI's `tools` variable; templates that cannot (Generic, DeepSeek's official
//!   ones) get a system message instead;
//! * **parsing** ([`ToolFormat::parser`]): a streaming parser that turns reply content into
//!   text and calls, re-scanning a call's text as it grows (see `parser.rs`);
//! * **constraining** ([`ToolFormat::grammar`]): an llguidance Lark grammar that forces a call
//!   (`required`, a named function) or lets text run freely until the model opens a call and
//!   then holds the call to its schema (`auto`).
//!
//! Assistant turns with calls and `tool` results go back through the model's own template
//! ([`crate::ChatMessage::assistant_calls`], [`crate::ChatMessage::tool_result`]).
//!
//! gpt-oss (Harmony) writes calls on its `commentary` channel. The reasoning splitter, in its
//! tool mode ([`crate::ReplySplitter::keep_tool_calls`]), passes such messages on to content
//! as `<|start|>assistant to=functions.NAME<|message|>ARGS<|call|>`, which the Harmony parser
//! reads; everything else about the channels stays in `harmony.rs`.

mod deepseek;
mod delimited;
mod detect;
mod generic;
mod glm;
mod grammar;
mod harmony;
mod hermes;
mod id;
mod kimi;
mod llama3;
mod mistral;
mod parser;
mod prepare;
mod qwen3_coder;
mod scan;
mod types;
mod xml_params;

pub use id::new_call_id;
pub use parser::ToolCallParser;
pub use types::{empty_object_schema, ReplyPiece, ToolCall, ToolChoice, ToolSpec};

use crate::{ChatMessage, TemplateVars};
use parser::{Scan, StartOpen};

/// A family's tool-call markup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolFormat {
    /// Qwen2.5, Qwen3, Hermes 2/3: `<tool_call>{json}</tool_call>`.
    Hermes,
    /// Qwen3-Coder: `<tool_call><function=NAME><parameter=P>…</parameter></function></tool_call>`.
    Qwen3Coder,
    /// Llama 3.1–3.3: `{"name": …, "parameters": …}`, optionally after `<|python_tag|>`.
    Llama3,
    /// DeepSeek V3 / R1: `<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME` and a ```json block.
    DeepSeekV3,
    /// DeepSeek V3.1: `<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>`.
    DeepSeekV31,
    /// gpt-oss: a `commentary` message `to=functions.NAME`.
    Harmony,
    /// Mistral: `[TOOL_CALLS][{"name": …, "arguments": …}]` (or `[TOOL_CALLS]NAME[ARGS]{…}`).
    Mistral,
    /// Kimi K2: `<|tool_call_begin|>functions.NAME:N<|tool_call_argument_begin|>{…}`.
    KimiK2,
    /// GLM-4.5/4.6: `<tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value></tool_call>`.
    Glm45,
    /// The template has no tool support: a system message asks for a JSON reply.
    Generic,
}

impl ToolFormat {
    /// Detects the family from the chat template's Jinja source.
    pub fn detect(template_source: &str) -> ToolFormat {
        detect::detect(template_source)
    }

    /// Messages and extra template variables to render for a request with tools (see
    /// `prepare.rs`).
    pub fn prepare(
        &self,
        messages: &[ChatMessage],
        tools: &[ToolSpec],
        choice: &ToolChoice,
    ) -> (Vec<ChatMessage>, TemplateVars) {
        prepare::prepare(*self, messages, tools, choice)
    }

    /// A Lark grammar for llguidance constraining the reply, or `None` when the reply is free
    /// (see `grammar.rs`).
    pub fn grammar(
        &self,
        tools: &[ToolSpec],
        choice: &ToolChoice,
        parallel: bool,
    ) -> Option<String> {
        grammar::grammar(*self, tools, choice, parallel)
    }

    /// A streaming parser of the reply's content text (after any reasoning split).
    pub fn parser(&self, tools: &[ToolSpec]) -> ToolCallParser {
        ToolCallParser::new(*self, tools)
    }

    /// Whether this format needs special tokens rendered in the reply text to see its markers.
    pub fn needs_special_tokens(&self) -> bool {
        match self {
            // Qwen's `<tool_call>` is a user-defined (always rendered) token, and so are the
            // plain-text markups.
            ToolFormat::Hermes
            | ToolFormat::Qwen3Coder
            | ToolFormat::Glm45
            | ToolFormat::Generic => false,
            ToolFormat::Llama3
            | ToolFormat::DeepSeekV3
            | ToolFormat::DeepSeekV31
            | ToolFormat::Harmony
            | ToolFormat::Mistral
            | ToolFormat::KimiK2 => true,
        }
    }

    /// Markers that open a call region anywhere in the content.
    fn openers(&self) -> &'static [&'static str] {
        match self {
            ToolFormat::Hermes => hermes::OPENERS,
            ToolFormat::Qwen3Coder => qwen3_coder::OPENERS,
            ToolFormat::Llama3 => llama3::OPENERS,
            ToolFormat::DeepSeekV3 => deepseek::V3_OPENERS,
            ToolFormat::DeepSeekV31 => deepseek::V31_OPENERS,
            ToolFormat::Harmony => harmony::OPENERS,
            ToolFormat::Mistral => mistral::OPENERS,
            ToolFormat::KimiK2 => kimi::OPENERS,
            ToolFormat::Glm45 => glm::OPENERS,
            ToolFormat::Generic => &[],
        }
    }

    /// Whether the (whitespace-trimmed) start of the reply opens a region by itself.
    fn start_open(&self, start: &str) -> StartOpen {
        match self {
            ToolFormat::Llama3 => llama3::start_open(start),
            ToolFormat::Mistral => mistral::start_open(start),
            ToolFormat::Generic => generic::start_open(start),
            _ => StartOpen::No,
        }
    }

    /// Scans a region's text (starting at its opener).
    fn scan(&self, tools: &[ToolSpec], region: &str, eof: bool) -> Scan {
        match self {
            ToolFormat::Hermes => hermes::scan(region, eof),
            ToolFormat::Qwen3Coder => qwen3_coder::scan(tools, region, eof),
            ToolFormat::Llama3 => llama3::scan(region, eof),
            ToolFormat::DeepSeekV3 => deepseek::V3.scan(region, eof),
            ToolFormat::DeepSeekV31 => deepseek::V31.scan(region, eof),
            ToolFormat::Harmony => harmony::SYNTAX.scan(region, eof),
            ToolFormat::Mistral => mistral::scan(region, eof),
            ToolFormat::KimiK2 => kimi::SYNTAX.scan(region, eof),
            ToolFormat::Glm45 => glm::scan(tools, region, eof),
            ToolFormat::Generic => generic::scan(region, eof),
        }
    }
}

/// Non-streaming convenience: (content, calls).
pub fn parse_reply(format: ToolFormat, tools: &[ToolSpec], text: &str) -> (String, Vec<ToolCall>) {
    let mut p = format.parser(tools);
    let mut content = String::new();
    for piece in p.push(text).into_iter().chain(p.finish()) {
        if let ReplyPiece::Text(t) = piece {
            content.push_str(&t);
        }
    }
    (content, p.calls())
}
