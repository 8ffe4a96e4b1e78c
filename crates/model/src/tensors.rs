//! A tensor-name prefix: the view through which blocks load themselves.
//!
//! llama.cpp's converter names every tensor `{prefix}.{part}.{weight|bias}`: `blk.3.attn_q.weight`,
//! `blk.3.ffn_up_exps.bias`, `cls.output.weight`. An architecture file should say *what* a layer
//! is made of ("a GQA block, a gated FFN, these norms"), not spell those strings. So each block
//! has a `load(&Tensors, ...)` that names its own parts once (`Gqa::load` knows `attn_q` ..
//! `attn_output`, the gated FFNs know `ffn_gate`/`ffn_up`/`ffn_down`), and an architecture hands
//! it the layer's prefix (`ld.layer(i)`). The part names then live in exactly one place, and a
//! missing or misshapen tensor is reported with its full name by the loader's checks.

use owl_kernels::QMatrix;

/// The part names more than one block or architecture shares, written here once.
pub mod part {
    pub const ATTN_NORM: &str = "attn_norm";
    pub const ATTN_Q: &str = "attn_q";
    pub const ATTN_K: &str = "attn_k";
    pub const ATTN_V: &str = "attn_v";
    pub const ATTN_OUT: &str = "attn_output";
    /// Gemma's norm of the attention output; gpt-oss's pre-FFN norm (llama.cpp's
    /// `attn_post_norm` in both).
    pub const ATTN_POST_NORM: &str = "post_attention_norm";
    pub const FFN_NORM: &str = "ffn_norm";
    pub const FFN_GATE: &str = "ffn_gate";
    pub const FFN_UP: &str = "ffn_up";
    pub const FFN_DOWN: &str = "ffn_down";
    /// A mixture's router.
    pub const FFN_ROUTER: &str = "ffn_gate_inp";
    /// A mixture's 3-D expert tensors, `[gate, up, down]`.
    pub const FFN_EXPERTS: [&str; 3] = ["ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"];
    /// A mixture's shared expert, `[gate, up, down]`.
    pub const FFN_SHARED: [&str; 3] = ["ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"];
    pub const OUTPUT_NORM: &str = "output_norm";
}

use crate::loader::Loader;
use crate::ModelError;

/// The tensors under one name prefix (`blk.N`, `cls`, or the root).
pub struct Tensors<'a> {
    pub ld: &'a Loader<'a>,
    prefix: String,
}

impl<'a> Tensors<'a> {
    pub(crate) fn new(ld: &'a Loader<'a>, prefix: String) -> Tensors<'a> {
        Tensors { ld, prefix }
    }

    /// The full name of `part`: `{prefix}.{part}`, or `part` at the root.
    pub fn name(&self, part: &str) -> String {
        if self.prefix.is_empty() {
            part.to_string()
        } else {
            format!("{}.{part}", self.prefix)
        }
    }

    fn weight_name(&self, part: &str) -> String {
        format!("{}.weight", self.name(part))
    }

    fn bias_name(&self, part: &str) -> String {
        format!("{}.bias", self.name(part))
    }

    /// Whether the file has `{part}.weight` here.
    pub fn has(&self, part: &str) -> bool {
        self.ld.has(&self.weight_name(part))
    }

    /// The `rows × cols` matrix `{part}.weight`, in `linear`'s fastest layout for it.
    pub fn matrix(&self, part: &str, cols: usize, rows: usize) -> Result<QMatrix, ModelError> {
        self.ld.matrix(&self.weight_name(part), cols, rows)
    }

    /// The `n` expert matrices of the 3-D `{part}.weight`.
    pub fn experts(
        &self,
        part: &str,
        cols: usize,
        rows: usize,
        n: usize,
    ) -> Result<Vec<QMatrix>, ModelError> {
        self.ld.experts(&self.weight_name(part), cols, rows, n)
    }

    /// The 2-D `{part}.weight` of `cols` columns cut into consecutive row blocks of `rows[i]`
    /// rows each (a fused QKV projection into Q, K and V), each a view of its bytes.
    pub fn split_rows<const N: usize>(
        &self,
        part: &str,
        cols: usize,
        rows: [usize; N],
    ) -> Result<[QMatrix; N], ModelError> {
        self.ld.split_rows(&self.weight_name(part), cols, rows)
    }

    /// `{part}.weight` as `len` f32 values (norm weights, sinks).
    pub fn vector(&self, part: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        self.ld.vector(&self.weight_name(part), len)
    }

    /// `rows` vectors of `cols` values from the 2-D `{part}.weight`, concatenated.
    pub fn vectors(&self, part: &str, cols: usize, rows: usize) -> Result<Vec<f32>, ModelError> {
        self.ld.vectors(&self.weight_name(part), cols, rows)
    }

    /// `{part}.bias`, required.
    pub fn bias(&self, part: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        self.ld.vector(&self.bias_name(part), len)
    }

    /// `{part}.bias` if the file has it.
    pub fn optional_bias(&self, part: &str, len: usize) -> Result<Option<Vec<f32>>, ModelError> {
        self.ld.optional_vector(&self.bias_name(part), len)
    }

    /// `rows` biases of `cols` values from the 2-D `{part}.bias` (per-expert biases).
    pub fn biases(&self, part: &str, cols: usize, rows: usize) -> Result<Vec<f32>, ModelError> {
        self.ld.vectors(&self.bias_name(part), cols, rows)
    }

    /// The GGUF dims of `{part}.weight`, if the file has it (for sizes the file decides, like a
    /// classification head's outputs).
    pub fn dims(&self, part: &str) -> Option<Vec<u64>> {
        self.ld
            .file
            .tensor(&self.weight_name(part))
            .map(|t| t.dims.clone())
    }
}

impl<'a> Loader<'a> {
    /// The tensors of layer `i` (`blk.{i}.*`).
    pub fn layer(&'a self, i: usize) -> Tensors<'a> {
        Tensors::new(self, format!("blk.{i}"))
    }

    /// The tensors outside the layers (`output_norm`, `cls`, ...).
    pub fn root(&'a self) -> Tensors<'a> {
        Tensors::new(self, String::new())
    }
}
