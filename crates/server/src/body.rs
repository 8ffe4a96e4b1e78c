//! Reading a JSON request body without ever panicking on what the client sent.
//!
//! Handlers take the body as `Result<Bytes, BytesRejection>` (so an oversized body becomes our
//! 413 error, not axum's plain-text one) and parse it here: bad UTF-8 or bad JSON is a 400
//! saying so, and a wrong type names the field (`param`) via `serde_path_to_error`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The raw body, or the error for why it could not be read (413 when over the limit).
pub fn bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| ApiError::from_status(r.status(), &r.body_text()))
}

/// Parses a JSON object body into `T`.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty; send a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() && path != "." {
            ApiError::bad_param(&path, format!("invalid value for `{path}`: {inner}"))
        } else if inner.is_data() {
            ApiError::bad_request(format!("the request body must be a JSON object: {inner}"))
        } else {
            ApiError::bad_request(format!("malformed JSON in the request body: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("malformed JSON in the request body: {e}")))?;
    Ok(value)
}

/// Refuses a body field outside `known` with a 400 naming it, so a request never silently
/// loses a field that would change its output; fields in `ignored` (harmless ones such as
/// `user` or `metadata`) are accepted and dropped. Call after [`parse`] succeeded on the body.
pub fn check_fields(bytes: &[u8], known: &[&str], ignored: &[&str]) -> Result<(), ApiError> {
    let Ok(map) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
    else {
        return Ok(());
    };
    for key in map.keys() {
        if !known.contains(&key.as_str()) && !ignored.contains(&key.as_str()) {
            return Err(ApiError::bad_param(
                key,
                format!("the field `{key}` is not supported by this server; remove it (see docs/SERVER.md for the fields owl accepts)"),
            ));
        }
    }
    Ok(())
}

/// An optional string field's value for an error message: quoted, or `nothing` when absent.
pub fn shown(v: Option<&str>) -> String {
    v.map_or_else(|| "nothing".to_string(), |s| format!("{s:?}"))
}
