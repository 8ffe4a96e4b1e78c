//! llama.cpp's tokenizer test vectors: encode(text, add_special=false, parse_special=false)
//! must equal the `.out` ids for every `.inp` case (tests/test-tokenizer-0.cpp).
#![allow(clippy::unwrap_used)]

mod common;

fn check(name: &str) {
    let tok = common::vocab(name);
    let mut failures = Vec::new();
    let cases = common::cases(name);
    for (text, want) in &cases {
        let got = tok.encode(text, false, false).unwrap();
        if &got != want {
            failures.push(format!("{text:?}\n   want {want:?}\n    got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {}/{} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn llama_spm() {
    check("llama-spm");
}

#[test]
fn llama_bpe() {
    check("llama-bpe");
}

#[test]
fn qwen2() {
    check("qwen2");
}

#[test]
fn deepseek_llm() {
    check("deepseek-llm");
}

#[test]
fn deepseek_coder() {
    check("deepseek-coder");
}

#[test]
fn gpt_2() {
    check("gpt-2");
}

#[test]
fn starcoder() {
    check("starcoder");
}
