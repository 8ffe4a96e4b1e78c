//! [`AppState`]: what every handler shares: configuration, the model once it is loaded, the
//! metrics, and the stored Responses API responses.
//!
//! The model sits in a `OnceLock` so the server can answer (`/health` 503, other routes 503)
//! before loading has finished; handlers ask [`AppState::model`] and get a 503 error until it
//! is there.

use std::sync::{Arc, OnceLock};

use crate::config::HttpConfig;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::model::LoadedModel;
use crate::responses_api::store::ResponseStore;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    config: HttpConfig,
    model: OnceLock<LoadedModel>,
    metrics: Metrics,
    /// Responses API responses kept for `previous_response_id`.
    responses: ResponseStore,
}

impl AppState {
    /// A state whose model is still loading (see [`AppState::set_model`]).
    pub fn loading(config: HttpConfig) -> AppState {
        AppState {
            inner: Arc::new(Shared {
                config,
                model: OnceLock::new(),
                metrics: Metrics::new(),
                responses: ResponseStore::default(),
            }),
        }
    }

    /// A state with its model loaded.
    pub fn ready(config: HttpConfig, model: LoadedModel) -> AppState {
        let s = Self::loading(config);
        s.set_model(model);
        s
    }

    /// Installs the loaded model; later calls are ignored.
    pub fn set_model(&self, model: LoadedModel) {
        let _ = self.inner.model.set(model);
    }

    /// The model, or 503 while it loads.
    pub fn model(&self) -> Result<&LoadedModel, ApiError> {
        self.inner.model.get().ok_or_else(ApiError::loading)
    }

    pub fn is_ready(&self) -> bool {
        self.inner.model.get().is_some()
    }

    pub fn config(&self) -> &HttpConfig {
        &self.inner.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn responses(&self) -> &ResponseStore {
        &self.inner.responses
    }

    /// 404 unless `model` is absent, empty, or names the served model (its id, or its file
    /// name with `.gguf`).
    pub fn check_model(&self, model: Option<&str>) -> Result<(), ApiError> {
        let id = &self.inner.config.model_id;
        match model {
            None => Ok(()),
            Some(m) if m.is_empty() || m == id => Ok(()),
            Some(m) if m.strip_suffix(".gguf") == Some(id.as_str()) => Ok(()),
            Some(m) => Err(ApiError::model_not_found(m, id)),
        }
    }
}
