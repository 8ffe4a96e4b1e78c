//! Hermes-style calls (Qwen2.5, Qwen3, Hermes 2/3): `<tool_call>\n{"name": NAME,
//! "arguments": {…}}\n</tool_call>`, one block per call. `<tool_call>` is a user-defined
//! token, rendered as text.

use super::grammar::{args_json, lit, Auto, Family};
use super::parser::{Partial, Scan};
use super::scan::{call_object, ws};
use super::ToolSpec;

pub const OPEN: &str = "<tool_call>";
pub const CLOSE: &str = "</tool_call>";
pub const OPENERS: &[&str] = &[OPEN];

/// Scans `<tool_call>{…}</tool_call>`.
pub fn scan(region: &str, eof: bool) -> Scan {
    let mut scan = Scan::default();
    let body = &region[OPEN.len().min(region.len())..];
    let Ok(obj) = call_object(body, &["name"], &["arguments", "parameters"]) else {
        scan.bad = true;
        return scan;
    };
    if let Some(name) = obj.name {
        scan.calls.push(Partial {
            name,
            args: obj.args,
            done: obj.args_done && obj.end.is_some(),
        });
    }
    if let Some(end) = obj.end {
        let mut at = OPEN.len() + end;
        at += ws(&region[at..]);
        let tail = &region[at..];
        if tail.starts_with(CLOSE) {
            scan.end = Some(at + CLOSE.len());
        } else if CLOSE.starts_with(tail) && !eof {
            // The close tag may still be arriving.
        } else {
            scan.end = Some(at);
        }
        if scan.calls.is_empty() && scan.end.is_some() {
            scan.bad = true;
        }
    }
    scan
}

pub const GRAMMAR: Family = Family {
    open: None,
    close: None,
    sep: "\"\\n\"",
    call,
    auto: Auto::Marker(OPEN),
    rules: "",
};

fn call(tool: &ToolSpec) -> String {
    format!(
        "{} {} {} \", \\\"arguments\\\": \" {} \"}}\\n{CLOSE}\"",
        lit(OPEN),
        lit("\n{\"name\": "),
        lit(&lit(&tool.name)),
        args_json(tool)
    )
}
