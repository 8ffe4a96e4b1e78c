//! What a request may ask the reply to match, before it is compiled.

use llguidance::api::TopLevelGrammar;
use serde_json::{json, Value};

/// A constraint on the whole reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Constraint {
    /// Any JSON object (OpenAI's `{"type": "json_object"}`).
    JsonObject,
    /// A JSON Schema (OpenAI's `json_schema`, Anthropic tools' `input_schema`).
    JsonSchema(Value),
    /// A regular expression the whole reply matches.
    Regex(String),
    /// A Lark grammar in llguidance's dialect (may embed `%json {…}` schemas).
    Lark(String),
}

/// JSON layout every schema is compiled with, unless the schema sets its own `x-guidance`.
fn json_layout() -> Value {
    json!({
        "whitespace_flexible": false,
        "item_separator": ", ",
        "key_separator": ": ",
    })
}

impl Constraint {
    /// llguidance's form of the constraint.
    pub(crate) fn to_grammar(&self) -> TopLevelGrammar {
        match self {
            Constraint::JsonObject => {
                TopLevelGrammar::from_json_schema(with_layout(json!({"type": "object"})))
            }
            Constraint::JsonSchema(s) => {
                TopLevelGrammar::from_json_schema(with_layout(closed(s.clone())))
            }
            Constraint::Regex(r) => TopLevelGrammar::from_regex(r),
            Constraint::Lark(g) => TopLevelGrammar::from_lark(g.clone()),
        }
    }

    /// A short name for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Constraint::JsonObject => "json_object",
            Constraint::JsonSchema(_) => "json_schema",
            Constraint::Regex(_) => "regex",
            Constraint::Lark(_) => "grammar",
        }
    }
}

/// `schema` with owl's JSON layout, unless it chose one (`x-guidance`). A boolean schema
/// (`true`) becomes the schema of any value.
fn with_layout(schema: Value) -> Value {
    match schema {
        Value::Object(mut m) => {
            m.entry("x-guidance").or_insert_with(json_layout);
            Value::Object(m)
        }
        Value::Bool(true) => json!({"x-guidance": json_layout()}),
        other => other,
    }
}

/// `schema` with every object that lists `properties` but says nothing of
/// `additionalProperties` closed to other properties, as llama.cpp's schema converter (and so
/// llama-server and Ollama) reads it. JSON Schema would allow extra keys, and a small model
/// given that freedom invents them until it runs out of tokens; clients that switch from those
/// servers (pydantic's schemas omit the keyword) expect exactly the listed fields.
pub fn closed(schema: Value) -> Value {
    match schema {
        Value::Object(mut m) => {
            if m.contains_key("properties") && !m.contains_key("additionalProperties") {
                m.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (k, v) in m.iter_mut() {
                match k.as_str() {
                    "properties" | "$defs" | "definitions" | "patternProperties" => {
                        if let Value::Object(inner) = v {
                            for s in inner.values_mut() {
                                *s = closed(std::mem::take(s));
                            }
                        }
                    }
                    "items" | "additionalProperties" | "not" | "contains" => {
                        *v = closed(std::mem::take(v));
                    }
                    "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                        if let Value::Array(a) = v {
                            for s in a.iter_mut() {
                                *s = closed(std::mem::take(s));
                            }
                        }
                    }
                    _ => {}
                }
            }
            Value::Object(m)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_with_properties_are_closed_unless_they_say_otherwise() {
        let s = json!({
            "type": "object",
            "properties": {"a": {"type": "object", "properties": {"b": {"type": "integer"}}},
                           "c": {"type": "array", "items": {"type": "object", "properties": {}}}},
            "$defs": {"D": {"type": "object", "properties": {"x": {}}, "additionalProperties": true}},
            "anyOf": [{"type": "object", "properties": {"y": {}}}],
        });
        let c = closed(s);
        assert_eq!(c["additionalProperties"], false);
        assert_eq!(c["properties"]["a"]["additionalProperties"], false);
        assert_eq!(c["properties"]["c"]["items"]["additionalProperties"], false);
        assert_eq!(c["$defs"]["D"]["additionalProperties"], true);
        assert_eq!(c["anyOf"][0]["additionalProperties"], false);
        // A bare object schema stays open.
        assert_eq!(closed(json!({"type": "object"})), json!({"type": "object"}));
    }

    #[test]
    fn layout_is_added_but_never_overrides() {
        let s = with_layout(json!({"type": "string"}));
        assert_eq!(s["x-guidance"]["whitespace_flexible"], json!(false));
        let own = json!({"type": "string", "x-guidance": {"whitespace_flexible": true}});
        assert_eq!(with_layout(own.clone()), own);
    }
}
