//! LoRA adapters against llama.cpp, on `tests/fixtures/lora/` (made by
//! `scripts/make_lora_fixtures.py` for `tests/fixtures/arch/tiny-llama.gguf`): the same
//! random adapter as a llama.cpp GGUF adapter and as a PEFT directory (un-permuted Q/K).
//!
//! * owl with the GGUF adapter matches llama.cpp's logits with it (prompt fed one token per
//!   pass, llama.cpp's decode path; then 16 greedy steps, which must be llama.cpp's tokens),
//!   at scale 1 and 0.5;
//! * the PEFT directory gives the GGUF adapter's logits bit for bit, and both differ from
//!   the base model's;
//! * a batch mixing the base model and two adapters gives each sequence its solo logits bit
//!   for bit;
//! * an adapter for another base model is refused, naming the tensor.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use owl_gguf::GgufFile;
use owl_kernels::Kernels;
use owl_model::{Batch, KvCache, LoadOptions, Logits, LogitsWanted, LoraAdapter, Runner};
use owl_testkit::{fixture_path, ids};

/// Largest allowed |owl - llama.cpp| on a reference logit. Both run the decode path with the
/// base weights in the same order (bit-identical without an adapter, `arch_references.rs`);
/// the low-rank products are summed in another order than ggml's (its F32 `A x` goes through
/// llamafile's tinyBLAS), a few ulps per adapted matmul, which now and then moves a K/V value
/// across an F16 rounding boundary of the cache; through 2 layers of random weights that
/// reaches 1.8e-3 (measured over the 5 cases x 16 steps, top-1 agreeing at every step).
const TOLERANCE: f32 = 5e-3;

fn runner(name: &str) -> Runner {
    let path = fixture_path(&format!("arch/{name}.gguf"));
    let file = Arc::new(GgufFile::open(&path).unwrap());
    let opts = LoadOptions {
        no_repack: true,
        ..LoadOptions::default()
    };
    Runner::new(file, Kernels::detect(), 2, &opts).unwrap()
}

fn adapter(run: &Runner, rel: &str, scale: f32) -> LoraAdapter {
    let path: PathBuf = fixture_path(rel);
    let file = owl_hf::open_adapter(&path, &run.file).unwrap();
    run.load_adapter(&file, &path.display().to_string(), scale)
        .unwrap()
}

/// Feeds `prompt` one token per pass with `adapter`, then `n_gen` greedy steps; the logits
/// before each greedy step.
fn one_by_one(
    run: &mut Runner,
    adapter: Option<&LoraAdapter>,
    prompt: &[u32],
    n_gen: usize,
) -> Vec<Vec<f32>> {
    let mut kv = run.model.new_cache(256, 1);
    let mut batch = Batch::new();
    let mut logits = Logits::default();
    let adapters: Vec<&LoraAdapter> = adapter.into_iter().collect();
    let mut step = |kv: &mut KvCache, pos: usize, t: u32| -> Vec<f32> {
        batch.clear();
        batch.push(0, pos, &[t], LogitsWanted::Last);
        batch.set_last_adapter(adapter.map(|_| 0));
        run.forward_with(&batch, &adapters, kv, &mut logits)
            .unwrap();
        logits.row(0).to_vec()
    };
    let mut last = Vec::new();
    for (pos, &t) in prompt.iter().enumerate() {
        last = step(&mut kv, pos, t);
    }
    let mut out = Vec::new();
    for i in 0..n_gen {
        let next = argmax(&last);
        out.push(last);
        last = step(&mut kv, prompt.len() + i, next);
    }
    out
}

fn argmax(l: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in l.iter().enumerate() {
        if v > l[best] {
            best = i;
        }
    }
    best as u32
}

