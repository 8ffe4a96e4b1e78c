//! `owl embed` and `owl rerank`: the engine's embedding command from the command line.
//!
//! `owl embed -m M TEXT...` writes one JSON line per text (`{"index", "embedding"}`),
//! L2-normalised unless `--normalize false`, tokenized with the model's special tokens as the
//! server's `/v1/embeddings` does (no TEXT: one text per line of stdin). `owl rerank -m M
//! --query Q DOC...` scores each document against the query with a reranker (a cross-encoder
//! with rank pooling), each pair laid out as the server lays it out, and writes
//! `{"index", "relevance_score", "document"}` lines best first. All inputs go to the engine in
//! one command, so an encoder runs them side by side. An input longer than the model's
//! positions is an error naming the limit unless `--truncate`.

use std::io::{BufRead, Write};

use anyhow::{bail, Context, Result};
use owl_engine::{EngineConfig, ModelBundle, Pooling, RunningModel};
use serde_json::json;

use crate::cli::{EmbedArgs, ModelArgs, RerankArgs};

fn open(args: &ModelArgs, command: &str) -> Result<RunningModel> {
    let r = crate::models::resolve(args.model.as_deref())?;
    crate::models::refuse_adapters(&r, command)?;
    let bundle = ModelBundle::open(&r.path, &args.open_options(args.ctx_size)?)?;
    let n_ctx = bundle.n_ctx;
    Ok(bundle.start(EngineConfig::single(n_ctx))?)
}

/// `ids` cut to `n_ctx` when `truncate`, else an error naming the limit.
fn fit(mut ids: Vec<u32>, n_ctx: usize, truncate: bool, what: &str) -> Result<Vec<u32>> {
    if ids.is_empty() {
        bail!("{what} is empty");
    }
    if ids.len() > n_ctx {
        if !truncate {
            bail!(
                "{what} has {} tokens, more than the model's limit of {n_ctx}; shorten it or pass --truncate",
                ids.len()
            );
        }
        ids.truncate(n_ctx);
    }
    Ok(ids)
}

fn run(m: &RunningModel, inputs: Vec<Vec<u32>>, normalize: bool) -> Result<Vec<Vec<f32>>> {
    let rx = m.engine.embed(inputs, normalize)?;
    let out = rx
        .blocking_recv()
        .context("the engine stopped before the embeddings were done")?
        .map_err(|e| anyhow::anyhow!("embedding failed: {e}"))?;
    Ok(out)
}

pub fn embed(a: EmbedArgs) -> Result<()> {
    let texts = if a.texts.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<Result<Vec<_>, _>>()
            .context("cannot read stdin")?
    } else {
        a.texts
    };
    if texts.is_empty() {
        bail!("nothing to embed: give TEXT arguments or lines on stdin");
    }
    let m = open(&a.model, "embed")?;
    if m.engine.pooling() == Pooling::Rank {
        bail!("this model is a reranker: use `owl rerank`");
    }
    let n_ctx = m.n_ctx();
    let mut inputs = Vec::with_capacity(texts.len());
    for (i, t) in texts.iter().enumerate() {
        let ids = m.tokenizer.encode(t, true, true)?;
        inputs.push(fit(ids, n_ctx, a.truncate, &format!("text {i}"))?);
    }
    let vectors = run(&m, inputs, a.normalize)?;
    let mut out = std::io::stdout().lock();
    for (i, v) in vectors.iter().enumerate() {
        writeln!(out, "{}", json!({"index": i, "embedding": v}))?;
    }
    Ok(())
}

pub fn rerank(a: RerankArgs) -> Result<()> {
    if a.docs.is_empty() {
        bail!("no documents to rank");
    }
    let m = open(&a.model, "rerank")?;
    if m.engine.pooling() != Pooling::Rank {
        bail!("this model is not a reranker (no classification head with rank pooling)");
    }
    let n_ctx = m.n_ctx();
    let mut pairs = Vec::with_capacity(a.docs.len());
    if m.pair.template.is_some() {
        // A decoder reranker's own prompt (Qwen3-Reranker), tokenized whole.
        for (i, d) in a.docs.iter().enumerate() {
            let ids = m
                .pair
                .template_tokens(&m.tokenizer, &a.query, d, n_ctx, a.truncate)
                .unwrap_or_else(|| Ok(Vec::new()))?;
            pairs.push(fit(ids, n_ctx, false, &format!("document {i}"))?);
        }
    } else {
        let q = m.tokenizer.encode(&a.query, false, true)?;
        let frame = m.pair.join(&q, &[]).len();
        for (i, d) in a.docs.iter().enumerate() {
            let mut dt = m.tokenizer.encode(d, false, true)?;
            if a.truncate && frame + dt.len() > n_ctx {
                dt.truncate(n_ctx.saturating_sub(frame));
            }
            pairs.push(fit(
                m.pair.join(&q, &dt),
                n_ctx,
                false,
                &format!("document {i}"),
            )?);
        }
    }
    let scores = run(&m, pairs, false)?;
    let mut ranked: Vec<(usize, f32)> = scores
        .iter()
        .enumerate()
        .map(|(i, s)| (i, s.first().copied().unwrap_or(f32::NAN)))
        .collect();
    ranked.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
    ranked.truncate(a.top_n.unwrap_or(ranked.len()));
    let mut out = std::io::stdout().lock();
    for (i, s) in ranked {
        writeln!(
            out,
            "{}",
            json!({"index": i, "relevance_score": s, "document": a.docs[i]})
        )?;
    }
    Ok(())
}
