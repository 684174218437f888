//! A simulated board for the firmware app: pins that record their changes, a virtual clock
//! that delays advance, and the RAM-backed NOR flash of [`crate::flash`] (erase to 0xFF,
//! programming only clears bits, aligned words, power cuts).
//!
//! [`run_app`] runs `tinytrain_firmware_app::run` — the very code the Cortex-M firmware runs —
//! on this board with the shipped digits set packed as `build.rs` packs it for flash, so its
//! outcome can be compared bit for bit with a QEMU run ([`crate::qemu`]). [`run_cnn_app`]
//! does the same for `tinytrain_firmware_app::run_cnn` (`mnist-cnn-tiny` on the MNIST slice
//! the `qemu_cnn` firmware bakes into flash). [`boot_resumable`] is one boot of the resumable
//! app (`tinytrain_firmware_app::run_resumable`) on a flash left as a previous boot (or a power
//! cut) left it.
//!
//! ```
//! use embedded_hal::delay::DelayNs;
//! use embedded_hal::digital::OutputPin;
//! use tinytrain_sim::board::{SimDelay, SimPin, VirtualClock};
//!
//! let clock = VirtualClock::default();
//! let mut led = SimPin::new(&clock);
//! let mut delay = SimDelay::new(&clock);
//! led.set_high().unwrap();
//! delay.delay_ms(5);
//! led.set_low().unwrap();
//! assert_eq!(led.toggles(), 2);
//! assert_eq!(led.history()[1].at_ns, 5_000_000);
//! ```

use std::cell::Cell;
use std::convert::Infallible;
use std::path::Path;
use std::rc::Rc;

use anyhow::{Context, Result, anyhow, ensure};
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType as PinErrorType, OutputPin};
use tinytrain::Layer;
use tinytrain::checkpoint;
use tinytrain::storage::CheckpointStore;
use tinytrain_firmware_app::digits::{pack, packed_len};
use tinytrain_firmware_app::{
    AppError, AppTrainer, Board, Boot, CHECKPOINT_EVERY, CNN_TEST_IMAGES, CNN_TRAIN_IMAGES, CNN_WEIGHTS_LEN, CnnNet,
    CnnTrainer, Digits, MnistSlice, Net, Outcome, Report, RunConfig, WAVES_TEST_SIGNALS, WAVES_TRAIN_SIGNALS,
    WAVES_WEIGHTS_LEN, WEIGHTS_LEN, WavesNet, WavesSets, WavesTrainer, mnist, run, run_cnn, run_net, run_resumable,
    waves,
};

use crate::datasets::{self, DatasetKind, ImageSet};
pub use crate::flash::SimFlash;

/// Virtual time in nanoseconds, shared by the parts of a board. It only moves when a delay
/// asks it to, so a simulated run is instant and deterministic.
#[derive(Debug, Clone, Default)]
pub struct VirtualClock(Rc<Cell<u64>>);

impl VirtualClock {
    /// Nanoseconds since the board started.
    #[must_use]
    pub fn now_ns(&self) -> u64 {
        self.0.get()
    }

    /// Moves time forward.
    pub fn advance_ns(&self, ns: u64) {
        self.0.set(self.0.get().saturating_add(ns));
    }
}

/// A [`DelayNs`] that advances a [`VirtualClock`] instead of waiting.
#[derive(Debug, Clone)]
pub struct SimDelay {
    clock: VirtualClock,
}

impl SimDelay {
    /// A delay on `clock`.
    #[must_use]
    pub fn new(clock: &VirtualClock) -> Self {
        SimDelay { clock: clock.clone() }
    }
}

impl DelayNs for SimDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.clock.advance_ns(u64::from(ns));
    }
}

/// One change of a pin's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinEvent {
    /// Virtual time of the change.
    pub at_ns: u64,
    /// The new level.
    pub high: bool,
}

/// An output pin that records every change of level with its virtual time. It starts low;
/// setting the level it already has is not a change.
#[derive(Debug, Clone)]
pub struct SimPin {
    clock: VirtualClock,
    high: bool,
    history: Vec<PinEvent>,
}

impl SimPin {
    /// A low pin on `clock`.
    #[must_use]
    pub fn new(clock: &VirtualClock) -> Self {
        SimPin { clock: clock.clone(), high: false, history: Vec::new() }
    }

    /// The clock the pin stamps its changes with.
    #[must_use]
    pub fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    /// Whether the pin is high.
    #[must_use]
    pub fn is_high(&self) -> bool {
        self.high
    }

    /// Changes of level so far.
    #[must_use]
    pub fn toggles(&self) -> usize {
        self.history.len()
    }

    /// Every change, in order.
    #[must_use]
    pub fn history(&self) -> &[PinEvent] {
        &self.history
    }

    fn set(&mut self, high: bool) {
        if high != self.high {
            self.high = high;
            self.history.push(PinEvent { at_ns: self.clock.now_ns(), high });
        }
    }
}

