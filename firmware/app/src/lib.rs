//! The tinytrain firmware app, written once against embedded-hal and embedded-storage traits.
//!
//! [`run`] trains [`zoo::DigitsMlp`](tinytrain::zoo::DigitsMlp) with Adam (PyTorch form, lr
//! 1e-3) on the digits training set, toggles a status LED after every epoch, evaluates on the
//! test set, saves the weights file to NOR flash, reads it back (CRC checked) and reports a
//! CRC-32 of the file and every epoch's loss as raw `f32` bits, so that two runs can be
//! compared exactly. Then it counts instructions for single-sample training steps and for
//! inference, and loads the saved weights again.
//!
//! [`run_cnn`] does the same with [`zoo::MnistCnnTiny`](tinytrain::zoo::MnistCnnTiny) on a
//! slice of MNIST ([`mnist`]); both are [`run_net`] for their network and data set.
//!
//! [`finetune::run_finetune`] fine-tunes a head over a frozen int8 backbone from a stream of
//! images that a timer interrupt feeds through a queue ([`finetune`]).
//!
//! The same code runs in the Cortex-M firmware (`tinytrain-firmware`, QEMU and STM32F411) and
//! in the host simulator (`tinytrain-sim qemu`, on a simulated board): the two must agree bit
//! for bit.
//!
//! ```
//! use tinytrain_firmware_app::{AppTrainer, RunConfig, WEIGHTS_LEN};
//! assert_eq!(WEIGHTS_LEN, 24 + 4 * 2410 + 4);
//! assert_eq!(RunConfig::STANDARD.epochs, 3);
//! // The whole training state, known before flashing:
//! assert!(core::mem::size_of::<AppTrainer>() < 40 * 1024);
//! // The CNN's, with Adam: about 98 KB, under a 128 KiB RAM budget with the stack.
//! assert!(core::mem::size_of::<tinytrain_firmware_app::CnnTrainer>() < 100 * 1024);
//! ```
#![no_std]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod digits;
pub mod finetune;
#[rustfmt::skip]
#[allow(clippy::unreadable_literal)]
pub mod finetune_weights;
pub mod mnist;
pub mod resumable;
pub mod waves;

use core::fmt;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use embedded_storage::nor_flash::NorFlash;
use tinytrain::checkpoint::{self, CRC32, file_len};
use tinytrain::data::Dataset;
use tinytrain::prelude::*;
use tinytrain::storage::CheckpointStore;
use tinytrain::tensor::argmax;
use tinytrain::train::Eval;
use tinytrain::zoo::{DigitsMlp, MnistCnnTiny, WavesCnn1d};

pub use digits::PackedDigits;
pub use mnist::PackedMnist;
pub use resumable::{Boot, CHECKPOINT_EVERY, Resumed, run_resumable};
pub use waves::{PackedWaves, WavesSets};

/// The network the app trains.
pub type Net = DigitsMlp;
/// Its parameter count.
pub const NUM_PARAMS: usize = <Net as Layer>::NUM_PARAMS;
/// The optimizer state.
pub type Opt = Adam<NUM_PARAMS>;
/// Everything training needs; a `static` on the device (about 39 KB, all `.bss`).
pub type AppTrainer = Trainer<Net, Opt>;
/// Bytes of the weights file.
pub const WEIGHTS_LEN: usize = file_len::<Net>();
/// The network [`run_cnn`] trains.
pub type CnnNet = MnistCnnTiny;
/// Its parameter count.
pub const CNN_PARAMS: usize = <CnnNet as Layer>::NUM_PARAMS;
/// Its optimizer state.
pub type CnnOpt = Adam<CNN_PARAMS>;
/// Everything [`run_cnn`] needs for training; a `static` on the device (about 98 KB).
pub type CnnTrainer = Trainer<CnnNet, CnnOpt>;
/// Bytes of the CNN's weights file.
pub const CNN_WEIGHTS_LEN: usize = file_len::<CnnNet>();
/// Training images of the MNIST slice the firmware trains on (the first of the shipped
/// training subset).
pub const CNN_TRAIN_IMAGES: usize = 1000;
/// Test images of the MNIST slice (the first of the shipped test subset).
pub const CNN_TEST_IMAGES: usize = 200;
/// Most epochs a run records.
pub const MAX_EPOCHS: usize = 16;

