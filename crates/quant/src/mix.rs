//! Which type each tensor of a model gets when it is quantized to a llama.cpp file type
//! (`Q4_K_M`, `Q5_K_M`, `Q4_0`, ...): llama.cpp's `llama_tensor_get_type` rules as a pure function.
//!
//! Why it is built this way:
//!
//! * **Same choices as `llama-quantize`, not merely similar ones.** A "Q4_K_M" file is a recipe,
//!   not a type: `attn_v` and `ffn_down` of some layers get `Q6_K`, the output matrix gets `Q6_K`,
//!   tensors whose rows are not a whole number of 256-blocks fall back to 32-block types. Users
//!   compare owl's files with llama.cpp's by name, size and speed, so [`plan`] reproduces
//!   `llama-quant.cpp` rule by rule for the file types owl writes, including its quirks (the
//!   `attn_v` rule counts `attn_v` tensors rather than reading the layer index, an `attn_qkv`
//!   tensor follows the `attn_v` rule, tied embeddings are quantized like `output.weight`).
//! * **A plan over the whole model, in llama.cpp's order.** Two rules depend on counters that
//!   llama.cpp advances as it walks the tensors sorted by layer number, then name; and "are the
//!   embeddings tied?" depends on whether any tensor is called `output.weight`. So [`plan`] takes
//!   every tensor's name and shape at once, visits them in that order, and returns the choices
//!   in the caller's order. It does no I/O: the `owl quantize` command feeds it a GGUF header,
//!   the unit tests feed it the tensor lists of real models.
//! * **Only the file types owl can write.** The IQ*, Q2_K/Q3_K mixes and imatrix-dependent rules
//!   are left out; [`FileType`] lists what is covered, with llama.cpp's `LLAMA_FTYPE_*` ids so the
//!   `general.file_type` key means the same thing to both programs.

use crate::GgmlType;

/// A llama.cpp file type (`LLAMA_FTYPE_*`) owl can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum FileType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4_K_S,
    Q4_K_M,
    Q5_K_S,
    Q5_K_M,
    Q6_K,
}

/// (file type, `LLAMA_FTYPE_*` id, name, default tensor type)
const FILE_TYPES: [(FileType, u32, &str, GgmlType); 13] = [
    (FileType::F32, 0, "F32", GgmlType::F32),
    (FileType::F16, 1, "F16", GgmlType::F16),
    (FileType::BF16, 32, "BF16", GgmlType::BF16),
    (FileType::Q4_0, 2, "Q4_0", GgmlType::Q4_0),
    (FileType::Q4_1, 3, "Q4_1", GgmlType::Q4_1),
    (FileType::Q5_0, 8, "Q5_0", GgmlType::Q5_0),
    (FileType::Q5_1, 9, "Q5_1", GgmlType::Q5_1),
    (FileType::Q8_0, 7, "Q8_0", GgmlType::Q8_0),
    (FileType::Q4_K_S, 14, "Q4_K_S", GgmlType::Q4_K),
    (FileType::Q4_K_M, 15, "Q4_K_M", GgmlType::Q4_K),
    (FileType::Q5_K_S, 16, "Q5_K_S", GgmlType::Q5_K),
    (FileType::Q5_K_M, 17, "Q5_K_M", GgmlType::Q5_K),
    (FileType::Q6_K, 18, "Q6_K", GgmlType::Q6_K),
];

impl FileType {
    /// Every supported file type.
    pub fn all() -> impl Iterator<Item = FileType> {
        FILE_TYPES.iter().map(|row| row.0)
    }

