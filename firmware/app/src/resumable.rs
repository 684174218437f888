//! Training that survives power cuts: [`run_resumable`] saves a training checkpoint (weights,
//! optimizer state, where the run is) to a power-safe [`TrainingStore`] every few optimizer
//! steps, and a boot that finds one goes on from it. The run ends with the same weights, bit
//! for bit, however often power was cut: the resumed steps are the very steps an uninterrupted
//! run takes ([`Trainer::fit_from`]).
//!
//! Flash layout from `cfg.storage_offset`: the weights [`CheckpointStore`] (two slots), then
//! the [`TrainingStore`] (two slots). When training is over the last training checkpoint says
//! so, and the weights file is written; a boot after that only evaluates and rewrites it.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use embedded_storage::nor_flash::NorFlash;
use tinytrain::checkpoint::{CRC32, file_len};
use tinytrain::data::Dataset;
use tinytrain::prelude::*;
use tinytrain::storage::{CheckpointStore, TrainingStore};
use tinytrain::train::{Eval, FitState};

use crate::{AppError, Board, Counter, EpochHook, EpochRecord, MAX_EPOCHS, PackedSet, Report, RunConfig};

/// Default optimizer steps between two training checkpoints.
pub const CHECKPOINT_EVERY: u32 = 16;

/// What one boot of [`run_resumable`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Resumed {
    /// Sequence number of the training checkpoint this boot went on from (`None`: a fresh
    /// start).
    pub resumed_from: Option<u32>,
    /// Optimizer steps done before this boot (from the checkpoint).
    pub steps_before: u32,
    /// Optimizer steps this boot did.
    pub steps: u32,
    /// Training checkpoints this boot saved.
    pub checkpoints: u32,
    /// Epochs that ended during this boot; the first `epochs_run` records are valid.
    pub epochs_run: u32,
    /// Their records.
    pub epochs: [EpochRecord; MAX_EPOCHS],
    /// Loss and accuracy on the test set.
    pub test: Eval,
    /// Bytes of the weights file.
    pub weights_len: u32,
    /// CRC-32 of the weights file as read back (the residue, as in [`crate::Outcome`]).
    pub weights_crc: u32,
    /// CRC-32 of the weights file without its trailer: differs when any weight differs.
    pub params_crc: u32,
    /// Bytes of a training checkpoint.
    pub checkpoint_bytes: u32,
    /// Bytes of flash the two training slots take.
    pub checkpoint_flash: u32,
    /// Instructions per training checkpoint saved (erase, write, commit; 0 when not counted).
    pub instructions_per_checkpoint: u64,
}

impl Resumed {
    /// The records of the epochs that ended during this boot.
    #[must_use]
    pub fn epochs(&self) -> &[EpochRecord] {
        &self.epochs[..(self.epochs_run as usize).min(MAX_EPOCHS)]
    }
}

/// How a boot of [`run_resumable`] ended.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[allow(clippy::large_enum_variant)] // returned once per boot; no heap to box it in
pub enum Boot {
    /// Training is over, the weights file is written and read back.
    Finished(Resumed),
    /// Power was cut (as `cut_after_steps` asked) after this many steps of this boot; nothing
    /// was saved since the last training checkpoint.
    PowerCut {
        /// Steps this boot did before the cut.
        steps: u32,
    },
}

/// The hash of the settings a training checkpoint belongs to: a checkpoint of another seed,
/// batch size or epoch count is not resumed.
#[must_use]
pub fn settings_hash(cfg: &RunConfig) -> u32 {
    let mut d = CRC32.digest();
    d.update(&cfg.seed.to_le_bytes());
    d.update(&(cfg.batch_size as u64).to_le_bytes());
    d.update(&cfg.epochs.to_le_bytes());
    d.finalize()
}

/// The training store's place in flash: just after the weights store at `cfg.storage_offset`.
///
/// # Errors
/// As [`CheckpointStore::new`] and [`TrainingStore::new`].
pub fn stores<N: Layer, O: Optimizer, F: NorFlash>(
    flash: &F,
    cfg: &RunConfig,
) -> Result<(CheckpointStore<N>, TrainingStore<N, O>), tinytrain::Error> {
    let weights = CheckpointStore::<N>::new(flash, cfg.storage_offset)?;
    let training = TrainingStore::new(flash, weights.slot_offset(1) + weights.slot_size() as u32)?;
    Ok((weights, training))
}

