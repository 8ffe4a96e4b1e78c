//! What the handle sends to the engine thread. A leaf module, so that `handle` (the sender)
//! and `scheduler` (the receiver) both depend on it and not on each other.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::adapters::{Adapter, AdapterError, AdapterInfo};
use crate::api::{Event, Request};

pub(crate) enum Command {
    /// Queue a request; its events go to `events`; `cancel` is set when its stream is dropped.
    Submit {
        req: Box<Request>,
        events: UnboundedSender<Event>,
        cancel: Arc<AtomicBool>,
    },
    /// Embed every input (pooled as the model says, L2-normalised when `normalize`) between
    /// steps; one vector per input, in order.
    Embed {
        inputs: Vec<Vec<u32>>,
        normalize: bool,
        reply: tokio::sync::oneshot::Sender<Result<Vec<Vec<f32>>, String>>,
    },
    /// Register a loaded LoRA adapter under its name.
    LoadAdapter {
        adapter: Arc<Adapter>,
        reply: tokio::sync::oneshot::Sender<Result<(), AdapterError>>,
    },
    /// Forget an adapter's name (sequences using it finish with it).
    UnloadAdapter {
        name: String,
        reply: tokio::sync::oneshot::Sender<Result<(), AdapterError>>,
    },
    /// The registered adapters, by name.
    ListAdapters {
        reply: tokio::sync::oneshot::Sender<Vec<AdapterInfo>>,
    },
    /// Stop taking requests; cancel what is still running after `grace`.
    Shutdown { grace: Duration },
}
