//! Builds the Cortex-M firmware, runs it in QEMU and compares it with the simulator.
//!
//! [`build_firmware`] runs `cargo build --release --bin qemu` in `firmware/` (target
//! `thumbv7em-none-eabihf`); [`run_qemu`] starts `qemu-system-arm -machine mps2-an386` with
//! `-icount shift=7` and decodes its defmt log with `defmt-print`; [`parse_log`] reads the
//! `TT-...` lines the firmware prints; [`compare`] checks them against the simulated run of
//! the same app ([`crate::board::run_app`]): every epoch's loss, the test loss and the CRC-32
//! of the weights must be bit-identical. [`FirmwareModel`] picks the firmware: the digits MLP
//! (`qemu`) or `mnist-cnn-tiny` on a slice of MNIST (`qemu_cnn`,
//! [`crate::board::run_cnn_app`]).
//!
//! ```
//! use tinytrain_sim::qemu::parse_log;
//! let log = "TT-EPOCH epoch=1 loss_bits=0x400da2ae loss=2.21 accuracy=0.17 instructions=35060532\n\
//!            TT-DONE weights_crc=0x2144df1c params_crc=0x0badcafe weights_len=9668 led_toggles=1 epochs=1\n";
//! let report = parse_log(log).unwrap();
//! assert_eq!(report.epochs[0].loss_bits, 0x400d_a2ae);
//! assert_eq!(report.weights_crc, 0x2144_df1c);
//! assert_eq!(report.params_crc, Some(0x0bad_cafe));
//! ```

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use tinytrain_firmware_app::{Outcome, RunConfig};

/// The firmware's target triple.
pub const TARGET: &str = "thumbv7em-none-eabihf";
/// The QEMU binary.
pub const QEMU: &str = "qemu-system-arm";

/// The repository's `firmware/` directory.
#[must_use]
pub fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("firmware")
}

/// Finds `program` on `PATH` (or in cargo's bin directory, where `cargo install` puts it).
#[must_use]
pub fn find_program(program: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo").join("bin"));
    }
    dirs.into_iter().map(|d| d.join(program)).find(|p| p.is_file())
}

/// Which training firmware `tinytrain-sim qemu` builds, runs and compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FirmwareModel {
    /// The digits MLP on the 1,437 digits training images (binary `qemu`).
    #[default]
    #[value(name = "digits-mlp")]
    DigitsMlp,
    /// `mnist-cnn-tiny` on 1,000 MNIST training images (binary `qemu_cnn`).
    #[value(name = "mnist-cnn-tiny")]
    MnistCnnTiny,
    /// `waves-cnn1d` (Conv1d) on 1,000 waves signals (binary `qemu_waves`).
    #[value(name = "waves-cnn1d")]
    WavesCnn1d,
    /// Fine-tuning a head over the int8 backbone pre-trained on classes 0-4, from a stream of
    /// all ten (binary `qemu_finetune`, [`crate::finetune`]).
    #[value(name = "finetune")]
    Finetune,
    /// Fine-tuning over the backbone pre-trained on upright images, from a stream of images
    /// rotated by 30 degrees (binary `qemu_finetune_shift`).
    #[value(name = "finetune-shift")]
    FinetuneShift,
}

impl FirmwareModel {
    /// The firmware binary.
    #[must_use]
    pub fn bin(self) -> &'static str {
        match self {
            FirmwareModel::DigitsMlp => "qemu",
            FirmwareModel::MnistCnnTiny => "qemu_cnn",
            FirmwareModel::WavesCnn1d => "qemu_waves",
            FirmwareModel::Finetune => "qemu_finetune",
            FirmwareModel::FinetuneShift => "qemu_finetune_shift",
        }
    }

    /// The fine-tuning scenario of a fine-tuning firmware.
    #[must_use]
    pub fn scenario(self) -> Option<crate::finetune::Scenario> {
        match self {
            FirmwareModel::Finetune => Some(crate::finetune::Scenario::Reference),
            FirmwareModel::FinetuneShift => Some(crate::finetune::Scenario::Shift),
            _ => None,
        }
    }

    /// The run the firmware does (and the simulator repeats).
    #[must_use]
    pub fn config(self) -> RunConfig {
        match self {
            // Fine-tuning is not a `run_net` run: `crate::finetune::Scenario::config` says how
            // it runs.
            FirmwareModel::DigitsMlp | FirmwareModel::Finetune | FirmwareModel::FinetuneShift => RunConfig::STANDARD,
            FirmwareModel::MnistCnnTiny => RunConfig::CNN,
            FirmwareModel::WavesCnn1d => RunConfig::WAVES,
        }
    }

    /// Runs the same app on the simulated board.
    ///
    /// # Errors
    /// As [`crate::board::run_app`] and [`crate::board::run_cnn_app`].
    pub fn simulate(self, data: &Path) -> Result<crate::board::SimRun> {
        match self {
            FirmwareModel::DigitsMlp => crate::board::run_app(data, &self.config(), &mut ()),
            FirmwareModel::MnistCnnTiny => crate::board::run_cnn_app(data, &self.config(), &mut ()),
            FirmwareModel::WavesCnn1d => crate::board::run_waves_app(data, &self.config(), &mut ()),
            FirmwareModel::Finetune | FirmwareModel::FinetuneShift => {
                let scenario = self.scenario().context("a fine-tuning model")?;
                let run = crate::finetune::simulate_scenario(data, scenario, None, &mut ())?;
                let mut weights =
                    vec![0u8; tinytrain::checkpoint::file_len::<tinytrain_firmware_app::finetune::Head>()];
                tinytrain::checkpoint::save(&*run.head, &mut weights)?;
                Ok(crate::board::SimRun { outcome: run.fine.outcome, board: run.board, weights, fine: Some(run.fine) })
            }
        }
    }
}

