//! The routes, one file each, and the table that maps paths to them.

use axum::http::{Method, Uri};
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::ollama;
use crate::state::AppState;

pub mod chat;
pub mod completions;
pub mod embeddings;
pub mod health;
pub mod lora;
pub mod messages;
pub mod metrics;
pub mod models;
pub mod rerank;
pub mod responses;
pub mod tokenize;
pub mod web;

/// Every route, with a JSON 404 for anything else.
pub fn table() -> Router<AppState> {
    Router::new()
        .route("/health", get(health::health))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/models", get(models::list))
        .route("/v1/load_lora_adapter", post(lora::load))
        .route("/v1/unload_lora_adapter", post(lora::unload))
        .route("/v1/chat/completions", post(chat::chat))
        .route("/v1/completions", post(completions::completions))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/v1/rerank", post(rerank::rerank))
        .route("/rerank", post(rerank::rerank))
        .route("/v1/messages", post(messages::messages))
        .route("/v1/messages/count_tokens", post(messages::count_tokens))
        .route("/v1/responses", post(responses::create))
        .route("/v1/responses/{id}", get(responses::get))
        .route("/tokenize", post(tokenize::tokenize))
        .route("/api/chat", post(ollama::chat::chat))
        .route("/api/generate", post(ollama::generate::generate))
        .route("/api/embed", post(ollama::embed::embed))
        .route("/api/embeddings", post(ollama::embed::embeddings))
        .route("/api/tags", get(ollama::models::tags))
        .route("/api/show", post(ollama::models::show))
        .route("/api/ps", get(ollama::models::ps))
        .route("/api/version", get(ollama::models::version))
        .route("/api/pull", post(ollama::store::pull))
        .route("/api/delete", axum::routing::delete(ollama::store::delete))
        .route("/api/copy", post(ollama::store::copy))
        .route("/api/create", post(ollama::store::create))
        .route("/detokenize", post(tokenize::detokenize))
        .merge(web::router())
        .fallback(not_found)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::route_not_found(method.as_str(), uri.path())
}

/// Every model a client may name: the catalog's plus the loaded ones, sorted by id, the
/// default model first.
pub async fn all_models(state: &AppState) -> Vec<crate::catalog::ModelSpec> {
    let pool = state.pool().clone();
    let mut specs = match pool.catalog().cloned() {
        Some(c) => tokio::task::spawn_blocking(move || c.list())
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    for l in state.pool().loaded() {
        if !specs.iter().any(|s| s.id == l.spec.id) {
            specs.push(l.spec);
        }
    }
    if specs.is_empty() {
        // Still loading its one model: list it already.
        let c = state.config();
        specs.push(crate::catalog::ModelSpec {
            id: c.model_id.clone(),
            modified: c.created,
            ..Default::default()
        });
    }
    let default = state.pool().options().default_model.clone();
    specs.sort_by(|a, b| {
        let da = default
            .as_deref()
            .is_some_and(|d| crate::catalog::same_name(&a.id, d));
        let db = default
            .as_deref()
            .is_some_and(|d| crate::catalog::same_name(&b.id, d));
        db.cmp(&da).then_with(|| a.id.cmp(&b.id))
    });
    specs
}

/// The model `name` names: loaded, or as the catalog resolves it (404 otherwise).
pub async fn find_model(
    state: &AppState,
    name: &str,
) -> Result<crate::catalog::ModelSpec, ApiError> {
    if let Some(l) = state
        .pool()
        .loaded()
        .into_iter()
        .find(|l| crate::catalog::same_name(&l.spec.id, name))
    {
        return Ok(l.spec);
    }
    let Some(c) = state.pool().catalog().cloned() else {
        return Err(ApiError::model_not_found(name, &state.config().model_id));
    };
    let n = name.to_string();
    match tokio::task::spawn_blocking(move || c.resolve(&n)).await {
        Ok(r) => r.map_err(|e| e.into_api(name)),
        Err(e) => Err(ApiError::server(format!(
            "looking up the model failed: {e}"
        ))),
    }
}

/// Runs CPU-heavy request preparation (template rendering, tokenizing a large prompt) off the
/// async workers; a panic in it is a 500, not a lost worker.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::server(format!("request preparation failed: {e}")))?
}
