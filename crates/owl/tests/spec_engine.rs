//! Speculative decoding (prompt lookup) changes the speed, never the reply: on a committed tiny
//! model, every request gives the same tokens, text, logprobs and finish reason with `--spec off`,
//! `ngram` and `auto`, alone and batched, greedy and seeded sampling, at every `max_tokens` and
//! context boundary. The prompts repeat themselves, so drafts are made (and, in `ngram` mode,
//! accepted): checked through the engine's counters, so the test cannot pass with speculation
//! silently off.

use std::path::Path;
use std::time::Duration;

use owl_engine::{
    EngineConfig, EngineHandle, EngineStats, Event, FinishReason, ModelBundle, OpenOptions,
    Request, SpecConfig, SpecMode,
};
use owl_sample::SamplingParams;

fn open(path: &std::path::Path, n_ctx: usize) -> ModelBundle {
    ModelBundle::open(path, &OpenOptions::from_env(Some(2), Some(n_ctx))).expect("open tiny model")
}

fn start(path: &Path, n_ctx: usize, parallel: usize, mode: SpecMode) -> EngineHandle {
    let mut cfg = EngineConfig::new(n_ctx, parallel);
    cfg.spec = SpecConfig { mode, max_draft: 6 };
    open(path, n_ctx).start(cfg).expect("engine").engine
}

#[derive(Debug, PartialEq)]
struct Outcome {
    tokens: Vec<u32>,
    text: String,
    logprobs: Vec<(u32, u32)>,
    reason: FinishReason,
}

fn collect(mut s: owl_engine::RequestStream) -> Outcome {
    let mut out = Outcome {
        tokens: Vec::new(),
        text: String::new(),
        logprobs: Vec::new(),
        reason: FinishReason::Cancelled,
    };
    while let Some(ev) = s.next_blocking() {
        match ev {
            Event::Token { id, text, logprob } => {
                out.tokens.push(id);
                out.text.push_str(&text);
                if let Some(lp) = logprob {
                    // Bits, not approximate values: the rows must be the same rows.
                    let top = lp.top.first().map_or(0, |t| t.1.to_bits());
                    out.logprobs.push((lp.logprob.to_bits(), top));
                }
            }
            Event::Done(f) => {
                out.text.push_str(&f.text);
                out.reason = f.reason;
                assert_eq!(f.completion_tokens, out.tokens.len());
                break;
            }
        }
    }
    out
}

/// Prompts that repeat spans (what prompt lookup drafts from), in token ids of the tiny model's
/// vocabulary, and the requests made of them.
fn requests(tok: &owl_text::Tokenizer) -> Vec<Request> {
    let texts = [
        "the cat sat on the mat. the cat sat on the mat. the cat sat on the",
        "fn main() { let x = 1; let y = 2; let x = 1; let y = 2; let x = 1;",
        "one two three four five one two three four five one two three",
        "Hello world",
        "a b c d a b c d a b c d a b c d a b c d",
    ];
    let mut out = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let prompt = tok.encode(t, true, false).expect("encode");
        for (j, sampling) in [
            SamplingParams::greedy(),
            SamplingParams {
                temperature: 0.9,
                seed: Some(7 + i as u64),
                ..SamplingParams::default()
            },
        ]
        .into_iter()
        .enumerate()
        {
            out.push(Request {
                prompt: prompt.clone(),
                // Odd limits, so a draft often meets the end of the request.
                max_tokens: [40, 7, 23][(i + j) % 3],
                sampling,
                stop: if i == 2 {
                    vec!["five one".into()]
                } else {
                    Vec::new()
                },
                stop_at_eog: false,
                logprobs: Some(2),
                prompt_logprobs: false,
                render_special: false,
                constraint: None,
                adapter: None,
            });
        }
    }
    out
}

/// The replies with `--spec off`, one request at a time.
fn unspeculated(path: &Path, reqs: &[Request]) -> Vec<Outcome> {
    let e = start(path, 96, 1, SpecMode::Off);
    let out = run_all(&e, reqs, false);
    e.shutdown(Duration::from_secs(1));
    out
}

