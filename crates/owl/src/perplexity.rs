//! `owl perplexity`: perplexity of a model on a text, and the KL divergence of one run from
//! another, in llama-perplexity's protocol (llama.cpp `tools/perplexity/perplexity.cpp`), so
//! the figures compare with llama.cpp's and a new kernel path or quant format is checked
//! against the exact path (`OWL_NO_REPACK=1`) in one command.
//!
//! Protocol, as llama-perplexity's: the whole text is tokenized once (BOS first where the model
//! adds BOS, special-token text left as text); it must give at least `2 × n_ctx` tokens. It is
//! cut into `tokens / n_ctx` chunks of `n_ctx` tokens (or `--chunks`); each chunk is evaluated
//! from an empty KV cache, its first token replaced by BOS where the model adds BOS, and only the
//! second half is scored: the logits at positions `first = n_ctx/2 ..= n_ctx - 2` predict tokens
//! `first + 1 ..= n_ctx - 1` (`n_ctx - 1 - first` tokens per chunk). The negative
//! log-likelihood of a token is `ln Σ exp(l - max) - (l[tok] - max)`, the exps in f32 summed in
//! f64. PPL = exp(mean NLL), ± `PPL · sqrt(var(NLL) / (count - 1))`.
//!
//! `-b` splits a chunk into passes of `-b` tokens when it is below `n_ctx`, and runs `-b / n_ctx`
//! chunks (in separate KV slots) per pass when it is a multiple (llama.cpp's `n_seq`).
//!
//! `--kl-divergence-base FILE` writes the log-probabilities of every scored position to FILE
//! (owl's base format, below); `--kl-divergence --kl-divergence-base FILE` runs the model again
//! on the tokens stored in FILE and prints llama.cpp's statistics of this run (Q) against the
//! base: both PPLs, ln(PPL(Q)/PPL(base)), KL divergence (mean ± error, percentiles), Δp of the
//! right token, and how often the top token is the same. Base files written by
//! `llama-perplexity --kl-divergence-base` (`_logits_`, log-probs quantized to 16 bits) are read
//! too, so owl can be compared with llama.cpp directly.
//!
//! owl's base format (little-endian), exact f32 log-probabilities so that a run compared with its
//! own base gives KL = 0 and 100 % same top token:
//!
//! ```text
//! magic     8 bytes  "OWLKLD01"
//! n_vocab   u32
//! n_ctx     u32
//! n_chunks  u32
//! first     u32                              (= n_ctx / 2)
//! tokens    u32 [n_chunks × n_ctx]           (as tokenized, BOS not substituted)
//! logprobs  f32 [n_chunks][n_ctx - 1 - first][n_vocab]
//! ```
//!
//! Rows are streamed to and from the file chunk by chunk: memory holds one pass's logits.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use owl_engine::{AdapterBase, ModelBundle, OpenOptions};
use owl_model::{Batch, Logits, LogitsWanted, LoraAdapter, Runner};
use owl_text::Tokenizer;

/// llama-perplexity's default context.
const DEFAULT_CTX: usize = 512;
const OWL_MAGIC: &[u8; 8] = b"OWLKLD01";
const LLAMA_MAGIC: &[u8; 8] = b"_logits_";

#[derive(Args)]
pub struct PerplexityArgs {
    /// Path to a .gguf file, or a model name from the store (default: smollm2-135m-instruct).
    #[arg(short, long)]
    pub model: Option<String>,
    /// The text to score (UTF-8). Optional with --kl-divergence, which scores the base file's
    /// tokens (given, the text must tokenize to those tokens).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Chunk size in tokens (default 512; with --kl-divergence, the base file's).
    #[arg(short = 'c', long)]
    pub ctx_size: Option<usize>,
    /// Tokens per forward pass (default: the chunk size); a multiple of -c runs that many chunks
    /// per pass.
    #[arg(short = 'b', long)]
    pub batch_size: Option<usize>,
    /// Threads for compute (default: physical cores available to this process).
    #[arg(short, long)]
    pub threads: Option<usize>,
    /// Score at most this many chunks (default: all).
    #[arg(long)]
    pub chunks: Option<usize>,
    /// Write this run's log-probabilities to FILE; with --kl-divergence, read the base from it.
    #[arg(long, value_name = "FILE")]
    pub kl_divergence_base: Option<PathBuf>,
    /// Compare this run with the base in --kl-divergence-base (KL divergence, same top token, …).
    #[arg(long, requires = "kl_divergence_base")]
    pub kl_divergence: bool,
    #[command(flatten)]
    pub lora: crate::cli::LoraArgs,
}

