//! The paged KV cache: f16 keys and values in fixed-size pages shared by all sequences.
//!
//! Memory is a pool of pages of `KV_PAGE` positions. A page holds, for every layer, K as
//! `[KV_PAGE][kv_dim]` (a row per position) and V transposed, `[kv_dim][KV_PAGE]` (a row per
//! dimension), the layout llama.cpp uses without flash attention: attention's output is then
//! one f16 dot product per dimension, walking the sequence's pages in order (the paged dot
//! products sum exactly as over one contiguous row, so paging changes no bit).
//!
//! A slot is a sequence's page table. `ensure` gives a slot pages up to a length, `truncate`
//! and `release` give them back; the pool is fixed at creation, so a scheduler knows exactly
//! when memory runs out (and pre-empts) instead of the process growing. Memory is reserved
//! zeroed, so untouched pages cost address space only. Page tables and the free list are
//! allocated once: growing a sequence allocates nothing.
//!
//! A *latent* cache (`new_latent`, multi-head latent attention) stores K rows only: V is a
//! prefix of each K row (the compressed latent), so caching it again would double the memory;
//! attention transposes the latent per step instead (`transpose_latent`).

use half::f16;
use owl_kernels::attention::{pad_kv, HeadView, KV_PAGE};

use crate::ModelError;

pub struct KvCache {
    n_layer: usize,
    kv_dim: usize,
    /// Positions one slot may hold.
    n_ctx: usize,
    n_pages: usize,
    /// Halves per page in `k` and `vt`: n_layer * KV_PAGE * kv_dim.
    page_elems: usize,
    /// [n_pages][n_layer][KV_PAGE][kv_dim]
    k: Vec<f16>,
    /// [n_pages][n_layer][kv_dim][KV_PAGE]; empty in a latent (K-only) cache
    vt: Vec<f16>,
    /// Per slot: its pages in position order.
    tables: Vec<Vec<u32>>,
    /// Free page ids (a stack).
    free: Vec<u32>,
}

/// Pages needed for `n` positions.
pub fn pages_for(n: usize) -> usize {
    n.div_ceil(KV_PAGE)
}

impl KvCache {
    /// A cache of `n_pages` pages shared by `n_slots` sequences of up to `n_ctx` positions.
    pub fn new(
        n_layer: usize,
        kv_dim: usize,
        n_ctx: usize,
        n_slots: usize,
        n_pages: usize,
    ) -> KvCache {
        KvCache::build(n_layer, kv_dim, n_ctx, n_slots, n_pages, true)
    }

    /// A K-only cache of rows of `k_dim` (multi-head latent attention: the latent and the
    /// RoPE'd key part, one row per position and layer; V is read from the K rows).
    pub fn new_latent(
        n_layer: usize,
        k_dim: usize,
        n_ctx: usize,
        n_slots: usize,
        n_pages: usize,
    ) -> KvCache {
        KvCache::build(n_layer, k_dim, n_ctx, n_slots, n_pages, false)
    }

    fn build(
        n_layer: usize,
        kv_dim: usize,
        n_ctx: usize,
        n_slots: usize,
        n_pages: usize,
        with_v: bool,
    ) -> KvCache {
        let page_elems = n_layer * KV_PAGE * kv_dim;
        let n = n_pages * page_elems;
        let per_slot = pages_for(n_ctx).min(n_pages);
        KvCache {
            n_layer,
            kv_dim,
            n_ctx,
            n_pages,
            page_elems,
            k: zeroed(n),
            vt: if with_v { zeroed(n) } else { Vec::new() },
            tables: (0..n_slots).map(|_| Vec::with_capacity(per_slot)).collect(),
            free: (0..n_pages as u32).rev().collect(),
        }
    }

    /// A cache with room for every slot's full context.
    pub fn full(n_layer: usize, kv_dim: usize, n_ctx: usize, n_slots: usize) -> KvCache {
        KvCache::new(n_layer, kv_dim, n_ctx, n_slots, n_slots * pages_for(n_ctx))
    }

    /// Positions a sequence may hold.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// The longest padded attention window a sequence can need.
    pub fn n_ctx_pad(&self) -> usize {
        pad_kv(self.n_ctx)
    }

    pub fn n_slots(&self) -> usize {
        self.tables.len()
    }

    pub fn kv_dim(&self) -> usize {
        self.kv_dim
    }

    pub fn n_layer(&self) -> usize {
        self.n_layer
    }

    pub fn n_pages(&self) -> usize {
        self.n_pages
    }

    pub fn free_pages(&self) -> usize {
        self.free.len()
    }

    /// Bytes of one page (K and V, all layers).
    pub fn page_bytes(&self) -> usize {
        let parts = if self.vt.is_empty() { 1 } else { 2 };
        parts * self.page_elems * 2
    }