    fn row(self) -> &'static (FileType, u32, &'static str, GgmlType) {
        // Every variant has exactly one row (checked by a test).
        FILE_TYPES
            .iter()
            .find(|row| row.0 == self)
            .unwrap_or(&FILE_TYPES[0])
    }

    /// Parses a name as `llama-quantize` does, case-insensitively: the names of [`FileType`]
    /// plus its aliases `Q4_K` (= `Q4_K_M`) and `Q5_K` (= `Q5_K_M`).
    pub fn parse(name: &str) -> Option<FileType> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("Q4_K") {
            return Some(FileType::Q4_K_M);
        }
        if name.eq_ignore_ascii_case("Q5_K") {
            return Some(FileType::Q5_K_M);
        }
        FILE_TYPES
            .iter()
            .find(|row| row.2.eq_ignore_ascii_case(name))
            .map(|row| row.0)
    }

    /// llama.cpp's `LLAMA_FTYPE_*` value, stored as `general.file_type`.
    pub fn id(self) -> u32 {
        self.row().1
    }

    /// The name `llama-quantize` prints ("Q4_K_M").
    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// The tensor type most weights get (`llama_ftype_get_default_type`).
    pub fn default_type(self) -> GgmlType {
        self.row().3
    }

    /// Whether the default type is block-quantized; only then do the per-tensor rules apply.
    pub fn is_quantized(self) -> bool {
        self.default_type().block_size() > 1
    }
}

/// The model facts the rules look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// `general.architecture` ("llama", "qwen2", "falcon", ...).
    pub arch: String,
    /// `{arch}.block_count`.
    pub n_layer: usize,
    /// `{arch}.expert_count` (0 for dense models).
    pub n_expert: usize,
    /// llama.cpp classes the model as `LLM_TYPE_70B` (see [`ModelInfo::new`]).
    pub is_70b: bool,
}

impl ModelInfo {
    /// Derives `is_70b` as llama.cpp's `load_hparams` does for the architectures where it
    /// matters: 80 layers for llama (with grouped-query attention), qwen2, olmo and deci;
    /// 68 for jais2.
    pub fn new(
        arch: &str,
        n_layer: usize,
        n_expert: usize,
        n_head: usize,
        n_head_kv: usize,
    ) -> ModelInfo {
        let is_70b = match arch {
            "llama" => n_layer == 80 && n_head != n_head_kv,
            "qwen2" | "olmo" | "deci" => n_layer == 80,
            "jais2" => n_layer == 68,
            _ => false,
        };
        ModelInfo {
            arch: arch.to_string(),
            n_layer,
            n_expert,
            is_70b,
        }
    }
}

/// What to do with one tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Not a weight llama.cpp quantizes (norms, biases, 1-D tensors, ...): copy it unchanged.
    Keep,
    /// Convert to this type. `fallback_from` is set when the rules wanted a type whose block
    /// does not divide the row length and a smaller-block type was chosen instead.
    Convert {
        ty: GgmlType,
        fallback_from: Option<GgmlType>,
    },
}

impl Choice {
    /// The type the tensor will have, given its current type.
    pub fn target(self, current: GgmlType) -> GgmlType {
        match self {
            Choice::Keep => current,
            Choice::Convert { ty, .. } => ty,
        }
    }
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MixError {
    #[error("cannot tell the layer of tensor {0} (expected a name starting with blk.N.)")]
    NoLayer(String),
    #[error("tensor {name} is in layer {layer}, but the model has {n_layer} layers")]
    BadLayer {
        name: String,
        layer: usize,
        n_layer: usize,
    },
    #[error("no fallback type is defined for {ty} (tensor {name}, row length {row_len})")]
    NoFallback {
        name: String,
        ty: &'static str,
        row_len: u64,
    },
}

/// The broad roles llama.cpp's rules distinguish (`tensor_get_category`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    TokenEmbd,
    AttnQ,
    AttnV,
    AttnK,
    AttnQkv,
    AttnKvB,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Output,
    Other,
}

/// Checked in llama.cpp's order: the first match wins.
fn category(name: &str) -> Category {
    if name == "output.weight" {
        return Category::Output;
    }
    if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        return Category::TokenEmbd;
    }
    const BY_SUBSTRING: [(&str, Category); 9] = [
        ("attn_qkv.weight", Category::AttnQkv),
        ("attn_kv_b.weight", Category::AttnKvB),
        ("attn_v.weight", Category::AttnV),
        ("attn_k.weight", Category::AttnK),
        ("attn_q.weight", Category::AttnQ),
        ("attn_output.weight", Category::AttnOutput),
        ("ffn_up", Category::FfnUp),
        ("ffn_gate", Category::FfnGate),
        ("ffn_down", Category::FfnDown),
    ];
    BY_SUBSTRING
        .iter()
        .find(|(s, _)| name.contains(s))
        .map_or(Category::Other, |&(_, c)| c)
}