pub fn run(a: PerplexityArgs) -> Result<()> {
    if a.kl_divergence {
        let path = a
            .kl_divergence_base
            .clone()
            .context("--kl-divergence needs --kl-divergence-base FILE")?;
        return kl_divergence(&a, &path);
    }
    let text_path = a
        .file
        .as_deref()
        .context("no text to score: give one with -f FILE")?;
    let text = read_text(text_path)?;
    let n_ctx = a.ctx_size.unwrap_or(DEFAULT_CTX);
    check_ctx(n_ctx)?;
    let (mut runner, tokenizer, adapter) = open(&a)?;
    let tokens = tokenize(&tokenizer, &text)?;
    if tokens.len() < 2 * n_ctx {
        bail!(
            "{} tokenizes to only {} tokens; perplexity with a context of {n_ctx} needs at least {} \
             (2 × n_ctx): give a longer text or a smaller -c",
            text_path.display(),
            tokens.len(),
            2 * n_ctx
        );
    }
    eprintln!(
        "perplexity: {} tokenizes to {} tokens",
        text_path.display(),
        tokens.len()
    );
    let n_chunks = a
        .chunks
        .map_or(tokens.len() / n_ctx, |c| c.min(tokens.len() / n_ctx));
    if n_chunks == 0 {
        bail!("--chunks 0: nothing to score");
    }
    let n_vocab = runner.model.hparams().n_vocab;
    let tokens = &tokens[..n_chunks * n_ctx];
    let mut base = match &a.kl_divergence_base {
        Some(p) => Some(BaseWriter::create(p, n_vocab, n_ctx, n_chunks, tokens)?),
        None => None,
    };

    let mut nll = Nll::default();
    let mut row_logp = Vec::new();
    let mut out = std::io::stdout();
    evaluate(
        &mut runner,
        adapter.as_ref(),
        &tokenizer,
        tokens,
        n_ctx,
        a.batch_size,
        |chunk, row, tok| {
            nll.add(row, tok);
            if let Some(w) = base.as_mut() {
                log_probs(row, &mut row_logp);
                w.row(&row_logp)?;
            }
            if let Some(c) = chunk {
                print!("[{}]{:.4},", c + 1, nll.ppl());
                out.flush().ok();
            }
            Ok(())
        },
    )?;
    println!();
    if let Some(w) = base {
        w.finish()?;
    }
    let (ppl, err) = nll.estimate();
    println!("Final estimate: PPL = {ppl:.4} +/- {err:.5}");
    Ok(())
}