/// How [`run`] trains and measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RunConfig {
    /// Passes over the training set (at most [`MAX_EPOCHS`]).
    pub epochs: u32,
    /// Samples per optimizer step.
    pub batch_size: usize,
    /// Seed of the initial weights and of the shuffling.
    pub seed: u64,
    /// Where the weights file goes in the flash (a multiple of its erase size).
    pub storage_offset: u32,
    /// How long the LED stays in each state after an epoch, in milliseconds.
    pub blink_ms: u32,
    /// Samples trained one at a time (batch 1) to count instructions per step.
    pub bench_samples: usize,
}

impl RunConfig {
    /// The run the firmware does and the simulator checks: 3 epochs, batch 32, seed 7.
    pub const STANDARD: RunConfig =
        RunConfig { epochs: 3, batch_size: 32, seed: 7, storage_offset: 0, blink_ms: 50, bench_samples: 64 };
    /// The CNN run ([`run_cnn`]): 3 epochs, batch 32, seed 7, 16 single-sample steps counted.
    pub const CNN: RunConfig = RunConfig { bench_samples: 16, ..RunConfig::STANDARD };
    /// The 1-D run (`qemu_waves`): 10 epochs, batch 32, seed 7, 16 single-sample steps counted.
    pub const WAVES: RunConfig = RunConfig { epochs: 10, bench_samples: 16, ..RunConfig::STANDARD };
}

/// The two halves of the MNIST slice, packed ([`mnist`]).
#[derive(Debug, Clone, Copy)]
pub struct MnistSlice<'a> {
    /// Training images.
    pub train: PackedMnist<'a>,
    /// Test images.
    pub test: PackedMnist<'a>,
}

impl<'a> MnistSlice<'a> {
    /// Reads both packed sets.
    ///
    /// # Errors
    /// As [`PackedMnist::new`].
    pub fn new(train: &'a [u8], test: &'a [u8]) -> Result<Self, tinytrain::Error> {
        Ok(MnistSlice { train: PackedMnist::new(train)?, test: PackedMnist::new(test)? })
    }
}

/// The two halves of the digits set, packed ([`digits`]).
#[derive(Debug, Clone, Copy)]
pub struct Digits<'a> {
    /// Training images (1,437 in the shipped set).
    pub train: PackedDigits<'a>,
    /// Test images (360).
    pub test: PackedDigits<'a>,
}

impl<'a> Digits<'a> {
    /// Reads both packed sets.
    ///
    /// # Errors
    /// As [`PackedDigits::new`].
    pub fn new(train: &'a [u8], test: &'a [u8]) -> Result<Self, tinytrain::Error> {
        Ok(Digits { train: PackedDigits::new(train)?, test: PackedDigits::new(test)? })
    }
}

/// Counts retired instructions (the QEMU board: SysTick under `-icount`). Boards that do not
/// count return 0.
pub trait Counter {
    /// Instructions since some fixed point; never decreases.
    fn now(&mut self) -> u64;
}

/// No counting.
impl Counter for () {
    fn now(&mut self) -> u64 {
        0
    }
}

/// What the app runs on: a status LED, a delay, flash for the weights file and an
/// instruction counter.
#[derive(Debug)]
pub struct Board<L, D, F, C> {
    /// Status LED, toggled after every epoch.
    pub led: L,
    /// Delay for the LED blink.
    pub delay: D,
    /// NOR flash that receives the weights file.
    pub flash: F,
    /// Instruction counter.
    pub counter: C,
}

/// One epoch's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EpochRecord {
    /// Epoch number, from 1.
    pub epoch: u32,
    /// Mean training loss.
    pub loss: f32,
    /// Training accuracy.
    pub accuracy: f32,
    /// Instructions the epoch took (0 when not counted).
    pub instructions: u64,
}

