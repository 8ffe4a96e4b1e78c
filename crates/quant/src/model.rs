//! Quantizing a whole model: an F32/F16/BF16 GGUF in, the same model in a llama.cpp file type
//! out, as a `GgufWriter` ready to be written to disk (`owl quantize`) or read back in memory
//! (`--quantize` at load, for Hugging Face directories and unquantized GGUFs).
//!
//! * **llama.cpp's recipe, owl's arithmetic.** Which tensor gets which type is `mix::plan`, a
//!   rule-by-rule port of `llama-quantize`'s per-tensor choices; the bytes come from the reference
//!   quantizers in this crate, which mirror ggml's `*_ref` functions (what `llama-quantize` uses
//!   without an importance matrix).
//! * **Nothing but the tensor data changes.** Metadata is copied in order; only
//!   `general.file_type` and `general.quantization_version` are set. Tensors keep their order;
//!   those that stay in their type are copied byte for byte.
//! * **Rows in parallel, no unsafe.** Each tensor is cut into chunks of whole rows; scoped
//!   threads take chunks from a shared queue and write disjoint output slices.

use std::collections::BTreeMap;
use std::sync::Mutex;

use owl_gguf::{GgmlType, GgufError, GgufFile, GgufWriter, TensorInfo, Value};

use crate::mix::{self, Choice, FileType, MixError, ModelInfo};

/// Rows per work item: about 64K elements, so progress moves smoothly and threads balance.
const CHUNK_ELEMENTS: usize = 1 << 16;

