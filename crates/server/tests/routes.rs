//! In-process tests of every route and every error shape, on a committed tiny model (random
//! weights with SmolLM2's vocabulary and chat template, `tests/fixtures/arch/tiny-llama.gguf`),
//! so they need no download. What depends on a real model's answers is tested end to end
//! (`tests/e2e`, the default model).
//!
//! The router is called with `tower::ServiceExt::oneshot` (no sockets). One model is loaded per
//! test binary and shared; tests that need their own engine sizes (429, cancellation) load
//! another (it loads in milliseconds). Generations are short (max_tokens ≤ 32).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use owl_server::{AppState, HttpConfig, LoadedModel, ModelOptions};
use serde_json::{json, Value};
use tower::ServiceExt;

const ID: &str = "tiny-llama";

fn model_path() -> PathBuf {
    owl_testkit::tiny_model("llama")
}

fn config(api_key: Option<&str>) -> HttpConfig {
    HttpConfig {
        model_id: ID.to_string(),
        created: 1_700_000_000,
        api_key: api_key.map(str::to_string),
        cors_origins: Vec::new(),
    }
}

fn load(parallel: usize, queue: usize, threads: usize, ctx: Option<usize>) -> LoadedModel {
    owl_server::load(&ModelOptions {
        path: model_path(),
        threads,
        ctx_size: ctx,
        parallel,
        queue,
        kv_tokens: None,
        quantize: None,
        spec: Default::default(),
        draft_model: None,
    })
    .expect("load the default model")
}

/// The shared, loaded application state.
fn shared() -> AppState {
    static STATE: OnceLock<AppState> = OnceLock::new();
    STATE
        .get_or_init(|| AppState::ready(config(None), load(4, 64, 2, None)))
        .clone()
}

fn app() -> Router {
    owl_server::router(shared())
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(app: Router, req: Request<Body>) -> Reply {
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

async fn get_path(app: Router, path: &str) -> Reply {
    let req = Request::get(path).body(Body::empty()).unwrap();
    send(app, req).await
}

async fn post_raw(app: Router, path: &str, body: impl Into<Body>) -> Reply {
    let req = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap();
    send(app, req).await
}

async fn post(app: Router, path: &str, body: Value) -> Reply {
    post_raw(app, path, body.to_string()).await
}

/// Checks the OpenAI error shape and status; returns the error object.
fn assert_error(r: &Reply, status: StatusCode) -> Value {
    assert_eq!(r.status, status, "body: {}", r.text());
    let v = r.json();
    let e = v["error"].clone();
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(e["type"].is_string(), "{v}");
    assert!(e.get("param").is_some() && e.get("code").is_some(), "{v}");
    e
}

fn chat_body(extra: Value) -> Value {
    let mut b = json!({
        "model": ID,
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 8,
        "temperature": 0
    });
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

/// The `data:` payloads of an SSE body, in order.
fn sse_data(body: &str) -> Vec<String> {
    assert!(
        body.ends_with("\n\n"),
        "SSE body must end with a blank line"
    );
    body.split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            f.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data frame: {f:?}"))
                .to_string()
        })
        .collect()
}

// ---- health, models, metrics ----

#[tokio::test]
async fn health_is_ok_when_loaded_and_503_while_loading() {
    let r = get_path(app(), "/health").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"status": "ok"}));

    let loading = owl_server::router(AppState::loading(config(None)));
    let r = get_path(loading.clone(), "/health").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json(), json!({"status": "loading"}));
    let r = post(
        loading.clone(),
        "/v1/chat/completions",
        chat_body(json!({})),
    )
    .await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE);
    let r = post(loading.clone(), "/tokenize", json!({"content": "hi"})).await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE);
    // The model list and metrics answer while loading.
    assert_eq!(
        get_path(loading.clone(), "/v1/models").await.status,
        StatusCode::OK
    );
    assert_eq!(get_path(loading, "/metrics").await.status, StatusCode::OK);
}

#[tokio::test]
async fn models_lists_the_served_model() {
    let r = get_path(app(), "/v1/models").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        json!({"object": "list", "data": [{"id": ID, "object": "model", "created": 1_700_000_000u64, "owned_by": "owl"}]})
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let r = post(app(), "/v1/chat/completions", chat_body(json!({}))).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = get_path(app(), "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let t = r.text();
    for name in [
        "owl_requests_total{route=\"/v1/chat/completions\",status=\"200\"}",
        "owl_prompt_tokens_total ",
        "owl_generated_tokens_total ",
        "owl_queue_depth ",
        "owl_running_sequences ",
        "owl_kv_cache_pages_used ",
        "owl_kv_cache_pages_total ",
        "owl_kv_cache_usage_ratio ",
        "owl_preemptions_total ",
        "owl_time_to_first_token_seconds_bucket{le=\"+Inf\"}",
        "owl_time_to_first_token_seconds_sum ",
        "owl_time_to_first_token_seconds_count ",
        "owl_time_per_output_token_seconds_bucket{le=\"0.01\"}",
        "owl_time_per_output_token_seconds_count ",
        "# TYPE owl_time_to_first_token_seconds histogram",
    ] {
        assert!(t.contains(name), "missing {name} in:\n{t}");
    }
    // Every sample line is `name{labels} value` with a numeric value.
    for line in t.lines().filter(|l| !l.starts_with('#')) {
        let v = line.rsplit(' ').next().unwrap();
        assert!(v.parse::<f64>().is_ok(), "bad sample line {line:?}");
    }
}

// ---- chat ----

#[tokio::test]
async fn chat_non_streaming_shape() {
    let r = post(app(), "/v1/chat/completions", chat_body(json!({}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], ID);
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    let c = &v["choices"][0];
    assert_eq!(c["index"], 0);
    assert_eq!(c["message"]["role"], "assistant");
    assert!(!c["message"]["content"].as_str().unwrap().is_empty(), "{v}");
    assert!(c["logprobs"].is_null());
    assert!(["stop", "length"].contains(&c["finish_reason"].as_str().unwrap()));
    let u = &v["usage"];
    let (p, g) = (
        u["prompt_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
    );
    assert!(p > 10 && (1..=8).contains(&g), "{u}");
    assert_eq!(u["total_tokens"].as_u64().unwrap(), p + g);
    assert!(
        u["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap()
            <= p
    );
}

#[tokio::test]
async fn chat_accepts_content_parts_and_no_model() {
    let body = json!({
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "You are terse."}]},
            {"role": "user", "content": [{"type": "text", "text": "Say hi."}]}
        ],
        "max_completion_tokens": 4,
        "user": "ignored",
        "metadata": {"x": "harmless"}
    });
    let r = post(app(), "/v1/chat/completions", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json()["usage"]["completion_tokens"].as_u64().unwrap() <= 4);
}

