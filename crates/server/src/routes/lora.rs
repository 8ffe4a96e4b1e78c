//! `POST /v1/load_lora_adapter` and `POST /v1/unload_lora_adapter`, shaped like vLLM's:
//! `{"lora_name", "lora_path"}` in, a plain-text confirmation out; a missing or bad field is a
//! 400 naming it, an unknown name to unload a 404. See [`crate::lora`].

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use serde::Deserialize;

use crate::body;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct LoraRequest {
    lora_name: Option<String>,
    lora_path: Option<String>,
}

fn required(v: Option<String>, field: &str) -> Result<String, ApiError> {
    match v {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(ApiError::bad_param(field, format!("`{field}` is required"))),
    }
}

pub async fn load(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<String, ApiError> {
    let bytes = body::bytes(body)?;
    let req: LoraRequest = body::parse(&bytes)?;
    body::check_fields(&bytes, &["lora_name", "lora_path"], &["load_inplace"])?;
    let name = required(req.lora_name, "lora_name")?;
    let path = required(req.lora_path, "lora_path")?;
    crate::lora::register(&state, &name, path.into()).await?;
    Ok(format!(
        "Success: LoRA adapter '{name}' added successfully."
    ))
}

pub async fn unload(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<String, ApiError> {
    let bytes = body::bytes(body)?;
    let req: LoraRequest = body::parse(&bytes)?;
    body::check_fields(&bytes, &["lora_name"], &["lora_int_id"])?;
    let name = required(req.lora_name, "lora_name")?;
    crate::lora::unregister(&state, &name)?;
    Ok(format!(
        "Success: LoRA adapter '{name}' removed successfully."
    ))
}
