//! Shared building blocks that architecture files assemble.

pub mod affine;
pub mod attend;
pub mod bidir;
pub mod ffn;
pub mod geglu;
pub mod gqa;
pub mod layer_norm;
pub mod mla;
pub mod moe;
pub mod norm;
