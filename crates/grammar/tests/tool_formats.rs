//! Every tool-call format, emitted by a random "model" under its grammar and parsed back.
//!
//! A model with random weights is, as far as the grammar can tell, a random distribution over
//! the vocabulary. Here that distribution is drawn directly: at each step a token is picked at
//! random among those the grammar's mask allows (special tokens favoured, so free-text parts
//! such as gpt-oss's analysis channel end), until the grammar is complete. Whatever the dice
//! say, the reply must then parse in the family's own parser into a call of a defined tool
//! whose arguments validate. The vocabulary is SmolLM2's plus the family's markers as control
//! tokens (as in the family's own vocabulary); Hermes and Llama 3 also run on their real
//! vocabularies.

use std::sync::Arc;

use owl_grammar::{Constraint, Grammars};
use owl_text::tools::{parse_reply, ToolCall, ToolChoice, ToolFormat, ToolSpec};
use owl_text::{ReasoningFormat, ReplySplitter, Tokenizer, VocabSpec};
use serde_json::{json, Value};

/// Control-token type in GGUF vocabularies.
const CONTROL: i32 = 3;

fn tools() -> Vec<ToolSpec> {
    let weather = json!({
        "type": "object",
        "properties": {
            "city": {"enum": ["Paris", "Rome", "Lima"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7}
        },
        "required": ["city", "days"],
        "additionalProperties": false
    });
    let clock = json!({
        "type": "object",
        "properties": {"utc": {"type": "boolean"}},
        "required": ["utc"],
        "additionalProperties": false
    });
    vec![
        ToolSpec::new("get_weather", "Weather forecast", weather),
        ToolSpec::new("get_time", "Current time", clock),
    ]
}

fn gguf_spec(path: &std::path::Path) -> VocabSpec {
    let g = owl_gguf::GgufFile::open(path).expect("vocabulary file");
    VocabSpec::from_gguf(&g).expect("spec")
}

fn smollm_spec() -> VocabSpec {
    gguf_spec(&owl_testkit::tiny_model("llama"))
}

fn text_vocab(name: &str) -> VocabSpec {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../text/tests/fixtures/vocab")
        .join(format!("ggml-vocab-{name}.gguf"));
    gguf_spec(&p)
}

/// The special tokens a Lark grammar names (`<|…|>`, `<｜…｜>`).
fn special_tokens(grammar: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (open, close) in [("<|", "|>"), ("<｜", "｜>")] {
        let mut rest = grammar;
        while let Some(i) = rest.find(open) {
            let after = &rest[i..];
            let Some(j) = after.find(close) else { break };
            let tok = &after[..j + close.len()];
            if !out.iter().any(|t| t == tok) {
                out.push(tok.to_string());
            }
            rest = &after[j + close.len()..];
        }
    }
    out
}

/// `spec` with `extra` appended as control tokens (those it lacks).
fn with_specials(mut spec: VocabSpec, extra: &[String]) -> Tokenizer {
    // Types may be absent (all normal); they must line up with the tokens before appending.
    let n = spec.tokens.len();
    spec.token_types.resize(n, 1);
    for t in extra {
        if !spec.tokens.iter().any(|x| x == t) {
            spec.tokens.push(t.clone());
            spec.token_types.push(CONTROL);
            if !spec.scores.is_empty() {
                spec.scores.push(0.0);
            }
        }
    }
    Tokenizer::from_spec(spec).expect("tokenizer")
}

/// A small deterministic generator (xorshift64*).
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }
}

/// Samples a reply under `grammar`: random allowed tokens until the grammar is complete (or,
/// where it may end, at the toss of a coin, as a model's end-of-generation token would).
fn emit(tok: &Arc<Tokenizer>, grammar: &str, seed: u64) -> String {
    let grammars = Grammars::new(Arc::clone(tok), tok.vocab_size()).expect("grammars");
    let mut tc = grammars
        .compile(&Constraint::Lark(grammar.to_string()))
        .unwrap_or_else(|e| panic!("grammar does not compile: {e}\n{grammar}"));
    let eog = tok.eog_ids();
    let mut dice = Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut ids = Vec::new();
    for _ in 0..2000 {
        if tc.is_finished() {
            break;
        }
        let mask = tc.mask().expect("mask");
        let allowed: Vec<u32> = (0..tok.vocab_size() as u32)
            .filter(|&t| mask.allows(t) && !eog.contains(&t))
            .collect();
        let end = eog.iter().copied().find(|&e| mask.allows(e));
        if allowed.is_empty() || (end.is_some() && dice.below(2) == 0) {
            // The engine ends the reply at an end-of-generation token without reporting it
            // (gpt-oss's `<|call|>` ends a call this way).
            let e = end.expect("the grammar is stuck");
            tc.accept(e).expect("accept the end");
            break;
        }
        let special: Vec<u32> = allowed
            .iter()
            .copied()
            .filter(|&t| owl_grammar::vocab::is_special(tok, t))
            .collect();
        let t = if !special.is_empty() && dice.below(2) == 0 {
            special[dice.below(special.len())]
        } else {
            allowed[dice.below(allowed.len())]
        };
        tc.accept(t).expect("accept");
        ids.push(t);
    }
    assert!(
        tc.is_finished(),
        "the reply never completed: {:?}",
        tok.decode(&ids, true)
    );
    tok.decode(&ids, true)
}

