//! The paged KV cache: f16 keys and values in fixed-size pages shared by all sequences.
//!
//! Memory is a pool of pages of `KV_PAGE` positions. A page holds, for every layer of its
//! group, K as `[KV_PAGE][kv_dim]` (a row per position) and V transposed, `[kv_dim][KV_PAGE]`
//! (a row per dimension), the layout llama.cpp uses without flash attention: attention's output
//! is then one f16 dot product per dimension, walking the sequence's pages in order (the paged
//! dot products sum exactly as over one contiguous row, so paging changes no bit).
//!
//! A slot is a sequence's page table (`kv_pages::PagePool`). `ensure` gives a slot pages up to
//! a length, `truncate` and `release` give them back; the pool is fixed at creation, so a
//! scheduler knows exactly when memory runs out (and pre-empts) instead of the process growing.
//! Memory is reserved zeroed, so untouched pages cost address space only. Page tables and the
//! free lists are allocated once: growing a sequence allocates nothing.
//!
//! Layers come in up to two groups, each with its own pages, like llama.cpp's iSWA cache
//! (`llama_kv_cache_iswa`): the *global* layers keep every position, and the *sliding-window*
//! layers (Gemma 3, gpt-oss) keep only their window plus the chunk being computed, their pool
//! dropping the pages every window has passed. The global pool is the one a scheduler accounts
//! (`n_pages`, `free_pages`, `pages_needed`): its size is the memory budget in positions. The
//! sliding pool is reserved per slot at creation, `pages_for(window - 1 + max_chunk) + 1` pages
//! each (the most a chunk of `max_chunk` tokens can reach), so it never runs out while chunks
//! stay within `max_chunk`. A sliding slot cannot be rolled back before its window
//! (`truncate` reports how much it kept). Models without a window have one group, as before.
//!
//! A *latent* cache (`new_latent`, multi-head latent attention) stores K rows only: V is a
//! prefix of each K row (the compressed latent), so caching it again would double the memory;
//! attention transposes the latent per step instead (`transpose_latent`).

use half::f16;
use owl_kernels::attention::{pad_kv, HeadView, KV_PAGE};
use owl_kernels::types::ScaleToF16Fn;

pub use crate::kv_pages::pages_for;
use crate::kv_pages::PagePool;
use crate::ModelError;

mod writer;
pub use writer::LayerWriter;

/// The K/V rows of one group of layers: its pages and the slots' tables into them.
struct Group {
    /// Halves per page in `k` and `vt`: n_layer * KV_PAGE * kv_dim.
    page_elems: usize,
    /// [n_pages][n_layer][KV_PAGE][kv_dim]
    k: Vec<f16>,
    /// [n_pages][n_layer][kv_dim][KV_PAGE]; empty in a latent (K-only) cache
    vt: Vec<f16>,
    pages: PagePool,
}

impl Group {
    #[allow(clippy::too_many_arguments)]
    fn new(
        n_layer: usize,
        kv_dim: usize,
        n_ctx: usize,
        n_slots: usize,
        n_pages: usize,
        with_v: bool,
        window: Option<usize>,
    ) -> Group {
        let page_elems = n_layer * KV_PAGE * kv_dim;
        let n = n_pages * page_elems;
        Group {
            page_elems,
            k: zeroed(n),
            vt: if with_v { zeroed(n) } else { Vec::new() },
            pages: PagePool::new(n_pages, n_slots, n_ctx, window),
        }
    }

    fn bytes(&self) -> usize {
        (self.k.len() + self.vt.len()) * 2
    }

    fn page_bytes(&self) -> usize {
        let parts = if self.vt.is_empty() { 1 } else { 2 };
        parts * self.page_elems * 2
    }
}