/// Builds the digits QEMU firmware in release mode and returns the ELF's path.
///
/// # Errors
/// When cargo cannot be started or the build fails (its output is passed through).
pub fn build_firmware(firmware: &Path) -> Result<PathBuf> {
    build_firmware_bin(firmware, "qemu")
}

/// Builds the QEMU firmware binary `bin` in release mode and returns the ELF's path.
///
/// # Errors
/// When cargo cannot be started or the build fails (its output is passed through).
pub fn build_firmware_bin(firmware: &Path, bin: &str) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let target_dir = firmware.join("target");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(firmware).args(["build", "--release", "--bin", bin]).env("CARGO_TARGET_DIR", &target_dir);
    // Settings of an enclosing cargo (a host build or test) must not leak into the firmware's.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().with_context(|| format!("cannot run cargo in {}", firmware.display()))?;
    ensure!(status.success(), "building the firmware in {} failed ({status})", firmware.display());
    let elf = target_dir.join(TARGET).join("release").join(bin);
    ensure!(elf.is_file(), "the firmware build did not produce {}", elf.display());
    Ok(elf)
}

/// A finished QEMU run.
#[derive(Debug, Clone)]
pub struct QemuRun {
    /// QEMU's exit code (0: the firmware succeeded; 1: it failed, panicked or faulted).
    pub exit_code: i32,
    /// The decoded defmt log.
    pub log: String,
    /// Wall time of the run.
    pub wall: Duration,
}

/// Runs `elf` on QEMU's mps2-an386 (Cortex-M4F) with `-icount shift=7` and decodes its defmt
/// log with `defmt-print`. The run is killed after `timeout`.
///
/// # Errors
/// When QEMU or `defmt-print` is not installed or cannot be started, or the run times out.
pub fn run_qemu(elf: &Path, timeout: Duration) -> Result<QemuRun> {
    let qemu =
        find_program(QEMU).ok_or_else(|| anyhow!("{QEMU} is not installed (apt-get install qemu-system-arm)"))?;
    let decoder = find_program("defmt-print")
        .ok_or_else(|| anyhow!("defmt-print is not installed (cargo install defmt-print --version 1.2.0 --locked)"))?;
    let start = Instant::now();
    let mut emulator = Command::new(qemu)
        .args(["-cpu", "cortex-m4", "-machine", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "null"])
        .args(["-icount", "shift=7", "-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {QEMU}"))?;
    let frames = emulator.stdout.take().ok_or_else(|| anyhow!("no stdout from {QEMU}"))?;
    let mut print = Command::new(decoder)
        .arg("-e")
        .arg(elf)
        .stdin(Stdio::from(frames))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start defmt-print")?;
    let mut log_pipe = print.stdout.take().ok_or_else(|| anyhow!("no stdout from defmt-print"))?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = log_pipe.read_to_string(&mut text);
        text
    });
    let status = loop {
        if let Some(status) = emulator.try_wait()? {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = emulator.kill();
            let _ = emulator.wait();
            let _ = print.kill();
            let _ = print.wait();
            bail!("{QEMU} did not finish within {} s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = start.elapsed();
    let _ = print.wait();
    let mut log = reader.join().map_err(|_| anyhow!("reading the defmt log failed"))?;
    if let Some(mut err) = emulator.stderr.take() {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        if !text.trim().is_empty() {
            log.push_str(&text);
        }
    }
    Ok(QemuRun { exit_code: status.code().unwrap_or(-1), log, wall })
}

/// One epoch as the firmware logged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirmwareEpoch {
    /// Epoch number, from 1.
    pub epoch: u32,
    /// The mean training loss, as raw `f32` bits.
    pub loss_bits: u32,
    /// Instructions the epoch took.
    pub instructions: u64,
}

/// What the firmware reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirmwareReport {
    /// Per-epoch losses.
    pub epochs: Vec<FirmwareEpoch>,
    /// CRC-32 of the weights file read back from flash (the CRC-32 residue for any intact
    /// file).
    pub weights_crc: u32,
    /// CRC-32 of the weights file without its CRC trailer, if reported.
    pub params_crc: Option<u32>,
    /// Bytes of the weights file.
    pub weights_len: u32,
    /// LED toggles.
    pub led_toggles: u32,
    /// Test loss as raw bits, if reported.
    pub test_loss_bits: Option<u32>,
    /// Correct test samples, if reported.
    pub test_correct: Option<u64>,
    /// Instruction counts: `per_sample_batch`, `per_sample_batch1`, `per_inference`,
    /// `per_unpack`, `per_eval`, and the start line's `trainer_bytes` and `dataset_bytes`.
    pub figures: HashMap<String, u64>,
}

