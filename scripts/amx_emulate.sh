#!/usr/bin/env bash
# Run a Linux x86-64 binary on an emulated Intel Sapphire Rapids CPU (with AMX)
# inside the Bochs emulator, for hosts that cannot execute AMX instructions.
#
#   scripts/amx_emulate.sh BINARY [ARGS...]
#
# Boots a minimal Linux (Debian 6.12 cloud kernel + busybox initramfs) from an ISO
# in Bochs (cpu model sapphire_rapids, patched: XFD support so that Linux enables
# AMX, plus AMX emulation fixes), runs BINARY with ARGS, prints its stdout on
# stdout and its stderr on stderr, and exits with BINARY's exit status.
# A boot + trivial run takes about 6-9 s of wall time.
#
# One-time setup (Bochs build, kernel download): scripts/amx_emulate_setup.sh
# Also usable as a cargo runner:
#   CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=scripts/amx_emulate.sh cargo test ...
#
# Exit status: BINARY's status (128+N if killed by signal N); 124 on timeout;
# 125 if the emulator/guest failed before BINARY finished (panic, missing setup).
#
# Environment:
#   AMX_EMU_HOME     where setup put bochs/ and kernel/   (default /work/amx-emu)
#   AMX_EMU_TIMEOUT  wall-clock limit in seconds           (default 1800)
#   AMX_EMU_MEGS     guest RAM in MiB                      (default 2048)
#   AMX_EMU_IPS      Bochs emulated instructions/second    (default 100000000;
#                    guest clocks advance by IPS instructions per emulated second)
#   AMX_EMU_CWD      working directory in the guest        (default: current dir)
#   AMX_EMU_COPY     extra host paths (space separated files/dirs) copied into
#                    the guest at the same absolute paths (e.g. test data)
#   AMX_EMU_ENV      extra "NAME=value" words exported in the guest (space sep.)
#                    RUST_BACKTRACE, RUST_TEST_THREADS, RUST_LOG, RUST_MIN_STACK,
#                    RUST_TEST_NOCAPTURE and all OWL_* variables pass through.
#   AMX_EMU_STRIP    1 (default): strip debug info from the guest copy of BINARY
#                    (symbols stay; makes the initramfs smaller); 0: copy as is
#   AMX_EMU_VERBOSE  1: stream the guest console to stderr while it runs, keep
#                    the work directory
#   AMX_EMU_KEEP     1: keep the work directory (bochsrc, serial logs, iso)
#   AMX_EMU_KERNEL   kernel image to boot (default $AMX_EMU_HOME/kernel/vmlinuz)
#   AMX_EMU_KCMD     kernel command line after console=ttyS0 (replaces defaults)
#   AMX_EMU_BOCHSLOG 1: Bochs error/info messages into <workdir>/bochs.log
#   AMX_EMU_QUIET    1: do not print the flags/timing summary lines on stderr
set -euo pipefail

HOME_DIR=${AMX_EMU_HOME:-/work/amx-emu}
TIMEOUT=${AMX_EMU_TIMEOUT:-1800}
MEGS=${AMX_EMU_MEGS:-2048}
IPS=${AMX_EMU_IPS:-100000000}
VERBOSE=${AMX_EMU_VERBOSE:-0}
KEEP=${AMX_EMU_KEEP:-$VERBOSE}
STRIP=${AMX_EMU_STRIP:-1}
GUEST_CWD=${AMX_EMU_CWD:-$PWD}

die() { echo "amx_emulate: $*" >&2; exit 125; }

if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,42p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 125
fi
BIN=$1; shift
[ -f "$BIN" ] || die "no such file: $BIN"
BIN=$(readlink -f "$BIN")