#[derive(Debug, thiserror::Error)]
pub enum ModelQuantError {
    #[error("split GGUF files ({0} parts) are not supported; merge them first")]
    Split(u64),
    #[error("the model is already quantized ({tensor} is {ty}); quantizing needs F32, F16 or BF16 weights")]
    AlreadyQuantized { tensor: String, ty: &'static str },
    #[error("the model has no general.architecture")]
    NoArch,
    #[error(transparent)]
    Plan(#[from] MixError),
    #[error("{tensor}: {why}")]
    Tensor { tensor: String, why: String },
    #[error(transparent)]
    Gguf(#[from] GgufError),
}

/// A quantized model, not yet written.
pub struct QuantizedModel {
    pub writer: GgufWriter,
    /// Tensors per output type name.
    pub counts: BTreeMap<&'static str, usize>,
    /// Bits per element over all tensors (llama.cpp's "BPW").
    pub bits_per_weight: f64,
    /// One line per kind of fallback (a row length the wanted type's blocks do not divide), as
    /// llama.cpp warns per tensor.
    pub fallbacks: Vec<String>,
}

/// Elements that `quantize_model` will convert (for a progress bar's total).
pub fn work(src: &GgufFile, plan: &[Choice]) -> u64 {
    src.tensors()
        .iter()
        .zip(plan)
        .filter(|(t, c)| c.target(t.ty) != t.ty)
        .map(|(t, _)| t.n_elements)
        .sum()
}

/// Refuses anything that is not an unquantized single-file model.
pub fn check_unquantized(src: &GgufFile) -> Result<(), ModelQuantError> {
    if let Some(n) = src.get_u64("split.count").filter(|&n| n > 1) {
        return Err(ModelQuantError::Split(n));
    }
    if let Some(t) = src.tensors().iter().find(|t| t.ty.block_size() > 1) {
        return Err(ModelQuantError::AlreadyQuantized {
            tensor: t.name.clone(),
            ty: t.ty.name(),
        });
    }
    Ok(())
}

/// The per-tensor plan for `ftype` (`pure`: llama-quantize --pure).
pub fn plan_for(
    src: &GgufFile,
    ftype: FileType,
    pure: bool,
) -> Result<Vec<Choice>, ModelQuantError> {
    let model = model_info(src)?;
    let shapes: Vec<(&str, &[u64])> = src
        .tensors()
        .iter()
        .map(|t| (t.name.as_str(), t.dims.as_slice()))
        .collect();
    Ok(mix::plan(ftype, &model, &shapes, pure)?)
}

/// Quantizes every tensor of `src` as `plan` says; `progress(tensor, elements)` is called as
/// chunks finish (from worker threads).
pub fn quantize_model(
    src: &GgufFile,
    ftype: FileType,
    plan: &[Choice],
    threads: usize,
    progress: &(dyn Fn(&str, u64) + Sync),
) -> Result<QuantizedModel, ModelQuantError> {
    check_unquantized(src)?;
    let mut w = GgufWriter::new();
    for (k, v) in src.metadata() {
        if !k.starts_with("split.") {
            w.add_kv(k, v.clone());
        }
    }
    w.add_kv("general.quantization_version", Value::U32(2));
    w.add_kv("general.file_type", Value::U32(ftype.id()));
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (t, choice) in src.tensors().iter().zip(plan) {
        let to = choice.target(t.ty);
        let data = convert(src, t, to, threads.max(1), progress)?;
        w.add_tensor(&t.name, &t.dims, to, data)?;
        *counts.entry(to.name()).or_default() += 1;
    }
    Ok(QuantizedModel {
        writer: w,
        counts,
        bits_per_weight: bits_per_weight(src, plan),
        fallbacks: fallbacks(src.tensors(), plan),
    })
}

/// The facts the mix rules need, from `general.architecture` and `{arch}.*`.
fn model_info(src: &GgufFile) -> Result<ModelInfo, ModelQuantError> {
    let arch = src
        .get_str("general.architecture")
        .ok_or(ModelQuantError::NoArch)?;
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

fn fallbacks(tensors: &[TensorInfo], plan: &[Choice]) -> Vec<String> {
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
    groups
        .into_iter()
        .map(|((wanted, got, row_len), (n, example))| {
            let block = GgmlType::from_name(wanted).map_or(0, GgmlType::block_size);
            format!(
                "{n} tensor(s) use {got} instead of {wanted}: row length {row_len} is not a \
                 multiple of {block} (e.g. {example})"
            )
        })
        .collect()
}

/// The tensor's bytes in type `to`.
fn convert(
    src: &GgufFile,
    t: &TensorInfo,
    to: GgmlType,
    threads: usize,
    progress: &(dyn Fn(&str, u64) + Sync),
) -> Result<Vec<u8>, ModelQuantError> {
    let bytes = src.tensor_data(t);
    if to == t.ty {
        return Ok(bytes.to_vec());
    }
    let bad = |why: String| ModelQuantError::Tensor {
        tensor: t.name.clone(),
        why,
    };
    let (from_fmt, to_fmt) = match (crate::format(t.ty), crate::format(to)) {
        (Some(f), Some(g)) => (f, g),
        _ => {
            return Err(bad(format!(
                "cannot convert from {} to {}",
                t.ty.name(),
                to.name()
            )))
        }
    };
    let quantize = to_fmt
        .quantize
        .ok_or_else(|| bad(format!("owl has no quantizer for {}", to.name())))?;
    let row_len = usize::try_from(t.dims.first().copied().unwrap_or(1))
        .map_err(|_| bad("row length out of range".into()))?;
    if row_len == 0 || row_len % to_fmt.block_size != 0 {
        return Err(bad(format!(
            "row length {row_len} does not fit {}",
            to.name()
        )));
    }
    let n_rows = usize::try_from(t.n_elements).map_err(|_| bad("too large".into()))? / row_len;
    let (src_row, dst_row) = (from_fmt.row_bytes(row_len), to_fmt.row_bytes(row_len));
    if bytes.len() != n_rows * src_row {
        return Err(bad(format!(
            "{} bytes of data, expected {}",
            bytes.len(),
            n_rows * src_row
        )));
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
                    progress(&t.name, (src_chunk.len() / src_row * row_len) as u64);
                }
            });
        }
    });
    Ok(out)
}

/// Bits per element over all tensors in their new types.
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
