//! The trained adapter on disk, and the checkpoint a run resumes from.
//!
//! The adapter is llama.cpp's GGUF adapter format (`general.type = adapter`,
//! `adapter.type = lora`, `adapter.lora.alpha`, `blk.N.<role>.weight.lora_a` with GGUF dims
//! `[n_in, rank]` and `.lora_b` with `[rank, n_out]`, f32), which `llama-cli --lora`,
//! `owl run --lora` and `owl serve --lora` all load.
//!
//! A checkpoint is the same file with the run's state added: each pair's AdamW moments
//! (`….lora_a.adam_m`, …) and `owl.finetune.*` keys (steps done, the settings that must not
//! change on `--resume`). Loaders of adapters ignore the extra tensors' names only if they
//! are told to; so a checkpoint is written beside the adapter, never in its place.

use std::path::Path;

use owl_gguf::{GgmlType, GgufFile, GgufWriter, Value};
use owl_model::lora::Target;

use crate::lora::LoraSet;
use crate::TrainError;

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The writer holding the adapter's keys and pairs.
fn adapter_writer(lora: &LoraSet, arch: &str, name: &str) -> Result<GgufWriter, TrainError> {
    let mut w = GgufWriter::new();
    w.add_kv("general.architecture", Value::String(arch.to_string()));
    w.add_kv("general.type", Value::String("adapter".into()));
    w.add_kv("general.name", Value::String(name.to_string()));
    w.add_kv("adapter.type", Value::String("lora".into()));
    w.add_kv("adapter.lora.alpha", Value::F32(lora.alpha));
    for p in lora.params() {
        let base = p.target.name();
        let (r, ni, no) = (p.rank as u64, p.target.n_in as u64, p.target.n_out as u64);
        w.add_tensor(
            &format!("{base}.lora_a"),
            &[ni, r],
            GgmlType::F32,
            f32_bytes(&p.a),
        )?;
        w.add_tensor(
            &format!("{base}.lora_b"),
            &[r, no],
            GgmlType::F32,
            f32_bytes(&p.b),
        )?;
    }
    Ok(w)
}

/// Writes the adapter to `path` (atomically: a temporary file renamed over it).
pub fn write_adapter(
    lora: &LoraSet,
    arch: &str,
    name: &str,
    path: &Path,
) -> Result<(), TrainError> {
    let w = adapter_writer(lora, arch, name)?;
    write_atomically(&w, path)
}

fn write_atomically(w: &GgufWriter, path: &Path) -> Result<(), TrainError> {
    let tmp = path.with_extension("partial");
    w.write_file(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| TrainError::Io(path.display().to_string(), e))
}

/// What a checkpoint records besides the pairs.
#[derive(Clone, Debug, PartialEq)]
pub struct RunState {
    /// Optimizer steps done.
    pub step: usize,
    /// The settings that fix the run (JSON); `--resume` refuses a checkpoint whose settings
    /// differ from the ones asked for.
    pub settings: String,
}

/// Writes adapter + optimizer state + `state` to `path`.
pub fn write_checkpoint(
    lora: &LoraSet,
    arch: &str,
    state: &RunState,
    path: &Path,
) -> Result<(), TrainError> {
    let mut w = adapter_writer(lora, arch, "checkpoint")?;
    w.add_kv("owl.finetune.step", Value::U64(state.step as u64));
    w.add_kv(
        "owl.finetune.settings",
        Value::String(state.settings.clone()),
    );
    w.add_kv("owl.finetune.rank", Value::U64(lora.rank as u64));
    for p in lora.params() {
        let base = p.target.name();
        let n = p.n_params() as u64;
        w.add_tensor(
            &format!("{base}.adam_m"),
            &[n],
            GgmlType::F32,
            f32_bytes(&p.m),
        )?;
        w.add_tensor(
            &format!("{base}.adam_v"),
            &[n],
            GgmlType::F32,
            f32_bytes(&p.v),
        )?;
    }
    write_atomically(&w, path)
}

/// Restores pairs and moments from the checkpoint at `path` into `lora` (which must have the
/// same pairs) and returns the run state.
pub fn read_checkpoint(path: &Path, lora: &mut LoraSet) -> Result<RunState, TrainError> {
    let shown = path.display().to_string();
    let bad = |why: String| TrainError::BadCheckpoint(shown.clone(), why);
    let f = GgufFile::open(path)?;
    let step = f
        .get_u64("owl.finetune.step")
        .ok_or_else(|| bad("no owl.finetune.step".into()))? as usize;
    let settings = f
        .get_str("owl.finetune.settings")
        .ok_or_else(|| bad("no owl.finetune.settings".into()))?
        .to_string();
    let mut n_read = 0;
    for p in lora.params_mut() {
        let base = p.target.name();
        let read = |suffix: &str, want: usize| -> Result<Vec<f32>, TrainError> {
            let name = format!("{base}.{suffix}");
            let info = f
                .tensor(&name)
                .ok_or_else(|| bad(format!("tensor {name} is missing")))?;
            if info.ty != GgmlType::F32 || info.n_elements != want as u64 {
                return Err(bad(format!("tensor {name} has the wrong type or size")));
            }
            Ok(f32s(f.tensor_data(info)))
        };
        p.a = read("lora_a", p.a.len())?;
        p.b = read("lora_b", p.b.len())?;
        p.m = read("adam_m", p.m.len())?;
        p.v = read("adam_v", p.v.len())?;
        n_read += 1;
    }
    let in_file = f
        .tensors()
        .iter()
        .filter(|t| t.name.ends_with(".lora_a"))
        .count();
    if in_file != n_read {
        return Err(bad(format!(
            "it holds {in_file} pairs, this run trains {n_read}"
        )));
    }
    Ok(RunState { step, settings })
}

/// The short names `--targets` takes, in llama.cpp's role order.
pub fn target_by_short_name(name: &str) -> Option<Target> {
    Some(match name.trim() {
        "q" | "q_proj" => Target::AttnQ,
        "k" | "k_proj" => Target::AttnK,
        "v" | "v_proj" => Target::AttnV,
        "o" | "o_proj" => Target::AttnOut,
        "gate" | "gate_proj" => Target::FfnGate,
        "up" | "up_proj" => Target::FfnUp,
        "down" | "down_proj" => Target::FfnDown,
        _ => return None,
    })
}
