//! `POST /v1/responses` (OpenAI's Responses API) and `GET /v1/responses/{id}`.
//!
//! The request becomes the same [`crate::turn::Turn`] a chat completion does (see
//! `responses_api::convert`); this file resolves `previous_response_id` in the store, runs
//! the turn, and answers with a response object or its event stream. Errors are OpenAI's.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use crate::body;
use crate::error::ApiError;
use crate::generation::RequestLog;
use crate::ids::{new_id, unix_now};
use crate::responses_api::convert::{convert, Converted};
use crate::responses_api::output::{self, Head};
use crate::responses_api::request::{ResponsesRequest, IGNORED, KNOWN};
use crate::responses_api::stream::ResponseStream;
use crate::state::AppState;
use crate::{turn, turn_sse};

fn not_found(id: &str, param: Option<&str>) -> ApiError {
    let e = ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!("no stored response has the id {id:?} (responses are kept in memory, up to the last 1000, until the server restarts)"),
    );
    match param {
        Some(p) => e.with_param(p).with_code("previous_response_not_found"),
        None => e.with_code("not_found"),
    }
}

pub async fn create(
    State(state): State<AppState>,
    log: Option<Extension<RequestLog>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body::bytes(body)?;
    let req: ResponsesRequest = body::parse(&bytes)?;
    body::check_fields(&bytes, KNOWN, IGNORED)?;
    let lease = state.model(req.model.as_deref()).await?;
    let n_vocab = lease.engine.n_vocab();
    let previous = match req.previous_response_id.as_deref() {
        None => None,
        Some(id) => Some(
            state
                .responses()
                .get(id)
                .ok_or_else(|| not_found(id, Some("previous_response_id")))?,
        ),
    };
    let Converted { turn, meta, stream } = convert(req, previous.as_deref(), n_vocab)?;
    let running = turn::start(&state, &lease, turn, log.map(|Extension(l)| l)).await?;
    let id = new_id("resp_");
    let created_at = unix_now();
    let model = lease.served_id();
    if stream {
        let fmt = ResponseStream::new(state.clone(), id, created_at, model, meta);
        return Ok(turn_sse::response(running, fmt));
    }
    let reply = turn::complete(running).await?;
    let items = output::items(&reply);
    let head = Head {
        id: &id,
        created_at,
        model: &model,
    };
    let resp = output::finish(&state, &head, &meta, &items, reply.ending, reply.usage);
    Ok(Json(resp).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let stored = state
        .responses()
        .get(&id)
        .ok_or_else(|| not_found(&id, None))?;
    Ok(Json(stored.response.clone()).into_response())
}
