//! Storing one layer's K/V rows from several threads at once (`KvCache::layer_writer`).
//!
//! Why: a wide decode step writes one K and one V row per sequence and layer, converting them
//! to f16 and scattering V into its transposed pages; done on the engine thread alone it was
//! about 1 % of a 16-sequence step, with the worker idle. Different positions of the cache are
//! different cells (a page belongs to one slot's table at a time, and a position to one page
//! entry), so rows of different (slot, position) pairs can be written concurrently.

use std::marker::PhantomData;

use half::f16;
use owl_kernels::attention::KV_PAGE;
use owl_kernels::pool::SharedMut;
use owl_kernels::types::ScaleToF16Fn;

use super::KvCache;
use crate::kv_pages::PagePool;

/// Writes the K/V rows of one layer; shared by the threads of one forward pass.
pub struct LayerWriter<'a> {
    kv_dim: usize,
    page_elems: usize,
    /// The layer's index within its group's pages.
    index: usize,
    pages: &'a PagePool,
    k: SharedMut<f16>,
    k_len: usize,
    vt: SharedMut<f16>,
    vt_len: usize,
    /// The writer holds the cache's exclusive borrow for as long as it lives.
    _cache: PhantomData<&'a mut KvCache>,
}

impl KvCache {
    /// A writer for `layer`'s rows, usable from many threads (see [`LayerWriter::store`]).
    pub fn layer_writer(&mut self, layer: usize) -> LayerWriter<'_> {
        let kv_dim = self.kv_dim;
        let (g, index) = self.group_mut(layer);
        LayerWriter {
            kv_dim,
            page_elems: g.page_elems,
            index,
            k_len: g.k.len(),
            k: SharedMut::new(&mut g.k),
            vt_len: g.vt.len(),
            vt: SharedMut::new(&mut g.vt),
            pages: &g.pages,
            _cache: PhantomData,
        }
    }
}

// SAFETY: the writer is a borrow of the cache (`&mut`, held for its lifetime) whose only
// mutating entry point, `store`, requires its callers to write disjoint cells; the page table
// is only read.
unsafe impl Sync for LayerWriter<'_> {}

impl LayerWriter<'_> {
    /// Writes the K and V rows (`[kv_dim]` each) of position `pos` of `slot`, whose page must
    /// have been given by `ensure`, converted by `to_f16` with a scale of 1 (exact, so every
    /// ISA rounds the same values to the same halves).
    ///
    /// # Safety
    /// No other thread stores the same `(slot, pos)` while this call runs. (Distinct pairs are
    /// distinct cells: the page table gives each page to one slot.)
    pub unsafe fn store(
        &self,
        to_f16: ScaleToF16Fn,
        slot: usize,
        pos: usize,
        k: &[f32],
        v: &[f32],
    ) {
        let kv_dim = self.kv_dim;
        let page = self.pages.page_of(slot, pos);
        let base = page * self.page_elems + self.index * KV_PAGE * kv_dim;
        let j = pos % KV_PAGE;
        let at = base + j * kv_dim;
        assert!(
            at + kv_dim <= self.k_len,
            "kv store: position outside the cache"
        );
        // SAFETY: inside `k` (asserted); the cells of (slot, pos) are this call's alone
        // (caller's contract), and the cache outlives the writer.
        to_f16(&k[..kv_dim], 1.0, unsafe { self.k.slice(at, kv_dim) });
        if self.vt_len == 0 {
            return;
        }
        // V is stored transposed: converted a piece at a time, then scattered.
        let last = base + (kv_dim - 1) * KV_PAGE + j;
        assert!(last < self.vt_len, "kv store: position outside the cache");
        let mut buf = [f16::ZERO; 64];
        for (c, piece) in v[..kv_dim].chunks(buf.len()).enumerate() {
            let halves = &mut buf[..piece.len()];
            to_f16(piece, 1.0, halves);
            for (i, &h) in halves.iter().enumerate() {
                // SAFETY: at most `last` (asserted inside `vt`); the cell is (slot, pos)'s.
                unsafe { self.vt.write(base + (64 * c + i) * KV_PAGE + j, h) };
            }
        }
    }
}
