//! [`ApiError`]: every failure a client can see, as an OpenAI-shaped JSON error.
//!
//! The body is always `{"error":{"message","type","param","code"}}` with a matching HTTP
//! status, whatever failed (bad JSON, a refused submission, a panic, an unknown route), so
//! OpenAI client libraries raise their usual exceptions.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use owl_engine::SubmitError;
use serde::Serialize;

#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            param: None,
            code: None,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// 400 `invalid_request_error`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 400 about one request field.
    pub fn bad_param(param: &str, message: impl Into<String>) -> Self {
        Self::bad_request(message).with_param(param)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid or missing API key: send `Authorization: Bearer <key>` or `x-api-key: <key>`",
        )
        .with_code("invalid_api_key")
    }

    pub fn model_not_found(model: &str, served: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("the model `{model}` does not exist; this server serves `{served}`"),
        )
        .with_param("model")
        .with_code("model_not_found")
    }

    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("unknown route: {method} {path}"),
        )
        .with_code("not_found")
    }

    pub fn loading() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable_error",
            "the model is still loading; try again shortly",
        )
        .with_code("model_loading")
    }

    pub fn server(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }

    /// An error response for a status produced outside our handlers (405, 413, …).
    pub fn from_status(status: StatusCode, detail: &str) -> Self {
        let message = match status {
            StatusCode::METHOD_NOT_ALLOWED => "method not allowed for this route".to_string(),
            StatusCode::PAYLOAD_TOO_LARGE => format!(
                "the request body is larger than the limit of {} bytes",
                crate::config::BODY_LIMIT
            ),
            _ if !detail.trim().is_empty() => detail.trim().to_string(),
            _ => status
                .canonical_reason()
                .unwrap_or("request failed")
                .to_string(),
        };
        let kind = if status.is_server_error() {
            "server_error"
        } else {
            "invalid_request_error"
        };
        Self::new(status, kind, message)
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        let msg = e.to_string();
        match e {
            SubmitError::EmptyPrompt => ApiError::bad_param("prompt", msg),
            SubmitError::PromptTooLong { .. } => {
                ApiError::bad_request(msg).with_code("context_length_exceeded")
            }
            SubmitError::QueueFull { .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", msg)
                    .with_code("queue_full")
            }
            SubmitError::ShuttingDown => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable_error", msg)
            }
            SubmitError::BadSampling(_) => ApiError::bad_request(msg),
            SubmitError::BadToken { .. } => ApiError::bad_param("prompt", msg),
            SubmitError::EncoderOnly => {
                ApiError::bad_param("model", msg).with_code("model_not_generative")
            }
        }
    }
}

impl ApiError {
    /// The JSON body alone.
    pub fn body(&self) -> String {
        let b = Body {
            error: Inner {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code.as_deref(),
            },
        };
        serde_json::to_string(&b).unwrap_or_else(|_| "{\"error\":{}}".to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            self.body(),
        )
            .into_response()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}
