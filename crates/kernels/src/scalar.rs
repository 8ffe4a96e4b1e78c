//! The scalar entry of the ISA registry: every slot of the kernel table gets its portable
//! reference. Every other ISA is registered on top of this and is tested against it.
//!
//! Why an entry like the others rather than the table's defaults: the table then knows nothing
//! of attention, softmax or the formats, so those modules can use the table without the table
//! using them back, and "scalar" is listed, detected and forced (`OWL_ISA=scalar`) the same way
//! as every other level.

use crate::Kernels;

/// Fills every slot of `k` with its scalar reference.
pub(crate) fn register(k: &mut Kernels) {
    for f in owl_quant::formats() {
        if let Some(dot) = f.vec_dot {
            k.set_vec_dot(f.ty, dot, "scalar");
        }
        if let Some(q) = f.quantize {
            k.set_quantize(f.ty, q, "scalar");
        }
    }
    for p in &crate::repack::PACKED {
        k.set_repacked(p.layout, p.reference, "scalar");
    }
    crate::gemm_float::register_scalar(k);
    crate::gemm_panel::register_scalar(k);
    use crate::attention as att;
    k.set_dot_f16(att::dot_f16_scalar, "scalar");
    k.set_dot_f16_batch(att::dot_f16_scalar, "scalar");
    k.set_dot_f16_paged(
        att::dot_f16_paged_scalar,
        att::dot_f16_paged_scalar,
        "scalar",
    );
    k.set_head_f16(
        att::head_scores_f16_scalar,
        att::head_out_f16_scalar,
        att::widen_f16_scalar,
        "scalar",
    );
    // The reference sums in f64 whatever the order a level mirrors, so the prompt order's
    // twins are the decode order's.
    k.set_head_f16_tiled(
        att::head_scores_f16_scalar,
        att::head_out_f16_scalar,
        "scalar",
    );
    k.set_softmax_exp(crate::softmax::softmax_exp_scalar, "scalar");
    k.set_scale_to_f16(att::scale_to_f16_scalar, "scalar");
    k.set_swiglu(crate::swiglu::swiglu_scalar, "scalar");
}
