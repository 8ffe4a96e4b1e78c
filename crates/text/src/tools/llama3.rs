//! Llama 3.1–3.3 JSON calls: the whole reply is `{"name": NAME, "parameters": {…}}`, as the
//! template asks, or the same after `<|python_tag|>` (a control token, so the reply must be
//! decoded with special tokens to see it). Several calls may follow each other, separated by
//! `;` or whitespace.

use super::grammar::{args_json, lit, Auto, Family};
use super::parser::{Partial, Scan, StartOpen};
use super::scan::{call_object, ws};
use super::ToolSpec;

pub const PYTHON_TAG: &str = "<|python_tag|>";
pub const OPENERS: &[&str] = &[PYTHON_TAG];

/// A reply that starts `{"name"` or `{"type"` (whitespace allowed) is a call.
pub fn start_open(start: &str) -> StartOpen {
    json_start(start, &["\"name\"", "\"type\"", "\"function\""])
}

/// Whether `start` is `{` and one of `keys` (or may still become so).
pub fn json_start(start: &str, keys: &[&str]) -> StartOpen {
    let Some(rest) = start.strip_prefix('{') else {
        return StartOpen::No;
    };
    let rest = rest.trim_start();
    if keys.iter().any(|k| rest.starts_with(k)) {
        StartOpen::Yes
    } else if keys.iter().any(|k| k.starts_with(rest)) {
        StartOpen::Maybe
    } else {
        StartOpen::No
    }
}

/// Scans one or more call objects up to the end of the reply.
pub fn scan(region: &str, eof: bool) -> Scan {
    let mut scan = Scan::default();
    let mut at = if region.starts_with(PYTHON_TAG) {
        PYTHON_TAG.len()
    } else {
        0
    };
    loop {
        at += ws(&region[at..]);
        if region[at..].starts_with(';') {
            at += 1;
            continue;
        }
        let rest = &region[at..];
        if rest.is_empty() {
            if eof && scan.calls.is_empty() {
                scan.bad = true;
            }
            return scan;
        }
        let Ok(obj) = call_object(rest, &["name"], &["parameters", "arguments"]) else {
            if scan.calls.is_empty() {
                scan.bad = true;
            } else {
                scan.end = Some(at);
            }
            return scan;
        };
        if let Some(name) = obj.name {
            scan.calls.push(Partial {
                name,
                args: obj.args,
                done: obj.args_done && obj.end.is_some(),
            });
        }
        match obj.end {
            Some(end) => at += end,
            None => return scan,
        }
    }
}

pub const GRAMMAR: Family = Family {
    open: None,
    close: None,
    sep: "\"; \"",
    call,
    auto: Auto::Start('{'),
    rules: "",
};

fn call(tool: &ToolSpec) -> String {
    format!(
        "{} {} \", \\\"parameters\\\": \" {} \"}}\"",
        lit("{\"name\": "),
        lit(&lit(&tool.name)),
        args_json(tool)
    )
}
