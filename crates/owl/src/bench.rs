//! `owl bench`: prompt-processing and generation speed, measured the way `llama-bench` does.
//!
//! The point of this command is a same-machine, same-run comparison with llama.cpp
//! (scripts/compare_llama_cpp.py), so it copies llama-bench's protocol rather than inventing
//! one: a `ppN` test evaluates one prompt of N random tokens in `n_batch`-token forward passes
//! (logits for the last token only), a `tgN` test feeds N random tokens one pass at a time (no
//! sampling cost), each repetition starts from an empty KV cache, one warm-up run precedes
//! them (the whole prompt for pp, a single token for tg, as llama-bench does), and the context is
//! `n_prompt + n_gen` tokens unless `--ctx-size` says otherwise. The markdown table has
//! llama-bench's layout and the JSON objects carry llama-bench's field names (plus a few owl
//! extras: `isa`, `n_ctx`, `peak_rss_bytes`, `owl_version`), so one script reads both tools.
//!
//! The model is opened like everywhere else (`owl_engine::ModelBundle`), then driven directly
//! through `Runner::forward` instead of the engine: a benchmark measures forward passes, not
//! the engine's prefix reuse or sampling. Arguments
//! are validated before the model loads, so a bad flag costs nothing and fails with one line.

use std::io::Write;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use owl_engine::{ModelBundle, OpenOptions};
use owl_gguf::GgufFile;
use owl_kernels::Kernels;
use owl_model::{Batch, KvCache, Logits, LogitsWanted, Runner};
use serde_json::{json, Value};

use crate::show;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Path to a .gguf file, or a model name from the store (default: smollm2-135m-instruct).
    #[arg(short, long)]
    pub model: Option<String>,
    /// Prompt lengths to test, comma-separated (`128,512`); 0 skips the prompt tests.
    #[arg(short = 'p', long = "n-prompt", default_value = "512")]
    pub n_prompt: String,
    /// Generation lengths to test, comma-separated; 0 skips the generation tests.
    #[arg(short = 'n', long = "n-gen", default_value = "128")]
    pub n_gen: String,
    /// Thread counts, comma-separated (default: physical cores available to this process).
    #[arg(short, long)]
    pub threads: Option<String>,
    /// Repetitions of each test (after one warm-up run).
    #[arg(short, long = "repetitions", default_value_t = 5)]
    pub repetitions: usize,
    /// Output format: md (a llama-bench style table) or json (an array, llama-bench's fields).
    #[arg(short, long, default_value = "md")]
    pub output: String,
    /// Prompt tokens per forward pass.
    #[arg(short = 'b', long = "batch-size", default_value_t = N_BATCH)]
    pub batch_size: usize,
    /// KV-cache size in tokens (default: each test's n_prompt + n_gen, as llama-bench).
    #[arg(short = 'c', long)]
    pub ctx_size: Option<usize>,
    /// Skip the warm-up run.
    #[arg(long)]
    pub no_warmup: bool,
}

/// Prompt tokens per forward pass by default (llama.cpp's n_batch).
const N_BATCH: usize = 512;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Md,
    Json,
}

/// One test: `n_prompt` prompt tokens or `n_gen` generated tokens (never both, as llama-bench's
/// `-p`/`-n` tests).
#[derive(Clone, Copy)]
struct Test {
    n_prompt: usize,
    n_gen: usize,
}

impl Test {
    fn name(&self) -> String {
        if self.n_prompt > 0 {
            format!("pp{}", self.n_prompt)
        } else {
            format!("tg{}", self.n_gen)
        }
    }

    fn n_tokens(&self) -> usize {
        self.n_prompt + self.n_gen
    }
}

/// What is known about the model file, for the table and the JSON.
struct ModelInfo {
    filename: String,
    kind: String,
    size: u64,
    n_params: u64,
}

/// Validated arguments.
struct Plan {
    tests: Vec<Test>,
    threads: Vec<usize>,
    reps: usize,
    format: Format,
    n_batch: usize,
    ctx_size: Option<usize>,
    warmup: bool,
}

