#!/usr/bin/env bash
# One-time, idempotent setup for scripts/amx_emulate.sh (AMX emulation under Bochs).
#
#   scripts/amx_emulate_setup.sh            # install/build what is missing, then self-test
#
# What it does (everything under $AMX_EMU_HOME, default /work/amx-emu):
#   1. apt-get installs the host tools: xorriso isolinux syslinux-common busybox-static cpio
#      (and g++/make/binutils/python3 for the build) when missing.
#   2. Extracts the Bochs source (pinned commit) from a git mirror
#      ($AMX_EMU_BOCHS_GIT, default /work/.mirror/bochs-emu+Bochs/repo), applies the AMX
#      patches below and builds bochs/bochs (x86-64, AVX, EVEX, AMX, nogui; ~5 min, 2 jobs).
#   3. Downloads the Debian kernel package $AMX_EMU_KERNEL_PKG with `apt-get download` and
#      extracts vmlinuz to kernel/vmlinuz.
#   4. Compiles a small AMX TDPBUSD test (tests/amx_test.c) and runs it through
#      amx_emulate.sh; it must print PASS (skip with AMX_EMU_SKIP_SELFTEST=1).
#
# Why Bochs needs patches: upstream Bochs emulates AMX but not XFD (IA32_XFD /
# IA32_XFD_ERR MSRs, CPUID.(EAX=0xD,ECX=1):EAX[4]). Linux only enables AMX when XFD
# exists (X86_FEATURE_AMX_TILE depends on X86_FEATURE_XFD), so without it the guest gets
# no AMX state and arch_prctl(ARCH_REQ_XCOMP_PERM) fails. The patch adds XFD, fixes
# CPUID.(0xD,1).EBX (compacted XSAVE size without 64-byte alignment padding, which
# Linux cross-checks), and fixes AMX emulation bugs found while testing: signed bytes
# zero-extended in TDPBSSD/TDPBSUD/TDPBUSD, XSAVE of TILECFG swapping colsb/rows,
# XSAVE/XRSTOR of TILEDATA covering only rows 0..7, XINUSE[TILEDATA] inverted, and
# STTILECFG decoded as VEX.W1 instead of W0.
#
# Environment: AMX_EMU_HOME, AMX_EMU_BOCHS_GIT, AMX_EMU_BOCHS_COMMIT (default pinned below;
# falls back to the mirror's HEAD if absent), AMX_EMU_KERNEL_PKG, AMX_EMU_JOBS (default 2),
# AMX_EMU_SKIP_SELFTEST.
set -euo pipefail

HOME_DIR=${AMX_EMU_HOME:-/work/amx-emu}
BOCHS_GIT=${AMX_EMU_BOCHS_GIT:-/work/.mirror/bochs-emu+Bochs/repo}
BOCHS_COMMIT=${AMX_EMU_BOCHS_COMMIT:-783b58fd6d9bae598a07c59719122322fa0edce6}
KERNEL_PKG=${AMX_EMU_KERNEL_PKG:-linux-image-6.12.118+deb12-cloud-amd64}
JOBS=${AMX_EMU_JOBS:-2}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONFIGURE_FLAGS="--enable-x86-64 --enable-cpu-level=6 --enable-avx --enable-evex --enable-amx
  --with-nogui --enable-all-optimizations --enable-smp=no --disable-docbook --enable-pci
  --disable-debugger --enable-long-phy-address"