fn reference() -> serde_json::Value {
    let path = fixture_path("lora/tiny-llama-lora.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[test]
fn gguf_adapter_matches_llama_cpp() {
    let mut run = runner("tiny-llama");
    let r = reference();
    let mut worst = 0.0f32;
    let (mut agree, mut total) = (0, 0);
    for case in r["cases"].as_array().unwrap() {
        let scale = case["scale"].as_f64().unwrap() as f32;
        let lora = adapter(&run, "lora/tiny-llama-lora.gguf", scale);
        let prompt = ids(&case["prompt_tokens"]);
        let want_tokens = ids(&case["tokens"]);
        let steps = one_by_one(&mut run, Some(&lora), &prompt, want_tokens.len());
        for (i, (logits, top)) in steps
            .iter()
            .zip(case["top_logits"].as_array().unwrap())
            .enumerate()
        {
            for pair in top.as_array().unwrap() {
                let id = pair[0].as_u64().unwrap() as usize;
                let want = pair[1].as_f64().unwrap() as f32;
                let d = (logits[id] - want).abs();
                worst = worst.max(d);
                assert!(
                    d <= TOLERANCE,
                    "scale {scale} step {i} token {id}: owl {} llama.cpp {want}",
                    logits[id]
                );
            }
            total += 1;
            agree += usize::from(argmax(logits) == want_tokens[i]);
        }
    }
    eprintln!("lora vs llama.cpp: max |logit diff| {worst:.2e}, top-1 {agree}/{total}");
    assert_eq!(agree, total, "greedy tokens differ from llama.cpp's");
}

#[test]
fn peft_directory_equals_gguf_adapter_and_differs_from_base() {
    let mut run = runner("tiny-llama");
    let gguf = adapter(&run, "lora/tiny-llama-lora.gguf", 1.0);
    let peft = adapter(&run, "lora/tiny-llama-peft", 1.0);
    assert_eq!(gguf.n_pairs(), 14);
    assert_eq!(peft.n_pairs(), 14);
    let prompt = ids(&reference()["cases"][0]["prompt_tokens"]);
    let a = one_by_one(&mut run, Some(&gguf), &prompt, 4);
    let b = one_by_one(&mut run, Some(&peft), &prompt, 4);
    let base = one_by_one(&mut run, None, &prompt, 4);
    assert_eq!(a, b, "PEFT and GGUF adapters disagree");
    let d = a[0]
        .iter()
        .zip(&base[0])
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(d > 0.1, "the adapter barely changes the logits ({d})");
}

/// Three sequences (base, adapter at scale 1, adapter at scale 0.5) prefilled and decoded
/// together in one batch per pass, against each run alone.
#[test]
fn mixed_batch_equals_each_alone() {
    let mut run = runner("tiny-llama");
    let full = adapter(&run, "lora/tiny-llama-lora.gguf", 1.0);
    let half = adapter(&run, "lora/tiny-llama-peft", 0.5);
    let r = reference();
    let prompts: Vec<Vec<u32>> = (0..3)
        .map(|i| ids(&r["cases"][i.min(2) + usize::from(i > 0)]["prompt_tokens"]))
        .collect();
    let which = [None, Some(0usize), Some(1usize)];
    let adapters = [&full, &half];
    let n_gen = 6;

    let solo = |run: &mut Runner, i: usize| -> Vec<Vec<f32>> {
        let mut kv = run.model.new_cache(256, 1);
        let mut batch = Batch::new();
        let mut logits = Logits::default();
        let mut out = Vec::new();
        batch.push(0, 0, &prompts[i], LogitsWanted::Last);
        batch.set_last_adapter(which[i]);
        run.forward_with(&batch, &adapters, &mut kv, &mut logits)
            .unwrap();
        out.push(logits.row(0).to_vec());
        for s in 0..n_gen {
            let t = argmax(out.last().unwrap());
            batch.clear();
            batch.push(0, prompts[i].len() + s, &[t], LogitsWanted::Last);
            batch.set_last_adapter(which[i]);
            run.forward_with(&batch, &adapters, &mut kv, &mut logits)
                .unwrap();
            out.push(logits.row(0).to_vec());
        }
        out
    };
    let alone: Vec<_> = (0..3).map(|i| solo(&mut run, i)).collect();

    let mut kv = run.model.new_cache(256, 3);
    let mut batch = Batch::new();
    let mut logits = Logits::default();
    let mut got: Vec<Vec<Vec<f32>>> = vec![Vec::new(); 3];
    for i in [2, 0, 1] {
        batch.push(i, 0, &prompts[i], LogitsWanted::Last);
        batch.set_last_adapter(which[i]);
    }
    run.forward_with(&batch, &adapters, &mut kv, &mut logits)
        .unwrap();
    for (row, i) in [2, 0, 1].into_iter().enumerate() {
        got[i].push(logits.row(row).to_vec());
    }
    for s in 0..n_gen {
        batch.clear();
        for i in [1, 2, 0] {
            let t = argmax(got[i].last().unwrap());
            batch.push(i, prompts[i].len() + s, &[t], LogitsWanted::Last);
            batch.set_last_adapter(which[i]);
        }
        run.forward_with(&batch, &adapters, &mut kv, &mut logits)
            .unwrap();
        for (row, i) in [1, 2, 0].into_iter().enumerate() {
            got[i].push(logits.row(row).to_vec());
        }
    }
    for i in 0..3 {
        assert!(
            got[i] == alone[i],
            "sequence {i} differs batched from alone"
        );
    }
    assert!(alone[1] != alone[0] && alone[2] != alone[1]);
}

#[test]
fn an_adapter_for_another_base_is_refused() {
    // tiny-llama-3l-q8 has 4 KV heads: its attn_k is [32, 32], the adapter's B is [4, 16].
    let run = runner("tiny-llama-3l-q8");
    let path = fixture_path("lora/tiny-llama-lora.gguf");
    let file = owl_hf::open_adapter(&path, &run.file).unwrap();
    let err = run
        .load_adapter(&file, "a.gguf", 1.0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a.gguf") && err.contains("blk.0.attn_k.weight.lora_b"),
        "{err}"
    );
    // Another architecture.
    let run = runner("tiny-qwen3");
    let err = run
        .load_adapter(&file, "a.gguf", 1.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("llama") && err.contains("qwen3"), "{err}");
    // A PEFT directory for the wrong base: the same shape check, naming the GGUF tensor.
    let run = runner("tiny-llama-3l-q8");
    let dir = fixture_path("lora/tiny-llama-peft");
    let file = owl_hf::open_adapter(&dir, &run.file).unwrap();
    let err = run
        .load_adapter(&file, "peft", 1.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("attn_k.weight.lora_b"), "{err}");
    // Not an adapter at all.
    let model = fixture_path("arch/tiny-llama.gguf");
    let file = owl_hf::open_adapter(&model, &run.file).unwrap();
    let err = run
        .load_adapter(&file, "m.gguf", 1.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a LoRA adapter"), "{err}");
}
