//! The firmware app on the simulated board, and the same app on a Cortex-M4F in QEMU: the two
//! must agree bit for bit, for the digits MLP (`qemu`) and for `mnist-cnn-tiny` on a slice of
//! MNIST (`qemu_cnn`), for the 1-D `waves-cnn1d` on waves signals (`qemu_waves`), and for
//! fine-tuning a head over an int8 backbone (`qemu_finetune`, `qemu_finetune_shift`).
//!
//! The QEMU test needs `qemu-system-arm` and `defmt-print` (`firmware/ci.sh` installs both);
//! without them it says so and passes, unless `TINYTRAIN_REQUIRE_QEMU=1` is set, as
//! `firmware/ci.sh` does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tinytrain::Layer;
use tinytrain::checkpoint::{CRC32, load};
use tinytrain_firmware_app::{CNN_WEIGHTS_LEN, CnnNet, Net, Report, RunConfig, WAVES_WEIGHTS_LEN};
use tinytrain_sim::board::{run_app, run_cnn_app};
use tinytrain_sim::datasets::workspace_data_dir;
use tinytrain_sim::qemu::{
    FirmwareModel, QEMU, build_firmware, build_firmware_bin, compare, compare_finetune, find_program, firmware_dir,
    parse_log, run_qemu,
};

/// A short run: one epoch is enough for the LED and flash checks.
const SHORT: RunConfig = RunConfig { epochs: 2, bench_samples: 4, ..RunConfig::STANDARD };

#[derive(Default)]
struct Counting {
    epochs: u32,
    saved: Option<(u32, u32)>,
}

impl Report for Counting {
    fn epoch(&mut self, _record: &tinytrain_firmware_app::EpochRecord) {
        self.epochs += 1;
    }
    fn saved(&mut self, len: u32, crc: u32) {
        self.saved = Some((len, crc));
    }
}

#[test]
fn simulated_led_toggles_once_per_epoch_and_flash_holds_the_weights() {
    let mut report = Counting::default();
    let run = run_app(&workspace_data_dir(), &SHORT, &mut report).unwrap();
    let led = &run.board.led;
    assert_eq!(report.epochs, SHORT.epochs);
    assert_eq!(led.toggles(), SHORT.epochs as usize, "one LED change per epoch");
    assert_eq!(run.outcome.led_toggles, SHORT.epochs);
    // Alternating levels, one blink period apart in virtual time.
    for (i, event) in led.history().iter().enumerate() {
        assert_eq!(event.high, i % 2 == 0);
        assert_eq!(event.at_ns, i as u64 * u64::from(SHORT.blink_ms) * 1_000_000);
    }
    assert_eq!(led.clock().now_ns(), u64::from(SHORT.epochs) * u64::from(SHORT.blink_ms) * 1_000_000);
    // The flash holds a valid weights file with the CRC the app reported.
    assert_eq!(report.saved, Some((run.outcome.weights_len, run.outcome.weights_crc)));
    assert_eq!(CRC32.checksum(&run.weights), run.outcome.weights_crc);
    let mut net = Net::ZERO;
    load(&mut net, &run.weights).unwrap();
    assert!(run.outcome.epochs()[1].loss < run.outcome.epochs()[0].loss, "training lowers the loss");
}

#[test]
fn simulated_runs_repeat_bit_for_bit() {
    let a = run_app(&workspace_data_dir(), &SHORT, &mut ()).unwrap();
    let b = run_app(&workspace_data_dir(), &SHORT, &mut ()).unwrap();
    assert_eq!(a.outcome, b.outcome);
    assert_eq!(a.weights, b.weights);
}

/// Whether QEMU and defmt-print are installed; without them a test says so and passes, unless
/// `TINYTRAIN_REQUIRE_QEMU=1`.
fn qemu_available(test: &str) -> bool {
    let missing: Vec<&str> = [QEMU, "defmt-print"].into_iter().filter(|p| find_program(p).is_none()).collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!("{} not installed: cannot run the firmware in QEMU", missing.join(" and "));
    assert!(std::env::var_os("TINYTRAIN_REQUIRE_QEMU").is_none_or(|v| v != "1"), "{msg}");
    eprintln!("SKIPPED {test}: {msg} (firmware/ci.sh installs them)");
    false
}

#[test]
fn simulated_cnn_run_trains_and_saves_its_weights() {
    let short = RunConfig { epochs: 1, bench_samples: 2, ..RunConfig::CNN };
    let run = run_cnn_app(&workspace_data_dir(), &short, &mut ()).unwrap();
    assert_eq!((run.outcome.epochs_run, run.outcome.train_samples, run.outcome.test.samples), (1, 1000, 200));
    assert_eq!(run.weights.len(), CNN_WEIGHTS_LEN);
    assert_eq!(run.outcome.weights_len as usize, CNN_WEIGHTS_LEN);
    assert_eq!(CRC32.checksum(&run.weights), run.outcome.weights_crc);
    assert_eq!(CRC32.checksum(&run.weights[..CNN_WEIGHTS_LEN - 4]), run.outcome.params_crc);
    let mut net = CnnNet::ZERO;
    load(&mut net, &run.weights).unwrap();
    assert!(run.outcome.epochs()[0].loss.is_finite());
}

