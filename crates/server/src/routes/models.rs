//! `GET /v1/models`: every model a request may name: the catalog's (the store, found in
//! place, and the files given on the command line) and whatever is loaded, then the LoRA
//! adapters, each with `parent` naming its base model (so do models that carry an adapter of
//! their own, `root` being the adapter's path).

use axum::extract::State;
use axum::Json;

use crate::openai::{ModelEntry, ModelList};
use crate::state::AppState;

pub async fn list(State(state): State<AppState>) -> Json<ModelList> {
    let mut data: Vec<ModelEntry> = crate::routes::all_models(&state)
        .await
        .into_iter()
        .map(|s| ModelEntry {
            id: s.id,
            object: "model",
            created: s.modified,
            owned_by: "owl",
            // A model carrying its own adapter (a derived model) shows it like a --lora one.
            parent: s
                .adapter
                .as_ref()
                .and_then(|_| s.defaults.lineage.get(1).cloned()),
            root: s.adapter.as_ref().map(|p| p.display().to_string()),
        })
        .collect();
    data.extend(state.adapters().list().into_iter().map(|a| ModelEntry {
        id: a.name,
        object: "model",
        created: a.created,
        owned_by: "owl",
        root: Some(a.path.display().to_string()),
        parent: Some(a.base),
    }));
    Json(ModelList {
        object: "list",
        data,
    })
}