#[tokio::test]
async fn chat_streaming_with_usage() {
    let plain = post(app(), "/v1/chat/completions", chat_body(json!({})))
        .await
        .json();
    let body = chat_body(json!({"stream": true, "stream_options": {"include_usage": true}}));
    let r = post(app(), "/v1/chat/completions", body).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "text/event-stream");
    let frames = sse_data(&r.text());
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-"));
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    let reason = finish["choices"][0]["finish_reason"].as_str().unwrap();
    let mut text = String::new();
    for c in &chunks {
        assert_eq!(c["id"], id);
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], ID);
        if c["choices"].as_array().unwrap().is_empty() {
            continue;
        }
        assert!(c["usage"].is_null() && c.get("usage").is_some(), "{c}");
        if let Some(t) = c["choices"][0]["delta"]["content"].as_str() {
            text.push_str(t);
        }
    }
    for c in &chunks[1..chunks.len() - 2] {
        assert!(!c["choices"][0]["delta"]["content"]
            .as_str()
            .unwrap()
            .is_empty());
        assert!(c["choices"][0]["finish_reason"].is_null());
    }
    // Greedy: streaming gives the same text, reason and usage as not streaming.
    assert_eq!(text, plain["choices"][0]["message"]["content"]);
    assert_eq!(reason, plain["choices"][0]["finish_reason"]);
    assert_eq!(
        usage["usage"]["completion_tokens"],
        plain["usage"]["completion_tokens"]
    );
    assert_eq!(
        usage["usage"]["prompt_tokens"],
        plain["usage"]["prompt_tokens"]
    );
}

