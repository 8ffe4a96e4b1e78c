//! Attention of every (token, head) pair of a batch, spread over the thread pool: the part
//! grouped-query and latent attention share. Each pair is an independent task: its token
//! attends over its own sequence's cache rows `0..=pos`, so the batch may mix sequences freely,
//! and a thread works in its own slice of the scratch buffers.

use half::f16;
use owl_kernels::attention::{
    attend_group, attend_head, AttnScratch, GroupScratch, HeadOptions, HeadView, MAX_GROUP,
};
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
    /// Consecutive query heads that read one KV head (`view(slot, head)` is the same for all
    /// of them; 1 for none). A decode row's heads then go up to [`MAX_GROUP`] at a time
    /// through `attend_group`, which reads and converts their K and V rows once; prompt rows
    /// (tiled order) stay one head at a time. The bits are the same either way.
    pub group: usize,
}

impl HeadTasks {
    /// Heads per task: a piece of one KV head's group.
    fn piece(&self) -> usize {
        if self.group > 1 && self.q_width == self.out_width {
            self.group.min(MAX_GROUP)
        } else {
            1
        }
    }

    /// f32 and f16 scratch one thread needs (`scores` and `f16s` hold `n_threads` of each).
    pub fn per_thread(&self) -> (usize, usize) {
        let p = self.piece();
        (p * self.n_pad, p * (self.n_pad + self.q_width))
    }
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
        let (per_scores, per_f16) = self.per_thread();
        assert!(
            scores.len() >= n_threads * per_scores && f16s.len() >= n_threads * per_f16,
            "attention scratch too small"
        );
        assert!(q.len() >= batch.n_tokens() * nh * qw && out.len() >= batch.n_tokens() * nh * ow);
        // A task is one row's piece of one KV head's query heads.
        let piece = self.piece();
        let group = if piece > 1 { self.group } else { 1 };
        let pieces = group.div_ceil(piece);
        let units = nh / group * pieces;
        let n_tasks = batch.n_tokens() * units;
        let scores = SharedMut::new(scores);
        let f16s = SharedMut::new(f16s);
        let outp = SharedMut::new(out);
        // Row -> chunk lookup without allocation: chunks are sorted by `start`.
        let chunk_of = |row: usize| batch.chunks.partition_point(|c| c.start + c.len <= row);
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
            for task in chunk * chunk_tasks..((chunk + 1) * chunk_tasks).min(n_tasks) {
                let (row, unit) = (task / units, task % units);
                let (kvh, part) = (unit / pieces, unit % pieces);
                let h0 = kvh * group + part * piece;
                let h1 = (h0 + piece).min((kvh + 1) * group);
                let c = &batch.chunks[chunk_of(row)];
                let pos = c.pos0 + (row - c.start);
                let first = (row * nh + h0, row * nh + h1);
                // SAFETY: the task owns the outputs of heads h0..h1 of its row; tasks are
                // disjoint across threads.
                let o = unsafe { outp.slice(first.0 * ow, (h1 - h0) * ow) };
                let mut head_opts = [HeadOptions::default(); MAX_GROUP];
                for (h, slot) in (h0..h1).zip(head_opts.iter_mut()) {
                    *slot = opts(h, pos);
                }
                let head_opts = &head_opts[..h1 - h0];
                let one_window = head_opts.iter().all(|o| o.first == head_opts[0].first);
                if h1 - h0 > 1 && !c.tiled_attention && one_window {
                    let (p16, q16) = f.split_at_mut(piece * n_pad);
                    let mut gs = GroupScratch {
                        scores: &mut *sc,
                        p16,
                        q16,
                        stride: n_pad,
                    };
                    attend_group(
                        cx.kernels,
                        &q[first.0 * qw..first.1 * qw],
                        &view(c.slot, h0),
                        pos + 1,
                        self.scale,
                        head_opts,
                        &mut gs,
                        o,
                    );
                    continue;
                }
                let (p16, q16) = f.split_at_mut(n_pad);
                let mut hs = AttnScratch {
                    scores: &mut *sc,
                    p16,
                    q16: &mut q16[..qw],
                };
                for (i, h) in (h0..h1).enumerate() {
                    let t = row * nh + h;
                    attend_head(
                        cx.kernels,
                        &q[t * qw..(t + 1) * qw],
                        &view(c.slot, h),
                        pos + 1,
                        self.scale,
                        c.tiled_attention,
                        head_opts[i],
                        &mut hs,
                        &mut o[i * ow..(i + 1) * ow],
                    );
                }
            }
        });
    }
}
