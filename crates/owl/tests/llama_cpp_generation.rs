//! owl against llama.cpp on the default model: greedy generation token for token, and logits.
//!
//! References come from `scripts/make_references.py` (llama.cpp through llama-cpp-python, F16 KV
//! cache, no flash attention) and are committed under tests/fixtures/reference. Each case feeds
//! llama.cpp's prompt tokens, then:
//! 1. free-running greedy generation of 48 tokens must equal llama.cpp's; a divergence is only
//!    accepted at a step where llama.cpp's own top-2 logits are within 1e-3 (a near-tie), and the
//!    failure message shows both;
//! 2. teacher-forced along llama.cpp's tokens, every step's top-10 logits must be within
//!    `LOGIT_TOL` of llama.cpp's, and the top-5 sets must agree at the first step.

use owl_testkit as common;

use owl_engine::{EngineConfig, Event, ModelBundle, OpenOptions, Request, RunningModel};
use owl_kernels::Kernels;
use owl_model::LoadOptions;
use owl_sample::SamplingParams;
use owl_testkit::Stepper;

/// Largest accepted |owl - llama.cpp| for a reference top-10 logit with weights in the file's
/// layout. The references come from llama.cpp's AVX2 build, whose float operations owl's AVX2
/// kernels reproduce exactly, so on an AVX2 machine the logits must be bit-identical; the
/// portable scalar kernels sum in another order and get `ORDER_TOL`. The AVX-512 level keeps
/// AVX2's row-layout kernels (it overrides only the repacked layouts), so it is held to 0 too.
fn logit_tol() -> f32 {
    if Kernels::detect().isa() >= owl_kernels::Isa::AVX2 {
        0.0
    } else {
        ORDER_TOL
    }
}
const NEAR_TIE: f64 = 1e-3;

/// A forward-pass driver on the default model with weights in the file's layout (`exact`,
/// llama.cpp's summation order) or repacked (what `owl` runs by default).
fn session(threads: usize, exact: bool) -> Stepper {
    let runner = owl_testkit::runner(&common::default_model(), Kernels::detect(), threads, exact);
    Stepper::new(runner, 2048)
}

/// The default model on the engine `owl run` uses (one sequence), weights in the file's layout.
fn engine() -> RunningModel {
    let opts = OpenOptions {
        threads: Some(2),
        ctx_size: Some(2048),
        load: LoadOptions {
            no_repack: true,
            ..LoadOptions::default()
        },
        trace_dir: None,
        quantize: None,
    };
    let bundle = ModelBundle::open(&common::default_model(), &opts).expect("open default model");
    bundle
        .start(EngineConfig::single(2048))
        .expect("start engine")
}

/// Greedy tokens from the engine, not stopping at end-of-generation.
fn generate(m: &RunningModel, prompt: &[u32], max_tokens: usize) -> Vec<u32> {
    let mut stream = m
        .engine
        .submit(Request {
            prompt: prompt.to_vec(),
            max_tokens,
            sampling: SamplingParams::greedy(),
            stop: Vec::new(),
            stop_at_eog: false,
            logprobs: None,
            prompt_logprobs: false,
            render_special: false,
            constraint: None,
            adapter: None,
        })
        .expect("submit");
    let mut got = Vec::new();
    while let Some(ev) = stream.next_blocking() {
        match ev {
            Event::Token { id, .. } => got.push(id),
            Event::Done(_) => break,
        }
    }
    got
}

struct RefCase {
    name: String,
    prompt: Vec<u32>,
    tokens: Vec<u32>,
    /// per step: [(id, logit)] best first
    top: Vec<Vec<(u32, f64)>>,
}

fn cases() -> Vec<RefCase> {
    let doc = common::reference("generation.json");
    doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| RefCase {
            name: c["name"].as_str().expect("name").to_string(),
            prompt: common::ids(&c["prompt_tokens"]),
            tokens: common::ids(&c["tokens"]),
            top: c["top_logits"]
                .as_array()
                .expect("top_logits")
                .iter()
                .map(|step| {
                    step.as_array()
                        .expect("step")
                        .iter()
                        .map(|p| {
                            (
                                p[0].as_u64().expect("id") as u32,
                                p[1].as_f64().expect("logit"),
                            )
                        })
                        .collect()
                })
                .collect(),
        })
        .collect()
}

