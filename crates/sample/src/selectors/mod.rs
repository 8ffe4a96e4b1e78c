//! The final selectors, one per file.

mod dist;
mod greedy;

pub use dist::Dist;
pub use greedy::Greedy;
