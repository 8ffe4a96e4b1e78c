//! The serving engine without HTTP, on a committed tiny model (random weights, SmolLM2's
//! vocabulary and template; it loads in milliseconds): batched output equals solo output,
//! pre-emption and resume change no token, cancellation returns every page, cached prefixes
//! are reused, stop strings and limits end requests with the right reason. The policy alone
//! (admission, budgets, pre-emption) is unit-tested in `owl-engine`'s `plan` module.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use owl_engine::{
    EngineConfig, EngineHandle, Event, FinishReason, ModelBundle, OpenOptions, Request,
};
use owl_sample::SamplingParams;
use owl_text::{ChatMessage, ChatPrompt, ChatTemplate, TemplateVars, Tokenizer};

struct Model {
    path: PathBuf,
    tok: std::sync::Arc<Tokenizer>,
    template: ChatTemplate,
}

fn model() -> Model {
    model_of("llama")
}

fn model_of(arch: &str) -> Model {
    let path = owl_testkit::tiny_model(arch);
    let b = open(&path, 512);
    Model {
        tok: b.tokenizer,
        template: b.template.expect("the tiny model has a chat template"),
        path,
    }
}

fn open(path: &std::path::Path, n_ctx: usize) -> ModelBundle {
    ModelBundle::open(path, &OpenOptions::from_env(Some(2), Some(n_ctx))).expect("open tiny model")
}

fn start(m: &Model, cfg: EngineConfig) -> EngineHandle {
    open(&m.path, cfg.n_ctx).start(cfg).expect("engine").engine
}

fn chat_prompt(m: &Model, user: &str) -> Vec<u32> {
    let msgs = [ChatMessage::new("user", user)];
    ChatPrompt::render(&m.template, &m.tok, &msgs, &TemplateVars::new())
        .expect("render")
        .ids
}

fn request(prompt: Vec<u32>, max_tokens: usize) -> Request {
    Request {
        prompt,
        max_tokens,
        sampling: SamplingParams::greedy(),
        stop: Vec::new(),
        stop_at_eog: true,
        logprobs: None,
        prompt_logprobs: false,
        render_special: false,
        constraint: None,
        adapter: None,
    }
}

#[derive(Debug, PartialEq)]
struct Outcome {
    tokens: Vec<u32>,
    text: String,
    reason: FinishReason,
    cached: usize,
}

fn collect(mut s: owl_engine::RequestStream) -> Outcome {
    let mut out = Outcome {
        tokens: Vec::new(),
        text: String::new(),
        reason: FinishReason::Cancelled,
        cached: 0,
    };
    while let Some(ev) = s.next_blocking() {
        match ev {
            Event::Token { id, text, .. } => {
                out.tokens.push(id);
                out.text.push_str(&text);
            }
            Event::Done(f) => {
                out.text.push_str(&f.text);
                out.reason = f.reason;
                out.cached = f.cached_tokens;
                assert_eq!(f.completion_tokens, out.tokens.len());
                break;
            }
        }
    }
    out
}

const QUESTIONS: [&str; 6] = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three prime numbers.",
    "Explain what a CPU cache is in one sentence.",
    "Translate 'good morning' into Spanish.",
    "What is 12 times 11?",
];

fn solo_outputs(m: &Model, max_tokens: usize) -> Vec<Outcome> {
    let e = start(m, EngineConfig::new(512, 1));
    let out = QUESTIONS
        .iter()
        .map(|q| {
            collect(
                e.submit(request(chat_prompt(m, q), max_tokens))
                    .expect("submit"),
            )
        })
        .collect();
    e.shutdown(Duration::from_secs(1));
    out
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "timed out waiting: {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn batched_output_equals_solo_output_and_preemption_changes_nothing() {
    let m = model();
    let solo = batched_equals_solo_and_shares_the_system_prompt(&m);

    // A KV budget far below what six sequences need: sequences are pre-empted and resumed.
    let mut cfg = EngineConfig::new(512, 6);
    cfg.kv_tokens = Some(6 * 32);
    cfg.cache_slots = 0;
    let e = start(&m, cfg);
    let streams: Vec<_> = QUESTIONS
        .iter()
        .map(|q| e.submit(request(chat_prompt(&m, q), 40)).expect("submit"))
        .collect();
    let squeezed: Vec<Outcome> = streams.into_iter().map(collect).collect();
    let preemptions = owl_engine::EngineStats::get(&e.stats().preemptions);
    assert!(preemptions > 0, "the budget should have forced pre-emption");
    for (i, (b, s)) in squeezed.iter().zip(&solo).enumerate() {
        assert_eq!(b.tokens, s.tokens, "pre-empted vs solo, request {i}");
        assert_eq!(b.text, s.text, "request {i}");
    }
    e.shutdown(Duration::from_secs(1));
}

