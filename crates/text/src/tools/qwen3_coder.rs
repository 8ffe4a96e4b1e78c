//! Qwen3-Coder's XML calls: `<tool_call>\n<function=NAME>\n<parameter=P>\nVALUE\n
//! </parameter>\n…</function>\n</tool_call>`. `<tool_call>` is a user-defined token (text).

use super::grammar::{lit, Auto, Family};
use super::parser::Scan;
use super::scan::ws;
use super::xml_params::Params;
use super::ToolSpec;

pub const OPEN: &str = "<tool_call>";
pub const CLOSE: &str = "</tool_call>";
const FUNCTION: &str = "<function=";
pub const OPENERS: &[&str] = &[OPEN, FUNCTION];

const PARAMS: Params = Params {
    key_open: "<parameter=",
    key_close: ">",
    value_open: "",
    value_close: "</parameter>",
    list_close: "</function>",
    strip_newlines: true,
};

pub fn scan(tools: &[ToolSpec], region: &str, eof: bool) -> Scan {
    let mut scan = Scan::default();
    let wrapped = region.starts_with(OPEN);
    let mut at = if wrapped { OPEN.len() } else { 0 };
    at += ws(&region[at..]);
    let rest = &region[at..];
    let Some(after) = rest.strip_prefix(FUNCTION) else {
        scan.bad = !FUNCTION.starts_with(rest) || eof;
        return scan;
    };
    let Some(name_len) = after.find('>') else {
        scan.bad = after.contains('\n') || eof;
        return scan;
    };
    let name = after[..name_len].trim();
    let params_at = at + FUNCTION.len() + name_len + 1;
    let p = PARAMS.scan(tools, name, &region[params_at..], eof);
    scan.calls.push(p.call);
    if let Some(end) = p.end {
        let mut at = params_at + end;
        if wrapped {
            let n = ws(&region[at..]);
            let tail = &region[at + n..];
            if tail.starts_with(CLOSE) {
                at += n + CLOSE.len();
            } else if CLOSE.starts_with(tail) && !eof {
                return scan;
            }
        }
        scan.end = Some(at);
    }
    scan
}

pub const GRAMMAR: Family = Family {
    open: None,
    close: None,
    sep: "\"\\n\"",
    call,
    auto: Auto::Marker(OPEN),
    // A string value runs to the first close tag (lazy: the shortest match).
    rules: "param_str[lazy]: /(.|\\n)*\\n<\\/parameter>\\n/\n",
};

/// `<tool_call>\n<function=NAME>\n` then each schema property in order (those not required
/// optional), then `</function>\n</tool_call>`. String values are text without `<`; other
/// values are JSON of the property's schema.
fn call(tool: &ToolSpec) -> String {
    let mut g = format!(
        "{} {}",
        lit(OPEN),
        lit(&format!("\n<function={}>\n", tool.name))
    );
    for (key, schema, required) in properties(tool) {
        let value = value_rule(&schema, "param_str", "\n</parameter>\n");
        let item = format!("{} {value}", lit(&format!("<parameter={key}>\n")));
        if required {
            g.push_str(&format!(" {item}"));
        } else {
            g.push_str(&format!(" ({item})?"));
        }
    }
    g.push_str(&format!(" {}", lit(&format!("</function>\n{CLOSE}"))));
    g
}

/// The schema's properties as (name, schema, required), in order.
pub fn properties(tool: &ToolSpec) -> Vec<(String, serde_json::Value, bool)> {
    let required: Vec<&str> = tool
        .parameters
        .get("required")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    tool.parameters
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.clone(), v.clone(), required.contains(&k.as_str())))
                .collect()
        })
        .unwrap_or_default()
}

/// A parameter value and its close tag: free text up to the close tag (the lazy rule
/// `text_rule`) for strings, JSON of its schema then `close` otherwise.
pub fn value_rule(schema: &serde_json::Value, text_rule: &str, close: &str) -> String {
    if schema.get("type").and_then(|t| t.as_str()) == Some("string") && schema.get("enum").is_none()
    {
        text_rule.to_string()
    } else {
        format!(
            "{} {}",
            super::grammar::inline_json(schema.clone()),
            lit(close)
        )
    }
}
