//! `owl quantize IN OUT TYPE`: converts an F32/F16/BF16 GGUF, or a Hugging Face directory, into
//! a quantized GGUF that owl and llama.cpp both load.
//!
//! The work is `owl_quant::model` (llama.cpp's per-tensor recipe, owl's reference quantizers,
//! rows in parallel); this command adds the checks on paths, a progress bar, and a safe write:
//! the output goes to `OUT.part` and is renamed when complete, so a failed run never leaves a
//! truncated `OUT` behind.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use owl_quant::mix::FileType;
use owl_quant::model::{check_unquantized, plan_for, quantize_model, work};

#[derive(clap::Args)]
pub struct QuantizeArgs {
    /// The F32, F16 or BF16 GGUF file (or Hugging Face directory) to read.
    pub input: PathBuf,
    /// The GGUF file to write.
    pub output: PathBuf,
    /// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K_S, Q4_K_M (= Q4_K), Q5_K_S, Q5_K_M (= Q5_K), Q6_K,
    /// F16, BF16 or F32 (case-insensitive).
    #[arg(value_name = "TYPE")]
    pub ty: String,
    /// Threads (default: all available).
    #[arg(short, long)]
    pub threads: Option<usize>,
    /// Give every quantizable weight TYPE's base type, without the _M/_S mix and the output
    /// tensor rule (llama-quantize --pure); rows that do not fit still fall back.
    #[arg(long)]
    pub pure: bool,
}

/// The file type named `ty`, or an error listing the names.
pub fn parse_type(ty: &str) -> Result<FileType> {
    FileType::parse(ty).ok_or_else(|| {
        let names: Vec<&str> = FileType::all().map(FileType::name).collect();
        anyhow!(
            "unknown quantization type '{ty}'; expected one of {}, Q4_K, Q5_K",
            names.join(", ")
        )
    })
}

pub fn run(a: QuantizeArgs) -> Result<()> {
    let start = Instant::now();
    let ftype = parse_type(&a.ty)?;
    let threads = match a.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if !a.input.exists() {
        bail!("input {} not found", a.input.display());
    }
    if same_file(&a.input, &a.output) {
        bail!("the output must be a different file from the input");
    }
    let out_dir = match a.output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !out_dir.is_dir() {
        bail!("output directory {} does not exist", out_dir.display());
    }
    // The error's message already names its cause; anyhow's `{:#}` would repeat it.
    let src = owl_hf::open_model(&a.input)
        .map_err(|e| anyhow!("cannot read {}: {e}", a.input.display()))?;
    check_unquantized(&src).map_err(|e| anyhow!("input: {e}"))?;
    let plan = plan_for(&src, ftype, a.pure)?;
    let bar = progress_bar(work(&src, &plan));
    let progress = |tensor: &str, n: u64| {
        bar.set_message(tensor.to_string());
        bar.inc(n);
    };
    let q = quantize_model(&src, ftype, &plan, threads, &progress)?;
    bar.finish_and_clear();
    for line in &q.fallbacks {
        eprintln!("owl: {line}");
    }

    let part = part_path(&a.output);
    let written = q
        .writer
        .write_file(&part)
        .map_err(|e| anyhow!("cannot write the output: {e}"))
        .and_then(|()| {
            std::fs::rename(&part, &a.output).map_err(|e| {
                anyhow!(
                    "cannot rename {} to {}: {e}",
                    part.display(),
                    a.output.display()
                )
            })
        });
    if written.is_err() {
        // Best effort: the error being returned is the one worth reporting.
        let _ = std::fs::remove_file(&part);
    }
    written?;

    let size_in = input_size(&a.input);
    let size_out = file_size(&a.output);
    let types: Vec<String> = q.counts.iter().map(|(t, n)| format!("{n} {t}")).collect();
    eprintln!(
        "owl: quantized {} ({}) -> {} ({}, {}{}, {:.2} bpw) in {:.1}s; tensors: {}",
        a.input.display(),
        human(size_in),
        a.output.display(),
        human(size_out),
        ftype.name(),
        if a.pure { " pure" } else { "" },
        q.bits_per_weight,
        start.elapsed().as_secs_f64(),
        types.join(", ")
    );
    Ok(())
}

pub fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "quantizing [{bar:40}] {percent:>3}% {elapsed_precise} (eta {eta}) {wide_msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// A file's size, or the sum of a directory's files.
fn input_size(p: &Path) -> u64 {
    if p.is_dir() {
        std::fs::read_dir(p)
            .map(|it| it.flatten().map(|e| file_size(&e.path())).sum())
            .unwrap_or(0)
    } else {
        file_size(p)
    }
}

fn part_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    }
}