BOCHS=$HOME_DIR/bochs/bochs
BIOS=$HOME_DIR/bochs/bios/BIOS-bochs-latest
VGABIOS=$HOME_DIR/bochs/bios/VGABIOS-lgpl/VGABIOS-lgpl-latest.bin
KERNEL=${AMX_EMU_KERNEL:-$HOME_DIR/kernel/vmlinuz}
ISOLINUX_BIN=/usr/lib/ISOLINUX/isolinux.bin
LDLINUX_C32=/usr/lib/syslinux/modules/bios/ldlinux.c32
BUSYBOX=/bin/busybox
for f in "$BOCHS" "$BIOS" "$VGABIOS" "$KERNEL" "$ISOLINUX_BIN" "$LDLINUX_C32" "$BUSYBOX"; do
  [ -e "$f" ] || die "missing $f -- run scripts/amx_emulate_setup.sh first"
done
for t in xorriso cpio readelf objcopy ldd; do
  command -v $t >/dev/null || die "$t missing -- run scripts/amx_emulate_setup.sh first"
done
has_interp() { readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'; }
has_interp "$BUSYBOX" && die "$BUSYBOX is not static (install busybox-static)"

mkdir -p "$HOME_DIR/runs"
WORK=$(mktemp -d "$HOME_DIR/runs/run.XXXXXX")
BOCHS_PID=
TAIL_PID=
cleanup() {
  [ -n "$TAIL_PID" ] && kill "$TAIL_PID" 2>/dev/null || true
  [ -n "$BOCHS_PID" ] && kill -9 "$BOCHS_PID" 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then echo "amx_emulate: work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE   # e.g. piped into head: still stop the emulator

T0=$(date +%s.%N)

# ---------------------------------------------------------------- initramfs
ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,sbin,dev,proc,sys,tmp,etc,root}
cp "$BUSYBOX" "$ROOT/bin/busybox"
for a in sh mount mkdir mkfifo cat echo stty sync poweroff ln env sleep ls grep tr; do
  ln -sf busybox "$ROOT/bin/$a"
done

copy_path() {  # copy a host file (dereferenced) to the same absolute path in the guest
  local dst=$ROOT$1
  mkdir -p "$(dirname "$dst")"
  cp -L --preserve=mode "$1" "$dst"
}
copy_path "$BIN"
if [ "$STRIP" = 1 ]; then objcopy --strip-debug "$ROOT$BIN" 2>/dev/null || copy_path "$BIN"; fi
if has_interp "$BIN"; then
  # shared libraries (ldd) and the program interpreter, at their host paths
  while read -r lib; do
    [ -n "$lib" ] && [ -e "$lib" ] && copy_path "$lib"
  done < <(ldd "$BIN" | awk '/=>/ { if ($3 ~ /^\//) print $3; next } $1 ~ /^\// { print $1 }')
  interp=$(readelf -l "$BIN" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
  [ -n "$interp" ] && [ -e "$interp" ] && copy_path "$interp"
  # Rust unwinding/backtraces may dlopen libgcc_s
  for l in /lib/x86_64-linux-gnu/libgcc_s.so.1; do [ -e "$l" ] && copy_path "$l"; done
fi
for p in ${AMX_EMU_COPY:-}; do
  p=$(readlink -f "$p")
  if [ -d "$p" ]; then mkdir -p "$ROOT$p"; cp -a "$p/." "$ROOT$p/"; else copy_path "$p"; fi
done

sq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }  # shell single-quote
ARGS_Q=
for a in "$@"; do ARGS_Q+=" $(sq "$a")"; done
ENV_Q=
for v in RUST_BACKTRACE RUST_TEST_THREADS RUST_LOG RUST_MIN_STACK RUST_TEST_NOCAPTURE \
         $(compgen -e | grep '^OWL_' || true); do
  [ -n "${!v:-}" ] && ENV_Q+="export $v=$(sq "${!v}")"$'\n'
done
for kv in ${AMX_EMU_ENV:-}; do ENV_Q+="export $(sq "$kv")"$'\n'; done

NONCE=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
cat > "$ROOT/init" <<EOF
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TMPDIR=/tmp
unset TERM   # the kernel passes TERM=linux
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
chmod 1777 /tmp   # the initramfs root is a writable tmpfs already (keeps files copied under /tmp)
mkdir -p /dev/shm && mount -t tmpfs tmpfs /dev/shm
stty -F /dev/ttyS0 raw -echo -onlcr 2>/dev/null
stty -F /dev/ttyS1 raw -echo -onlcr 2>/dev/null
$ENV_Q
mkdir -p $(sq "$GUEST_CWD") && cd $(sq "$GUEST_CWD")
echo "OWL_AMX_FLAGS=\$(grep -m1 '^flags' /proc/cpuinfo | grep -o 'amx[a-z0-9_]*' | tr '\n' ' ')" > /dev/ttyS0
echo "OWL_AMX_BEGIN_$NONCE" > /dev/ttyS0
echo "OWL_AMX_BEGIN_$NONCE" > /dev/ttyS1
exec 2>/dev/ttyS1   # shell messages such as "Illegal instruction" belong to stderr
# stdout/stderr are pipes (as under cargo or CI), forwarded to the two serial ports
mkfifo /.out /.err
cat /.out > /dev/ttyS0 & o=\$!
cat /.err > /dev/ttyS1 & e=\$!
$(sq "$BIN")$ARGS_Q </dev/null >/.out 2>/.err
rc=\$?
wait \$o \$e
# stty sets the line with TCSADRAIN: it returns once everything queued was transmitted
echo > /dev/ttyS1
echo "OWL_AMX_END_$NONCE" > /dev/ttyS1
stty -F /dev/ttyS1 raw -echo -onlcr
echo > /dev/ttyS0
echo "OWL_AMX_EXIT=\$rc:$NONCE" > /dev/ttyS0
stty -F /dev/ttyS0 raw -echo -onlcr
poweroff -f
EOF
chmod +x "$ROOT/init"
# uncompressed cpio: unpacking is a memcpy for the (slow) emulated kernel
(cd "$ROOT" && find . | cpio -o -H newc --quiet > "$WORK/initrd.cpio")

# ---------------------------------------------------------------- ISO
ISO=$WORK/iso
mkdir -p "$ISO/isolinux"
cp "$ISOLINUX_BIN" "$LDLINUX_C32" "$ISO/isolinux/"
ln "$(readlink -f "$KERNEL")" "$ISO/vmlinuz" 2>/dev/null || cp -L "$KERNEL" "$ISO/vmlinuz"
mv "$WORK/initrd.cpio" "$ISO/initrd"
KCMD_DEFAULT="quiet loglevel=3 panic=-1 mitigations=off nokaslr cryptomgr.notests i8042.noaux"
KCMD_DEFAULT+=" i8042.nokbd i8042.nopnp random.trust_cpu=on audit=0 apparmor=0 nowatchdog"
CMDLINE="console=ttyS0,115200 ${AMX_EMU_KCMD:-$KCMD_DEFAULT}"
cat > "$ISO/isolinux/isolinux.cfg" <<EOF
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  APPEND initrd=/initrd $CMDLINE
EOF
xorriso -as mkisofs -quiet -o "$WORK/boot.iso" -b isolinux/isolinux.bin -c isolinux/boot.cat \
  -no-emul-boot -boot-load-size 4 -boot-info-table -R "$ISO" 2>"$WORK/xorriso.log" \
  || { cat "$WORK/xorriso.log" >&2; die "xorriso failed"; }
rm -rf "$ISO" "$ROOT"

# ---------------------------------------------------------------- Bochs
LOGACT=ignore; [ "${AMX_EMU_BOCHSLOG:-0}" = 1 ] && LOGACT=report
cat > "$WORK/bochsrc" <<EOF
cpu: model=sapphire_rapids, count=1, ips=$IPS, reset_on_triple_fault=0, ignore_bad_msrs=1, cpuid_freq=ips
memory: guest=$MEGS, host=$MEGS
romimage: file="$BIOS"
vgaromimage: file="$VGABIOS"
pci: enabled=1, chipset=i440fx
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=cdrom, path="$WORK/boot.iso", status=inserted
boot: cdrom
floppy_bootsig_check: disabled=1
com1: enabled=1, mode=file, dev="$WORK/ttyS0.log"
com2: enabled=1, mode=file, dev="$WORK/ttyS1.log"
display_library: nogui
clock: sync=none, time0=local
log: "$WORK/bochs.log"
panic: action=fatal
error: action=$LOGACT
info: action=$LOGACT
debug: action=ignore
EOF
: > "$WORK/ttyS0.log"; : > "$WORK/ttyS1.log"
T1=$(date +%s.%N)
"$BOCHS" -q -f "$WORK/bochsrc" >"$WORK/bochs.out" 2>&1 </dev/null &
BOCHS_PID=$!
if [ "$VERBOSE" = 1 ]; then
  tail -n +1 -f "$WORK/ttyS0.log" >&2 & TAIL_PID=$!
fi

EXIT_RE="^OWL_AMX_EXIT=[0-9]*:$NONCE"
status=
deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
  if grep -qa "$EXIT_RE" "$WORK/ttyS0.log"; then status=done; break; fi
  if ! kill -0 "$BOCHS_PID" 2>/dev/null; then
    sleep 0.2; if grep -qa "$EXIT_RE" "$WORK/ttyS0.log"; then status=done; else status=bochs_exit; fi; break
  fi
  if grep -qa 'Kernel panic - not syncing' "$WORK/ttyS0.log"; then sleep 1; status=panic; break; fi
  if [ "$(date +%s)" -ge "$deadline" ]; then status=timeout; break; fi
  sleep 0.3
done
# give poweroff a moment, then stop the emulator
for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$BOCHS_PID" 2>/dev/null || break; sleep 0.2; done
kill -9 "$BOCHS_PID" 2>/dev/null || true
wait "$BOCHS_PID" 2>/dev/null || true
BOCHS_PID=
[ -n "$TAIL_PID" ] && { kill "$TAIL_PID" 2>/dev/null || true; TAIL_PID=; }
T2=$(date +%s.%N)

# program output: between the BEGIN and EXIT/END markers (drop the separator newline)
awk -v b="OWL_AMX_BEGIN_$NONCE" -v e="$EXIT_RE" 'f && $0 ~ e {exit} f {print} $0 == b {f=1}' \
  "$WORK/ttyS0.log" | sed '${/^$/d}'
awk -v b="OWL_AMX_BEGIN_$NONCE" -v e="OWL_AMX_END_$NONCE" 'f && $0 == e {exit} f {print} $0 == b {f=1}' \
  "$WORK/ttyS1.log" | sed '${/^$/d}' >&2

timing() {
  awk -v a="$T0" -v b="$T1" -v c="$T2" -v ips="$IPS" -v m="$MEGS" 'BEGIN {
    printf "amx_emulate: prepare %.1fs, boot+run %.1fs (bochs ips=%s, %s MiB)\n", b - a, c - b, ips, m }' >&2
}
case $status in
  done)
    rc=$(grep -a -m1 "$EXIT_RE" "$WORK/ttyS0.log" | sed 's/^OWL_AMX_EXIT=\([0-9]*\):.*/\1/')
    flags=$(grep -a -m1 '^OWL_AMX_FLAGS=' "$WORK/ttyS0.log" | tr -d '\r' | cut -d= -f2-)
    [ "${AMX_EMU_QUIET:-0}" = 1 ] || { echo "amx_emulate: guest cpu flags: $flags" >&2; timing; }
    exit "${rc:-125}" ;;
  timeout)
    echo "amx_emulate: TIMEOUT after ${TIMEOUT}s: guest never printed OWL_AMX_EXIT (raise AMX_EMU_TIMEOUT)" >&2
    echo "amx_emulate: last console lines:" >&2; tail -n 20 "$WORK/ttyS0.log" | tr -d '\r' >&2
    KEEP=1; exit 124 ;;
  panic)
    echo "amx_emulate: guest KERNEL PANIC:" >&2; tail -n 40 "$WORK/ttyS0.log" | tr -d '\r' >&2
    KEEP=1; exit 125 ;;
  *)
    echo "amx_emulate: emulator exited before the guest printed OWL_AMX_EXIT" >&2
    echo "--- console tail:" >&2; tail -n 20 "$WORK/ttyS0.log" | tr -d '\r' >&2
    echo "--- bochs output tail:" >&2; tail -n 20 "$WORK/bochs.out" >&2
    KEEP=1; exit 125 ;;
esac
