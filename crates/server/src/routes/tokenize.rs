//! `POST /tokenize` and `POST /detokenize`, shaped like llama-server's.
//!
//! `/tokenize` defaults as llama-server documents: `add_special` false, `parse_special` true;
//! `with_pieces` returns `{"id","piece"}` objects (the piece a string when it is valid UTF-8,
//! else its bytes). `/detokenize` renders control tokens (as llama-server does) so a
//! round trip with `parse_special` gives the text back; ids outside the vocabulary are a 400.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::body;
use crate::error::ApiError;
use crate::openai::{DetokenizeRequest, TokenizeRequest};
use crate::routes::blocking;
use crate::state::AppState;

pub async fn tokenize(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let bytes = body::bytes(body)?;
    let req: TokenizeRequest = body::parse(&bytes)?;
    let content = req
        .content
        .ok_or_else(|| ApiError::bad_param("content", "`content` is required"))?;
    let model = state.model(None).await?;
    let add_special = req.add_special.unwrap_or(false);
    let parse_special = req.parse_special.unwrap_or(true);
    let with_pieces = req.with_pieces.unwrap_or(false);
    let tok = std::sync::Arc::clone(&model.tokenizer);
    blocking(move || {
        let ids = tok
            .encode(&content, add_special, parse_special)
            .map_err(|e| ApiError::bad_request(format!("cannot tokenize: {e}")))?;
        let tokens: Vec<Value> = if with_pieces {
            ids.iter()
                .map(|&id| {
                    let bytes = tok.token_to_piece(id, true);
                    let piece = match String::from_utf8(bytes) {
                        Ok(s) => json!(s),
                        Err(e) => json!(e.into_bytes()),
                    };
                    json!({"id": id, "piece": piece})
                })
                .collect()
        } else {
            ids.iter().map(|&id| json!(id)).collect()
        };
        Ok(Json(json!({ "tokens": tokens })))
    })
    .await
}

pub async fn detokenize(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let bytes = body::bytes(body)?;
    let req: DetokenizeRequest = body::parse(&bytes)?;
    let tokens = req
        .tokens
        .ok_or_else(|| ApiError::bad_param("tokens", "`tokens` is required"))?;
    let model = state.model(None).await?;
    let n_vocab = model.tokenizer.vocab_size();
    let mut ids = Vec::with_capacity(tokens.len());
    for t in tokens {
        match u32::try_from(t) {
            Ok(id) if (id as usize) < n_vocab => ids.push(id),
            _ => {
                return Err(ApiError::bad_param(
                    "tokens",
                    format!("token id {t} is outside the vocabulary ({n_vocab} tokens)"),
                ))
            }
        }
    }
    let content = model.tokenizer.decode(&ids, true);
    Ok(Json(json!({ "content": content })))
}