/// `attn_v`-like tensors share the `attn_v` rule (and its counter).
fn is_attn_v(c: Category) -> bool {
    matches!(c, Category::AttnV | Category::AttnQkv | Category::AttnKvB)
}

/// ggml's `ggml_n_dims`: trailing dimensions of size 1 do not count; at least 1.
fn n_dims(dims: &[u64]) -> usize {
    dims.iter().rposition(|&d| d > 1).map_or(1, |i| i + 1)
}

/// Name parts llama.cpp never quantizes (`tensor_allows_quantization`), besides norms.
const NEVER_QUANTIZED: [&str; 32] = [
    "ffn_gate_inp.weight",
    "ffn_gate_tid2eid.weight",
    "altup",
    "laurel",
    "per_layer_model_proj",
    "ssm_conv1d",
    "shortconv.conv.weight",
    "indexer.k_proj.weight",
    "indexer.q_proj.weight",
    "time_mix_first.weight",
    "time_mix_w0.weight",
    "time_mix_w1.weight",
    "time_mix_w2.weight",
    "time_mix_v0.weight",
    "time_mix_v1.weight",
    "time_mix_v2.weight",
    "time_mix_a0.weight",
    "time_mix_a1.weight",
    "time_mix_a2.weight",
    "time_mix_g1.weight",
    "time_mix_g2.weight",
    "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight",
    "attn_rel_b.weight",
    ".position_embd",
    ".rel_pos",
    ".patch_embd",
    ".patch_merger",
    "sam.pos_embd",
    "sam.neck.",
    "a.rvq.codebook",
];

/// Whether llama.cpp would quantize this tensor at all: weights (names ending in `weight`) with
/// at least two dimensions that are not norms, expert routers, position or token-type
/// embeddings, or one of the small special tensors some architectures have.
pub fn allows_quantization(name: &str, dims: &[u64]) -> bool {
    n_dims(dims) >= 2
        && name.ends_with("weight")
        && !name.contains("_norm.weight")
        && name != "position_embd.weight"
        && name != "token_types.weight"
        && !name.contains("sam.net_")
        && !name.contains("mm.a.code_embd")
        && !NEVER_QUANTIZED.iter().any(|s| name.contains(s))
}

/// llama.cpp's `use_more_bits`: the first and last eighth of the layers, and every third layer
/// in between, get more bits in the `_M` mixes.
pub fn use_more_bits(i_layer: usize, n_layer: usize) -> bool {
    let (i, n) = (i_layer as i64, n_layer as i64);
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// The `N` of a name starting `blk.N.` (what llama.cpp's `sscanf("blk.%d.")` reads).
pub fn layer_of(name: &str) -> Option<usize> {
    let rest = name.strip_prefix("blk.")?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest.get(..end)?.parse().ok()
}

/// `tensor_type_fallback`: when `row_len` is not a whole number of `wanted`'s blocks, the type
/// llama.cpp uses instead (`Q4_K`→`Q5_0`, `Q5_K`→`Q5_1`, `Q6_K`→`Q8_0`, `Q2_K`/`Q3_K`→`Q4_0`),
/// or `F16` when that does not fit either. `Ok(wanted)` when it fits.
pub fn fallback_type(wanted: GgmlType, row_len: u64) -> Result<GgmlType, GgmlType> {
    let fits = |t: GgmlType| row_len % t.block_size() as u64 == 0;
    if fits(wanted) {
        return Ok(wanted);
    }
    let next = match wanted {
        GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::TQ1_0 | GgmlType::TQ2_0 => GgmlType::Q4_0,
        GgmlType::Q4_K => GgmlType::Q5_0,
        GgmlType::Q5_K => GgmlType::Q5_1,
        GgmlType::Q6_K => GgmlType::Q8_0,
        t if t.block_size() <= 32 => t,
        // Unreachable for the types `plan` produces; the caller turns it into an error.
        t => return Err(t),
    };
    Ok(if fits(next) { next } else { GgmlType::F16 })
}

/// The counters llama.cpp keeps while it walks the tensors.
struct State<'a> {
    ftype: FileType,
    model: &'a ModelInfo,
    tied_embeddings: bool,
    n_attention_wv: usize,
    i_attention_wv: usize,
    i_ffn_down: usize,
}

