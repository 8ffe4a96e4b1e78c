//! [`ModelPool`]: every model the server can serve, loaded when first asked for, kept warm
//! for its keep-alive, and unloaded least recently used first when the memory budget would
//! be exceeded.
//!
//! # How it works
//!
//! * A request asks [`ModelPool::get`] for a model by name and gets a [`Lease`]: the loaded
//!   model plus a use count that keeps it from being unloaded while the request (or its
//!   stream) lives. When the last lease of a model drops, its keep-alive clock starts.
//! * A model not loaded yet is resolved through the [`Catalog`], its memory is estimated (file
//!   size plus KV cache) and room is made by unloading idle models, least recently used
//!   first. Loading runs on a blocking thread; every request for that model meanwhile waits
//!   on the same load (one load, many waiters), and all of them get its error if it fails.
//!   When the budget is held by busy models, the request waits until one becomes idle.
//! * A reaper task unloads idle models whose keep-alive has run out. Unloading shuts the
//!   model's engine down on a blocking thread, which frees its weights and KV cache.
//! * Every engine of the pool shares one [`ComputeGate`]: loaded models take turns on the
//!   cores instead of oversubscribing them.
//!
//! The lock around the table is a plain mutex held for bookkeeping only, never across an
//! await or a load.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use owl_engine::ComputeGate;
use tokio::sync::{watch, Notify};

use crate::catalog::{same_name, Catalog, ModelSpec};
use crate::config::ModelOptions;
use crate::error::ApiError;
use crate::model::LoadedModel;

/// How long an idle model stays loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepAlive {
    /// Unloaded this long after its last request ends (zero: at once).
    For(Duration),
    /// Never unloaded for idleness (still unloaded to make room).
    Forever,
}

impl KeepAlive {
    /// Ollama's default: five minutes.
    pub const DEFAULT: KeepAlive = KeepAlive::For(Duration::from_secs(300));

    /// Parses Ollama's forms: a number of seconds (negative: forever) or a duration string
    /// such as `"10m"`, `"1h30m"`, `"45s"`, `"500ms"`, `"-1"`.
    pub fn parse_json(v: &serde_json::Value) -> Result<KeepAlive, String> {
        match v {
            serde_json::Value::Number(n) => {
                let secs = n.as_f64().ok_or("not a number")?;
                Ok(Self::from_secs(secs))
            }
            serde_json::Value::String(s) => Self::parse(s),
            _ => Err("give a duration such as \"5m\" or a number of seconds".into()),
        }
    }

    /// Parses a duration string (see [`KeepAlive::parse_json`]).
    pub fn parse(s: &str) -> Result<KeepAlive, String> {
        let s = s.trim();
        if let Ok(secs) = s.parse::<f64>() {
            return Ok(Self::from_secs(secs));
        }
        if let Some(rest) = s.strip_prefix('-') {
            return Self::parse(rest).map(|_| KeepAlive::Forever);
        }
        let mut total = 0f64;
        let mut num = String::new();
        let mut chars = s.chars().peekable();
        let bad =
            || format!("cannot read {s:?} as a duration (e.g. \"5m\", \"1h\", \"30s\", \"-1\")");
        while let Some(c) = chars.next() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
                continue;
            }
            let mut unit = c.to_string();
            while let Some(&n) = chars.peek() {
                if n.is_ascii_alphabetic() {
                    unit.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            let v: f64 = num.parse().map_err(|_| bad())?;
            num.clear();
            total += v * match unit.as_str() {
                "ms" => 0.001,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return Err(bad()),
            };
        }
        if !num.is_empty() || s.is_empty() {
            return Err(bad());
        }
        Ok(Self::from_secs(total))
    }

    fn from_secs(secs: f64) -> KeepAlive {
        if secs < 0.0 || !secs.is_finite() {
            KeepAlive::Forever
        } else {
            KeepAlive::For(Duration::from_secs_f64(secs.min(1e9)))
        }
    }
}

