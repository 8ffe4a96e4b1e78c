//! The kernel table: which function computes each operation, for each weight type and layout.
//!
//! Why a table of function pointers rather than `if avx2 { .. }` at each call: the choice is
//! made once, when the table is built (`crate::isa`), and every caller reads it the same way,
//! so a test can build the table of any ISA the CPU runs and compare it with the scalar one in
//! the same process. Every slot also keeps the name of the kernel in it, so `owl show --system`
//! can say exactly what runs.
//!
//! The table is filled by the ISA registry: the scalar entry first (every slot gets its
//! reference), then each detected ISA in order overrides the slots it has kernels for.

use owl_quant::{GgmlType, QuantFn, VecDotFn};

use crate::types::Isa;
use crate::types::{
    DotF16Fn, DotF16PagedFn, FloatTileFn, GemmTilesFn, GemmX8Fn, GemmX8PairFn, HeadOutF16Fn,
    Layout, ScaleToF16Fn, ScoresF16Fn, SoftmaxExpFn, SwigluFn, VecDot2x4Fn, VecDotX4Fn, WidenF16Fn,
};

/// Keyed kernels with the name of each (`set` replaces the entry of a key or adds one).
#[derive(Clone)]
struct Slots<K, F> {
    entries: Vec<(K, F, &'static str)>,
}

impl<K: PartialEq + Copy, F: Copy> Slots<K, F> {
    fn new() -> Self {
        Slots {
            entries: Vec::new(),
        }
    }

    fn set(&mut self, key: K, f: F, name: &'static str) {
        match self.entries.iter_mut().find(|(k, _, _)| *k == key) {
            Some(slot) => *slot = (key, f, name),
            None => self.entries.push((key, f, name)),
        }
    }

    fn get(&self, key: K) -> Option<F> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, f, _)| *f)
    }

    fn name(&self, key: K) -> Option<&'static str> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, n)| *n)
    }
}