#[tokio::test]
async fn chat_streaming_without_usage_has_no_usage_field() {
    let r = post(
        app(),
        "/v1/chat/completions",
        chat_body(json!({"stream": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let frames = sse_data(&r.text());
    assert_eq!(frames.last().unwrap(), "[DONE]");
    for f in &frames[..frames.len() - 1] {
        let c: Value = serde_json::from_str(f).unwrap();
        assert!(c.get("usage").is_none(), "{c}");
        assert_eq!(c["choices"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn chat_logprobs() {
    let body = chat_body(json!({"logprobs": true, "top_logprobs": 3}));
    let v = post(app(), "/v1/chat/completions", body).await.json();
    let n = v["usage"]["completion_tokens"].as_u64().unwrap() as usize;
    let content = v["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert_eq!(content.len(), n, "{v}");
    for e in content {
        assert!(e["token"].is_string() && e["bytes"].is_array());
        assert!(e["logprob"].as_f64().unwrap() <= 0.0);
        let top = e["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        // Greedy: the chosen token is the best alternative.
        assert_eq!(top[0]["token"], e["token"]);
        assert!(top[0]["bytes"].is_array() && top[0]["logprob"].is_number());
    }
    // Streaming carries the same per-token logprobs on its deltas.
    let body = chat_body(json!({"logprobs": true, "top_logprobs": 3, "stream": true}));
    let r = post(app(), "/v1/chat/completions", body).await;
    let frames = sse_data(&r.text());
    let streamed: usize = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str::<Value>(f).unwrap())
        .filter_map(|c| {
            c["choices"][0]["logprobs"]["content"]
                .as_array()
                .map(Vec::len)
        })
        .sum();
    assert_eq!(streamed, n);
}

#[tokio::test]
async fn chat_stop_string_ends_generation_before_it() {
    let v = post(
        app(),
        "/v1/chat/completions",
        chat_body(json!({"max_tokens": 16})),
    )
    .await
    .json();
    let text = v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    let word = text
        .split_whitespace()
        .nth(1)
        .expect("at least two words")
        .to_string();
    let v = post(
        app(),
        "/v1/chat/completions",
        chat_body(json!({"max_tokens": 16, "stop": [word.clone(), "never-seen"]})),
    )
    .await
    .json();
    let cut = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(!cut.contains(&word), "{cut:?} contains {word:?}");
    assert!(text.starts_with(cut), "{text:?} vs {cut:?}");
}

#[tokio::test]
async fn chat_huge_max_tokens_is_capped_not_refused() {
    let body = chat_body(
        json!({"max_tokens": 9_007_199_254_740_991u64, "stop": ["."], "messages": [{"role": "user", "content": "Say OK."}]}),
    );
    let r = post(app(), "/v1/chat/completions", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn chat_penalties_bias_seed_are_accepted() {
    let body = chat_body(json!({
        "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "seed": 42,
        "presence_penalty": 0.5, "frequency_penalty": 0.5, "repetition_penalty": 1.1,
        "logit_bias": {"0": -100, "1": 5.5}, "stop": "\n\n\n", "n": 1
    }));
    let a = post(app(), "/v1/chat/completions", body.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let b = post(app(), "/v1/chat/completions", body).await;
    // Same seed, same output.
    assert_eq!(
        a.json()["choices"][0]["message"]["content"],
        b.json()["choices"][0]["message"]["content"]
    );
}

#[tokio::test]
async fn stream_options_without_stream_is_400() {
    let body = chat_body(json!({"stream_options": {"include_usage": true}}));
    let r = post(app(), "/v1/chat/completions", body).await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST);
    assert_eq!(e["param"], "stream_options");
}

#[tokio::test]
async fn seed_minus_one_means_a_random_seed() {
    // llama.cpp's convention. The tiny model's random weights spread probability over the
    // whole vocabulary, so two unseeded 16-token samples at temperature 1 differ.
    let body = chat_body(
        json!({"temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0,
                                "seed": -1, "max_tokens": 16}),
    );
    let a = post(app(), "/v1/chat/completions", body.clone())
        .await
        .json();
    let b = post(app(), "/v1/chat/completions", body).await.json();
    assert_ne!(
        a["choices"][0]["message"]["content"],
        b["choices"][0]["message"]["content"]
    );
}

// ---- completions ----

#[tokio::test]
async fn completions_string_prompt() {
    let body = json!({"model": ID, "prompt": "The capital of France is", "max_tokens": 6, "temperature": 0});
    let r = post(app(), "/v1/completions", body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["model"], ID);
    let c = &v["choices"][0];
    // Random weights: no "Paris", but a non-empty greedy text that a repeat reproduces.
    let text = c["text"].as_str().unwrap();
    assert!(!text.is_empty(), "{v}");
    let again = post(app(), "/v1/completions", body.clone()).await.json();
    assert_eq!(again["choices"][0]["text"], text);
    assert!(c["logprobs"].is_null());
    assert!(["stop", "length"].contains(&c["finish_reason"].as_str().unwrap()));
    assert_eq!(
        v["usage"]["total_tokens"].as_u64().unwrap(),
        v["usage"]["prompt_tokens"].as_u64().unwrap()
            + v["usage"]["completion_tokens"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn completions_token_prompts_match_text() {
    let toks = post(
        app(),
        "/tokenize",
        json!({"content": "The capital of France is", "add_special": true}),
    )
    .await
    .json()["tokens"]
        .clone();
    let text = |v: Value| v["choices"][0]["text"].as_str().unwrap().to_string();
    let base = json!({"max_tokens": 6, "temperature": 0});
    let mut a = base.clone();
    a["prompt"] = json!("The capital of France is");
    let mut b = base.clone();
    b["prompt"] = toks.clone();
    let mut c = base.clone();
    c["prompt"] = json!([toks]);
    let mut d = base;
    d["prompt"] = json!(["The capital of France is"]);
    let ta = text(post(app(), "/v1/completions", a).await.json());
    for body in [b, c, d] {
        let r = post(app(), "/v1/completions", body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(text(r.json()), ta);
    }
}

#[tokio::test]
async fn completions_echo_logprobs_legacy_shape() {
    let prompt = "The capital of France is";
    let body =
        json!({"prompt": prompt, "max_tokens": 3, "temperature": 0, "echo": true, "logprobs": 2});
    let v = post(app(), "/v1/completions", body).await.json();
    let c = &v["choices"][0];
    assert!(c["text"].as_str().unwrap().starts_with(prompt), "{v}");
    let lp = &c["logprobs"];
    let n_prompt = v["usage"]["prompt_tokens"].as_u64().unwrap() as usize;
    let n_gen = v["usage"]["completion_tokens"].as_u64().unwrap() as usize;
    let tokens = lp["tokens"].as_array().unwrap();
    let token_lps = lp["token_logprobs"].as_array().unwrap();
    let tops = lp["top_logprobs"].as_array().unwrap();
    let offsets = lp["text_offset"].as_array().unwrap();
    assert_eq!(tokens.len(), n_prompt + n_gen, "{lp}");
    assert_eq!(token_lps.len(), tokens.len());
    assert_eq!(tops.len(), tokens.len());
    assert_eq!(offsets.len(), tokens.len());
    assert!(token_lps[0].is_null() && tops[0].is_null());
    for i in 1..tokens.len() {
        assert!(token_lps[i].as_f64().unwrap() <= 0.0);
        let m = tops[i].as_object().unwrap();
        assert!(!m.is_empty() && m.len() <= 2);
        assert!(offsets[i].as_u64() >= offsets[i - 1].as_u64());
    }
    let joined: String = tokens.iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(joined, c["text"].as_str().unwrap());

    // echo with max_tokens 0 scores the prompt only.
    let body = json!({"prompt": prompt, "max_tokens": 0, "echo": true, "logprobs": 0});
    let v = post(app(), "/v1/completions", body).await.json();
    assert_eq!(v["choices"][0]["text"], prompt);
    assert_eq!(v["usage"]["completion_tokens"], 0);
    assert_eq!(
        v["choices"][0]["logprobs"]["tokens"]
            .as_array()
            .unwrap()
            .len(),
        n_prompt
    );
}

#[tokio::test]
async fn completions_streaming() {
    let body = json!({"prompt": "Once upon a time", "max_tokens": 5, "temperature": 0, "stream": true, "echo": true,
                      "stream_options": {"include_usage": true}});
    let r = post(app(), "/v1/completions", body).await;
    assert_eq!(r.status, StatusCode::OK);
    let frames = sse_data(&r.text());
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["text"], "Once upon a time");
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 5);
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "length"
    );
}

#[tokio::test]
async fn completions_refusals() {
    let cases = [
        (json!({"prompt": ["a", "b"]}), "prompt"),
        (json!({"prompt": [[1, 2], [3]]}), "prompt"),
        (json!({"prompt": [1, -2]}), "prompt"),
        (json!({"prompt": [99_999_999]}), "prompt"),
        (json!({"prompt": {"x": 1}}), "prompt"),
        (json!({"prompt": []}), "prompt"),
        (json!({}), "prompt"),
        (json!({"prompt": "x", "suffix": "y"}), "suffix"),
        (json!({"prompt": "x", "logprobs": 6}), "logprobs"),
        (json!({"prompt": "x", "max_tokens": 0}), "max_tokens"),
        (json!({"prompt": "x", "n": 3}), "n"),
        (json!({"prompt": "x", "best_of": 2}), "best_of"),
    ];
    for (body, param) in cases {
        let r = post(app(), "/v1/completions", body.clone()).await;
        let e = assert_error(&r, StatusCode::BAD_REQUEST);
        assert_eq!(e["param"], param, "{body} → {e}");
    }
}

// ---- tokenize ----

#[tokio::test]
async fn tokenize_detokenize_round_trip() {
    let text = "Hello world! <|im_start|>user\nÜnïcödé 🦉";
    let v = post(app(), "/tokenize", json!({"content": text}))
        .await
        .json();
    let ids = v["tokens"].as_array().unwrap().clone();
    assert!(ids.len() > 5 && ids.iter().all(Value::is_u64), "{v}");
    // parse_special defaults to true: the control token is one id.
    let plain = post(
        app(),
        "/tokenize",
        json!({"content": text, "parse_special": false}),
    )
    .await
    .json();
    assert!(plain["tokens"].as_array().unwrap().len() > ids.len());
    let back = post(app(), "/detokenize", json!({"tokens": ids}))
        .await
        .json();
    assert_eq!(back, json!({"content": text}));
    // with_pieces
    let v = post(
        app(),
        "/tokenize",
        json!({"content": "Hello world", "with_pieces": true}),
    )
    .await
    .json();
    assert_eq!(v["tokens"][0]["piece"], "Hello");
    assert!(v["tokens"][0]["id"].is_u64());
}

#[tokio::test]
async fn tokenize_refusals() {
    let r = post(app(), "/detokenize", json!({"tokens": [1, 99_999_999]})).await;
    assert_eq!(assert_error(&r, StatusCode::BAD_REQUEST)["param"], "tokens");
    let r = post(app(), "/detokenize", json!({"tokens": [-1]})).await;
    assert_error(&r, StatusCode::BAD_REQUEST);
    let r = post(app(), "/detokenize", json!({"tokens": "abc"})).await;
    assert_error(&r, StatusCode::BAD_REQUEST);
    let r = post(app(), "/tokenize", json!({})).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST)["param"],
        "content"
    );
    let r = post(app(), "/tokenize", json!({"content": 5})).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST)["param"],
        "content"
    );
}

// ---- errors ----

#[tokio::test]
async fn malformed_bodies_are_400() {
    for body in [
        &b"{bad json"[..],
        b"",
        b"[]",
        b"null",
        b"{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]} trailing",
        b"{\"messages\": [{\"role\": \"user\", \"content\": \"\xff\xfe\"}]}",
        b"\xff\xfe\xfd",
    ] {
        let r = post_raw(app(), "/v1/chat/completions", body.to_vec()).await;
        let e = assert_error(&r, StatusCode::BAD_REQUEST);
        assert_eq!(e["type"], "invalid_request_error");
    }
}

#[tokio::test]
async fn chat_field_checks_are_400_naming_the_field() {
    let user = json!([{"role": "user", "content": "hi"}]);
    let stops: Vec<String> = (0..1000).map(|i| format!("stop{i}")).collect();
    let cases = [
        (json!({"max_tokens": 4}), "messages"),
        (json!({"messages": []}), "messages"),
        (json!({"messages": "hi"}), "messages"),
        (
            json!({"messages": [{"role": "wizard", "content": "hi"}]}),
            "messages[0].role",
        ),
        (json!({"messages": [{"content": "hi"}]}), "messages[0]"),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"messages": [{"role": "user", "content": 5}]}),
            "messages[0].content",
        ),
        (json!({"messages": user, "temperature": 2.5}), "temperature"),
        (json!({"messages": user, "temperature": -1}), "temperature"),
        (
            json!({"messages": user, "temperature": "hot"}),
            "temperature",
        ),
        (json!({"messages": user, "top_p": 0}), "top_p"),
        (json!({"messages": user, "top_p": 1.5}), "top_p"),
        (json!({"messages": user, "min_p": 2}), "min_p"),
        (
            json!({"messages": user, "presence_penalty": 3}),
            "presence_penalty",
        ),
        (
            json!({"messages": user, "frequency_penalty": -2.5}),
            "frequency_penalty",
        ),
        (
            json!({"messages": user, "repetition_penalty": 0}),
            "repetition_penalty",
        ),
        (
            json!({"messages": user, "logit_bias": {"abc": 1}}),
            "logit_bias",
        ),
        (
            json!({"messages": user, "logit_bias": {"1": 101}}),
            "logit_bias",
        ),
        (
            json!({"messages": user, "logit_bias": {"99999999": 1}}),
            "logit_bias",
        ),
        (
            json!({"messages": user, "top_logprobs": 21, "logprobs": true}),
            "top_logprobs",
        ),
        (json!({"messages": user, "top_logprobs": 2}), "top_logprobs"),
        (json!({"messages": user, "n": 2}), "n"),
        (json!({"messages": user, "n": 0}), "n"),
        (json!({"messages": user, "max_tokens": -5}), "max_tokens"),
        (json!({"messages": user, "max_tokens": 0}), "max_tokens"),
        (
            json!({"messages": user, "max_completion_tokens": -1}),
            "max_completion_tokens",
        ),
        (json!({"messages": user, "max_tokens": 1.5}), "max_tokens"),
        (json!({"messages": user, "stop": stops}), "stop"),
        (json!({"messages": user, "stop": 5}), "stop"),
        (json!({"messages": user, "seed": "x"}), "seed"),
        (json!({"messages": user, "stream": "yes"}), "stream"),
    ];
    for (body, param) in cases {
        let r = post(app(), "/v1/chat/completions", body.clone()).await;
        let e = assert_error(&r, StatusCode::BAD_REQUEST);
        assert_eq!(e["param"], param, "{body} → {e}");
    }
}

#[tokio::test]
async fn prompt_longer_than_context_is_400_with_both_numbers() {
    let long = "hello ".repeat(6000);
    let body = json!({"messages": [{"role": "user", "content": long}], "max_tokens": 4});
    let r = post(app(), "/v1/chat/completions", body).await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST);
    let m = e["message"].as_str().unwrap();
    assert!(m.contains("tokens but the context holds 4096"), "{m}");
    assert_eq!(e["code"], "context_length_exceeded");
    let r = post(app(), "/v1/completions", json!({"prompt": long})).await;
    assert_error(&r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let big = vec![b'a'; 10 * 1024 * 1024];
    let r = post_raw(app(), "/v1/chat/completions", big).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE);
    // Without a content-length (streamed body) too.
    let chunks = futures_util::stream::iter(
        (0..10).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 1024 * 1024]))),
    );
    let req = Request::post("/v1/completions")
        .body(Body::from_stream(chunks))
        .unwrap();
    let r = send(app(), req).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn unknown_model_and_route_are_404() {
    let r = post(
        app(),
        "/v1/chat/completions",
        chat_body(json!({"model": "gpt-4o"})),
    )
    .await;
    let e = assert_error(&r, StatusCode::NOT_FOUND);
    assert_eq!(e["code"], "model_not_found");
    let r = post(
        app(),
        "/v1/completions",
        json!({"model": "nope", "prompt": "x"}),
    )
    .await;
    assert_error(&r, StatusCode::NOT_FOUND);
    let r = get_path(app(), "/v1/nothing/here").await;
    assert_error(&r, StatusCode::NOT_FOUND);
    let r = post(app(), "/v2/chat/completions", json!({})).await;
    assert_error(&r, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn wrong_method_is_405_json() {
    let r = get_path(app(), "/v1/chat/completions").await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED);
    let req = Request::builder()
        .method(Method::DELETE)
        .uri("/v1/models")
        .body(Body::empty())
        .unwrap();
    let r = send(app(), req).await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn api_key_is_required_except_for_health() {
    let app = owl_server::router(AppState::loading(config(Some("sekret"))));
    let r = get_path(app.clone(), "/v1/models").await;
    assert_eq!(
        assert_error(&r, StatusCode::UNAUTHORIZED)["code"],
        "invalid_api_key"
    );
    for auth in ["Bearer wrong", "sekret", "Bearer sekret2", "Basic sekret"] {
        let req = Request::get("/v1/models")
            .header(header::AUTHORIZATION, auth)
            .body(Body::empty())
            .unwrap();
        assert_error(&send(app.clone(), req).await, StatusCode::UNAUTHORIZED);
    }
    let r = post(app.clone(), "/v1/chat/completions", chat_body(json!({}))).await;
    assert_error(&r, StatusCode::UNAUTHORIZED);
    let req = Request::get("/v1/models")
        .header(header::AUTHORIZATION, "Bearer sekret")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(app.clone(), req).await.status, StatusCode::OK);
    // /health stays open (503 here: this state never loads).
    let r = get_path(app, "/health").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn cors_preflight_is_answered_before_the_key_check_and_only_for_listed_origins() {
    let mut cfg = config(Some("sekret"));
    cfg.cors_origins = vec!["https://app.example".to_string()];
    let app = owl_server::router(AppState::loading(cfg));
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/v1/chat/completions")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization,content-type",
            )
            .body(Body::empty())
            .unwrap()
    };
    let r = send(app.clone(), preflight("https://app.example")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
    let methods = r.headers[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .unwrap()
        .to_string();
    assert!(methods.contains("POST"), "{methods}");
    let r = send(app.clone(), preflight("https://evil.example")).await;
    assert!(r.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    // A real request still needs the key, and carries the CORS header on its error.
    let req = Request::get("/v1/models")
        .header(header::ORIGIN, "https://app.example")
        .body(Body::empty())
        .unwrap();
    let r = send(app.clone(), req).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
    // Without --cors-origin there are no CORS headers at all.
    let plain = owl_server::router(AppState::loading(config(None)));
    let req = Request::get("/health")
        .header(header::ORIGIN, "https://app.example")
        .body(Body::empty())
        .unwrap();
    let r = send(plain, req).await;
    assert!(r.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}

#[tokio::test]
async fn full_queue_is_429() {
    let state = AppState::ready(config(None), load(1, 1, 1, Some(256)));
    let app = owl_server::router(state);
    let body = json!({"prompt": "Count: one, two, three,", "max_tokens": 32, "temperature": 0});
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (app, body) = (app.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            post(app, "/v1/completions", body).await
        }));
    }
    let mut ok = 0;
    let mut full = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let e = assert_error(&r, StatusCode::TOO_MANY_REQUESTS);
                assert_eq!(e["code"], "queue_full");
                full += 1;
            }
            s => panic!("unexpected {s}: {}", r.text()),
        }
    }
    assert!(ok >= 1 && full >= 1, "ok {ok}, 429 {full}");
}

