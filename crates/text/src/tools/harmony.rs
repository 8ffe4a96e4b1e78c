//! gpt-oss (harmony) calls. The model writes a call as a `commentary` message addressed to
//! the function: `<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{…}
//! <|call|>` (the recipient may also follow the role: `<|start|>assistant to=functions.NAME
//! <|channel|>commentary json<|message|>`). The harmony splitter owns the channel syntax; in
//! tool mode it passes each addressed message on to content in one canonical form,
//! `<|start|>assistant to=functions.NAME<|message|>ARGS<|call|>`, which is what this parser
//! reads. The grammar, in contrast, constrains the raw reply (the sampler sees tokens before
//! any splitting).

use super::delimited::Delimited;
use super::grammar::{args_json, lit};
use super::ToolSpec;

/// How the splitter opens a call in content.
pub const CALL_OPEN: &str = "<|start|>assistant to=";
pub const MESSAGE: &str = "<|message|>";
pub const CALL_END: &str = "<|call|>";
pub const OPENERS: &[&str] = &[CALL_OPEN];

pub const SYNTAX: Delimited = Delimited {
    section_open: None,
    section_close: None,
    call_open: CALL_OPEN,
    name_end: MESSAGE,
    args_end: CALL_END,
    call_close: None,
    name: call_name,
};

/// `functions.get_weather` → `get_weather`.
fn call_name(s: &str) -> String {
    let s = s.trim();
    let s = s
        .split(|c: char| c.is_whitespace() || c == '<')
        .next()
        .unwrap_or(s);
    s.strip_prefix("functions.").unwrap_or(s).to_string()
}

/// The grammar of a raw gpt-oss reply: optional analysis, then a call (or, under `auto`, a
/// final answer instead).
pub fn grammar(tools: &[&ToolSpec], required: bool) -> String {
    let mut g = String::new();
    if required {
        g.push_str("start: analysis? call\n");
    } else {
        g.push_str("start: analysis? (final | call)\n");
        g.push_str("final: <|channel|> \"final\" <|message|> BODY\n");
    }
    g.push_str(
        "analysis: <|channel|> \"analysis\" <|message|> BODY <|end|> <|start|> \"assistant\"\n\
         BODY: /(.|\\n)*/\n",
    );
    let names: Vec<String> = (0..tools.len()).map(|i| format!("call_{i}")).collect();
    g.push_str(&format!("call: {}\n", names.join(" | ")));
    for (name, tool) in names.iter().zip(tools) {
        g.push_str(&format!(
            "{name}: <|channel|> {} <|constrain|> \"json\" <|message|> {} <|call|>\n",
            lit(&format!("commentary to=functions.{} ", tool.name)),
            args_json(tool)
        ));
    }
    g
}
