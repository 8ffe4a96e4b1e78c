//! Constraints over the real SmolLM vocabulary (the tiny fixtures share the default model's
//! tokenizer): valid replies pass token by token, invalid ones are masked out, bad schemas
//! are refused with a message.

use std::sync::Arc;

use owl_grammar::{Constraint, GrammarError, Grammars};
use owl_text::Tokenizer;
use serde_json::json;

fn setup() -> (Arc<Tokenizer>, Grammars) {
    let path = owl_testkit::tiny_model("llama");
    let g = owl_gguf::GgufFile::open(&path).expect("fixture");
    let tok = Arc::new(Tokenizer::from_gguf(&g).expect("tokenizer"));
    let n = tok.vocab_size();
    let grammars = Grammars::new(Arc::clone(&tok), n).expect("grammars");
    (tok, grammars)
}

/// Feeds `text`'s tokens; returns the index of the first token the mask refused.
fn follow(tok: &Tokenizer, grammars: &Grammars, c: &Constraint, text: &str) -> Option<usize> {
    let mut tc = grammars.compile(c).expect("compiles");
    let ids = tok.encode(text, false, false).expect("encode");
    for (i, &t) in ids.iter().enumerate() {
        let m = tc.mask().expect("mask");
        if !m.allows(t) {
            return Some(i);
        }
        tc.accept(t).expect("accept");
    }
    let m = tc.mask().expect("mask");
    // The reply may end: an end-of-generation token is allowed.
    assert!(
        tok.eog_ids().iter().any(|&e| m.allows(e)),
        "{text:?} is complete, so EOS must be allowed"
    );
    None
}

#[test]
fn json_schema_accepts_valid_and_masks_invalid() {
    let (tok, g) = setup();
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 10},
            "age": {"type": "integer", "minimum": 0, "maximum": 150},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2}
        },
        "required": ["name", "age", "tags"],
        "additionalProperties": false
    });
    let c = Constraint::JsonSchema(schema);
    assert_eq!(
        follow(
            &tok,
            &g,
            &c,
            r#"{"name": "Ada", "age": 36, "tags": ["a", "b"]}"#
        ),
        None
    );
    // A key the schema does not have, a value out of range, a third item: refused.
    assert!(follow(&tok, &g, &c, r#"{"nick": "x"}"#).is_some());
    assert!(follow(&tok, &g, &c, r#"{"name": "Ada", "age": 200"#).is_some());
    assert!(follow(
        &tok,
        &g,
        &c,
        r#"{"name": "Ada", "age": 3, "tags": ["a", "b", "a"]}"#
    )
    .is_some());
    // Compact layout: no newline after the brace.
    assert!(follow(&tok, &g, &c, "{\n").is_some());
}

#[test]
fn end_of_generation_only_when_complete() {
    let (tok, g) = setup();
    let mut tc = g.compile(&Constraint::JsonObject).expect("compiles");
    for t in tok.encode(r#"{"a": 1"#, false, false).expect("encode") {
        tc.accept(t).expect("accept");
    }
    let m = tc.mask().expect("mask");
    assert!(tok.eog_ids().iter().all(|&e| !m.allows(e)));
    assert!(m.count() > 0);
}

#[test]
fn regex_and_lark() {
    let (tok, g) = setup();
    let re = Constraint::Regex(r"(yes|no), [0-9]{3}".into());
    assert_eq!(follow(&tok, &g, &re, "yes, 123"), None);
    assert!(follow(&tok, &g, &re, "maybe").is_some());
    let lark = Constraint::Lark(
        r#"start: "Answer: " ANSWER
ANSWER: /[A-D]/"#
            .into(),
    );
    assert_eq!(follow(&tok, &g, &lark, "Answer: C"), None);
    assert!(follow(&tok, &g, &lark, "Answer: E").is_some());
}

#[test]
fn refs_anyof_and_patterns() {
    let (tok, g) = setup();
    let schema = json!({
        "$defs": {"pt": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"], "additionalProperties": false}},
        "anyOf": [
            {"$ref": "#/$defs/pt"},
            {"type": "string", "pattern": "^[a-z]+-[0-9]+$"},
            {"type": "null"}
        ]
    });
    let c = Constraint::JsonSchema(schema);
    assert_eq!(follow(&tok, &g, &c, r#"{"x": 1.5}"#), None);
    assert_eq!(follow(&tok, &g, &c, r#""abc-42""#), None);
    assert_eq!(follow(&tok, &g, &c, "null"), None);
    assert!(follow(&tok, &g, &c, r#""ABC""#).is_some());
}

#[test]
fn bad_constraints_are_refused_with_a_reason() {
    let (_, g) = setup();
    for c in [
        Constraint::JsonSchema(json!({"type": "no-such-type"})),
        Constraint::Regex("(unclosed".into()),
        Constraint::Lark("start: undefined_rule".into()),
    ] {
        match g.compile(&c) {
            Err(GrammarError::Invalid(msg)) => assert!(!msg.is_empty()),
            other => panic!("{c:?} should be refused, got {other:?}"),
        }
    }
}
