//! Mistral calls: `[TOOL_CALLS][{"name": NAME, "arguments": {…}, "id": "abcDEF123"}, …]`
//! (Nemo, Small 3.1), or `[TOOL_CALLS]NAME[ARGS]{…}` (newer tokenizers: Small 3.2, Devstral,
//! Magistral; their templates add `[CALL_ID]ID` before `[ARGS]` in the history).
//! `[TOOL_CALLS]` is a control token. Mistral's templates insist on 9-character call ids,
//! which `prepare` derives from the OpenAI ids.

use super::grammar::{args_json, lit, Auto, Family};
use super::parser::{Partial, Scan, StartOpen};
use super::scan::{call_object, json_value_len, ws, Probe};
use super::ToolSpec;

pub const TOOL_CALLS: &str = "[TOOL_CALLS]";
pub const ARGS: &str = "[ARGS]";
pub const CALL_ID: &str = "[CALL_ID]";
pub const OPENERS: &[&str] = &[TOOL_CALLS];

/// A reply that is a bare call array (`[{"name"…`) is calls too (the grammar writes it so).
pub fn start_open(start: &str) -> StartOpen {
    match start.strip_prefix('[') {
        Some(rest) => super::llama3::json_start(rest.trim_start(), &["\"name\""]),
        None => StartOpen::No,
    }
}

pub fn scan(region: &str, eof: bool) -> Scan {
    let mut scan = Scan::default();
    let mut at = 0;
    let mut in_array = false;
    loop {
        if region[at..].starts_with(TOOL_CALLS) {
            at += TOOL_CALLS.len();
        }
        at += ws(&region[at..]);
        let rest = &region[at..];
        if rest.is_empty() {
            return scan;
        }
        if rest.starts_with('[') && !in_array {
            in_array = true;
            at += 1;
            continue;
        }
        if in_array && (rest.starts_with(',') || rest.starts_with(']')) {
            at += 1;
            if rest.starts_with(']') {
                in_array = false;
                if !region[at..].trim_start().starts_with(TOOL_CALLS) {
                    scan.end = Some(at);
                    return scan;
                }
            }
            continue;
        }
        if rest.starts_with('{') {
            let Ok(obj) = call_object(rest, &["name"], &["arguments", "parameters"]) else {
                return fail(scan, at);
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
            if !in_array {
                scan.end = Some(at);
                return scan;
            }
            continue;
        }
        if in_array {
            return fail(scan, at);
        }
        // `NAME[ARGS]{…}`
        let Some(name_len) = rest.find(ARGS) else {
            // A name, maybe `[CALL_ID]…`, and `[ARGS]` still to come.
            let plausible = !rest.contains(char::is_whitespace) && rest.len() < 256;
            if plausible && !eof {
                return scan;
            }
            return fail(scan, at);
        };
        // `NAME[CALL_ID]ID[ARGS]` in histories rendered by newer templates.
        let name = rest[..name_len]
            .split(CALL_ID)
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let args_at = at + name_len + ARGS.len();
        let args_text = region[args_at..].trim_start();
        let lead = region.len() - args_at - args_text.len();
        match json_value_len(args_text) {
            Probe::Done((), n) => {
                scan.calls.push(Partial {
                    name,
                    args: args_text[..n].to_string(),
                    done: true,
                });
                at = args_at + lead + n;
                if !region[at..].trim_start().starts_with(TOOL_CALLS) {
                    scan.end = Some(at);
                    return scan;
                }
            }
            Probe::More => {
                scan.calls.push(Partial {
                    name,
                    args: args_text.trim_end().to_string(),
                    done: false,
                });
                return scan;
            }
            Probe::Bad => return fail(scan, at),
        }
    }
}

fn fail(mut scan: Scan, at: usize) -> Scan {
    if scan.calls.is_empty() {
        scan.bad = true;
    } else {
        scan.end = Some(at);
    }
    scan
}

pub const GRAMMAR: Family = Family {
    open: Some("\"[\""),
    close: Some("\"]\""),
    sep: "\", \"",
    call,
    auto: Auto::Start('['),
    rules: "",
};

fn call(tool: &ToolSpec) -> String {
    format!(
        "{} {} \", \\\"arguments\\\": \" {} (\", \\\"id\\\": \\\"\" /[a-zA-Z0-9]{{9}}/ \"\\\"\")? \"}}\"",
        lit("{\"name\": "),
        lit(&lit(&tool.name)),
        args_json(tool)
    )
}
