//! Tool calling for templates that know nothing of tools (llama.cpp's "generic" approach):
//! a system message describes the tools and asks for the whole reply as JSON, either
//! `{"tool_calls": [{"name": …, "arguments": {…}}]}` or `{"response": "…"}`; the grammar
//! makes that reliable and the parser turns `response` back into plain content.

use super::parser::{Partial, Scan, StartOpen};
use super::scan::{json_value_len, Probe};
use super::{ToolChoice, ToolSpec};
use serde_json::{json, Value};

/// A reply starting with `{` is the JSON envelope.
pub fn start_open(start: &str) -> StartOpen {
    if start.starts_with('{') {
        StartOpen::Yes
    } else {
        StartOpen::No
    }
}

/// Reads the envelope once it is complete (arguments arrive whole).
pub fn scan(region: &str, eof: bool) -> Scan {
    let mut scan = Scan::default();
    let n = match json_value_len(region) {
        Probe::Done((), n) => n,
        Probe::More if !eof => return scan,
        _ => {
            scan.bad = true;
            return scan;
        }
    };
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(&region[..n]) else {
        scan.bad = true;
        return scan;
    };
    let calls: Vec<&Value> = match (obj.get("tool_calls"), obj.get("tool_call")) {
        (Some(Value::Array(calls)), _) => calls.iter().collect(),
        (_, Some(call)) => vec![call],
        _ => Vec::new(),
    };
    for call in calls {
        let Some(name) = call.get("name").and_then(Value::as_str) else {
            continue;
        };
        let args = match call.get("arguments").or_else(|| call.get("parameters")) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => "{}".to_string(),
        };
        scan.calls.push(Partial {
            name: name.to_string(),
            args,
            done: true,
        });
    }
    if scan.calls.is_empty() {
        match obj.get("response") {
            Some(Value::String(s)) => scan.text = Some(s.clone()),
            Some(v) => scan.text = Some(v.to_string()),
            None => {
                scan.bad = true;
                return scan;
            }
        }
    }
    scan.end = Some(n);
    scan
}

/// The system text describing `tools` and the reply shape.
pub fn system_prompt(tools: &[ToolSpec], choice: &ToolChoice) -> String {
    let list: Vec<Value> = tools.iter().map(ToolSpec::openai_json).collect();
    let tools_json = serde_json::to_string_pretty(&list).unwrap_or_default();
    let call_shape = r#"{"tool_calls": [{"name": "<name of the tool>", "arguments": {<arguments as a JSON object>}}]}"#;
    let mut s = format!("You can call the following tools:\n{tools_json}\n\n");
    match choice {
        ToolChoice::Required => {
            s.push_str(&format!(
                "Reply with a JSON object that calls one or more tools:\n{call_shape}\n"
            ));
        }
        ToolChoice::Function(name) => {
            s.push_str(&format!(
                "Reply with a JSON object that calls the tool \"{name}\":\n{call_shape}\n"
            ));
        }
        _ => {
            s.push_str(&format!(
                "Reply with a JSON object, either to call one or more tools:\n{call_shape}\n\
                 or to answer directly:\n{{\"response\": \"<your answer>\"}}\n"
            ));
        }
    }
    s
}

/// The whole reply as one JSON schema.
pub fn grammar(tools: &[&ToolSpec], required: bool, parallel: bool) -> String {
    let items: Vec<Value> = tools
        .iter()
        .map(|t| {
            json!({
                "type": "object",
                "properties": {"name": {"const": t.name}, "arguments": t.parameters},
                "required": ["name", "arguments"],
                "additionalProperties": false
            })
        })
        .collect();
    let mut array = json!({"type": "array", "items": {"anyOf": items}, "minItems": 1});
    if !parallel {
        array["maxItems"] = json!(1);
    }
    let calls = json!({
        "type": "object",
        "properties": {"tool_calls": array},
        "required": ["tool_calls"],
        "additionalProperties": false
    });
    let schema = if required {
        calls
    } else {
        let response = json!({
            "type": "object",
            "properties": {"response": {"type": "string"}},
            "required": ["response"],
            "additionalProperties": false
        });
        json!({"anyOf": [calls, response]})
    };
    format!("start: {}\n", super::grammar::inline_json(schema))
}