/// Runs every chunk of `tokens` (`n_chunks × n_ctx`) and calls `score(done, logits, target)`
/// for each scored position in order (chunk by chunk, ascending position); `done` is
/// `Some(chunk)` on the last scored row of a chunk.
fn evaluate(
    runner: &mut Runner,
    adapter: Option<&LoraAdapter>,
    tokenizer: &Tokenizer,
    tokens: &[u32],
    n_ctx: usize,
    batch_size: Option<usize>,
    mut score: impl FnMut(Option<usize>, &[f32], u32) -> Result<()>,
) -> Result<()> {
    let n_chunks = tokens.len() / n_ctx;
    let n_batch = batch_size.unwrap_or(n_ctx).max(1);
    if n_batch > n_ctx && n_batch % n_ctx != 0 {
        bail!("-b {n_batch} must be below -c {n_ctx} or a multiple of it");
    }
    let n_seq = (n_batch / n_ctx).max(1);
    let n_batch = n_batch.min(n_ctx);
    let passes = n_ctx.div_ceil(n_batch);
    let first = n_ctx / 2;
    let bos = add_bos_token(tokenizer)?;
    let n_ctx_train = runner.model.hparams().n_ctx_train;
    if n_ctx > n_ctx_train {
        eprintln!("owl: warning: the model was trained on only {n_ctx_train} context tokens ({n_ctx} asked)");
    }
    eprintln!(
        "perplexity: {n_chunks} chunks, n_ctx={n_ctx}, batch_size={}, n_seq={n_seq}",
        n_batch * n_seq
    );
    // Sequences are fed `n_batch` tokens at a time: sliding-window layers keep only their
    // window and one such pass.
    let n_pages = n_seq * owl_model::kv_cache::pages_for(n_ctx);
    let mut kv = runner.model.new_paged_cache(n_ctx, n_seq, n_pages, n_batch);
    let mut batch = Batch::new();
    let adapters: Vec<&LoraAdapter> = adapter.into_iter().collect();
    // One pass's logits: [rows wanted, n_vocab].
    let mut logits = Logits::default();
    // One chunk with BOS substituted: [n_ctx].
    let mut chunk_tokens = vec![0u32; n_ctx];
    let t0 = Instant::now();
    for group in (0..n_chunks).step_by(n_seq) {
        let seqs = n_seq.min(n_chunks - group);
        for slot in 0..seqs {
            kv.release(slot);
        }
        for pass in 0..passes {
            let pos0 = pass * n_batch;
            let len = n_batch.min(n_ctx - pos0);
            let wanted = if pos0 + len > first {
                LogitsWanted::All
            } else {
                LogitsWanted::None
            };
            batch.clear();
            for slot in 0..seqs {
                let start = (group + slot) * n_ctx;
                chunk_tokens.copy_from_slice(&tokens[start..start + n_ctx]);
                if let Some(b) = bos {
                    chunk_tokens[0] = b;
                }
                batch.push(slot, pos0, &chunk_tokens[pos0..pos0 + len], wanted);
                batch.set_last_adapter(adapter.map(|_| 0));
            }
            runner
                .forward_with(&batch, &adapters, &mut kv, &mut logits)
                .context("forward pass failed")?;
            for (i, &(ci, r)) in logits.rows.iter().enumerate() {
                let pos = pos0 + r;
                if pos < first || pos + 1 >= n_ctx {
                    continue;
                }
                let chunk = group + ci;
                let last = pos + 2 == n_ctx;
                score(
                    last.then_some(chunk),
                    logits.row(i),
                    tokens[chunk * n_ctx + pos + 1],
                )?;
            }
        }
        if group == 0 {
            let s = t0.elapsed().as_secs_f64();
            eprintln!(
                "perplexity: {s:.2} seconds per pass - ETA {:.2} minutes",
                s * n_chunks.div_ceil(n_seq) as f64 / 60.0
            );
        }
    }
    Ok(())
}

fn kl_divergence(a: &PerplexityArgs, path: &Path) -> Result<()> {
    let mut base = BaseReader::open(path)?;
    let n_ctx = base.n_ctx;
    if let Some(c) = a.ctx_size {
        if c != n_ctx {
            bail!(
                "{} was computed with a context of {n_ctx}, -c says {c}",
                path.display()
            );
        }
    }
    let (mut runner, tokenizer, adapter) = open(a)?;
    let n_vocab = runner.model.hparams().n_vocab;
    if base.n_vocab != n_vocab {
        bail!(
            "{} has a vocabulary of {} tokens, this model {n_vocab}: not the same model family",
            path.display(),
            base.n_vocab
        );
    }
    let n_chunks = a.chunks.map_or(base.n_chunks, |c| c.min(base.n_chunks));
    let tokens = base.tokens[..n_chunks * n_ctx].to_vec();
    if let Some(text_path) = &a.file {
        let own = tokenize(&tokenizer, &read_text(text_path)?)?;
        if let Some(i) = (0..tokens.len()).find(|&i| own.get(i) != Some(&tokens[i])) {
            bail!(
                "{} does not tokenize to the tokens of {} (they differ at token {i}): another \
                 text or tokenizer",
                text_path.display(),
                path.display()
            );
        }
    }
    let per_chunk = n_ctx - 1 - n_ctx / 2;
    let mut kld = KlStats::with_capacity(n_chunks * per_chunk);
    let mut base_row = vec![0f32; n_vocab];
    println!(
        "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p"
    );
    evaluate(
        &mut runner,
        adapter.as_ref(),
        &tokenizer,
        &tokens,
        n_ctx,
        a.batch_size,
        |chunk, row, tok| {
            base.row(&mut base_row)?;
            kld.add(row, &base_row, tok as usize);
            if let Some(c) = chunk {
                println!("{:4}{}", c + 1, kld.progress_line());
            }
            Ok(())
        },
    )?;
    println!();
    kld.print_summary();
    Ok(())
}

