//! The KV cache: f16 keys and values per sequence slot and layer.
//!
//! Per slot and layer, K is `[n_ctx_pad][kv_dim]` (a row per position) and V is stored
//! transposed, `[kv_dim][n_ctx_pad]` (a row per dimension), the layout llama.cpp uses without
//! flash attention: attention's output is then one contiguous f16 dot product per dimension.
//! `n_ctx_pad` is the context rounded up to `KV_PAD`. Memory is reserved zeroed (the OS maps
//! pages lazily), so a large context costs address space until it is used. Slots are contiguous
//! for now; the server's paged cache replaces this type behind the same methods.

use half::f16;
use owl_kernels::attention::pad_kv;

use crate::ModelError;

pub struct KvCache {
    n_layer: usize,
    n_ctx: usize,
    n_ctx_pad: usize,
    kv_dim: usize,
    n_slots: usize,
    /// [n_slots][n_layer][n_ctx_pad][kv_dim]
    k: Vec<f16>,
    /// [n_slots][n_layer][kv_dim][n_ctx_pad]
    vt: Vec<f16>,
}

impl KvCache {
    pub fn new(n_layer: usize, n_ctx: usize, kv_dim: usize, n_slots: usize) -> KvCache {
        let n_ctx_pad = pad_kv(n_ctx);
        let n = n_slots * n_layer * n_ctx_pad * kv_dim;
        KvCache {
            n_layer,
            n_ctx,
            n_ctx_pad,
            kv_dim,
            n_slots,
            k: vec![f16::ZERO; n],
            vt: vec![f16::ZERO; n],
        }
    }

    /// Positions a sequence may hold.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Row length of the transposed V (positions rounded up to the padding).
    pub fn n_ctx_pad(&self) -> usize {
        self.n_ctx_pad
    }

    pub fn n_slots(&self) -> usize {
        self.n_slots
    }

    pub fn kv_dim(&self) -> usize {
        self.kv_dim
    }

    /// Bytes the cache occupies when full.
    pub fn bytes(&self) -> usize {
        (self.k.len() + self.vt.len()) * 2
    }

    fn base(&self, slot: usize, layer: usize) -> usize {
        (slot * self.n_layer + layer) * self.n_ctx_pad * self.kv_dim
    }

    /// Checks that `slot` exists and positions `pos0..pos0+len` fit.
    pub fn check(&self, slot: usize, pos0: usize, len: usize) -> Result<(), ModelError> {
        if slot >= self.n_slots {
            return Err(ModelError::BadSlot {
                slot,
                n_slots: self.n_slots,
            });
        }
        if pos0 + len > self.n_ctx {
            return Err(ModelError::ContextFull {
                pos: pos0 + len,
                n_ctx: self.n_ctx,
            });
        }
        Ok(())
    }

    /// Writes the K and V rows (`[kv_dim]` each) of position `pos`.
    pub fn store(&mut self, slot: usize, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let base = self.base(slot, layer);
        let at = base + pos * self.kv_dim;
        for (dst, &x) in self.k[at..at + self.kv_dim].iter_mut().zip(k) {
            *dst = f16::from_f32(x);
        }
        for (d, &x) in v.iter().enumerate().take(self.kv_dim) {
            self.vt[base + d * self.n_ctx_pad + pos] = f16::from_f32(x);
        }
    }

    /// K (`[n_ctx_pad][kv_dim]`) and transposed V (`[kv_dim][n_ctx_pad]`) of one layer of a slot.
    pub fn layer(&self, slot: usize, layer: usize) -> (&[f16], &[f16]) {
        let at = self.base(slot, layer);
        let n = self.n_ctx_pad * self.kv_dim;
        (&self.k[at..at + n], &self.vt[at..at + n])
    }
}
