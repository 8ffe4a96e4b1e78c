//! Ollama's model routes that change the store: `/api/pull` (from owl's sources: its
//! catalogue and the Hugging Face Hub, with streamed progress), `/api/delete`, `/api/copy`
//! and `/api/create` (a derived model: a base plus a system prompt, parameters, a template
//! or adapters). The work happens in the [`crate::catalog::Catalog`] on blocking threads.

use std::path::PathBuf;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body;
use crate::catalog::{CatalogError, CreateRequest, PullProgress};
use crate::error::ApiError;
use crate::ollama::ndjson::ndjson_response;
use crate::ollama::OllamaError;
use crate::state::AppState;

fn catalog(state: &AppState) -> Result<std::sync::Arc<dyn crate::catalog::Catalog>, ApiError> {
    state
        .pool()
        .catalog()
        .cloned()
        .ok_or_else(|| ApiError::bad_request("this server has no model store"))
}

/// A required name field (`model`, or its older name `name`): present and not empty.
pub fn required(v: Option<String>, field: &str) -> Result<String, ApiError> {
    v.filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_param(field, format!("`{field}` is required")))
}

/// Runs a store operation on a blocking thread; its failure is about model `name`.
async fn on_store<T: Send + 'static>(
    state: &AppState,
    name: &str,
    what: &'static str,
    f: impl FnOnce(&dyn crate::catalog::Catalog) -> Result<T, CatalogError> + Send + 'static,
) -> Result<T, ApiError> {
    let cat = catalog(state)?;
    tokio::task::spawn_blocking(move || f(cat.as_ref()))
        .await
        .map_err(|e| ApiError::server(format!("{what} failed: {e}")))?
        .map_err(|e| e.into_api(name))
}

#[derive(Deserialize)]
struct PullIn {
    model: Option<String>,
    name: Option<String>,
    #[allow(dead_code)]
    insecure: Option<bool>,
    stream: Option<bool>,
}

pub async fn pull(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OllamaError> {
    let bytes = body::bytes(body)?;
    let req: PullIn = body::parse(&bytes)?;
    body::check_fields(&bytes, &["model", "name", "insecure", "stream"], &[])?;
    let name = required(req.model.or(req.name), "model")?;
    let cat = catalog(&state)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let n = name.clone();
    let job = tokio::task::spawn_blocking(move || {
        let _ = tx.send(json!({"status": "pulling manifest"}));
        let r = cat.pull(&n, &mut |p| {
            let _ = tx.send(match p {
                PullProgress::Status(s) => json!({ "status": s }),
                PullProgress::Bytes {
                    file,
                    completed,
                    total,
                } => json!({
                    "status": format!("pulling {file}"),
                    "digest": file,
                    "total": total,
                    "completed": completed,
                }),
            });
        });
        match r {
            Ok(_) => {
                let _ = tx.send(json!({"status": "verifying sha256 digest"}));
                let _ = tx.send(json!({"status": "writing manifest"}));
                let _ = tx.send(json!({"status": "success"}));
                Ok(())
            }
            Err(e) => Err(e),
        }
    });
    if !req.stream.unwrap_or(true) {
        while rx.recv().await.is_some() {}
        return match job.await {
            Ok(Ok(())) => Ok(Json(json!({"status": "success"})).into_response()),
            Ok(Err(e)) => Err(e.into_api(&name).into()),
            Err(e) => Err(ApiError::server(format!("the pull failed: {e}")).into()),
        };
    }
    let lines = async_stream(rx, job, name);
    Ok(ndjson_response(Body::from_stream(lines)))
}

/// The progress lines, then an `error` line if the pull failed.
fn async_stream(
    rx: tokio::sync::mpsc::UnboundedReceiver<Value>,
    job: tokio::task::JoinHandle<Result<(), CatalogError>>,
    name: String,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    futures_util::stream::unfold(Some((rx, Some(job))), move |st| {
        let name = name.clone();
        async move {
            let (mut rx, job) = st?;
            if let Some(v) = rx.recv().await {
                return Some((Ok(Bytes::from(format!("{v}\n"))), Some((rx, job))));
            }
            let e = match job?.await {
                Ok(Ok(())) => return None,
                Ok(Err(e)) => e.into_api(&name),
                Err(e) => ApiError::server(format!("the pull failed: {e}")),
            };
            let line = json!({ "error": crate::ollama::error::message(&e) });
            Some((Ok(Bytes::from(format!("{line}\n"))), None))
        }
    })
}

#[derive(Deserialize)]
struct DeleteIn {
    model: Option<String>,
    name: Option<String>,
}

pub async fn delete(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OllamaError> {
    let bytes = body::bytes(body)?;
    let req: DeleteIn = body::parse(&bytes)?;
    body::check_fields(&bytes, &["model", "name"], &[])?;
    let name = required(req.model.or(req.name), "model")?;
    catalog(&state)?;
    // A loaded model goes first (at once if idle, else when its last request ends).
    state.pool().unload(&name);
    let n = name.clone();
    on_store(&state, &name, "delete", move |c| c.remove(&n)).await?;
    Ok(Json(json!({})).into_response())
}

#[derive(Deserialize)]
struct CopyIn {
    source: Option<String>,
    destination: Option<String>,
}

pub async fn copy(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OllamaError> {
    let bytes = body::bytes(body)?;
    let req: CopyIn = body::parse(&bytes)?;
    body::check_fields(&bytes, &["source", "destination"], &[])?;
    let from = required(req.source, "source")?;
    let to = required(req.destination, "destination")?;
    let f = from.clone();
    on_store(&state, &from, "copy", move |c| c.copy(&f, &to)).await?;
    Ok(Json(json!({})).into_response())
}

#[derive(Deserialize)]
struct CreateIn {
    model: Option<String>,
    from: Option<String>,
    system: Option<String>,
    template: Option<String>,
    parameters: Option<serde_json::Map<String, Value>>,
    adapters: Option<serde_json::Map<String, Value>>,
    stream: Option<bool>,
}

pub async fn create(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OllamaError> {
    let bytes = body::bytes(body)?;
    let req: CreateIn = body::parse(&bytes)?;
    // `files` (uploaded blobs), `quantize`, `messages` and `license` are Ollama features owl's
    // store does not have: a 400 names them rather than dropping them.
    body::check_fields(
        &bytes,
        &[
            "model",
            "from",
            "system",
            "template",
            "parameters",
            "adapters",
            "stream",
        ],
        &[],
    )?;
    let name = required(req.model, "model")?;
    let from = req
        .from
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_param("from", "`from` (the base model) is required"))?;
    // Ollama's parameters are checked like a request's options.
    let params: std::collections::BTreeMap<String, Value> =
        req.parameters.unwrap_or_default().into_iter().collect();
    crate::ollama::options::options(None, &params).map_err(|e| {
        let mut e = e;
        e.param = e.param.map(|p| p.replace("options.", "parameters."));
        e.message = e.message.replace("option", "parameter");
        e
    })?;
    let adapters = req
        .adapters
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            v.as_str()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(k))
        })
        .collect();
    let spec = CreateRequest {
        from,
        system: req.system,
        params,
        template: req.template,
        adapters,
    };
    let n = name.clone();
    on_store(&state, &name, "create", move |c| c.create(&n, &spec)).await?;
    if req.stream.unwrap_or(true) {
        let body = format!(
            "{}\n{}\n",
            json!({"status": "using existing layer"}),
            json!({"status": "success"})
        );
        return Ok(ndjson_response(Body::from(body)));
    }
    Ok(Json(json!({"status": "success"})).into_response())
}