#[tokio::test]
async fn dropping_a_stream_cancels_the_request() {
    let state = AppState::ready(config(None), load(1, 4, 1, Some(512)));
    let app = owl_server::router(state.clone());
    let body = json!({"prompt": "Once upon a time", "max_tokens": 400, "stream": true});
    let req = Request::post("/v1/completions")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut b = resp.into_body();
    let first = b.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    drop(b);
    let stats = || {
        let mut out = (0, 0);
        state.pool().each_loaded(|l| {
            let s = l.model.engine.stats();
            out = (
                owl_engine::EngineStats::get(&s.running),
                owl_engine::EngineStats::get(&s.generated_tokens),
            );
        });
        out
    };
    let mut settled = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if stats().0 == 0 {
            settled = true;
            break;
        }
    }
    assert!(settled, "the engine still runs the dropped request");
    let generated = stats().1;
    assert!(
        generated < 400,
        "generated {generated} tokens after the client left"
    );
    // The engine is free for the next request.
    let r = post(
        app,
        "/v1/completions",
        json!({"prompt": "Hi", "max_tokens": 2}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_and_the_server_goes_on() {
    let routes: Router = Router::new()
        .route(
            "/boom",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("boom");
                }
                "unreachable"
            }),
        )
        .route("/fine", get(|| async { "fine" }));
    let app = owl_server::layers::apply(routes, shared());
    let r = get_path(app.clone(), "/boom").await;
    let e = assert_error(&r, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(e["type"], "server_error");
    let r = get_path(app.clone(), "/fine").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "fine");
    let r = get_path(app, "/boom").await;
    assert_error(&r, StatusCode::INTERNAL_SERVER_ERROR);
}

