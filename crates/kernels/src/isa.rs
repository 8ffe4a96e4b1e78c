//! CPU feature detection and the kernel table.

use half::f16;
use owl_quant::{GgmlType, QuantFn, VecDotFn};

use crate::attention::PagedRow;

/// Dot product of two f16 vectors of equal length (attention scores and outputs).
pub type DotF16Fn = fn(a: &[f16], b: &[f16]) -> f32;
/// The same dot product with `a` scattered over KV pages; must sum in exactly the order of the
/// contiguous `DotF16Fn` of its kind (tested bit for bit).
pub type DotF16PagedFn = fn(a: &PagedRow<'_>, b: &[f16]) -> f32;
/// Four f16 dot products against the same `b`, each bit-identical to the single `DotF16Fn` of
/// its kind (four independent accumulator chains instead of one latency-bound chain).
pub type DotF16X4Fn = fn(a: [&[f16]; 4], b: &[f16]) -> [f32; 4];
/// `DotF16X4Fn` over four rows scattered across KV pages.
pub type DotF16PagedX4Fn = fn(rows: &[PagedRow<'_>; 4], b: &[f16]) -> [f32; 4];
/// Four dot products of one weight row with four activation rows. Each result must be
/// bit-identical to the single `VecDotFn` of the same format (the batch-invariance promise).
pub type VecDotX4Fn = fn(n: usize, w: &[u8], a: [&[u8]; 4]) -> [f32; 4];
/// Two weight rows against four tokens' activations: `out[r][t]`, each bit-identical to the
/// single dot product of row `r` and token `t` (a 2×4 register tile: weights loaded once for
/// four tokens, activations once for two rows, scales converted four at a time).
pub type VecDot2x4Fn = fn(n: usize, w: [&[u8]; 2], a: [&[u8]; 4]) -> [[f32; 4]; 2];
/// `dst[i] = f16(src[i] * scale)`: the f32 product, then round-to-nearest-even to f16.
pub type ScaleToF16Fn = fn(src: &[f32], scale: f32, dst: &mut [f16]);
/// One group of eight repacked weight rows against up to four tokens (`crate::repack`):
/// `out[t][r]`, bit-identical to the layout's scalar reference.
pub type GemmX8Fn = fn(nb: usize, w: &[u8], a: &[&[u8]], out: &mut [[f32; 8]]);
/// `x[i] = exp(x[i] - max)` in place, returning the sum.
pub type SoftmaxExpFn = fn(x: &mut [f32], max: f32) -> f64;
/// `gate[i] = silu(gate[i]) * up[i]` in place.
pub type SwigluFn = fn(gate: &mut [f32], up: &[f32]);

/// Instruction-set levels owl has kernels for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Portable Rust: the reference every other level is tested against.
    Scalar,
    /// x86-64 with AVX2, FMA and F16C.
    Avx2,
}

impl Isa {
    /// The best level this CPU supports.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("f16c")
            {
                return Isa::Avx2;
            }
        }
        Isa::Scalar
    }

    /// Every level this CPU can run (for tests that compare each against the scalar one).
    pub fn available() -> Vec<Isa> {
        let best = Isa::detect();
        [Isa::Scalar, Isa::Avx2]
            .into_iter()
            .filter(|i| *i <= best)
            .collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2+fma+f16c",
        }
    }
}

/// The functions chosen for one ISA: scalar references first, then ISA overrides.
#[derive(Clone)]
pub struct Kernels {
    isa: Isa,
    vec_dot: Vec<(GgmlType, VecDotFn)>,
    vec_dot_x4: Vec<(GgmlType, VecDotX4Fn)>,
    vec_dot_2x4: Vec<(GgmlType, VecDot2x4Fn)>,
    quantize: Vec<(GgmlType, QuantFn)>,
    repacked: Vec<(crate::Layout, GemmX8Fn)>,
    dot_f16: DotF16Fn,
    dot_f16_batch: DotF16Fn,
    dot_f16_paged: DotF16PagedFn,
    dot_f16_batch_paged: DotF16PagedFn,
    dot_f16_batch_x4: DotF16X4Fn,
    dot_f16_batch_paged_x4: DotF16PagedX4Fn,
    softmax_exp: SoftmaxExpFn,
    scale_to_f16: ScaleToF16Fn,
    swiglu: SwigluFn,
    rope_fused: bool,
    overridden: Vec<&'static str>,
}

impl Kernels {
    /// Kernels for the best ISA of this CPU.
    pub fn detect() -> Kernels {
        Kernels::for_isa(Isa::detect())
    }