impl EpochRecord {
    const ZERO: EpochRecord = EpochRecord { epoch: 0, loss: 0.0, accuracy: 0.0, instructions: 0 };

    /// The loss as raw bits, for exact comparison.
    #[must_use]
    pub fn loss_bits(&self) -> u32 {
        self.loss.to_bits()
    }
}

/// What a run found.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Outcome {
    /// Epochs run.
    pub epochs_run: u32,
    /// Per-epoch figures; the first `epochs_run` are valid.
    pub epochs: [EpochRecord; MAX_EPOCHS],
    /// Loss and accuracy on the test set.
    pub test: Eval,
    /// Bytes of the weights file.
    pub weights_len: u32,
    /// CRC-32 (ISO-HDLC) of the whole weights file as read back from flash. The file ends
    /// with the CRC-32 of the bytes before it, so this is the CRC-32 residue `0x2144df1c` for
    /// every intact file: it shows that the file read back intact, not which weights it holds.
    pub weights_crc: u32,
    /// CRC-32 of the weights file without its 4-byte CRC trailer (header and parameters): the
    /// value that differs when any weight differs.
    pub params_crc: u32,
    /// LED toggles.
    pub led_toggles: u32,
    /// Training samples per epoch.
    pub train_samples: u32,
    /// Instructions per training sample at the configured batch size (mean over all epochs:
    /// loading, forward, backward and the optimizer step amortised over the batch).
    pub instructions_per_sample: u64,
    /// Instructions per training sample at batch 1 (an optimizer step after every sample).
    pub instructions_per_sample_batch1: u64,
    /// Instructions per inference: forward pass and argmax of an image already in RAM.
    pub instructions_per_inference: u64,
    /// Instructions to unpack one test image from flash into the input tensor.
    pub instructions_per_unpack: u64,
    /// Instructions per test sample of the evaluation (inference plus the loss).
    pub instructions_per_eval: u64,
}

impl Outcome {
    /// The records of the epochs run.
    #[must_use]
    pub fn epochs(&self) -> &[EpochRecord] {
        &self.epochs[..(self.epochs_run as usize).min(MAX_EPOCHS)]
    }
}

/// Facts known before training starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StartInfo {
    /// Trainable parameters.
    pub params: u32,
    /// Bytes of the [`AppTrainer`].
    pub trainer_bytes: u32,
    /// Training images.
    pub train_samples: u32,
    /// Test images.
    pub test_samples: u32,
    /// Bytes of both packed sets.
    pub dataset_bytes: u32,
    /// The run's configuration.
    pub config: RunConfig,
}

/// Where the app's progress goes: defmt on a device, the terminal or a test on the host.
/// Every method has a default that does nothing.
pub trait Report {
    /// Before training.
    fn start(&mut self, _info: &StartInfo) {}
    /// After each epoch.
    fn epoch(&mut self, _record: &EpochRecord) {}
    /// After the weights file was written and read back.
    fn saved(&mut self, _len: u32, _crc: u32) {}
    /// At the end.
    fn finish(&mut self, _outcome: &Outcome) {}
}

/// No report.
impl Report for () {}

/// Why a run failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppError {
    /// Training, evaluation, the checkpoint or the flash under it failed
    /// ([`tinytrain::Error::Flash`] carries the flash's error kind).
    Train(tinytrain::Error),
    /// The status LED could not be driven.
    Led,
    /// The configuration asks for something the app cannot do.
    Config(&'static str),
}

impl From<tinytrain::Error> for AppError {
    fn from(e: tinytrain::Error) -> Self {
        AppError::Train(e)
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Train(e) => write!(f, "training: {e}"),
            AppError::Led => f.write_str("status LED: pin error"),
            AppError::Config(what) => write!(f, "configuration: {what}"),
        }
    }
}

impl core::error::Error for AppError {}