// ---- reasoning models ----

/// A thinking template in the style of DeepSeek-R1 / Qwen3: the generation prompt opens a
/// `<think>` block unless `enable_thinking` is false, which writes an empty closed block.
const THINKING_TEMPLATE: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% else %}<think>\n{% endif %}{% endif %}";

fn thinking_app() -> Router {
    static STATE: OnceLock<AppState> = OnceLock::new();
    let state = STATE.get_or_init(|| {
        let mut m = load(2, 16, 2, None);
        m.template = Some(
            owl_text::ChatTemplate::new(THINKING_TEMPLATE, "<|im_start|>", "<|im_end|>")
                .expect("template"),
        );
        AppState::ready(config(None), m)
    });
    owl_server::router(state.clone())
}

#[tokio::test]
async fn reasoning_content_is_split_from_the_answer() {
    // The prompt opens a thinking block and this small model never closes it: everything it
    // writes is reasoning.
    let r = post(thinking_app(), "/v1/chat/completions", chat_body(json!({}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    let msg = &v["choices"][0]["message"];
    let reasoning = msg["reasoning_content"]
        .as_str()
        .expect("reasoning_content")
        .to_string();
    assert!(!reasoning.is_empty(), "{v}");
    assert_eq!(msg["content"], "");

    // Streaming: the same text arrives as `delta.reasoning_content`.
    let r = post(
        thinking_app(),
        "/v1/chat/completions",
        chat_body(json!({"stream": true})),
    )
    .await;
    let mut streamed = String::new();
    for d in sse_data(&r.text()) {
        if d == "[DONE]" {
            continue;
        }
        let c: Value = serde_json::from_str(&d).expect("chunk");
        let delta = &c["choices"][0]["delta"];
        if let Some(t) = delta["reasoning_content"].as_str() {
            streamed.push_str(t);
        }
        assert!(delta["content"].as_str().unwrap_or("").is_empty(), "{d}");
    }
    assert_eq!(streamed, reasoning);

    // `enable_thinking: false` (also as chat_template_kwargs) closes the block in the prompt:
    // the reply is all answer.
    for extra in [
        json!({"enable_thinking": false}),
        json!({"chat_template_kwargs": {"enable_thinking": false}}),
    ] {
        let r = post(thinking_app(), "/v1/chat/completions", chat_body(extra)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let v = r.json();
        let msg = &v["choices"][0]["message"];
        assert!(!msg["content"].as_str().unwrap().is_empty(), "{v}");
        assert_eq!(msg["reasoning_content"], "");
    }
}

#[tokio::test]
async fn plain_templates_have_no_reasoning_field() {
    let r = post(app(), "/v1/chat/completions", chat_body(json!({}))).await;
    assert!(r.json()["choices"][0]["message"]
        .get("reasoning_content")
        .is_none());
}

#[tokio::test]
async fn over_long_stop_strings_are_400_on_both_routes() {
    use owl_server::config::MAX_STOP_LEN;
    let long = "x".repeat(MAX_STOP_LEN + 1);
    let huge = "y".repeat(100_000);
    let cases = [
        json!(long),
        json!(huge),
        json!(["fine", long]),
        // Multi-byte: 342 × 3 bytes = 1026 bytes, though only 342 characters.
        json!("€".repeat(MAX_STOP_LEN / 3 + 1)),
    ];
    for stop in cases {
        let r = post(
            app(),
            "/v1/chat/completions",
            chat_body(json!({"stop": stop.clone()})),
        )
        .await;
        let e = assert_error(&r, StatusCode::BAD_REQUEST);
        assert_eq!(e["param"], "stop", "{e}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains(&MAX_STOP_LEN.to_string()),
            "{e}"
        );
        let body = json!({"prompt": "Once upon a time", "max_tokens": 2, "stop": stop});
        let r = post(app(), "/v1/completions", body).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST)["param"],
            "stop",
            "{}",
            r.text()
        );
    }
    // Exactly at the limit is fine.
    let at = "z".repeat(MAX_STOP_LEN);
    let r = post(
        app(),
        "/v1/chat/completions",
        chat_body(json!({"stop": [at.clone()], "max_tokens": 2})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = json!({"prompt": "Once upon a time", "max_tokens": 2, "stop": at});
    let r = post(app(), "/v1/completions", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn top_k_below_minus_one_is_400_and_zero_or_minus_one_is_off() {
    for k in [-2i64, -40, i64::MIN] {
        let r = post(
            app(),
            "/v1/chat/completions",
            chat_body(json!({"top_k": k})),
        )
        .await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST)["param"],
            "top_k",
            "{}",
            r.text()
        );
        let body = json!({"prompt": "Once upon a time", "max_tokens": 2, "top_k": k});
        let r = post(app(), "/v1/completions", body).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST)["param"],
            "top_k",
            "{}",
            r.text()
        );
    }
    // Off (both conventions) and on give 200; greedy decoding is unaffected by top_k.
    let greedy = post(app(), "/v1/chat/completions", chat_body(json!({}))).await;
    assert_eq!(greedy.status, StatusCode::OK, "{}", greedy.text());
    let want = greedy.json()["choices"][0]["message"]["content"].clone();
    for k in [-1i64, 0, 1, 40] {
        let r = post(
            app(),
            "/v1/chat/completions",
            chat_body(json!({"top_k": k})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "top_k={k}: {}", r.text());
        assert_eq!(
            r.json()["choices"][0]["message"]["content"],
            want,
            "top_k={k}"
        );
        let body = json!({"prompt": "Once upon a time", "max_tokens": 2, "top_k": k});
        let r = post(app(), "/v1/completions", body).await;
        assert_eq!(r.status, StatusCode::OK, "top_k={k}: {}", r.text());
    }
}

/// A streamed request body that counts the bytes taken from it.
fn counted_body(mib: usize, taken: std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Body {
    use std::sync::atomic::Ordering;
    let chunks = futures_util::stream::iter((0..mib).map(move |_| {
        taken.fetch_add(1 << 20, Ordering::SeqCst);
        Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 1 << 20]))
    }));
    Body::from_stream(chunks)
}

#[tokio::test]
async fn an_unread_body_is_drained_before_the_answer_up_to_the_hard_cap() {
    use owl_server::config::{BODY_LIMIT, DRAIN_LIMIT};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let drain_mib = (DRAIN_LIMIT >> 20) as usize;
    assert!(BODY_LIMIT < 12 << 20 && 12 < drain_mib);
    // 413: the handler stops at the limit; the rest is read and dropped, so a client still
    // sending sees the answer (and the connection may stay open).
    let app = owl_server::router(AppState::loading(config(None)));
    let taken = Arc::new(AtomicUsize::new(0));
    let req = Request::post("/v1/chat/completions")
        .header(header::CONTENT_TYPE, "application/json")
        .body(counted_body(12, Arc::clone(&taken)))
        .unwrap();
    let r = send(app.clone(), req).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(taken.load(Ordering::SeqCst), 12 << 20);
    assert!(
        r.headers.get(header::CONNECTION).is_none(),
        "{:?}",
        r.headers
    );
    // 401 before the body is read at all: drained too.
    let keyed = owl_server::router(AppState::loading(config(Some("sekret"))));
    let taken = Arc::new(AtomicUsize::new(0));
    let req = Request::post("/v1/chat/completions")
        .body(counted_body(12, Arc::clone(&taken)))
        .unwrap();
    assert_error(&send(keyed, req).await, StatusCode::UNAUTHORIZED);
    assert_eq!(taken.load(Ordering::SeqCst), 12 << 20);
    // Past the hard cap the server stops reading and closes the connection.
    let taken = Arc::new(AtomicUsize::new(0));
    let req = Request::post("/v1/chat/completions")
        .body(counted_body(drain_mib + 16, Arc::clone(&taken)))
        .unwrap();
    let r = send(app.clone(), req).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(taken.load(Ordering::SeqCst) <= (drain_mib + 1) << 20);
    assert_eq!(r.headers[header::CONNECTION], "close");
    // A declared length over the cap is not read on.
    let taken = Arc::new(AtomicUsize::new(0));
    let req = Request::post("/v1/chat/completions")
        .header(header::CONTENT_LENGTH, (drain_mib + 16) << 20)
        .body(counted_body(drain_mib + 16, Arc::clone(&taken)))
        .unwrap();
    let r = send(app, req).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(taken.load(Ordering::SeqCst) <= ((BODY_LIMIT >> 20) + 1) << 20);
    assert_eq!(r.headers[header::CONNECTION], "close");
}

#[tokio::test]
async fn unknown_fields_are_400_naming_them() {
    for (path, body) in [
        (
            "/v1/chat/completions",
            chat_body(json!({"some_unknown_field": 1})),
        ),
        (
            "/v1/chat/completions",
            chat_body(json!({"audio": {"voice": "x"}})),
        ),
        (
            "/v1/completions",
            json!({"prompt": "x", "max_tokens": 1, "modalities": ["text"]}),
        ),
    ] {
        let r = post(app(), path, body.clone()).await;
        let e = assert_error(&r, StatusCode::BAD_REQUEST);
        let field = body
            .as_object()
            .unwrap()
            .keys()
            .find(|k| ["some_unknown_field", "audio", "modalities"].contains(&k.as_str()))
            .unwrap()
            .clone();
        assert_eq!(e["param"], json!(field), "{e}");
        assert!(e["message"].as_str().unwrap().contains(&field));
    }
}

/// A schema whose every value is bounded, so even random weights finish it within the budget.
fn bounded_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "n": {"type": "integer", "minimum": 0, "maximum": 9},
            "color": {"enum": ["red", "green", "blue"]}
        },
        "required": ["ok", "n", "color"],
        "additionalProperties": false
    })
}