/// Opens the model the way every command does (`ModelBundle`); perplexity drives the runner
/// directly (it scores given tokens; it does not generate). The model's LoRA adapter or
/// `--lora`'s (`crate::models::pick_adapter`) is read for `Runner::forward_with`.
fn open(a: &PerplexityArgs) -> Result<(Runner, Arc<Tokenizer>, Option<LoraAdapter>)> {
    let r = crate::models::resolve(a.model.as_deref())?;
    let pick = crate::models::pick_adapter(&r, &a.lora)?;
    let b = ModelBundle::open(&r.path, &OpenOptions::from_env(a.threads, None))?;
    let adapter = match pick {
        Some((path, scale)) => Some(AdapterBase::new(&b.runner).lora(&path, scale)?),
        None => None,
    };
    Ok((b.runner, b.tokenizer, adapter))
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn check_ctx(n_ctx: usize) -> Result<()> {
    if n_ctx < 4 {
        bail!("-c {n_ctx} is too small: a chunk needs at least 4 tokens");
    }
    Ok(())
}

/// llama.cpp's `common_tokenize(ctx, text, add_special = true, parse_special = false)`.
fn tokenize(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    tokenizer
        .encode(text, true, false)
        .context("cannot tokenize the text")
}

/// The BOS id where the model adds BOS (its first token of an empty text with specials).
fn add_bos_token(tokenizer: &Tokenizer) -> Result<Option<u32>> {
    let probe = tokenizer
        .encode("", true, false)
        .context("cannot tokenize")?;
    Ok(probe
        .first()
        .copied()
        .filter(|&t| Some(t) == tokenizer.bos()))
}

/// Max logit, index of its first occurrence, and Σ exp(l - max) (f32 exps summed in f64, as
/// llama.cpp's `log_softmax`).
fn softmax_stats(logits: &[f32]) -> (f32, usize, f64) {
    let mut max = logits[0];
    let mut imax = 0;
    for (i, &l) in logits.iter().enumerate().skip(1) {
        if l > max {
            max = l;
            imax = i;
        }
    }
    let sum: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
    (max, imax, sum)
}

/// Log-probabilities of a logit row, as the KL comparison computes them (`l - (max + lse)`,
/// in f32), so a run compared with its own base gives exactly zero (llama.cpp sums
/// `lb - l + m` instead, which can leave a rounding residue).
fn log_probs(logits: &[f32], out: &mut Vec<f32>) {
    let (max, _, sum) = softmax_stats(logits);
    let m = max + sum.ln() as f32;
    out.clear();
    out.extend(logits.iter().map(|&l| l - m));
}

/// Running sums of the negative log-likelihood.
#[derive(Default)]
struct Nll {
    sum: f64,
    sum2: f64,
    count: usize,
}

impl Nll {
    fn add(&mut self, logits: &[f32], tok: u32) {
        let (max, _, sum) = softmax_stats(logits);
        let v = -(f64::from(logits[tok as usize] - max) - sum.ln());
        self.sum += v;
        self.sum2 += v * v;
        self.count += 1;
    }

    fn ppl(&self) -> f64 {
        (self.sum / self.count.max(1) as f64).exp()
    }

    /// PPL and its error, as llama-perplexity's final estimate.
    fn estimate(&self) -> (f64, f64) {
        let n = self.count as f64;
        let mean = self.sum / n;
        let var = self.sum2 / n - mean * mean;
        let ppl = mean.exp();
        let err = if var > 0.0 && self.count > 1 {
            (var / (n - 1.0)).sqrt() * ppl
        } else {
            0.0
        };
        (ppl, err)
    }
}

/// llama.cpp's `kl_divergence_result` plus every position's KLD and Δp for the percentiles.
#[derive(Default)]
struct KlStats {
    sum_nll: f64,
    sum_nll2: f64,
    sum_nll_base: f64,
    sum_nll_base2: f64,
    sum_nll_nll_base: f64,
    sum_kld: f64,
    sum_kld2: f64,
    sum_p_diff: f64,
    sum_p_diff2: f64,
    sum_p_diff4: f64,
    max_p_diff: f32,
    n_same_top: usize,
    count: usize,
    /// [count]
    kld_values: Vec<f32>,
    /// [count]
    p_diff_values: Vec<f32>,
}

/// Mean and its standard error, as llama.cpp's `mean_and_uncertainty`.
fn mean_err(sum: f64, sum2: f64, count: usize) -> (f64, f64) {
    if count < 1 {
        return (0.0, 0.0);
    }
    let n = count as f64;
    let f = sum / n;
    let df = sum2 / n - f * f;
    let df = if df > 0.0 && count > 10 {
        (df / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (f, df)
}

fn covariance(a: f64, b: f64, ab: f64, count: usize) -> f64 {
    if count < 10 {
        return 0.0;
    }
    let n = count as f64;
    (ab / n - (a / n) * (b / n)) / (n - 1.0)
}

/// llama.cpp's linear-interpolated percentile of sorted `v`.
fn percentile(v: &[f32], fraction: f32) -> f32 {
    if fraction <= 0.0 {
        return v[0];
    }
    if fraction >= 1.0 {
        return v[v.len() - 1];
    }
    let p = fraction * (v.len() - 1) as f32;
    let ip = p as usize;
    let p = p - ip as f32;
    (1.0 - p) * v[ip] + p * v[(ip + 1).min(v.len() - 1)]
}

fn median(v: &[f32]) -> f32 {
    let n = v.len();
    if n % 2 == 0 {
        0.5 * (v[n / 2] + v[n / 2 - 1])
    } else {
        v[n / 2]
    }
}

impl KlStats {
    fn with_capacity(n: usize) -> KlStats {
        KlStats {
            kld_values: Vec::with_capacity(n),
            p_diff_values: Vec::with_capacity(n),
            ..KlStats::default()
        }
    }

    /// One position: this run's `logits`, the base's `base_logp` ([n_vocab]), the right token.
    fn add(&mut self, logits: &[f32], base_logp: &[f32], tok: usize) {
        let (max, imax, sum) = softmax_stats(logits);
        let lse = sum.ln() as f32;
        let nll = max + lse - logits[tok];
        self.sum_nll += f64::from(nll);
        self.sum_nll2 += f64::from(nll) * f64::from(nll);
        let nll_base = -base_logp[tok];
        self.sum_nll_base += f64::from(nll_base);
        self.sum_nll_base2 += f64::from(nll_base) * f64::from(nll_base);
        self.sum_nll_nll_base += f64::from(nll) * f64::from(nll_base);

        let m = max + lse;
        let mut kl = 0f64;
        let mut imax_base = 0;
        let mut base_max = base_logp[0];
        for (i, (&lb, &l)) in base_logp.iter().zip(logits).enumerate() {
            if lb > base_max {
                base_max = lb;
                imax_base = i;
            }
            if lb > -16.0 {
                kl += f64::from(lb.exp() * (lb - (l - m)));
            }
        }
        self.sum_kld += kl;
        self.sum_kld2 += kl * kl;
        self.count += 1;
        if imax == imax_base {
            self.n_same_top += 1;
        }
        let p_diff = (-nll).exp() - (-nll_base).exp();
        self.sum_p_diff += f64::from(p_diff);
        let d2 = f64::from(p_diff) * f64::from(p_diff);
        self.sum_p_diff2 += d2;
        self.sum_p_diff4 += d2 * d2;
        self.max_p_diff = self.max_p_diff.max(p_diff.abs());
        self.kld_values.push(kl as f32);
        self.p_diff_values.push(p_diff);
    }

    fn ppl(&self) -> (f64, f64) {
        let (m, e) = mean_err(self.sum_nll, self.sum_nll2, self.count);
        (m.exp(), m.exp() * e)
    }

    fn ln_ratio(&self) -> (f64, f64) {
        let (q, qe) = mean_err(self.sum_nll, self.sum_nll2, self.count);
        let (b, be) = mean_err(self.sum_nll_base, self.sum_nll_base2, self.count);
        let cov = covariance(
            self.sum_nll,
            self.sum_nll_base,
            self.sum_nll_nll_base,
            self.count,
        );
        (q - b, (qe * qe + be * be - 2.0 * cov).max(0.0).sqrt())
    }

    fn rms_p_diff(&self) -> (f64, f64) {
        let (mse, mse_err) = mean_err(self.sum_p_diff2, self.sum_p_diff4, self.count);
        let rms = mse.sqrt();
        let err = if rms > 0.0 { 0.5 / rms * mse_err } else { 0.0 };
        (rms, err)
    }

    fn same_top(&self) -> (f64, f64) {
        let p = self.n_same_top as f64 / self.count as f64;
        let err = if self.count > 1 {
            (p * (1.0 - p) / (self.count - 1) as f64).sqrt()
        } else {
            0.0
        };
        (p, err)
    }

    /// The per-chunk columns of llama-perplexity's KL table.
    fn progress_line(&self) -> String {
        let (ppl, ppl_e) = self.ppl();
        let (r, r_e) = self.ln_ratio();
        let (kl, kl_e) = mean_err(self.sum_kld, self.sum_kld2, self.count);
        let (rms, rms_e) = self.rms_p_diff();
        let (top, top_e) = self.same_top();
        format!(
            "    {ppl:9.4} ± {ppl_e:9.4}    {r:10.5} ± {r_e:10.5}    {kl:10.5} ± {kl_e:10.5}    {:6.3} ± {:6.3} %    {:6.3} ± {:6.3} %",
            100.0 * rms,
            100.0 * rms_e,
            100.0 * top,
            100.0 * top_e
        )
    }

    fn print_summary(mut self) {
        if self.count == 0 {
            return;
        }
        self.kld_values.sort_by(f32::total_cmp);
        self.p_diff_values.sort_by(f32::total_cmp);
        let (ppl, ppl_e) = self.ppl();
        let (b, b_e) = mean_err(self.sum_nll_base, self.sum_nll_base2, self.count);
        let (_, q_e) = mean_err(self.sum_nll, self.sum_nll2, self.count);
        let (ppl_b, ppl_b_e) = (b.exp(), b.exp() * b_e);
        let cov = covariance(
            self.sum_nll,
            self.sum_nll_base,
            self.sum_nll_nll_base,
            self.count,
        );
        let (r, r_e) = self.ln_ratio();
        println!("====== Perplexity statistics ======");
        println!("Mean PPL(Q)                   : {ppl:10.6} ± {ppl_e:10.6}");
        println!("Mean PPL(base)                : {ppl_b:10.6} ± {ppl_b_e:10.6}");
        let cor = if q_e > 0.0 && b_e > 0.0 {
            cov / (q_e * b_e)
        } else {
            1.0
        };
        println!("Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2}%", 100.0 * cor);
        println!("Mean ln(PPL(Q)/PPL(base))     : {r:10.6} ± {r_e:10.6}");
        println!(
            "Mean PPL(Q)/PPL(base)         : {:10.6} ± {:10.6}",
            r.exp(),
            r.exp() * r_e
        );
        let ppl_cov = ppl * ppl_b * cov;
        let d_e = (ppl_e * ppl_e + ppl_b_e * ppl_b_e - 2.0 * ppl_cov)
            .max(0.0)
            .sqrt();
        println!(
            "Mean PPL(Q)-PPL(base)         : {:10.6} ± {d_e:10.6}",
            ppl - ppl_b
        );
        println!();
        println!("====== KL divergence statistics ======");
        let (kl, kl_e) = mean_err(self.sum_kld, self.sum_kld2, self.count);
        let k = &self.kld_values;
        println!("Mean    KLD: {kl:10.6} ± {kl_e:10.6}");
        println!("Maximum KLD: {:10.6}", k[k.len() - 1]);
        for (label, f) in [
            ("99.9%", 0.999),
            ("99.0%", 0.990),
            ("95.0%", 0.950),
            ("90.0%", 0.900),
        ] {
            println!("{label}   KLD: {:10.6}", percentile(k, f));
        }
        println!("Median  KLD: {:10.6}", median(k));
        for (label, f) in [
            ("10.0%", 0.100),
            (" 5.0%", 0.050),
            (" 1.0%", 0.010),
            (" 0.1%", 0.001),
        ] {
            println!("{label}   KLD: {:10.6}", percentile(k, f));
        }
        println!("Minimum KLD: {:10.6}", k[0]);
        println!();
        println!("====== Token probability statistics ======");
        let (pd, pd_e) = mean_err(self.sum_p_diff, self.sum_p_diff2, self.count);
        let d = &self.p_diff_values;
        println!("Mean    Δp: {:6.3} ± {:5.3} %", 100.0 * pd, 100.0 * pd_e);
        println!("Maximum Δp: {:6.3}%", 100.0 * d[d.len() - 1]);
        for (label, f) in [
            ("99.9%", 0.999),
            ("99.0%", 0.990),
            ("95.0%", 0.950),
            ("90.0%", 0.900),
            ("75.0%", 0.750),
        ] {
            println!("{label}   Δp: {:6.3}%", 100.0 * percentile(d, f));
        }
        println!("Median  Δp: {:6.3}%", 100.0 * median(d));
        for (label, f) in [
            ("25.0%", 0.250),
            ("10.0%", 0.100),
            (" 5.0%", 0.050),
            (" 1.0%", 0.010),
            (" 0.1%", 0.001),
        ] {
            println!("{label}   Δp: {:6.3}%", 100.0 * percentile(d, f));
        }
        println!("Minimum Δp: {:6.3}%", 100.0 * d[0]);
        let (rms, rms_e) = self.rms_p_diff();
        println!("RMS Δp    : {:6.3} ± {:5.3} %", 100.0 * rms, 100.0 * rms_e);
        let (top, top_e) = self.same_top();
        println!("Same top p: {:6.3} ± {:5.3} %", 100.0 * top, 100.0 * top_e);
    }
}

/// Streams a base file in owl's format (see the module doc).
struct BaseWriter {
    out: BufWriter<File>,
    path: PathBuf,
    /// One row's bytes: [4 × n_vocab].
    bytes: Vec<u8>,
}

impl BaseWriter {
    fn create(
        path: &Path,
        n_vocab: usize,
        n_ctx: usize,
        n_chunks: usize,
        tokens: &[u32],
    ) -> Result<BaseWriter> {
        let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut w = BaseWriter {
            out: BufWriter::with_capacity(1 << 20, f),
            path: path.to_path_buf(),
            bytes: Vec::with_capacity(4 * n_vocab),
        };
        let mut head = Vec::with_capacity(24 + 4 * tokens.len());
        head.extend_from_slice(OWL_MAGIC);
        for v in [n_vocab, n_ctx, n_chunks, n_ctx / 2] {
            head.extend_from_slice(&u32::try_from(v)?.to_le_bytes());
        }
        for &t in tokens {
            head.extend_from_slice(&t.to_le_bytes());
        }
        w.write(&head)?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// One scored position's log-probabilities, [n_vocab].
    fn row(&mut self, logp: &[f32]) -> Result<()> {
        self.bytes.clear();
        self.bytes.extend(logp.iter().flat_map(|v| v.to_le_bytes()));
        self.out
            .write_all(&self.bytes)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    fn finish(mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        eprintln!(
            "perplexity: log-probabilities saved to {}",
            self.path.display()
        );
        Ok(())
    }
}

/// How the rows of a base file are stored.
enum RowFormat {
    /// owl: f32 log-probabilities.
    F32,
    /// llama.cpp: f32 scale, f32 minimum, then u16 steps, padded to an even count.
    LlamaU16 { nv: usize },
}

/// Reads a base file (owl's or llama-perplexity's) row by row, after checking its size.
struct BaseReader {
    input: BufReader<File>,
    path: PathBuf,
    format: RowFormat,
    n_vocab: usize,
    n_ctx: usize,
    n_chunks: usize,
    /// [n_chunks × n_ctx]
    tokens: Vec<u32>,
    /// One row as stored.
    raw: Vec<u8>,
}

impl BaseReader {
    fn open(path: &Path) -> Result<BaseReader> {
        let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let size = f.metadata()?.len();
        let mut input = BufReader::with_capacity(1 << 20, f);
        let bad = || format!("{} is not a KL-divergence base file", path.display());
        let mut magic = [0u8; 8];
        input.read_exact(&mut magic).with_context(bad)?;
        let mut u32s = |n: usize| -> Result<Vec<u32>> {
            let mut b = vec![0u8; 4 * n];
            input
                .read_exact(&mut b)
                .with_context(|| format!("{} is truncated (in its header)", path.display()))?;
            Ok(b.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        };
        let (format, n_vocab, n_ctx, n_chunks, header) = if &magic == OWL_MAGIC {
            let h = u32s(4)?;
            let (n_vocab, n_ctx, n_chunks) = (h[0] as usize, h[1] as usize, h[2] as usize);
            if h[3] as usize != n_ctx / 2 {
                bail!(
                    "{} is corrupt (first = {}, n_ctx = {n_ctx})",
                    path.display(),
                    h[3]
                );
            }
            (RowFormat::F32, n_vocab, n_ctx, n_chunks, 24u64)
        } else if &magic == LLAMA_MAGIC {
            let h = u32s(3)?;
            let (n_ctx, n_vocab, n_chunks) = (h[0] as usize, h[1] as usize, h[2] as usize);
            let nv = 2 * n_vocab.div_ceil(2) + 4;
            (RowFormat::LlamaU16 { nv }, n_vocab, n_ctx, n_chunks, 20u64)
        } else {
            bail!(bad());
        };
        if n_ctx < 4 || n_vocab == 0 || n_chunks == 0 {
            bail!(
                "{} is corrupt (n_vocab {n_vocab}, n_ctx {n_ctx}, n_chunks {n_chunks})",
                path.display()
            );
        }
        let row_bytes = match format {
            RowFormat::F32 => 4 * n_vocab,
            RowFormat::LlamaU16 { nv } => 2 * nv,
        };
        let rows = n_chunks as u64 * (n_ctx - 1 - n_ctx / 2) as u64;
        let want = header + 4 * (n_chunks * n_ctx) as u64 + rows * row_bytes as u64;
        if size != want {
            bail!(
                "{} is truncated or corrupt: {size} bytes, its header (n_vocab {n_vocab}, n_ctx \
                 {n_ctx}, n_chunks {n_chunks}) says {want}",
                path.display()
            );
        }
        let tokens = u32s(n_chunks * n_ctx)?;
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
            bail!(
                "{} is corrupt (token id {t} ≥ n_vocab {n_vocab})",
                path.display()
            );
        }
        Ok(BaseReader {
            input,
            path: path.to_path_buf(),
            format,
            n_vocab,
            n_ctx,
            n_chunks,
            tokens,
            raw: vec![0u8; row_bytes],
        })
    }

    /// The next row's log-probabilities into `out` ([n_vocab]).
    fn row(&mut self, out: &mut [f32]) -> Result<()> {
        self.input
            .read_exact(&mut self.raw)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        let f32_at = |b: &[u8], i: usize| f32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        match self.format {
            RowFormat::F32 => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = f32_at(&self.raw, 4 * i);
                }
            }
            RowFormat::LlamaU16 { .. } => {
                let scale = f32_at(&self.raw, 0);
                let min = f32_at(&self.raw, 4);
                for (i, o) in out.iter_mut().enumerate() {
                    let q = u16::from_le_bytes([self.raw[8 + 2 * i], self.raw[9 + 2 * i]]);
                    *o = scale * f32::from(q) + min;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_llama_cpp() {
        let v = [0.0, 1.0, 2.0, 3.0];
        assert_eq!(percentile(&v, 0.5), 1.5);
        assert_eq!(percentile(&v, 0.0), 0.0);
        assert_eq!(percentile(&v, 1.0), 3.0);
        assert_eq!(median(&v), 1.5);
    }

    #[test]
    fn a_row_against_itself_has_zero_divergence() {
        let logits: Vec<f32> = (0..100).map(|i| ((i * 37) % 17) as f32 * 0.3).collect();
        let mut logp = Vec::new();
        log_probs(&logits, &mut logp);
        let mut s = KlStats::default();
        s.add(&logits, &logp, 5);
        assert_eq!(s.sum_kld, 0.0);
        assert_eq!(s.n_same_top, 1);
        assert_eq!(s.sum_p_diff, 0.0);
    }
}
