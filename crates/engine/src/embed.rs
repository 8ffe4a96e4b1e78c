//! Embedding on the engine thread: many inputs, one vector each, between two generation steps.
//!
//! Encoders (BERT) have no KV cache and see each input whole, so inputs are packed side by side
//! into as few passes as the step budget allows (`n_batch` tokens a pass, an input never split;
//! one longer than the budget runs alone), one `Batch` chunk per input, and the model pools
//! each chunk itself (`Model::encode`). Decoder models embed one input at a time through the
//! ordinary forward pass in a KV cache of their own, in `n_batch` chunks, pooled here from the
//! final-normed hidden states: the mean (Ollama's and llama-server's choice for generative
//! models), or the last token when the file says so (Qwen3-Embedding); a decoder reranker
//! (Qwen3-Reranker) puts its last token through its classification head. Vectors are then
//! L2-normalised when asked (llama.cpp's `--embd-normalize 2`); rank scores never are.

use std::panic::{catch_unwind, AssertUnwindSafe};

use owl_model::{Batch, Logits, LogitsWanted, ModelError, Pooling, Runner};

use crate::gate::ComputeGate;

/// One vector per input of `inputs` (each non-empty).
pub(crate) fn embed(
    runner: &mut Runner,
    gate: Option<&ComputeGate>,
    n_batch: usize,
    inputs: &[Vec<u32>],
    normalize: bool,
) -> Result<Vec<Vec<f32>>, String> {
    if inputs.is_empty() || inputs.iter().any(|t| t.is_empty()) {
        return Err("nothing to embed".into());
    }
    let pooling = runner.model.pooling();
    let mut out = if runner.model.is_encoder() {
        encode_all(runner, gate, n_batch, inputs)?
    } else {
        inputs
            .iter()
            .map(|t| {
                if pooling == Pooling::Rank {
                    // llama.cpp: rank pooling on a causal model reads the last token, then
                    // the classification head (Qwen3-Reranker: softmax over yes / no).
                    let last = decode_one(runner, gate, n_batch, t, Pooling::Last)?;
                    let mut scores = Err(String::new());
                    guarded(gate, || {
                        scores = Ok(runner.classify(&last, 1)?);
                        Ok(())
                    })?;
                    scores
                } else {
                    decode_one(runner, gate, n_batch, t, pooling)
                }
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    if normalize && pooling != Pooling::Rank {
        out.iter_mut().for_each(|v| l2_normalise(v));
    }
    Ok(out)
}

/// Runs one pass while holding the compute gate; a panic in the pass is an error, not a dead
/// engine thread.
fn guarded(
    gate: Option<&ComputeGate>,
    f: impl FnOnce() -> Result<(), ModelError>,
) -> Result<(), String> {
    let pass = gate.map(|g| g.enter());
    let r = catch_unwind(AssertUnwindSafe(f));
    drop(pass);
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("model error: {e}")),
        Err(_) => Err("internal error: the forward pass panicked".into()),
    }
}

/// Encoder inputs packed into passes of at most `n_batch` tokens.
fn encode_all(
    runner: &mut Runner,
    gate: Option<&ComputeGate>,
    n_batch: usize,
    inputs: &[Vec<u32>],
) -> Result<Vec<Vec<f32>>, String> {
    let mut result = Vec::with_capacity(inputs.len());
    let mut batch = Batch::new();
    let mut out = Logits::default();
    let mut i = 0;
    while i < inputs.len() {
        batch.clear();
        while i < inputs.len()
            && (batch.chunks.is_empty() || batch.n_tokens() + inputs[i].len() <= n_batch)
        {
            let slot = batch.chunks.len();
            batch.push(slot, 0, &inputs[i], LogitsWanted::All);
            i += 1;
        }
        guarded(gate, || runner.encode(&batch, &mut out))?;
        if out.rows.len() != batch.chunks.len() {
            return Err(format!(
                "internal error: {} pooled rows for {} inputs",
                out.rows.len(),
                batch.chunks.len()
            ));
        }
        result.extend((0..out.rows.len()).map(|r| out.row(r).to_vec()));
    }
    Ok(result)
}

/// A decoder's embedding of `tokens`: the mean or the last of its final-normed hidden states.
fn decode_one(
    runner: &mut Runner,
    gate: Option<&ComputeGate>,
    n_batch: usize,
    tokens: &[u32],
    pooling: Pooling,
) -> Result<Vec<f32>, String> {
    let mut kv = runner.model.new_cache(tokens.len(), 1);
    let mut out = Logits {
        hidden: true,
        ..Logits::default()
    };
    let mut sum: Vec<f64> = Vec::new();
    let mut last: Vec<f32> = Vec::new();
    let mut batch = Batch::new();
    let n_chunks = tokens.len().div_ceil(n_batch);
    for (i, chunk) in tokens.chunks(n_batch).enumerate() {
        let wanted = match pooling {
            Pooling::Last if i + 1 == n_chunks => LogitsWanted::Last,
            Pooling::Cls if i == 0 => LogitsWanted::All,
            Pooling::Last | Pooling::Cls => LogitsWanted::None,
            Pooling::Mean | Pooling::Rank => LogitsWanted::All,
        };
        batch.clear();
        batch.push(0, i * n_batch, chunk, wanted);
        guarded(gate, || runner.forward(&batch, &mut kv, &mut out))?;
        let e = out.n_vocab;
        match pooling {
            Pooling::Last if i + 1 == n_chunks => last = first_row(&out, e)?,
            Pooling::Cls if i == 0 => last = first_row(&out, e)?,
            Pooling::Mean | Pooling::Rank => {
                sum.resize(e, 0.0);
                for row in out.data.chunks_exact(e) {
                    for (s, &x) in sum.iter_mut().zip(row) {
                        *s += x as f64;
                    }
                }
            }
            _ => {}
        }
    }
    if matches!(pooling, Pooling::Last | Pooling::Cls) {
        return Ok(last);
    }
    let n = tokens.len() as f64;
    Ok(sum.iter().map(|s| (s / n) as f32).collect())
}

fn first_row(out: &Logits, e: usize) -> Result<Vec<f32>, String> {
    out.data
        .get(..e)
        .map(<[f32]>::to_vec)
        .ok_or_else(|| "internal error: the pass returned no hidden state".to_string())
}

/// `v / |v|` (f64 sums), left as is when zero.
pub(crate) fn l2_normalise(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        let s = 1.0 / norm;
        v.iter_mut().for_each(|x| *x = (*x as f64 * s) as f32);
    }
}