#[cfg(feature = "defmt")]
impl defmt::Format for AppError {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            AppError::Train(e) => defmt::write!(f, "training: {}", e),
            AppError::Led => defmt::write!(f, "status LED: pin error"),
            AppError::Config(what) => defmt::write!(f, "configuration: {=str}", what),
        }
    }
}

/// Per-epoch work of [`run`]: count, record, report, blink.
struct EpochHook<'b, L, D, F, C, R> {
    board: &'b mut Board<L, D, F, C>,
    report: &'b mut R,
    records: [EpochRecord; MAX_EPOCHS],
    mark: u64,
    instructions: u64,
    toggles: u32,
    led_on: bool,
    blink_ms: u32,
    led_failed: bool,
}

impl<'b, L, D, F, C, R> EpochHook<'b, L, D, F, C, R> {
    fn new(board: &'b mut Board<L, D, F, C>, report: &'b mut R, mark: u64, blink_ms: u32) -> Self {
        EpochHook {
            board,
            report,
            records: [EpochRecord::ZERO; MAX_EPOCHS],
            mark,
            instructions: 0,
            toggles: 0,
            led_on: false,
            blink_ms,
            led_failed: false,
        }
    }
}

/// What every run does first: checks the epoch count, reports the facts known before
/// training (network `N` trained with Adam on `train`, evaluated on `test`), LED off.
fn start<N: Layer, const P: usize, S, R: Report>(
    board: &mut Board<impl OutputPin, impl DelayNs, impl NorFlash, impl Counter>,
    train: &S,
    test: &S,
    cfg: &RunConfig,
    report: &mut R,
) -> Result<(), AppError>
where
    S: Dataset<N::Input, usize> + PackedSet,
{
    if cfg.epochs as usize > MAX_EPOCHS {
        return Err(AppError::Config("more epochs than MAX_EPOCHS"));
    }
    report.start(&StartInfo {
        params: N::NUM_PARAMS as u32,
        trainer_bytes: core::mem::size_of::<Trainer<N, Adam<P>>>() as u32,
        train_samples: train.len() as u32,
        test_samples: test.len() as u32,
        dataset_bytes: (train.packed_bytes() + test.packed_bytes()) as u32,
        config: *cfg,
    });
    board.led.set_low().map_err(|_| AppError::Led)
}

impl<L: OutputPin, D: DelayNs, F, C: Counter, R: Report> Callback for EpochHook<'_, L, D, F, C, R> {
    fn on_epoch_end(&mut self, stats: &EpochStats) -> Control {
        let spent = self.board.counter.now().saturating_sub(self.mark);
        self.instructions += spent;
        let record = EpochRecord {
            epoch: stats.epoch,
            loss: stats.train_loss,
            accuracy: stats.train_accuracy,
            instructions: spent,
        };
        if let Some(slot) = self.records.get_mut(stats.epoch as usize - 1) {
            *slot = record;
        }
        self.report.epoch(&record);
        self.led_on = !self.led_on;
        let set = if self.led_on { self.board.led.set_high() } else { self.board.led.set_low() };
        self.led_failed |= set.is_err();
        self.toggles += 1;
        self.board.delay.delay_ms(self.blink_ms);
        // Logging and blinking are not part of the next epoch's count.
        self.mark = self.board.counter.now();
        Control::Continue
    }
}

/// CRC-32 of the model's weights file, and of the file without its CRC trailer (header and
/// parameters), streamed (no buffer of its size). The second is the trailer itself: the file
/// ends with the CRC-32 of the bytes before it.
fn weights_crc<M: Layer>(model: &M) -> Result<(u32, u32), tinytrain::Error> {
    let body = file_len::<M>() - 4;
    let (mut file, mut trailer, mut at) = (CRC32.digest(), [0u8; 4], 0usize);
    checkpoint::stream(model, &mut |piece| {
        file.update(piece);
        for (i, &b) in piece.iter().enumerate().skip(body.saturating_sub(at)) {
            if let Some(t) = trailer.get_mut(at + i - body) {
                *t = b;
            }
        }
        at += piece.len();
    })?;
    Ok((file.finalize(), u32::from_le_bytes(trailer)))
}

