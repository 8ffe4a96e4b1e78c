//! Chat templates rendered by minijinja must match Python jinja2 configured like Hugging
//! Face's `apply_chat_template` (expected outputs from fixtures/templates/render.py).
#![allow(clippy::unwrap_used)]

mod common;

use owl_text::{ChatMessage, ChatTemplate, TextError};
use serde_json::Value;

#[test]
fn real_templates_match_python_jinja2() {
    let cases: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(common::fixture("templates/cases.json")).unwrap(),
    )
    .unwrap();
    assert!(cases.len() >= 15);
    let mut failures = Vec::new();
    for case in &cases {
        let file = case["template"].as_str().unwrap();
        let source =
            std::fs::read_to_string(common::fixture(&format!("templates/{file}"))).unwrap();
        let tmpl = ChatTemplate::new(
            &source,
            case["bos_token"].as_str().unwrap(),
            case["eos_token"].as_str().unwrap(),
        )
        .unwrap();
        let messages: Vec<ChatMessage> = serde_json::from_value(case["messages"].clone()).unwrap();
        let agp = case["add_generation_prompt"].as_bool().unwrap();
        let extra = case["extra"].as_object().unwrap();
        // render.py renders on a fixed day (2026-01-02); templates that print today's date
        // get that day in place of today's.
        let today = owl_text::strftime::Tm::now().format("%Y-%m-%d");
        let got = tmpl
            .render_with(&messages, agp, extra)
            .map(|g| g.replace(&today, "2026-01-02"));
        match (&case["expected"], &case["error"], got) {
            (Value::String(want), _, Ok(got)) if *want == got => {}
            (_, Value::String(msg), Err(TextError::Template(e))) if e.contains(msg.as_str()) => {}
            (want, err, got) => failures.push(format!(
                "{file} (extra {extra:?}):\n want {want} / error {err}\n  got {got:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn render_without_extra_uses_defaults() {
    let source =
        std::fs::read_to_string(common::fixture("templates/SmolLM2-135M-Instruct.jinja")).unwrap();
    let tmpl = ChatTemplate::new(&source, "<|im_start|>", "<|im_end|>").unwrap();
    let out = tmpl
        .render(&[ChatMessage::new("user", "Hi")], true)
        .unwrap();
    assert_eq!(
        out,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn reasoning_formats_are_recognised_from_the_template() {
    use owl_text::ReasoningFormat::{Harmony, Think};
    for (file, want) in [
        ("openai-gpt-oss-120b.jinja", Some(Harmony)),
        ("Qwen-Qwen3-0.6B.jinja", Some(Think)),
        (
            "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
            Some(Think),
        ),
        ("meta-llama-Llama-3.3-70B-Instruct.jinja", None),
        ("Qwen-Qwen2.5-7B-Instruct.jinja", None),
    ] {
        let source =
            std::fs::read_to_string(common::fixture(&format!("templates/{file}"))).unwrap();
        let t = ChatTemplate::new(&source, "<s>", "</s>").unwrap();
        assert_eq!(t.reasoning(), want, "{file}");
    }
    // gpt-oss's generation prompt opens the assistant's first message header.
    let source =
        std::fs::read_to_string(common::fixture("templates/openai-gpt-oss-120b.jinja")).unwrap();
    let t = ChatTemplate::new(&source, "<|startoftext|>", "<|return|>").unwrap();
    let out = t.render(&[ChatMessage::new("user", "Hi")], true).unwrap();
    assert!(out.ends_with("<|start|>assistant"), "{out}");
}

#[test]
fn helpers_behave_like_hf() {
    let t = |src: &str| {
        ChatTemplate::new(src, "<s>", "</s>")
            .unwrap()
            .render(&[ChatMessage::new("user", "x")], false)
    };
    // python-style tojson: spaced separators, no HTML escaping, indent support
    assert_eq!(
        t(r#"{{ {"a": [1, 2.5, none, true], "b": "<é>"} | tojson }}"#).unwrap(),
        r#"{"a": [1, 2.5, null, true], "b": "<é>"}"#
    );
    assert_eq!(
        t(r#"{{ {"a": [1], "b": {}} | tojson(indent=2) }}"#).unwrap(),
        "{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}"
    );
    assert_eq!(
        t(r#"{{ {"b": 1, "a": 2} | tojson(separators=(",", ":"), sort_keys=true) }}"#).unwrap(),
        r#"{"a":2,"b":1}"#
    );
    // message maps keep field order like Python dicts
    assert_eq!(
        t("{{ messages[0] | tojson }}").unwrap(),
        r#"{"role": "user", "content": "x"}"#
    );
    // python string methods, None/True printing, loop controls, trim/lstrip blocks
    assert_eq!(
        t("{{ '  a b '.strip().split(' ') | join('-') }}").unwrap(),
        "a-b"
    );
    assert_eq!(
        t("{{ none }} {{ true }} {{ false }}").unwrap(),
        "None True False"
    );
    assert_eq!(
        t("{% for i in [1,2,3] %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% endfor %}")
            .unwrap(),
        "1"
    );
    assert_eq!(
        t("  {% if true %}\nyes\n  {% endif %}\nend\n").unwrap(),
        "yes\nend"
    );
    assert_eq!(t("{{ bos_token }}{{ eos_token }}").unwrap(), "<s></s>");
    let year = t("{{ strftime_now('%Y') }}").unwrap();
    assert!(year.len() == 4 && year.starts_with('2'), "{year}");
    let err = t("{{ raise_exception('nope: bad roles') }}").unwrap_err();
    assert!(err.to_string().contains("nope: bad roles"), "{err}");
}

#[test]
fn broken_template_is_an_error() {
    assert!(matches!(
        ChatTemplate::new("{% for %}", "", ""),
        Err(TextError::Template(_))
    ));
}

#[test]
fn from_gguf_reads_template_and_tokens() {
    let g = owl_gguf::GgufFile::open(&common::fixture("vocab/ggml-vocab-qwen2.gguf")).unwrap();
    let tmpl = ChatTemplate::from_gguf(&g)
        .unwrap()
        .expect("qwen2 fixture has a template");
    assert_eq!(tmpl.bos_token(), "<|endoftext|>");
    assert_eq!(tmpl.eos_token(), "<|endoftext|>");
    let out = tmpl
        .render(&[ChatMessage::new("user", "hi")], true)
        .unwrap();
    assert!(out.contains("<|im_start|>user\nhi<|im_end|>"), "{out}");
    assert!(out.ends_with("<|im_start|>assistant\n"), "{out}");

    let g = owl_gguf::GgufFile::open(&common::fixture("vocab/ggml-vocab-llama-spm.gguf")).unwrap();
    assert!(ChatTemplate::from_gguf(&g).unwrap().is_none());
    assert!(TextError::NoChatTemplate.to_string().contains("--raw"));
}
