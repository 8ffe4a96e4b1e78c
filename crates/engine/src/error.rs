//! What can go wrong opening a model or starting the engine (per-request failures travel as
//! events, `api::FinishReason`; refusals at submission as `api::SubmitError`).

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot load {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("bad engine configuration: {0}")]
    BadConfig(String),
}
