//! The ragged, multi-sequence batch one forward pass consumes.
//!
//! A batch is a list of chunks; each chunk is a run of consecutive positions of one sequence
//! (a prefill slice or a single decode token), bound to a KV-cache slot. Many sequences and
//! both kinds of work share one pass, which is what continuous batching and prompt GEMMs need.

/// One sequence's run of tokens inside a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqChunk {
    /// KV-cache slot of the sequence.
    pub slot: usize,
    /// Index of the chunk's first token in `Batch::tokens`.
    pub start: usize,
    /// Number of tokens.
    pub len: usize,
    /// Position of the first token in its sequence.
    pub pos0: usize,
    /// Which rows produce logits.
    pub logits: LogitsWanted,
    /// Attention sums in the order of llama.cpp's tiled GEMM, which llama.cpp uses for a
    /// chunk of two or more prompt tokens; otherwise in the order of its single-token path.
    /// `push` sets it like llama.cpp (`len >= 2`); a scheduler that must reproduce a run
    /// exactly (after pre-emption, or whatever the chunking) sets it per chunk.
    pub tiled_attention: bool,
    /// The LoRA adapter its rows use: an index into the adapters the forward pass is given
    /// (`Runner::forward_with`); `None`: the base model.
    pub adapter: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogitsWanted {
    None,
    Last,
    All,
}

/// Token ids of all chunks, back to back, with the chunk directory.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub tokens: Vec<u32>,
    pub chunks: Vec<SeqChunk>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    pub fn clear(&mut self) {
        self.tokens.clear();
        self.chunks.clear();
    }

    /// Appends a run of `tokens` for the sequence in `slot`, starting at position `pos0`.
    pub fn push(&mut self, slot: usize, pos0: usize, tokens: &[u32], logits: LogitsWanted) {
        self.push_with_order(slot, pos0, tokens, logits, tokens.len() >= 2);
    }

    /// `push` with an explicit attention summation order (see `SeqChunk::tiled_attention`).
    pub fn push_with_order(
        &mut self,
        slot: usize,
        pos0: usize,
        tokens: &[u32],
        logits: LogitsWanted,
        tiled_attention: bool,
    ) {
        self.chunks.push(SeqChunk {
            slot,
            start: self.tokens.len(),
            len: tokens.len(),
            pos0,
            logits,
            tiled_attention,
            adapter: None,
        });
        self.tokens.extend_from_slice(tokens);
    }

    /// Makes the last pushed chunk use adapter `adapter` (see `SeqChunk::adapter`).
    pub fn set_last_adapter(&mut self, adapter: Option<usize>) {
        if let Some(c) = self.chunks.last_mut() {
            c.adapter = adapter;
        }
    }

    /// The chunk holding row `row` of the batch (chunks are sorted by `start`); panics past
    /// the last row.
    pub fn chunk_of(&self, row: usize) -> &SeqChunk {
        &self.chunks[self.chunks.partition_point(|c| c.start + c.len <= row)]
    }

    pub fn n_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// (chunk index, row within chunk, batch row) of every row that wants logits, in order.
    pub fn logit_rows(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        self.chunks.iter().enumerate().flat_map(|(ci, c)| {
            let rows = match c.logits {
                LogitsWanted::None => 0..0,
                LogitsWanted::Last => c.len.saturating_sub(1)..c.len,
                LogitsWanted::All => 0..c.len,
            };
            rows.map(move |r| (ci, r, c.start + r))
        })
    }
}

/// Logits of the rows a batch asked for: [n_rows, n_vocab], in `Batch::logit_rows` order.
#[derive(Default)]
pub struct Logits {
    /// Set by the caller for embeddings: each requested row then holds the final-normed hidden
    /// state instead ([n_rows, n_embd], and `n_vocab` is n_embd); the output head is skipped.
    pub hidden: bool,
    pub n_vocab: usize,
    pub data: Vec<f32>,
    /// (chunk index, row within chunk) of each row of `data`.
    pub rows: Vec<(usize, usize)>,
}

impl Logits {
    /// Logits of output row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.n_vocab..(i + 1) * self.n_vocab]
    }

    /// The output rows of chunk `chunk`, looked for from row `from` on. Rows come in chunk
    /// order, so a caller visiting chunks in order passes the previous answer's `end` and the
    /// whole walk is linear in the rows.
    pub fn chunk_rows(&self, chunk: usize, from: usize) -> std::ops::Range<usize> {
        let rest = self.rows.get(from..).unwrap_or(&[]);
        let start = from + rest.iter().take_while(|&&(c, _)| c < chunk).count();
        let rest = self.rows.get(start..).unwrap_or(&[]);
        start..start + rest.iter().take_while(|&&(c, _)| c == chunk).count()
    }

    /// The last logit row of chunk `chunk`, if it produced any.
    pub fn last_of_chunk(&self, chunk: usize) -> Option<&[f32]> {
        let i = self.rows.iter().rposition(|&(c, _)| c == chunk)?;
        Some(self.row(i))
    }
}
