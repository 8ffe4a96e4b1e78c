//! LoRA adapters at inference: `y = W x + scale · B (A x)` for each adapted weight matrix.
//!
//! An adapter is a set of low-rank pairs (A: [rank, n_in], B: [n_out, rank]) over some of a
//! base model's matrices, learnt by fine-tuning while W stayed frozen. Applying it costs a
//! small fraction of the base matmul, so one engine serves the base model and any number of
//! adapters side by side instead of one merged copy of the weights per fine-tune.
//!
//! The one on-disk form owl reads here is llama.cpp's GGUF adapter (`general.type = adapter`,
//! `adapter.type = lora`, `adapter.lora.alpha`, tensors `<base tensor>.lora_a` / `.lora_b`);
//! `owl_hf::open_adapter` turns a PEFT directory into that same form, as llama.cpp's
//! `convert_lora_to_gguf.py` would. Loading ([`load`]) checks every pair against the base
//! model's adaptable matrices ([`crate::Model::lora_targets`]), so a forward pass never meets
//! a pair of the wrong shape; an adapter naming a matrix owl does not adapt is refused, never
//! silently half-applied.
//!
//! In a forward pass each batch chunk may name an adapter ([`crate::SeqChunk::adapter`]).
//! [`apply::LoraRows`] groups the batch rows by adapter once per pass, and every adapted
//! matmul adds the low-rank product group by group ([`apply`]): one pass per group of rows,
//! never one pass per adapter over the whole batch. Each row's product is computed alone, in
//! a fixed order, so a sequence's output does not depend on what shares its batch.

pub mod apply;
mod error;
pub mod load;

pub use apply::LoraRows;
pub use error::LoraError;
pub use load::load;

/// The weight matrices an adapter may adapt, by role inside a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    AttnQ,
    AttnK,
    AttnV,
    AttnOut,
    FfnGate,
    FfnUp,
    FfnDown,
}

impl Target {
    pub const ALL: [Target; 7] = [
        Target::AttnQ,
        Target::AttnK,
        Target::AttnV,
        Target::AttnOut,
        Target::FfnGate,
        Target::FfnUp,
        Target::FfnDown,
    ];

    /// llama.cpp's tensor role (`blk.N.{role}.weight`).
    pub fn role(self) -> &'static str {
        match self {
            Target::AttnQ => "attn_q",
            Target::AttnK => "attn_k",
            Target::AttnV => "attn_v",
            Target::AttnOut => "attn_output",
            Target::FfnGate => "ffn_gate",
            Target::FfnUp => "ffn_up",
            Target::FfnDown => "ffn_down",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One matrix of the base model an adapter may adapt, as the model reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoraTarget {
    pub layer: usize,
    pub target: Target,
    /// Columns of W (the input width).
    pub n_in: usize,
    /// Rows of W (the output width).
    pub n_out: usize,
}

impl LoraTarget {
    /// The base tensor's GGUF name (`blk.3.attn_q.weight`).
    pub fn name(&self) -> String {
        format!("blk.{}.{}.weight", self.layer, self.target.role())
    }
}

/// The matrices a GGUF model file holds that an adapter may adapt, read from its tensor
/// names and shapes alone (`blk.N.{role}.weight`, two dims), without loading the model. A
/// model may adapt fewer (a mixture-of-experts FFN, an architecture without LoRA support):
/// [`crate::Model::lora_targets`] is the truth once it is loaded; this is for checking an
/// adapter against a base model cheaply (`owl create --adapter`).
pub fn targets_in_file(file: &owl_gguf::GgufFile) -> Vec<LoraTarget> {
    let mut out = Vec::new();
    for t in file.tensors() {
        let Some(rest) = t.name.strip_prefix("blk.") else {
            continue;
        };
        let Some((layer, role)) = rest.split_once('.') else {
            continue;
        };
        let (Ok(layer), Some(role)) = (layer.parse::<usize>(), role.strip_suffix(".weight")) else {
            continue;
        };
        let Some(target) = Target::ALL.into_iter().find(|r| r.role() == role) else {
            continue;
        };
        if let [n_in, n_out] = t.dims[..] {
            out.push(LoraTarget {
                layer,
                target,
                n_in: n_in as usize,
                n_out: n_out as usize,
            });
        }
    }
    out
}

/// One low-rank pair, dequantized to f32.
#[derive(Clone, Debug)]
pub struct LoraPair {
    pub rank: usize,
    pub n_in: usize,
    pub n_out: usize,
    /// [rank, n_in], row-major.
    pub a: Vec<f32>,
    /// [n_out, rank], row-major.
    pub b: Vec<f32>,
    /// `user_scale · alpha / rank` (llama.cpp's rule; `user_scale` alone when alpha is 0).
    pub scale: f32,
}

/// A loaded adapter: its pairs by (layer, target).
#[derive(Debug)]
pub struct LoraAdapter {
    /// Where it was read from (for messages).
    pub source: String,
    pub alpha: f32,
    /// The scale the user asked for (1 by default).
    pub user_scale: f32,
    layers: Vec<[Option<LoraPair>; 7]>,
}

impl LoraAdapter {
    /// The pair adapting `target` of `layer`, if the adapter has one.
    pub fn pair(&self, layer: usize, target: Target) -> Option<&LoraPair> {
        self.layers.get(layer)?[target.index()].as_ref()
    }

    /// Every pair with its layer and target, layer by layer.
    pub fn pairs(&self) -> impl Iterator<Item = (usize, Target, &LoraPair)> + '_ {
        self.layers.iter().enumerate().flat_map(|(li, l)| {
            Target::ALL
                .iter()
                .filter_map(move |&t| l[t.index()].as_ref().map(|p| (li, t, p)))
        })
    }

    /// Number of adapted matrices.
    pub fn n_pairs(&self) -> usize {
        self.layers.iter().flatten().flatten().count()
    }

    /// Bytes its f32 pairs occupy.
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .flatten()
            .map(|p| (p.a.len() + p.b.len()) * 4)
            .sum()
    }
}