/// Gemma 3's sliding-window layers (the tiny fixture slides over 8 positions): a copied
/// system prompt takes only the pages its window reaches, and changes no token.
#[test]
fn sliding_window_models_share_the_system_prompt_too() {
    batched_equals_solo_and_shares_the_system_prompt(&model_of("gemma3"));
}

/// Six chats run together give their solo tokens, and at least four of the later five copy
/// the template's system prompt from a running sequence. Returns the solo outcomes.
fn batched_equals_solo_and_shares_the_system_prompt(m: &Model) -> Vec<Outcome> {
    let solo = solo_outputs(m, 40);
    assert!(solo.iter().all(|o| !o.tokens.is_empty()));

    // All six at once, prompts prefilled in small chunks that share steps with decoding.
    let mut cfg = EngineConfig::new(512, 6);
    cfg.n_batch = 48;
    let e = start(m, cfg);
    let streams: Vec<_> = QUESTIONS
        .iter()
        .map(|q| e.submit(request(chat_prompt(m, q), 40)).expect("submit"))
        .collect();
    let batched: Vec<Outcome> = streams.into_iter().map(collect).collect();
    for (i, (b, s)) in batched.iter().zip(&solo).enumerate() {
        assert_eq!(b.tokens, s.tokens, "batched vs solo, request {i}");
        assert_eq!(b.text, s.text, "request {i}");
        assert_eq!(b.reason, s.reason, "request {i}");
    }
    // The six share the template's system prompt: the later ones copied its K/V rows from
    // a running sequence instead of computing them (and gave the solo tokens all the same).
    let shared = batched[1..].iter().filter(|o| o.cached >= 16).count();
    assert!(
        shared >= 4,
        "requests that copied the shared prefix: {shared} of 5"
    );
    e.shutdown(Duration::from_secs(1));
    solo
}

#[test]
fn cancellation_returns_every_page() {
    let m = model();
    let mut cfg = EngineConfig::new(512, 2);
    cfg.queue = 8;
    let e = start(&m, cfg);
    let stats = e.stats();
    let total = owl_engine::EngineStats::get(&stats.kv_pages_total);
    let mut long = request(chat_prompt(&m, "Tell me a very long story."), 400);
    long.stop_at_eog = false;
    let mut running = e.submit(long.clone()).expect("submit");
    let queued = [
        e.submit(long.clone()).expect("submit"),
        e.submit(long.clone()).expect("submit"),
    ];
    // Wait for a few tokens of the first, then cancel it by dropping the stream.
    for _ in 0..3 {
        assert!(matches!(running.next_blocking(), Some(Event::Token { .. })));
    }
    drop(running);
    drop(queued);
    wait_until("every sequence gone", || {
        owl_engine::EngineStats::get(&stats.running) == 0
            && owl_engine::EngineStats::get(&stats.waiting) == 0
    });
    wait_until("every page free", || {
        owl_engine::EngineStats::get(&stats.kv_pages_used) == 0
    });
    assert_eq!(owl_engine::EngineStats::get(&stats.kv_pages_total), total);

    // An explicit cancel ends with `Cancelled`.
    let s = e.submit(long).expect("submit");
    s.cancel();
    assert_eq!(collect(s).reason, FinishReason::Cancelled);
    e.shutdown(Duration::from_secs(1));
}

#[test]
fn a_repeated_prompt_reuses_its_cached_prefix_and_gives_the_same_tokens() {
    let m = model();
    let e = start(&m, EngineConfig::new(512, 2));
    let prompt = chat_prompt(&m, QUESTIONS[0]);
    let first = collect(e.submit(request(prompt.clone(), 16)).expect("submit"));
    let second = collect(e.submit(request(prompt.clone(), 16)).expect("submit"));
    assert_eq!(first.cached, 0);
    assert_eq!(second.cached, prompt.len() - 1);
    assert_eq!(first.tokens, second.tokens);
    // The next chat turn starts with the whole first exchange.
    let mut longer = prompt.clone();
    longer.extend_from_slice(&first.tokens);
    longer.extend(chat_prompt(&m, "And of Spain?"));
    let third = collect(e.submit(request(longer, 4)).expect("submit"));
    // Everything but the last generated token (sampled, never fed back) is in the cache.
    assert_eq!(second.reason, FinishReason::Length);
    assert_eq!(third.cached, prompt.len() + first.tokens.len() - 1);
    e.shutdown(Duration::from_secs(1));
}