fn fields(line: &str) -> HashMap<&str, &str> {
    line.split_whitespace().filter_map(|kv| kv.split_once('=')).collect()
}

fn number(map: &HashMap<&str, &str>, key: &str, line: &str) -> Result<u64> {
    let text = map.get(key).ok_or_else(|| anyhow!("`{key}` missing in firmware line `{line}`"))?;
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.with_context(|| format!("bad `{key}` in firmware line `{line}`"))
}

fn number_u32(map: &HashMap<&str, &str>, key: &str, line: &str) -> Result<u32> {
    u32::try_from(number(map, key, line)?).with_context(|| format!("`{key}` out of range in `{line}`"))
}

/// Reads the `TT-...` lines of a decoded firmware log.
///
/// # Errors
/// When a line is malformed or the final `TT-DONE` line is missing (the firmware did not
/// finish).
pub fn parse_log(log: &str) -> Result<FirmwareReport> {
    let mut report = FirmwareReport::default();
    let mut done = false;
    for line in log.lines().map(str::trim) {
        let Some(start) = line.find("TT-") else { continue };
        let line = &line[start..];
        let map = fields(line);
        let tag = line.split_whitespace().next().unwrap_or_default();
        match tag {
            "TT-EPOCH" => report.epochs.push(FirmwareEpoch {
                epoch: number_u32(&map, "epoch", line)?,
                loss_bits: number_u32(&map, "loss_bits", line)?,
                instructions: number(&map, "instructions", line)?,
            }),
            "TT-START" => {
                for key in ["trainer_bytes", "dataset_bytes"] {
                    report.figures.insert(key.to_owned(), number(&map, key, line)?);
                }
            }
            "TT-TEST" => {
                report.test_loss_bits = Some(number_u32(&map, "loss_bits", line)?);
                report.test_correct = Some(number(&map, "correct", line)?);
            }
            "TT-FINETUNE" => {
                for key in
                    ["before_loss_bits", "before_correct", "offered", "dropped", "consumed", "steps", "checkpoints"]
                {
                    report.figures.insert(key.to_owned(), number(&map, key, line)?);
                }
            }
            "TT-FT-INSTRUCTIONS" => {
                for key in ["per_sample", "per_backbone", "per_step", "per_checkpoint"] {
                    report.figures.insert(format!("ft_{key}"), number(&map, key, line)?);
                }
            }
            "TT-MEMORY" => {
                for key in ["static_ram", "stack_used", "ram_total"] {
                    report.figures.insert(key.to_owned(), number(&map, key, line)?);
                }
            }
            "TT-INSTRUCTIONS" => {
                for key in ["per_sample_batch", "per_sample_batch1", "per_inference", "per_unpack", "per_eval"] {
                    report.figures.insert(key.to_owned(), number(&map, key, line)?);
                }
            }
            "TT-DONE" => {
                report.weights_crc = number_u32(&map, "weights_crc", line)?;
                if map.contains_key("params_crc") {
                    report.params_crc = Some(number_u32(&map, "params_crc", line)?);
                }
                report.weights_len = number_u32(&map, "weights_len", line)?;
                report.led_toggles = number_u32(&map, "led_toggles", line)?;
                done = true;
            }
            _ => {}
        }
    }
    ensure!(done, "the firmware log has no TT-DONE line: the firmware did not finish");
    Ok(report)
}

