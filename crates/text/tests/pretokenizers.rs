//! Every pre-tokenizer owl relies on, against llama.cpp: the Qwen2 vocabulary with
//! `tokenizer.ggml.pre` replaced, on llama.cpp's tricky strings plus CJK, digits and emoji
//! (`fixtures/pretokenizers.json`, made by `scripts/make_pretokenizer_references.py`). This is
//! how pre-tokenizers without a llama.cpp vocabulary test file (DeepSeek-V3, GPT-4o, Tekken...)
//! are verified.
#![allow(clippy::unwrap_used)]

mod common;

use owl_text::{Tokenizer, VocabSpec};

#[test]
fn every_pre_tokenizer_matches_llama_cpp() {
    let text = std::fs::read_to_string(common::fixture("pretokenizers.json")).unwrap();
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    let texts: Vec<&str> = r["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let g = owl_gguf::GgufFile::open(&common::fixture("vocab/ggml-vocab-qwen2.gguf")).unwrap();
    let base = VocabSpec::from_gguf(&g).unwrap();
    let ids = r["ids"].as_object().unwrap();
    assert!(ids.len() >= 20 && ids.contains_key("deepseek-v3"));
    let mut failures = Vec::new();
    for (pre, cases) in ids {
        let mut spec = base.clone();
        spec.pre = Some(pre.clone());
        let tok = Tokenizer::from_spec(spec).unwrap_or_else(|e| panic!("{pre}: {e}"));
        for (text, want) in texts.iter().zip(cases.as_array().unwrap()) {
            let want: Vec<u32> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect();
            let got = tok.encode(text, false, false).unwrap();
            if got != want {
                failures.push(format!(
                    "{pre}: {text:?}\n   want {want:?}\n    got {got:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
