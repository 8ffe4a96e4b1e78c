//! The FFN of the DeepSeek-style families (`deepseek2`, `glm4moe`): `leading_dense_block_count`
//! dense layers, then routed experts with shared experts, softmax or sigmoid scores, an optional
//! selection bias (`exp_probs_b`), expert groups and normalised, scaled weights — all read from
//! the `{arch}.expert_*` keys llama.cpp's converter writes.

use crate::blocks::ffn::SwiGluFfn;
use crate::blocks::moe::{ExpertAct, Gating, MoeFfn};
use crate::decoder::FfnBlock;
use crate::hparams::HParams;
use crate::keys::Keys;
use crate::loader::Loader;
use crate::tensors::part::{FFN_ROUTER, FFN_SHARED};
use crate::tensors::Tensors;
use crate::ModelError;

use super::dense::moe_dims;

/// The routing settings shared by every MoE layer of a model.
pub struct RoutedSpec {
    arch: &'static str,
    n_dense: usize,
    n_shared: usize,
    /// Width of the shared expert when the model states it (`expert_shared_feed_forward_length`,
    /// ERNIE 4.5); else `n_shared × expert_feed_forward_length`.
    pub shared_ff: Option<usize>,
    /// After the leading dense layers, every `moe_step`-th layer is a mixture (ERNIE 4.5's
    /// `interleave_moe_layer_step`; 1: all of them).
    pub moe_step: usize,
    pub norm_weights: bool,
    weights_scale: f32,
    gating: Gating,
    groups: Option<(usize, usize)>,
}

fn bad(arch: &str, k: &str, why: String) -> ModelError {
    ModelError::BadKey {
        key: format!("{arch}.{k}"),
        why,
    }
}

impl RoutedSpec {
    /// Reads the keys; `default_gating` applies when `expert_gating_func` is absent (llama.cpp
    /// defaults deepseek2 to softmax and glm4moe to sigmoid).
    pub fn read(
        ld: &Loader<'_>,
        arch: &'static str,
        default_gating: Gating,
    ) -> Result<RoutedSpec, ModelError> {
        let keys = Keys::new(ld.file, arch);
        let gating = match keys.count("expert_gating_func")? {
            None | Some(0) => default_gating,
            Some(1) => Gating::Softmax,
            Some(2) => Gating::Sigmoid,
            Some(v) => {
                return Err(bad(
                    arch,
                    "expert_gating_func",
                    format!("gating function {v} is not supported (1 softmax, 2 sigmoid)"),
                ))
            }
        };
        let (g, u) = (
            keys.count_or("expert_group_count", 0)?,
            keys.count_or("expert_group_used_count", 0)?,
        );
        let groups = if g > 1 {
            if u == 0 || u >= g {
                return Err(bad(
                    arch,
                    "expert_group_used_count",
                    format!("{u} of {g} groups"),
                ));
            }
            Some((g, u))
        } else {
            None
        };
        Ok(RoutedSpec {
            arch,
            n_dense: keys.count_or("leading_dense_block_count", 0)?,
            n_shared: keys.count_or("expert_shared_count", 0)?,
            shared_ff: None,
            moe_step: 1,
            norm_weights: keys.bool_or("expert_weights_norm", false)?,
            // llama.cpp skips the scaling for 0 (absent) and 1.
            weights_scale: match keys.f32("expert_weights_scale")? {
                Some(s) if s != 0.0 => s,
                _ => 1.0,
            },
            gating,
            groups,
        })
    }

    /// The FFN of layer `i`: dense for the leading layers, else the routed mixture.
    pub fn ffn(&self, ld: &Loader<'_>, hp: &HParams, i: usize) -> Result<FfnBlock, ModelError> {
        let t = ld.layer(i);
        let e = hp.n_embd;
        if i < self.n_dense || (i + 1) % self.moe_step.max(1) != 0 {
            return Ok(FfnBlock::Dense(SwiGluFfn::load(&t, e, hp.dense_ff()?)?));
        }
        let (n_expert, n_used, ffe) = moe_dims(ld, self.arch)?;
        if let Some((g, _)) = self.groups {
            if n_expert % g != 0 {
                return Err(bad(
                    self.arch,
                    "expert_group_count",
                    format!("{n_expert} experts do not split into {g} groups"),
                ));
            }
        }
        let fs = self.shared_ff.unwrap_or(ffe * self.n_shared);
        let shared = if fs > 0 {
            Some(shared_expert(&t, e, fs)?)
        } else {
            None
        };
        Ok(FfnBlock::Moe(Box::new(MoeFfn {
            router: t.matrix(FFN_ROUTER, e, n_expert)?,
            experts: SwiGluFfn::load_experts(&t, e, ffe, n_expert)?,
            n_used,
            norm_weights: self.norm_weights,
            gating: self.gating,
            act: ExpertAct::SwiGlu,
            bias: None,
            selection_bias: t.optional_bias("exp_probs_b", n_expert)?,
            groups: self.groups,
            weights_scale: self.weights_scale,
            shared,
        })))
    }
}

/// The shared expert `ffn_{gate,up,down}_shexp` of width `n_ff`.
fn shared_expert(t: &Tensors<'_>, n_embd: usize, n_ff: usize) -> Result<SwiGluFfn, ModelError> {
    let [gate, up, down] = FFN_SHARED;
    Ok(SwiGluFfn {
        gate: t.matrix(gate, n_embd, n_ff)?,
        up: t.matrix(up, n_embd, n_ff)?,
        down: t.matrix(down, n_ff, n_embd)?,
    })
}