/// How the pool loads models and how much it may hold.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// Engine sizes for every model (`path` is ignored).
    pub engine: ModelOptions,
    pub keep_alive: KeepAlive,
    /// Bytes all loaded models together may take (weights plus KV caches).
    pub max_memory: u64,
    /// The model a request without `model` gets.
    pub default_model: Option<String>,
}

/// A loaded model and what the pool knows about it.
pub struct Loaded {
    pub model: LoadedModel,
    pub spec: ModelSpec,
    /// Estimated bytes held: the file plus the KV cache.
    pub bytes: u64,
}

enum SlotState {
    Loading(watch::Receiver<Option<Result<(), String>>>),
    Ready(Arc<Loaded>),
}

struct Slot {
    id: String,
    state: SlotState,
    bytes: u64,
    users: usize,
    last_used: Instant,
    keep_alive: KeepAlive,
    /// When an idle model goes (None while in use or kept forever).
    expires: Option<Instant>,
    /// Installed from outside (tests, `AppState::ready`); never unloaded.
    pinned: bool,
}

/// What `/api/ps` shows of a loaded model.
#[derive(Clone, Debug)]
pub struct LoadedInfo {
    pub spec: ModelSpec,
    pub bytes: u64,
    /// Until when it stays loaded (`None`: kept forever or in use with no end known).
    pub expires_at: Option<SystemTime>,
    pub in_use: usize,
}

/// Every servable model; cheap to clone.
#[derive(Clone)]
pub struct ModelPool {
    shared: Arc<Shared>,
}

struct Shared {
    opts: PoolOptions,
    catalog: Option<Arc<dyn Catalog>>,
    slots: Mutex<Vec<Slot>>,
    changed: Notify,
    gate: ComputeGate,
    /// Set once the server is serving (the default model, if any, loaded once).
    ready: std::sync::atomic::AtomicBool,
}

/// A model in use by one request; the model stays loaded while any lease lives.
pub struct Lease {
    loaded: Arc<Loaded>,
    shared: Arc<Shared>,
    /// The LoRA adapter requests through this lease use (`crate::lora`).
    adapter: Option<Arc<str>>,
}

impl Lease {
    pub fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    pub fn model(&self) -> &LoadedModel {
        &self.loaded.model
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.loaded.spec
    }

    /// The LoRA adapter this lease's requests use.
    pub fn adapter(&self) -> Option<&str> {
        self.adapter.as_deref()
    }

    /// The name replies report: the adapter's when the lease has one, else the model's id.
    pub fn served_id(&self) -> String {
        self.adapter
            .as_deref()
            .map_or_else(|| self.loaded.spec.id.clone(), str::to_string)
    }

    /// This lease, its requests using the adapter `name`.
    pub fn with_adapter(mut self, name: &str) -> Lease {
        self.adapter = Some(Arc::from(name));
        self
    }

    /// Another lease on the same model (a stream outliving its handler holds one).
    pub fn share(&self) -> Lease {
        let mut slots = lock(&self.shared.slots);
        if let Some(s) = slots.iter_mut().find(|s| s.id == self.loaded.spec.id) {
            s.users += 1;
        }
        Lease {
            loaded: Arc::clone(&self.loaded),
            shared: Arc::clone(&self.shared),
            adapter: self.adapter.clone(),
        }
    }
}

impl std::ops::Deref for Lease {
    type Target = LoadedModel;
    fn deref(&self) -> &LoadedModel {
        &self.loaded.model
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut unload = None;
        {
            let mut slots = lock(&self.shared.slots);
            if let Some(i) = slots.iter().position(|s| s.id == self.loaded.spec.id) {
                let s = &mut slots[i];
                s.users = s.users.saturating_sub(1);
                s.last_used = Instant::now();
                if s.users == 0 && !s.pinned {
                    match s.keep_alive {
                        KeepAlive::For(d) if d.is_zero() => unload = Some(slots.remove(i)),
                        KeepAlive::For(d) => s.expires = Some(Instant::now() + d),
                        KeepAlive::Forever => s.expires = None,
                    }
                }
            }
        }
        if let Some(slot) = unload {
            retire(slot);
        }
        self.shared.changed.notify_waiters();
    }
}