/// The comparison of a firmware run with a simulated one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// One line per compared value, `ok` or `MISMATCH`.
    pub text: String,
    /// Whether every value is identical.
    pub identical: bool,
}

/// Compares the firmware's per-epoch losses, test loss, LED toggles and weights CRC with the
/// simulator's, bit for bit.
#[must_use]
pub fn compare(firmware: &FirmwareReport, sim: &Outcome) -> Comparison {
    let mut text = String::new();
    let mut identical = true;
    let mut row = |what: &str, fw: String, simulated: String| {
        let same = fw == simulated;
        identical &= same;
        let _ = writeln!(
            text,
            "{what:<18} firmware {fw:<12} simulator {simulated:<12} {}",
            if same { "ok" } else { "MISMATCH" }
        );
    };
    let sim_epochs = sim.epochs();
    row("epochs", firmware.epochs.len().to_string(), sim_epochs.len().to_string());
    for (i, e) in sim_epochs.iter().enumerate() {
        let fw = firmware.epochs.get(i).map_or_else(|| "-".to_owned(), |f| format!("{:#010x}", f.loss_bits));
        row(&format!("epoch {} loss", e.epoch), fw, format!("{:#010x}", e.loss_bits()));
    }
    row(
        "test loss",
        firmware.test_loss_bits.map_or_else(|| "-".to_owned(), |b| format!("{b:#010x}")),
        format!("{:#010x}", sim.test.loss.to_bits()),
    );
    row("LED toggles", firmware.led_toggles.to_string(), sim.led_toggles.to_string());
    row("weights CRC-32", format!("{:#010x}", firmware.weights_crc), format!("{:#010x}", sim.weights_crc));
    row(
        "params CRC-32",
        firmware.params_crc.map_or_else(|| "-".to_owned(), |c| format!("{c:#010x}")),
        format!("{:#010x}", sim.params_crc),
    );
    Comparison { text, identical }
}

/// Compares what only a fine-tuning run reports: the test loss before fine-tuning, the samples
/// offered, dropped and trained on, and the optimizer steps.
#[must_use]
pub fn compare_finetune(
    firmware: &FirmwareReport,
    sim: &tinytrain_firmware_app::finetune::FineTuneOutcome,
) -> Comparison {
    let mut text = String::new();
    let mut identical = true;
    let rows = [
        ("before: test loss", u64::from(sim.before.loss.to_bits()), "before_loss_bits"),
        ("before: correct", sim.before.correct as u64, "before_correct"),
        ("samples offered", u64::from(sim.offered), "offered"),
        ("samples dropped", u64::from(sim.dropped), "dropped"),
        ("samples trained on", u64::from(sim.consumed), "consumed"),
        ("optimizer steps", u64::from(sim.steps), "steps"),
        ("head checkpoints", u64::from(sim.checkpoints), "checkpoints"),
    ];
    for (what, simulated, key) in rows {
        let fw = firmware.figures.get(key).copied();
        let same = fw == Some(simulated);
        identical &= same;
        let fw = fw.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let _ = writeln!(
            text,
            "{what:<18} firmware {fw:<12} simulator {simulated:<12} {}",
            if same { "ok" } else { "MISMATCH" }
        );
    }
    Comparison { text, identical }
}

/// What `tinytrain-sim qemu` does.
#[derive(Debug, Clone)]
pub struct QemuOptions {
    /// The firmware crate to build.
    pub firmware: PathBuf,
    /// A firmware ELF to run instead of building one.
    pub elf: Option<PathBuf>,
    /// Where the digits are, for the simulator.
    pub data: PathBuf,
    /// Longest QEMU run.
    pub timeout: Duration,
    /// Which firmware.
    pub model: FirmwareModel,
}