impl State<'_> {
    /// `llama_tensor_get_type_impl`, restricted to the file types owl writes.
    fn mix(
        &mut self,
        name: &str,
        row_len: u64,
        cat: Category,
        default: GgmlType,
    ) -> Result<GgmlType, MixError> {
        use FileType as F;
        use GgmlType as T;
        let ftype = self.ftype;
        let falcon = self.model.arch == "falcon";
        let n_expert = self.model.n_expert;
        let mut new = default;
        if cat == Category::Output || (self.tied_embeddings && cat == Category::TokenEmbd) {
            if falcon || row_len % new.block_size() as u64 != 0 {
                new = T::Q8_0;
            } else if new != T::Q8_0 {
                new = T::Q6_K;
            }
        } else if cat == Category::TokenEmbd {
            // Untied embeddings keep the default type in these file types.
        } else if is_attn_v(cat) {
            let (i, n) = (self.i_attention_wv, self.n_attention_wv);
            if matches!(ftype, F::Q4_K_M | F::Q5_K_M) && use_more_bits(i, n) {
                new = T::Q6_K;
            } else if ftype == F::Q4_K_S && i < 4 {
                new = T::Q5_K;
            }
            if self.model.is_70b && matches!(new, T::Q3_K | T::Q4_K) {
                new = T::Q5_K;
            }
            if n_expert == 8 {
                new = T::Q8_0;
            }
            self.i_attention_wv += 1;
        } else if cat == Category::AttnK {
            if n_expert == 8 {
                new = T::Q8_0;
            }
        } else if cat == Category::FfnDown {
            let (i, n) = self.layer_info(self.i_ffn_down, name)?;
            match ftype {
                F::Q4_K_M if falcon => {
                    new = if i < n / 16 {
                        T::Q6_K
                    } else if use_more_bits(i, n) {
                        T::Q5_K
                    } else {
                        T::Q4_K
                    };
                }
                F::Q4_K_M | F::Q5_K_M if use_more_bits(i, n) => new = T::Q6_K,
                F::Q4_K_S if !falcon && i < n / 8 => new = T::Q5_K,
                _ => {}
            }
            self.i_ffn_down += 1;
        } else if cat == Category::AttnOutput {
            if !falcon && n_expert == 8 && matches!(ftype, F::Q4_K_S | F::Q4_K_M) {
                new = T::Q5_K;
            }
        } else if matches!(cat, Category::FfnGate | Category::FfnUp) {
            // Only the IQ3_XS mix changes these; llama.cpp still checks the layer of MoE tensors.
            if n_expert > 1 {
                self.layer_info(0, name)?;
            }
        }
        Ok(new)
    }

    /// `layer_info`: the running counter for dense models; the layer named in the tensor for
    /// mixtures of experts, whose expert tensors are not in layer order.
    fn layer_info(&self, counter: usize, name: &str) -> Result<(usize, usize), MixError> {
        let n_layer = self.model.n_layer;
        if self.model.n_expert <= 1 {
            return Ok((counter, n_layer));
        }
        let layer = layer_of(name).ok_or_else(|| MixError::NoLayer(name.to_string()))?;
        if layer >= n_layer {
            return Err(MixError::BadLayer {
                name: name.to_string(),
                layer,
                n_layer,
            });
        }
        Ok((layer, n_layer))
    }
}