/// Trains, evaluates, saves and measures, as the module docs say.
///
/// `trainer` must be fresh ([`AppTrainer::ZERO`](Trainer::ZERO)). The weights go to a
/// power-safe two-slot [`CheckpointStore`] at `cfg.storage_offset`: a power cut during the
/// save leaves the previous checkpoint loadable.
///
/// # Errors
/// [`AppError::Config`] for more than [`MAX_EPOCHS`] epochs; [`AppError::Train`] for a
/// training, checkpoint or flash error, or a checkpoint that does not read back; [`AppError::Led`]
/// for a pin error.
pub fn run<L, D, F, C, R>(
    board: &mut Board<L, D, F, C>,
    trainer: &mut AppTrainer,
    data: &Digits<'_>,
    cfg: &RunConfig,
    report: &mut R,
) -> Result<Outcome, AppError>
where
    L: OutputPin,
    D: DelayNs,
    F: NorFlash,
    C: Counter,
    R: Report,
{
    run_net(board, trainer, &data.train, &data.test, cfg, report)
}

/// [`run`] for [`CnnNet`] on a slice of MNIST: trains, evaluates, saves and measures.
///
/// `trainer` must be fresh ([`CnnTrainer::ZERO`](Trainer::ZERO)).
///
/// # Errors
/// As [`run`].
pub fn run_cnn<L, D, F, C, R>(
    board: &mut Board<L, D, F, C>,
    trainer: &mut CnnTrainer,
    data: &MnistSlice<'_>,
    cfg: &RunConfig,
    report: &mut R,
) -> Result<Outcome, AppError>
where
    L: OutputPin,
    D: DelayNs,
    F: NorFlash,
    C: Counter,
    R: Report,
{
    run_net(board, trainer, &data.train, &data.test, cfg, report)
}

/// The 1-D network the `qemu_waves` firmware trains with [`run_net`].
pub type WavesNet = WavesCnn1d;
/// Its trainable parameters.
pub const WAVES_PARAMS: usize = <WavesNet as Layer>::NUM_PARAMS;
/// Adam sized for it.
pub type WavesOpt = Adam<WAVES_PARAMS>;
/// Everything [`run_net`] needs to train [`WavesNet`] (about 52 KB).
pub type WavesTrainer = Trainer<WavesNet, WavesOpt>;
/// Bytes of its weights file.
pub const WAVES_WEIGHTS_LEN: usize = file_len::<WavesNet>();
/// Training signals baked into the `qemu_waves` firmware (the first of the shipped set).
pub const WAVES_TRAIN_SIGNALS: usize = 1000;
/// Test signals baked into it.
pub const WAVES_TEST_SIGNALS: usize = 200;

impl PackedSet for PackedWaves<'_> {
    fn packed_bytes(&self) -> usize {
        PackedWaves::packed_bytes(self)
    }
}

/// Packed data sets that report their size in flash.
pub trait PackedSet {
    /// Bytes of packed data.
    fn packed_bytes(&self) -> usize;
}

impl PackedSet for PackedDigits<'_> {
    fn packed_bytes(&self) -> usize {
        PackedDigits::packed_bytes(self)
    }
}

impl PackedSet for PackedMnist<'_> {
    fn packed_bytes(&self) -> usize {
        PackedMnist::packed_bytes(self)
    }
}

