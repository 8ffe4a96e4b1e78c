//! [`AppState`]: what every handler shares: configuration, the pool of models, the metrics,
//! and the stored Responses API responses.
//!
//! Handlers ask [`AppState::model`] for the model a request names and hold the returned
//! [`Lease`] for as long as they (or their stream) use it; the pool loads models on demand
//! and answers 503 (`loading`) while a server started without a catalog is still loading its
//! one model.

use std::sync::Arc;

use crate::catalog::{file_spec, ModelSpec};
use crate::config::{HttpConfig, ModelOptions};
use crate::error::ApiError;
use crate::lora::AdapterTable;
use crate::metrics::Metrics;
use crate::model::LoadedModel;
use crate::pool::{KeepAlive, Lease, ModelPool, PoolOptions};
use crate::responses_api::store::ResponseStore;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    config: HttpConfig,
    pool: ModelPool,
    metrics: Metrics,
    /// Responses API responses kept for `previous_response_id`.
    responses: ResponseStore,
    /// LoRA adapters by name.
    adapters: AdapterTable,
}

impl AppState {
    /// A state over `pool`.
    pub fn with_pool(config: HttpConfig, pool: ModelPool) -> AppState {
        AppState {
            inner: Arc::new(Shared {
                config,
                pool,
                metrics: Metrics::new(),
                responses: ResponseStore::default(),
                adapters: AdapterTable::default(),
            }),
        }
    }

    /// A state whose one model is still loading (see [`AppState::set_model`]): requests get
    /// 503 until it is installed.
    pub fn loading(config: HttpConfig) -> AppState {
        let pool = ModelPool::new(
            PoolOptions {
                engine: ModelOptions::default(),
                keep_alive: KeepAlive::Forever,
                max_memory: u64::MAX,
                default_model: Some(config.model_id.clone()),
            },
            None,
        );
        Self::with_pool(config, pool)
    }

    /// A state with its one model loaded (kept for the life of the state).
    pub fn ready(config: HttpConfig, model: LoadedModel) -> AppState {
        let s = Self::loading(config);
        s.set_model(model);
        s
    }

    /// Installs a loaded model under the configured id; it is never unloaded.
    pub fn set_model(&self, model: LoadedModel) {
        let c = &self.inner.config;
        let spec = ModelSpec {
            id: c.model_id.clone(),
            modified: c.created,
            ..file_spec(std::path::Path::new(&c.model_id))
        };
        self.inner.pool.install(spec, model);
    }

    /// The model `name` names (the default model when absent or empty), loaded on demand;
    /// an adapter's name gives its base model, the lease marked with the adapter.
    pub async fn model(&self, name: Option<&str>) -> Result<Lease, ApiError> {
        if let Some(entry) = name.and_then(|n| self.inner.adapters.get(n)) {
            return crate::lora::lease(self, entry).await;
        }
        self.inner.pool.get(name, None).await
    }

    /// The LoRA adapters requests may name.
    pub fn adapters(&self) -> &AdapterTable {
        &self.inner.adapters
    }

    pub fn pool(&self) -> &ModelPool {
        &self.inner.pool
    }

    pub fn is_ready(&self) -> bool {
        self.inner.pool.is_ready()
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
}
