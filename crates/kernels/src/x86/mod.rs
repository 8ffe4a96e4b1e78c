//! x86-64 SIMD overrides, registered only when the CPU reports the features at run time.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx2_quants;
#[cfg(target_arch = "x86_64")]
mod avx2_repacked;
#[cfg(target_arch = "x86_64")]
mod avx2_tiles;
#[cfg(target_arch = "x86_64")]
mod common;

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