/// The type of every tensor of a model quantized to `ftype`, in the order of `tensors`
/// (`(name, dims)` with `dims` in ggml order: `dims[0]` is the row length).
///
/// `pure` skips the mix rules, as `llama-quantize --pure` does: every quantizable tensor gets
/// the default type, subject only to the row-length fallback.
pub fn plan(
    ftype: FileType,
    model: &ModelInfo,
    tensors: &[(&str, &[u64])],
    pure: bool,
) -> Result<Vec<Choice>, MixError> {
    let cats: Vec<Category> = tensors.iter().map(|(n, _)| category(n)).collect();
    let mut st = State {
        ftype,
        model,
        tied_embeddings: !cats.contains(&Category::Output),
        n_attention_wv: cats.iter().filter(|&&c| is_attn_v(c)).count(),
        i_attention_wv: 0,
        i_ffn_down: 0,
    };
    // llama.cpp's weight map order: layer number (-1 outside blocks), then name.
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| {
            (
                layer_of(tensors[i].0).map(|l| l as i64).unwrap_or(-1),
                tensors[i].0,
            )
        };
        key(a).cmp(&key(b))
    });
    let default = ftype.default_type();
    let mut out = vec![Choice::Keep; tensors.len()];
    for i in order {
        let (name, dims) = tensors[i];
        if !allows_quantization(name, dims) {
            continue;
        }
        if !ftype.is_quantized() {
            out[i] = Choice::Convert {
                ty: default,
                fallback_from: None,
            };
            continue;
        }
        let row_len = dims.first().copied().unwrap_or(1);
        let wanted = if pure {
            default
        } else {
            st.mix(name, row_len, cats[i], default)?
        };
        let ty = fallback_type(wanted, row_len).map_err(|t| MixError::NoFallback {
            name: name.to_string(),
            ty: t.name(),
            row_len,
        })?;
        out[i] = Choice::Convert {
            ty,
            fallback_from: (ty != wanted).then_some(wanted),
        };
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use GgmlType as T;

    /// The tensors `convert_hf_to_gguf.py` writes for a llama/qwen2 model.
    fn llama_like(
        n_layer: usize,
        n_embd: u64,
        n_ff: u64,
        n_kv: u64,
        n_vocab: u64,
        tied: bool,
        bias: bool,
    ) -> Vec<(String, Vec<u64>)> {
        let mut t = vec![
            ("token_embd.weight".to_string(), vec![n_embd, n_vocab]),
            ("output_norm.weight".to_string(), vec![n_embd]),
        ];
        if !tied {
            t.push(("output.weight".to_string(), vec![n_embd, n_vocab]));
        }
        for i in 0..n_layer {
            let mut p = |n: &str, d: Vec<u64>| t.push((format!("blk.{i}.{n}"), d));
            p("attn_norm.weight", vec![n_embd]);
            p("attn_q.weight", vec![n_embd, n_embd]);
            p("attn_k.weight", vec![n_embd, n_kv]);
            p("attn_v.weight", vec![n_embd, n_kv]);
            if bias {
                p("attn_q.bias", vec![n_embd]);
                p("attn_k.bias", vec![n_kv]);
                p("attn_v.bias", vec![n_kv]);
            }
            p("attn_output.weight", vec![n_embd, n_embd]);
            p("ffn_norm.weight", vec![n_embd]);
            p("ffn_gate.weight", vec![n_embd, n_ff]);
            p("ffn_up.weight", vec![n_embd, n_ff]);
            p("ffn_down.weight", vec![n_ff, n_embd]);
        }
        t
    }

    fn types(
        ftype: FileType,
        model: &ModelInfo,
        t: &[(String, Vec<u64>)],
    ) -> Vec<(String, Option<GgmlType>)> {
        let refs: Vec<(&str, &[u64])> = t.iter().map(|(n, d)| (n.as_str(), &d[..])).collect();
        let plan = plan(ftype, model, &refs, false).unwrap();
        t.iter()
            .zip(plan)
            .map(|((n, _), c)| {
                (
                    n.clone(),
                    match c {
                        Choice::Keep => None,
                        Choice::Convert { ty, .. } => Some(ty),
                    },
                )
            })
            .collect()
    }

    fn get(r: &[(String, Option<GgmlType>)], name: &str) -> Option<GgmlType> {
        r.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn file_type_table_is_complete_and_names_parse() {
        for ft in FileType::all() {
            assert_eq!(FileType::parse(ft.name()), Some(ft));
            assert_eq!(FileType::parse(&ft.name().to_lowercase()), Some(ft));
            assert_eq!(FileType::all().filter(|&x| x == ft).count(), 1);
        }
        assert_eq!(FileType::parse("q4_k"), Some(FileType::Q4_K_M));
        assert_eq!(FileType::parse("Q5_K"), Some(FileType::Q5_K_M));
        assert_eq!(FileType::parse("Q3_K_M"), None);
        assert_eq!(FileType::Q4_K_M.id(), 15);
        assert_eq!(FileType::Q8_0.id(), 7);
        assert_eq!(FileType::BF16.id(), 32);
        assert!(!FileType::F16.is_quantized());
    }

    #[test]
    fn use_more_bits_matches_llama_cpp() {
        // 32 layers: first 4, last 4, and every third from layer 6.
        let got: Vec<usize> = (0..32).filter(|&i| use_more_bits(i, 32)).collect();
        assert_eq!(
            got,
            [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]
        );
        let got: Vec<usize> = (0..24).filter(|&i| use_more_bits(i, 24)).collect();
        assert_eq!(got, [0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23]);
        // Fewer than 8 layers: n/8 == 0, so only the last eighth and every third layer.
        let got: Vec<usize> = (0..4).filter(|&i| use_more_bits(i, 4)).collect();
        assert_eq!(got, [2, 3]);
        let got: Vec<usize> = (0..2).filter(|&i| use_more_bits(i, 2)).collect();
        assert_eq!(got, [1]);
    }

    #[test]
    fn only_two_dimensional_weights_are_quantized() {
        assert!(allows_quantization("blk.0.attn_q.weight", &[256, 256]));
        assert!(!allows_quantization("blk.0.attn_q.bias", &[256]));
        assert!(!allows_quantization("blk.0.attn_norm.weight", &[256]));
        assert!(!allows_quantization("blk.0.attn_q.weight", &[256, 1]));
        assert!(!allows_quantization("blk.0.attn_q_norm.weight", &[64, 2]));
        assert!(!allows_quantization("blk.0.ffn_gate_inp.weight", &[256, 8]));
        assert!(!allows_quantization("position_embd.weight", &[256, 512]));
        assert!(!allows_quantization("rope_freqs.weight", &[32]));
    }

    #[test]
    fn fallbacks_follow_llama_cpp() {
        assert_eq!(fallback_type(T::Q4_K, 512), Ok(T::Q4_K));
        assert_eq!(fallback_type(T::Q4_K, 896), Ok(T::Q5_0));
        assert_eq!(fallback_type(T::Q5_K, 896), Ok(T::Q5_1));
        assert_eq!(fallback_type(T::Q6_K, 896), Ok(T::Q8_0));
        assert_eq!(fallback_type(T::Q3_K, 896), Ok(T::Q4_0));
        assert_eq!(fallback_type(T::Q4_K, 100), Ok(T::F16));
        assert_eq!(fallback_type(T::Q8_0, 100), Ok(T::F16));
        assert_eq!(fallback_type(T::Q4_0, 96), Ok(T::Q4_0));
        assert_eq!(fallback_type(T::IQ4_XS, 96), Err(T::IQ4_XS));
    }

    #[test]
    fn layer_numbers_parse_like_sscanf() {
        assert_eq!(layer_of("blk.12.attn_v.weight"), Some(12));
        assert_eq!(layer_of("blk.0.ffn_down_exps.weight"), Some(0));
        assert_eq!(layer_of("output.weight"), None);
        assert_eq!(layer_of("blk.x.attn_v.weight"), None);
    }

    /// Llama-3.2-1B (16 layers, untied in this variant, rows multiples of 256).
    #[test]
    fn q4_k_m_llama_16_layers() {
        let t = llama_like(16, 2048, 8192, 512, 128256, false, false);
        let m = ModelInfo::new("llama", 16, 0, 32, 8);
        let r = types(FileType::Q4_K_M, &m, &t);
        let more = [0, 1, 4, 7, 10, 13, 14, 15];
        for i in 0..16 {
            let want = if more.contains(&i) { T::Q6_K } else { T::Q4_K };
            assert_eq!(
                get(&r, &format!("blk.{i}.attn_v.weight")),
                Some(want),
                "{i}"
            );
            assert_eq!(
                get(&r, &format!("blk.{i}.ffn_down.weight")),
                Some(want),
                "{i}"
            );
            for n in ["attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"] {
                assert_eq!(get(&r, &format!("blk.{i}.{n}.weight")), Some(T::Q4_K));
            }
            assert_eq!(get(&r, &format!("blk.{i}.attn_norm.weight")), None);
        }
        assert_eq!(get(&r, "output.weight"), Some(T::Q6_K));
        assert_eq!(get(&r, "token_embd.weight"), Some(T::Q4_K));
        assert_eq!(get(&r, "output_norm.weight"), None);

        // Q5_K_M: the same layers get Q6_K, the rest Q5_K.
        let r = types(FileType::Q5_K_M, &m, &t);
        assert_eq!(get(&r, "blk.4.attn_v.weight"), Some(T::Q6_K));
        assert_eq!(get(&r, "blk.5.attn_v.weight"), Some(T::Q5_K));
        assert_eq!(get(&r, "blk.5.ffn_up.weight"), Some(T::Q5_K));
        assert_eq!(get(&r, "output.weight"), Some(T::Q6_K));

        // Q4_K_S: attn_v of the first 4 layers and ffn_down of the first 2 get Q5_K.
        let r = types(FileType::Q4_K_S, &m, &t);
        assert_eq!(get(&r, "blk.3.attn_v.weight"), Some(T::Q5_K));
        assert_eq!(get(&r, "blk.4.attn_v.weight"), Some(T::Q4_K));
        assert_eq!(get(&r, "blk.1.ffn_down.weight"), Some(T::Q5_K));
        assert_eq!(get(&r, "blk.2.ffn_down.weight"), Some(T::Q4_K));
    }

    /// The order of the input does not matter: layer 10 sorts after layer 9, not after 1.
    #[test]
    fn counters_follow_layer_order_not_input_or_string_order() {
        let mut t = llama_like(16, 256, 512, 256, 100, false, false);
        t.reverse();
        let m = ModelInfo::new("llama", 16, 0, 4, 4);
        let r = types(FileType::Q4_K_M, &m, &t);
        assert_eq!(get(&r, "blk.10.attn_v.weight"), Some(T::Q6_K));
        assert_eq!(get(&r, "blk.11.attn_v.weight"), Some(T::Q4_K));
        assert_eq!(get(&r, "blk.2.ffn_down.weight"), Some(T::Q4_K));
    }

    /// Qwen2.5-0.5B: n_embd 896 is not a multiple of 256, embeddings are tied. The published
    /// Q4_K_M files show exactly this: token_embd Q8_0, Q5_0 for 896-row tensors, attn_v Q8_0
    /// where the mix asks for Q6_K, ffn_down (rows 4864 = 19·256) Q4_K/Q6_K.
    #[test]
    fn q4_k_m_qwen2_0_5b() {
        let t = llama_like(24, 896, 4864, 128, 151936, true, true);
        let m = ModelInfo::new("qwen2", 24, 0, 14, 2);
        let r = types(FileType::Q4_K_M, &m, &t);
        assert_eq!(get(&r, "token_embd.weight"), Some(T::Q8_0));
        assert_eq!(get(&r, "blk.0.attn_q.bias"), None);
        assert_eq!(get(&r, "blk.0.attn_q.weight"), Some(T::Q5_0));
        assert_eq!(get(&r, "blk.0.attn_v.weight"), Some(T::Q8_0));
        assert_eq!(get(&r, "blk.3.attn_v.weight"), Some(T::Q5_0));
        assert_eq!(get(&r, "blk.0.ffn_down.weight"), Some(T::Q6_K));
        assert_eq!(get(&r, "blk.3.ffn_down.weight"), Some(T::Q4_K));
        assert_eq!(get(&r, "blk.5.ffn_down.weight"), Some(T::Q6_K));
        let refs: Vec<(&str, &[u64])> = t.iter().map(|(n, d)| (n.as_str(), &d[..])).collect();
        let p = plan(FileType::Q4_K_M, &m, &refs, false).unwrap();
        let i = t
            .iter()
            .position(|(n, _)| n == "blk.0.attn_v.weight")
            .unwrap();
        assert_eq!(
            p[i],
            Choice::Convert {
                ty: T::Q8_0,
                fallback_from: Some(T::Q6_K)
            }
        );
    }

    /// Tied embeddings get the output rule even in the legacy file types; untied ones the
    /// default type; Q8_0 keeps Q8_0.
    #[test]
    fn embeddings_and_output_in_legacy_types() {
        let m = ModelInfo::new("llama", 2, 0, 4, 4);
        let tied = llama_like(2, 256, 512, 256, 100, true, false);
        let untied = llama_like(2, 256, 512, 256, 100, false, false);
        let r = types(FileType::Q4_0, &m, &tied);
        assert_eq!(get(&r, "token_embd.weight"), Some(T::Q6_K));
        assert_eq!(get(&r, "blk.1.attn_v.weight"), Some(T::Q4_0));
        let r = types(FileType::Q4_0, &m, &untied);
        assert_eq!(get(&r, "token_embd.weight"), Some(T::Q4_0));
        assert_eq!(get(&r, "output.weight"), Some(T::Q6_K));
        let r = types(FileType::Q8_0, &m, &untied);
        assert_eq!(get(&r, "output.weight"), Some(T::Q8_0));
        // 576-wide (SmolLM2-135M): the output rule's Q6_K falls back to Q8_0.
        let smol = llama_like(2, 576, 1536, 192, 100, true, false);
        let r = types(FileType::Q4_1, &m, &smol);
        assert_eq!(get(&r, "token_embd.weight"), Some(T::Q8_0));
        assert_eq!(get(&r, "blk.0.attn_q.weight"), Some(T::Q4_1));
        // Float file types convert every quantizable weight, nothing else.
        let r = types(FileType::F16, &m, &untied);
        assert_eq!(get(&r, "output.weight"), Some(T::F16));
        assert_eq!(get(&r, "blk.0.ffn_norm.weight"), None);
    }

    #[test]
    fn pure_skips_the_mix_but_not_the_fallback() {
        let m = ModelInfo::new("llama", 2, 0, 4, 4);
        let t = llama_like(2, 256, 768, 256, 100, false, false);
        let mut t2 = t.clone();
        t2.push(("blk.0.odd.weight".into(), vec![96, 4]));
        let refs: Vec<(&str, &[u64])> = t2.iter().map(|(n, d)| (n.as_str(), &d[..])).collect();
        let p = plan(FileType::Q4_K_M, &m, &refs, true).unwrap();
        for ((name, dims), c) in t2.iter().zip(p) {
            if !allows_quantization(name, dims) {
                assert_eq!(c, Choice::Keep);
            } else if name == "blk.0.odd.weight" {
                assert_eq!(
                    c,
                    Choice::Convert {
                        ty: T::Q5_0,
                        fallback_from: Some(T::Q4_K)
                    }
                );
            } else {
                assert_eq!(c.target(T::F32), T::Q4_K, "{name}");
            }
        }
    }

    #[test]
    fn seventy_b_and_experts() {
        let m = ModelInfo::new("llama", 80, 0, 64, 8);
        assert!(m.is_70b);
        assert!(!ModelInfo::new("llama", 80, 0, 64, 64).is_70b);
        let t = llama_like(80, 256, 256, 256, 100, false, false);
        let r = types(FileType::Q4_K_M, &m, &t);
        // Not a use_more_bits layer: Q4_K bumped to Q5_K for 70B.
        assert_eq!(get(&r, "blk.11.attn_v.weight"), Some(T::Q5_K));
        assert_eq!(get(&r, "blk.11.attn_q.weight"), Some(T::Q4_K));

        let moe = ModelInfo::new("llama", 2, 8, 4, 4);
        let t = vec![
            ("blk.0.attn_v.weight".to_string(), vec![256, 256]),
            ("blk.0.attn_k.weight".to_string(), vec![256, 256]),
            ("blk.0.attn_output.weight".to_string(), vec![256, 256]),
            ("blk.0.ffn_down_exps.weight".to_string(), vec![256, 256, 8]),
            ("blk.1.ffn_down_exps.weight".to_string(), vec![256, 256, 8]),
        ];
        let r = types(FileType::Q4_K_M, &moe, &t);
        assert_eq!(get(&r, "blk.0.attn_v.weight"), Some(T::Q8_0));
        assert_eq!(get(&r, "blk.0.attn_k.weight"), Some(T::Q8_0));
        assert_eq!(get(&r, "blk.0.attn_output.weight"), Some(T::Q5_K));
        assert_eq!(get(&r, "blk.1.ffn_down_exps.weight"), Some(T::Q6_K));
        let bad = [("blk.9.ffn_down_exps.weight".to_string(), vec![256, 256, 8])];
        let refs: Vec<(&str, &[u64])> = bad.iter().map(|(n, d)| (n.as_str(), &d[..])).collect();
        assert!(matches!(
            plan(FileType::Q4_K_M, &moe, &refs, false),
            Err(MixError::BadLayer { layer: 9, .. })
        ));
    }
}