pub fn run(a: BenchArgs) -> Result<()> {
    let plan = plan(&a)?;
    let path = crate::models::resolve_path(a.model.as_deref(), "bench")?;
    let open =
        |threads: usize| ModelBundle::open(&path, &OpenOptions::from_env(Some(threads), None));
    // The model is opened once per thread count; the first opening also describes it.
    let mut first = Some(open(plan.threads[0])?);
    let info = first
        .as_ref()
        .map(|b| model_info(&b.runner.file, &path))
        .context("no model")?;
    // BOS leads a prompt when the model asks for it, as in llama-bench.
    let bos = first
        .as_ref()
        .filter(|b| b.tokenizer.add_bos())
        .and_then(|b| b.tokenizer.bos());
    let cpu = show::cpu_model();
    let isa = Kernels::detect().isa().name();

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if plan.format == Format::Md {
        writeln!(
            out,
            "owl {} bench: {}",
            env!("CARGO_PKG_VERSION"),
            info.filename
        )?;
        writeln!(
            out,
            "cpu: {cpu}; kernels: {isa}; n_batch {}; KV f16; {} repetitions{}",
            plan.n_batch,
            plan.reps,
            if plan.warmup { " after a warm-up" } else { "" }
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "| {:<30} | {:>10} | {:>10} | {:>7} | {:>8} | {:>20} |",
            "model", "size", "params", "threads", "test", "t/s"
        )?;
        let rule = |w: usize| format!("{}:", "-".repeat(w - 1));
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            "-".repeat(30),
            rule(10),
            rule(10),
            rule(7),
            rule(8),
            rule(20)
        )?;
        out.flush()?;
    }

    let mut results = Vec::new();
    let mut rng = Rng(0x5eed_0b1e_5eed_0b1e);
    for &threads in &plan.threads {
        let mut runner = match first.take() {
            Some(b) => b.runner,
            None => open(threads)?.runner,
        };
        let n_vocab = runner.model.hparams().n_vocab.max(1);
        for &test in &plan.tests {
            let n_ctx = plan.ctx_size.unwrap_or(test.n_tokens()).max(1);
            let test_time = utc_now();
            let mut kv = runner.model.new_cache(n_ctx, 1);
            let mut bench = Bench {
                runner: &mut runner,
                kv: &mut kv,
                batch: Batch::new(),
                logits: Logits::default(),
                rng: &mut rng,
                n_vocab,
                bos,
            };
            if plan.warmup {
                if test.n_prompt > 0 {
                    bench.prompt(test.n_prompt, plan.n_batch)?;
                }
                if test.n_gen > 0 {
                    bench.generate(1)?;
                }
            }
            let mut samples_ns = Vec::with_capacity(plan.reps);
            for _ in 0..plan.reps {
                // Every pass starts at position 0, so earlier K/V rows are dead: the cache is
                // empty for this repetition, as after llama-bench's llama_memory_clear.
                let t0 = Instant::now();
                if test.n_prompt > 0 {
                    bench.prompt(test.n_prompt, plan.n_batch)?;
                }
                if test.n_gen > 0 {
                    bench.generate(test.n_gen)?;
                }
                let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                samples_ns.push(ns.max(1));
            }
            drop(kv);
            let r = TestResult {
                test,
                threads,
                n_ctx,
                test_time,
                samples_ns,
                peak_rss: peak_rss_bytes(),
            };
            if plan.format == Format::Md {
                let (avg, sd) = r.ts_stats();
                writeln!(
                    out,
                    "| {:<30} | {:>10} | {:>10} | {:>7} | {:>8} | {:>20} |",
                    info.kind,
                    human_size(info.size),
                    human_params(info.n_params),
                    threads,
                    test.name(),
                    format!("{avg:.2} ± {sd:.2}")
                )?;
                out.flush()?;
            }
            results.push(r);
        }
    }

    match plan.format {
        Format::Md => {
            writeln!(out)?;
            match peak_rss_bytes() {
                Some(b) => writeln!(out, "peak RSS: {:.2} MiB", b as f64 / MIB)?,
                None => writeln!(out, "peak RSS: unknown")?,
            }
        }
        Format::Json => {
            let arr: Vec<Value> = results
                .iter()
                .map(|r| r.json(&info, &cpu, isa, &plan))
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&arr)?)?;
        }
    }
    out.flush()?;
    Ok(())
}

fn plan(a: &BenchArgs) -> Result<Plan> {
    let format = match a.output.as_str() {
        "md" => Format::Md,
        "json" => Format::Json,
        o => bail!("unknown output format '{o}' (use md or json)"),
    };
    if a.repetitions == 0 {
        bail!("--repetitions must be at least 1");
    }
    if a.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let n_prompt = list("--n-prompt", &a.n_prompt)?;
    let n_gen = list("--n-gen", &a.n_gen)?;
    let threads = match &a.threads {
        Some(t) => list("--threads", t)?,
        None => vec![owl_engine::default_threads()],
    };
    if threads.contains(&0) {
        bail!("--threads must be at least 1");
    }
    let mut tests: Vec<Test> = n_prompt
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| Test {
            n_prompt: n,
            n_gen: 0,
        })
        .collect();
    tests.extend(n_gen.iter().filter(|&&n| n > 0).map(|&n| Test {
        n_prompt: 0,
        n_gen: n,
    }));
    if tests.is_empty() {
        bail!("nothing to measure: every --n-prompt and --n-gen is 0");
    }
    if let Some(c) = a.ctx_size {
        if let Some(t) = tests.iter().find(|t| t.n_tokens() > c) {
            bail!(
                "--ctx-size {c} is too small for {} (needs {} tokens)",
                t.name(),
                t.n_tokens()
            );
        }
    }
    Ok(Plan {
        tests,
        threads,
        reps: a.repetitions,
        format,
        n_batch: a.batch_size,
        ctx_size: a.ctx_size,
        warmup: !a.no_warmup,
    })
}

