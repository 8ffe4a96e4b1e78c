//! Attention of every (token, head group) pair of a batch, spread over the thread pool: the
//! part grouped-query and latent attention share. Each pair is an independent task: its token
//! attends over its own sequence's cache rows `0..=pos`, so the batch may mix sequences freely,
//! and a thread works in its own slice of the scratch buffers.
//!
//! Why groups: the query heads that share a K/V head (three in SmolLM2, seven in
//! Qwen2.5-0.5B) read the same cached rows. Taken together (`attend_group`), each K and V row
//! is read and widened from f16 once for the group instead of once per head: about a third
//! less time per head on the AVX-512 decode path (`examples/attend_speed`). The bits are those
//! of each head alone, so how heads are grouped is free to follow the batch's shape.

use half::f16;
use owl_kernels::attention::{attend_group, AttnScratch, HeadOptions, HeadView};
use owl_kernels::pool::{chunking, SharedMut};

use crate::batch::Batch;
use crate::scratch::Compute;

/// Most heads one task takes (its options live on the stack).
const TASK_HEADS_MAX: usize = 16;

/// The shape of one batch's attention.
pub struct HeadTasks {
    pub n_head: usize,
    /// Query heads per K/V head: heads `g * group..(g + 1) * group` share one cache head.
    pub group: usize,
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
    /// Heads per task for a batch of `n_tokens` on `n_threads`: a divisor of `group` (at
    /// most `TASK_HEADS_MAX`), as large as keeps every thread busy. A task of `s > 1` heads
    /// costs about 0.7 of `s` heads alone (the measured group saving); the choice minimises
    /// the busiest thread's share, `ceil(tasks / n_threads) · s · cost`, larger groups
    /// winning ties.
    fn heads_per_task(&self, n_tokens: usize, n_threads: usize) -> usize {
        let mut best = (f64::MAX, 1);
        for s in (1..=self.group.min(TASK_HEADS_MAX)).rev() {
            if self.group % s != 0 {
                continue;
            }
            let tasks = n_tokens * (self.n_head / s);
            let cost = if s > 1 { 0.7 } else { 1.0 };
            let busiest = tasks.div_ceil(n_threads.max(1)) as f64 * s as f64 * cost;
            if busiest < best.0 {
                best = (busiest, s);
            }
        }
        best.1
    }

    /// Runs every (token, head group) task of `batch`, growing `scores` and `f16s` to what the
    /// threads need (a group's scores, probabilities and queries each). `view(slot, head)` is
    /// the cache a head reads (the same for the heads of a group) and `opts(head, pos)` its
    /// window and sink.
    #[allow(clippy::too_many_arguments)]
    pub fn run<'v>(
        &self,
        cx: &Compute<'_>,
        batch: &Batch,
        q: &[f32],
        out: &mut [f32],
        scores: &mut Vec<f32>,
        f16s: &mut Vec<f16>,
        view: impl Fn(usize, usize) -> HeadView<'v> + Sync,
        opts: impl Fn(usize, usize) -> HeadOptions + Sync,
    ) {
        let n_threads = cx.pool.n_threads();
        let (nh, qw, ow, n_pad) = (self.n_head, self.q_width, self.out_width, self.n_pad);
        assert!(
            self.group > 0 && nh % self.group == 0,
            "heads not in whole groups"
        );
        let hs = self.heads_per_task(batch.n_tokens(), n_threads);
        // A thread's floats: the group's scores, then its widened queries.
        let per_scores = hs * (n_pad + qw);
        let per_f16 = hs * (n_pad + qw);
        if scores.len() < n_threads * per_scores {
            scores.resize(n_threads * per_scores, 0.0);
        }
        if f16s.len() < n_threads * per_f16 {
            f16s.resize(n_threads * per_f16, f16::ZERO);
        }
        let groups = nh / hs;
        let n_tasks = batch.n_tokens() * groups;
        assert!(q.len() >= n_tasks * hs * qw && out.len() >= n_tasks * hs * ow);
        let scores = SharedMut::new(scores);
        let f16s = SharedMut::new(f16s);
        let outp = SharedMut::new(out);
        let (n_chunks, chunk_tasks) = chunking(n_tasks, n_threads, 4, 1);
        cx.pool.run_chunks(n_chunks, |chunk, ith| {
            // SAFETY: each thread takes its own disjoint slices of the scratch buffers, whose
            // lengths are at least `n_threads` times the per-thread sizes (grown above).
            let (sc, f) = unsafe {
                (
                    scores.slice(ith * per_scores, per_scores),
                    f16s.slice(ith * per_f16, per_f16),
                )
            };
            let (p16, q16) = f.split_at_mut(hs * n_pad);
            let (sc, q32) = sc.split_at_mut(hs * n_pad);
            let mut scratch = AttnScratch {
                scores: sc,
                p16,
                q16,
                q32,
            };
            for task in chunk * chunk_tasks..((chunk + 1) * chunk_tasks).min(n_tasks) {
                let (row, head0) = (task / groups, (task % groups) * hs);
                let c = batch.chunk_of(row);
                let pos = c.pos0 + (row - c.start);
                let mut head_opts = [HeadOptions::default(); TASK_HEADS_MAX];
                for (h, o) in head_opts.iter_mut().take(hs).enumerate() {
                    *o = opts(head0 + h, pos);
                }
                let heads = row * nh + head0;
                // SAFETY: task (row, group) owns the outputs of its heads,
                // out[heads * ow..][..hs * ow]; tasks are disjoint across threads.
                let o = unsafe { outp.slice(heads * ow, hs * ow) };
                attend_group(
                    cx.kernels,
                    &q[heads * qw..(heads + hs) * qw],
                    &view(c.slot, head0),
                    pos + 1,
                    self.scale,
                    c.tiled_attention,
                    &head_opts[..hs],
                    &mut scratch,
                    o,
                );
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::HeadTasks;

    fn tasks(n_head: usize, group: usize) -> HeadTasks {
        HeadTasks {
            n_head,
            group,
            q_width: 64,
            out_width: 64,
            scale: 1.0,
            n_pad: 32,
        }
    }

    /// Whole groups while they keep the threads busy; single heads when a lone token would
    /// leave threads idle; divisors of the group only.
    #[test]
    fn heads_per_task_follow_the_batch_and_the_threads() {
        let smol = tasks(9, 3);
        assert_eq!(smol.heads_per_task(16, 2), 3);
        assert_eq!(smol.heads_per_task(1, 2), 3);
        assert_eq!(smol.heads_per_task(1, 16), 1);
        let qwen = tasks(14, 7);
        assert_eq!(qwen.heads_per_task(16, 2), 7);
        assert_eq!(qwen.heads_per_task(1, 8), 1);
        // Multi-query with a large group: a divisor of at most 16.
        let mqa = tasks(32, 32);
        assert_eq!(mqa.heads_per_task(16, 2), 16);
        assert_eq!(tasks(8, 1).heads_per_task(16, 2), 1);
    }
}
