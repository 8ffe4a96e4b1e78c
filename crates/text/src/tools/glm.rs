//! GLM-4.5/4.6 calls: `<tool_call>NAME\n<arg_key>K</arg_key>\n<arg_value>V</arg_value>\n…
//! </tool_call>`; string values are written raw, others as JSON.

use super::grammar::{lit, Auto, Family};
use super::parser::Scan;
use super::qwen3_coder::{properties, value_rule};
use super::xml_params::Params;
use super::ToolSpec;

pub const OPEN: &str = "<tool_call>";
pub const CLOSE: &str = "</tool_call>";
pub const OPENERS: &[&str] = &[OPEN];

const PARAMS: Params = Params {
    key_open: "<arg_key>",
    key_close: "</arg_key>",
    value_open: "<arg_value>",
    value_close: "</arg_value>",
    list_close: CLOSE,
    strip_newlines: false,
};

pub fn scan(tools: &[ToolSpec], region: &str, eof: bool) -> Scan {
    let mut scan = Scan::default();
    let body = &region[OPEN.len().min(region.len())..];
    let name_len = ["\n", "<arg_key>", CLOSE]
        .iter()
        .filter_map(|m| body.find(m))
        .min();
    let Some(name_len) = name_len else {
        scan.bad = eof || body.len() > 256;
        return scan;
    };
    let name = body[..name_len].trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        scan.bad = true;
        return scan;
    }
    let params_at = OPEN.len() + name_len;
    let p = PARAMS.scan(tools, name, &region[params_at..], eof);
    scan.calls.push(p.call);
    scan.end = p.end.map(|e| params_at + e);
    scan
}

pub const GRAMMAR: Family = Family {
    open: None,
    close: None,
    sep: "\"\\n\"",
    call,
    auto: Auto::Marker(OPEN),
    // A string value runs to the first close tag (lazy: the shortest match).
    rules: "arg_str[lazy]: /(.|\\n)*<\\/arg_value>/\n",
};

fn call(tool: &ToolSpec) -> String {
    let mut g = format!("{} {}", lit(OPEN), lit(&tool.name));
    for (key, schema, required) in properties(tool) {
        let item = format!(
            "{} {}",
            lit(&format!("\n<arg_key>{key}</arg_key>\n<arg_value>")),
            value_rule(&schema, "arg_str", "</arg_value>")
        );
        if required {
            g.push_str(&format!(" {item}"));
        } else {
            g.push_str(&format!(" ({item})?"));
        }
    }
    g.push_str(&format!(" {}", lit(&format!("\n{CLOSE}"))));
    g
}