/// The calls in `text` as the server would see them.
fn parse(format: ToolFormat, tools: &[ToolSpec], text: &str) -> (String, Vec<ToolCall>) {
    if format != ToolFormat::Harmony {
        return parse_reply(format, tools, text);
    }
    // gpt-oss: the splitter (in tool mode) hands calls to the parser, thinking aside.
    let mut s = ReplySplitter::new(ReasoningFormat::Harmony, "");
    s.keep_tool_calls();
    let (_, mut content) = s.push(text);
    content.push_str(&s.finish().1);
    parse_reply(format, tools, &content)
}

fn check(format: ToolFormat, tok: Arc<Tokenizer>, seeds: std::ops::Range<u64>) {
    let tools = tools();
    for (choice, parallel) in [
        (ToolChoice::Required, false),
        (ToolChoice::Function("get_weather".into()), false),
        (ToolChoice::Required, true),
    ] {
        let grammar = format
            .grammar(&tools, &choice, parallel)
            .expect("a forced call has a grammar");
        for seed in seeds.clone() {
            let text = emit(&tok, &grammar, seed);
            let (content, calls) = parse(format, &tools, &text);
            assert!(
                !calls.is_empty(),
                "{format:?} seed {seed}: no call in {text:?}"
            );
            if !parallel {
                assert_eq!(calls.len(), 1, "{format:?}: {text:?}");
            }
            assert!(
                content.trim().is_empty(),
                "{format:?} seed {seed}: markup leaked into content {content:?} of {text:?}"
            );
            for c in &calls {
                let args: Value = serde_json::from_str(&c.arguments)
                    .unwrap_or_else(|e| panic!("{format:?}: arguments {:?}: {e}", c.arguments));
                match c.name.as_str() {
                    "get_weather" => {
                        assert!(
                            ["Paris", "Rome", "Lima"]
                                .contains(&args["city"].as_str().unwrap_or("")),
                            "{args}"
                        );
                        assert!(
                            args["days"].as_i64().is_some_and(|d| (1..=7).contains(&d)),
                            "{args}"
                        );
                    }
                    "get_time" => {
                        assert!(
                            matches!(choice, ToolChoice::Required),
                            "{format:?}: {text:?}"
                        );
                        assert!(args["utc"].is_boolean(), "{args}");
                    }
                    other => panic!("{format:?}: unknown tool {other}"),
                }
            }
        }
    }
}

fn on_smollm(format: ToolFormat) {
    let tools = tools();
    let mut specials = Vec::new();
    for choice in [ToolChoice::Required, ToolChoice::Auto] {
        if let Some(g) = format.grammar(&tools, &choice, true) {
            specials.extend(special_tokens(&g));
        }
    }
    if format == ToolFormat::Harmony {
        // As in gpt-oss's vocabulary, where `<|return|>` ends the generation and `<|end|>`
        // only a message.
        specials.push("<|return|>".to_string());
    }
    check(
        format,
        Arc::new(with_specials(smollm_spec(), &specials)),
        0..4,
    );
}

#[test]
fn hermes() {
    on_smollm(ToolFormat::Hermes);
    check(
        ToolFormat::Hermes,
        Arc::new(with_specials(text_vocab("qwen2"), &[])),
        10..12,
    );
}

#[test]
fn qwen3_coder() {
    on_smollm(ToolFormat::Qwen3Coder);
}

#[test]
fn llama3() {
    on_smollm(ToolFormat::Llama3);
    check(
        ToolFormat::Llama3,
        Arc::new(with_specials(text_vocab("llama-bpe"), &[])),
        10..12,
    );
}

#[test]
fn deepseek_v3() {
    on_smollm(ToolFormat::DeepSeekV3);
}

#[test]
fn deepseek_v31() {
    on_smollm(ToolFormat::DeepSeekV31);
}

#[test]
fn harmony() {
    on_smollm(ToolFormat::Harmony);
}

#[test]
fn mistral() {
    on_smollm(ToolFormat::Mistral);
}

#[test]
fn kimi_k2() {
    on_smollm(ToolFormat::KimiK2);
}

#[test]
fn glm45() {
    on_smollm(ToolFormat::Glm45);
}

#[test]
fn generic() {
    on_smollm(ToolFormat::Generic);
}
