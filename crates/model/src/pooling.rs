//! How a model's hidden states become one vector per input: llama.cpp's pooling types.
//!
//! An embedding model states its pooling in `{arch}.pooling_type` (llama.cpp's
//! `LLAMA_POOLING_TYPE_*` numbers): the mean of every token's final hidden state (sentence
//! transformers such as all-MiniLM), the first token's (`[CLS]`: BGE), the last token's
//! (decoder embedders such as Qwen3-Embedding, whose last token has seen the whole input), or
//! `rank`: the first token through the model's classification head, one relevance score per
//! input (cross-encoder rerankers). A generative model states none; owl then embeds with the
//! mean, as Ollama and llama-server do for such models.

use owl_gguf::GgufFile;
use owl_kernels::{ActBuffer, QMatrix};

use crate::blocks::affine::Affine;
use crate::scratch::Compute;
use crate::tensors::Tensors;
use crate::ModelError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    Mean,
    /// The first token (`[CLS]`).
    Cls,
    /// The last token.
    Last,
    /// The first token through the classification head: a relevance score (reranking).
    Rank,
}

impl Pooling {
    /// `{arch}.pooling_type`, if the file states a pooling; `none` (0) and absent are `None`.
    pub fn from_gguf(g: &GgufFile, arch: &str) -> Result<Option<Pooling>, ModelError> {
        let keys = crate::keys::Keys::new(g, arch);
        let key = keys.name("pooling_type");
        match keys.count("pooling_type")? {
            None | Some(0) => Ok(None),
            Some(1) => Ok(Some(Pooling::Mean)),
            Some(2) => Ok(Some(Pooling::Cls)),
            Some(3) => Ok(Some(Pooling::Last)),
            Some(4) => Ok(Some(Pooling::Rank)),
            Some(n) => Err(ModelError::BadKey {
                key,
                why: format!("unknown pooling type {n} (0 none, 1 mean, 2 cls, 3 last, 4 rank)"),
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Last => "last",
            Pooling::Rank => "rank",
        }
    }
}

/// The classification head of a reranker, as llama.cpp's `build_pooling` applies it to the
/// pooled row: `tanh(cls · x + b)` when the file has `cls` (BERT cross-encoders), then
/// `cls.output` (bge-reranker, ms-marco), then a softmax over the outputs for Qwen3-Reranker,
/// whose `cls.output` holds the output head's rows of "yes" and "no" (the score is P(yes)).
pub struct ClassifierHead {
    pub cls: Option<Affine>,
    pub cls_out: Option<Affine>,
    pub softmax: bool,
}

impl ClassifierHead {
    /// The head under `t` (the root): `cls` and `cls.output`, whichever the file has (at least
    /// one), fed by rows of `n_embd`.
    pub fn load(t: &Tensors<'_>, n_embd: usize, softmax: bool) -> Result<Self, ModelError> {
        let cls = if t.has("cls") {
            Some(Affine::load(t, "cls", n_embd, n_embd)?)
        } else {
            None
        };
        let cls_out = match t.dims("cls.output").and_then(|d| d.get(1).copied()) {
            Some(n_out) => Some(Affine::load(
                t,
                "cls.output",
                n_embd,
                (n_out as usize).max(1),
            )?),
            None => None,
        };
        if cls.is_none() && cls_out.is_none() {
            return Err(ModelError::MissingTensor(
                "cls.output.weight (rank pooling needs a classification head)".into(),
            ));
        }
        Ok(ClassifierHead {
            cls,
            cls_out,
            softmax,
        })
    }

    /// Outputs per input (the scores; the first is the relevance score).
    pub fn n_out(&self) -> usize {
        match (&self.cls_out, &self.cls) {
            (Some(c), _) | (None, Some(c)) => c.w.rows,
            (None, None) => 0,
        }
    }

    pub fn weights(&self) -> Vec<(&'static str, &QMatrix)> {
        let mut w = Vec::new();
        if let Some(c) = &self.cls {
            w.push(("cls", &c.w));
        }
        if let Some(c) = &self.cls_out {
            w.push(("cls.output", &c.w));
        }
        w
    }

    /// `pooled`: [n, n_embd]; returns [n, n_out].
    pub fn forward(
        &self,
        cx: &Compute<'_>,
        pooled: &[f32],
        n: usize,
        act: &mut ActBuffer,
    ) -> Vec<f32> {
        let mut cur = pooled.to_vec();
        if let Some(cls) = &self.cls {
            let mut h = vec![0.0f32; n * cls.w.rows];
            cls.forward(cx, &cur, n, &mut h, act);
            for v in &mut h {
                *v = v.tanh();
            }
            cur = h;
        }
        if let Some(co) = &self.cls_out {
            let mut h = vec![0.0f32; n * co.w.rows];
            co.forward(cx, &cur, n, &mut h, act);
            cur = h;
        }
        if self.softmax {
            for row in cur.chunks_exact_mut(self.n_out().max(1)) {
                softmax(row);
            }
        }
        cur
    }
}

/// ggml's `soft_max` of one row: `exp(x - max)` summed in f64, then scaled.
fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f64;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v as f64;
    }
    let scale = (1.0 / sum) as f32;
    for v in row.iter_mut() {
        *v *= scale;
    }
}
