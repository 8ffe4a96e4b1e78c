//! x86-64 SIMD overrides, registered only when the CPU reports the features at run time.
//!
//! Three registry entries live here (`crate::isa::ISAS`): AVX2 (with FMA and F16C); AVX-VNNI
//! and AVX-512 with VNNI, each registered on top of AVX2's and overriding the repacked-layout
//! products and the row-layout Q8_0 dot product with the same `vpdpbusd` code (`vnni.rs`).
//! A fourth, AMX, adds tile products for prompt-sized batches (`amx_gemm.rs`) on top of
//! AVX-512's, where the CPU has AMX-TILE/AMX-INT8 and the kernel grants the tile state.

#[cfg(target_arch = "x86_64")]
mod amx_gemm;
#[cfg(target_arch = "x86_64")]
mod amx_super_tiles;
#[cfg(target_arch = "x86_64")]
mod amx_tiles;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx2_act_halves;
#[cfg(target_arch = "x86_64")]
mod avx2_act_quant;
#[cfg(target_arch = "x86_64")]
mod avx2_attn_head;
#[cfg(target_arch = "x86_64")]
mod avx2_attn_tiled;
#[cfg(target_arch = "x86_64")]
mod avx2_gemm_float;
#[cfg(target_arch = "x86_64")]
mod avx2_gemm_panel;
#[cfg(target_arch = "x86_64")]
mod avx2_quants;
#[cfg(target_arch = "x86_64")]
mod avx2_repacked;
#[cfg(target_arch = "x86_64")]
mod avx2_tiles;
#[cfg(target_arch = "x86_64")]
mod avx512_attn_head;
#[cfg(target_arch = "x86_64")]
mod avx512_exp;
#[cfg(target_arch = "x86_64")]
mod bf16;
#[cfg(target_arch = "x86_64")]
mod common;
#[cfg(target_arch = "x86_64")]
mod f16_rows;
#[cfg(target_arch = "x86_64")]
mod vnni;
#[cfg(target_arch = "x86_64")]
mod vnni_pairs;

/// Whether the CPU has AVX2, FMA and F16C.
pub(crate) fn detect_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the CPU has AVX2's features and AVX-512 F/BW/VL with VNNI.
pub(crate) fn detect_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        detect_avx2()
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Installs the AVX2 kernels into `k`; a no-op on other architectures.
pub(crate) fn register_avx2(k: &mut crate::Kernels) {
    #[cfg(target_arch = "x86_64")]
    {
        avx2::register(k);
        avx2_act_halves::register(k);
        avx2_act_quant::register(k);
        avx2_attn_head::register(k);
        avx2_attn_tiled::register(k);
        avx2_gemm_float::register(k);
        avx2_gemm_panel::register(k);
        avx2_quants::register(k);
        avx2_repacked::register(k);
        avx2_tiles::register(k);
        bf16::register_avx2(k);
        f16_rows::register_avx2(k);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = k;
}

/// Whether the CPU has AVX2's features and AVX-VNNI (the VEX form, without AVX-512).
pub(crate) fn detect_avx_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        detect_avx2() && std::is_x86_feature_detected!("avxvnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Installs the AVX-VNNI kernels into `k` (over AVX2's); a no-op on other architectures.
pub(crate) fn register_avx_vnni(k: &mut crate::Kernels) {
    #[cfg(target_arch = "x86_64")]
    vnni::avx::register(k);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = k;
}

/// Installs the AVX-512 VNNI kernels into `k` (over AVX2's); a no-op on other architectures.
pub(crate) fn register_avx512(k: &mut crate::Kernels) {
    #[cfg(target_arch = "x86_64")]
    {
        vnni::avx512::register(k);
        vnni_pairs::register(k);
        avx512_attn_head::register(k);
        avx512_exp::register(k);
        avx2_attn_tiled::register_avx512(k);
        bf16::register_avx512(k);
        f16_rows::register_avx512(k);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = k;
}

/// Whether AVX-512's level is here and this process may use AMX tiles (asks the kernel for the
/// tile state on the first call: `crate::amx::state`).
pub(crate) fn detect_amx() -> bool {
    detect_avx512() && matches!(crate::amx::state(), crate::amx::AmxState::Granted { .. })
}

/// Installs the AMX tile kernels into `k` (over AVX-512's); a no-op on other architectures.
pub(crate) fn register_amx(k: &mut crate::Kernels) {
    #[cfg(target_arch = "x86_64")]
    amx_gemm::register(k);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = k;
}

#[cfg(target_arch = "x86_64")]
pub(crate) use amx_gemm::soft_kernel as soft_tiles_kernel;

impl crate::Kernels {
    /// This table with every repacked layout's AMX tile kernel running on the exact software
    /// model of the tiles, for tests on CPUs without AMX: the kernels' operand handling and
    /// float epilogues meet every test of the tile path, bit for bit. Unchanged where
    /// AVX2/FMA/F16C are absent. Far slower than any real kernel; never for inference.
    #[doc(hidden)]
    pub fn with_soft_tiles(&self) -> crate::Kernels {
        let mut k = self.clone();
        #[cfg(target_arch = "x86_64")]
        for p in crate::repack::PACKED.iter() {
            if let Some(f) = soft_tiles_kernel(p.layout) {
                k.set_repacked_tiles(p.layout, f, "soft tiles (test model)");
            }
        }
        k
    }
}
