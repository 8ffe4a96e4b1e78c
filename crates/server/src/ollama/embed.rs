//! `POST /api/embed` and the older `POST /api/embeddings`: text embeddings from a generative
//! model, as Ollama and llama.cpp compute them for one: the mean of the final-normed hidden
//! states of the input's tokens, L2-normalised (llama.cpp's `--pooling mean`,
//! `--embd-normalize 2`). Each input runs on the engine thread between two generation steps.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body;
use crate::error::ApiError;
use crate::ollama::options;
use crate::ollama::OllamaError;
use crate::pool::Lease;
use crate::state::AppState;

#[derive(Deserialize)]
struct EmbedIn {
    model: Option<String>,
    input: Option<Value>,
    truncate: Option<bool>,
    options: Option<Value>,
    keep_alive: Option<Value>,
    dimensions: Option<i64>,
}

#[derive(Deserialize)]
struct EmbeddingsIn {
    model: Option<String>,
    prompt: Option<String>,
    options: Option<Value>,
    keep_alive: Option<Value>,
}

pub async fn embed(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, OllamaError> {
    let started = Instant::now();
    let bytes = body::bytes(body)?;
    let req: EmbedIn = body::parse(&bytes)?;
    body::check_fields(
        &bytes,
        &[
            "model",
            "input",
            "truncate",
            "options",
            "keep_alive",
            "dimensions",
        ],
        &[],
    )?;
    let inputs: Vec<String> = match req.input {
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(a)) => a
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s),
                _ => Err(ApiError::bad_param(
                    &format!("input[{i}]"),
                    "each input must be a string",
                )),
            })
            .collect::<Result<_, _>>()?,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => {
            return Err(ApiError::bad_param(
                "input",
                "`input` must be a string or a list of strings",
            )
            .into())
        }
    };
    let keep_alive = options::keep_alive(req.keep_alive.as_ref())?;
    let model = state.pool().get(req.model.as_deref(), keep_alive).await?;
    crate::lora::refuse(&model, "embeddings")?;
    let load = started.elapsed();
    options::options(req.options.as_ref(), &Default::default())?;
    let truncate = req.truncate.unwrap_or(true);
    let mut embeddings = Vec::with_capacity(inputs.len());
    let mut tokens = 0;
    for (i, text) in inputs.into_iter().enumerate() {
        let (e, n) = one(&model, text, truncate, &format!("input[{i}]")).await?;
        tokens += n;
        embeddings.push(match req.dimensions {
            None => e,
            Some(d) if d >= 1 && (d as usize) <= e.len() => renormalised(&e[..d as usize]),
            Some(d) => {
                return Err(ApiError::bad_param(
                    "dimensions",
                    format!("`dimensions` must be between 1 and {}, got {d}", e.len()),
                )
                .into())
            }
        });
    }
    Ok(Json(json!({
        "model": model.spec().id,
        "embeddings": embeddings,
        "total_duration": started.elapsed().as_nanos() as u64,
        "load_duration": load.as_nanos() as u64,
        "prompt_eval_count": tokens,
    })))
}

pub async fn embeddings(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, OllamaError> {
    let bytes = body::bytes(body)?;
    let req: EmbeddingsIn = body::parse(&bytes)?;
    body::check_fields(&bytes, &["model", "prompt", "options", "keep_alive"], &[])?;
    let keep_alive = options::keep_alive(req.keep_alive.as_ref())?;
    let model = state.pool().get(req.model.as_deref(), keep_alive).await?;
    crate::lora::refuse(&model, "embeddings")?;
    options::options(req.options.as_ref(), &Default::default())?;
    let prompt = req.prompt.unwrap_or_default();
    if prompt.is_empty() {
        return Ok(Json(json!({ "embedding": [] })));
    }
    let (e, _) = one(&model, prompt, true, "prompt").await?;
    Ok(Json(json!({ "embedding": e })))
}

/// The embedding of `text` and its token count; over-long input is cut to the context when
/// `truncate`, else a 400.
async fn one(
    model: &Lease,
    text: String,
    truncate: bool,
    field: &str,
) -> Result<(Vec<f32>, usize), ApiError> {
    let tok = std::sync::Arc::clone(&model.tokenizer);
    let f = field.to_string();
    let mut ids = crate::routes::blocking(move || {
        tok.encode(&text, true, true)
            .map_err(|e| ApiError::bad_param(&f, format!("cannot tokenize: {e}")))
    })
    .await?;
    if ids.is_empty() {
        return Err(ApiError::bad_param(field, "the input is empty"));
    }
    let n_ctx = model.n_ctx();
    if ids.len() > n_ctx {
        if !truncate {
            return Err(ApiError::bad_param(
                field,
                format!("the input has {} tokens, more than the context of {n_ctx}; set `truncate` to cut it", ids.len()),
            ));
        }
        ids.truncate(n_ctx);
    }
    let n = ids.len();
    let rx = model.engine.embed(vec![ids], true)?;
    let e = rx
        .await
        .map_err(|_| ApiError::server("the engine stopped before the embedding was done"))?
        .map_err(|e| ApiError::server(format!("embedding failed: {e}")))?
        .pop()
        .ok_or_else(|| ApiError::server("the engine returned no embedding"))?;
    Ok((e, n))
}

fn renormalised(v: &[f32]) -> Vec<f32> {
    let n = v
        .iter()
        .map(|x| (*x as f64) * (*x as f64))
        .sum::<f64>()
        .sqrt();
    if n == 0.0 {
        return v.to_vec();
    }
    v.iter().map(|x| (*x as f64 / n) as f32).collect()
}