fn run_all(e: &EngineHandle, reqs: &[Request], together: bool) -> Vec<Outcome> {
    if together {
        let streams: Vec<_> = reqs
            .iter()
            .map(|r| e.submit(r.clone()).expect("submit"))
            .collect();
        streams.into_iter().map(collect).collect()
    } else {
        reqs.iter()
            .map(|r| collect(e.submit(r.clone()).expect("submit")))
            .collect()
    }
}

#[test]
fn speculation_never_changes_a_reply() {
    same_replies_with_and_without_speculation("llama");
}

/// Gemma 3 has sliding-window layers; its tiny fixture slides over 8 positions, so drafts of
/// up to 6 tokens are checked across window and page edges, and a rejected draft must not
/// have dropped a page the next step still reads. (gpt-oss's layers use the same windowed
/// cache, but its random tiny model, with a 200k vocabulary, never repeats its context, so
/// lookup would never draft for it.)
#[test]
fn speculation_never_changes_a_reply_with_sliding_windows() {
    same_replies_with_and_without_speculation("gemma3");
}

fn same_replies_with_and_without_speculation(arch: &str) {
    let path = owl_testkit::tiny_model(arch);
    let tok = open(&path, 128).tokenizer;
    let reqs = requests(&tok);
    // The context (96) is shorter than a prompt plus its 40 tokens for some: drafts meet it.
    let reference = {
        let e = start(&path, 96, 1, SpecMode::Off);
        let out = run_all(&e, &reqs, false);
        assert_eq!(EngineStats::get(&e.stats().spec_drafted), 0);
        e.shutdown(Duration::from_secs(1));
        out
    };
    assert!(reference.iter().any(|o| o.reason == FinishReason::Length));
    for mode in [SpecMode::Ngram, SpecMode::Auto] {
        for (parallel, together) in [(1, false), (4, true)] {
            let e = start(&path, 96, parallel, mode);
            let out = run_all(&e, &reqs, together);
            let drafted = EngineStats::get(&e.stats().spec_drafted);
            let accepted = EngineStats::get(&e.stats().spec_accepted);
            e.shutdown(Duration::from_secs(1));
            for (i, (a, b)) in reference.iter().zip(&out).enumerate() {
                assert_eq!(a, b, "{arch} request {i}: {mode:?}, parallel {parallel}");
            }
            // The random tiny model copies little: `ngram` keeps drafting and must have had
            // drafts accepted; `auto` may give up after trying. Alone, `auto` must try: its
            // step-cost fit needs steps of two widths, so its first decode steps go by the
            // prior. Four together, the fit can form from the batch's own widths before the
            // first draft and say that drafting does not pay (it did once in about 35 runs).
            let ran = match (mode, parallel) {
                (SpecMode::Ngram, _) => accepted > 0,
                (_, 1) => drafted > 0,
                _ => true,
            };
            assert!(
                ran,
                "{arch} {mode:?}, parallel {parallel}: {drafted} drafted, {accepted} accepted: \
                 speculation never ran"
            );
            assert!(accepted <= drafted);
        }
    }
}

/// An engine guessing with the draft model at `draft`.
fn start_drafting(path: &Path, draft: &Path, n_ctx: usize, parallel: usize) -> EngineHandle {
    let mut cfg = EngineConfig::new(n_ctx, parallel);
    cfg.spec = SpecConfig {
        mode: SpecMode::Draft,
        max_draft: 6,
    };
    open(path, n_ctx)
        .start_with_draft(cfg, Some(open(draft, n_ctx)))
        .expect("engine")
        .engine
}

