#!/usr/bin/env bash
# Firmware CI: installs what is missing, builds the QEMU and STM32F411 binaries, lints them for
# thumbv7em-none-eabihf, runs the on-target tests, the training firmware and the int8 inference
# firmware in QEMU, checks the flash and RAM budgets, and checks that the firmware and the host
# simulator agree bit for bit.
# Ends with one line `firmware: N passed, M failed`; exits non-zero when a check failed.
set -uo pipefail
cd "$(dirname "$0")"
FIRMWARE="$PWD"
ROOT="$(cd .. && pwd)"
ELF="$FIRMWARE/target/thumbv7em-none-eabihf/release/qemu"
ELF_BOARD="$FIRMWARE/target/thumbv7em-none-eabihf/release/stm32f411"
ELF_CNN="$FIRMWARE/target/thumbv7em-none-eabihf/release/qemu_cnn"
ELF_WAVES="$FIRMWARE/target/thumbv7em-none-eabihf/release/qemu_waves"
ELF_RESUME="$FIRMWARE/target/thumbv7em-none-eabihf/release/qemu_resume"
ELF_FT="$FIRMWARE/target/thumbv7em-none-eabihf/release/qemu_finetune"
ELF_FT_SHIFT="$FIRMWARE/target/thumbv7em-none-eabihf/release/qemu_finetune_shift"
LOG="$(mktemp -d)"
trap 'rm -rf "$LOG"' EXIT
export PATH="$HOME/.cargo/bin:$PATH"

passed=0
failed=0
failures=()
step() { printf '\n--- %s\n' "$*"; }
check() { # check NAME COMMAND...: runs the command, counts the result
  local name="$1"; shift
  step "$name"
  if "$@"; then
    passed=$((passed + 1)); echo "ok: $name"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "FAILED: $name"
  fi
}

# ---- set-up: only what is missing
step "set-up"
rustup target add thumbv7em-none-eabihf >/dev/null 2>&1 || echo "warning: rustup target add failed"
if ! command -v qemu-system-arm >/dev/null; then
  echo "installing qemu-system-arm"
  (apt-get update -qq && apt-get install -y -qq qemu-system-arm) >"$LOG/apt.txt" 2>&1 || tail -20 "$LOG/apt.txt"
fi
if ! command -v defmt-print >/dev/null; then
  echo "installing defmt-print"
  cargo install defmt-print --version 1.2.0 --locked --quiet || echo "warning: cargo install defmt-print failed"
fi
SIZE=""
for tool in llvm-size arm-none-eabi-size rust-size; do
  if command -v "$tool" >/dev/null; then SIZE="$tool"; break; fi
done
if [ -z "$SIZE" ]; then
  rustup component add llvm-tools >/dev/null 2>&1 || true
  sysroot_size="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-size"
  if [ -x "$sysroot_size" ]; then
    SIZE="$sysroot_size"
  else
    (apt-get update -qq && apt-get install -y -qq binutils-arm-none-eabi) >"$LOG/apt2.txt" 2>&1 || true
    command -v arm-none-eabi-size >/dev/null && SIZE=arm-none-eabi-size
  fi
fi
echo "qemu: $(command -v qemu-system-arm || echo missing); defmt-print: $(command -v defmt-print || echo missing); size: ${SIZE:-missing}"

# ---- checks
check "format (firmware crate)" cargo fmt --check
check "build: QEMU firmware" cargo build --release --bin qemu
check "build: QEMU CNN firmware (mnist-cnn-tiny)" cargo build --release --bin qemu_cnn
check "build: QEMU 1-D firmware (waves-cnn1d)" cargo build --release --bin qemu_waves
check "build: QEMU power-cut firmware (resumable digits MLP)" cargo build --release --bin qemu_resume
check "build: QEMU fine-tuning firmware (int8 backbone, f32 head; both scenarios)" cargo build --release --bin qemu_finetune --bin qemu_finetune_shift
check "build: STM32F411 firmware" cargo build --release --no-default-features --features stm32f411 --bin stm32f411
check "clippy thumbv7em (QEMU binary, library, on-target tests)" \
  cargo clippy --release --all-targets -- -D warnings
