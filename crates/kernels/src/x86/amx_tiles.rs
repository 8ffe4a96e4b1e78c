//! The AMX tile engine as owl's tile kernels use it, and a software twin of it.
//!
//! AMX has eight tile registers of up to 16 rows × 64 bytes and one multiply instruction per
//! signedness (`TDPBSSD`: signed × signed bytes, `TDPBSUD`: signed × unsigned, ...):
//! `C[m][n] += Σ_k A[m][k] · B[k / 4][4n + k % 4]`, with 32-bit integer sums. `B` is stored four
//! bytes of `k` per column, which is exactly how a repacked group of eight rows keeps its
//! weights (`crate::repack`: byte `4r + i` of chunk `g` is row `r`'s column `4g + i`), so a
//! group's block is a `B` operand as it lies in memory, and a token tile's activation rows are
//! an `A` operand as they lie in the activation buffer (one row per token, any stride).
//!
//! owl's tile kernels use one configuration (`TileConfig::int8`): `tmm0`/`tmm1` are the
//! integer results of two groups (16 tokens × 8 rows), `tmm2` the tokens' activations (16 rows ×
//! `k` bytes), `tmm3`/`tmm4` the two groups' weights (`k / 4` rows × 32 bytes). The kernels are
//! written against [`TileOps`], so the same code runs on the hardware ([`Amx`], inline `asm!`
//! because the intrinsics are not stable) and on [`SoftTiles`], an exact software model of the
//! five instructions used. The model lets every tile kernel be tested bit for bit against its
//! layout's scalar reference on any x86-64 CPU; the hardware path is tested where AMX is
//! granted (or under an emulator: `scripts/amx_emulate.sh`).

use std::arch::asm;

/// Tile registers the kernels name: the two result tiles, the activations, the two weights.
pub(crate) const C0: usize = 0;
pub(crate) const C1: usize = 1;

/// The 64-byte operand of `ldtilecfg` (palette 1).
#[repr(C, align(64))]
pub(crate) struct TileConfig {
    bytes: [u8; 64],
}

impl TileConfig {
    /// `tmm0`, `tmm1`: 16 × 8 `i32`; `tmm2`: 16 rows × `k` bytes; `tmm3`, `tmm4`: `k / 4` rows ×
    /// 32 bytes. `k` is the columns of one block (32, or 16 for 16-column sub-blocks).
    pub(crate) fn int8(k: usize) -> TileConfig {
        assert!(
            k.is_multiple_of(4) && (4..=64).contains(&k),
            "tile config: k = {k}"
        );
        let mut bytes = [0u8; 64];
        bytes[0] = 1; // palette 1
        let mut shape = |tile: usize, rows: usize, colsb: usize| {
            bytes[16 + 2 * tile..18 + 2 * tile].copy_from_slice(&(colsb as u16).to_le_bytes());
            bytes[48 + tile] = rows as u8;
        };
        shape(0, 16, 32);
        shape(1, 16, 32);
        shape(2, 16, k);
        shape(3, k / 4, 32);
        shape(4, k / 4, 32);
        TileConfig { bytes }
    }

    fn rows(&self, tile: usize) -> usize {
        usize::from(self.bytes[48 + tile])
    }

    fn colsb(&self, tile: usize) -> usize {
        usize::from(u16::from_le_bytes([
            self.bytes[16 + 2 * tile],
            self.bytes[17 + 2 * tile],
        ]))
    }
}

/// The tile instructions the kernels use. `c` names a result tile ([`C0`] or [`C1`]) and the
/// weight tile paired with it.
///
/// # Safety
/// Every method is `unsafe`: pointers must be valid for the configured shape (rows × bytes,
/// rows `stride` apart), and on [`Amx`] the tile state must be granted and configured.
pub(crate) trait TileOps {
    /// `ldtilecfg`: sets the shapes (and zeroes every tile).
    unsafe fn configure(&mut self, cfg: &TileConfig);
    /// `tilezero` of result tile `c`.
    unsafe fn zero(&mut self, c: usize);
    /// `tileloadd` of the activation tile: 16 rows of `k` bytes, `stride` bytes apart.
    unsafe fn load_a(&mut self, p: *const u8, stride: usize);
    /// `tileloadd` of weight tile `c`: `k / 4` rows of 32 bytes, contiguous.
    unsafe fn load_b(&mut self, c: usize, p: *const u8);
    /// `TDPBSSD`: result tile `c` += activations (signed) · weights `c` (signed).
    unsafe fn dot_signed(&mut self, c: usize);
    /// `TDPBSUD`: result tile `c` += activations (signed) · weights `c` (unsigned).
    unsafe fn dot_unsigned(&mut self, c: usize);
    /// `tilestored` of result tile `c`: 16 rows of 8 `i32`, contiguous.
    unsafe fn store(&mut self, c: usize, p: *mut i32);
    /// `tilerelease`.
    unsafe fn release(&mut self);
}

/// The hardware: AMX-TILE and AMX-INT8 through `asm!`.
pub(crate) struct Amx;

/// One instruction per result tile: `$c` picks the register names (constants after inlining).
macro_rules! per_tile {
    ($c:expr, $t0:literal, $t1:literal, $($args:tt)*) => {
        // SAFETY: the tile state is granted and configured, and any memory operand is valid
        // for the configured shape (the caller's contract of every `TileOps` method).
        unsafe {
            if $c == C0 {
                asm!($t0, $($args)*)
            } else {
                asm!($t1, $($args)*)
            }
        }
    };
}

