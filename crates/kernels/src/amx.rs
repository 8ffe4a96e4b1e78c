//! AMX (Advanced Matrix Extensions): may this process use the tile registers, and if not, why.
//!
//! Sapphire Rapids and later Xeons have eight 1 KiB tile registers and `TDPBUSD`, which does
//! 1024 int8 multiply-adds per cycle per core, eight times `vpdpbusd`. Linux keeps the tiles'
//! 8 KiB of register state out of every process by default: a process must ask for it with
//! `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)` before its first tile instruction, or
//! that instruction faults. (llama.cpp 0c1e570's native build dies with a general-protection
//! fault at `ldtilecfg` on such a guest; AMX works there once the process asks.)
//!
//! [`state`] answers once per process, in the order the conditions are checked: the CPU must
//! report AMX-TILE and AMX-INT8 (CPUID leaf 7), the kernel must support the tile state
//! (`ARCH_GET_XCOMP_SUPP`), and grant it (`ARCH_REQ_XCOMP_PERM`, then `ARCH_GET_XCOMP_PERM`
//! to confirm). Every failure is a value naming its cause, never a panic, so `owl show
//! --system` can say why AMX is not used.
//!
//! The tile kernels (`x86/amx_gemm.rs`) are the `amx` level of the ISA registry, whose
//! detection calls [`state`]; that level is asked about only when it is wanted (`OWL_ISA=amx`,
//! or `owl show --system`), so a process that does not use the tiles does not hold the tile
//! state and its larger signal frames.

/// What this process can do with AMX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmxState {
    /// Not an x86-64 Linux build.
    Unsupported,
    /// The CPU does not report AMX-TILE and AMX-INT8.
    NoCpu,
    /// The CPU has AMX, but the kernel does not support the tile state.
    NoKernel,
    /// The kernel refused the tile state (`errno` of `ARCH_REQ_XCOMP_PERM`, or 0 when it
    /// succeeded but the permission did not show).
    Refused { errno: i32 },
    /// The tile state is granted: tile instructions may run in this process.
    Granted {
        /// AMX-BF16 (`TDPBF16PS`) is present too.
        bf16: bool,
    },
}

impl AmxState {
    /// One line for people.
    pub fn describe(self) -> String {
        match self {
            AmxState::Unsupported => "not an x86-64 Linux build".into(),
            AmxState::NoCpu => "not detected".into(),
            AmxState::NoKernel => {
                "detected; the kernel does not support the tile state (Linux 5.16 or later \
                 needed)"
                    .into()
            }
            AmxState::Refused { errno } => {
                format!("detected; the kernel refused the tile state (arch_prctl errno {errno})")
            }
            AmxState::Granted { bf16 } => format!(
                "detected{}, tile state granted",
                if bf16 { " with bf16" } else { "" }
            ),
        }
    }
}

/// Whether this process may use AMX, asking the kernel for the tile state on the first call.
pub fn state() -> AmxState {
    static STATE: std::sync::OnceLock<AmxState> = std::sync::OnceLock::new();
    *STATE.get_or_init(probe)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn probe() -> AmxState {
    let (tile, int8, bf16) = cpu_bits();
    if !(tile && int8) {
        return AmxState::NoCpu;
    }
    let mut supported = 0u64;
    if arch_prctl(ARCH_GET_XCOMP_SUPP, &mut supported as *mut u64 as u64) != 0
        || supported & (1 << XFEATURE_XTILEDATA) == 0
    {
        return AmxState::NoKernel;
    }
    let ret = arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA);
    if ret != 0 {
        return AmxState::Refused {
            errno: i32::try_from(-ret).unwrap_or(i32::MAX),
        };
    }
    let mut permitted = 0u64;
    if arch_prctl(ARCH_GET_XCOMP_PERM, &mut permitted as *mut u64 as u64) != 0
        || permitted & (1 << XFEATURE_XTILEDATA) == 0
    {
        return AmxState::Refused { errno: 0 };
    }
    AmxState::Granted { bf16 }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn probe() -> AmxState {
    AmxState::Unsupported
}

/// CPUID leaf 7, sub-leaf 0, EDX: AMX-TILE (bit 24), AMX-INT8 (bit 25), AMX-BF16 (bit 22).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn cpu_bits() -> (bool, bool, bool) {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    // Leaf 7 is read only when leaf 0 reports it.
    if __cpuid(0).eax < 7 {
        return (false, false, false);
    }
    let edx = __cpuid_count(7, 0).edx;
    let bit = |b: u32| edx & (1 << b) != 0;
    (bit(24), bit(25), bit(22))
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
const ARCH_GET_XCOMP_SUPP: u64 = 0x1021;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
const ARCH_GET_XCOMP_PERM: u64 = 0x1022;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
const ARCH_REQ_XCOMP_PERM: u64 = 0x1023;
/// The xsave feature number of the tile data.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
const XFEATURE_XTILEDATA: u64 = 18;

/// The `arch_prctl` system call: 0, or minus the errno.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn arch_prctl(code: u64, arg: u64) -> i64 {
    const SYS_ARCH_PRCTL: i64 = 158;
    let ret: i64;
    // SAFETY: arch_prctl with the XCOMP codes reads or writes only the u64 that `arg` points
    // to (a live local of the caller) or takes a feature number; the syscall clobbers rcx and
    // r11 only, as declared.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") code,
            in("rsi") arg,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_follows_the_cpu_and_is_asked_once() {
        let s = state();
        assert_eq!(s, state(), "one answer per process");
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            let (tile, int8, _) = cpu_bits();
            assert_eq!(s == AmxState::NoCpu, !(tile && int8), "{s:?}");
            if let AmxState::Granted { .. } = s {
                let mut permitted = 0u64;
                assert_eq!(
                    arch_prctl(ARCH_GET_XCOMP_PERM, &mut permitted as *mut u64 as u64),
                    0
                );
                assert_ne!(permitted & (1 << XFEATURE_XTILEDATA), 0);
            }
        }
        assert!(!s.describe().is_empty());
    }

    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    #[test]
    fn a_bad_arch_prctl_code_is_an_errno_not_a_crash() {
        // 0x10ff is no arch_prctl code: EINVAL (22), returned as -22.
        assert_eq!(arch_prctl(0x10ff, 0), -22);
    }
}
