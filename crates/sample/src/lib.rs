//! owl-sample: turns a step's logits into the next token.
//!
//! # Why it is built this way
//!
//! * **A chain of small processors plus one selector.** Each sampling knob
//!   (logit bias, penalties, top-k, top-p, min-p, temperature) is a
//!   [`LogitsProcessor`] in its own file that edits a shared [`Candidates`]
//!   list; a [`Selector`] ([`Greedy`] or the seeded [`Dist`]) picks the token.
//!   Each piece is tiny and testable alone, a knob at its "off" value is simply
//!   left out of the chain, and the order is explicit in [`Sampler::new`]. The
//!   order is llama.cpp's default (bias → penalties → top-k → top-p → min-p →
//!   temperature → draw) so results are comparable with that reference;
//!   temperature comes last, so filters see the untempered distribution.
//! * **Candidates carry layout facts.** The list knows whether it is still the
//!   identity layout (O(1) lookup by id, used by bias and penalties) and
//!   whether it is sorted (top-p/min-p skip re-sorting after top-k). Top-k
//!   uses partial selection and top-p a 256-entry prefix first, so a 150k
//!   vocabulary is never fully sorted in the common case.
//! * **Deterministic everywhere.** Ties always go to the lowest token id, NaN
//!   logits count as `-inf`, and randomness comes from our own xoshiro256**
//!   seeded through splitmix64 (no `rand` dependency whose streams may change
//!   between versions), consuming exactly one 64-bit draw per sampled token.
//!   The same seed and inputs give the same tokens on every platform.
//! * **No allocation per token.** All scratch buffers live in the [`Sampler`]
//!   and are reused; once warm, [`Sampler::sample`] does not allocate.
//! * **No panics on input.** Parameters are validated once by
//!   [`SamplingParams::validate`] (called by [`Sampler::new`]); degenerate
//!   logits (empty, all banned, infinities) produce a defined token instead of
//!   a panic.

mod candidates;
mod error;
mod logprobs;
mod params;
pub mod processors;
mod rng;
mod sampler;
pub mod selectors;

pub use candidates::{Candidate, Candidates, LogitsProcessor, Selector};
pub use error::SampleError;
pub use logprobs::top_logprobs;
pub use params::SamplingParams;
pub use rng::{splitmix64, Xoshiro256StarStar};
pub use sampler::{argmax_of_logits, Sampler};
pub use selectors::{Dist, Greedy};