pub struct KvCache {
    kv_dim: usize,
    /// Positions one slot may hold.
    n_ctx: usize,
    /// The layers that keep every position (all of them in a model without a window).
    global: Group,
    /// The sliding-window layers, when the model has some.
    sliding: Option<Group>,
    /// Per layer: (in the sliding group, index within its group).
    layer_at: Vec<(bool, usize)>,
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
        KvCache::one_group(n_layer, kv_dim, n_ctx, n_slots, n_pages, true)
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
        KvCache::one_group(n_layer, k_dim, n_ctx, n_slots, n_pages, false)
    }

    fn one_group(
        n_layer: usize,
        kv_dim: usize,
        n_ctx: usize,
        n_slots: usize,
        n_pages: usize,
        with_v: bool,
    ) -> KvCache {
        KvCache {
            kv_dim,
            n_ctx,
            global: Group::new(n_layer, kv_dim, n_ctx, n_slots, n_pages, with_v, None),
            sliding: None,
            layer_at: (0..n_layer).map(|i| (false, i)).collect(),
        }
    }

    /// A cache whose layers have the given sliding windows (`None`: global): `n_pages` pages
    /// for the global layers, and for the sliding ones a pool reserved per slot that holds the
    /// window plus a chunk of up to `max_chunk` tokens. Sliding layers whose window would not
    /// save memory are kept with the global ones; distinct windows share the largest.
    pub fn windowed(
        windows: &[Option<usize>],
        kv_dim: usize,
        n_ctx: usize,
        n_slots: usize,
        n_pages: usize,
        max_chunk: usize,
    ) -> KvCache {
        let full = pages_for(n_ctx);
        let per_slot = |w: usize| pages_for((w + max_chunk.max(1)).saturating_sub(1)) + 1;
        let saves = |w: &Option<usize>| w.is_some_and(|w| w > 0 && per_slot(w) < full);
        let window = windows.iter().filter(|w| saves(w)).flatten().max().copied();
        let Some(window) = window else {
            return KvCache::new(windows.len(), kv_dim, n_ctx, n_slots, n_pages);
        };
        let (mut n_global, mut n_sliding) = (0, 0);
        let layer_at = windows
            .iter()
            .map(|w| {
                let (slides, count) = if saves(w) {
                    (true, &mut n_sliding)
                } else {
                    (false, &mut n_global)
                };
                *count += 1;
                (slides, *count - 1)
            })
            .collect();
        let sliding_pages = n_slots * per_slot(window);
        KvCache {
            kv_dim,
            n_ctx,
            global: Group::new(n_global, kv_dim, n_ctx, n_slots, n_pages, true, None),
            sliding: Some(Group::new(
                n_sliding,
                kv_dim,
                n_ctx,
                n_slots,
                sliding_pages,
                true,
                Some(window),
            )),
            layer_at,
        }
    }

    /// [`KvCache::windowed`] whose sliding pool also keeps the `rollback` positions before
    /// each chunk's window (its pool's window is the layers' plus `rollback`), so a slot can
    /// be cut back by up to `rollback` positions after a chunk and resume. Attention masks
    /// with each layer's own window, so only what the pool keeps changes.
    #[allow(clippy::too_many_arguments)]
    pub fn windowed_with_rollback(
        windows: &[Option<usize>],
        kv_dim: usize,
        n_ctx: usize,
        n_slots: usize,
        n_pages: usize,
        max_chunk: usize,
        rollback: usize,
    ) -> KvCache {
        let kept: Vec<Option<usize>> = windows.iter().map(|w| w.map(|w| w + rollback)).collect();
        KvCache::windowed(&kept, kv_dim, n_ctx, n_slots, n_pages, max_chunk)
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
        self.global.pages.n_slots()
    }

    pub fn kv_dim(&self) -> usize {
        self.kv_dim
    }

    pub fn n_layer(&self) -> usize {
        self.layer_at.len()
    }

    /// Pages of the global pool (the one a scheduler's budget is counted in).
    pub fn n_pages(&self) -> usize {
        self.global.pages.n_pages()
    }

    /// Free pages of the global pool.
    pub fn free_pages(&self) -> usize {
        self.global.pages.free_pages()
    }

    /// The sliding window of the sliding-layer group, if the cache has one.
    pub fn window(&self) -> Option<usize> {
        self.sliding.as_ref().and_then(|g| g.pages.window())
    }

    /// Bytes of one global page (K and V, all global layers).
    pub fn page_bytes(&self) -> usize {
        self.global.page_bytes()
    }

    /// Bytes of cache one more position of a sequence takes (the global layers: a sliding
    /// layer's share is bounded by its window, see `sliding_bytes`).
    pub fn bytes_per_position(&self) -> usize {
        self.page_bytes() / KV_PAGE
    }

    /// Bytes of the sliding layers' pool (reserved per slot; 0 without a window).
    pub fn sliding_bytes(&self) -> usize {
        self.sliding.as_ref().map_or(0, Group::bytes)
    }

    /// Bytes the cache occupies when full (both pools).
    pub fn bytes(&self) -> usize {
        self.global.bytes() + self.sliding_bytes()
    }

    /// Global pages held by `slot`.
    pub fn slot_pages(&self, slot: usize) -> usize {
        self.global.pages.live_pages(slot)
    }

    /// Sliding-window pages held by `slot` (0 without a window).
    pub fn sliding_pages(&self, slot: usize) -> usize {
        self.sliding
            .as_ref()
            .map_or(0, |g| g.pages.live_pages(slot))
    }

    fn check_slot(&self, slot: usize) -> Result<(), ModelError> {
        if slot >= self.n_slots() {
            return Err(ModelError::BadSlot {
                slot,
                n_slots: self.n_slots(),
            });
        }
        Ok(())
    }

    /// Free global pages `slot` would need to hold `n` positions.
    pub fn pages_needed(&self, slot: usize, n: usize) -> usize {
        self.global.pages.pages_needed(slot, n)
    }

    /// Gives `slot` pages for positions `0..n`, sliding nothing (a chunk starting at 0).
    pub fn ensure(&mut self, slot: usize, n: usize) -> Result<(), ModelError> {
        self.ensure_chunk(slot, 0, n)
    }

    /// Prepares `slot` to compute positions `start..end` (it holds `0..start`): sliding
    /// layers drop the pages no position from `start` on can see, and every group gets pages
    /// up to `end`. Fails, changing nothing, when `end` exceeds the context or a pool has too
    /// few free pages.
    pub fn ensure_chunk(
        &mut self,
        slot: usize,
        start: usize,
        end: usize,
    ) -> Result<(), ModelError> {
        self.check_slot(slot)?;
        if end > self.n_ctx {
            return Err(ModelError::ContextFull {
                pos: end,
                n_ctx: self.n_ctx,
            });
        }
        let need = self.global.pages.pages_needed(slot, end);
        let free = self.global.pages.free_pages();
        if need > free {
            return Err(ModelError::KvFull { need, free });
        }
        if let Some(g) = &mut self.sliding {
            g.pages.ensure(slot, start, end)?;
        }
        self.global.pages.ensure(slot, start, end)
    }

    /// Keeps the pages `slot` needs for positions `0..n` and frees the rest; returns the
    /// positions kept: `n`, or 0 (everything freed) when the sliding layers have dropped pages
    /// the window of position `n` still reaches, so the sequence cannot resume from `n`.
    pub fn truncate(&mut self, slot: usize, n: usize) -> usize {
        let kept = if self.keeps_window_of(slot, n) { n } else { 0 };
        if let Some(g) = &mut self.sliding {
            g.pages.truncate(slot, kept);
        }
        self.global.pages.truncate(slot, kept);
        kept
    }

    /// Whether `slot` still holds every page that a sequence resuming at position `n` reads:
    /// always without sliding-window layers; with them, until `slot` has dropped pages the
    /// window of `n` reaches (a running sequence drops them as it moves on). True also while
    /// `slot` has not yet computed up to `n`.
    pub fn keeps_window_of(&self, slot: usize, n: usize) -> bool {
        self.check_slot(slot).is_ok()
            && self
                .sliding
                .as_ref()
                .is_none_or(|g| g.pages.can_resume(slot, n))
    }

    /// Whether `from` holds what a sequence resuming at position `n` needs of positions
    /// `0..n`: every global page, and the sliding layers' pages that the window of `n`
    /// reaches. (The sliding tables grow with the global one, `ensure` takes pages in both,
    /// and keep an entry for every dropped page, so the global count covers their length.)
    pub fn can_copy_prefix(&self, from: usize, n: usize) -> bool {
        self.keeps_window_of(from, n)
            && n > 0
            && n <= self.n_ctx
            && self.global.pages.live_pages(from) >= pages_for(n)
    }

    /// Gives `to` the K/V rows of positions `0..n` of `from` (which must hold them, see
    /// [`KvCache::can_copy_prefix`]): `to`'s pages are released, it takes pages for `0..n`
    /// (sliding layers only those the window of `n` reaches), and each of `from`'s pages among
    /// them is copied whole into `to`'s (rows past `n` in the last page are stale values, as
    /// in any partly filled page, and never weigh in attention). Returns the positions copied:
    /// `n`, or 0, leaving `to` as it was, where `from` cannot give them or a pool has too few
    /// free pages. Sequences whose prompts start the same (a shared system prompt) then
    /// compute the shared part once.
    pub fn copy_prefix(&mut self, from: usize, to: usize, n: usize) -> usize {
        let sliding_short = self.sliding.as_ref().is_some_and(|g| {
            g.pages.live_for(n).len() > g.pages.free_pages() + g.pages.live_pages(to)
        });
        if from == to
            || self.check_slot(to).is_err()
            || !self.can_copy_prefix(from, n)
            // `to`'s own pages come back before it takes the copy's.
            || pages_for(n) > self.free_pages() + self.global.pages.live_pages(to)
            || sliding_short
        {
            return 0;
        }
        self.release(to);
        // A chunk starting at `n`: the sliding layers mark the pages before its window
        // dropped and take the rest.
        if self.ensure_chunk(to, n, n).is_err() {
            // Unreachable after the checks above; nothing is copied.
            return 0;
        }
        copy_pages(&mut self.global, from, to, 0..pages_for(n));
        if let Some(g) = &mut self.sliding {
            let live = g.pages.live_for(n);
            copy_pages(g, from, to, live);
        }
        n
    }

    /// Frees every page of `slot`.
    pub fn release(&mut self, slot: usize) {
        self.truncate(slot, 0);
    }

    fn group(&self, layer: usize) -> (&Group, usize) {
        match (self.layer_at[layer], &self.sliding) {
            ((true, i), Some(g)) => (g, i),
            ((_, i), _) => (&self.global, i),
        }
    }

    /// `group`, mutable: the group holding `layer` and the layer's index within it.
    fn group_mut(&mut self, layer: usize) -> (&mut Group, usize) {
        match (self.layer_at[layer], &mut self.sliding) {
            ((true, i), Some(g)) => (g, i),
            ((_, i), _) => (&mut self.global, i),
        }
    }

    /// Writes the K and V rows (`[kv_dim]` each) of position `pos` of `slot`, whose page must
    /// have been given by `ensure`, converted to f16 by the portable reference. Forward passes
    /// use [`KvCache::store_with`] and the kernel table's conversion (the same bits).
    pub fn store(&mut self, slot: usize, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let to_f16 = owl_kernels::attention::scale_to_f16_scalar;
        self.store_with(to_f16, slot, layer, pos, k, v);
    }

    /// [`KvCache::store`] converting with `to_f16` (`Kernels::scale_to_f16`, called with a
    /// scale of 1: exact, so every ISA's conversion rounds the same values to the same halves).
    /// Per element, `half`'s portable conversion made the stores of a 16-sequence decode step
    /// a serial 1 % of its time.
    pub fn store_with(
        &mut self,
        to_f16: ScaleToF16Fn,
        slot: usize,
        layer: usize,
        pos: usize,
        k: &[f32],
        v: &[f32],
    ) {
        let writer = self.layer_writer(layer);
        // SAFETY: `&mut self` is held: no other store runs.
        unsafe { writer.store(to_f16, slot, pos, k, v) };
    }

    /// Global pages of `slot`, in position order.
    pub fn pages(&self, slot: usize) -> &[u32] {
        self.global.pages.table(slot)
    }

    /// Copies the first `width` values of every K row of `layer` in `slot`'s pages into `dst`
    /// transposed, page by page in the V layout (`dst[page][width][KV_PAGE]`, indexed by the
    /// cache's page ids): the latent of multi-head latent attention read as V. (A latent cache
    /// has one group.)
    pub fn transpose_latent(&self, slot: usize, layer: usize, width: usize, dst: &mut [f16]) {
        let per = width * KV_PAGE;
        let g = &self.global;
        for &page in g.pages.table(slot) {
            let src = page as usize * g.page_elems + layer * KV_PAGE * self.kv_dim;
            let out = &mut dst[page as usize * per..(page as usize + 1) * per];
            for j in 0..KV_PAGE {
                let row = &g.k[src + j * self.kv_dim..src + j * self.kv_dim + width];
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
        let g = &self.global;
        HeadView {
            k: &g.k,
            vt,
            pages: g.pages.table(slot),
            page_elems: g.page_elems,
            k_offset: layer * KV_PAGE * self.kv_dim,
            k_stride: self.kv_dim,
            vt_page_elems: width * KV_PAGE,
            vt_offset: 0,
        }
    }

    /// The view attention reads for KV head `kvh` (of `head_dim`) in `layer` of `slot`. In a
    /// sliding layer the table's leading entries may be `kv_pages::DROPPED`: attention with
    /// that layer's window never reaches them.
    pub fn head_view(
        &self,
        slot: usize,
        layer: usize,
        kvh: usize,
        head_dim: usize,
    ) -> HeadView<'_> {
        let (g, index) = self.group(layer);
        let layer_at = index * KV_PAGE * self.kv_dim;
        HeadView {
            k: &g.k,
            vt: &g.vt,
            pages: g.pages.table(slot),
            page_elems: g.page_elems,
            k_offset: layer_at + kvh * head_dim,
            k_stride: self.kv_dim,
            vt_page_elems: g.page_elems,
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

/// Copies table entries `entries` of slot `from` into the same entries of slot `to` (both
/// live), K and V, every layer of the group.
fn copy_pages(g: &mut Group, from: usize, to: usize, entries: std::ops::Range<usize>) {
    let pe = g.page_elems;
    for s in entries {
        let (src, dst) = (
            g.pages.table(from)[s] as usize * pe,
            g.pages.table(to)[s] as usize * pe,
        );
        g.k.copy_within(src..src + pe, dst);
        if !g.vt.is_empty() {
            g.vt.copy_within(src..src + pe, dst);
        }
    }
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
    fn a_copied_prefix_reads_back_as_its_source_in_every_layer() {
        let (n_layer, kv_dim, hd) = (2, 8, 4);
        let mut kv = KvCache::new(n_layer, kv_dim, 128, 3, 8);
        kv.ensure(0, 70).expect("room");
        kv.ensure(2, 10).expect("room");
        let row = |pos: usize, l: usize, s: f32| -> Vec<f32> {
            (0..kv_dim)
                .map(|d| pos as f32 + s * d as f32 + 100.0 * l as f32)
                .collect()
        };
        for l in 0..n_layer {
            for pos in 0..70 {
                kv.store(0, l, pos, &row(pos, l, 0.5), &row(pos, l, -0.25));
            }
        }
        let free = kv.free_pages();
        // Slot 2's own pages go back; it takes two for the 40 copied positions.
        assert_eq!(kv.copy_prefix(0, 2, 40), 40);
        assert_eq!(kv.slot_pages(2), 2);
        assert_eq!(kv.free_pages(), free + 1 - 2);
        assert_ne!(kv.pages(2), &kv.pages(0)[..2]);
        for l in 0..n_layer {
            for head in 0..2 {
                let (a, b) = (kv.head_view(0, l, head, hd), kv.head_view(2, l, head, hd));
                for pos in 0..40 {
                    for i in 0..hd {
                        let at = |v: &HeadView<'_>| {
                            let page = v.pages[pos / KV_PAGE] as usize * v.page_elems;
                            (
                                v.k[page + v.k_offset + (pos % KV_PAGE) * v.k_stride + i],
                                v.vt[page + v.vt_offset + i * KV_PAGE + pos % KV_PAGE],
                            )
                        };
                        assert_eq!(at(&a), at(&b), "layer {l} head {head} pos {pos} dim {i}");
                    }
                }
            }
        }
        // More pages than are free: nothing copied, and slot 2 keeps its own.
        let mut tight = KvCache::new(n_layer, kv_dim, 128, 3, 4);
        tight.ensure(0, 70).expect("room");
        tight.ensure(2, 10).expect("room");
        assert_eq!(tight.free_pages(), 0);
        assert_eq!(tight.copy_prefix(0, 2, 40), 0);
        assert_eq!(tight.slot_pages(2), 1);
        // Nothing to copy from, or onto itself: nothing copied.
        assert_eq!(kv.copy_prefix(1, 2, 10), 0);
        assert_eq!(kv.copy_prefix(0, 0, 10), 0);
    }

    #[test]
    fn a_windowed_prefix_is_copied_while_the_source_still_holds_its_window() {
        let kv_dim = 8;
        let mut kv = windowed(2);
        let row = |pos: usize, l: usize, s: f32| -> Vec<f32> {
            (0..kv_dim)
                .map(|d| pos as f32 + s * d as f32 + 100.0 * l as f32)
                .collect()
        };
        // Slot 0 computes 0..70 in chunks of 8 (its last chunk starts at 64), slot 1 holds
        // a short sequence of its own.
        let mut pos = 0;
        while pos < 70 {
            let end = (pos + 8).min(70);
            kv.ensure_chunk(0, pos, end).expect("room");
            for p in pos..end {
                for l in 0..2 {
                    kv.store(0, l, p, &row(p, l, 0.5), &row(p, l, -0.25));
                }
            }
            pos = end;
        }
        kv.ensure_chunk(1, 0, 5).expect("room");
        assert!(kv.can_copy_prefix(0, 70));
        assert_eq!(kv.copy_prefix(0, 1, 70), 70);
        // The global layer got every page; the sliding one only those the window of
        // position 70 reaches (63..70: pages 1 and 2), the first marked dropped.
        assert_eq!(kv.slot_pages(1), pages_for(70));
        assert_eq!(kv.sliding_pages(1), 2);
        let at = |kv: &KvCache, slot: usize, l: usize, p: usize| {
            let v = kv.head_view(slot, l, 0, kv_dim);
            let page = v.pages[p / KV_PAGE] as usize;
            (
                v.k[page * v.page_elems + v.k_offset + (p % KV_PAGE) * v.k_stride + 5],
                v.vt[page * v.vt_page_elems + v.vt_offset + 5 * KV_PAGE + p % KV_PAGE],
            )
        };
        for p in 0..70 {
            assert_eq!(at(&kv, 0, 0, p), at(&kv, 1, 0, p), "global position {p}");
        }
        for p in 63..70 {
            assert_eq!(at(&kv, 0, 1, p), at(&kv, 1, 1, p), "sliding position {p}");
            assert_eq!(at(&kv, 1, 1, p).0.to_f32(), row(p, 1, 0.5)[5]);
        }
        // The copy resumes like the source: its next chunk starts at 70.
        kv.ensure_chunk(1, 70, 72).expect("room");
        // Once the source has moved on past that window, the copy is refused and the target
        // keeps what it had.
        let mut pos = 70;
        while pos < 140 {
            kv.ensure_chunk(0, pos, pos + 8).expect("room");
            pos += 8;
        }
        assert!(!kv.can_copy_prefix(0, 70));
        let held = (kv.slot_pages(1), kv.sliding_pages(1));
        assert_eq!(kv.copy_prefix(0, 1, 70), 0);
        assert_eq!((kv.slot_pages(1), kv.sliding_pages(1)), held);
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

    /// Layer 0 global, layer 1 sliding over 8 positions, chunks of up to 8 tokens.
    fn windowed(n_slots: usize) -> KvCache {
        KvCache::windowed(&[None, Some(8)], 8, 1024, n_slots, n_slots * 32, 8)
    }

    #[test]
    fn sliding_layers_keep_their_window_and_reuse_dropped_pages() {
        let kv_dim = 8;
        let mut kv = windowed(2);
        assert_eq!(kv.window(), Some(8));
        // Per slot: pages_for(8 - 1 + 8) + 1 = 2 sliding pages, whatever the length.
        let bound = 2;
        let row = |pos: usize, s: f32| -> Vec<f32> {
            (0..kv_dim)
                .map(|d| (pos % 1000) as f32 + s * d as f32)
                .collect()
        };
        let read = |kv: &KvCache, layer: usize, pos: usize| -> (f32, f32) {
            let v = kv.head_view(0, layer, 0, kv_dim);
            let page = v.pages[pos / KV_PAGE];
            assert_ne!(
                page,
                crate::kv_pages::DROPPED,
                "position {pos} of layer {layer}"
            );
            let page = page as usize;
            let k = v.k[page * v.page_elems + v.k_offset + (pos % KV_PAGE) * v.k_stride + 3];
            let x = v.vt[page * v.vt_page_elems + v.vt_offset + 3 * KV_PAGE + pos % KV_PAGE];
            (k.to_f32(), x.to_f32())
        };
        let mut seen = std::collections::HashSet::new();
        let mut pos = 0;
        for len in (1..=8).cycle().take(300) {
            let end = (pos + len).min(1024);
            if end == pos {
                break;
            }
            kv.ensure_chunk(0, pos, end).expect("room");
            // The other slot holds a short sequence all along.
            kv.ensure_chunk(1, 0, 5).expect("room");
            for p in pos..end {
                for layer in 0..2 {
                    kv.store(0, layer, p, &row(p, 0.5), &row(p, -0.25));
                }
            }
            assert!(
                kv.sliding_pages(0) <= bound,
                "{} at {end}",
                kv.sliding_pages(0)
            );
            assert_eq!(kv.slot_pages(0), pages_for(end));
            // Every position the chunk's tokens see reads back, in both groups.
            for p in (pos + 1).saturating_sub(8)..end {
                let want = (
                    f16::from_f32(row(p, 0.5)[3]).to_f32(),
                    f16::from_f32(row(p, -0.25)[3]).to_f32(),
                );
                assert_eq!(read(&kv, 1, p), want, "sliding position {p}");
                assert_eq!(read(&kv, 0, p), want, "global position {p}");
            }
            seen.extend(kv.head_view(0, 1, 0, kv_dim).pages.iter().copied());
            pos = end;
        }
        assert_eq!(pos, 1024, "the sequence filled its context");
        // The sliding pool has 2 slots x 2 pages: the walk reused them over and over.
        seen.remove(&crate::kv_pages::DROPPED);
        assert!(seen.len() <= 4, "{seen:?}");
        // Global layers still hold the whole sequence.
        assert_eq!(read(&kv, 0, 0).0, f16::from_f32(row(0, 0.5)[3]).to_f32());
        kv.release(0);
        kv.release(1);
        assert_eq!(kv.free_pages(), 64);
        assert_eq!(kv.sliding_pages(0), 0);
        kv.ensure_chunk(0, 0, 200)
            .expect_err("a 200-token chunk exceeds the sliding pool");
        assert_eq!(
            (kv.slot_pages(0), kv.free_pages()),
            (0, 64),
            "failure changes nothing"
        );
    }

    #[test]
    fn a_sliding_slot_resumes_only_where_its_window_is_intact() {
        let mut kv = windowed(1);
        let mut pos = 0;
        while pos < 200 {
            kv.ensure_chunk(0, pos, pos + 8).expect("room");
            pos += 8;
        }
        // The last chunk started at 192: pages before (193 - 8) / 32 = 5 are dropped.
        assert_eq!(kv.truncate(0, 190), 190);
        assert_eq!(kv.slot_pages(0), pages_for(190));
        assert_eq!(kv.truncate(0, 100), 0, "position 100's window was dropped");
        assert_eq!((kv.slot_pages(0), kv.sliding_pages(0)), (0, 0));
        assert_eq!(kv.free_pages(), 32);
        // A slot that never slid can be cut anywhere.
        kv.ensure_chunk(0, 0, 8).expect("room");
        assert_eq!(kv.truncate(0, 3), 3);
    }

    #[test]
    fn a_window_shrinks_the_memory_and_no_window_changes_nothing() {
        let plain = KvCache::new(2, 8, 1024, 2, 64);
        let same = KvCache::windowed(&[None, None], 8, 1024, 2, 64, 8);
        assert_eq!((same.bytes(), same.window()), (plain.bytes(), None));
        // A window as long as the context saves nothing: one group.
        let long = KvCache::windowed(&[None, Some(1024)], 8, 1024, 2, 64, 8);
        assert_eq!((long.bytes(), long.window()), (plain.bytes(), None));
        let kv = windowed(2);
        assert_eq!(kv.bytes_per_position(), plain.bytes_per_position() / 2);
        let sliding = 2 * 2 * KV_PAGE * 8 * 2 * 2;
        assert_eq!(kv.sliding_bytes(), sliding);
        assert_eq!(kv.bytes(), plain.bytes() / 2 + sliding);
    }
}
