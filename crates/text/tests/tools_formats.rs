//! Tool calling for every family: the real template renders tools, a call and its result;
//! a reply in the family's markup parses into the call (whole or streamed in any chunks);
//! the grammar compiles in llguidance, accepts the call and rejects bad arguments; the
//! template is detected as its family.
#![allow(clippy::unwrap_used)]

mod common;

use llguidance::{api::TopLevelGrammar, Matcher, ParserFactory};
use owl_text::tools::{parse_reply, ReplyPiece, ToolCall, ToolChoice, ToolFormat, ToolSpec};
use owl_text::{ChatMessage, ChatTemplate, ReplySplitter};
use serde_json::{json, Value};
use std::sync::Arc;
use toktrie::{TokEnv, TokRxInfo, TokTrie, TokenizerEnv};

fn tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec::new(
            "get_weather",
            "Get the current weather in a city",
            json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer"},
                    "unit": {"type": "string", "enum": ["c", "f"]}
                },
                "required": ["city"]
            }),
        ),
        ToolSpec::new(
            "get_time",
            "Get the time in a timezone",
            json!({"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}),
        ),
    ]
}

struct Case {
    format: ToolFormat,
    template: &'static str,
    /// What the rendered history must contain: the call in the family's markup.
    rendered_call: &'static str,
    /// A reply's content text (for Harmony: the raw reply, split first).
    reply: &'static str,
    content: &'static str,
    /// Name and arguments of the call(s) in `reply`.
    calls: &'static [(&'static str, &'static str)],
    /// A raw reply the `required` grammar accepts, and one with bad arguments.
    good: &'static str,
    bad: &'static str,
}

