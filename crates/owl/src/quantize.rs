//! `owl quantize IN OUT TYPE`: converts an F32/F16/BF16 GGUF into a quantized one that owl and
//! llama.cpp both load.
//!
//! Why it is built this way:
//!
//! * **llama.cpp's recipe, owl's arithmetic.** Which tensor gets which type is decided by
//!   `owl_quant::mix::plan`, a rule-by-rule port of `llama-quantize`'s per-tensor choices (so a
//!   "Q4_K_M" from owl has the same tensor types as one from llama.cpp). The bytes come from the
//!   reference quantizers in `owl_quant`, which mirror ggml's `*_ref` functions, the ones
//!   `llama-quantize` itself uses when no importance matrix is given.
//! * **Nothing but the tensor data changes.** All metadata is copied in order; only
//!   `general.file_type` (llama.cpp's `LLAMA_FTYPE_*` id) and `general.quantization_version` are
//!   set. Tensors keep the input's order; tensors that are not quantized (norms, biases, 1-D
//!   tensors) are copied byte for byte.
//! * **Rows in parallel, no unsafe.** Each tensor is cut into chunks of whole rows; scoped
//!   threads take chunks from a shared queue and write their disjoint output slices. The input
//!   is memory-mapped, so only the output is held in memory (the writer needs every tensor
//!   before it can lay out the file); it goes to `OUT.part` and is renamed when complete, so a
//!   failed run never leaves a truncated `OUT` behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use owl_gguf::{GgmlType, GgufFile, GgufWriter, TensorInfo, Value};
use owl_quant::mix::{self, Choice, FileType, ModelInfo};