#[test]
fn qemu_cnn_firmware_matches_the_simulator_bit_for_bit() {
    if !qemu_available("qemu_cnn_firmware_matches_the_simulator_bit_for_bit") {
        return;
    }
    let model = FirmwareModel::MnistCnnTiny;
    let elf = build_firmware_bin(&firmware_dir(), model.bin()).unwrap();
    let qemu = run_qemu(&elf, Duration::from_mins(5)).unwrap();
    assert_eq!(qemu.exit_code, 0, "firmware failed:\n{}", qemu.log);
    let firmware = parse_log(&qemu.log).unwrap();
    let sim = model.simulate(&workspace_data_dir()).unwrap();
    let comparison = compare(&firmware, &sim.outcome);
    println!("{}", comparison.text);
    assert!(comparison.identical, "firmware and simulator differ:\n{}\nlog:\n{}", comparison.text, qemu.log);
    assert_eq!(firmware.epochs.len(), RunConfig::CNN.epochs as usize);
    assert_eq!(firmware.params_crc, Some(CRC32.checksum(&sim.weights[..CNN_WEIGHTS_LEN - 4])));
    assert!(firmware.epochs.iter().all(|e| e.instructions > 0), "SysTick counted instructions");
}

#[test]
fn qemu_waves_firmware_matches_the_simulator_bit_for_bit() {
    if !qemu_available("qemu_waves_firmware_matches_the_simulator_bit_for_bit") {
        return;
    }
    let model = FirmwareModel::WavesCnn1d;
    let elf = build_firmware_bin(&firmware_dir(), model.bin()).unwrap();
    let qemu = run_qemu(&elf, Duration::from_mins(5)).unwrap();
    assert_eq!(qemu.exit_code, 0, "firmware failed:\n{}", qemu.log);
    let firmware = parse_log(&qemu.log).unwrap();
    let sim = model.simulate(&workspace_data_dir()).unwrap();
    let comparison = compare(&firmware, &sim.outcome);
    println!("{}", comparison.text);
    assert!(comparison.identical, "firmware and simulator differ:\n{}\nlog:\n{}", comparison.text, qemu.log);
    assert_eq!(firmware.epochs.len(), RunConfig::WAVES.epochs as usize);
    assert_eq!(firmware.params_crc, Some(CRC32.checksum(&sim.weights[..WAVES_WEIGHTS_LEN - 4])));
    // It learns: the last epoch's loss is below the first's.
    let losses: Vec<f32> = firmware.epochs.iter().map(|e| f32::from_bits(e.loss_bits)).collect();
    assert!(losses[losses.len() - 1] < losses[0], "{losses:?}");
}

#[test]
fn qemu_firmware_matches_the_simulator_bit_for_bit() {
    if !qemu_available("qemu_firmware_matches_the_simulator_bit_for_bit") {
        return;
    }
    let elf = build_firmware(&firmware_dir()).unwrap();
    let qemu = run_qemu(&elf, Duration::from_mins(5)).unwrap();
    assert_eq!(qemu.exit_code, 0, "firmware failed:\n{}", qemu.log);
    let firmware = parse_log(&qemu.log).unwrap();
    let sim = run_app(&workspace_data_dir(), &RunConfig::STANDARD, &mut ()).unwrap();
    let comparison = compare(&firmware, &sim.outcome);
    println!("{}", comparison.text);
    assert!(comparison.identical, "firmware and simulator differ:\n{}\nlog:\n{}", comparison.text, qemu.log);
    assert_eq!(firmware.epochs.len(), RunConfig::STANDARD.epochs as usize);
    assert!(firmware.epochs.iter().all(|e| e.instructions > 0), "SysTick counted instructions");
}

/// Fine-tuning over the int8 backbone in QEMU against the simulator: every record's loss, the
/// test loss before and after, the head's CRC, the samples offered, dropped (none) and trained
/// on, and the steps.
fn finetune_matches(model: FirmwareModel, test: &str) {
    if !qemu_available(test) {
        return;
    }
    let elf = build_firmware_bin(&firmware_dir(), model.bin()).unwrap();
    let qemu = run_qemu(&elf, Duration::from_mins(5)).unwrap();
    assert_eq!(qemu.exit_code, 0, "firmware failed:\n{}", qemu.log);
    let firmware = parse_log(&qemu.log).unwrap();
    let sim = model.simulate(&workspace_data_dir()).unwrap();
    let fine = sim.fine.expect("a fine-tuning run");
    let comparison = compare(&firmware, &sim.outcome);
    let more = compare_finetune(&firmware, &fine);
    println!("{}{}", comparison.text, more.text);
    assert!(comparison.identical && more.identical, "firmware and simulator differ:\nlog:\n{}", qemu.log);
    assert_eq!(firmware.figures.get("dropped"), Some(&0));
    // The budgets: RAM all in at most 40,000 B, a third of full training's instructions.
    let ram = firmware.figures["ram_total"];
    let per_sample = firmware.figures["ft_per_sample"];
    println!("RAM {ram} B, {per_sample} instructions per fine-tuning sample");
    assert!(ram <= 40_000, "RAM {ram}");
    assert!(per_sample <= 248_600, "{per_sample} instructions per sample");
    assert!(fine.outcome.test.accuracy > fine.before.accuracy + 0.15);
}

#[test]
fn qemu_finetune_firmware_matches_the_simulator_bit_for_bit() {
    finetune_matches(FirmwareModel::Finetune, "qemu_finetune_firmware_matches_the_simulator_bit_for_bit");
}

#[test]
fn qemu_finetune_shift_firmware_matches_the_simulator_bit_for_bit() {
    finetune_matches(FirmwareModel::FinetuneShift, "qemu_finetune_shift_firmware_matches_the_simulator_bit_for_bit");
}
