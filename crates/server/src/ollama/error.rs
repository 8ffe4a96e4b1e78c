//! Ollama's error shape: `{"error": "message"}` with the HTTP status of the [`ApiError`] it
//! carries; the `ollama` client raises `ResponseError(message, status)` from it.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;

#[derive(Debug)]
pub struct OllamaError(pub ApiError);

impl From<ApiError> for OllamaError {
    fn from(e: ApiError) -> Self {
        OllamaError(e)
    }
}

/// The message, with the field's name leading it when the message does not name it.
pub fn message(e: &ApiError) -> String {
    match &e.param {
        Some(p) if !e.message.contains(p.as_str()) => format!("{p}: {}", e.message),
        _ => e.message.clone(),
    }
}

/// Whether `path` belongs to Ollama's API (its errors take Ollama's shape).
pub fn is_ollama_path(path: &str) -> bool {
    path.starts_with("/api/")
}

impl IntoResponse for OllamaError {
    fn into_response(self) -> Response {
        (
            self.0.status,
            [(header::CONTENT_TYPE, "application/json")],
            json!({ "error": message(&self.0) }).to_string(),
        )
            .into_response()
    }
}
