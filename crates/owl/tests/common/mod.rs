//! Shared helpers for the tests that need the real default model.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;

/// The default model's file: `$OWL_TEST_MODEL`, else the store (`$OWL_HOME` or `~/.owl`).
/// Panics with instructions when it is absent: these tests never skip silently.
pub fn default_model() -> PathBuf {
    if let Some(p) = std::env::var_os("OWL_TEST_MODEL").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("OWL_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".owl")))
        .expect("neither OWL_HOME nor HOME is set");
    let p = home.join("models").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.is_file(),
        "the default model is not at {}: run `owl pull` first (scripts/test.sh does)",
        p.display()
    );
    p
}

/// A committed reference fixture, parsed.
pub fn fixture(name: &str) -> serde_json::Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/reference")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("array of token ids")
        .iter()
        .map(|x| x.as_u64().expect("token id") as u32)
        .collect()
}
