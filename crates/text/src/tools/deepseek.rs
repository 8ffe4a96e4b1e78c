//! DeepSeek's markup (full-width bars and `▁` in the markers, as its tokenizer has them).
//!
//! V3 and R1 write `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n
//! ```json\n{ARGS}\n```<｜tool▁call▁end｜>…<｜tool▁calls▁end｜>`; V3.1 drops the type and the
//! code fence: `<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{ARGS}<｜tool▁call▁end｜>`. Their official
//! templates do not show the tools to the model, so `prepare` adds a system message in
//! DeepSeek's documented wording.

use super::delimited::Delimited;
use super::grammar::{args_json, lit, Auto, Family};
use super::ToolSpec;

pub const CALLS_BEGIN: &str = "<｜tool▁calls▁begin｜>";
pub const CALLS_END: &str = "<｜tool▁calls▁end｜>";
pub const CALL_BEGIN: &str = "<｜tool▁call▁begin｜>";
pub const CALL_END: &str = "<｜tool▁call▁end｜>";
pub const SEP: &str = "<｜tool▁sep｜>";

pub const V3_OPENERS: &[&str] = &[CALLS_BEGIN, CALL_BEGIN];
pub const V31_OPENERS: &[&str] = V3_OPENERS;

pub const V3: Delimited = Delimited {
    section_open: Some(CALLS_BEGIN),
    section_close: Some(CALLS_END),
    call_open: CALL_BEGIN,
    name_end: "```json",
    args_end: "```",
    call_close: Some(CALL_END),
    name: v3_name,
};

pub const V31: Delimited = Delimited {
    section_open: Some(CALLS_BEGIN),
    section_close: Some(CALLS_END),
    call_open: CALL_BEGIN,
    name_end: SEP,
    args_end: CALL_END,
    call_close: None,
    name: |s| s.trim().to_string(),
};

/// `function<｜tool▁sep｜>NAME\n` → `NAME`.
fn v3_name(s: &str) -> String {
    match s.find(SEP) {
        Some(at) => s[at + SEP.len()..].trim().to_string(),
        None => s.trim().to_string(),
    }
}

/// The system text that shows V3/R1 (`v31` false) or V3.1 the tools and the call markup.
pub fn system_prompt(tools: &[ToolSpec], v31: bool) -> String {
    let mut s = String::from("## Tools\nYou have access to the following tools:\n");
    for t in tools {
        s.push_str(&format!("\n### {}\n", t.name));
        if let Some(d) = &t.description {
            s.push_str(&format!("Description: {d}\n"));
        }
        s.push_str(&format!("\nParameters: {}\n", t.parameters));
    }
    s.push_str("\nIMPORTANT: ALWAYS adhere to this exact format for tool use:\n");
    if v31 {
        s.push_str(&format!(
            "{CALLS_BEGIN}{CALL_BEGIN}tool_call_name{SEP}tool_call_arguments{CALL_END}{{additional_tool_calls}}{CALLS_END}\n\n\
             Where:\n- `tool_call_name` must be an exact match to one of the available tools\n\
             - `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters Schema\n"
        ));
    } else {
        s.push_str(&format!(
            "{CALLS_BEGIN}{CALL_BEGIN}function{SEP}tool_call_name\n```json\ntool_call_arguments\n```{CALL_END}{{additional_tool_calls}}{CALLS_END}\n\n\
             Where `tool_call_arguments` is valid JSON that strictly follows the tool's Parameters Schema.\n"
        ));
    }
    s
}

/// Grammar pieces for V3/R1.
pub const V3_GRAMMAR: Family = Family {
    open: Some(CALLS_BEGIN_SPECIAL),
    close: Some(CALLS_END_SPECIAL),
    sep: "\"\\n\"",
    call: v3_call,
    auto: Auto::Special,
    rules: "",
};

/// Grammar pieces for V3.1.
pub const V31_GRAMMAR: Family = Family {
    open: Some(CALLS_BEGIN_SPECIAL),
    close: Some(CALLS_END_SPECIAL),
    sep: "\"\"",
    call: v31_call,
    auto: Auto::Special,
    rules: "",
};

const CALLS_BEGIN_SPECIAL: &str = "<｜tool▁calls▁begin｜>";
const CALLS_END_SPECIAL: &str = "<｜tool▁calls▁end｜>";

fn v3_call(tool: &ToolSpec) -> String {
    let (name, args) = (&tool.name, args_json(tool));
    format!(
        "<｜tool▁call▁begin｜> \"function\" <｜tool▁sep｜> {} \"\\n```json\\n\" {args} \"\\n```\" <｜tool▁call▁end｜>",
        lit(name)
    )
}

fn v31_call(tool: &ToolSpec) -> String {
    let (name, args) = (&tool.name, args_json(tool));
    format!(
        "<｜tool▁call▁begin｜> {} <｜tool▁sep｜> {args} <｜tool▁call▁end｜>",
        lit(name)
    )
}
