//! Replies that only look like calls, and calls cut off by the end of the reply.
#![allow(clippy::unwrap_used)]

use owl_text::tools::{parse_reply, ReplyPiece, ToolFormat, ToolSpec};
use serde_json::json;

fn tools() -> Vec<ToolSpec> {
    vec![ToolSpec::new(
        "f",
        "a function",
        json!({"type": "object", "properties": {"x": {"type": "integer"}}}),
    )]
}

#[test]
fn text_that_is_not_a_call_stays_content() {
    for (format, reply) in [
        (ToolFormat::Hermes, "a < b and <tool is fine"),
        (ToolFormat::Hermes, "<tool_call>not json</tool_call> after"),
        (ToolFormat::Llama3, "{\"answer\": 42}"),
        (ToolFormat::Llama3, "Hello {x}"),
        (ToolFormat::Mistral, "[1, 2, 3]"),
        (ToolFormat::Generic, "{\"other\": 1}"),
        (ToolFormat::Qwen3Coder, "<tool_call>\nplain\n</tool_call>"),
    ] {
        let (text, calls) = parse_reply(format, &tools(), reply);
        assert!(calls.is_empty(), "{format:?} {reply:?}: {calls:?}");
        assert_eq!(text, reply, "{format:?}");
    }
}

#[test]
fn a_partial_marker_is_held_then_released() {
    let mut p = ToolFormat::Hermes.parser(&tools());
    assert_eq!(p.push("Hi <tool"), vec![ReplyPiece::Text("Hi".into())]);
    assert_eq!(p.push("box>"), vec![ReplyPiece::Text(" <toolbox>".into())]);
    assert_eq!(p.finish(), vec![]);
}

#[test]
fn unterminated_calls_close_when_their_arguments_are_json() {
    let (text, calls) = parse_reply(
        ToolFormat::Hermes,
        &tools(),
        "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}",
    );
    assert_eq!((text.as_str(), calls.len()), ("", 1));
    assert_eq!(calls[0].arguments, "{\"x\": 1}");
    let (_, calls) = parse_reply(
        ToolFormat::DeepSeekV31,
        &tools(),
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{\"x\": 1}",
    );
    assert_eq!(calls.len(), 1);
    // Cut off inside the arguments: not a call.
    let (_, calls) = parse_reply(
        ToolFormat::KimiK2,
        &tools(),
        "<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{\"x\": ",
    );
    assert!(calls.is_empty());
}

#[test]
fn text_after_a_call_is_content() {
    let (text, calls) = parse_reply(
        ToolFormat::Hermes,
        &tools(),
        "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>\n\nDone.",
    );
    assert_eq!((text.as_str(), calls.len()), ("Done.", 1));
}

#[test]
fn messages_read_openai_shapes() {
    let m: owl_text::ChatMessage = serde_json::from_value(json!({
        "role": "assistant", "content": null,
        "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "f", "arguments": "{\"x\": 1}"}}]
    }))
    .unwrap();
    assert_eq!(m.content, "");
    assert_eq!(m.tool_calls[0].arguments, "{\"x\": 1}");
    // Templates see the arguments as an object.
    let shown = serde_json::to_value(&m).unwrap();
    assert_eq!(
        shown["tool_calls"][0]["function"]["arguments"],
        json!({"x": 1})
    );
    assert_eq!(shown["tool_calls"][0]["type"], "function");
    assert!(
        serde_json::to_value(owl_text::ChatMessage::new("user", "hi"))
            .unwrap()
            .get("tool_calls")
            .is_none()
    );
}
