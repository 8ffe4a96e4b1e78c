//! x86-64 SIMD overrides, registered only when the CPU reports the features at run time.
//!
//! Two registry entries live here (`crate::isa::ISAS`): AVX2 (with FMA and F16C), and AVX-512
//! with VNNI, registered on top of AVX2's and overriding only the repacked-layout products.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx2_quants;
#[cfg(target_arch = "x86_64")]
mod avx2_repacked;
#[cfg(target_arch = "x86_64")]
mod avx2_tiles;
#[cfg(target_arch = "x86_64")]
mod avx512_vnni;
#[cfg(target_arch = "x86_64")]
mod common;

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
        avx2_quants::register(k);
        avx2_repacked::register(k);
        avx2_tiles::register(k);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = k;
}

/// Installs the AVX-512 VNNI kernels into `k` (over AVX2's); a no-op on other architectures.
pub(crate) fn register_avx512(k: &mut crate::Kernels) {
    #[cfg(target_arch = "x86_64")]
    avx512_vnni::register(k);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = k;
}