check "clippy thumbv7em (STM32F411 binary)" \
  cargo clippy --release --no-default-features --features stm32f411 --bin stm32f411 -- -D warnings

on_target() {
  cargo test --release 2>&1 | tee "$LOG/on_target.txt"
  local st=${PIPESTATUS[0]}
  [ "$st" -eq 0 ] && grep -q "all tests passed!" "$LOG/on_target.txt"
}
check "on-target tests in QEMU (defmt-test)" on_target

run_firmware() {
  local start end
  start=$(date +%s%N)
  ./qemu-run.sh "$ELF" 2>&1 | tee "$LOG/run.txt"
  local st=${PIPESTATUS[0]}
  end=$(date +%s%N)
  local ms=$(((end - start) / 1000000))
  WALL="$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
  [ "$st" -eq 0 ] && grep -q "^TT-DONE" "$LOG/run.txt"
}
WALL="?"
check "training firmware in QEMU" run_firmware

field() { # field TAG KEY: a value from the firmware log
  grep "^$1 " "$LOG/run.txt" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}

budgets() {
  [ -n "$SIZE" ] || { echo "no size tool"; return 1; }
  "$SIZE" "$ELF" "$ELF_BOARD" || return 1
  read -r text data bss _ < <("$SIZE" "$ELF" | awk 'NR==2 {print $1, $2, $3}')
  FLASH=$((text + data))
  RAM=$(field TT-MEMORY ram_total)
  STACK=$(field TT-MEMORY stack_used)
  echo "flash (text + data, dataset included): $FLASH bytes (budget 131072)"
  echo "RAM (data + bss + measured stack $STACK): $RAM bytes (budget 65536)"
  [ "$FLASH" -lt 131072 ] && [ -n "$RAM" ] && [ "$RAM" -lt 65536 ]
}
FLASH="?"; RAM="?"
check "budgets: flash < 128 KiB with the dataset, RAM < 64 KiB with the stack" budgets

cnn_firmware() {
  local start end
  start=$(date +%s%N)
  ./qemu-run.sh "$ELF_CNN" 2>&1 | tee "$LOG/cnn.txt"
  local st=${PIPESTATUS[0]}
  end=$(date +%s%N)
  local ms=$(((end - start) / 1000000))
  CNN_WALL="$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
  [ "$st" -eq 0 ] && grep -q "^TT-DONE" "$LOG/cnn.txt" || return 1
  [ -n "$SIZE" ] || { echo "no size tool"; return 1; }
  "$SIZE" "$ELF_CNN" || return 1
  read -r text data _ < <("$SIZE" "$ELF_CNN" | awk 'NR==2 {print $1, $2, $3}')
  CNN_FLASH=$((text + data))
  CNN_RAM=$(grep "^TT-MEMORY " "$LOG/cnn.txt" | tr ' ' '\n' | sed -n 's/^ram_total=//p')
  echo "CNN firmware: flash (text + data, MNIST slice included) $CNN_FLASH bytes (budget 524288), RAM (statics + stack) $CNN_RAM bytes (budget 131072)"
  [ "$CNN_FLASH" -lt 524288 ] && [ -n "$CNN_RAM" ] && [ "$CNN_RAM" -lt 131072 ]
}
CNN_WALL="?"; CNN_FLASH="?"; CNN_RAM="?"
check "mnist-cnn-tiny training firmware in QEMU: runs, flash < 512 KiB with the MNIST slice, RAM < 128 KiB with the stack" cnn_firmware

