//! Attention of every (token, head) pair of a batch, spread over the thread pool: the part
//! grouped-query and latent attention share. Each pair is an independent task: its token
//! attends over its own sequence's cache rows `0..=pos`, so the batch may mix sequences freely,
//! and a thread works in its own slice of the scratch buffers.

use half::f16;
use owl_kernels::attention::{attend_head, AttnScratch, HeadOptions, HeadView};
use owl_kernels::pool::{chunking, SharedMut};

use crate::batch::Batch;
use crate::scratch::Compute;

/// The shape of one batch's attention.
pub struct HeadTasks {
    pub n_head: usize,
    /// Query values per head; `q` is `[n_tokens][n_head][q_width]`.
    pub q_width: usize,
    /// Output values per head; `out` is `[n_tokens][n_head][out_width]`.
    pub out_width: usize,
    /// Scale of the scores.
    pub scale: f32,
    /// Padded attention window (`KvCache::n_ctx_pad`).
    pub n_pad: usize,
}

impl HeadTasks {
    /// Runs every (token, head) task of `batch`. `scores` holds `n_threads × n_pad` floats and
    /// `f16s` `n_threads × (n_pad + q_width)` halves; `view(slot, head)` is the cache a head
    /// reads and `opts(head, pos)` its window and sink.
    #[allow(clippy::too_many_arguments)]
    pub fn run<'v>(
        &self,
        cx: &Compute<'_>,
        batch: &Batch,
        q: &[f32],
        out: &mut [f32],
        scores: &mut [f32],
        f16s: &mut [f16],
        view: impl Fn(usize, usize) -> HeadView<'v> + Sync,
        opts: impl Fn(usize, usize) -> HeadOptions + Sync,
    ) {
        let n_threads = cx.pool.n_threads();
        let (nh, qw, ow, n_pad) = (self.n_head, self.q_width, self.out_width, self.n_pad);
        let per_scores = n_pad;
        let per_f16 = n_pad + qw;
        assert!(
            scores.len() >= n_threads * per_scores && f16s.len() >= n_threads * per_f16,
            "attention scratch too small"
        );
        let n_tasks = batch.n_tokens() * nh;
        assert!(q.len() >= n_tasks * qw && out.len() >= n_tasks * ow);
        let scores = SharedMut::new(scores);
        let f16s = SharedMut::new(f16s);
        let outp = SharedMut::new(out);
        let (n_chunks, chunk_tasks) = chunking(n_tasks, n_threads, 4, 1);
        cx.pool.run_chunks(n_chunks, |chunk, ith| {
            // SAFETY: each thread takes its own disjoint slices of the scratch buffers, whose
            // lengths are at least `n_threads` times the per-thread sizes (checked above).
            let (sc, f) = unsafe {
                (
                    scores.slice(ith * per_scores, per_scores),
                    f16s.slice(ith * per_f16, per_f16),
                )
            };
            let (p16, q16) = f.split_at_mut(n_pad);
            let mut hs = AttnScratch {
                scores: sc,
                p16,
                q16,
            };
            for task in chunk * chunk_tasks..((chunk + 1) * chunk_tasks).min(n_tasks) {
                let (row, head) = (task / nh, task % nh);
                let c = batch.chunk_of(row);
                let pos = c.pos0 + (row - c.start);
                // SAFETY: task (row, head) owns out[task * ow..][..ow]; tasks are disjoint
                // across threads.
                let o = unsafe { outp.slice(task * ow, ow) };
                attend_head(
                    cx.kernels,
                    &q[task * qw..(task + 1) * qw],
                    &view(c.slot, head),
                    pos + 1,
                    self.scale,
                    c.tiled_attention,
                    opts(head, pos),
                    &mut hs,
                    o,
                );
            }
        });
    }
}