#[test]
fn greedy_generation_equals_llama_cpp() {
    let cases = cases();
    assert!(cases.len() >= 12, "expected at least 12 reference prompts");
    let m = engine();
    let mut failures = Vec::new();
    let mut ties = Vec::new();
    for c in &cases {
        let got = generate(&m, &c.prompt, 48);
        assert_eq!(got.len(), c.tokens.len(), "{}: generated length", c.name);
        if let Some(step) = got.iter().zip(&c.tokens).position(|(a, b)| a != b) {
            let top = &c.top[step];
            let gap = top[0].1 - top[1].1;
            let msg = format!(
                "{}: step {step}: owl {} vs llama.cpp {}; llama.cpp top-2 {:?} {:?} (gap {gap:.2e})",
                c.name, got[step], c.tokens[step], top[0], top[1]
            );
            if gap < NEAR_TIE && top[1].0 == got[step] {
                ties.push(msg);
            } else {
                failures.push(msg);
            }
        }
    }
    for t in &ties {
        eprintln!("accepted divergence at a llama.cpp near-tie: {t}");
    }
    assert!(
        failures.is_empty(),
        "greedy generation differs from llama.cpp:\n{}",
        failures.join("\n")
    );
}

#[test]
fn logits_match_llama_cpp_along_its_tokens() {
    check_logits(&mut session(2, true), logit_tol(), false);
}

/// With the weights repacked (the default; sums in another order than llama.cpp's row-layout
/// kernels), logits stay within `ORDER_TOL` and the chosen token is llama.cpp's wherever its
/// top two are more than `ORDER_GAP` apart.
#[test]
fn repacked_weights_stay_close_to_llama_cpp() {
    check_logits(&mut session(2, false), ORDER_TOL, true);
}

/// How far this model's logits move when only the summation order changes. SmolLM2's
/// activations have a few huge dimensions, so a rounding difference of 1e-7 in one product is
/// amplified through 30 layers: the portable scalar kernels (f64 sums, more accurate than
/// either side) differ from llama.cpp by up to 1.50 (chat_capital step 10), the repacked
/// layout by up to 1.22 (raw_fibonacci step 22), measured 2026-11-23.
const ORDER_TOL: f32 = 1.6;
/// The greedy choice must be llama.cpp's wherever its top two logits are this far apart.
const ORDER_GAP: f64 = 1.0;

fn check_logits(s: &mut Stepper, tol: f32, check_argmax: bool) {
    let mut worst = (0.0f32, String::new());
    for c in &cases() {
        s.reset();
        let mut logits = s.prefill(&c.prompt).to_vec();
        for (step, top) in c.top.iter().enumerate() {
            if step == 0 && tol == 0.0 {
                let mut ours: Vec<(usize, f32)> = logits.iter().copied().enumerate().collect();
                ours.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                let mut a: Vec<u32> = ours[..5].iter().map(|p| p.0 as u32).collect();
                let mut b: Vec<u32> = top[..5].iter().map(|p| p.0).collect();
                a.sort_unstable();
                b.sort_unstable();
                assert_eq!(
                    a, b,
                    "{}: top-5 token sets differ at the first step",
                    c.name
                );
            }
            if check_argmax && top[0].1 - top[1].1 > ORDER_GAP {
                let best = logits
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|p| p.0 as u32);
                assert_eq!(best, Some(top[0].0), "{} step {step}: argmax", c.name);
            }
            for &(id, want) in top {
                let d = (logits[id as usize] - want as f32).abs();
                if d > worst.0 {
                    worst = (d, format!("{} step {step} token {id}", c.name));
                }
                assert!(
                    d <= tol,
                    "{} step {step} token {id}: owl {} vs llama.cpp {want} (tolerance {tol})",
                    c.name,
                    logits[id as usize]
                );
            }
            if step + 1 < c.tokens.len() {
                logits = s.decode(c.tokens[step]).to_vec();
            }
        }
    }
    eprintln!(
        "largest |owl - llama.cpp| top-10 logit difference: {} at {}",
        worst.0, worst.1
    );
}
