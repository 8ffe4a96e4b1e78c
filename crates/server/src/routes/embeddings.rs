//! `POST /v1/embeddings`, OpenAI's shape: `input` as a string, a list of strings, token ids or
//! a list of token-id lists; `encoding_format` `float` (default) or `base64` (little-endian
//! f32); `dimensions`; `usage`. Every input of a request goes to the engine in one command,
//! so an encoder runs them side by side in as few passes as its step budget allows. Vectors
//! are L2-normalised (llama-server's default). `dimensions` other than the model's own width
//! is a 400: truncating an embedding is only meaningful for models trained for it
//! (Matryoshka), and no GGUF says so yet. A reranker (rank pooling) is sent to `/v1/rerank`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use owl_engine::Pooling;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body;
use crate::embed_inputs::{parse_input, parse_truncate, run, to_ids};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
struct EmbeddingsIn {
    model: Option<String>,
    input: Option<Value>,
    encoding_format: Option<String>,
    dimensions: Option<i64>,
    truncate: Option<Value>,
}

pub async fn embeddings(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let bytes = body::bytes(body)?;
    let req: EmbeddingsIn = body::parse(&bytes)?;
    body::check_fields(
        &bytes,
        &[
            "model",
            "input",
            "encoding_format",
            "dimensions",
            "truncate",
        ],
        &["user"],
    )?;
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(f) => {
            return Err(ApiError::bad_param(
                "encoding_format",
                format!("`encoding_format` must be \"float\" or \"base64\", not {f:?}"),
            ))
        }
    };
    let inputs = parse_input(req.input.as_ref())?;
    let truncate = parse_truncate(req.truncate.as_ref())?;
    let model = state.model(req.model.as_deref()).await?;
    crate::lora::refuse(&model, "embeddings")?;
    if model.engine.pooling() == Pooling::Rank {
        return Err(ApiError::bad_param(
            "model",
            format!(
                "`{}` is a reranker: it scores (query, document) pairs; use /v1/rerank",
                model.spec().id
            ),
        ));
    }
    let ids = to_ids(&model, inputs, truncate).await?;
    let n_tokens: usize = ids.iter().map(Vec::len).sum();
    let vectors = run(&model, ids, true).await?;
    if let Some(d) = req.dimensions {
        let width = vectors.first().map_or(0, Vec::len);
        if d != width as i64 {
            return Err(ApiError::bad_param(
                "dimensions",
                format!(
                    "`{}` does not support shortened embeddings (`dimensions`: no Matryoshka training declared); its embeddings have {width} dimensions",
                    model.spec().id
                ),
            ));
        }
    }
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 {
                json!(crate::base64::encode_f32s(v))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": model.spec().id,
        "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
    })))
}
