#!/usr/bin/env bash
# Runs a firmware ELF on QEMU's mps2-an386 (Cortex-M4F) and decodes its defmt log.
# Keeps the exit code: 0 ok, 1 panic or fault, 124 hung (QEMU_TIMEOUT seconds, default 120).
# `-icount shift=7` makes SysTick count instructions (3.2 ticks each) deterministically.
set -uo pipefail
ELF="$1"; shift
timeout --foreground "${QEMU_TIMEOUT:-120}" \
  qemu-system-arm -cpu cortex-m4 -machine mps2-an386 \
    -nographic -monitor none -serial null \
    -icount shift=7 \
    -semihosting-config enable=on,target=native \
    -kernel "$ELF" "$@" \
  | defmt-print -e "$ELF"
st=("${PIPESTATUS[@]}")
[ "${st[0]}" -ne 0 ] && exit "${st[0]}"
exit "${st[1]}"