log() { echo "amx_emulate_setup: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
mkdir -p "$HOME_DIR"

# ------------------------------------------------------------------ 1. host packages
need=()
for p in xorriso isolinux syslinux-common busybox-static cpio binutils g++ make python3 git; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  [ "$(id -u)" = 0 ] || die "need root for apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# ------------------------------------------------------------------ 2. Bochs
write_patcher() {
cat > "$HOME_DIR/bochs_amx_patch.py" <<'PATCH_EOF'
#!/usr/bin/env python3
# Adds XFD (IA32_XFD / IA32_XFD_ERR, CPUID.(0xD,1).EAX[4]) to Bochs AMX emulation,
# which Linux requires before it enables AMX, and fixes the compacted XSAVE size in
# CPUID.(0xD,1).EBX to include 64-byte alignment padding (Linux cross-checks it).
# Also fixes sign extension in the AMX-INT8 dot products (TDPBSSD/TDPBSUD/TDPBUSD) and
# three bugs in XSAVE*/XRSTOR* of the AMX state (TILECFG field swap, TILEDATA rows 8..15,
# inverted XINUSE[18]) that corrupt tiles across Linux context switches, and the
# STTILECFG decoding (W0, not W1).
# Idempotent: run in the bochs/ source directory.
import sys
def sub(path, old, new):
    s = open(path, encoding='latin-1').read()
    if new in s:
        return
    assert s.count(old) == 1, (path, old[:80], s.count(old))
    open(path, 'w', encoding='latin-1').write(s.replace(old, new))

sub('cpu/cpu.h', """#if BX_CPU_LEVEL >= 6
  Bit64u ia32_xss;
#endif
""", """#if BX_CPU_LEVEL >= 6
  Bit64u ia32_xss;
#endif

#if BX_SUPPORT_AMX
  // XFD (extended feature disable), required by Linux to enable AMX
  Bit64u ia32_xfd;
  Bit64u ia32_xfd_err;
#endif
""")

sub('cpu/msr.cc', """#if BX_CPU_LEVEL >= 6
  msr_desc[BX_MSR_XSS] = new MSR_Descriptor("MSR_IA32_XSS", BX_ISA_XSAVES, ~Bit64u(get_ia32_xss_allow_mask()));
#endif
""", """#if BX_CPU_LEVEL >= 6
  msr_desc[BX_MSR_XSS] = new MSR_Descriptor("MSR_IA32_XSS", BX_ISA_XSAVES, ~Bit64u(get_ia32_xss_allow_mask()));
#endif

#if BX_SUPPORT_AMX
  // only XTILEDATA (bit 18) supports XFD
  msr_desc[BX_MSR_IA32_XFD] = new MSR_Descriptor("MSR_IA32_XFD", BX_ISA_AMX, ~Bit64u(BX_XCR0_XTILEDATA_MASK));
  msr_desc[BX_MSR_IA32_XFD_ERROR] = new MSR_Descriptor("MSR_IA32_XFD_ERR", BX_ISA_AMX, ~Bit64u(BX_XCR0_XTILEDATA_MASK));
#endif
""")
sub('cpu/msr.cc', """#if BX_CPU_LEVEL >= 6
    case BX_MSR_XSS:
      val64 = BX_CPU_THIS_PTR msr.ia32_xss;
      break;
#endif
""", """#if BX_CPU_LEVEL >= 6
    case BX_MSR_XSS:
      val64 = BX_CPU_THIS_PTR msr.ia32_xss;
      break;
#endif

#if BX_SUPPORT_AMX
    case BX_MSR_IA32_XFD:
      val64 = BX_CPU_THIS_PTR msr.ia32_xfd;
      break;
    case BX_MSR_IA32_XFD_ERROR:
      val64 = BX_CPU_THIS_PTR msr.ia32_xfd_err;
      break;
#endif
""")
sub('cpu/msr.cc', """#if BX_CPU_LEVEL >= 6
    case BX_MSR_XSS: // reserved bits already checked above
      BX_CPU_THIS_PTR msr.ia32_xss = val_64;
      break;
#endif
""", """#if BX_CPU_LEVEL >= 6
    case BX_MSR_XSS: // reserved bits already checked above
      BX_CPU_THIS_PTR msr.ia32_xss = val_64;
      break;
#endif

#if BX_SUPPORT_AMX
    case BX_MSR_IA32_XFD: // reserved bits already checked above
      BX_CPU_THIS_PTR msr.ia32_xfd = val_64;
      handleAvxModeChange(); // AMX_OK depends on XFD
      break;
    case BX_MSR_IA32_XFD_ERROR:
      BX_CPU_THIS_PTR msr.ia32_xfd_err = val_64;
      break;
#endif
""")

sub('cpu/init.cc', """  BX_CPU_THIS_PTR msr.ia32_xss = 0;
""", """  BX_CPU_THIS_PTR msr.ia32_xss = 0;
#if BX_SUPPORT_AMX
  BX_CPU_THIS_PTR msr.ia32_xfd = 0;
  BX_CPU_THIS_PTR msr.ia32_xfd_err = 0;
#endif
""")

sub('cpu/proc_ctrl.cc', """  if (! long64_mode() || ! BX_CPU_THIS_PTR cr4.get_OSXSAVE() ||
      (~BX_CPU_THIS_PTR xcr0.get32() & (BX_XCR0_XTILECFG_MASK | BX_XCR0_XTILEDATA_MASK)) != 0)
    clear_amx_ok();""", """  if (! long64_mode() || ! BX_CPU_THIS_PTR cr4.get_OSXSAVE() ||
      (~BX_CPU_THIS_PTR xcr0.get32() & (BX_XCR0_XTILECFG_MASK | BX_XCR0_XTILEDATA_MASK)) != 0 ||
      (BX_CPU_THIS_PTR msr.ia32_xfd & BX_XCR0_XTILEDATA_MASK) != 0)
    clear_amx_ok();""")
sub('cpu/proc_ctrl.cc', """  if (~BX_CPU_THIS_PTR xcr0.get32() & (BX_XCR0_XTILECFG_MASK | BX_XCR0_XTILEDATA_MASK))
    exception(BX_UD_EXCEPTION, 0);

  BX_ASSERT(0);""", """  if (~BX_CPU_THIS_PTR xcr0.get32() & (BX_XCR0_XTILECFG_MASK | BX_XCR0_XTILEDATA_MASK))
    exception(BX_UD_EXCEPTION, 0);

  // XFD armed for XTILEDATA: #NM and record the faulting component in IA32_XFD_ERR
  if (BX_CPU_THIS_PTR msr.ia32_xfd & BX_XCR0_XTILEDATA_MASK) {
    BX_CPU_THIS_PTR msr.ia32_xfd_err = BX_CPU_THIS_PTR msr.ia32_xfd & BX_XCR0_XTILEDATA_MASK;
    exception(BX_NM_EXCEPTION, 0);
  }

  BX_ASSERT(0);""")

sub('cpu/xsave.cc', """  /////////////////////////////////////////////////////////////////////////////
  if (requested_feature_bitmap & BX_XCR0_SSE_MASK) {
    if (BX_MXCSR_REGISTER != MXCSR_RESET)
      xinuse |= BX_XCR0_SSE_MASK;
  }

  return xinuse;""", """  /////////////////////////////////////////////////////////////////////////////
  if (requested_feature_bitmap & BX_XCR0_SSE_MASK) {
    if (BX_MXCSR_REGISTER != MXCSR_RESET)
      xinuse |= BX_XCR0_SSE_MASK;
  }

#if BX_SUPPORT_AMX
  // components disabled by IA32_XFD are treated as being in init state
  xinuse &= ~(Bit32u) BX_CPU_THIS_PTR msr.ia32_xfd;
#endif

  return xinuse;""")
sub('cpu/xsave.cc', """  Bit32u requested_feature_bitmap = xcr0 & EAX;
  Bit64u format = (compaction) ? (xcomp_bv & ~XSAVEC_COMPACTION_ENABLED) : (~XSAVEC_COMPACTION_ENABLED);
  Bit32u restore_mask = xstate_bv & format;
""", """  Bit32u requested_feature_bitmap = xcr0 & EAX;
  Bit64u format = (compaction) ? (xcomp_bv & ~XSAVEC_COMPACTION_ENABLED) : (~XSAVEC_COMPACTION_ENABLED);
  Bit32u restore_mask = xstate_bv & format;

#if BX_SUPPORT_AMX
  // XRSTOR(S) would load an XFD-disabled component from memory: #NM
  if (requested_feature_bitmap & restore_mask & (Bit32u) BX_CPU_THIS_PTR msr.ia32_xfd) {
    BX_CPU_THIS_PTR msr.ia32_xfd_err = requested_feature_bitmap & restore_mask & (Bit32u) BX_CPU_THIS_PTR msr.ia32_xfd;
    exception(BX_NM_EXCEPTION, 0);
  }
#endif
""")

sub('cpu/cpuid.cc', """    if (is_cpu_extension_supported(BX_ISA_XSAVES))
      leaf->eax |= (1<<3);
""", """    if (is_cpu_extension_supported(BX_ISA_XSAVES))
      leaf->eax |= (1<<3);
#if BX_SUPPORT_AMX
    if (is_cpu_extension_supported(BX_ISA_AMX))
      leaf->eax |= (1<<4); // XFD (IA32_XFD / IA32_XFD_ERR MSRs)
#endif
""")
sub('cpu/cpuid.cc', """  unsigned max_size = 512+64;

  for (unsigned n=xcr0_t::BX_XCR0_YMM_BIT; n < xcr0_t::BX_XCR0_LAST; n++) {
    if (features & (1 << n))
      max_size += xsave_restore[n].len;
  }
""", """  unsigned max_size = 512+64;

  for (unsigned n=xcr0_t::BX_XCR0_YMM_BIT; n < xcr0_t::BX_XCR0_LAST; n++) {
    if (features & (1 << n)) {
      // compacted format: components with CPUID.(0xD,n).ECX[1] set are 64-byte aligned
      if (xsave_restore[n].attr & BX_XSAVE_ALIGN64)
        max_size = (max_size + 63) & ~63;
      max_size += xsave_restore[n].len;
    }
  }
""")
sub('cpu/crregs.cc', """    xsave_restore[xcr0_t::BX_XCR0_XTILEDATA_BIT].attr   = BX_XSAVE_ALIGN64;""",
    """    xsave_restore[xcr0_t::BX_XCR0_XTILEDATA_BIT].attr   = BX_XSAVE_ALIGN64 | BX_XSAVE_XFD_SUPPORT;""")

# AMX-INT8: the signed byte operands of TDPBSSD/TDPBSUD/TDPBUSD were zero-extended
# (Bit32s(Bit8u) does not sign-extend) -> wrong results for negative bytes.
for n in range(4):
    sub('cpu/avx/amx.cc', "Bit32s(xbyte[%d]) * Bit32s(ybyte[%d]);" % (n, n),
        "Bit32s(Bit8s(xbyte[%d])) * Bit32s(Bit8s(ybyte[%d]));" % (n, n))
    sub('cpu/avx/amx.cc', "Bit32s(xbyte[%d]) * Bit32u(ybyte[%d]);" % (n, n),
        "Bit32s(Bit8s(xbyte[%d])) * Bit32s(ybyte[%d]);" % (n, n))
    sub('cpu/avx/amx.cc', "Bit32u(xbyte[%d]) * Bit32s(ybyte[%d]);" % (n, n),
        "Bit32s(xbyte[%d]) * Bit32s(Bit8s(ybyte[%d]));" % (n, n))

# XSAVE of TILECFG swapped the colsb (16-bit, bytes 16..47) and rows (bytes 48..63) fields,
# so every kernel XSAVES/XRSTORS (context switch) corrupted the tile configuration.
sub('cpu/xsave.cc', """      tilecfg.vmm16u(8+n)    = BX_CPU_THIS_PTR amx->tilecfg[n].rows;
      tilecfg.vmmubyte(48+n) = BX_CPU_THIS_PTR amx->tilecfg[n].bytes_per_row;""",
    """      tilecfg.vmm16u(8+n)    = BX_CPU_THIS_PTR amx->tilecfg[n].bytes_per_row;
      tilecfg.vmmubyte(48+n) = BX_CPU_THIS_PTR amx->tilecfg[n].rows;""")
# XSAVE/XRSTOR of TILEDATA only handled rows 0..7 of each tile (loop bound was the tile count)
s = open('cpu/xsave.cc', encoding='latin-1').read()
old = "    for (unsigned row=0; row < BX_TILE_REGISTERS; row++) {"
if old in s:
    assert s.count(old) == 2
    s = s.replace(old, "    for (unsigned row=0; row < BX_TILE_MAX_ROWS; row++) {")
    open('cpu/xsave.cc', 'w', encoding='latin-1').write(s)
# XINUSE[XTILEDATA] was inverted (reported 'in use' when no tile was used), so XSAVE*
# dropped live tile data on context switches
sub('cpu/xsave.cc', "  return (BX_CPU_THIS_PTR amx->tile_use_tracker == 0);  // all tiles are zero",
    "  return (BX_CPU_THIS_PTR amx->tile_use_tracker != 0);  // in use unless all tiles are zero")

# STTILECFG is VEX.128.66.0F38.W0 49 /0 (the decoder wanted W1 -> #UD for real STTILECFG)
sub('cpu/decoder/fetchdecode_opmap_avx.cc',
    "form_opcode(ATTR_SSE_PREFIX_66 | ATTR_VEX_W1 | ATTR_VL128 | ATTR_MOD_MEM | ATTR_IS64, BX_IA_STTILECFG),",
    "form_opcode(ATTR_SSE_PREFIX_66 | ATTR_VEX_W0 | ATTR_VL128 | ATTR_MOD_MEM | ATTR_IS64, BX_IA_STTILECFG),")
print("bochs AMX patches applied")
PATCH_EOF
}
write_patcher
PATCH_SUM=$(sha256sum "$HOME_DIR/bochs_amx_patch.py" | cut -c1-16)

SRC=$HOME_DIR/bochs
STAMP_WANT="commit=$BOCHS_COMMIT patch=$PATCH_SUM flags=$(echo $CONFIGURE_FLAGS)"
if [ -x "$SRC/bochs" ] && [ "$(cat "$SRC/.amx_emu_stamp" 2>/dev/null)" = "$STAMP_WANT" ]; then
  log "Bochs up to date ($SRC/bochs)"
else
  if [ ! -d "$BOCHS_GIT" ]; then
    die "Bochs git mirror not found at $BOCHS_GIT.
  Get the source of https://github.com/bochs-emu/Bochs, e.g. with the session's fetch tool
  (source github:bochs-emu/Bochs -> /work/.mirror/bochs-emu+Bochs/repo) or
  'git clone --bare https://github.com/bochs-emu/Bochs <dir>', and point AMX_EMU_BOCHS_GIT at it."
  fi
  G=(git --git-dir="$BOCHS_GIT")
  if ! "${G[@]}" cat-file -e "$BOCHS_COMMIT^{commit}" 2>/dev/null; then
    log "WARNING: pinned commit $BOCHS_COMMIT not in $BOCHS_GIT; using its HEAD (patch may not apply)"
    BOCHS_COMMIT=$("${G[@]}" rev-parse HEAD)
    STAMP_WANT="commit=$BOCHS_COMMIT patch=$PATCH_SUM flags=$(echo $CONFIGURE_FLAGS)"
  fi
  log "extracting Bochs $BOCHS_COMMIT"
  rm -rf "$SRC" "$HOME_DIR/bochs.tmp"
  mkdir -p "$HOME_DIR/bochs.tmp"
  # bios/OVMF holds large UEFI images (not needed; may be missing from partial mirrors)
  "${G[@]}" archive "$BOCHS_COMMIT" bochs ':(exclude)bochs/bios/OVMF' 2>"$HOME_DIR/bochs.tmp/archive.err" \
    | tar -x -C "$HOME_DIR/bochs.tmp"
  [ -f "$HOME_DIR/bochs.tmp/bochs/configure" ] || { cat "$HOME_DIR/bochs.tmp/archive.err" >&2; die "git archive failed"; }
  mv "$HOME_DIR/bochs.tmp/bochs" "$SRC"; rm -rf "$HOME_DIR/bochs.tmp"
  (cd "$SRC" && python3 "$HOME_DIR/bochs_amx_patch.py")
  log "configuring and building Bochs (make -j$JOBS; log: $HOME_DIR/bochs-build.log)"
  (cd "$SRC" && nice -n 10 ./configure $CONFIGURE_FLAGS && nice -n 10 make -j"$JOBS") \
    > "$HOME_DIR/bochs-build.log" 2>&1 || { tail -30 "$HOME_DIR/bochs-build.log" >&2; die "Bochs build failed"; }
  echo "$STAMP_WANT" > "$SRC/.amx_emu_stamp"
  log "built $SRC/bochs"
fi
models=$("$SRC/bochs" --help cpu 2>&1 || true)
grep -q '^sapphire_rapids' <<<"$models" || die "bochs lacks the sapphire_rapids cpu model"

# ------------------------------------------------------------------ 3. kernel
KDIR=$HOME_DIR/kernel
if [ -e "$KDIR/vmlinuz" ] && [ "$(cat "$KDIR/.pkg" 2>/dev/null)" = "$KERNEL_PKG" ]; then
  log "kernel up to date ($KERNEL_PKG)"
else
  mkdir -p "$KDIR/deb"
  (cd "$KDIR/deb" && rm -f ./*.deb && { apt-get download "$KERNEL_PKG" >/dev/null 2>&1 ||
     { apt-get update -qq && apt-get download "$KERNEL_PKG" >/dev/null 2>&1; }; }) \
    || die "apt-get download $KERNEL_PKG failed (see 'apt-cache search linux-image | grep cloud-amd64'
  for another Linux >= 5.16 x86-64 kernel with built-in 8250 serial console and initramfs support;
  note: Debian's 6.1 kernels hang early in boot under Bochs, use 6.12)"
  rm -rf "$KDIR/x"; dpkg-deb -x "$KDIR"/deb/*.deb "$KDIR/x"
  img=$(ls "$KDIR"/x/boot/vmlinuz-* | head -1)
  [ -n "$img" ] || die "no vmlinuz in $KERNEL_PKG"
  ln -sfn "${img#$KDIR/}" "$KDIR/vmlinuz"
  echo "$KERNEL_PKG" > "$KDIR/.pkg"
  rm -rf "$KDIR/deb"
  log "kernel: $img"
fi

# ------------------------------------------------------------------ 4. self-test
if [ "${AMX_EMU_SKIP_SELFTEST:-0}" != 1 ]; then
  mkdir -p "$HOME_DIR/tests"
  cat > "$HOME_DIR/tests/amx_test.c" <<'CTEST_EOF'
// AMX smoke test: TDPBUSD of a 16x64 u8 tile A with a 16x64 s8 tile B (VNNI layout),
// compared against a scalar reference. Prints PASS / FAIL.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#define ARCH_GET_XCOMP_PERM 0x1022
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

struct tilecfg {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} __attribute__((packed, aligned(64)));

int main(int argc, char **argv) {
  int force = argc > 1 && strcmp(argv[1], "--force") == 0;  // run tile code even without permission
  long r = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA);
  if (r != 0) { perror("arch_prctl(ARCH_REQ_XCOMP_PERM)"); if (!force) { printf("FAIL (no AMX permission)\n"); return 2; } }
  unsigned long perm = 0;
  syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &perm);
  printf("xcomp perm = 0x%lx\n", perm);
  fflush(stdout);

  static uint8_t A[16][64];          // M=16 rows, K=64 u8
  static int8_t  B[16][64];          // VNNI: K/4=16 rows, N=16 cols * 4 bytes
  static int32_t C[16][16], ref[16][16];
  for (int m = 0; m < 16; m++) for (int k = 0; k < 64; k++) A[m][k] = (uint8_t)(m * 7 + k * 13 + 3);
  for (int kk = 0; kk < 16; kk++) for (int j = 0; j < 64; j++) B[kk][j] = (int8_t)(kk * 11 - j * 5 + 1);
  for (int m = 0; m < 16; m++) for (int n = 0; n < 16; n++) C[m][n] = m - n;  // nonzero accumulator

  for (int m = 0; m < 16; m++)
    for (int n = 0; n < 16; n++) {
      int32_t acc = m - n;
      for (int k = 0; k < 64; k++)
        acc += (int32_t)A[m][k] * (int32_t)B[k / 4][n * 4 + (k % 4)];
      ref[m][n] = acc;
    }

  struct tilecfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette_id = 1;
  for (int t = 0; t < 3; t++) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }

  __asm__ volatile("ldtilecfg %0" :: "m"(cfg));
  struct tilecfg cfg2;
  memset(&cfg2, 0xff, sizeof cfg2);
  __asm__ volatile("sttilecfg %0" : "=m"(cfg2));
  int cfg_ok = memcmp(&cfg, &cfg2, sizeof cfg) == 0;
  if (!cfg_ok) printf("sttilecfg mismatch\n");
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm0" :: "r"(&C[0][0]), "r"((long)64) : "memory");
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm1" :: "r"(&A[0][0]), "r"((long)64) : "memory");
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm2" :: "r"(&B[0][0]), "r"((long)64) : "memory");
  __asm__ volatile("tdpbusd %%tmm2, %%tmm1, %%tmm0" ::: "memory");
  __asm__ volatile("tilestored %%tmm0, (%0,%1,1)" :: "r"(&C[0][0]), "r"((long)64) : "memory");
  __asm__ volatile("tilerelease" ::: "memory");

  int bad = 0;
  for (int m = 0; m < 16; m++) for (int n = 0; n < 16; n++)
    if (C[m][n] != ref[m][n]) { if (bad < 5) printf("mismatch C[%d][%d]=%d ref=%d\n", m, n, C[m][n], ref[m][n]); bad++; }
  printf("C[0][0]=%d C[15][15]=%d\n", C[0][0], C[15][15]);
  if (!cfg_ok) bad++;
  printf(bad ? "FAIL (%d mismatches)\n" : "PASS\n", bad);
  return bad ? 1 : 0;
}
CTEST_EOF
  gcc -O2 -o "$HOME_DIR/tests/amx_test" "$HOME_DIR/tests/amx_test.c"
  log "self-test: running tests/amx_test in the emulator"
  out=$(AMX_EMU_HOME=$HOME_DIR AMX_EMU_TIMEOUT=600 "$SCRIPT_DIR/amx_emulate.sh" "$HOME_DIR/tests/amx_test") \
    || die "self-test failed (exit $?): $out"
  echo "$out" | grep -q '^PASS$' || die "self-test did not print PASS: $out"
  log "self-test PASS"
fi
log "ready: $SCRIPT_DIR/amx_emulate.sh BINARY [ARGS...]"