/// Builds and runs the firmware in QEMU, runs the same app on the simulated board, and
/// prints both and their comparison to `out`.
///
/// # Errors
/// When the build, QEMU or the simulation fails, or when the firmware and the simulator
/// differ in any compared bit.
pub fn run_and_compare(opts: &QemuOptions, out: &mut dyn std::io::Write) -> Result<()> {
    let elf = if let Some(elf) = &opts.elf {
        elf.clone()
    } else {
        writeln!(out, "building the firmware in {} ({TARGET}, release)", opts.firmware.display())?;
        out.flush()?;
        build_firmware_bin(&opts.firmware, opts.model.bin())?
    };
    writeln!(out, "running {} on {QEMU} -machine mps2-an386 (Cortex-M4F), -icount shift=7", elf.display())?;
    out.flush()?;
    let run = run_qemu(&elf, opts.timeout)?;
    for line in run.log.lines() {
        writeln!(out, "  | {line}")?;
    }
    writeln!(out, "QEMU exit code {}, wall time {:.2} s", run.exit_code, run.wall.as_secs_f64())?;
    ensure!(run.exit_code == 0, "the firmware failed in QEMU (exit code {})", run.exit_code);
    let firmware = parse_log(&run.log)?;
    writeln!(out, "running the same app on the simulated board")?;
    let sim = opts.model.simulate(&opts.data)?;
    let mut comparison = compare(&firmware, &sim.outcome);
    if let Some(fine) = &sim.fine {
        let more = compare_finetune(&firmware, fine);
        comparison.text.push_str(&more.text);
        comparison.identical &= more.identical;
    }
    write!(out, "{}", comparison.text)?;
    for (key, label) in [
        ("per_sample_batch", "instructions per training sample, configured batch"),
        ("per_sample_batch1", "instructions per training sample, batch 1"),
        ("per_inference", "instructions per inference"),
        ("per_unpack", "instructions to unpack an image from flash"),
        ("ft_per_sample", "instructions per fine-tuning sample (all in)"),
        ("ft_per_backbone", "instructions per backbone pass"),
        ("ft_per_step", "instructions per optimizer step of the head"),
        ("ft_per_checkpoint", "instructions per head checkpoint"),
        ("ram_total", "RAM: statics + measured stack, bytes"),
    ] {
        match firmware.figures.get(key) {
            Some(v) if key == "ram_total" => writeln!(out, "{label:<44} {v}")?,
            Some(&v) if v > 0 => writeln!(out, "{label:<44} {v} (QEMU instruction count, not cycles)")?,
            _ => {}
        }
    }
    ensure!(comparison.identical, "the firmware and the simulator differ (see MISMATCH above)");
    writeln!(out, "firmware and simulator are bit-identical")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use tinytrain::train::Eval;
    use tinytrain_firmware_app::{EpochRecord, MAX_EPOCHS};

    use super::*;

    const LOG: &str = "INFO  hello\n\
        TT-EPOCH epoch=1 loss_bits=0x40000000 loss=2 accuracy=0.5 instructions=10\n\
        TT-TEST loss_bits=0x3f800000 loss=1 accuracy=0.5 correct=1 samples=2\n\
        TT-DONE weights_crc=0x12345678 params_crc=0x9abcdef0 weights_len=9668 led_toggles=1 epochs=1\n";

    fn outcome() -> Outcome {
        let mut epochs = [EpochRecord { epoch: 0, loss: 0.0, accuracy: 0.0, instructions: 0 }; MAX_EPOCHS];
        epochs[0] = EpochRecord { epoch: 1, loss: 2.0, accuracy: 0.5, instructions: 0 };
        Outcome {
            epochs_run: 1,
            epochs,
            test: Eval { loss: 1.0, accuracy: 0.5, correct: 1, samples: 2 },
            weights_len: 9668,
            weights_crc: 0x1234_5678,
            params_crc: 0x9abc_def0,
            led_toggles: 1,
            train_samples: 2,
            instructions_per_sample: 0,
            instructions_per_sample_batch1: 0,
            instructions_per_inference: 0,
            instructions_per_unpack: 0,
            instructions_per_eval: 0,
        }
    }

    #[test]
    fn identical_runs_compare_equal_and_one_bit_does_not() {
        let fw = parse_log(LOG).unwrap();
        assert!(compare(&fw, &outcome()).identical);
        let mut other = outcome();
        other.epochs[0].loss = f32::from_bits(0x4000_0001);
        let c = compare(&fw, &other);
        assert!(!c.identical);
        assert!(c.text.contains("epoch 1 loss") && c.text.contains("MISMATCH"), "{}", c.text);
        let mut crc = outcome();
        crc.weights_crc ^= 1;
        assert!(!compare(&fw, &crc).identical);
        let mut params = outcome();
        params.params_crc ^= 1;
        assert!(!compare(&fw, &params).identical);
    }

    #[test]
    fn an_unfinished_log_is_an_error() {
        let cut = LOG.lines().take(2).collect::<Vec<_>>().join("\n");
        assert!(parse_log(&cut).unwrap_err().to_string().contains("TT-DONE"));
        assert!(parse_log("TT-EPOCH epoch=x\nTT-DONE").is_err());
    }
}