#[test]
fn stop_strings_limits_and_refusals() {
    let m = model();
    let mut cfg = EngineConfig::new(64, 1);
    cfg.queue = 1;
    let e = start(&m, cfg);
    let prompt = chat_prompt(&m, "Count from 1 to 20, separated by commas.");
    let free = collect(e.submit(request(prompt.clone(), 40)).expect("submit"));
    // A stop string from the middle of the free reply (three characters at the 10th).
    let chars: Vec<char> = free.text.chars().collect();
    assert!(chars.len() >= 16, "reply too short: {:?}", free.text);
    let stop: String = chars[10..13].iter().collect();

    let mut r = request(prompt.clone(), 40);
    r.stop = vec![stop.clone()];
    let stopped = collect(e.submit(r).expect("submit"));
    assert_eq!(stopped.reason, FinishReason::Stop);
    assert_eq!(
        stopped.text,
        free.text[..free.text.find(&stop).expect("stop")]
    );

    let limited = collect(e.submit(request(prompt.clone(), 3)).expect("submit"));
    assert_eq!(
        (limited.tokens.len(), limited.reason),
        (3, FinishReason::Length)
    );

    // The context (64) ends a long generation with `Length`.
    let mut r = request(prompt.clone(), 1000);
    r.stop_at_eog = false;
    let full = collect(e.submit(r).expect("submit"));
    assert_eq!(full.reason, FinishReason::Length);
    assert_eq!(prompt.len() + full.tokens.len(), 64);

    let too_long = vec![1u32; 65];
    assert_eq!(
        e.submit(request(too_long, 1)).err(),
        Some(owl_engine::SubmitError::PromptTooLong {
            prompt: 65,
            n_ctx: 64
        })
    );
    assert_eq!(
        e.submit(request(Vec::new(), 1)).err(),
        Some(owl_engine::SubmitError::EmptyPrompt)
    );
    e.shutdown(Duration::from_secs(1));
    assert_eq!(
        e.submit(request(prompt, 1)).err(),
        Some(owl_engine::SubmitError::ShuttingDown)
    );
}

#[test]
fn logprobs_and_seeded_sampling() {
    let m = model();
    let e = start(&m, EngineConfig::new(256, 2));
    let prompt = chat_prompt(&m, QUESTIONS[1]);
    let mut r = request(prompt.clone(), 8);
    r.logprobs = Some(3);
    r.prompt_logprobs = true;
    let mut s = e.submit(r).expect("submit");
    let mut n = 0;
    loop {
        match s.next_blocking().expect("event") {
            Event::Token { logprob, .. } => {
                let lp = logprob.expect("logprob");
                assert_eq!(lp.top.len(), 3);
                assert!(lp.logprob <= 0.0);
                // Greedy: the chosen token is the best alternative.
                assert_eq!(lp.logprob, lp.top[0].1);
                n += 1;
            }
            Event::Done(f) => {
                let pl = f.prompt_logprobs.expect("prompt logprobs");
                assert_eq!(pl.len(), prompt.len());
                assert!(pl[0].is_none() && pl[1..].iter().all(Option::is_some));
                break;
            }
        }
    }
    assert_eq!(n, 8);

    let mut sampled = request(prompt, 24);
    sampled.sampling = SamplingParams {
        seed: Some(42),
        ..SamplingParams::default()
    };
    let a = collect(e.submit(sampled.clone()).expect("submit"));
    let b = collect(e.submit(sampled).expect("submit"));
    assert_eq!(a.tokens, b.tokens);
    e.shutdown(Duration::from_secs(1));
}

/// Prompt scoring (`/v1/completions` with `echo` and `logprobs`) is exact: each prompt token's
/// logprob equals the one computed from a single forward pass over the whole prompt, however
/// the engine chunks the prompt across steps.
#[test]
fn prompt_logprobs_equal_one_forward_pass_over_the_prompt() {
    let m = model();
    let prompt = chat_prompt(&m, "Score every token of this prompt, exactly.");
    assert!(prompt.len() > 20);
    // The reference: one pass, all rows.
    let mut run = owl_testkit::runner(&m.path, owl_kernels::Kernels::detect(), 2, false);
    let mut kv = run.model.new_cache(512, 1);
    let mut batch = owl_model::Batch::new();
    batch.push(0, 0, &prompt, owl_model::LogitsWanted::All);
    let mut logits = owl_model::Logits::default();
    run.forward(&batch, &mut kv, &mut logits).expect("forward");
    let want: Vec<(f32, Vec<(u32, f32)>)> = (1..prompt.len())
        .map(|i| owl_sample::top_logprobs(logits.row(i - 1), prompt[i], 3))
        .collect();
    for n_batch in [512, 7] {
        let mut cfg = EngineConfig::new(512, 2);
        cfg.n_batch = n_batch;
        let e = start(&m, cfg);
        let mut r = request(prompt.clone(), 1);
        r.logprobs = Some(3);
        r.prompt_logprobs = true;
        let mut s = e.submit(r).expect("submit");
        let got = loop {
            match s.next_blocking().expect("event") {
                Event::Done(f) => break f.prompt_logprobs.expect("prompt logprobs"),
                Event::Token { .. } => {}
            }
        };
        assert_eq!(got.len(), prompt.len());
        for (i, (lp, top)) in want.iter().enumerate() {
            let g = got[i + 1].as_ref().expect("logprob");
            assert_eq!(
                (g.logprob, &g.top),
                (*lp, top),
                "n_batch {n_batch} token {}",
                i + 1
            );
        }
        e.shutdown(Duration::from_secs(1));
    }
}

