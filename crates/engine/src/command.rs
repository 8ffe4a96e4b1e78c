//! What the handle sends to the engine thread. A leaf module, so that `handle` (the sender)
//! and `scheduler` (the receiver) both depend on it and not on each other.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::api::{Event, Request};

pub(crate) enum Command {
    /// Queue a request; its events go to `events`; `cancel` is set when its stream is dropped.
    Submit {
        req: Box<Request>,
        events: UnboundedSender<Event>,
        cancel: Arc<AtomicBool>,
    },
    /// Embed `tokens` (mean of the final-normed hidden states, L2-normalised) between steps.
    Embed {
        tokens: Vec<u32>,
        reply: tokio::sync::oneshot::Sender<Result<Vec<f32>, String>>,
    },
    /// Stop taking requests; cancel what is still running after `grace`.
    Shutdown { grace: Duration },
}