#[test]
fn a_draft_model_changes_the_speed_never_the_reply() {
    let path = owl_testkit::tiny_model("llama");
    let tok = open(&path, 128).tokenizer;
    let reqs = requests(&tok);
    let reference = unspeculated(&path, &reqs);
    // The model as its own draft guesses right; a random model of the same vocabulary (another
    // architecture) mostly wrong. Either way the replies are the reference's, alone and batched.
    for (draft, agrees) in [("llama", true), ("qwen2", false)] {
        let draft = owl_testkit::tiny_model(draft);
        for (parallel, together) in [(1, false), (4, true)] {
            let e = start_drafting(&path, &draft, 96, parallel);
            let out = run_all(&e, &reqs, together);
            let drafted = EngineStats::get(&e.stats().spec_model_drafted);
            let accepted = EngineStats::get(&e.stats().spec_model_accepted);
            assert!(drafted <= EngineStats::get(&e.stats().spec_drafted));
            e.shutdown(Duration::from_secs(1));
            for (i, (a, b)) in reference.iter().zip(&out).enumerate() {
                assert_eq!(
                    a,
                    b,
                    "request {i}: draft {}, parallel {parallel}",
                    draft.display()
                );
            }
            assert!(
                drafted > 0,
                "{}: the draft model never guessed",
                draft.display()
            );
            assert!(accepted <= drafted);
            if agrees {
                assert!(
                    accepted > 0,
                    "its own draft: {accepted} of {drafted} accepted"
                );
            }
        }
    }
    // Greedy replies with the model as its own draft: nearly every guess is right. (It drafts
    // little: a draft pass costs as much as the checked pass, so once measured, guessing no
    // longer pays and the policy pauses, retrying now and then.)
    let greedy: Vec<Request> = reqs
        .iter()
        .filter(|r| r.sampling.temperature == 0.0)
        .cloned()
        .collect();
    let e = start_drafting(&path, &path, 96, 1);
    let out = run_all(&e, &greedy, false);
    let drafted = EngineStats::get(&e.stats().spec_model_drafted);
    let accepted = EngineStats::get(&e.stats().spec_model_accepted);
    e.shutdown(Duration::from_secs(1));
    let want: Vec<&Outcome> = reference
        .iter()
        .zip(&reqs)
        .filter(|(_, r)| r.sampling.temperature == 0.0)
        .map(|(o, _)| o)
        .collect();
    assert_eq!(out.iter().collect::<Vec<_>>(), want);
    assert!(
        accepted * 10 >= drafted * 9 && drafted > 0,
        "its own greedy draft: {accepted} of {drafted} accepted"
    );
}

/// A sliding-window model (the tiny Gemma 3, window 8) as its own draft: its cache keeps the
/// positions a rollback of rejected guesses needs, so across many window and page edges the
/// replies stay the reference's, alone and batched, greedy and sampled.
#[test]
fn a_sliding_window_draft_model_changes_the_speed_never_the_reply() {
    let path = owl_testkit::tiny_model("gemma3");
    let tok = open(&path, 128).tokenizer;
    let reqs = requests(&tok);
    let reference = unspeculated(&path, &reqs);
    for (parallel, together) in [(1, false), (4, true)] {
        let e = start_drafting(&path, &path, 96, parallel);
        let out = run_all(&e, &reqs, together);
        let drafted = EngineStats::get(&e.stats().spec_model_drafted);
        let accepted = EngineStats::get(&e.stats().spec_model_accepted);
        e.shutdown(Duration::from_secs(1));
        for (i, (a, b)) in reference.iter().zip(&out).enumerate() {
            assert_eq!(a, b, "request {i}: parallel {parallel}");
        }
        assert!(
            accepted > 0 && accepted <= drafted,
            "its own draft: {accepted} of {drafted} accepted"
        );
    }
}

#[test]
fn a_draft_model_of_another_vocabulary_is_refused() {
    let path = owl_testkit::tiny_model("llama");
    let other = owl_testkit::fixture_path("hf/tiny-deepseek2.gguf");
    let mut cfg = EngineConfig::new(64, 1);
    cfg.spec = SpecConfig {
        mode: SpecMode::Draft,
        max_draft: 4,
    };
    let err = open(&path, 64)
        .start_with_draft(cfg.clone(), Some(open(&other, 64)))
        .err()
        .expect("a draft model of another vocabulary starts");
    assert!(err.to_string().contains("vocabulary"), "{err}");
    // Draft mode without a draft model, or a draft model in another mode: clear errors.
    let err = open(&path, 64)
        .start(cfg.clone())
        .err()
        .expect("no draft model");
    assert!(err.to_string().contains("draft model"), "{err}");
    cfg.spec.mode = SpecMode::Auto;
    let err = open(&path, 64)
        .start_with_draft(cfg, Some(open(&path, 64)))
        .err()
        .expect("a draft model in auto mode");
    assert!(err.to_string().contains("'draft'"), "{err}");
}