    /// Bytes of cache one position takes (all layers).
    pub fn bytes_per_position(&self) -> usize {
        self.page_bytes() / KV_PAGE
    }

    /// Bytes the cache occupies when full.
    pub fn bytes(&self) -> usize {
        (self.k.len() + self.vt.len()) * 2
    }

    /// Pages held by `slot`.
    pub fn slot_pages(&self, slot: usize) -> usize {
        self.tables.get(slot).map_or(0, Vec::len)
    }

    fn check_slot(&self, slot: usize) -> Result<(), ModelError> {
        if slot >= self.tables.len() {
            return Err(ModelError::BadSlot {
                slot,
                n_slots: self.tables.len(),
            });
        }
        Ok(())
    }

    /// Free pages `slot` would need to hold `n` positions.
    pub fn pages_needed(&self, slot: usize, n: usize) -> usize {
        pages_for(n).saturating_sub(self.slot_pages(slot))
    }

    /// Gives `slot` pages for positions `0..n`. Fails, changing nothing, when `n` exceeds the
    /// context or the pool has too few free pages.
    pub fn ensure(&mut self, slot: usize, n: usize) -> Result<(), ModelError> {
        self.check_slot(slot)?;
        if n > self.n_ctx {
            return Err(ModelError::ContextFull {
                pos: n,
                n_ctx: self.n_ctx,
            });
        }
        let need = self.pages_needed(slot, n);
        if need > self.free.len() {
            return Err(ModelError::KvFull {
                need,
                free: self.free.len(),
            });
        }
        for _ in 0..need {
            if let Some(p) = self.free.pop() {
                self.tables[slot].push(p);
            }
        }
        Ok(())
    }

    /// Keeps the pages `slot` needs for positions `0..n` and frees the rest.
    pub fn truncate(&mut self, slot: usize, n: usize) {
        let keep = pages_for(n);
        if let Some(t) = self.tables.get_mut(slot) {
            while t.len() > keep {
                if let Some(p) = t.pop() {
                    self.free.push(p);
                }
            }
        }
    }

    /// Frees every page of `slot`.
    pub fn release(&mut self, slot: usize) {
        self.truncate(slot, 0);
    }

    /// Writes the K and V rows (`[kv_dim]` each) of position `pos` of `slot`, whose page must
    /// have been given by `ensure`.
    pub fn store(&mut self, slot: usize, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let page = self.tables[slot][pos / KV_PAGE] as usize;
        let base = page * self.page_elems + layer * KV_PAGE * self.kv_dim;
        let j = pos % KV_PAGE;
        let at = base + j * self.kv_dim;
        for (dst, &x) in self.k[at..at + self.kv_dim].iter_mut().zip(k) {
            *dst = f16::from_f32(x);
        }
        if !self.vt.is_empty() {
            for (d, &x) in v.iter().enumerate().take(self.kv_dim) {
                self.vt[base + d * KV_PAGE + j] = f16::from_f32(x);
            }
        }
    }

    /// Pages of `slot`, in position order.
    pub fn pages(&self, slot: usize) -> &[u32] {
        &self.tables[slot]
    }

    /// Copies the first `width` values of every K row of `layer` in `slot`'s pages into `dst`
    /// transposed, page by page in the V layout (`dst[page][width][KV_PAGE]`, indexed by the
    /// cache's page ids): the latent of multi-head latent attention read as V.
    pub fn transpose_latent(&self, slot: usize, layer: usize, width: usize, dst: &mut [f16]) {
        let per = width * KV_PAGE;
        for &page in &self.tables[slot] {
            let src = page as usize * self.page_elems + layer * KV_PAGE * self.kv_dim;
            let out = &mut dst[page as usize * per..(page as usize + 1) * per];
            for j in 0..KV_PAGE {
                let row = &self.k[src + j * self.kv_dim..src + j * self.kv_dim + width];
                for (d, &x) in row.iter().enumerate() {
                    out[d * KV_PAGE + j] = x;
                }
            }
        }
    }

    /// The view of `layer` in `slot` for a latent cache: K rows of the whole `kv_dim`, V from
    /// `vt` as filled by `transpose_latent` with the same `width`.
    pub fn latent_view<'a>(
        &'a self,
        slot: usize,
        layer: usize,
        vt: &'a [f16],
        width: usize,
    ) -> HeadView<'a> {
        HeadView {
            k: &self.k,
            vt,
            pages: &self.tables[slot],
            page_elems: self.page_elems,
            k_offset: layer * KV_PAGE * self.kv_dim,
            k_stride: self.kv_dim,
            vt_page_elems: width * KV_PAGE,
            vt_offset: 0,
        }
    }

    /// The view attention reads for KV head `kvh` (of `head_dim`) in `layer` of `slot`.
    pub fn head_view(
        &self,
        slot: usize,
        layer: usize,
        kvh: usize,
        head_dim: usize,
    ) -> HeadView<'_> {
        let layer_at = layer * KV_PAGE * self.kv_dim;
        HeadView {
            k: &self.k,
            vt: &self.vt,
            pages: &self.tables[slot],
            page_elems: self.page_elems,
            k_offset: layer_at + kvh * head_dim,
            k_stride: self.kv_dim,
            vt_page_elems: self.page_elems,
            vt_offset: layer_at + kvh * head_dim * KV_PAGE,
        }
    }
}

