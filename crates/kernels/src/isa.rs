//! The registry of instruction sets: one entry per ISA owl has kernels for, in order, each
//! with a name, a run-time detection function and a `register` that fills the kernel table.
//!
//! Why a table: building the kernels for an ISA is "start from the scalar references, then let
//! every detected ISA up to the one asked for override what it has" — a loop over this list.
//! Adding an ISA is one folder of kernels plus one entry here; nothing else names the levels
//! (`owl show --system` lists them from here, tests iterate `Isa::available()`).
//!
//! Detection happens at run time (`is_x86_feature_detected!`), never from `target-cpu`: one binary
//! runs everywhere and picks its kernels on the machine it runs on. `OWL_ISA` (a name from the
//! registry: `scalar`, `avx2`, `avxvnni`, `avx512`) names the level `Kernels::detect` picks (capped
//! by what the CPU has), so any path can be run and measured; without it the best level marked
//! `by_default` is used.

use crate::types::Isa;
use crate::Kernels;

/// One instruction-set level.
pub struct IsaDef {
    /// The name `OWL_ISA` takes and `owl show --system` prints.
    pub name: &'static str,
    /// The CPU features it needs, for people.
    pub features: &'static str,
    /// Whether this CPU has those features (checked at run time).
    pub detect: fn() -> bool,
    /// Installs its kernels over those of the entries before it.
    pub register: fn(&mut Kernels),
    /// Picked without `OWL_ISA` when the CPU has it. A level is opt-in (`OWL_ISA=name`) until
    /// it is measured faster than the one below it on whole models, not only on kernels.
    pub by_default: bool,
}

/// Every level, lowest first. Each entry's `detect` implies those of the entries it is
/// registered on top of (AVX-512 checks AVX2's features too). A level the CPU lacks is
/// skipped: on Zen 4 (AVX-512 VNNI, no AVX-VNNI) the `avx512` table is scalar, AVX2, AVX-512.
pub static ISAS: [IsaDef; 5] = [
    IsaDef {
        name: "scalar",
        features: "portable Rust",
        detect: || true,
        register: crate::scalar::register,
        by_default: true,
    },
    IsaDef {
        name: "avx2",
        features: "avx2+fma+f16c",
        detect: crate::x86::detect_avx2,
        register: crate::x86::register_avx2,
        by_default: true,
    },
    IsaDef {
        name: "avxvnni",
        features: "avx2+fma+f16c+avxvnni",
        detect: crate::x86::detect_avx_vnni,
        register: crate::x86::register_avx_vnni,
        by_default: false,
    },
    IsaDef {
        name: "avx512",
        features: "avx512f+bw+vl+vnni",
        detect: crate::x86::detect_avx512,
        register: crate::x86::register_avx512,
        by_default: true,
    },
    IsaDef {
        name: "amx",
        features: "avx512+amx-tile+int8",
        detect: crate::x86::detect_amx,
        register: crate::x86::register_amx,
        // Opt-in (`OWL_ISA=amx`) until measured on a CPU that has AMX: the tile kernels are
        // proven exact (software model here, the hardware under an emulator), not yet fast.
        by_default: false,
    },
];

impl Isa {
    /// Portable Rust: the reference every other level is tested against.
    pub const SCALAR: Isa = Isa(0);
    /// x86-64 with AVX2, FMA and F16C.
    pub const AVX2: Isa = Isa(1);
    /// x86-64 with AVX-VNNI (the VEX form of `vpdpbusd`, on top of AVX2's).
    pub const AVX_VNNI: Isa = Isa(2);
    /// x86-64 with AVX-512 F/BW/VL and VNNI (on top of AVX2's).
    pub const AVX512: Isa = Isa(3);
    /// AVX-512's kernels plus AMX tile products for prompt-sized batches.
    pub const AMX: Isa = Isa(4);

    /// Every level of the registry, supported here or not.
    pub fn all() -> impl Iterator<Item = Isa> {
        (0..ISAS.len()).map(|i| Isa(i as u8))
    }

    /// The registry entry.
    pub fn def(self) -> &'static IsaDef {
        &ISAS[usize::from(self.0)]
    }

    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// The level named `name` (as `OWL_ISA` spells it).
    pub fn by_name(name: &str) -> Option<Isa> {
        Isa::all().find(|i| i.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether this CPU can run the level's kernels.
    pub fn supported(self) -> bool {
        (self.def().detect)()
    }

    /// The best default level this CPU supports; `OWL_ISA` names another (capped by what the
    /// CPU supports). `avx512` is a default level: with its kernels' closures gone (they were
    /// compiled out of line), whole models run faster than at `avx2` on Zen 4
    /// (docs/PERFORMANCE.md). `avxvnni`, the same bodies in VEX encoding, stays opt-in until
    /// it is measured on a CPU that has it.
    pub fn detect() -> Isa {
        let default = Isa::all()
            .filter(|i| i.def().by_default && i.supported())
            .last()
            .unwrap_or(Isa::SCALAR);
        match std::env::var("OWL_ISA") {
            Ok(v) if !v.is_empty() => match Isa::by_name(&v) {
                // The best supported level is asked only here: detecting AMX asks the kernel
                // for the tile state, which a process that does not use it should not hold.
                Some(want) => want.min(Isa::best_supported()),
                None => {
                    let names: Vec<_> = Isa::all().map(Isa::name).collect();
                    eprintln!(
                        "owl: OWL_ISA={v} is not one of {names:?}; using {}",
                        default.name()
                    );
                    default
                }
            },
            _ => default,
        }
    }

    /// The best level this CPU supports, whatever `OWL_ISA` says.
    pub fn best_supported() -> Isa {
        Isa::all()
            .filter(|i| i.supported())
            .last()
            .unwrap_or(Isa::SCALAR)
    }

    /// Every level this CPU can run (for tests that compare each against the scalar one).
    pub fn available() -> Vec<Isa> {
        Isa::all().filter(|i| i.supported()).collect()
    }
}

impl std::fmt::Debug for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Kernels {
    /// Kernels for the best ISA of this CPU (capped by `OWL_ISA`).
    pub fn detect() -> Kernels {
        Kernels::for_isa(Isa::detect())
    }

    /// Kernels for `isa`: the scalar references, then every level up to `isa` that this CPU
    /// supports, each overriding what it has. Asking for a level the CPU lacks gives the table
    /// of the best one below it.
    pub fn for_isa(isa: Isa) -> Kernels {
        let mut k = Kernels::empty();
        for level in Isa::all().take_while(|l| *l <= isa) {
            if level.supported() {
                k.isa = level;
                (level.def().register)(&mut k);
            }
        }
        k
    }
}