/// Parses a comma-separated list of counts (`"128,512"`).
fn list(flag: &str, s: &str) -> Result<Vec<usize>> {
    let v = s
        .split(',')
        .map(|x| {
            x.trim()
                .parse::<usize>()
                .with_context(|| format!("{flag}: '{}' is not a count", x.trim()))
        })
        .collect::<Result<Vec<_>>>()?;
    if v.is_empty() {
        bail!("{flag} is empty");
    }
    Ok(v)
}

/// The state one test runs with.
struct Bench<'a> {
    runner: &'a mut Runner,
    kv: &'a mut KvCache,
    batch: Batch,
    logits: Logits,
    rng: &'a mut Rng,
    n_vocab: usize,
    bos: Option<u32>,
}

impl Bench<'_> {
    fn token(&mut self) -> u32 {
        (self.rng.next() % self.n_vocab as u64) as u32
    }

    /// One prompt of `n` random tokens from position 0, `n_batch` tokens per pass.
    fn prompt(&mut self, n: usize, n_batch: usize) -> Result<()> {
        let mut tokens = Vec::with_capacity(n_batch.min(n));
        let mut pos = 0;
        while pos < n {
            let len = n_batch.min(n - pos);
            tokens.clear();
            for i in 0..len {
                let t = match self.bos {
                    Some(b) if pos == 0 && i == 0 => b,
                    _ => self.token(),
                };
                tokens.push(t);
            }
            self.batch.clear();
            self.batch.push(0, pos, &tokens, LogitsWanted::Last);
            self.runner
                .forward(&self.batch, self.kv, &mut self.logits)
                .context("forward pass failed")?;
            pos += len;
        }
        Ok(())
    }

    /// `n` single-token passes from position 0, each fed a random token.
    fn generate(&mut self, n: usize) -> Result<()> {
        let mut t = match self.bos {
            Some(b) => b,
            None => self.token(),
        };
        for pos in 0..n {
            self.batch.clear();
            self.batch.push(0, pos, &[t], LogitsWanted::Last);
            self.runner
                .forward(&self.batch, self.kv, &mut self.logits)
                .context("forward pass failed")?;
            t = self.token();
        }
        Ok(())
    }
}

/// The measurements of one test.
struct TestResult {
    test: Test,
    threads: usize,
    n_ctx: usize,
    test_time: String,
    samples_ns: Vec<u64>,
    peak_rss: Option<u64>,
}

impl TestResult {
    fn samples_ts(&self) -> Vec<f64> {
        let n = self.test.n_tokens() as f64;
        self.samples_ns
            .iter()
            .map(|&ns| n * 1e9 / ns as f64)
            .collect()
    }

    /// Mean and sample standard deviation of tokens per second (llama-bench's avg_ts/stddev_ts).
    fn ts_stats(&self) -> (f64, f64) {
        mean_sd(&self.samples_ts())
    }

    fn json(&self, m: &ModelInfo, cpu: &str, isa: &str, plan: &Plan) -> Value {
        let ns: Vec<f64> = self.samples_ns.iter().map(|&v| v as f64).collect();
        let (avg_ns, sd_ns) = mean_sd(&ns);
        let (avg_ts, sd_ts) = self.ts_stats();
        json!({
            "build_commit": format!("owl-{}", env!("CARGO_PKG_VERSION")),
            "build_number": 0,
            "owl_version": env!("CARGO_PKG_VERSION"),
            "cpu_info": cpu,
            "gpu_info": "",
            "backends": "CPU",
            "isa": isa,
            "model_filename": m.filename,
            "model_type": m.kind,
            "model_size": m.size,
            "model_n_params": m.n_params,
            "n_batch": plan.n_batch,
            "n_ubatch": plan.n_batch,
            "n_threads": self.threads,
            "type_k": "f16",
            "type_v": "f16",
            "n_gpu_layers": 0,
            "flash_attn": false,
            "use_mmap": true,
            "embeddings": false,
            "n_prompt": self.test.n_prompt,
            "n_gen": self.test.n_gen,
            "n_depth": 0,
            "n_ctx": self.n_ctx,
            "test_time": self.test_time,
            "avg_ns": avg_ns.round() as u64,
            "stddev_ns": sd_ns.round() as u64,
            "avg_ts": avg_ts,
            "stddev_ts": sd_ts,
            "samples_ns": self.samples_ns,
            "samples_ts": self.samples_ts(),
            "peak_rss_bytes": self.peak_rss,
        })
    }
}