    /// Kernels for `isa` (falls back to scalar for anything the ISA does not override).
    /// Asking for an ISA the CPU lacks gives the scalar table.
    pub fn for_isa(isa: Isa) -> Kernels {
        let mut k = Kernels {
            isa: Isa::Scalar,
            vec_dot: Vec::new(),
            vec_dot_x4: Vec::new(),
            vec_dot_2x4: Vec::new(),
            quantize: Vec::new(),
            repacked: crate::repack::PACKED
                .iter()
                .map(|p| (p.layout, p.reference))
                .collect(),
            dot_f16: crate::attention::dot_f16_scalar,
            dot_f16_batch: crate::attention::dot_f16_scalar,
            dot_f16_paged: crate::attention::dot_f16_paged_scalar,
            dot_f16_batch_paged: crate::attention::dot_f16_paged_scalar,
            dot_f16_batch_x4: crate::attention::dot_f16_x4_scalar,
            dot_f16_batch_paged_x4: crate::attention::dot_f16_paged_x4_scalar,
            softmax_exp: crate::softmax::softmax_exp_scalar,
            scale_to_f16: crate::attention::scale_to_f16_scalar,
            swiglu: crate::swiglu::swiglu_scalar,
            rope_fused: false,
            overridden: Vec::new(),
        };
        for f in owl_quant::formats() {
            if let Some(dot) = f.vec_dot {
                k.vec_dot.push((f.ty, dot));
            }
            if let Some(q) = f.quantize {
                k.quantize.push((f.ty, q));
            }
        }
        if isa >= Isa::Avx2 && Isa::detect() >= Isa::Avx2 {
            k.isa = Isa::Avx2;
            crate::x86::register_avx2(&mut k);
        }
        k
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Names of the kernels the ISA overrides (for `owl show --system`).
    pub fn overridden(&self) -> &[&'static str] {
        &self.overridden
    }

    pub(crate) fn set_vec_dot(&mut self, ty: GgmlType, f: VecDotFn, name: &'static str) {
        if let Some(slot) = self.vec_dot.iter_mut().find(|(t, _)| *t == ty) {
            slot.1 = f;
        } else {
            self.vec_dot.push((ty, f));
        }
        self.overridden.push(name);
    }

    pub(crate) fn set_vec_dot_x4(&mut self, ty: GgmlType, f: VecDotX4Fn, name: &'static str) {
        if let Some(slot) = self.vec_dot_x4.iter_mut().find(|(t, _)| *t == ty) {
            slot.1 = f;
        } else {
            self.vec_dot_x4.push((ty, f));
        }
        self.overridden.push(name);
    }

    /// The four-token dot product of `ty`, where an ISA provides one.
    pub(crate) fn set_vec_dot_2x4(&mut self, ty: GgmlType, f: VecDot2x4Fn, name: &'static str) {
        if let Some(slot) = self.vec_dot_2x4.iter_mut().find(|(t, _)| *t == ty) {
            slot.1 = f;
        } else {
            self.vec_dot_2x4.push((ty, f));
        }
        self.overridden.push(name);
    }

    /// The 2-row × 4-token micro-kernel for weights of type `ty`, if this ISA has one.
    pub fn vec_dot_2x4(&self, ty: GgmlType) -> Option<VecDot2x4Fn> {
        self.vec_dot_2x4
            .iter()
            .find(|(t, _)| *t == ty)
            .map(|(_, f)| *f)
    }

    pub fn vec_dot_x4(&self, ty: GgmlType) -> Option<VecDotX4Fn> {
        self.vec_dot_x4
            .iter()
            .find(|(t, _)| *t == ty)
            .map(|(_, f)| *f)
    }

    pub(crate) fn set_repacked(&mut self, layout: crate::Layout, f: GemmX8Fn, name: &'static str) {
        if let Some(slot) = self.repacked.iter_mut().find(|(l, _)| *l == layout) {
            slot.1 = f;
        }
        self.overridden.push(name);
    }

    /// The product kernel of a repacked layout (`None` for `Layout::Rows`).
    pub fn repacked(&self, layout: crate::Layout) -> Option<GemmX8Fn> {
        self.repacked
            .iter()
            .find(|(l, _)| *l == layout)
            .map(|(_, f)| *f)
    }

    pub(crate) fn set_quantize(&mut self, ty: GgmlType, f: QuantFn, name: &'static str) {
        if let Some(slot) = self.quantize.iter_mut().find(|(t, _)| *t == ty) {
            slot.1 = f;
        } else {
            self.quantize.push((ty, f));
        }
        self.overridden.push(name);
    }

    pub(crate) fn set_dot_f16(&mut self, f: DotF16Fn, name: &'static str) {
        self.dot_f16 = f;
        self.overridden.push(name);
    }

    pub(crate) fn set_dot_f16_batch(&mut self, f: DotF16Fn, name: &'static str) {
        self.dot_f16_batch = f;
        self.overridden.push(name);
    }

    pub(crate) fn set_dot_f16_paged(
        &mut self,
        decode: DotF16PagedFn,
        batch: DotF16PagedFn,
        name: &'static str,
    ) {
        self.dot_f16_paged = decode;
        self.dot_f16_batch_paged = batch;
        self.overridden.push(name);
    }

    pub(crate) fn set_dot_f16_batch_x4(
        &mut self,
        contiguous: DotF16X4Fn,
        paged: DotF16PagedX4Fn,
        name: &'static str,
    ) {
        self.dot_f16_batch_x4 = contiguous;
        self.dot_f16_batch_paged_x4 = paged;
        self.overridden.push(name);
    }

    /// Four `dot_f16_batch` products sharing their second operand.
    pub fn dot_f16_batch_x4(&self) -> DotF16X4Fn {
        self.dot_f16_batch_x4
    }

    /// Four `dot_f16_batch_paged` products sharing their second operand.
    pub fn dot_f16_batch_paged_x4(&self) -> DotF16PagedX4Fn {
        self.dot_f16_batch_paged_x4
    }

    /// `dot_f16` over a row scattered across KV pages (attention's V products).
    pub fn dot_f16_paged(&self) -> DotF16PagedFn {
        self.dot_f16_paged
    }

    /// `dot_f16_batch` over a row scattered across KV pages.
    pub fn dot_f16_batch_paged(&self) -> DotF16PagedFn {
        self.dot_f16_batch_paged
    }

    /// The f16 · f16 dot product attention uses for a prompt chunk of two or more tokens
    /// (llama.cpp switches to its tiled GEMM there, which sums in another order).
    pub fn dot_f16_batch(&self) -> DotF16Fn {
        self.dot_f16_batch
    }

    pub(crate) fn set_softmax_exp(&mut self, f: SoftmaxExpFn, name: &'static str) {
        self.softmax_exp = f;
        self.overridden.push(name);
    }

    pub(crate) fn set_scale_to_f16(&mut self, f: ScaleToF16Fn, name: &'static str) {
        self.scale_to_f16 = f;
        self.overridden.push(name);
    }

    /// Scaled f32 → f16 conversion (attention's query and probabilities, KV-cache writes).
    pub fn scale_to_f16(&self) -> ScaleToF16Fn {
        self.scale_to_f16
    }

    pub(crate) fn set_swiglu(&mut self, f: SwigluFn, name: &'static str) {
        self.swiglu = f;
        self.overridden.push(name);
    }

    pub(crate) fn set_rope_fused(&mut self, name: &'static str) {
        self.rope_fused = true;
        self.overridden.push(name);
    }

    /// The softmax exponentiation step.
    pub fn softmax_exp(&self) -> SoftmaxExpFn {
        self.softmax_exp
    }

    /// SwiGLU activation.
    pub fn swiglu(&self) -> SwigluFn {
        self.swiglu
    }

    /// Whether RoPE rotates with fused multiply-adds (see `RopeConfig::apply`).
    pub fn rope_fused(&self) -> bool {
        self.rope_fused
    }

    /// The f16 · f16 dot product used by attention.
    pub fn dot_f16(&self) -> DotF16Fn {
        self.dot_f16
    }

    /// Dot product of a weight row of type `ty` with an activation row in its `vec_dot_type`.
    pub fn vec_dot(&self, ty: GgmlType) -> Option<VecDotFn> {
        self.vec_dot.iter().find(|(t, _)| *t == ty).map(|(_, f)| *f)
    }

    /// Row quantizer into `ty` (used for activations).
    pub fn quantize(&self, ty: GgmlType) -> Option<QuantFn> {
        self.quantize
            .iter()
            .find(|(t, _)| *t == ty)
            .map(|(_, f)| *f)
    }

    /// Whether `linear` can multiply weights of type `ty`.
    pub fn supports(&self, ty: GgmlType) -> bool {
        owl_quant::format(ty)
            .map(|f| self.vec_dot(ty).is_some() && self.quantize(f.vec_dot_type).is_some())
            .unwrap_or(false)
    }
}

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernels")
            .field("isa", &self.isa)
            .field("overridden", &self.overridden)
            .finish()
    }
}