impl PinErrorType for SimPin {
    type Error = Infallible;
}

impl OutputPin for SimPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.set(false);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        self.set(true);
        Ok(())
    }
}

/// Bytes of the simulated board's flash region: the QEMU firmware's (256 KiB).
pub const SIM_FLASH_BYTES: usize = 256 * 1024;

/// The simulated board the app runs on: LED, delay, [`SIM_FLASH_BYTES`] of flash, no
/// instruction counter.
pub type SimBoard = Board<SimPin, SimDelay, SimFlash<4, 4096>, ()>;

/// A fresh [`SimBoard`]: LED low, clock at 0, flash not yet erased.
#[must_use]
pub fn sim_board() -> SimBoard {
    sim_board_with(SimFlash::new(SIM_FLASH_BYTES))
}

/// A [`SimBoard`] just powered on with `flash` as it was left: what a reboot sees.
#[must_use]
pub fn sim_board_with(flash: SimFlash<4, 4096>) -> SimBoard {
    let clock = VirtualClock::default();
    Board { led: SimPin::new(&clock), delay: SimDelay::new(&clock), flash, counter: () }
}

/// One boot of the resumable digits app ([`run_resumable`]) on a simulated board whose flash
/// is `flash` (taken as it was left, power back on), with a fresh trainer as after a reset.
/// Returns how the boot ended (an error is what a power cut during a flash operation gives)
/// and the flash as the boot left it.
///
/// # Errors
/// When the packed sets do not read.
pub fn boot_resumable(
    sets: &PackedSets,
    flash: SimFlash<4, 4096>,
    cfg: &RunConfig,
    cut_after_steps: Option<u32>,
    report: &mut impl Report,
) -> Result<(std::result::Result<Boot, AppError>, SimFlash<4, 4096>)> {
    let digits = Digits::new(&sets.train, &sets.test).context("packed digits")?;
    let mut board = sim_board_with(flash);
    let mut trainer = Box::new(AppTrainer::ZERO);
    let boot = run_resumable(
        &mut board,
        &mut trainer,
        &digits.train,
        &digits.test,
        cfg,
        CHECKPOINT_EVERY,
        cut_after_steps,
        report,
    );
    Ok((boot, board.flash))
}

/// The digits set packed for flash, as the firmware's `build.rs` packs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedSets {
    /// Packed training set.
    pub train: Vec<u8>,
    /// Packed test set.
    pub test: Vec<u8>,
}

fn pack_set(set: &ImageSet) -> Result<Vec<u8>> {
    let mut out = vec![0u8; packed_len(&set.pixels, set.len())?];
    pack(&set.pixels, &set.labels, &mut out).with_context(|| set.images_path.display().to_string())?;
    Ok(out)
}

/// Loads the digits from `data_dir` and packs them.
///
/// # Errors
/// When the files are missing or invalid.
pub fn pack_digits(data_dir: &Path) -> Result<PackedSets> {
    let data = datasets::load(DatasetKind::Digits, data_dir)?;
    Ok(PackedSets { train: pack_set(&data.train)?, test: pack_set(&data.test)? })
}

/// A finished simulated run: the app's outcome and the board as it left it.
#[derive(Debug)]
pub struct SimRun {
    /// What the app reported.
    pub outcome: Outcome,
    /// The board after the run (LED history, virtual time, flash content).
    pub board: SimBoard,
    /// The weights file of the checkpoint the app saved and read back.
    pub weights: Vec<u8>,
    /// A fine-tuning run's own figures.
    pub fine: Option<tinytrain_firmware_app::finetune::FineTuneOutcome>,
}

/// Runs the firmware app on a simulated board with the digits from `data_dir` and `cfg`.
///
/// # Errors
/// When the data cannot be loaded or the app fails.
pub fn run_app(data_dir: &Path, cfg: &RunConfig, report: &mut impl Report) -> Result<SimRun> {
    let sets = pack_digits(data_dir)?;
    let digits = Digits::new(&sets.train, &sets.test).context("packed digits")?;
    let mut board = sim_board();
    let mut trainer = Box::new(AppTrainer::ZERO);
    let outcome = run(&mut board, &mut trainer, &digits, cfg, report).map_err(|e| anyhow!("firmware app: {e}"))?;
    // The app leaves the device with the checkpoint it read back from flash.
    let store = CheckpointStore::<Net>::new(&board.flash, cfg.storage_offset)?;
    let mut saved = Box::new(Net::ZERO);
    store.load(&mut board.flash, &mut *saved)?.context("no valid checkpoint in the simulated flash")?;
    let mut weights = vec![0u8; WEIGHTS_LEN];
    checkpoint::save(&*saved, &mut weights)?;
    Ok(SimRun { outcome, board, weights, fine: None })
}

