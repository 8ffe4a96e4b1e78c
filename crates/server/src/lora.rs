//! LoRA adapters by name: which adapter names the server answers to, over which base model.
//!
//! A request whose `model` is an adapter's name runs on that adapter's base model with the
//! adapter applied: [`AppState::model`] leases the base (loading it if the pool had unloaded
//! it) and marks the lease with the adapter's name, which every submission then carries to
//! the engine. The table here is the server's truth; each engine keeps its own registry of
//! the adapters loaded into it. An engine that did not exist when the adapter was registered
//! (the base was unloaded for idleness and loaded again) gets it on the first request that
//! names it, so unloading models never loses adapters.
//!
//! Names come from `owl serve --lora NAME=PATH` and `POST /v1/load_lora_adapter`; `POST
//! /v1/unload_lora_adapter` forgets one. Requests already running keep their adapter (the
//! engine holds it per sequence); later ones naming it get 404 like any unknown model.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use owl_engine::AdapterError;

use crate::error::ApiError;
use crate::pool::Lease;
use crate::state::AppState;

/// One registered adapter.
#[derive(Clone, Debug)]
pub struct AdapterEntry {
    pub name: String,
    /// The id of the model it adapts.
    pub base: String,
    pub path: PathBuf,
    /// Unix time it was registered.
    pub created: u64,
    /// The engine (`EngineHandle::serial`) it is known to be loaded into.
    loaded_in: Option<u64>,
}

/// The adapters the server answers to, by name.
#[derive(Default)]
pub struct AdapterTable {
    entries: Mutex<BTreeMap<String, AdapterEntry>>,
}

impl AdapterTable {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, AdapterEntry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, name: &str) -> Option<AdapterEntry> {
        self.lock().get(name).cloned()
    }

    pub fn list(&self) -> Vec<AdapterEntry> {
        self.lock().values().cloned().collect()
    }

    fn remove(&self, name: &str) -> Option<AdapterEntry> {
        self.lock().remove(name)
    }

    fn mark_loaded(&self, name: &str, serial: u64) {
        if let Some(e) = self.lock().get_mut(name) {
            e.loaded_in = Some(serial);
        }
    }
}

/// Why an adapter could not be registered or found (the route turns it into a 4xx).
fn adapter_error(e: AdapterError) -> ApiError {
    match e {
        AdapterError::Exists(name) => ApiError::bad_param(
            "lora_name",
            format!("a LoRA adapter named '{name}' is already loaded"),
        ),
        AdapterError::NotLoaded(name) => not_found(&name),
        AdapterError::ShuttingDown => ApiError::server("the server is shutting down"),
        e @ (AdapterError::Open { .. } | AdapterError::Base { .. } | AdapterError::Lora(_)) => {
            ApiError::bad_param("lora_path", e.to_string())
        }
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!("no LoRA adapter named '{name}' is loaded"),
    )
    .with_param("lora_name")
    .with_code("lora_adapter_not_found")
}

/// Loads the adapter at `path` into the engine of `lease` as `name` (reading the file on a
/// blocking thread). An engine that already has the name keeps what it has.
async fn load_into(lease: &Lease, name: &str, path: &std::path::Path) -> Result<(), ApiError> {
    let engine = lease.engine.clone();
    let (name, path) = (name.to_string(), path.to_path_buf());
    let rx = crate::routes::blocking(move || {
        engine
            .load_adapter(&name, &path, 1.0)
            .map_err(adapter_error)
    })
    .await?;
    match rx.await {
        Ok(Ok(())) | Ok(Err(AdapterError::Exists(_))) => Ok(()),
        Ok(Err(e)) => Err(adapter_error(e)),
        Err(_) => Err(ApiError::server("the engine stopped")),
    }
}

/// A lease on `entry`'s base model, marked with the adapter (loaded into the base's engine
/// first if that engine does not have it yet).
pub async fn lease(state: &AppState, entry: AdapterEntry) -> Result<Lease, ApiError> {
    let lease = state.pool().get(Some(&entry.base), None).await?;
    let serial = lease.engine.serial();
    if entry.loaded_in != Some(serial) {
        load_into(&lease, &entry.name, &entry.path).await?;
        state.adapters().mark_loaded(&entry.name, serial);
    }
    Ok(lease.with_adapter(&entry.name))
}

/// Registers the adapter at `path` as `name` over the default model, loading it now so a bad
/// file is refused at once. `name` must not be a model's or another adapter's name.
pub async fn register(state: &AppState, name: &str, path: PathBuf) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::bad_param("lora_name", "`lora_name` is empty"));
    }
    if state.adapters().get(name).is_some() {
        return Err(adapter_error(AdapterError::Exists(name.to_string())));
    }
    if let Some(c) = state.pool().catalog().cloned() {
        let n = name.to_string();
        let taken = tokio::task::spawn_blocking(move || c.resolve(&n).is_ok())
            .await
            .unwrap_or(false);
        if taken || name == state.config().model_id {
            return Err(ApiError::bad_param(
                "lora_name",
                format!("'{name}' already names a model; choose another name"),
            ));
        }
    }
    let lease = state.pool().get(None, None).await?;
    if lease.adapter().is_some() {
        return Err(ApiError::bad_param(
            "lora_name",
            format!(
                "the default model '{}' carries a LoRA adapter of its own, and owl applies one \
                 adapter per request: serve its base model to load adapters over it",
                lease.spec().id
            ),
        ));
    }
    // A name unloaded while a request was still loading it may linger in the engine.
    if let Ok(rx) = lease.engine.unload_adapter(name) {
        let _ = rx.await;
    }
    load_into(&lease, name, &path).await?;
    let entry = AdapterEntry {
        name: name.to_string(),
        base: lease.spec().id.clone(),
        path,
        created: crate::ids::unix_now(),
        loaded_in: Some(lease.engine.serial()),
    };
    let mut t = state.adapters().lock();
    if t.contains_key(name) {
        return Err(adapter_error(AdapterError::Exists(name.to_string())));
    }
    t.insert(name.to_string(), entry);
    Ok(())
}

/// Refuses a lease that carries a LoRA adapter on a route that cannot apply one
/// (embeddings, reranking): its answer would silently be the base model's.
pub fn refuse(lease: &Lease, route: &str) -> Result<(), ApiError> {
    match lease.adapter() {
        Some(name) => Err(ApiError::bad_param(
            "model",
            format!(
                "'{name}' applies a LoRA adapter, which {route} do not apply: name a model \
                 without one"
            ),
        )),
        None => Ok(()),
    }
}

/// Forgets `name`: later requests naming it get 404; running ones finish with it.
pub fn unregister(state: &AppState, name: &str) -> Result<(), ApiError> {
    state
        .adapters()
        .remove(name)
        .ok_or_else(|| not_found(name))?;
    state.pool().each_loaded(|l| {
        // The reply is not awaited: the name is gone from the table already.
        let _ = l.model.engine.unload_adapter(name);
    });
    Ok(())
}