/// Trains `N` with Adam as [`crate::run_net`] does (same seed, batches, losses and weights), but
/// resumable: a training checkpoint goes to flash every `every` optimizer steps, and a boot
/// that finds one goes on from it. Then evaluates on `test` and writes the weights file.
///
/// `trainer` must be fresh ([`Trainer::ZERO`]), as after a reset. `cut_after_steps` is for
/// power-cut tests: the boot stops after that many optimizer steps as if power were lost
/// (nothing saved since the last checkpoint) and returns [`Boot::PowerCut`]; `None` on a real
/// device.
///
/// # Errors
/// [`AppError::Config`] for more than [`MAX_EPOCHS`] epochs or `every` 0; [`AppError::Train`]
/// for a training, checkpoint or flash error (a flash that loses power mid-write gives one: the
/// next boot resumes from the last complete checkpoint); [`AppError::Led`] for a pin error.
#[allow(clippy::too_many_lines)] // one boot, top to bottom
pub fn run_resumable<N, const P: usize, S, L, D, F, C, R>(
    board: &mut Board<L, D, F, C>,
    trainer: &mut Trainer<N, Adam<P>>,
    train: &S,
    test: &S,
    cfg: &RunConfig,
    every: u32,
    cut_after_steps: Option<u32>,
    report: &mut R,
) -> Result<Boot, AppError>
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
    if every == 0 {
        return Err(AppError::Config("checkpoint interval of 0 steps"));
    }
    let (weights, store) = stores::<N, Adam<P>, F>(&board.flash, cfg)?;
    let settings = settings_hash(cfg);
    crate::start::<N, P, S, _>(board, train, test, cfg, report)?;

    // Go on from the newest training checkpoint, or start as `run_net` does.
    let mut state = FitState::new();
    let resumed_from = store.load(&mut board.flash, trainer, &mut state, settings)?;
    if resumed_from.is_none() {
        trainer.model.init(&mut Rng::new(cfg.seed));
    }
    let steps_before = trainer.opt.steps();
    let adam = AdamConfig::default();
    let fit = FitConfig { epochs: cfg.epochs, batch_size: cfg.batch_size, seed: cfg.seed, ..FitConfig::default() };
    let mark = board.counter.now();
    let mut hook = EpochHook::new(&mut *board, &mut *report, mark, cfg.blink_ms);
    let (mut checkpoints, mut save_instructions) = (0u32, 0u64);
    while !state.over {
        let done = trainer.opt.steps().wrapping_sub(steps_before);
        let chunk = match cut_after_steps {
            Some(cut) if cut <= done => return Ok(Boot::PowerCut { steps: done }),
            Some(cut) => every.min(cut - done),
            None => every,
        };
        let finished = trainer.fit_from(
            &mut state,
            &adam,
            &CrossEntropy,
            train,
            None::<&S>,
            &fit,
            None,
            &mut (),
            &mut hook,
            Some(chunk),
        )?;
        let done = trainer.opt.steps().wrapping_sub(steps_before);
        if finished.is_none() && cut_after_steps.is_some_and(|cut| cut <= done) {
            return Ok(Boot::PowerCut { steps: done });
        }
        // The last checkpoint marks the run as over: a later boot does not train again.
        let before = hook.board.counter.now();
        store.save(&mut hook.board.flash, trainer, &state, settings)?;
        save_instructions += hook.board.counter.now().saturating_sub(before);
        checkpoints += 1;
        // Saving is not part of the epoch's instruction count.
        hook.mark += hook.board.counter.now().saturating_sub(before);
    }
    let EpochHook { records, led_failed, .. } = hook;
    if led_failed {
        return Err(AppError::Led);
    }
    let epochs_run = records.iter().filter(|r| r.epoch > 0).count() as u32;

    let test_eval = trainer.evaluate(&CrossEntropy, test)?;
    let (_, seq) = weights.save(&mut board.flash, &trainer.model)?;
    if weights.load(&mut board.flash, &mut trainer.model)? != Some(seq) {
        return Err(AppError::Train(tinytrain::Error::InvalidConfig("the saved checkpoint did not read back")));
    }
    let (crc, params_crc) = crate::weights_crc(&trainer.model)?;
    let len = file_len::<N>() as u32;
    report.saved(len, crc);
    // The epoch records of this boot, first ones first.
    let mut epochs = [EpochRecord::ZERO; MAX_EPOCHS];
    for (slot, r) in epochs.iter_mut().zip(records.iter().filter(|r| r.epoch > 0)) {
        *slot = *r;
    }
    Ok(Boot::Finished(Resumed {
        resumed_from,
        steps_before,
        steps: trainer.opt.steps().wrapping_sub(steps_before),
        checkpoints,
        epochs_run,
        epochs,
        test: test_eval,
        weights_len: len,
        weights_crc: crc,
        params_crc,
        checkpoint_bytes: TrainingStore::<N, Adam<P>>::PAYLOAD_LEN as u32,
        checkpoint_flash: 2 * store.slot_size() as u32,
        instructions_per_checkpoint: save_instructions / u64::from(checkpoints.max(1)),
    }))
}
