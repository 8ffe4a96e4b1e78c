//! `GET /v1/models`: every model a request may name: the catalog's (the store, found in
//! place, and the files given on the command line) and whatever is loaded.

use axum::extract::State;
use axum::Json;

use crate::openai::{ModelEntry, ModelList};
use crate::state::AppState;

pub async fn list(State(state): State<AppState>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: crate::routes::all_models(&state)
            .await
            .into_iter()
            .map(|s| ModelEntry {
                id: s.id,
                object: "model",
                created: s.modified,
                owned_by: "owl",
            })
            .collect(),
    })
}
