//! `POST /v1/messages` (Anthropic's Messages API) and `POST /v1/messages/count_tokens`.
//!
//! The request becomes the same [`crate::turn::Turn`] a chat completion does (see
//! `anthropic::convert`), so both APIs render, constrain and parse replies identically; this
//! file only checks the body and picks the answer's form (a message or its event stream).
//! Every error, including a bad body or an unknown model, is in Anthropic's shape.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use crate::anthropic::convert::{convert, Converted};
use crate::anthropic::error::AnthropicError;
use crate::anthropic::reply;
use crate::anthropic::request::{MessagesRequest, IGNORED, KNOWN, KNOWN_COUNT};
use crate::anthropic::stream::MessageStream;
use crate::body;
use crate::generation::RequestLog;
use crate::ids::new_id;
use crate::state::AppState;
use crate::{turn, turn_sse};

/// Parses and checks a body against the fields `known` for the route.
fn request(
    body: Result<Bytes, BytesRejection>,
    known: &[&str],
) -> Result<MessagesRequest, AnthropicError> {
    let bytes = body::bytes(body)?;
    let req: MessagesRequest = body::parse(&bytes)?;
    body::check_fields(&bytes, known, IGNORED)?;
    Ok(req)
}

pub async fn messages(
    State(state): State<AppState>,
    log: Option<Extension<RequestLog>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AnthropicError> {
    let req = request(body, KNOWN)?;
    let model = state.model(req.model.as_deref()).await?;
    let n_vocab = model.engine.n_vocab();
    let Converted { turn, stream } = convert(req, n_vocab, false)?;
    let running = turn::start(&state, &model, turn, log.map(|Extension(l)| l)).await?;
    let id = new_id("msg_");
    let model = model.served_id();
    if stream {
        let fmt = MessageStream::new(id, model, running.prompt_tokens());
        return Ok(turn_sse::response(running, fmt));
    }
    let done = turn::complete(running).await?;
    Ok(Json(reply::message(id, model, done)).into_response())
}

pub async fn count_tokens(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AnthropicError> {
    let req = request(body, KNOWN_COUNT)?;
    let model = state.model(req.model.as_deref()).await?;
    let n_vocab = model.engine.n_vocab();
    let Converted { turn, .. } = convert(req, n_vocab, true)?;
    let n = turn::prompt_tokens(&model, turn).await?;
    Ok(Json(json!({ "input_tokens": n })).into_response())
}