fn lock(m: &Mutex<Vec<Slot>>) -> MutexGuard<'_, Vec<Slot>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Shuts an unloaded model's engine down off the async workers.
fn retire(slot: Slot) {
    if let SlotState::Ready(loaded) = slot.state {
        eprintln!("owl serve: unloading {}", slot.id);
        let run = move || loaded.model.engine.shutdown(Duration::from_secs(0));
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::spawn_blocking(run);
        } else {
            run();
        }
    }
}

/// What `make_room` found.
enum Room {
    /// Enough room now (after unloading these).
    Fits(Vec<Slot>),
    /// Busy or loading models hold the memory; wait for one to go idle.
    Busy,
    /// More than the whole budget.
    TooBig,
}

impl ModelPool {
    pub fn new(opts: PoolOptions, catalog: Option<Arc<dyn Catalog>>) -> ModelPool {
        ModelPool {
            shared: Arc::new(Shared {
                opts,
                catalog,
                slots: Mutex::new(Vec::new()),
                changed: Notify::new(),
                gate: ComputeGate::new(),
                ready: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    pub fn options(&self) -> &PoolOptions {
        &self.shared.opts
    }

    pub fn catalog(&self) -> Option<&Arc<dyn Catalog>> {
        self.shared.catalog.as_ref()
    }

    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn set_ready(&self) {
        self.shared
            .ready
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Installs an already loaded model that is never unloaded.
    pub fn install(&self, spec: ModelSpec, model: LoadedModel) {
        let bytes =
            spec.size + (model.engine.kv_bytes() + model.engine.copied_weight_bytes()) as u64;
        let mut slots = lock(&self.shared.slots);
        slots.retain(|s| s.id != spec.id);
        slots.push(Slot {
            id: spec.id.clone(),
            state: SlotState::Ready(Arc::new(Loaded { model, spec, bytes })),
            bytes,
            users: 0,
            last_used: Instant::now(),
            keep_alive: KeepAlive::Forever,
            expires: None,
            pinned: true,
        });
        drop(slots);
        self.set_ready();
        self.shared.changed.notify_waiters();
    }

    /// The id a request's `model` field names: the default when absent or empty.
    fn wanted(&self, name: Option<&str>) -> Result<String, ApiError> {
        match name.filter(|n| !n.is_empty()) {
            Some(n) => Ok(n.to_string()),
            None => self.shared.opts.default_model.clone().ok_or_else(|| {
                ApiError::bad_param("model", "name a model: this server has no default model")
            }),
        }
    }

    /// A loaded model in the table by any of its names.
    fn find<'a>(slots: &'a mut [Slot], name: &str) -> Option<&'a mut Slot> {
        slots.iter_mut().find(|s| same_name(&s.id, name))
    }

    /// The model `name` names (default when `None`), loading it if needed. `keep_alive`
    /// replaces the model's keep-alive (Ollama's per-request field).
    pub async fn get(
        &self,
        name: Option<&str>,
        keep_alive: Option<KeepAlive>,
    ) -> Result<Lease, ApiError> {
        let mut wanted = self.wanted(name)?;
        let mut spec: Option<ModelSpec> = None;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut loading = None;
            {
                let mut slots = lock(&self.shared.slots);
                if let Some(slot) = Self::find(&mut slots, &wanted) {
                    match &slot.state {
                        SlotState::Ready(loaded) => {
                            slot.users += 1;
                            slot.expires = None;
                            if let Some(k) = keep_alive {
                                slot.keep_alive = k;
                            }
                            return Ok(Lease {
                                loaded: Arc::clone(loaded),
                                shared: Arc::clone(&self.shared),
                                adapter: own_adapter(&loaded.spec),
                            });
                        }
                        SlotState::Loading(rx) => loading = Some(rx.clone()),
                    }
                }
            }
            if let Some(mut rx) = loading {
                let r = rx.wait_for(|v| v.is_some()).await.map(|v| v.clone());
                match r {
                    Ok(Some(Err(e))) => return Err(load_error(&wanted, &e)),
                    _ => continue,
                }
            }
            // Not loaded: resolve (once) and load it.
            let s = match &spec {
                Some(s) => s.clone(),
                None => {
                    let s = self.resolve(&wanted).await?;
                    spec = Some(s.clone());
                    if s.id != wanted {
                        // Look again under its canonical id (it may be loaded by that name).
                        wanted = s.id.clone();
                        continue;
                    }
                    s
                }
            };
            let estimate = self.estimate(&s);
            let room = {
                let mut slots = lock(&self.shared.slots);
                if Self::find(&mut slots, &s.id).is_some() {
                    continue;
                }
                match self.make_room(&mut slots, estimate) {
                    Room::Fits(evicted) => {
                        let (tx, rx) = watch::channel(None);
                        slots.push(Slot {
                            id: s.id.clone(),
                            state: SlotState::Loading(rx),
                            bytes: estimate,
                            users: 0,
                            last_used: Instant::now(),
                            keep_alive: keep_alive.unwrap_or(self.shared.opts.keep_alive),
                            expires: None,
                            pinned: false,
                        });
                        Some((evicted, tx))
                    }
                    Room::Busy => None,
                    Room::TooBig => {
                        return Err(ApiError::new(
                            axum::http::StatusCode::INSUFFICIENT_STORAGE,
                            "server_error",
                            format!(
                                "model {} needs about {} MiB, more than the server's memory budget of {} MiB (--max-memory)",
                                s.id,
                                estimate >> 20,
                                self.shared.opts.max_memory >> 20
                            ),
                        )
                        .with_param("model"))
                    }
                }
            };
            match room {
                Some((evicted, tx)) => {
                    for e in evicted {
                        retire(e);
                    }
                    self.spawn_load(s, tx);
                }
                None => {
                    // Wait for a busy model to go idle (or anything else to change).
                    let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
                }
            }
        }
    }

    async fn resolve(&self, name: &str) -> Result<ModelSpec, ApiError> {
        let Some(catalog) = self.shared.catalog.clone() else {
            return Err(if self.is_ready() {
                not_found(name)
            } else {
                ApiError::loading()
            });
        };
        let n = name.to_string();
        let r = tokio::task::spawn_blocking(move || catalog.resolve(&n))
            .await
            .map_err(|e| ApiError::server(format!("looking up the model failed: {e}")))?;
        r.map_err(|e| e.into_api(name))
    }

    /// Bytes a model will take: its file plus a KV cache of the configured size (f16 K and V
    /// rows for every layer, from the file's header; the file alone if the header says too
    /// little).
    fn estimate(&self, spec: &ModelSpec) -> u64 {
        spec.size + kv_estimate(&spec.path, &self.shared.opts.engine).unwrap_or(0)
    }

    /// Picks idle models to unload (least recently used first) until `need` more bytes fit.
    fn make_room(&self, slots: &mut Vec<Slot>, need: u64) -> Room {
        let budget = self.shared.opts.max_memory;
        let used: u64 = slots.iter().map(|s| s.bytes).sum();
        if used + need <= budget {
            return Room::Fits(Vec::new());
        }
        let mut idle: Vec<(Instant, String, u64)> = slots
            .iter()
            .filter(|s| s.users == 0 && !s.pinned && matches!(s.state, SlotState::Ready(_)))
            .map(|s| (s.last_used, s.id.clone(), s.bytes))
            .collect();
        idle.sort();
        let mut freed = 0;
        let mut victims = Vec::new();
        for (_, id, bytes) in idle {
            if used - freed + need <= budget {
                break;
            }
            freed += bytes;
            victims.push(id);
        }
        if used - freed + need > budget {
            let others_can_go = slots.iter().any(|s| !s.pinned);
            return if need > budget || !others_can_go {
                Room::TooBig
            } else {
                Room::Busy
            };
        }
        let mut evicted = Vec::new();
        for id in victims {
            if let Some(i) = slots.iter().position(|s| s.id == id) {
                evicted.push(slots.remove(i));
            }
        }
        Room::Fits(evicted)
    }

    fn spawn_load(&self, spec: ModelSpec, tx: watch::Sender<Option<Result<(), String>>>) {
        let shared = Arc::clone(&self.shared);
        let mut opts = shared.opts.engine.clone();
        opts.path = spec.path.clone();
        let gate = shared.gate.clone();
        tokio::spawn(async move {
            let t0 = Instant::now();
            let id = spec.id.clone();
            let id_for_adapter = id.clone();
            eprintln!("owl serve: loading {id}");
            let template = spec.defaults.template.clone();
            let adapter = spec.adapter.clone();
            let r = tokio::task::spawn_blocking(move || {
                let mut m = crate::model::load_gated(&opts, Some(gate))?;
                if let Some(path) = adapter {
                    // A derived model's adapter, registered under the model's own id.
                    let done = m
                        .engine
                        .load_adapter(&id_for_adapter, &path, 1.0)
                        .map_err(anyhow::Error::from)
                        .and_then(|rx| {
                            rx.blocking_recv()
                                .map_err(|_| anyhow::anyhow!("the engine stopped"))?
                                .map_err(anyhow::Error::from)
                        });
                    if let Err(e) = done {
                        m.engine.shutdown(Duration::from_secs(0));
                        return Err(e);
                    }
                }
                if let Some(source) = template {
                    // A derived model's template replaces the file's.
                    let piece = |id: Option<u32>| {
                        id.map(|i| {
                            String::from_utf8_lossy(&m.tokenizer.token_to_piece(i, true))
                                .into_owned()
                        })
                        .unwrap_or_default()
                    };
                    let (bos, eos) = (piece(m.tokenizer.bos()), piece(m.tokenizer.eos()));
                    let t = owl_text::ChatTemplate::new(&source, &bos, &eos).map_err(|e| {
                        anyhow::anyhow!("the model's chat template does not compile: {e}")
                    })?;
                    m.template = Some(t);
                }
                Ok::<_, anyhow::Error>(m)
            })
            .await;
            let outcome = match r {
                Ok(Ok(model)) => {
                    let bytes = spec.size
                        + (model.engine.kv_bytes() + model.engine.copied_weight_bytes()) as u64;
                    eprintln!(
                        "owl serve: model {id} ready in {:.1}s ({} MiB with its KV cache)",
                        t0.elapsed().as_secs_f64(),
                        bytes >> 20
                    );
                    let mut slots = lock(&shared.slots);
                    match slots.iter_mut().find(|s| s.id == id) {
                        Some(slot) => {
                            slot.bytes = bytes;
                            slot.last_used = Instant::now();
                            if slot.users == 0 {
                                if let KeepAlive::For(d) = slot.keep_alive {
                                    slot.expires = Some(Instant::now() + d);
                                }
                            }
                            slot.state = SlotState::Ready(Arc::new(Loaded { model, spec, bytes }));
                        }
                        None => {
                            drop(slots);
                            model.engine.shutdown(Duration::from_secs(0));
                        }
                    }
                    Ok(())
                }
                Ok(Err(e)) => Err(format!("{e:#}")),
                Err(e) => Err(format!("loading panicked: {e}")),
            };
            if let Err(e) = &outcome {
                eprintln!("owl serve: cannot load {id}: {e}");
                lock(&shared.slots).retain(|s| s.id != id);
            }
            let _ = tx.send(Some(outcome));
            shared.changed.notify_waiters();
        });
    }

    /// Loads `name` now and keeps it for `keep_alive` (Ollama's empty `generate`).
    pub async fn preload(
        &self,
        name: Option<&str>,
        keep_alive: Option<KeepAlive>,
    ) -> Result<ModelSpec, ApiError> {
        let lease = self.get(name, keep_alive).await?;
        Ok(lease.spec().clone())
    }

    /// Unloads `name` now if it is loaded and idle, or as soon as its last request ends.
    pub fn unload(&self, name: &str) -> Option<ModelSpec> {
        let mut slots = lock(&self.shared.slots);
        let i = slots.iter().position(|s| same_name(&s.id, name))?;
        let spec = match &slots[i].state {
            SlotState::Ready(l) => l.spec.clone(),
            SlotState::Loading(_) => return None,
        };
        if slots[i].pinned {
            return Some(spec);
        }
        if slots[i].users == 0 {
            let slot = slots.remove(i);
            drop(slots);
            retire(slot);
            self.shared.changed.notify_waiters();
        } else {
            slots[i].keep_alive = KeepAlive::For(Duration::ZERO);
        }
        Some(spec)
    }

    /// Unloads idle models whose keep-alive ran out; returns how many.
    pub fn reap(&self) -> usize {
        let now = Instant::now();
        let mut gone = Vec::new();
        {
            let mut slots = lock(&self.shared.slots);
            let mut i = 0;
            while i < slots.len() {
                let s = &slots[i];
                if s.users == 0 && !s.pinned && s.expires.is_some_and(|e| e <= now) {
                    gone.push(slots.remove(i));
                } else {
                    i += 1;
                }
            }
        }
        let n = gone.len();
        for s in gone {
            retire(s);
        }
        if n > 0 {
            self.shared.changed.notify_waiters();
        }
        n
    }

    /// Runs [`ModelPool::reap`] every quarter second until the runtime stops.
    pub fn spawn_reaper(&self) {
        let pool = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                pool.reap();
            }
        });
    }

    /// The loaded models (not those still loading).
    pub fn loaded(&self) -> Vec<LoadedInfo> {
        let slots = lock(&self.shared.slots);
        let now = Instant::now();
        let wall = SystemTime::now();
        slots
            .iter()
            .filter_map(|s| match &s.state {
                SlotState::Ready(l) => Some(LoadedInfo {
                    spec: l.spec.clone(),
                    bytes: s.bytes,
                    expires_at: match (s.users, s.expires, s.keep_alive) {
                        (_, _, _) if s.pinned => None,
                        (0, Some(e), _) => Some(wall + e.saturating_duration_since(now)),
                        (_, _, KeepAlive::For(d)) => Some(wall + d),
                        _ => None,
                    },
                    in_use: s.users,
                }),
                SlotState::Loading(_) => None,
            })
            .collect()
    }

    /// Bytes held by loaded and loading models.
    pub fn used_bytes(&self) -> u64 {
        lock(&self.shared.slots).iter().map(|s| s.bytes).sum()
    }

    /// Shuts every engine down (server exit): running requests get `grace` to finish.
    pub fn shutdown(&self, grace: Duration) {
        let slots: Vec<Slot> = std::mem::take(&mut *lock(&self.shared.slots));
        std::thread::scope(|s| {
            for slot in &slots {
                if let SlotState::Ready(l) = &slot.state {
                    let l = Arc::clone(l);
                    s.spawn(move || l.model.engine.shutdown(grace));
                }
            }
        });
    }

    /// Engine statistics of every loaded model, for `/metrics`.
    pub fn each_loaded(&self, mut f: impl FnMut(&Loaded)) {
        let slots = lock(&self.shared.slots);
        for s in slots.iter() {
            if let SlotState::Ready(l) = &s.state {
                f(l);
            }
        }
    }
}

/// The adapter a lease on `spec` runs with: a model that carries one ([`ModelSpec::adapter`])
/// has it registered in its engine under its own id.
fn own_adapter(spec: &ModelSpec) -> Option<Arc<str>> {
    spec.adapter.as_ref().map(|_| Arc::from(spec.id.as_str()))
}

fn not_found(name: &str) -> ApiError {
    crate::catalog::CatalogError::NotFound.into_api(name)
}

fn load_error(name: &str, why: &str) -> ApiError {
    ApiError::server(format!("cannot load model '{name}': {why}")).with_code("model_load_failed")
}

/// The KV cache's bytes for `opts`, from the GGUF header (f16 K and V, every layer).
fn kv_estimate(path: &std::path::Path, opts: &ModelOptions) -> Option<u64> {
    let g = owl_engine::gguf_header(path)?;
    let ctx = opts
        .ctx_size
        .unwrap_or(g.n_ctx_train.min(owl_engine::DEFAULT_CTX_CAP));
    let tokens = opts.kv_tokens.unwrap_or(ctx * opts.parallel.max(1));
    Some((tokens as u64) * (g.n_layer as u64) * (g.kv_dim as u64) * 2 * 2)
}