/// A schema every value of which is bounded, so random weights finish it well within budget.
fn bounded_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "n": {"type": "integer", "minimum": 0, "maximum": 99},
            "color": {"enum": ["red", "green", "blue"]}
        },
        "required": ["ok", "n", "color"],
        "additionalProperties": false
    })
}

#[test]
fn constrained_sequences_batch_and_resume_like_the_others() {
    let m = model();
    let grammars = owl_grammar::Grammars::new(std::sync::Arc::clone(&m.tok), m.tok.vocab_size())
        .expect("grammars");
    let constraint = grammars
        .compile(&owl_grammar::Constraint::JsonSchema(bounded_schema()))
        .expect("compile");
    // Every other request is constrained.
    let requests: Vec<Request> = QUESTIONS
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let mut r = request(chat_prompt(&m, q), 40);
            if i % 2 == 0 {
                r.constraint = Some(constraint.clone());
            }
            r
        })
        .collect();
    let e = start(&m, EngineConfig::new(512, 1));
    let solo: Vec<Outcome> = requests
        .iter()
        .map(|r| collect(e.submit(r.clone()).expect("submit")))
        .collect();
    e.shutdown(Duration::from_secs(1));
    for (i, o) in solo.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        let v: serde_json::Value = serde_json::from_str(&o.text)
            .unwrap_or_else(|err| panic!("request {i}: {err}: {:?}", o.text));
        assert!(
            v["ok"].is_boolean() && v["n"].as_u64().is_some_and(|n| n <= 99),
            "{v}"
        );
        assert_eq!(o.reason, FinishReason::Stop, "the grammar ends the reply");
    }
    // Unconstrained requests are untouched by their constrained neighbours.
    let plain = solo_outputs(&m, 40);
    for i in (1..QUESTIONS.len()).step_by(2) {
        assert_eq!(solo[i].tokens, plain[i].tokens, "request {i}");
    }
    for (name, kv_tokens) in [("batched", None), ("pre-empted", Some(6 * 32))] {
        let mut cfg = EngineConfig::new(512, 6);
        cfg.n_batch = 48;
        cfg.kv_tokens = kv_tokens;
        cfg.cache_slots = 0;
        let e = start(&m, cfg);
        let streams: Vec<_> = requests
            .iter()
            .map(|r| e.submit(r.clone()).expect("submit"))
            .collect();
        let outs: Vec<Outcome> = streams.into_iter().map(collect).collect();
        if kv_tokens.is_some() {
            assert!(owl_engine::EngineStats::get(&e.stats().preemptions) > 0);
        }
        for (i, (b, s)) in outs.iter().zip(&solo).enumerate() {
            assert_eq!(b.tokens, s.tokens, "{name} vs solo, request {i}");
            assert_eq!(b.reason, s.reason, "{name}, request {i}");
        }
        e.shutdown(Duration::from_secs(1));
    }
}

/// A tied Q8_0 head is repacked into a copy of its own (the embedding stays in the row layout
/// for lookups): the engine reports those bytes, which the server's memory budget counts. An
/// untied head, or a tied one left shared, holds nothing twice.
#[test]
fn a_tied_heads_repacked_copy_is_reported() {
    let start_bytes = |name: &str, shared: bool| {
        let path = owl_testkit::fixture_path(&format!("arch/{name}.gguf"));
        let mut o = OpenOptions::from_env(Some(1), Some(64));
        o.load.no_repack = false;
        o.load.shared_tied_head = shared;
        let m = ModelBundle::open(&path, &o)
            .expect("open")
            .start(EngineConfig::new(64, 1))
            .expect("engine");
        let bytes = m.engine.copied_weight_bytes();
        m.engine.shutdown(Duration::from_secs(1));
        bytes
    };
    // 49,152 rows of one Q8_0 block (32 values: 2 bytes of scale + 32 bytes).
    assert_eq!(start_bytes("tiny-qwen3-3l-q8", false), 49_152 * 34);
    assert_eq!(start_bytes("tiny-qwen3-3l-q8", true), 0);
    assert_eq!(start_bytes("tiny-llama-3l-q8", false), 0, "untied");
}