/// Mean and sample standard deviation (0 for fewer than two values), as llama-bench computes.
fn mean_sd(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

fn model_info(g: &GgufFile, path: &Path) -> ModelInfo {
    let size: u64 = g.tensors().iter().map(|t| t.n_bytes).sum();
    let n_params: u64 = g.tensors().iter().map(|t| t.n_elements).sum();
    let arch = g.get_str("general.architecture").unwrap_or("?");
    let label = g
        .get_str("general.size_label")
        .map(str::to_string)
        .unwrap_or_else(|| human_params(n_params).replace(' ', ""));
    ModelInfo {
        filename: path.display().to_string(),
        kind: format!("{arch} {label} {}", ftype_name(g)),
        size,
        n_params,
    }
}

/// llama.cpp's name for the file's quantization (`general.file_type`), else the type holding
/// the most bytes.
fn ftype_name(g: &GgufFile) -> String {
    let named = match g.get_u64("general.file_type") {
        Some(0) => Some("all F32"),
        Some(1) => Some("F16"),
        Some(2) => Some("Q4_0"),
        Some(3) => Some("Q4_1"),
        Some(7) => Some("Q8_0"),
        Some(8) => Some("Q5_0"),
        Some(9) => Some("Q5_1"),
        Some(10) => Some("Q2_K - Medium"),
        Some(11) => Some("Q3_K - Small"),
        Some(12) => Some("Q3_K - Medium"),
        Some(13) => Some("Q3_K - Large"),
        Some(14) => Some("Q4_K - Small"),
        Some(15) => Some("Q4_K - Medium"),
        Some(16) => Some("Q5_K - Small"),
        Some(17) => Some("Q5_K - Medium"),
        Some(18) => Some("Q6_K"),
        Some(32) => Some("BF16"),
        _ => None,
    };
    if let Some(n) = named {
        return n.to_string();
    }
    let mut by_type: Vec<(&str, u64)> = Vec::new();
    for t in g.tensors() {
        match by_type.iter_mut().find(|(n, _)| *n == t.ty.name()) {
            Some(e) => e.1 += t.n_bytes,
            None => by_type.push((t.ty.name(), t.n_bytes)),
        }
    }
    by_type
        .iter()
        .max_by_key(|(_, b)| *b)
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| "?".into())
}

const MIB: f64 = 1024.0 * 1024.0;

/// llama-bench's size column.
fn human_size(b: u64) -> String {
    let gib = MIB * 1024.0;
    if b as f64 >= gib {
        format!("{:.2} GiB", b as f64 / gib)
    } else {
        format!("{:.2} MiB", b as f64 / MIB)
    }
}

/// llama-bench's params column.
fn human_params(n: u64) -> String {
    if n >= 1_000_000_000 {
        format!("{:.2} B", n as f64 / 1e9)
    } else {
        format!("{:.2} M", n as f64 / 1e6)
    }
}

/// The process's peak resident set (VmHWM), on Linux.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Now as llama-bench's `test_time`: ISO 8601 UTC, seconds precision.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    iso_utc(secs as i64)
}

/// `secs` since the epoch as ISO 8601 UTC (the calendar arithmetic lives in owl-text's
/// `strftime`, which chat templates use).
fn iso_utc(secs: i64) -> String {
    owl_text::strftime::Tm::from_unix(secs).format("%Y-%m-%dT%H:%M:%SZ")
}

/// splitmix64: reproducible random token ids without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(11_016 * 86_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso_utc(20_454 * 86_400 + 3_661), "2026-01-01T01:01:01Z");
    }

    #[test]
    fn stats_match_llama_bench() {
        assert_eq!(mean_sd(&[5.0]), (5.0, 0.0));
        let (m, s) = mean_sd(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (s - 1.0).abs() < 1e-12);
    }

    #[test]
    fn lists() {
        assert_eq!(list("-p", "128, 512").ok(), Some(vec![128, 512]));
        assert!(list("-p", "12x").is_err());
        assert!(list("-p", "").is_err());
    }
}