#[derive(clap::Args)]
pub struct QuantizeArgs {
    /// The F32, F16 or BF16 GGUF file to read.
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

/// Rows per work item: about 64K elements, so progress moves smoothly and threads balance.
const CHUNK_ELEMENTS: usize = 1 << 16;

pub fn run(a: QuantizeArgs) -> Result<()> {
    let start = Instant::now();
    let ftype = FileType::parse(&a.ty).ok_or_else(|| {
        let names: Vec<&str> = FileType::all().map(FileType::name).collect();
        anyhow!(
            "unknown quantization type '{}'; expected one of {}, Q4_K, Q5_K",
            a.ty,
            names.join(", ")
        )
    })?;
    let threads = match a.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if !a.input.is_file() {
        bail!("input file {} not found", a.input.display());
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
    // GgufError's message already names its cause; anyhow's `{:#}` would repeat it.
    let src =
        GgufFile::open(&a.input).map_err(|e| anyhow!("cannot read {}: {e}", a.input.display()))?;
    check_input(&src)?;
    let model = model_info(&src)?;

    let shapes: Vec<(&str, &[u64])> = src
        .tensors()
        .iter()
        .map(|t| (t.name.as_str(), t.dims.as_slice()))
        .collect();
    let plan = mix::plan(ftype, &model, &shapes, a.pure)?;
    report_fallbacks(src.tensors(), &plan);

    let mut w = GgufWriter::new();
    for (k, v) in src.metadata() {
        if !k.starts_with("split.") {
            w.add_kv(k, v.clone());
        }
    }
    w.add_kv("general.quantization_version", Value::U32(2));
    w.add_kv("general.file_type", Value::U32(ftype.id()));

    let work: u64 = src
        .tensors()
        .iter()
        .zip(&plan)
        .filter(|(t, c)| c.target(t.ty) != t.ty)
        .map(|(t, _)| t.n_elements)
        .sum();
    let bar = progress_bar(work);
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (t, choice) in src.tensors().iter().zip(&plan) {
        let to = choice.target(t.ty);
        bar.set_message(t.name.clone());
        let data = convert(&src, t, to, threads, &bar)?;
        w.add_tensor(&t.name, &t.dims, to, data)
            .with_context(|| format!("tensor {}", t.name))?;
        *counts.entry(to.name()).or_default() += 1;
    }
    bar.finish_and_clear();

    let part = part_path(&a.output);
    let written = w
        .write_file(&part)
        .map_err(|e| anyhow!("cannot write the output: {e}"))
        .and_then(|()| {
            std::fs::rename(&part, &a.output).with_context(|| {
                format!("cannot rename {} to {}", part.display(), a.output.display())
            })
        });
    if written.is_err() {
        // Best effort: the error being returned is the one worth reporting.
        let _ = std::fs::remove_file(&part);
    }
    written?;

    let size_in = file_size(&a.input);
    let size_out = file_size(&a.output);
    let types: Vec<String> = counts.iter().map(|(t, n)| format!("{n} {t}")).collect();
    eprintln!(
        "owl: quantized {} ({}) -> {} ({}, {}{}, {:.2} bpw) in {:.1}s; tensors: {}",
        a.input.display(),
        human(size_in),
        a.output.display(),
        human(size_out),
        ftype.name(),
        if a.pure { " pure" } else { "" },
        bits_per_weight(&src, &plan),
        start.elapsed().as_secs_f64(),
        types.join(", ")
    );
    Ok(())
}

/// Refuses anything that is not an unquantized model.
fn check_input(src: &GgufFile) -> Result<()> {
    if let Some(n) = src.get_u64("split.count").filter(|&n| n > 1) {
        bail!("split GGUF files ({n} parts) are not supported; merge them first");
    }
    if let Some(t) = src.tensors().iter().find(|t| t.ty.block_size() > 1) {
        bail!(
            "input is already quantized ({} is {}); owl quantize needs an F32, F16 or BF16 GGUF",
            t.name,
            t.ty.name()
        );
    }
    Ok(())
}

/// The facts the mix rules need, from `general.architecture` and `{arch}.*`.
fn model_info(src: &GgufFile) -> Result<ModelInfo> {
    let arch = src
        .get_str("general.architecture")
        .ok_or_else(|| anyhow!("the input has no general.architecture; is it a model?"))?;
    let get = |k: &str| {
        src.get_u64(&format!("{arch}.{k}"))
            .and_then(|v| usize::try_from(v).ok())
    };
    // Without block_count, count the blocks the tensor names mention.
    let n_layer = get("block_count").unwrap_or_else(|| {
        src.tensors()
            .iter()
            .filter_map(|t| mix::layer_of(&t.name))
            .max()
            .map_or(0, |l| l + 1)
    });
    let n_head = get("attention.head_count").unwrap_or(0);
    let n_head_kv = get("attention.head_count_kv").unwrap_or(n_head);
    Ok(ModelInfo::new(
        arch,
        n_layer,
        get("expert_count").unwrap_or(0),
        n_head,
        n_head_kv,
    ))
}

/// One line per kind of fallback, as llama.cpp warns per tensor.
fn report_fallbacks(tensors: &[TensorInfo], plan: &[Choice]) {
    let mut groups: BTreeMap<(&str, &str, u64), (usize, &str)> = BTreeMap::new();
    for (t, c) in tensors.iter().zip(plan) {
        if let Choice::Convert {
            ty,
            fallback_from: Some(wanted),
        } = *c
        {
            let row_len = t.dims.first().copied().unwrap_or(1);
            let g = groups
                .entry((wanted.name(), ty.name(), row_len))
                .or_insert((0, &t.name));
            g.0 += 1;
        }
    }
    for ((wanted, got, row_len), (n, example)) in groups {
        let block = GgmlType::from_name(wanted).map_or(0, GgmlType::block_size);
        eprintln!(
            "owl: {n} tensor(s) use {got} instead of {wanted}: row length {row_len} is not a \
             multiple of {block} (e.g. {example})"
        );
    }
}

/// The tensor's bytes in type `to`.
fn convert(
    src: &GgufFile,
    t: &TensorInfo,
    to: GgmlType,
    threads: usize,
    bar: &indicatif::ProgressBar,
) -> Result<Vec<u8>> {
    let bytes = src.tensor_data(t);
    if to == t.ty {
        return Ok(bytes.to_vec());
    }
    let (from_fmt, to_fmt) = match (owl_quant::format(t.ty), owl_quant::format(to)) {
        (Some(f), Some(g)) => (f, g),
        _ => bail!(
            "cannot convert {} from {} to {}",
            t.name,
            t.ty.name(),
            to.name()
        ),
    };
    let quantize = to_fmt
        .quantize
        .ok_or_else(|| anyhow!("owl has no quantizer for {}", to.name()))?;
    let row_len = usize::try_from(t.dims.first().copied().unwrap_or(1))?;
    if row_len == 0 || row_len % to_fmt.block_size != 0 {
        bail!(
            "{}: row length {row_len} does not fit {}",
            t.name,
            to.name()
        );
    }
    let n_rows = usize::try_from(t.n_elements)? / row_len;
    let (src_row, dst_row) = (from_fmt.row_bytes(row_len), to_fmt.row_bytes(row_len));
    if bytes.len() != n_rows * src_row {
        bail!(
            "{}: {} bytes of data, expected {}",
            t.name,
            bytes.len(),
            n_rows * src_row
        );
    }
    let mut out = vec![0u8; n_rows * dst_row];
    let rows_per_chunk = (CHUNK_ELEMENTS / row_len).max(1);
    let jobs = Mutex::new(
        bytes
            .chunks(rows_per_chunk * src_row)
            .zip(out.chunks_mut(rows_per_chunk * dst_row)),
    );
    let n_threads = threads.min(n_rows.div_ceil(rows_per_chunk)).max(1);
    std::thread::scope(|s| {
        for _ in 0..n_threads {
            s.spawn(|| {
                let mut row = vec![0f32; row_len];
                loop {
                    let job = match jobs.lock() {
                        Ok(mut it) => it.next(),
                        Err(_) => None,
                    };
                    let Some((src_chunk, dst_chunk)) = job else {
                        break;
                    };
                    for (s, d) in src_chunk
                        .chunks_exact(src_row)
                        .zip(dst_chunk.chunks_exact_mut(dst_row))
                    {
                        (from_fmt.dequantize)(s, &mut row);
                        quantize(&row, d);
                    }
                    bar.inc((src_chunk.len() / src_row * row_len) as u64);
                }
            });
        }
    });
    Ok(out)
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
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

/// Bits per element over all tensors in their new types (llama.cpp's "BPW").
fn bits_per_weight(src: &GgufFile, plan: &[Choice]) -> f64 {
    let (mut bits, mut n) = (0f64, 0f64);
    for (t, c) in src.tensors().iter().zip(plan) {
        bits += c.target(t.ty).bytes_for(t.n_elements).unwrap_or(0) as f64 * 8.0;
        n += t.n_elements as f64;
    }
    if n > 0.0 {
        bits / n
    } else {
        0.0
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