impl TileOps for Amx {
    #[inline(always)]
    unsafe fn configure(&mut self, cfg: &TileConfig) {
        // SAFETY: the tile state is granted (caller's contract); `cfg` is 64 valid bytes.
        unsafe { asm!("ldtilecfg [{}]", in(reg) cfg.bytes.as_ptr(), options(nostack, readonly)) };
    }

    #[inline(always)]
    unsafe fn zero(&mut self, c: usize) {
        per_tile!(c, "tilezero tmm0", "tilezero tmm1", options(nostack, nomem));
    }

    #[inline(always)]
    unsafe fn load_a(&mut self, p: *const u8, stride: usize) {
        // SAFETY: 16 rows of `k` bytes, `stride` apart, are readable (caller's contract).
        unsafe {
            asm!(
                "tileloadd tmm2, [{p} + {s} * 1]",
                p = in(reg) p,
                s = in(reg) stride,
                options(nostack, readonly)
            )
        };
    }

    #[inline(always)]
    unsafe fn load_b(&mut self, c: usize, p: *const u8) {
        per_tile!(
            c,
            "tileloadd tmm3, [{p} + {s} * 1]",
            "tileloadd tmm4, [{p} + {s} * 1]",
            p = in(reg) p,
            s = in(reg) 32usize,
            options(nostack, readonly)
        );
    }

    #[inline(always)]
    unsafe fn dot_signed(&mut self, c: usize) {
        per_tile!(
            c,
            "tdpbssd tmm0, tmm2, tmm3",
            "tdpbssd tmm1, tmm2, tmm4",
            options(nostack, nomem)
        );
    }

    #[inline(always)]
    unsafe fn dot_unsigned(&mut self, c: usize) {
        per_tile!(
            c,
            "tdpbsud tmm0, tmm2, tmm3",
            "tdpbsud tmm1, tmm2, tmm4",
            options(nostack, nomem)
        );
    }

    #[inline(always)]
    unsafe fn store(&mut self, c: usize, p: *mut i32) {
        per_tile!(
            c,
            "tilestored [{p} + {s} * 1], tmm0",
            "tilestored [{p} + {s} * 1], tmm1",
            p = in(reg) p,
            s = in(reg) 32usize,
            options(nostack)
        );
    }

    #[inline(always)]
    unsafe fn release(&mut self) {
        // SAFETY: the tile state is granted (caller's contract).
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }
}

/// An exact software model of the same instructions (integer sums: the order does not matter),
/// for testing the tile kernels on CPUs without AMX.
pub(crate) struct SoftTiles {
    k: usize,
    a: [[u8; 64]; 16],
    b: [[[u8; 32]; 16]; 2],
    c: [[[i32; 8]; 16]; 2],
}

impl SoftTiles {
    pub(crate) fn new() -> SoftTiles {
        SoftTiles {
            k: 0,
            a: [[0; 64]; 16],
            b: [[[0; 32]; 16]; 2],
            c: [[[0; 8]; 16]; 2],
        }
    }

    fn dot(&mut self, c: usize, b_signed: bool) {
        let k = self.k;
        for m in 0..16 {
            for n in 0..8 {
                let mut sum = self.c[c][m][n];
                for kk in 0..k {
                    let a = i32::from(self.a[m][kk] as i8);
                    let raw = self.b[c][kk / 4][4 * n + kk % 4];
                    let b = if b_signed {
                        i32::from(raw as i8)
                    } else {
                        i32::from(raw)
                    };
                    sum = sum.wrapping_add(a * b);
                }
                self.c[c][m][n] = sum;
            }
        }
    }
}

impl TileOps for SoftTiles {
    unsafe fn configure(&mut self, cfg: &TileConfig) {
        assert_eq!((cfg.rows(0), cfg.colsb(0)), (16, 32));
        assert_eq!(cfg.rows(3) * 4, cfg.colsb(2), "B rows = A bytes / 4");
        *self = SoftTiles::new();
        self.k = cfg.colsb(2);
    }

    unsafe fn zero(&mut self, c: usize) {
        self.c[c] = [[0; 8]; 16];
    }

    unsafe fn load_a(&mut self, p: *const u8, stride: usize) {
        for (m, row) in self.a.iter_mut().enumerate() {
            // SAFETY: 16 rows of `k` bytes, `stride` apart (caller's contract).
            let src = unsafe { std::slice::from_raw_parts(p.add(m * stride), self.k) };
            row[..self.k].copy_from_slice(src);
        }
    }

    unsafe fn load_b(&mut self, c: usize, p: *const u8) {
        for (r, row) in self.b[c].iter_mut().take(self.k / 4).enumerate() {
            // SAFETY: `k / 4` rows of 32 bytes, contiguous (caller's contract).
            row.copy_from_slice(unsafe { std::slice::from_raw_parts(p.add(32 * r), 32) });
        }
    }

    unsafe fn dot_signed(&mut self, c: usize) {
        self.dot(c, true);
    }

    unsafe fn dot_unsigned(&mut self, c: usize) {
        self.dot(c, false);
    }

    unsafe fn store(&mut self, c: usize, p: *mut i32) {
        for (m, row) in self.c[c].iter().enumerate() {
            // SAFETY: 16 rows of 8 i32 are writable, contiguous (caller's contract).
            unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), p.add(8 * m), 8) };
        }
    }

    unsafe fn release(&mut self) {}
}