#[tokio::test]
async fn response_format_json_schema_constrains_the_reply() {
    let body = chat_body(json!({
        "max_tokens": 64,
        "temperature": 0,
        "response_format": {"type": "json_schema", "json_schema": {"name": "t", "schema": bounded_schema(), "strict": true}}
    }));
    let r = post(app(), "/v1/chat/completions", body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
    let content = v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    let parsed: Value = serde_json::from_str(&content).unwrap_or_else(|e| panic!("{e}: {content}"));
    assert!(
        parsed["ok"].is_boolean() && parsed["n"].as_u64().unwrap() <= 9,
        "{parsed}"
    );
    assert!(["red", "green", "blue"].contains(&parsed["color"].as_str().unwrap()));
    // Streamed, the same greedy reply arrives in pieces.
    let mut sb = body;
    sb["stream"] = json!(true);
    let r = post(app(), "/v1/chat/completions", sb).await;
    let streamed: String = sse_data(&r.text())
        .iter()
        .filter(|d| d.as_str() != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(streamed, content);
}

#[tokio::test]
async fn response_format_json_object_regex_and_grammar() {
    let r = post(
        app(),
        "/v1/chat/completions",
        chat_body(json!({"max_tokens": 24, "temperature": 0, "response_format": {"type": "regex", "regex": "(yes|no)-[0-9]{2}"}})),
    )
    .await;
    let v = r.json();
    let c = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        c.len() == 5 && (c.starts_with("yes-") || c.starts_with("no-")) || c.len() == 6,
        "{c}"
    );
    let r = post(
        app(),
        "/v1/chat/completions",
        chat_body(json!({"max_tokens": 8, "temperature": 0, "response_format": {"type": "grammar", "grammar": "start: \"A\" | \"B\""}})),
    )
    .await;
    let v = r.json();
    let c = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(c == "A" || c == "B", "{v}");
    let r = post(
        app(),
        "/v1/chat/completions",
        chat_body(json!({"max_tokens": 3, "response_format": {"type": "json_object"}})),
    )
    .await;
    let v = r.json();
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with('{'),
        "{v}"
    );
}

