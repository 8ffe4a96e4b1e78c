//! Anthropic's error shape: `{"type":"error","error":{"type","message"}}` with the HTTP
//! status of the [`ApiError`] it carries, so the `anthropic` clients raise the exception
//! class they raise against Anthropic's own API (`BadRequestError`, `NotFoundError`, …).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;

/// An [`ApiError`] answered in Anthropic's shape.
#[derive(Debug)]
pub struct AnthropicError(pub ApiError);

impl From<ApiError> for AnthropicError {
    fn from(e: ApiError) -> Self {
        AnthropicError(e)
    }
}

/// Anthropic's error `type` for a status.
pub fn kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

/// The error object (the `data` of a mid-stream `error` event, too). Anthropic's errors have
/// no `param`, so the field's path leads the message when the message does not name it.
pub fn body(e: &ApiError) -> serde_json::Value {
    let message = match &e.param {
        Some(p) if !e.message.contains(p.as_str()) => format!("{p}: {}", e.message),
        _ => e.message.clone(),
    };
    json!({
        "type": "error",
        "error": {"type": kind(e.status), "message": message},
    })
}

/// Whether `path` belongs to the Messages API (its errors take Anthropic's shape).
pub fn is_messages_path(path: &str) -> bool {
    path == "/v1/messages" || path.starts_with("/v1/messages/")
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        (
            self.0.status,
            [(header::CONTENT_TYPE, "application/json")],
            body(&self.0).to_string(),
        )
            .into_response()
    }
}