/// One unkeyed kernel and its name; `None` only until the scalar entry has registered.
type Single<F> = Option<(F, &'static str)>;

fn single<F: Copy>(s: &Single<F>) -> F {
    s.expect("kernel table: the scalar entry registers every slot first")
        .0
}

/// The functions chosen for one ISA: scalar references first, then ISA overrides.
#[derive(Clone)]
pub struct Kernels {
    pub(crate) isa: Isa,
    vec_dot: Slots<GgmlType, VecDotFn>,
    vec_dot_x4: Slots<GgmlType, VecDotX4Fn>,
    vec_dot_2x4: Slots<GgmlType, VecDot2x4Fn>,
    float_tile: Slots<GgmlType, FloatTileFn>,
    quantize: Slots<GgmlType, QuantFn>,
    repacked: Slots<Layout, GemmX8Fn>,
    repacked_pair: Slots<Layout, GemmX8PairFn>,
    repacked_tiles: Slots<Layout, GemmTilesFn>,
    gemm_float: Slots<GgmlType, crate::gemm_float::GemmFloatFn>,
    dot_f16: Single<DotF16Fn>,
    dot_f16_batch: Single<DotF16Fn>,
    dot_f16_paged: Single<(DotF16PagedFn, DotF16PagedFn)>,
    head_f16: Single<(ScoresF16Fn, HeadOutF16Fn, WidenF16Fn)>,
    head_f16_tiled: Single<(ScoresF16Fn, HeadOutF16Fn)>,
    softmax_exp: Single<SoftmaxExpFn>,
    scale_to_f16: Single<ScaleToF16Fn>,
    swiglu: Single<SwigluFn>,
    gemm_panel: Single<crate::gemm_panel::GemmPanelFn>,
    rope_fused: Option<&'static str>,
    overridden: Vec<&'static str>,
}

impl Kernels {
    /// An empty table; only the ISA registry builds one (`Kernels::for_isa`), and it always
    /// runs the scalar entry's `register` first.
    pub(crate) fn empty() -> Kernels {
        Kernels {
            isa: Isa::SCALAR,
            vec_dot: Slots::new(),
            vec_dot_x4: Slots::new(),
            vec_dot_2x4: Slots::new(),
            float_tile: Slots::new(),
            quantize: Slots::new(),
            repacked: Slots::new(),
            repacked_pair: Slots::new(),
            repacked_tiles: Slots::new(),
            gemm_float: Slots::new(),
            dot_f16: None,
            dot_f16_batch: None,
            dot_f16_paged: None,
            head_f16: None,
            head_f16_tiled: None,
            softmax_exp: None,
            scale_to_f16: None,
            swiglu: None,
            gemm_panel: None,
            rope_fused: None,
            overridden: Vec::new(),
        }
    }

    /// The ISA whose kernels were registered last (the best one asked for and detected).
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Names of the kernels the ISAs above scalar installed, in registration order (a kernel
    /// later replaced by a higher ISA's stays listed).
    pub fn overridden(&self) -> &[&'static str] {
        &self.overridden
    }

    /// Records an override (the scalar entry's references are not listed).
    fn note(&mut self, name: &'static str) {
        if self.isa != Isa::SCALAR {
            self.overridden.push(name);
        }
    }

    /// What runs for each layout and operation, as (what, kernel name) pairs: per weight type
    /// in the row layout its dot product and batched tiles, per repacked layout its product,
    /// then the attention and activation kernels (for `owl show --system`).
    pub fn chosen(&self) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        for (ty, _, name) in &self.vec_dot.entries {
            out.push((format!("rows {ty:?} dot"), *name));
            if let Some(n) = self.vec_dot_x4.name(*ty) {
                out.push((format!("rows {ty:?} 1x4"), n));
            }
            if let Some(n) = self.vec_dot_2x4.name(*ty) {
                out.push((format!("rows {ty:?} 2x4"), n));
            }
            if let Some(n) = self.float_tile.name(*ty) {
                out.push((format!("rows {ty:?} 4x4"), n));
            }
        }
        for (ty, _, name) in &self.gemm_float.entries {
            out.push((format!("rows {ty:?} gemm"), *name));
        }
        for (layout, _, name) in &self.repacked.entries {
            out.push((format!("{layout:?}"), *name));
            if let Some(n) = self.repacked_pair.name(*layout) {
                out.push((format!("{layout:?} pairs"), n));
            }
            if let Some(n) = self.repacked_tiles.name(*layout) {
                out.push((format!("{layout:?} tiles"), n));
            }
        }
        // The row kernels `dot_f16`, `dot_f16_batch` and `dot_f16_paged` are not listed: no
        // forward pass calls them any more; they define, per ISA, the orders the whole-group
        // attention kernels are tested against.
        let singles = [
            ("attention decode head", self.head_f16.map(|s| s.1)),
            ("attention prompt head", self.head_f16_tiled.map(|s| s.1)),
            ("softmax exp", self.softmax_exp.map(|s| s.1)),
            ("scale to f16", self.scale_to_f16.map(|s| s.1)),
            ("swiglu", self.swiglu.map(|s| s.1)),
            ("gemm f32 panels", self.gemm_panel.map(|s| s.1)),
            ("rope", Some(self.rope_fused.unwrap_or("scalar"))),
        ];
        for (what, name) in singles {
            if let Some(n) = name {
                out.push((what.to_string(), n));
            }
        }
        out
    }

    pub(crate) fn set_vec_dot(&mut self, ty: GgmlType, f: VecDotFn, name: &'static str) {
        self.vec_dot.set(ty, f, name);
        self.note(name);
    }

    pub(crate) fn set_vec_dot_x4(&mut self, ty: GgmlType, f: VecDotX4Fn, name: &'static str) {
        self.vec_dot_x4.set(ty, f, name);
        self.note(name);
    }

    pub(crate) fn set_float_tile(&mut self, ty: GgmlType, f: FloatTileFn, name: &'static str) {
        self.float_tile.set(ty, f, name);
        self.note(name);
    }

    /// The 4-row × 4-token tile for 16-bit float weights of type `ty`, if this ISA has one.
    pub fn float_tile(&self, ty: GgmlType) -> Option<FloatTileFn> {
        self.float_tile.get(ty)
    }

    pub(crate) fn set_vec_dot_2x4(&mut self, ty: GgmlType, f: VecDot2x4Fn, name: &'static str) {
        self.vec_dot_2x4.set(ty, f, name);
        self.note(name);
    }

    /// The 2-row × 4-token micro-kernel for weights of type `ty`, if this ISA has one.
    pub fn vec_dot_2x4(&self, ty: GgmlType) -> Option<VecDot2x4Fn> {
        self.vec_dot_2x4.get(ty)
    }

    pub fn vec_dot_x4(&self, ty: GgmlType) -> Option<VecDotX4Fn> {
        self.vec_dot_x4.get(ty)
    }

    pub(crate) fn set_gemm_float(
        &mut self,
        ty: GgmlType,
        f: crate::gemm_float::GemmFloatFn,
        name: &'static str,
    ) {
        self.gemm_float.set(ty, f, name);
        self.note(name);
    }

    /// The float-weight GEMM (`crate::gemm_float`) for weights of type `ty` (F16, BF16, F32).
    pub fn gemm_float(&self, ty: GgmlType) -> Option<crate::gemm_float::GemmFloatFn> {
        self.gemm_float.get(ty)
    }

    pub(crate) fn set_repacked(&mut self, layout: Layout, f: GemmX8Fn, name: &'static str) {
        self.repacked.set(layout, f, name);
        self.note(name);
    }

    /// The product kernel of a repacked layout (`None` for `Layout::Rows`).
    pub fn repacked(&self, layout: Layout) -> Option<GemmX8Fn> {
        self.repacked.get(layout)
    }

    /// The tile-engine product of a repacked layout (AMX), for calls of many tokens.
    pub(crate) fn set_repacked_tiles(
        &mut self,
        layout: Layout,
        f: GemmTilesFn,
        name: &'static str,
    ) {
        self.repacked_tiles.set(layout, f, name);
        self.note(name);
    }

    /// The tile-engine product of `layout`, where this ISA has one.
    pub fn repacked_tiles(&self, layout: Layout) -> Option<GemmTilesFn> {
        self.repacked_tiles.get(layout)
    }

    pub(crate) fn set_repacked_pair(
        &mut self,
        layout: Layout,
        f: GemmX8PairFn,
        name: &'static str,
    ) {
        self.repacked_pair.set(layout, f, name);
        self.note(name);
    }

    /// The two-group product of a repacked layout, where an ISA has one (wide registers that
    /// hold sixteen rows); callers fall back to `repacked` group by group.
    pub fn repacked_pair(&self, layout: Layout) -> Option<GemmX8PairFn> {
        self.repacked_pair.get(layout)
    }

    /// The name of the kernel `repacked(layout)` gives.
    pub fn repacked_name(&self, layout: Layout) -> Option<&'static str> {
        self.repacked.name(layout)
    }

    pub(crate) fn set_quantize(&mut self, ty: GgmlType, f: QuantFn, name: &'static str) {
        self.quantize.set(ty, f, name);
        self.note(name);
    }

    pub(crate) fn set_dot_f16(&mut self, f: DotF16Fn, name: &'static str) {
        self.dot_f16 = Some((f, name));
        self.note(name);
    }

    pub(crate) fn set_dot_f16_batch(&mut self, f: DotF16Fn, name: &'static str) {
        self.dot_f16_batch = Some((f, name));
        self.note(name);
    }

    pub(crate) fn set_dot_f16_paged(
        &mut self,
        decode: DotF16PagedFn,
        batch: DotF16PagedFn,
        name: &'static str,
    ) {
        self.dot_f16_paged = Some(((decode, batch), name));
        self.note(name);
    }

    pub(crate) fn set_head_f16(
        &mut self,
        scores: ScoresF16Fn,
        out: HeadOutF16Fn,
        widen: WidenF16Fn,
        name: &'static str,
    ) {
        self.head_f16 = Some(((scores, out, widen), name));
        self.note(name);
    }

    pub(crate) fn set_head_f16_tiled(
        &mut self,
        scores: ScoresF16Fn,
        out: HeadOutF16Fn,
        name: &'static str,
    ) {
        self.head_f16_tiled = Some(((scores, out), name));
        self.note(name);
    }

    /// A group of prompt heads' scaled scores and their maxima, in one call
    /// (`dot_f16_batch`'s bits per row and head).
    pub fn head_scores_f16_tiled(&self) -> ScoresF16Fn {
        single(&self.head_f16_tiled).0
    }

    /// A group of prompt heads' outputs over the transposed V rows, in one call
    /// (`dot_f16_batch_paged`'s bits per dimension and head).
    pub fn head_out_f16_tiled(&self) -> HeadOutF16Fn {
        single(&self.head_f16_tiled).1
    }

    /// A decoding head's scaled scores and their maximum, in one call (`dot_f16`'s bits).
    pub fn head_scores_f16(&self) -> ScoresF16Fn {
        single(&self.head_f16).0
    }

    /// A decoding head's outputs over the transposed V rows, in one call (`dot_f16_paged`'s
    /// bits).
    pub fn head_out_f16(&self) -> HeadOutF16Fn {
        single(&self.head_f16).1
    }

    /// f16 to f32, element by element (exact).
    pub fn widen_f16(&self) -> WidenF16Fn {
        single(&self.head_f16).2
    }

    /// `dot_f16` over a row scattered across KV pages (attention's V products).
    pub fn dot_f16_paged(&self) -> DotF16PagedFn {
        single(&self.dot_f16_paged).0
    }

    /// `dot_f16_batch` over a row scattered across KV pages.
    pub fn dot_f16_batch_paged(&self) -> DotF16PagedFn {
        single(&self.dot_f16_paged).1
    }

    /// The f16 · f16 dot product attention uses for a prompt chunk of two or more tokens
    /// (llama.cpp switches to its tiled GEMM there, which sums in another order).
    pub fn dot_f16_batch(&self) -> DotF16Fn {
        single(&self.dot_f16_batch)
    }

    pub(crate) fn set_softmax_exp(&mut self, f: SoftmaxExpFn, name: &'static str) {
        self.softmax_exp = Some((f, name));
        self.note(name);
    }

    pub(crate) fn set_scale_to_f16(&mut self, f: ScaleToF16Fn, name: &'static str) {
        self.scale_to_f16 = Some((f, name));
        self.note(name);
    }

    /// Scaled f32 → f16 conversion (attention's query and probabilities, KV-cache writes).
    pub fn scale_to_f16(&self) -> ScaleToF16Fn {
        single(&self.scale_to_f16)
    }

    pub(crate) fn set_gemm_panel(&mut self, f: crate::gemm_panel::GemmPanelFn, name: &'static str) {
        self.gemm_panel = Some((f, name));
        self.note(name);
    }

    /// The f32 GEMM against panel-packed columns (`crate::gemm_panel`).
    pub fn gemm_panel(&self) -> crate::gemm_panel::GemmPanelFn {
        single(&self.gemm_panel)
    }

    pub(crate) fn set_swiglu(&mut self, f: SwigluFn, name: &'static str) {
        self.swiglu = Some((f, name));
        self.note(name);
    }

    pub(crate) fn set_rope_fused(&mut self, name: &'static str) {
        self.rope_fused = Some(name);
        self.note(name);
    }

    /// The softmax exponentiation step.
    pub fn softmax_exp(&self) -> SoftmaxExpFn {
        single(&self.softmax_exp)
    }

    /// SwiGLU activation.
    pub fn swiglu(&self) -> SwigluFn {
        single(&self.swiglu)
    }

    /// Whether RoPE rotates with fused multiply-adds (see `RopeConfig::apply`).
    pub fn rope_fused(&self) -> bool {
        self.rope_fused.is_some()
    }

    /// The f16 · f16 dot product used by attention.
    pub fn dot_f16(&self) -> DotF16Fn {
        single(&self.dot_f16)
    }

    /// Dot product of a weight row of type `ty` with an activation row in its `vec_dot_type`.
    pub fn vec_dot(&self, ty: GgmlType) -> Option<VecDotFn> {
        self.vec_dot.get(ty)
    }

    /// Row quantizer into `ty` (used for activations).
    pub fn quantize(&self, ty: GgmlType) -> Option<QuantFn> {
        self.quantize.get(ty)
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