/// The app for any classifier `N` trained with Adam on `train` (cross-entropy, 10 classes or
/// any other count), evaluated on `test`: what [`run`] and [`run_cnn`] do.
///
/// # Errors
/// As [`run`].
pub fn run_net<N, const P: usize, S, L, D, F, C, R>(
    board: &mut Board<L, D, F, C>,
    trainer: &mut Trainer<N, Adam<P>>,
    train: &S,
    test: &S,
    cfg: &RunConfig,
    report: &mut R,
) -> Result<Outcome, AppError>
where
    N: Layer,
    CrossEntropy: Loss<N::Output, Target = usize>,
    S: Dataset<N::Input, usize> + PackedSet,
    L: OutputPin,
    D: DelayNs,
    F: NorFlash,
    C: Counter,
    R: Report,
{
    start::<N, P, S, _>(board, train, test, cfg, report)?;

    // Train.
    trainer.model.init(&mut Rng::new(cfg.seed));
    let adam = AdamConfig::default();
    let mark = board.counter.now();
    let mut hook = EpochHook::new(&mut *board, &mut *report, mark, cfg.blink_ms);
    let fitted = trainer
        .fit(&adam, &CrossEntropy, train)
        .epochs(cfg.epochs)
        .batch_size(cfg.batch_size)
        .seed(cfg.seed)
        .callback(&mut hook)
        .run()?;
    let EpochHook { records, instructions: train_instructions, toggles, led_failed, .. } = hook;
    if led_failed {
        return Err(AppError::Led);
    }

    // Evaluate.
    let mark = board.counter.now();
    let test_eval = trainer.evaluate(&CrossEntropy, test)?;
    let eval_instructions = board.counter.now().saturating_sub(mark);

    // Save to the newer slot, read back the newest valid checkpoint (CRC checked), check.
    let store = CheckpointStore::<N>::new(&board.flash, cfg.storage_offset)?;
    let (_, seq) = store.save(&mut board.flash, &trainer.model)?;
    if store.load(&mut board.flash, &mut trainer.model)? != Some(seq) {
        return Err(AppError::Train(tinytrain::Error::InvalidConfig("the saved checkpoint did not read back")));
    }
    let len = file_len::<N>();
    let (crc, params_crc) = weights_crc(&trainer.model)?;
    report.saved(len as u32, crc);

    // Count instructions: inference over the test set, then single-sample training steps.
    let mut target = 0usize;
    let mut agree = 0usize;
    let mark = board.counter.now();
    for i in 0..test.len() {
        trainer.load_sample(test, i, &mut target)?;
    }
    let unpack_instructions = board.counter.now().saturating_sub(mark);
    let mark = board.counter.now();
    for i in 0..test.len() {
        trainer.load_sample(test, i, &mut target)?;
        agree += usize::from(argmax(trainer.infer().flat()) == target);
    }
    // The same loop without the forward pass was counted just before.
    let inference_instructions = board.counter.now().saturating_sub(mark).saturating_sub(unpack_instructions);
    if agree != test_eval.correct {
        return Err(AppError::Train(tinytrain::Error::InvalidConfig("inference disagrees with evaluation")));
    }
    let bench = cfg.bench_samples.min(train.len());
    let mut mode = Mode::Train(Rng::new(cfg.seed));
    let mark = board.counter.now();
    for i in 0..bench {
        trainer.load_sample(train, i, &mut target)?;
        trainer.train_step(&adam, &CrossEntropy, &target, &mut mode)?;
    }
    let batch1_instructions = board.counter.now().saturating_sub(mark);
    // Leave the device with the weights it saved.
    store.load(&mut board.flash, &mut trainer.model)?;

    let samples = (train.len() as u64).saturating_mul(u64::from(fitted.epochs_run)).max(1);
    let outcome = Outcome {
        epochs_run: fitted.epochs_run,
        epochs: records,
        test: test_eval,
        weights_len: len as u32,
        weights_crc: crc,
        params_crc,
        led_toggles: toggles,
        train_samples: train.len() as u32,
        instructions_per_sample: train_instructions / samples,
        instructions_per_sample_batch1: batch1_instructions / (bench as u64).max(1),
        instructions_per_inference: inference_instructions / (test.len() as u64).max(1),
        instructions_per_unpack: unpack_instructions / (test.len() as u64).max(1),
        instructions_per_eval: eval_instructions / (test.len() as u64).max(1),
    };
    report.finish(&outcome);
    Ok(outcome)
}
