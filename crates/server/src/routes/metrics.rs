//! `GET /metrics`: Prometheus text format (see `crate::metrics`).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut loaded = Vec::new();
    state
        .pool()
        .each_loaded(|l| loaded.push(l.model.engine.clone()));
    let stats: Vec<&owl_engine::EngineStats> = loaded.iter().map(|e| e.stats()).collect();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(&stats),
    )
}
