//! `POST /v1/rerank` and `/rerank`: llama-server's, Jina's and Cohere's shape. `query`,
//! `documents` (strings, or objects with a `text`), `top_n`, `return_documents`; the reply's
//! `results` are `{index, relevance_score, document?: {text}}`, best first, and `usage`.
//!
//! The model must be a reranker (rank pooling: a cross-encoder with a classification head).
//! Each document is read together with the query as one input, laid out as llama-server does
//! (`owl_engine::PairLayout`: `[CLS] query [SEP] document ...`, or a decoder reranker's own
//! `tokenizer.chat_template.rerank` prompt); all pairs go to the engine
//! in one command. The score is the classifier's raw output, as llama-server returns it. A
//! pair longer than the model's positions is a 400 naming the limit unless `truncate` is set:
//! then the document is cut (the query is kept whole).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use owl_engine::Pooling;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

use crate::body;
use crate::embed_inputs::{fit, parse_truncate, run, tokenize};
use crate::error::ApiError;
use crate::routes::blocking;
use crate::state::AppState;

#[derive(Deserialize)]
struct RerankIn {
    model: Option<String>,
    query: Option<String>,
    documents: Option<Vec<Value>>,
    top_n: Option<i64>,
    return_documents: Option<bool>,
    truncate: Option<Value>,
}

pub async fn rerank(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let bytes = body::bytes(body)?;
    let req: RerankIn = body::parse(&bytes)?;
    body::check_fields(
        &bytes,
        &[
            "model",
            "query",
            "documents",
            "top_n",
            "return_documents",
            "truncate",
        ],
        &["max_chunks_per_doc", "rank_fields", "user"],
    )?;
    let query = req
        .query
        .filter(|q| !q.is_empty())
        .ok_or_else(|| ApiError::bad_param("query", "`query` is required and must not be empty"))?;
    let docs: Vec<String> = req
        .documents
        .ok_or_else(|| ApiError::bad_param("documents", "`documents` is required"))?
        .into_iter()
        .enumerate()
        .map(|(i, d)| match d {
            Value::String(s) => Ok(s),
            Value::Object(mut o) => match o.remove("text") {
                Some(Value::String(s)) => Ok(s),
                _ => Err(ApiError::bad_param(
                    &format!("documents[{i}]"),
                    "a document object needs a string `text`",
                )),
            },
            _ => Err(ApiError::bad_param(
                &format!("documents[{i}]"),
                "each document must be a string or an object with a `text`",
            )),
        })
        .collect::<Result<_, _>>()?;
    if docs.is_empty() {
        return Err(ApiError::bad_param("documents", "`documents` is empty"));
    }
    let top_n = match req.top_n {
        None => docs.len(),
        Some(n) if n >= 1 => (n as usize).min(docs.len()),
        Some(n) => {
            return Err(ApiError::bad_param(
                "top_n",
                format!("`top_n` must be at least 1, got {n}"),
            ))
        }
    };
    let truncate = parse_truncate(req.truncate.as_ref())?;
    let model = state.model(req.model.as_deref()).await?;
    crate::lora::refuse(&model, "rerankings")?;
    if model.engine.pooling() != Pooling::Rank {
        return Err(ApiError::bad_param(
            "model",
            format!(
                "`{}` is not a reranker (it has no classification head with rank pooling); use a cross-encoder such as bge-reranker",
                model.spec().id
            ),
        ));
    }
    let n_ctx = model.n_ctx();
    let mut pairs = Vec::with_capacity(docs.len());
    if model.pair.template.is_some() {
        // A decoder reranker's own prompt (Qwen3-Reranker), tokenized whole.
        for (i, d) in docs.iter().enumerate() {
            let field = format!("documents[{i}]");
            let (tok, pair) = (Arc::clone(&model.tokenizer), model.pair.clone());
            let (q, d, f) = (query.clone(), d.clone(), field.clone());
            let ids = blocking(move || {
                pair.template_tokens(&tok, &q, &d, n_ctx, truncate)
                    .unwrap_or_else(|| Ok(Vec::new()))
                    .map_err(|e| ApiError::bad_param(&f, format!("cannot tokenize: {e}")))
            })
            .await?;
            pairs.push(fit(ids, n_ctx, false, &field)?);
        }
    } else {
        let q = tokenize(&model, query, false, "query".into()).await?;
        let frame = model.pair.join(&q, &[]).len();
        for (i, d) in docs.iter().enumerate() {
            let field = format!("documents[{i}]");
            let mut dt = tokenize(&model, d.clone(), false, field.clone()).await?;
            if truncate && frame + dt.len() > n_ctx {
                dt.truncate(n_ctx.saturating_sub(frame));
            }
            pairs.push(fit(model.pair.join(&q, &dt), n_ctx, false, &field)?);
        }
    }
    let n_tokens: usize = pairs.iter().map(Vec::len).sum();
    let scores = run(&model, pairs, false).await?;
    let mut results: Vec<(usize, f32)> = scores
        .iter()
        .enumerate()
        .map(|(i, s)| (i, s.first().copied().unwrap_or(f32::NAN)))
        .collect();
    results.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    results.truncate(top_n);
    let return_documents = req.return_documents.unwrap_or(false);
    let results: Vec<Value> = results
        .into_iter()
        .map(|(i, s)| {
            let mut r = json!({"index": i, "relevance_score": s});
            if return_documents {
                r["document"] = json!({"text": docs[i]});
            }
            r
        })
        .collect();
    Ok(Json(json!({
        "object": "list",
        "model": model.spec().id,
        "results": results,
        "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
    })))
}
