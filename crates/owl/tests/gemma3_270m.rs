//! owl against llama.cpp on the real gemma-3-270m (Q4_K_M), when it is present: the file named
//! by `OWL_TEST_GEMMA3` (`owl pull gemma3-270m` puts it at
//! `~/.owl/models/gemma-3-270m-q4_k_m.gguf`). Without the variable the test says so and passes:
//! the model is 253 MB and CI does not fetch it (`scripts/test.sh` does when asked).
//!
//! Reference: `tests/fixtures/reference/gemma3-270m-generation.json` from
//! `scripts/make_references.py --builtin-template gemma --generation-only ...` (llama.cpp
//! 0c1e570's AVX2 build: 15 prompts, 9 raw and 6 chat turns rendered by llama.cpp's built-in
//! gemma template, 48 greedy steps each with the top-10 logits). Teacher-forced along
//! llama.cpp's tokens, owl's top-1 must be llama.cpp's at >= 95 % of the steps, and its logits
//! for llama.cpp's top-10 tokens within `LOGIT_TOL`. Not bit for bit: llama.cpp repacks this
//! file's Q4_K matrices (its Q4_Kx8 path sums in its own order) and multiplies a prompt's
//! K-quants in another order than its decode path, so the two differ by float rounding that 18
//! layers carry to the logits (with its repacking off, its decode path is owl's bit for bit:
//! docs/FIDELITY.md).

use owl_kernels::Kernels;
use owl_testkit::{ids, reference, runner, Stepper};

/// The required share of steps where owl's argmax is llama.cpp's token.
const MIN_AGREEMENT: f64 = 0.95;
/// Largest accepted |owl - llama.cpp| on one of llama.cpp's top-10 logits, and on average.
/// Measured 2026-12-04 (AVX2 kernels): largest 1.839 / mean 0.228 in the row layout, 1.761 /
/// 0.250 repacked (a layer-by-layer trace shows every op bit-identical but llama.cpp's K-quant
/// products, docs/FIDELITY.md); the bounds leave room for other machines' kernels.
const LOGIT_TOL: f32 = 2.5;
const MEAN_LOGIT_TOL: f64 = 0.35;

fn model() -> Option<std::path::PathBuf> {
    let p = std::env::var_os("OWL_TEST_GEMMA3").filter(|p| !p.is_empty())?;
    Some(std::path::PathBuf::from(p))
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

/// (agreeing steps, steps, largest and mean top-10 logit difference) over every reference case.
fn teacher_forced(exact: bool) -> (usize, usize, f32, f64) {
    let path = model().expect("OWL_TEST_GEMMA3");
    let doc = reference("gemma3-270m-generation.json");
    let sha = doc["model"]["sha256"].as_str().expect("sha256");
    assert_eq!(
        sha, "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        "the reference is for another file"
    );
    let mut s = Stepper::new(runner(&path, Kernels::detect(), 2, exact), 2048);
    let (mut agree, mut steps, mut worst, mut sum, mut n) = (0, 0, 0.0f32, 0.0f64, 0usize);
    for c in doc["cases"].as_array().expect("cases") {
        let name = c["name"].as_str().expect("name");
        let tokens = ids(&c["tokens"]);
        let tops = c["top_logits"].as_array().expect("top_logits");
        s.reset();
        let mut logits = s.prefill(&ids(&c["prompt_tokens"])).to_vec();
        let mut case_agree = 0;
        for (step, &want) in tokens.iter().enumerate() {
            steps += 1;
            if argmax(&logits) == want {
                agree += 1;
                case_agree += 1;
            }
            for p in tops[step].as_array().expect("step") {
                let id = p[0].as_u64().expect("id") as usize;
                let d = (logits[id] - p[1].as_f64().expect("logit") as f32).abs();
                worst = worst.max(d);
                sum += f64::from(d);
                n += 1;
            }
            if step + 1 < tokens.len() {
                logits = s.decode(want).to_vec();
            }
        }
        eprintln!(
            "{name}: top-1 agrees at {case_agree}/{} steps",
            tokens.len()
        );
    }
    (agree, steps, worst, sum / n.max(1) as f64)
}

fn check(exact: bool) {
    if model().is_none() {
        eprintln!(
            "OWL_TEST_GEMMA3 is not set: skipped (owl pull gemma3-270m, then point it at the file)"
        );
        return;
    }
    let (agree, steps, worst, mean) = teacher_forced(exact);
    let share = agree as f64 / steps as f64;
    eprintln!(
        "gemma-3-270m ({}): top-1 = llama.cpp's at {agree}/{steps} steps ({:.2} %), top-10 logit differences: largest {worst:.3}, mean {mean:.4}",
        if exact { "row layout" } else { "repacked" },
        100.0 * share
    );
    assert!(steps >= 12 * 48, "expected a dozen prompts of 48 steps");
    assert!(
        share >= MIN_AGREEMENT,
        "top-1 agrees at {:.2} % of the steps, below {:.0} %",
        100.0 * share,
        100.0 * MIN_AGREEMENT
    );
    assert!(worst <= LOGIT_TOL, "top-10 logits differ by up to {worst}");
    assert!(
        mean <= MEAN_LOGIT_TOL,
        "top-10 logits differ by {mean} on average"
    );
}

#[test]
fn teacher_forced_top1_agrees_with_llama_cpp() {
    check(true);
}

#[test]
fn teacher_forced_top1_agrees_with_llama_cpp_repacked() {
    check(false);
}
