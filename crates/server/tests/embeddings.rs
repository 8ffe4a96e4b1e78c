//! `/v1/embeddings` and `/v1/rerank` (`/rerank`) over the tiny BERT fixtures
//! (`tests/fixtures/bert/`, llama.cpp's pooled outputs made by
//! `scripts/make_bert_references.py`) and a tiny decoder, behind a [`FileCatalog`]: every
//! input form, base64, `dimensions`, `usage`, over-long input (400 naming the limit, or cut
//! with `truncate`), scores and order of a rerank against llama.cpp, and clear 400s for a
//! chat to an encoder, a rerank with an embedding model and the reverse.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use owl_server::{
    AppState, FileCatalog, HttpConfig, KeepAlive, ModelOptions, ModelPool, PoolOptions,
};
use serde_json::{json, Value};
use tower::ServiceExt;

fn bert(name: &str) -> PathBuf {
    owl_testkit::fixture_path(&format!("bert/{name}.gguf"))
}

fn reference(name: &str) -> Value {
    let p = owl_testkit::fixture_path(&format!("bert/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn app() -> (axum::Router, ModelPool) {
    let paths = vec![
        bert("tiny-bert"),
        bert("tiny-bert-rerank"),
        owl_testkit::tiny_model("llama"),
        owl_testkit::fixture_path("rerank/tiny-qwen3-reranker.gguf"),
    ];
    let pool = ModelPool::new(
        PoolOptions {
            engine: ModelOptions {
                path: paths[0].clone(),
                threads: 2,
                ctx_size: Some(256),
                parallel: 2,
                queue: 16,
                kv_tokens: None,
                quantize: None,
                spec: Default::default(),
                draft_model: None,
            },
            keep_alive: KeepAlive::Forever,
            max_memory: u64::MAX,
            default_model: Some("tiny-bert".into()),
        },
        Some(Arc::new(FileCatalog::new(&paths))),
    );
    pool.set_ready();
    let state = AppState::with_pool(
        HttpConfig {
            model_id: "tiny-bert".into(),
            created: 0,
            api_key: None,
            cors_origins: Vec::new(),
        },
        pool.clone(),
    );
    (owl_server::router(state), pool)
}

async fn post(app: &axum::Router, path: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes).into_owned()));
    (status, v)
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn unbase64(s: &str) -> Vec<f32> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    } as u32;
    let mut bytes = Vec::new();
    for q in s.as_bytes().chunks(4) {
        let n = q
            .iter()
            .take_while(|&&c| c != b'=')
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | val(c) << (18 - 6 * i));
        let k = q.iter().filter(|&&c| c != b'=').count() - 1;
        bytes.extend_from_slice(&n.to_be_bytes()[1..1 + k]);
    }
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_match_llama_cpp_in_every_input_form() {
    let (app, pool) = app();
    let rf = reference("tiny-bert");
    // Token-id lists, all in one request: llama.cpp's vectors, L2-normalised.
    let (s, r) = post(
        &app,
        "/v1/embeddings",
        json!({"model": "tiny-bert", "input": rf["inputs"]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["object"], "list");
    let data = r["data"].as_array().unwrap();
    let want = rf["outputs"].as_array().unwrap();
    assert_eq!(data.len(), want.len());
    let n_tokens: usize = rf["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_array().unwrap().len())
        .sum();
    assert_eq!(r["usage"]["prompt_tokens"], n_tokens);
    assert_eq!(r["usage"]["total_tokens"], n_tokens);
    for (i, (d, w)) in data.iter().zip(want).enumerate() {
        assert_eq!(d["index"], i);
        assert_eq!(d["object"], "embedding");
        let g = floats(&d["embedding"]);
        let norm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        let c = cosine(&g, &floats(w));
        assert!(c >= 0.9999, "input {i}: cosine {c}");
    }

    // Text is tokenized as llama.cpp tokenizes it (specials added): a string, a list of
    // strings and the same ids give the same vectors.
    let case = &rf["texts"][1];
    let (_, by_ids) = post(&app, "/v1/embeddings", json!({"input": case["tokens"]})).await;
    let (s, by_text) = post(&app, "/v1/embeddings", json!({"input": case["text"]})).await;
    assert_eq!(s, StatusCode::OK, "{by_text}");
    assert_eq!(
        by_text["data"][0]["embedding"],
        by_ids["data"][0]["embedding"]
    );
    let (_, listed) = post(
        &app,
        "/v1/embeddings",
        json!({"input": [rf["texts"][0]["text"], case["text"]]}),
    )
    .await;
    assert_eq!(
        listed["data"][1]["embedding"],
        by_ids["data"][0]["embedding"]
    );
    assert_ne!(
        listed["data"][0]["embedding"],
        listed["data"][1]["embedding"]
    );

    // base64: the same floats, little-endian f32.
    let (s, b64) = post(
        &app,
        "/v1/embeddings",
        json!({"input": case["text"], "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let decoded = unbase64(b64["data"][0]["embedding"].as_str().unwrap());
    let as_f32: Vec<f32> = floats(&by_ids["data"][0]["embedding"])
        .iter()
        .map(|&x| x as f32)
        .collect();
    assert_eq!(decoded, as_f32);

    // `dimensions`: the model's own width is fine, anything else is refused.
    let (s, _) = post(
        &app,
        "/v1/embeddings",
        json!({"input": "a", "dimensions": 64}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = post(
        &app,
        "/v1/embeddings",
        json!({"input": "a", "dimensions": 32}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["param"], "dimensions", "{e}");
    let (s, e) = post(
        &app,
        "/v1/embeddings",
        json!({"input": "a", "encoding_format": "int8"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["param"], "encoding_format");
    for bad in [
        json!([]),
        json!(""),
        json!([[]]),
        json!({"a": 1}),
        json!([-1]),
        json!([9999]),
    ] {
        let (s, e) = post(&app, "/v1/embeddings", json!({"input": bad})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {e}");
    }

    // Over-long input: a 400 naming the limit (64 positions), or cut when asked.
    let long = "word ".repeat(40);
    let (s, e) = post(&app, "/v1/embeddings", json!({"input": long})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("limit of 64"), "{msg}");
    let (s, r) = post(
        &app,
        "/v1/embeddings",
        json!({"input": long, "truncate": true}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["usage"]["prompt_tokens"], 64);

    // An encoder does not chat.
    let (s, e) = post(
        &app,
        "/v1/chat/completions",
        json!({"model": "tiny-bert", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("embedding model"), "{msg}");

    // A decoder embeds by mean pooling, the same vector as Ollama's /api/embed.
    let (s, r) = post(
        &app,
        "/v1/embeddings",
        json!({"model": "tiny-llama", "input": "hello world"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (_, o) = post(
        &app,
        "/api/embed",
        json!({"model": "tiny-llama", "input": "hello world"}),
    )
    .await;
    assert_eq!(r["data"][0]["embedding"], o["embeddings"][0]);
    pool.shutdown(Duration::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerank_scores_match_llama_cpp_best_first() {
    let (app, pool) = app();
    let rf = reference("tiny-bert-rerank");
    let rr = &rf["rerank"];
    let want = floats(&rr["scores"]);
    for path in ["/v1/rerank", "/rerank"] {
        let (s, r) = post(
            &app,
            path,
            json!({"model": "tiny-bert-rerank", "query": rr["query"], "documents": rr["documents"],
                   "return_documents": true}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        let results = r["results"].as_array().unwrap();
        assert_eq!(results.len(), want.len());
        let mut last = f64::INFINITY;
        for x in results {
            let i = x["index"].as_u64().unwrap() as usize;
            let score = x["relevance_score"].as_f64().unwrap();
            assert!(score <= last, "not sorted: {r}");
            last = score;
            assert!(
                (score - want[i]).abs() < 5e-3,
                "doc {i}: {score} vs {}",
                want[i]
            );
            assert_eq!(x["document"]["text"], rr["documents"][i]);
        }
        let n_tokens: usize = rr["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_array().unwrap().len())
            .sum();
        assert_eq!(
            r["usage"]["total_tokens"], n_tokens,
            "pairs laid out as llama.cpp's"
        );
    }
    // top_n, Cohere's document objects, documents left out by default.
    let docs: Vec<Value> = rr["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| json!({"text": d}))
        .collect();
    let (s, r) = post(
        &app,
        "/v1/rerank",
        json!({"model": "tiny-bert-rerank", "query": rr["query"], "documents": docs, "top_n": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    let best = (0..want.len())
        .max_by(|&a, &b| want[a].total_cmp(&want[b]))
        .unwrap();
    assert_eq!(results[0]["index"], best);
    assert!(results[0].get("document").is_none());

    // Over-long pairs: 400 naming the limit, or the document cut with `truncate`.
    let long = "panda ".repeat(40);
    let (s, e) = post(
        &app,
        "/v1/rerank",
        json!({"model": "tiny-bert-rerank", "query": "q", "documents": ["ok", long]}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["param"], "documents[1]");
    assert!(e["error"]["message"].as_str().unwrap().contains("64"));
    let (s, r) = post(
        &app,
        "/v1/rerank",
        json!({"model": "tiny-bert-rerank", "query": "q", "documents": ["ok", long], "truncate": true}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");

    // The wrong kind of model for each endpoint.
    let (s, e) = post(
        &app,
        "/v1/rerank",
        json!({"model": "tiny-bert", "query": "q", "documents": ["a"]}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not a reranker"));
    let (s, e) = post(
        &app,
        "/v1/embeddings",
        json!({"model": "tiny-bert-rerank", "input": "a"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/v1/rerank"));
    let (s, _) = post(
        &app,
        "/v1/rerank",
        json!({"model": "tiny-bert-rerank", "query": "q", "documents": [], "top_n": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    pool.shutdown(Duration::ZERO);
}

/// A decoder reranker (Qwen3-Reranker's shape): its own prompt template, P(yes) as the score,
/// as llama-server gives them; an over-long document is refused unless `truncate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decoder_reranker_scores_match_llama_cpp() {
    let (app, pool) = app();
    let p = owl_testkit::fixture_path("rerank/tiny-qwen3-reranker.json");
    let rf: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let (s, r) = post(
        &app,
        "/v1/rerank",
        json!({"model": "tiny-qwen3-reranker", "query": rf["query"], "documents": rf["documents"]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), rf["documents"].as_array().unwrap().len());
    for x in results {
        let i = x["index"].as_u64().unwrap() as usize;
        let want = rf["outputs"][i][0].as_f64().unwrap();
        let score = x["relevance_score"].as_f64().unwrap();
        assert!((score - want).abs() < 5e-3, "doc {i}: {score} vs {want}");
    }
    let n_tokens: usize = rf["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_array().unwrap().len())
        .sum();
    assert_eq!(
        r["usage"]["total_tokens"], n_tokens,
        "the template's tokens"
    );
    let long = "bamboo forest ".repeat(300);
    let body = json!({"model": "tiny-qwen3-reranker", "query": "q", "documents": ["ok", long]});
    let (s, r) = post(&app, "/v1/rerank", body.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("256"),
        "{r}"
    );
    let mut body = body;
    body["truncate"] = json!(true);
    let (s, r) = post(&app, "/v1/rerank", body).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let used = r["usage"]["total_tokens"].as_u64().unwrap();
    assert!(used <= 2 * 256, "{r}");
    pool.shutdown(Duration::ZERO);
}
