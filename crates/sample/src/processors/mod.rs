//! The logits processors, one per file, in default chain order.

mod logit_bias;
mod min_p;
mod penalties;
mod temperature;
mod top_k;
mod top_p;

pub use logit_bias::LogitBias;
pub use min_p::MinP;
pub use penalties::Penalties;
pub use temperature::Temperature;
pub use top_k::TopK;
pub use top_p::TopP;