const CASES: &[Case] = &[
    Case {
        format: ToolFormat::Hermes,
        template: "Qwen-Qwen2.5-7B-Instruct.jinja",
        rendered_call: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        reply: "Let me check.\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\"}}\n</tool_call>",
        content: "Let me check.",
        calls: &[("get_weather", r#"{"city": "Paris", "unit": "c"}"#), ("get_time", r#"{"tz": "CET"}"#)],
        good: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        bad: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": 5}}\n</tool_call>",
    },
    Case {
        format: ToolFormat::Hermes,
        template: "Qwen-Qwen3-0.6B.jinja",
        rendered_call: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        reply: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        content: "",
        calls: &[("get_weather", r#"{"city": "Paris"}"#)],
        good: "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"UTC\"}}\n</tool_call>",
        bad: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"town\": \"Paris\"}}\n</tool_call>",
    },
    Case {
        format: ToolFormat::Hermes,
        template: "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
        rendered_call: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        reply: "<tool_call>\n{\"arguments\": {\"city\": \"Paris\"}, \"name\": \"get_weather\"}\n</tool_call>",
        content: "",
        calls: &[("get_weather", r#"{"city": "Paris"}"#)],
        good: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}\n</tool_call>",
        bad: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": \"two\"}}\n</tool_call>",
    },
    Case {
        format: ToolFormat::Qwen3Coder,
        template: "Qwen3-Coder.jinja",
        rendered_call: "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>",
        reply: "I'll look.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>",
        content: "I'll look.",
        calls: &[("get_weather", r#"{"city": "Paris", "days": 3}"#)],
        good: "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>",
        bad: "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\nthree\n</parameter>\n</function>\n</tool_call>",
    },
    Case {
        format: ToolFormat::Llama3,
        template: "meta-llama-Llama-3.1-8B-Instruct.jinja",
        rendered_call: "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|>",
        reply: "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
        content: "",
        calls: &[("get_weather", r#"{"city": "Paris"}"#)],
        good: "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
        bad: "{\"name\": \"get_weather\", \"parameters\": {\"city\": null}}",
    },
    Case {
        format: ToolFormat::Llama3,
        template: "meta-llama-Llama-3.3-70B-Instruct.jinja",
        rendered_call: "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|>",
        reply: "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
        content: "",
        calls: &[("get_weather", r#"{"city": "Paris"}"#)],
        good: "{\"name\": \"get_time\", \"parameters\": {\"tz\": \"UTC\"}}",
        bad: "{\"name\": \"get_date\", \"parameters\": {\"tz\": \"UTC\"}}",
    },
    Case {
        format: ToolFormat::DeepSeekV3,
        template: "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
        rendered_call: "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        reply: "Sure.\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{\"tz\": \"CET\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        content: "Sure.",
        calls: &[("get_weather", r#"{"city": "Paris"}"#), ("get_time", r#"{"tz": "CET"}"#)],
        good: "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        bad: "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": [\"Paris\"]}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
    },
    Case {
        format: ToolFormat::DeepSeekV3,
        template: "llama-cpp-deepseek-r1.jinja",
        rendered_call: "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        reply: "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        content: "",
        calls: &[("get_weather", r#"{"city": "Paris"}"#)],
        good: "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{\"tz\": \"UTC\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        bad: "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
    },
    Case {
        format: ToolFormat::DeepSeekV31,
        template: "deepseek-ai-DeepSeek-V3.1.jinja",
        rendered_call: "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Paris\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        reply: "On it.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Paris\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        content: "On it.",
        calls: &[("get_weather", r#"{"city": "Paris"}"#)],
        good: "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Paris\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        bad: "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Paris\", \"unit\": \"k\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
    },
    Case {
        format: ToolFormat::Harmony,
        template: "openai-gpt-oss-120b.jinja",
        rendered_call: "<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>{\"city\": \"Paris\"}<|call|>",
        reply: "<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Paris\"}<|call|>",
        content: "",
        calls: &[("get_weather", r#"{"city": "Paris"}"#)],
        good: "<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Paris\"}<|call|>",
        bad: "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Paris\", \"days\": 1.5}<|call|>",
    },
    Case {
        format: ToolFormat::Mistral,
        template: "mistralai-Mistral-Nemo-Instruct-2407.jinja",
        rendered_call: "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": \"",
        reply: "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": \"abc123def\"}, {\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\"}, \"id\": \"abc123deg\"}]",
        content: "",
        calls: &[("get_weather", r#"{"city": "Paris"}"#), ("get_time", r#"{"tz": "CET"}"#)],
        good: "[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": \"abc123def\"}]",
        bad: "[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": 1}}]",
    },
    Case {
        format: ToolFormat::Mistral,
        template: "Mistral-Small-3.2-24B-Instruct-2506.jinja",
        rendered_call: "[TOOL_CALLS]get_weather[CALL_ID]",
        reply: "Checking.[TOOL_CALLS]get_weather[CALL_ID]a1b2c3d4e[ARGS]{\"city\": \"Paris\"}",
        content: "Checking.",
        calls: &[("get_weather", r#"{"city": "Paris"}"#)],
        good: "[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]",
        bad: "[{\"name\": \"get_weather\", \"arguments\": {}}]",
    },
    Case {
        format: ToolFormat::KimiK2,
        template: "moonshotai-Kimi-K2.jinja",
        rendered_call: "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{\"city\": \"Paris\"}<|tool_call_end|><|tool_calls_section_end|>",
        reply: "Let me see.<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{\"city\": \"Paris\"}<|tool_call_end|><|tool_call_begin|>functions.get_time:1<|tool_call_argument_begin|>{\"tz\": \"CET\"}<|tool_call_end|><|tool_calls_section_end|>",
        content: "Let me see.",
        calls: &[("get_weather", r#"{"city": "Paris"}"#), ("get_time", r#"{"tz": "CET"}"#)],
        good: "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{\"city\": \"Paris\"}<|tool_call_end|><|tool_calls_section_end|>",
        bad: "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{\"city\": false}<|tool_call_end|><|tool_calls_section_end|>",
    },
    Case {
        format: ToolFormat::Glm45,
        template: "GLM-4.6.jinja",
        rendered_call: "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n</tool_call>",
        reply: "Checking.\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n</tool_call>",
        content: "Checking.",
        calls: &[("get_weather", r#"{"city": "Paris", "days": 3}"#)],
        good: "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n</tool_call>",
        bad: "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n<arg_key>days</arg_key>\n<arg_value>soon</arg_value>\n</tool_call>",
    },
    Case {
        format: ToolFormat::Generic,
        template: "SmolLM2-135M-Instruct.jinja",
        rendered_call: "{\"tool_calls\":[{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}]}",
        reply: "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]}",
        content: "",
        calls: &[("get_weather", r#"{"city": "Paris"}"#)],
        good: "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]}",
        bad: "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"place\": \"Paris\"}}]}",
    },
];

fn source(file: &str) -> String {
    std::fs::read_to_string(common::fixture(&format!("templates/{file}"))).unwrap()
}

fn conversation() -> Vec<ChatMessage> {
    let call = ToolCall {
        id: "call_abcdefghijklmnopqrstuvwx".into(),
        name: "get_weather".into(),
        arguments: r#"{"city": "Paris"}"#.into(),
    };
    vec![
        ChatMessage::new("system", "You are helpful."),
        ChatMessage::new("user", "What's the weather in Paris?"),
        ChatMessage::assistant_calls("", vec![call.clone()]),
        ChatMessage::tool_result(call.id, "get_weather", "{\"temp_c\": 21}"),
    ]
}

/// The content the parser sees: Harmony replies go through the splitter in tool mode.
fn content_of(case: &Case, chunks: &[&str]) -> Vec<String> {
    if case.format != ToolFormat::Harmony {
        return chunks.iter().map(|c| c.to_string()).collect();
    }
    let mut s = ReplySplitter::new(owl_text::ReasoningFormat::Harmony, "");
    s.keep_tool_calls();
    let mut out: Vec<String> = chunks.iter().map(|c| s.push(c).1).collect();
    out.push(s.finish().1);
    out
}

#[test]
fn templates_render_tools_calls_and_results() {
    for case in CASES {
        let src = source(case.template);
        let t = ChatTemplate::new(&src, "<s>", "</s>").unwrap();
        let (messages, vars) = case
            .format
            .prepare(&conversation(), &tools(), &ToolChoice::Auto);
        let out = t
            .render_with(&messages, true, &vars)
            .unwrap_or_else(|e| panic!("{}: {e}", case.template));
        assert!(
            out.contains("Get the current weather in a city"),
            "{}: tool not described:\n{out}",
            case.template
        );
        assert!(
            out.contains(case.rendered_call),
            "{}: call not in markup:\n{out}",
            case.template
        );
        assert!(
            out.contains("21"),
            "{}: no tool result:\n{out}",
            case.template
        );
    }
}

fn check_calls(case: &Case, calls: &[ToolCall]) {
    assert_eq!(
        calls.len(),
        case.calls.len(),
        "{}: {calls:?}",
        case.template
    );
    for (got, (name, args)) in calls.iter().zip(case.calls) {
        assert_eq!(got.name, *name, "{}", case.template);
        let got_args: Value = serde_json::from_str(&got.arguments)
            .unwrap_or_else(|e| panic!("{}: {e}: {}", case.template, got.arguments));
        assert_eq!(
            got_args,
            serde_json::from_str::<Value>(args).unwrap(),
            "{}",
            case.template
        );
        assert!(got.id.starts_with("call_") && got.id.len() == 29);
    }
}

#[test]
fn replies_parse_into_content_and_calls() {
    for case in CASES {
        let content = content_of(case, &[case.reply]).concat();
        let (text, calls) = parse_reply(case.format, &tools(), &content);
        assert_eq!(text, case.content, "{}", case.template);
        check_calls(case, &calls);
    }
}

/// Feeds `chunks`; returns (content, calls, per-index streamed args) and checks ordering.
fn stream(case: &Case, chunks: &[&str]) -> (String, Vec<ToolCall>, Vec<String>) {
    let mut p = case.format.parser(&tools());
    let mut pieces = Vec::new();
    for c in content_of(case, chunks) {
        pieces.extend(p.push(&c));
    }
    pieces.extend(p.finish());
    let (mut text, mut args) = (String::new(), Vec::<String>::new());
    for piece in pieces {
        match piece {
            ReplyPiece::Text(t) => {
                assert!(
                    !t.contains("<tool_call>") && !t.contains("<|") && !t.contains("<｜"),
                    "{}: markup leaked: {t:?}",
                    case.template
                );
                text.push_str(&t);
            }
            ReplyPiece::CallBegin { index, .. } => {
                assert_eq!(index, args.len(), "{}", case.template);
                args.push(String::new());
            }
            ReplyPiece::CallArgs { index, text } => {
                assert!(index < args.len(), "{}: args before begin", case.template);
                args[index].push_str(&text);
            }
        }
    }
    (text, p.calls(), args)
}

#[test]
fn streaming_in_any_chunks_gives_the_same_calls() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for case in CASES {
        let chars: Vec<char> = case.reply.chars().collect();
        let mut chunkings: Vec<Vec<String>> = [1, 3]
            .iter()
            .map(|&n| chars.chunks(n).map(|c| c.iter().collect()).collect())
            .collect();
        for _ in 0..5 {
            let mut chunks = Vec::new();
            let mut at = 0;
            while at < chars.len() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let n = 1 + (seed % 9) as usize;
                let end = (at + n).min(chars.len());
                chunks.push(chars[at..end].iter().collect());
                at = end;
            }
            chunkings.push(chunks);
        }
        for chunks in chunkings {
            let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
            let (text, calls, args) = stream(case, &refs);
            assert_eq!(text, case.content, "{}: {refs:?}", case.template);
            check_calls(case, &calls);
            let assembled: Vec<String> = calls.iter().map(|c| c.arguments.clone()).collect();
            assert_eq!(args, assembled, "{}: streamed args differ", case.template);
        }
    }
}

const SPECIALS: &[&str] = &[
    "<|python_tag|>",
    "<｜tool▁calls▁begin｜>",
    "<｜tool▁calls▁end｜>",
    "<｜tool▁call▁begin｜>",
    "<｜tool▁call▁end｜>",
    "<｜tool▁sep｜>",
    "<|tool_calls_section_begin|>",
    "<|tool_calls_section_end|>",
    "<|tool_call_begin|>",
    "<|tool_call_argument_begin|>",
    "<|tool_call_end|>",
    "<|channel|>",
    "<|message|>",
    "<|constrain|>",
    "<|call|>",
    "<|end|>",
    "<|start|>",
    "<|eos|>",
];

/// Single-byte tokens plus the special tokens above (the last is EOS).
fn tok_env() -> TokEnv {
    struct Env(TokTrie);
    impl TokenizerEnv for Env {
        fn tok_trie(&self) -> &TokTrie {
            &self.0
        }
        fn tokenize_bytes(&self, s: &[u8]) -> Vec<u32> {
            self.0.greedy_tokenize(s)
        }
    }
    let mut words: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    for s in SPECIALS {
        let mut w = vec![0xFF];
        w.extend_from_slice(s.as_bytes());
        words.push(w);
    }
    let info = TokRxInfo::new(words.len() as u32, words.len() as u32 - 1);
    Arc::new(Env(TokTrie::from(&info, &words)))
}

/// Bytes as single tokens, special-token texts as their tokens.
fn tokenize(text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let mut rest = text;
    'outer: while !rest.is_empty() {
        for (i, s) in SPECIALS.iter().enumerate() {
            if let Some(r) = rest.strip_prefix(s) {
                out.push(256 + i as u32);
                rest = r;
                continue 'outer;
            }
        }
        out.push(u32::from(rest.as_bytes()[0]));
        rest = &rest[1..];
    }
    out
}

fn accepts(factory: &ParserFactory, grammar: &str, text: &str) -> bool {
    let parser = factory.create_parser(TopLevelGrammar::from_lark(grammar.to_string()));
    let mut m = Matcher::new(parser);
    if let Some(e) = m.get_error() {
        panic!("grammar does not compile: {e}\n{grammar}");
    }
    m.consume_tokens(&tokenize(text)).is_ok() && m.is_accepting().unwrap_or(false)
}

#[test]
fn grammars_accept_calls_and_reject_bad_arguments() {
    let env = tok_env();
    let mut factory = ParserFactory::new_simple(&env).unwrap();
    factory.quiet();
    for case in CASES {
        for parallel in [false, true] {
            for choice in [ToolChoice::Required, ToolChoice::Auto] {
                let g = case.format.grammar(&tools(), &choice, parallel).unwrap();
                let ctx = format!("{} {choice:?} parallel={parallel}\n{g}", case.template);
                assert!(
                    accepts(&factory, &g, case.good),
                    "{ctx}\nrejected {:?}",
                    case.good
                );
                assert!(
                    !accepts(&factory, &g, case.bad),
                    "{ctx}\naccepted {:?}",
                    case.bad
                );
            }
        }
        let name = case.calls[0].0;
        let g = case
            .format
            .grammar(&tools(), &ToolChoice::Function("get_time".into()), false)
            .unwrap();
        assert_eq!(
            accepts(&factory, &g, case.good),
            case.good.contains("get_time"),
            "{}\n{g}",
            case.template
        );
        let _ = name;
        assert!(case
            .format
            .grammar(&tools(), &ToolChoice::None, false)
            .is_none());
    }
}

#[test]
fn auto_grammars_let_text_through() {
    let env = tok_env();
    let mut factory = ParserFactory::new_simple(&env).unwrap();
    factory.quiet();
    for case in CASES {
        let g = case
            .format
            .grammar(&tools(), &ToolChoice::Auto, true)
            .unwrap();
        let text = match case.format {
            ToolFormat::Generic => "{\"response\": \"It is sunny.\"}",
            ToolFormat::Harmony => "<|channel|>analysis<|message|>Easy.<|end|><|start|>assistant<|channel|>final<|message|>It is sunny.",
            _ => "It is sunny.",
        };
        assert!(accepts(&factory, &g, text), "{}\n{g}", case.template);
    }
}

#[test]
fn templates_are_detected() {
    for case in CASES {
        assert_eq!(
            ToolFormat::detect(&source(case.template)),
            case.format,
            "{}",
            case.template
        );
    }
    let smol = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    assert_eq!(ToolFormat::detect(smol), ToolFormat::Generic);
    for (file, want) in [
        ("Qwen-QwQ-32B.jinja", ToolFormat::Hermes),
        ("meta-llama-Llama-3.2-3B-Instruct.jinja", ToolFormat::Llama3),
        ("google-gemma-2-2b-it.jinja", ToolFormat::Generic),
        ("microsoft-Phi-3.5-mini-instruct.jinja", ToolFormat::Generic),
    ] {
        assert_eq!(ToolFormat::detect(&source(file)), want, "{file}");
    }
}

#[test]
fn generic_describes_tools_and_reads_both_envelopes() {
    let msgs = vec![ChatMessage::new("user", "Hi")];
    let (out, vars) = ToolFormat::Generic.prepare(&msgs, &tools(), &ToolChoice::Auto);
    assert!(vars.is_empty());
    assert_eq!(out[0].role, "system");
    assert!(out[0].content.contains("get_weather") && out[0].content.contains("\"response\""));
    let (_, vars) = ToolFormat::Hermes.prepare(&msgs, &tools(), &ToolChoice::None);
    assert!(vars.contains_key("tools"), "none still describes the tools");
    let (text, calls) = parse_reply(ToolFormat::Generic, &tools(), "{\"response\": \"hi\"}");
    assert_eq!((text.as_str(), calls.len()), ("hi", 0));
    let (text, calls) = parse_reply(ToolFormat::Generic, &tools(), "plain words");
    assert_eq!((text.as_str(), calls.len()), ("plain words", 0));
}
