//! Kimi K2: `<|tool_calls_section_begin|><|tool_call_begin|>functions.NAME:N
//! <|tool_call_argument_begin|>{…}<|tool_call_end|>…<|tool_calls_section_end|>`, all special
//! tokens. The model's own ids (`functions.NAME:N`) are not kept: calls get OpenAI ids, and
//! the template rebuilds Kimi's ids from the names when the calls go back in.

use super::delimited::Delimited;
use super::grammar::{args_json, lit, Auto, Family};
use super::ToolSpec;

pub const SECTION_BEGIN: &str = "<|tool_calls_section_begin|>";
pub const SECTION_END: &str = "<|tool_calls_section_end|>";
pub const CALL_BEGIN: &str = "<|tool_call_begin|>";
pub const ARG_BEGIN: &str = "<|tool_call_argument_begin|>";
pub const CALL_END: &str = "<|tool_call_end|>";
pub const OPENERS: &[&str] = &[SECTION_BEGIN, CALL_BEGIN];

pub const SYNTAX: Delimited = Delimited {
    section_open: Some(SECTION_BEGIN),
    section_close: Some(SECTION_END),
    call_open: CALL_BEGIN,
    name_end: ARG_BEGIN,
    args_end: CALL_END,
    call_close: None,
    name: call_name,
};

/// `functions.get_weather:0` → `get_weather`.
fn call_name(s: &str) -> String {
    let s = s.trim();
    let s = s.strip_prefix("functions.").unwrap_or(s);
    match s.rfind(':') {
        Some(at) if s[at + 1..].bytes().all(|b| b.is_ascii_digit()) => s[..at].to_string(),
        _ => s.to_string(),
    }
}

pub const GRAMMAR: Family = Family {
    open: Some("<|tool_calls_section_begin|>"),
    close: Some("<|tool_calls_section_end|>"),
    sep: "\"\"",
    call,
    auto: Auto::Special,
    rules: "",
};

fn call(tool: &ToolSpec) -> String {
    format!(
        "<|tool_call_begin|> {} /[0-9]+/ <|tool_call_argument_begin|> {} <|tool_call_end|>",
        lit(&format!("functions.{}:", tool.name)),
        args_json(tool)
    )
}
