//! `GET /v1/models`: the one model this server serves (listed while it loads, too).

use axum::extract::State;
use axum::Json;

use crate::openai::{ModelEntry, ModelList};
use crate::state::AppState;

pub async fn list(State(state): State<AppState>) -> Json<ModelList> {
    let c = state.config();
    Json(ModelList {
        object: "list",
        data: vec![ModelEntry {
            id: c.model_id.clone(),
            object: "model",
            created: c.created,
            owned_by: "owl",
        }],
    })
}
