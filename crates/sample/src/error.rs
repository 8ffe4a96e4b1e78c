//! The crate's error type.

/// Why a [`SamplingParams`](crate::SamplingParams) was rejected, or why a
/// sampling step could not produce a token.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SampleError {
    /// A parameter is out of range; `field` is the `SamplingParams` field name.
    #[error("invalid sampling parameter `{field}`: {reason}")]
    InvalidParam {
        /// Name of the offending `SamplingParams` field.
        field: &'static str,
        /// Human-readable explanation, including the bad value.
        reason: String,
    },
    /// `sample` was called with an empty logits slice (vocabulary of size 0).
    #[error("cannot sample from an empty logits slice")]
    EmptyLogits,
    /// A (custom) processor removed every candidate.
    #[error("logits processor `{processor}` removed every candidate")]
    NoCandidates {
        /// Name of the processor that emptied the candidate list.
        processor: &'static str,
    },
}
