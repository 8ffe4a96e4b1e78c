//! llguidance Lark grammars that hold a reply to the tool-call contract.
//!
//! * `required` / a named function: the whole reply is one call (or, with `parallel`, one or
//!   more) in the family's markup, the name one of the allowed names as a literal and the
//!   arguments the function's `parameters` schema as llguidance's inline `%json { … }`.
//! * `auto`: free text, or text and then calls. How the free text is held off the call markup
//!   depends on the marker. A special token (DeepSeek, Kimi, gpt-oss) cannot occur in a text
//!   lexeme at all, so `TEXT? calls` is unambiguous. A plain-text marker (`<tool_call>`) needs
//!   two lexemes: text that never contains the marker (`&` and `~` on regexes), or a lazy
//!   lexeme that ends at the first marker, after which the call is constrained. Families whose
//!   calls are bare JSON at the start of the reply (Llama 3, Mistral without its marker) let
//!   text start with anything but the call's first character.
//! * `none`: no grammar.
//!
//! Special tokens are written in Lark's `<|…|>`/`<｜…｜>` syntax; the caller's tokenizer
//! environment must mark control tokens as special (0xFF + text). Mistral's `[TOOL_CALLS]`
//! cannot be written that way (Lark's special-token syntax is `<…>`), so its grammar omits
//! the marker and the parser also accepts the bare `[{…}]` array at the start of a reply.

use super::{ToolChoice, ToolFormat, ToolSpec};

/// How a family writes calls, for the generic grammar builder.
pub struct Family {
    /// Lark expansion that opens the calls section, if any.
    pub open: Option<&'static str>,
    /// Lark expansion that closes it.
    pub close: Option<&'static str>,
    /// Lark expansion between parallel calls.
    pub sep: &'static str,
    /// Lark expansion of one call of a tool.
    pub call: fn(&ToolSpec) -> String,
    /// How `auto` text is kept apart from calls.
    pub auto: Auto,
    /// Extra rules the calls refer to.
    pub rules: &'static str,
}

/// How free text and calls are told apart under `auto`.
pub enum Auto {
    /// The calls start with a special token, which text cannot contain.
    Special,
    /// The calls start with this plain-text marker (also the start of `call`).
    Marker(&'static str),
    /// Calls are bare JSON at the start of the reply, starting with this character.
    Start(char),
}

/// A Lark string literal.
pub fn lit(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The arguments of `tool` as an inline JSON-schema grammar.
pub fn args_json(tool: &ToolSpec) -> String {
    let mut schema = tool.parameters.clone();
    if !schema.is_object() {
        schema = super::empty_object_schema();
    }
    if tool.strict {
        if let Some(obj) = schema.as_object_mut() {
            obj.entry("additionalProperties").or_insert(false.into());
        }
    }
    inline_json(schema)
}

/// `schema` as llguidance's inline `%json { … }`, laid out compactly (`", "`, `": "`, no free
/// whitespace) unless the schema sets its own `x-guidance`: free whitespace lets a small
/// model spend its whole budget on newlines inside a call.
pub fn inline_json(mut schema: serde_json::Value) -> String {
    if let Some(obj) = schema.as_object_mut() {
        obj.entry("x-guidance").or_insert_with(|| {
            serde_json::json!({
                "whitespace_flexible": false,
                "item_separator": ", ",
                "key_separator": ": ",
            })
        });
    }
    format!("%json {schema}")
}

/// The tools a choice allows (`None` when the reply is free).
pub fn allowed<'a>(tools: &'a [ToolSpec], choice: &ToolChoice) -> Option<Vec<&'a ToolSpec>> {
    match choice {
        ToolChoice::None => None,
        ToolChoice::Auto | ToolChoice::Required => Some(tools.iter().collect()),
        ToolChoice::Function(name) => Some(tools.iter().filter(|t| &t.name == name).collect()),
    }
}

/// The grammar for `format` (see the module docs).
pub fn grammar(
    format: ToolFormat,
    tools: &[ToolSpec],
    choice: &ToolChoice,
    parallel: bool,
) -> Option<String> {
    let allowed = allowed(tools, choice)?;
    if allowed.is_empty() {
        return None;
    }
    let required = !matches!(choice, ToolChoice::Auto);
    let family = match format {
        ToolFormat::Generic => return Some(super::generic::grammar(&allowed, required, parallel)),
        ToolFormat::Harmony => return Some(super::harmony::grammar(&allowed, required)),
        ToolFormat::Hermes => super::hermes::GRAMMAR,
        ToolFormat::Qwen3Coder => super::qwen3_coder::GRAMMAR,
        ToolFormat::Llama3 => super::llama3::GRAMMAR,
        ToolFormat::DeepSeekV3 => super::deepseek::V3_GRAMMAR,
        ToolFormat::DeepSeekV31 => super::deepseek::V31_GRAMMAR,
        ToolFormat::Mistral => super::mistral::GRAMMAR,
        ToolFormat::KimiK2 => super::kimi::GRAMMAR,
        ToolFormat::Glm45 => super::glm::GRAMMAR,
    };
    Some(build(&family, &allowed, required, parallel))
}

fn build(family: &Family, tools: &[&ToolSpec], required: bool, parallel: bool) -> String {
    let mut g = String::new();
    let names: Vec<String> = (0..tools.len()).map(|i| format!("call_{i}")).collect();
    let more = if parallel {
        format!("({} call)*", family.sep)
    } else {
        String::new()
    };
    let open = family.open.unwrap_or("");
    let close = family.close.unwrap_or("");
    if required {
        g.push_str(&format!("start: {open} call {more} {close}\n"));
    } else {
        match family.auto {
            Auto::Special => {
                g.push_str(&format!(
                    "start: TEXT | TEXT? {open} call {more} {close}\nTEXT: /(.|\\n)+/\n"
                ));
            }
            Auto::Marker(m) => {
                // `call` starts with the marker; after the lazy prefix (which took the marker)
                // the first call continues with `call_rest`.
                let re = regex_escape(m);
                g.push_str(&format!(
                    "start: TEXT | prefix call_rest {more}\n\
                     TEXT: /(.|\\n)*/ & ~/(.|\\n)*{re}(.|\\n)*/\n\
                     prefix[lazy]: /(.|\\n)*{re}/\n"
                ));
                let rests: Vec<String> = tools
                    .iter()
                    .map(|t| {
                        let call = (family.call)(t);
                        let lm = lit(m);
                        call.strip_prefix(&lm).unwrap_or(&call).to_string()
                    })
                    .collect();
                g.push_str(&format!("call_rest: {}\n", rests.join(" | ")));
            }
            Auto::Start(c) => {
                let re = regex_escape(&c.to_string());
                g.push_str(&format!(
                    "start: TEXT | {open} call {more} {close}\nTEXT: /[^{re}](.|\\n)*/\n"
                ));
            }
        }
    }
    g.push_str(&format!("call: {}\n", names.join(" | ")));
    for (name, tool) in names.iter().zip(tools) {
        g.push_str(&format!("{name}: {}\n", (family.call)(tool)));
    }
    g.push_str(family.rules);
    g
}

/// Escapes `s` for a Lark `/regex/`.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