#[tokio::test]
async fn bad_formats_and_tools_are_400_naming_the_field() {
    let cases = [
        (
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}}),
            "response_format",
        ),
        (
            json!({"response_format": {"type": "regex", "regex": "("}}),
            "response_format",
        ),
        (
            json!({"response_format": {"type": "xml"}}),
            "response_format.type",
        ),
        (
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}),
            "response_format.json_schema.schema",
        ),
        (json!({"tool_choice": "required"}), "tool_choice"),
        (
            json!({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}),
            "tool_choice",
        ),
        (json!({"tools": [{"type": "web_search"}]}), "tools[0].type"),
        (
            json!({"tools": [{"type": "function", "function": {"name": "has space"}}]}),
            "tools[0].function",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": [1]}}]}),
            "tools[0].function",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}]}),
            "tools",
        ),
        (
            json!({"tool_choice": "sometimes", "tools": [{"type": "function", "function": {"name": "f"}}]}),
            "tool_choice",
        ),
        (json!({"reasoning_effort": "extreme"}), "reasoning_effort"),
        (
            json!({"messages": [{"role": "tool", "content": "42"}]}),
            "messages[0].tool_call_id",
        ),
    ];
    for (extra, param) in cases {
        let r = post(app(), "/v1/chat/completions", chat_body(extra.clone())).await;
        let e = assert_error(&r, StatusCode::BAD_REQUEST);
        assert_eq!(e["param"], json!(param), "{extra}: {e}");
    }
}