/// The MNIST slice packed for flash, as the firmware's `build.rs` packs it: the first
/// [`CNN_TRAIN_IMAGES`] images of `mnist8k-train` and the first [`CNN_TEST_IMAGES`] of
/// `mnist2k-test`.
///
/// # Errors
/// When the files are missing, invalid or not the shipped subset, or hold too few images.
pub fn pack_mnist_slice(data_dir: &Path) -> Result<PackedSets> {
    let data = datasets::load(DatasetKind::Mnist, data_dir)?;
    let slice = |set: &ImageSet, prefix: &str, count: usize| -> Result<Vec<u8>> {
        let name = set.images_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        ensure!(
            name.starts_with(prefix),
            "{}: the firmware trains on the shipped {prefix} subset, not on this file",
            set.images_path.display()
        );
        ensure!(set.len() >= count, "{}: {} images, the slice needs {count}", set.images_path.display(), set.len());
        let pixels = &set.pixels[..count * mnist::PIXELS];
        let mut out = vec![0u8; mnist::packed_len(pixels, count)?];
        mnist::pack(pixels, &set.labels[..count], &mut out).with_context(|| set.images_path.display().to_string())?;
        Ok(out)
    };
    Ok(PackedSets {
        train: slice(&data.train, "mnist8k-train", CNN_TRAIN_IMAGES)?,
        test: slice(&data.test, "mnist2k-test", CNN_TEST_IMAGES)?,
    })
}

/// Packs the waves signals the `qemu_waves` firmware trains on, as its `build.rs` does.
///
/// # Errors
/// When the files are missing, invalid or hold too few signals.
pub fn pack_waves(data_dir: &Path) -> Result<PackedSets> {
    let data = datasets::load(DatasetKind::Waves, data_dir)?;
    let pack = |set: &ImageSet, count: usize| -> Result<Vec<u8>> {
        ensure!(set.len() >= count, "{}: {} signals, the firmware needs {count}", set.images_path.display(), set.len());
        let mut out = vec![0u8; waves::packed_len(count)];
        waves::pack(&set.pixels[..count * waves::SAMPLES], &set.labels[..count], &mut out)
            .with_context(|| set.images_path.display().to_string())?;
        Ok(out)
    };
    Ok(PackedSets { train: pack(&data.train, WAVES_TRAIN_SIGNALS)?, test: pack(&data.test, WAVES_TEST_SIGNALS)? })
}

/// Runs the 1-D firmware app ([`run_net`] for `WavesNet`) on a simulated board with the waves signals from
/// `data_dir` and `cfg`.
///
/// # Errors
/// When the data cannot be loaded or the app fails.
pub fn run_waves_app(data_dir: &Path, cfg: &RunConfig, report: &mut impl Report) -> Result<SimRun> {
    let sets = pack_waves(data_dir)?;
    let data = WavesSets::new(&sets.train, &sets.test).context("packed waves signals")?;
    let mut board = sim_board();
    let mut trainer = Box::new(WavesTrainer::ZERO);
    let outcome = run_net(&mut board, &mut trainer, &data.train, &data.test, cfg, report)
        .map_err(|e| anyhow!("firmware app: {e}"))?;
    let store = CheckpointStore::<WavesNet>::new(&board.flash, cfg.storage_offset)?;
    let mut saved = Box::new(WavesNet::ZERO);
    store.load(&mut board.flash, &mut *saved)?.context("no valid checkpoint in the simulated flash")?;
    let mut weights = vec![0u8; WAVES_WEIGHTS_LEN];
    checkpoint::save(&*saved, &mut weights)?;
    Ok(SimRun { outcome, board, weights, fine: None })
}

/// Runs the CNN firmware app ([`run_cnn`]) on a simulated board with the MNIST slice from
/// `data_dir` and `cfg`.
///
/// # Errors
/// When the data cannot be loaded or the app fails.
pub fn run_cnn_app(data_dir: &Path, cfg: &RunConfig, report: &mut impl Report) -> Result<SimRun> {
    let sets = pack_mnist_slice(data_dir)?;
    let slice = MnistSlice::new(&sets.train, &sets.test).context("packed MNIST slice")?;
    let mut board = sim_board();
    let mut trainer = Box::new(CnnTrainer::ZERO);
    let outcome = run_cnn(&mut board, &mut trainer, &slice, cfg, report).map_err(|e| anyhow!("firmware app: {e}"))?;
    let store = CheckpointStore::<CnnNet>::new(&board.flash, cfg.storage_offset)?;
    let mut saved = Box::new(CnnNet::ZERO);
    store.load(&mut board.flash, &mut *saved)?.context("no valid checkpoint in the simulated flash")?;
    let mut weights = vec![0u8; CNN_WEIGHTS_LEN];
    checkpoint::save(&*saved, &mut weights)?;
    Ok(SimRun { outcome, board, weights, fine: None })
}
