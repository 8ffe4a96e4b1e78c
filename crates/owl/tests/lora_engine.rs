//! LoRA adapters in the serving engine, on the committed tiny llama and its adapter fixture
//! (`tests/fixtures/lora/`): requests for the base model and two adapters running together
//! give each its solo tokens; unloading an adapter while its request runs changes none of
//! that request's tokens, and a later request naming it fails; a prefix cached under one
//! adapter is never reused by another (or the base model).

use std::time::Duration;

use owl_engine::{
    EngineConfig, EngineHandle, Event, FinishReason, ModelBundle, OpenOptions, Request,
};
use owl_sample::SamplingParams;

fn start(parallel: usize) -> EngineHandle {
    let path = owl_testkit::tiny_model("llama");
    let b = ModelBundle::open(&path, &OpenOptions::from_env(Some(2), Some(256))).expect("open");
    let e = b
        .start(EngineConfig::new(256, parallel))
        .expect("engine")
        .engine;
    load(&e, "full", "lora/tiny-llama-lora.gguf", 1.0);
    load(&e, "half", "lora/tiny-llama-peft", 0.5);
    e
}

fn load(e: &EngineHandle, name: &str, rel: &str, scale: f32) {
    let path = owl_testkit::fixture_path(rel);
    e.load_adapter(name, &path, scale)
        .expect("read adapter")
        .blocking_recv()
        .expect("reply")
        .expect("register");
}

fn request(prompt: &[u32], adapter: Option<&str>, max_tokens: usize) -> Request {
    Request {
        prompt: prompt.to_vec(),
        max_tokens,
        sampling: SamplingParams::greedy(),
        stop: Vec::new(),
        stop_at_eog: false,
        logprobs: None,
        prompt_logprobs: false,
        render_special: false,
        constraint: None,
        adapter: adapter.map(str::to_string),
    }
}

/// (tokens, finish reason, cached prompt tokens)
fn collect(mut s: owl_engine::RequestStream) -> (Vec<u32>, FinishReason, usize) {
    let mut toks = Vec::new();
    while let Some(ev) = s.next_blocking() {
        match ev {
            Event::Token { id, .. } => toks.push(id),
            Event::Done(f) => return (toks, f.reason, f.cached_tokens),
        }
    }
    panic!("no Done event");
}

const PROMPT: [u32; 6] = [504, 3575, 282, 4649, 314, 1];
const WHICH: [Option<&str>; 3] = [None, Some("full"), Some("half")];

#[test]
fn mixed_adapters_in_one_batch_equal_each_alone() {
    let solo_engine = start(1);
    let solo: Vec<Vec<u32>> = WHICH
        .iter()
        .map(|&a| {
            let e = &solo_engine;
            let (t, r, _) = collect(e.submit(request(&PROMPT, a, 12)).expect("submit"));
            assert_eq!(r, FinishReason::Length);
            t
        })
        .collect();
    assert!(solo[0] != solo[1] && solo[1] != solo[2] && solo[0] != solo[2]);

    let e = start(3);
    let streams: Vec<_> = WHICH
        .iter()
        .map(|&a| e.submit(request(&PROMPT, a, 12)).expect("submit"))
        .collect();
    for (i, s) in streams.into_iter().enumerate() {
        assert_eq!(
            collect(s).0,
            solo[i],
            "request {i} batched differs from solo"
        );
    }
}

#[test]
fn prefixes_are_cached_per_adapter() {
    let e = start(1);
    let (full, _, _) = collect(e.submit(request(&PROMPT, Some("full"), 4)).expect("submit"));
    // Same prompt, base model: the cached prefix was computed with "full", so none is reused.
    let (base, _, cached) = collect(e.submit(request(&PROMPT, None, 4)).expect("submit"));
    assert_eq!(cached, 0);
    assert_ne!(full, base);
    // Same adapter again: reused.
    let (again, _, cached) = collect(e.submit(request(&PROMPT, Some("full"), 4)).expect("submit"));
    assert!(cached > 0);
    assert_eq!(again, full);
}

#[test]
fn unloading_does_not_disturb_running_requests() {
    let e = start(2);
    let running = e
        .submit(request(&[1, 2, 3], Some("full"), 40))
        .expect("submit");
    let (want, _, _) = {
        let e2 = start(1);
        collect(
            e2.submit(request(&[1, 2, 3], Some("full"), 40))
                .expect("submit"),
        )
    };
    // The engine resolved the name when the request arrived (commands are handled in order).
    std::thread::sleep(Duration::from_millis(5));
    e.unload_adapter("full")
        .expect("send")
        .blocking_recv()
        .expect("reply")
        .expect("unload");
    assert_eq!(collect(running).0, want);
    let (toks, reason, _) = collect(e.submit(request(&PROMPT, Some("full"), 4)).expect("submit"));
    assert!(toks.is_empty());
    assert!(
        matches!(&reason, FinishReason::Error(m) if m.contains("full")),
        "{reason:?}"
    );
    // Unknown names and duplicate loads are refused.
    let err = e
        .unload_adapter("full")
        .expect("send")
        .blocking_recv()
        .expect("reply");
    assert!(err.is_err());
    let path = owl_testkit::fixture_path("lora/tiny-llama-lora.gguf");
    let err = e
        .load_adapter("half", &path, 1.0)
        .expect("read")
        .blocking_recv()
        .expect("reply");
    assert!(err
        .expect_err("a second 'half'")
        .to_string()
        .contains("already loaded"));
    let listed: Vec<String> = e
        .adapters()
        .expect("send")
        .blocking_recv()
        .expect("reply")
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(listed, ["half"]);
}
