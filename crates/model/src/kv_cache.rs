//! The KV cache: f16 keys and values per sequence slot, per layer, per position.
//!
//! Layout of one slot: `[n_layer][n_ctx][kv_dim]` for K and the same for V, so the rows of one
//! KV head are `kv_dim` apart. Memory is reserved zeroed (the OS maps pages lazily), so a large
//! context costs address space until it is used. Slots are contiguous for now; the paged cache of
//! the server replaces this type behind the same methods.

use half::f16;

use crate::ModelError;

pub struct KvCache {
    n_layer: usize,
    n_ctx: usize,
    kv_dim: usize,
    /// [n_slots][n_layer][n_ctx][kv_dim]
    k: Vec<f16>,
    /// [n_slots][n_layer][n_ctx][kv_dim]
    v: Vec<f16>,
    n_slots: usize,
}

impl KvCache {
    pub fn new(n_layer: usize, n_ctx: usize, kv_dim: usize, n_slots: usize) -> KvCache {
        let n = n_slots * n_layer * n_ctx * kv_dim;
        KvCache {
            n_layer,
            n_ctx,
            kv_dim,
            k: vec![f16::ZERO; n],
            v: vec![f16::ZERO; n],
            n_slots,
        }
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    pub fn n_slots(&self) -> usize {
        self.n_slots
    }

    pub fn kv_dim(&self) -> usize {
        self.kv_dim
    }

    /// Bytes the cache occupies when full.
    pub fn bytes(&self) -> usize {
        (self.k.len() + self.v.len()) * 2
    }

    fn base(&self, slot: usize, layer: usize) -> usize {
        (slot * self.n_layer + layer) * self.n_ctx * self.kv_dim
    }

    /// Checks that `slot` exists and positions `pos0..pos0+len` fit.
    pub fn check(&self, slot: usize, pos0: usize, len: usize) -> Result<(), ModelError> {
        if slot >= self.n_slots {
            return Err(ModelError::BadSlot { slot, n_slots: self.n_slots });
        }
        if pos0 + len > self.n_ctx {
            return Err(ModelError::ContextFull { pos: pos0 + len, n_ctx: self.n_ctx });
        }
        Ok(())
    }

    /// Writes the K and V rows (`[kv_dim]` each) at `pos`.
    pub fn store(&mut self, slot: usize, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let at = self.base(slot, layer) + pos * self.kv_dim;
        for (dst, &x) in self.k[at..at + self.kv_dim].iter_mut().zip(k) {
            *dst = f16::from_f32(x);
        }
        for (dst, &x) in self.v[at..at + self.kv_dim].iter_mut().zip(v) {
            *dst = f16::from_f32(x);
        }
    }

    /// K and V of one layer of one slot: `[n_ctx][kv_dim]` each.
    pub fn layer(&self, slot: usize, layer: usize) -> (&[f16], &[f16]) {
        let at = self.base(slot, layer);
        let n = self.n_ctx * self.kv_dim;
        (&self.k[at..at + n], &self.v[at..at + n])
    }
}