/// `n` zero halves, allocated zeroed so the OS maps the memory only when it is written.
fn zeroed(n: usize) -> Vec<f16> {
    let raw: Vec<u16> = vec![0u16; n];
    let mut raw = std::mem::ManuallyDrop::new(raw);
    let (ptr, len, cap) = (raw.as_mut_ptr(), raw.len(), raw.capacity());
    // SAFETY: f16 is a transparent u16 (same size and alignment, every bit pattern valid), and
    // the allocation came from a Vec<u16> of the same length and capacity.
    unsafe { Vec::from_raw_parts(ptr as *mut f16, len, cap) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_lent_and_returned() {
        let mut kv = KvCache::new(2, 8, 100, 3, 5);
        assert_eq!(kv.free_pages(), 5);
        kv.ensure(0, 33).expect("two pages");
        assert_eq!(kv.slot_pages(0), 2);
        kv.ensure(0, 64).expect("still two pages");
        assert_eq!(kv.slot_pages(0), 2);
        kv.ensure(1, 96).expect("three pages");
        assert_eq!(kv.free_pages(), 0);
        assert!(matches!(
            kv.ensure(2, 1),
            Err(ModelError::KvFull { need: 1, free: 0 })
        ));
        assert!(matches!(
            kv.ensure(0, 101),
            Err(ModelError::ContextFull { .. })
        ));
        assert!(matches!(kv.ensure(7, 1), Err(ModelError::BadSlot { .. })));
        kv.truncate(1, 40);
        assert_eq!((kv.slot_pages(1), kv.free_pages()), (2, 1));
        kv.release(0);
        kv.release(1);
        assert_eq!(kv.free_pages(), 5);
    }

    #[test]
    fn stored_rows_read_back_through_the_view() {
        let (n_layer, kv_dim, hd) = (2, 8, 4);
        let mut kv = KvCache::new(n_layer, kv_dim, 128, 2, 6);
        kv.ensure(1, 40).expect("room");
        kv.ensure(0, 70).expect("room");
        let row = |pos: usize, s: f32| -> Vec<f32> {
            (0..kv_dim).map(|d| pos as f32 + s * d as f32).collect()
        };
        for pos in 0..70 {
            kv.store(0, 1, pos, &row(pos, 0.5), &row(pos, -0.25));
        }
        let v = kv.head_view(0, 1, 1, hd);
        for pos in [0usize, 31, 32, 69] {
            let page = v.pages[pos / KV_PAGE] as usize * v.page_elems;
            for i in 0..hd {
                let k = v.k[page + v.k_offset + (pos % KV_PAGE) * v.k_stride + i];
                let x = v.vt[page + v.vt_offset + i * KV_PAGE + pos % KV_PAGE];
                assert_eq!(k.to_f32(), f16::from_f32(row(pos, 0.5)[hd + i]).to_f32());
                assert_eq!(x.to_f32(), f16::from_f32(row(pos, -0.25)[hd + i]).to_f32());
            }
        }
    }

    #[test]
    fn latent_cache_keeps_k_rows_only_and_transposes_them_as_v() {
        let (n_layer, width, lora) = (2, 10, 8);
        let mut kv = KvCache::new_latent(n_layer, width, 128, 2, 4);
        assert_eq!(kv.bytes_per_position(), n_layer * width * 2);
        assert_eq!(kv.bytes(), 4 * n_layer * KV_PAGE * width * 2);
        kv.ensure(0, 40).expect("room");
        let row = |pos: usize| -> Vec<f32> { (0..width).map(|d| (pos * 3 + d) as f32).collect() };
        for pos in 0..40 {
            kv.store(0, 1, pos, &row(pos), &[]);
        }
        let mut vt = vec![f16::ZERO; kv.n_pages() * lora * KV_PAGE];
        kv.transpose_latent(0, 1, lora, &mut vt);
        let view = kv.latent_view(0, 1, &vt, lora);
        for pos in [0usize, 5, 31, 32, 39] {
            let page = view.pages[pos / KV_PAGE] as usize;
            for d in 0..width {
                let k =
                    view.k[page * view.page_elems + view.k_offset + (pos % KV_PAGE) * width + d];
                assert_eq!(k.to_f32(), row(pos)[d]);
            }
            for d in 0..lora {
                let v = view.vt[page * view.vt_page_elems + d * KV_PAGE + pos % KV_PAGE];
                assert_eq!(v.to_f32(), row(pos)[d]);
            }
        }
    }
}