waves_firmware() {
  ./qemu-run.sh "$ELF_WAVES" 2>&1 | tee "$LOG/waves.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] && grep -q "^TT-DONE" "$LOG/waves.txt" || return 1
  [ -n "$SIZE" ] || { echo "no size tool"; return 1; }
  read -r text data _ < <("$SIZE" "$ELF_WAVES" | awk 'NR==2 {print $1, $2, $3}')
  WAVES_FLASH=$((text + data))
  WAVES_RAM=$(grep "^TT-MEMORY " "$LOG/waves.txt" | tr ' ' '\n' | sed -n 's/^ram_total=//p')
  echo "waves firmware: flash $WAVES_FLASH bytes (budget 524288), RAM $WAVES_RAM bytes (budget 131072)"
  [ "$WAVES_FLASH" -lt 524288 ] && [ -n "$WAVES_RAM" ] && [ "$WAVES_RAM" -lt 131072 ]
}
WAVES_FLASH="?"; WAVES_RAM="?"
check "waves-cnn1d (Conv1d) training firmware in QEMU: runs, flash < 512 KiB with the signals, RAM < 128 KiB" waves_firmware

power_cut() {
  ./qemu-run.sh "$ELF_RESUME" 2>&1 | tee "$LOG/resume.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] && grep -q "^TT-CUT " "$LOG/resume.txt" && grep -q "^TT-DONE" "$LOG/resume.txt" || return 1
  rfield() { grep "^$1 " "$LOG/resume.txt" | tail -1 | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
  local cut_crc plain_crc cut_loss plain_loss
  cut_crc=$(rfield TT-DONE params_crc); plain_crc=$(field TT-DONE params_crc)
  cut_loss=$(grep "^TT-EPOCH epoch=3 " "$LOG/resume.txt" | tr ' ' '\n' | sed -n 's/^loss_bits=//p')
  plain_loss=$(grep "^TT-EPOCH epoch=3 " "$LOG/run.txt" | tr ' ' '\n' | sed -n 's/^loss_bits=//p')
  echo "power cut after step $(rfield TT-CUT steps), resumed from step $(rfield TT-RESUMED steps_before): params CRC $cut_crc (uncut run $plain_crc), epoch 3 loss $cut_loss (uncut $plain_loss)"
  [ -n "$cut_crc" ] && [ "$cut_crc" = "$plain_crc" ] && [ -n "$cut_loss" ] && [ "$cut_loss" = "$plain_loss" ]
}
check "power cut in QEMU: a core reset mid-training, resumed from the flash checkpoint, ends with the uncut run's weights" power_cut

finetune_firmware() { # finetune_firmware ELF LOG: runs it, checks the issue's budgets
  ./qemu-run.sh "$1" 2>&1 | tee "$LOG/$2.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] && grep -q "^TT-DONE" "$LOG/$2.txt" || return 1
  ffield() { grep "^$1 " "$LOG/$2.txt" | tr ' ' '\n' | sed -n "s/^$3=//p" | head -1; }
  local ram per dropped text data
  ram=$(ffield TT-MEMORY "$2" ram_total); per=$(ffield TT-FT-INSTRUCTIONS "$2" per_sample)
  dropped=$(ffield TT-FINETUNE "$2" dropped)
  [ -n "$SIZE" ] || { echo "no size tool"; return 1; }
  read -r text data _ < <("$SIZE" "$1" | awk 'NR==2 {print $1, $2, $3}')
  echo "$2: RAM (statics + stack) $ram B (budget 40000), $per instructions per fine-tuning sample (budget 248600), $dropped dropped, flash $((text + data)) B (budget 524288)"
  [ -n "$ram" ] && [ "$ram" -le 40000 ] && [ -n "$per" ] && [ "$per" -le 248600 ] && [ "$dropped" = 0 ] && [ $((text + data)) -lt 524288 ]
}
check "fine-tuning firmware in QEMU (classes 0-4 -> 0-9): RAM <= 40000 B all in, <= 248600 instructions per sample, no drops" finetune_firmware "$ELF_FT" finetune
check "fine-tuning firmware in QEMU (rotated images): the same budgets" finetune_firmware "$ELF_FT_SHIFT" finetune_shift

SINE="$FIRMWARE/target/thumbv7em-none-eabihf/release/sine"
SINE_BARE="$FIRMWARE/target/thumbv7em-none-eabihf/release/sine_bare"
sine_footprint() {
  cargo build --release --bin sine --bin sine_bare || return 1
  ./qemu-run.sh "$SINE" 2>&1 | tee "$LOG/sine.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || return 1
  [ -n "$SIZE" ] || { echo "no size tool"; return 1; }
  "$SIZE" "$SINE" "$SINE_BARE"
  read -r st sd sb _ < <("$SIZE" "$SINE" | awk 'NR==2 {print $1, $2, $3}')
  read -r bt bd _ < <("$SIZE" "$SINE_BARE" | awk 'NR==2 {print $1, $2}')
  SINE_FLASH=$((st + sd)); SINE_SHARE=$((st + sd - bt - bd))
  SINE_RAM=$(( $(sed -n 's/.*static_ram=\([0-9]*\).*/\1/p' "$LOG/sine.txt") + $(sed -n 's/.*stack_used=\([0-9]*\).*/\1/p' "$LOG/sine.txt") ))
  SINE_INSTR=$(sed -n 's/.*instructions_per_inference=\([0-9]*\).*/\1/p' "$LOG/sine.txt")
  echo "sine firmware: flash $SINE_FLASH bytes (budget 12288), RAM $SINE_RAM bytes (budget 2048)"
  [ "$SINE_FLASH" -lt 12288 ] && [ "$SINE_RAM" -lt 2048 ]
}
SINE_FLASH="?"; SINE_SHARE="?"; SINE_RAM="?"; SINE_INSTR="?"
check "sine model, inference only: runs, outputs within 0.25 of sin(x), flash < 12 KiB, RAM < 2 KiB" sine_footprint

KERNELS="$FIRMWARE/target/thumbv7em-none-eabihf/release/qemu_kernels"
kernels() {
  cargo build --release --bin qemu_kernels || return 1
  ./qemu-run.sh "$KERNELS" 2>&1 | tee "$LOG/kernels.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] && grep -q "^TT-KERNEL " "$LOG/kernels.txt"
}
check "Cortex-M4F kernels: instructions per call against the portable code (qemu_kernels)" kernels

SINE_INT8="$FIRMWARE/target/thumbv7em-none-eabihf/release/sine_int8"
int8_sine() {
  cargo build --release --bin sine_int8 --bin sine_bare || return 1
  ./qemu-run.sh "$SINE_INT8" 2>&1 | tee "$LOG/sine_int8.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || return 1
  [ -n "$SIZE" ] || { echo "no size tool"; return 1; }
  "$SIZE" "$SINE_INT8" "$SINE_BARE"
  read -r st sd _ < <("$SIZE" "$SINE_INT8" | awk 'NR==2 {print $1, $2, $3}')
  read -r bt bd _ < <("$SIZE" "$SINE_BARE" | awk 'NR==2 {print $1, $2}')
  I8_FLASH=$((st + sd)); I8_SHARE=$((st + sd - bt - bd))
  I8_RAM=$(( $(sed -n 's/.*static_ram=\([0-9]*\).*/\1/p' "$LOG/sine_int8.txt") + $(sed -n 's/.*stack_used=\([0-9]*\).*/\1/p' "$LOG/sine_int8.txt") ))
  I8_INSTR=$(sed -n 's/.*instructions_per_inference=\([0-9]*\).*/\1/p' "$LOG/sine_int8.txt")
  echo "int8 sine firmware: flash $I8_FLASH bytes (budget 12288), RAM $I8_RAM bytes (budget 2048)"
  [ "$I8_FLASH" -lt 12288 ] && [ "$I8_RAM" -lt 2048 ]
}
I8_FLASH="?"; I8_SHARE="?"; I8_RAM="?"; I8_INSTR="?"
check "int8 sine (hello_world_int8.tflite as Rust), inference only: runs, outputs within 0.25 of sin(x), flash < 12 KiB, RAM < 2 KiB" int8_sine

I8_ALL="$FIRMWARE/target/thumbv7em-none-eabihf/release/hello_world_int8"
int8_sines() {
  cargo build --release --bin hello_world_int8 || return 1
  ./qemu-run.sh "$I8_ALL" 2>&1 | tee "$LOG/int8_sines.txt" | grep -v "^TT-I8 "
  [ "${PIPESTATUS[0]}" -eq 0 ] && [ "$(grep -c "^TT-I8-DONE " "$LOG/int8_sines.txt")" -eq 4 ]
}
check "int8 sine networks on all 256 inputs (our sine; hello_world with TensorFlow's rule in integers, TFLM's rule, TensorFlow's rule in f64)" int8_sines

SPEECH="$FIRMWARE/target/thumbv7em-none-eabihf/release/micro_speech"
micro_speech() {
  cargo build --release --bin micro_speech || return 1
  ./qemu-run.sh "$SPEECH" 2>&1 | tee "$LOG/micro_speech.txt" | grep -v "^TT-I8 "
  [ "${PIPESTATUS[0]}" -eq 0 ] && grep -q "^TT-MICRO-SPEECH " "$LOG/micro_speech.txt" || return 1
  [ -n "$SIZE" ] || { echo "no size tool"; return 1; }
  "$SIZE" "$SPEECH"
  read -r st sd _ < <("$SIZE" "$SPEECH" | awk 'NR==2 {print $1, $2, $3}')
  MS_FLASH=$((st + sd))
  MS_RAM=$(( $(sed -n 's/^TT-MICRO-SPEECH .*static_ram=\([0-9]*\).*/\1/p' "$LOG/micro_speech.txt") + $(sed -n 's/^TT-MICRO-SPEECH .*stack_used=\([0-9]*\).*/\1/p' "$LOG/micro_speech.txt") ))
  echo "micro_speech firmware: flash $MS_FLASH bytes (budget 524288), RAM $MS_RAM bytes (budget 131072)"
  [ "$MS_FLASH" -lt 524288 ] && [ "$MS_RAM" -lt 131072 ]
}
MS_FLASH="?"; MS_RAM="?"
check "int8 micro_speech in QEMU: the 100 fixture inputs, flash < 512 KiB, RAM < 128 KiB" micro_speech

int8_identical() {
  (cd "$ROOT" && TINYTRAIN_REQUIRE_QEMU=1 cargo test -p tinytrain-sim --test firmware_int8 -- --nocapture)
}
check "int8 firmware and host bit-identical: every printed output against the host interpreter (TensorFlow's outputs on micro_speech's fixture), generated sources current" int8_identical

identical() {
  (cd "$ROOT" && TINYTRAIN_REQUIRE_QEMU=1 cargo test -p tinytrain-sim --test firmware -- --nocapture)
}
check "firmware and simulator bit-identical, digits MLP, mnist-cnn-tiny, waves-cnn1d and both fine-tuning scenarios (losses, weights CRC, drops)" identical

# ---- figures
step "figures (instruction counts from SysTick under QEMU -icount shift=7; not Cortex-M4 cycles)"
if [ -f "$LOG/run.txt" ]; then
  printf '%-46s %s\n' "flash (text + data)" "$FLASH bytes" \
    "RAM (data + bss + stack)" "$RAM bytes" \
    "instructions per training sample, batch 32" "$(field TT-INSTRUCTIONS per_sample_batch) (target <= 12000)" \
    "instructions per training sample, batch 1" "$(field TT-INSTRUCTIONS per_sample_batch1) (target <= 50000)" \
    "instructions per inference (forward + argmax)" "$(field TT-INSTRUCTIONS per_inference) (target <= 4000)" \
    "instructions to unpack one image from flash" "$(field TT-INSTRUCTIONS per_unpack)" \
    "test accuracy after $(field TT-DONE epochs) epochs" "$(field TT-TEST accuracy)" \
    "weights CRC-32" "$(field TT-DONE weights_crc)" \
    "weights CRC-32 without the trailer (params)" "$(field TT-DONE params_crc)" \
    "training checkpoint (power-cut firmware)" "$(grep '^TT-RESUMED ' "$LOG/resume.txt" 2>/dev/null | tr ' ' '\n' | sed -n 's/^checkpoint_bytes=//p') bytes, $(grep '^TT-RESUMED ' "$LOG/resume.txt" 2>/dev/null | tr ' ' '\n' | sed -n 's/^per_checkpoint=//p') instructions to save" \
    "QEMU wall time" "${WALL} s" \
    "sine firmware: flash (text + data)" "$SINE_FLASH bytes (target < 12288)" \
    "sine firmware: RAM (statics + stack)" "$SINE_RAM bytes (target < 2048)" \
    "sine model's share of flash (vs sine_bare)" "$SINE_SHARE bytes (target <= 1700)" \
    "sine: instructions per inference" "$SINE_INSTR (target <= 1500)"
fi
if [ -f "$LOG/cnn.txt" ]; then
  cfield() { grep "^$1 " "$LOG/cnn.txt" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
  printf '%-46s %s\n' "mnist-cnn-tiny: flash (text + data)" "$CNN_FLASH bytes (MNIST slice $(cfield TT-START dataset_bytes) B; budget 524288)" \
    "mnist-cnn-tiny: RAM (data + bss + stack)" "$CNN_RAM bytes (stack $(cfield TT-MEMORY stack_used) B; budget 131072)" \
    "mnist-cnn-tiny: instructions/sample, batch 32" "$(cfield TT-INSTRUCTIONS per_sample_batch) (target <= 400000)" \
    "mnist-cnn-tiny: instructions/sample, batch 1" "$(cfield TT-INSTRUCTIONS per_sample_batch1)" \
    "mnist-cnn-tiny: instructions per inference" "$(cfield TT-INSTRUCTIONS per_inference) (target <= 150000)" \
    "mnist-cnn-tiny: test accuracy, $(cfield TT-DONE epochs) epochs" "$(cfield TT-TEST accuracy) ($(cfield TT-TEST samples) test images)" \
    "mnist-cnn-tiny: params CRC-32" "$(cfield TT-DONE params_crc)" \
    "mnist-cnn-tiny: QEMU wall time" "${CNN_WALL} s"
fi
if [ -f "$LOG/waves.txt" ]; then
  wfield() { grep "^$1 " "$LOG/waves.txt" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
  printf '%-46s %s\n' "waves-cnn1d: flash (text + data)" "$WAVES_FLASH bytes (signals $(wfield TT-START dataset_bytes) B; budget 524288)" \
    "waves-cnn1d: RAM (data + bss + stack)" "$WAVES_RAM bytes (stack $(wfield TT-MEMORY stack_used) B; budget 131072)" \
    "waves-cnn1d: instructions/sample, batch 32" "$(wfield TT-INSTRUCTIONS per_sample_batch)" \
    "waves-cnn1d: instructions/sample, batch 1" "$(wfield TT-INSTRUCTIONS per_sample_batch1)" \
    "waves-cnn1d: instructions per inference" "$(wfield TT-INSTRUCTIONS per_inference)" \
    "waves-cnn1d: test accuracy, $(wfield TT-DONE epochs) epochs" "$(wfield TT-TEST accuracy) ($(wfield TT-TEST samples) test signals)" \
    "waves-cnn1d: params CRC-32" "$(wfield TT-DONE params_crc)"
fi

if [ -f "$LOG/sine_int8.txt" ]; then
  printf '%-46s %s\n' "int8 sine (hello_world_int8): flash" "$I8_FLASH bytes (target < 12288)" \
    "int8 sine: RAM (statics + stack)" "$I8_RAM bytes (target < 2048)" \
    "int8 sine model's share of flash (vs sine_bare)" "$I8_SHARE bytes (target <= 1000)" \
    "int8 sine: instructions per inference" "$I8_INSTR (target <= 1000)"
fi
if [ -f "$LOG/int8_sines.txt" ]; then
  grep "^TT-I8-DONE " "$LOG/int8_sines.txt" | sed -E 's/^TT-I8-DONE model=([a-z_]+) .*outputs_crc=(0x[0-9a-f]+) instructions_per_inference=([0-9]+).*$/int8 \1: \3 instructions per inference (forward only), outputs CRC \2/'
fi
if [ -f "$LOG/micro_speech.txt" ]; then
  m() { grep "^TT-MICRO-SPEECH " "$LOG/micro_speech.txt" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
  per_mac() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }'; }
  printf '%-46s %s\n' "micro_speech: flash (text + data)" "$MS_FLASH bytes" \
    "micro_speech: RAM (statics + stack)" "$MS_RAM bytes (stack $(m stack_used) B)" \
    "micro_speech: instructions per inference" "$(m instructions_per_inference) for $(m macs) MACs: $(per_mac "$(m instructions_per_inference)" "$(m macs)") per MAC (aim <= 1.5)" \
    "micro_speech: convolution / dense / softmax" "$(m conv) ($(per_mac "$(m conv)" "$(m conv_macs)") per MAC) / $(m dense) ($(per_mac "$(m dense)" "$(m dense_macs)") per MAC) / $(m softmax)" \
    "micro_speech: outputs CRC-32" "$(grep '^TT-I8-DONE ' "$LOG/micro_speech.txt" | tr ' ' '\n' | sed -n 's/^outputs_crc=//p')"
fi
if [ -f "$LOG/kernels.txt" ]; then
  grep "^TT-KERNEL " "$LOG/kernels.txt" | sed -E 's/^TT-KERNEL name=(.*) macs=([0-9]+) portable=([0-9]+) kernel=([0-9]+) portable_per_mac=([0-9.]+) kernel_per_mac=([0-9.]+)$/\1: \4 instructions (portable \3), \6 per MAC or value/'
fi
for ft in finetune finetune_shift; do
  if [ -f "$LOG/$ft.txt" ]; then
    g() { grep "^$1 " "$LOG/$ft.txt" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
    printf '%-46s %s\n' "$ft: RAM (statics + stack)" "$(g TT-MEMORY ram_total) bytes (stack $(g TT-MEMORY stack_used) B; budget 40000)" \
      "$ft: replay buffer / queue / head trainer" "$(g TT-FT-MEMORY replay) / $(g TT-FT-MEMORY queue) / $(g TT-FT-MEMORY tuner) bytes" \
      "$ft: instructions per fine-tuning sample" "$(g TT-FT-INSTRUCTIONS per_sample) (budget 248600; full training 745800)" \
      "$ft: per backbone pass / optimizer step" "$(g TT-FT-INSTRUCTIONS per_backbone) / $(g TT-FT-INSTRUCTIONS per_step)" \
      "$ft: per head checkpoint" "$(g TT-FT-INSTRUCTIONS per_checkpoint)" \
      "$ft: samples offered / dropped" "$(g TT-FINETUNE offered) / $(g TT-FINETUNE dropped)" \
      "$ft: test accuracy before -> after" "$(g TT-FINETUNE before_accuracy) -> $(g TT-FINETUNE after_accuracy) ($(g TT-TEST samples) test images)" \
      "$ft: head params CRC-32" "$(g TT-DONE params_crc)"
  fi
done

if [ "$failed" -gt 0 ]; then
  printf 'failed checks:\n'; printf '  %s\n' "${failures[@]}"
fi
echo "firmware: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
