//! Fine-tuning on the device ([`run_finetune`]): a frozen int8 backbone in flash (the
//! convolutional part of `mnist-cnn-tiny`, pre-trained in the simulator and quantised), an f32
//! head `Dense<216, 10>` trained in RAM with SGD and momentum, and labelled images that arrive
//! from a timer interrupt through a `heapless::spsc::Queue`.
//!
//! The interrupt ([`Feeder::tick`]) unpacks the next image from flash, applies the scenario's
//! domain shift ([`Shift`]), quantises it with the backbone's input table and offers it to the
//! queue; a full queue drops it and counts it ([`Inlet`]). The training loop takes images from
//! the queue, runs the backbone once per image, keeps the int8 features in a replay buffer
//! ([`HeadReplay`], the [`REPLAY`] most recent) and every `new_per_step` new images takes an
//! optimizer step on them and `replay_per_step` features drawn from the buffer, so a replayed
//! sample costs no backbone pass. The head, its optimizer state and the loop's position go to a
//! power-safe [`TrainingStore`] every `checkpoint_every` steps and at the end; the backbone is
//! never written.
//!
//! The same function runs in the Cortex-M firmware (`qemu_finetune`, `qemu_finetune_shift`:
//! the interrupt is the CMSDK timer) and in the simulator (`tinytrain-sim finetune`: the
//! "interrupt" is [`Arrivals::wait`] delivering the next image): the two agree bit for bit as
//! long as no sample is dropped, which the outcome reports.
//!
//! Why SGD with momentum and not Adam: the head has 2,170 parameters (8,680 B); Adam keeps two
//! state values per parameter, so weights, gradients and Adam are 4 x 8,680 B = 34,720 B, which
//! with the replay buffer, the queue and the stack does not fit 40,000 B. Momentum keeps one:
//! 3 x 8,680 B.
//!
//! ```
//! use tinytrain_firmware_app::finetune::{FineTuneSummary, Sample, SampleQueue, Tuner, QUEUE_SLOTS};
//! let s = FineTuneSummary::new("head", core::mem::size_of::<SampleQueue>(), QUEUE_SLOTS);
//! assert_eq!(s.head.trainable, 2170);
//! assert!(core::mem::size_of::<Tuner<'static>>() < 28_000);
//! assert!(s.static_bytes() < 33_000);
//! assert_eq!(core::mem::size_of::<Sample>(), 785);
//! ```

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use embedded_storage::nor_flash::NorFlash;
use heapless::spsc::{Consumer, Queue};
use tinytrain::checkpoint::file_len;
use tinytrain::finetune::{
    Backbone, Feature, FineTuner, Inlet, Int8Conv2dValid, Int8MaxPool2d, Replay, StreamCounters,
};
use tinytrain::int8::Int8Chain;
use tinytrain::prelude::*;
use tinytrain::storage::TrainingStore;
use tinytrain::tensor::argmax;
use tinytrain::train::{Eval, FitState};

use crate::mnist::{PIXELS, PackedMnist};
use crate::{AppError, Board, Counter, EpochRecord, MAX_EPOCHS, Outcome, Report, StartInfo, weights_crc};

/// Training images of the shipped `mnist8k` subset the backbones are pre-trained on (the
/// first ones); the stream starts after them.
pub const STREAM_FIRST: usize = 6000;
/// Images of the stream (packed in flash).
pub const STREAM_IMAGES: usize = 1000;
/// Test images in flash (the first of `mnist2k-test`).
pub const TEST_IMAGES: usize = 500;

/// Features the backbone gives (24 channels of 3 x 3, NHWC).
pub const FEATURES: usize = 216;
/// Classes.
pub const CLASSES: usize = 10;
/// conv 1 -> 6, 4 x 4, stride 2, fused ReLU: 28 x 28 -> 13 x 13.
pub type Conv1<'a> = Int8Conv2dValid<'a, 28, 28, 1, 6, 4, 2, 13, 13, 14, 2>;
/// conv 6 -> 24, 3 x 3, stride 2, fused ReLU: 13 x 13 -> 6 x 6.
pub type Conv2<'a> = Int8Conv2dValid<'a, 13, 13, 6, 24, 3, 2, 6, 6, 39, 9>;
/// max-pool 2 x 2: 6 x 6 -> 3 x 3.
pub type Pool = Int8MaxPool2d<24, 2, 6, 6, 3, 3>;
/// The backbone's layers: `mnist-cnn-tiny` up to the flatten.
pub type BackboneLayers<'a> = Int8Chain<Int8Chain<Conv1<'a>, Conv2<'a>, 1014>, Pool, 864>;
/// The int8 backbone with its input and feature quantisation.
pub type MnistBackbone<'a> = Backbone<'a, BackboneLayers<'a>, PIXELS, FEATURES>;
/// The trainable head.
pub type Head = Dense<FEATURES, CLASSES>;
/// Its parameters.
pub const HEAD_PARAMS: usize = <Head as Layer>::NUM_PARAMS;
/// Its optimizer (see the module docs for why not Adam).
pub type HeadOpt = Momentum<HEAD_PARAMS>;
/// The backbone and the head's trainer.
pub type Tuner<'b> = FineTuner<'b, BackboneLayers<'b>, Head, HeadOpt, PIXELS, FEATURES>;
/// Features the replay buffer keeps.
pub const REPLAY: usize = 16;
/// The replay buffer.
pub type HeadReplay = Replay<FEATURES, REPLAY>;
/// Slots of the sample queue (it holds one less).
pub const QUEUE_SLOTS: usize = 3;
/// The sample queue between the interrupt and the training loop.
pub type SampleQueue = Queue<Sample, QUEUE_SLOTS>;
/// The memory budget.
pub type FineTuneSummary =
    tinytrain::finetune::FineTuneSummary<BackboneLayers<'static>, Head, HeadOpt, PIXELS, FEATURES, REPLAY>;
/// A head from the raw bits of its weights and biases (what the generated statics hold).
#[must_use]
pub const fn head_from_bits(weight: &[[u32; FEATURES]; CLASSES], bias: &[u32; CLASSES]) -> Head {
    let mut head = Head::ZERO;
    let mut o = 0;
    while o < CLASSES {
        let mut i = 0;
        while i < FEATURES {
            head.weight[o][i] = f32::from_bits(weight[o][i]);
            i += 1;
        }
        head.bias[o] = f32::from_bits(bias[o]);
        o += 1;
    }
    head
}

/// Largest batch: new plus replayed samples.
pub const MAX_BATCH: usize = 16;

/// A labelled image as the interrupt queues it: already quantised with the backbone's input
/// table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The quantised pixels, row-major.
    pub q: [i8; PIXELS],
    /// The class.
    pub label: u8,
}

/// The domain shift a scenario applies to every image (stream and test set alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Shift {
    /// The images as they are.
    None,
    /// Rotated by 30 degrees anticlockwise about the centre, nearest neighbour.
    Rotate30,
}

/// Where each pixel of an image rotated by the angle of `cos_q14`, `sin_q14` (Q14) comes from:
/// `u16::MAX` for pixels outside the source (they read 0).
#[must_use]
pub const fn rotation_map(cos_q14: i32, sin_q14: i32) -> [u16; PIXELS] {
    let mut map = [u16::MAX; PIXELS];
    let mut y = 0;
    while y < 28 {
        let mut x = 0;
        while x < 28 {
            // Twice the coordinates relative to the centre (13.5, 13.5): odd integers.
            let (u, v) = (2 * x - 27, 2 * y - 27);
            // The source of (u, v) is (u, v) rotated back.
            let su = cos_q14 * u - sin_q14 * v;
            let sv = sin_q14 * u + cos_q14 * v;
            // Back to pixel indices, rounded: (s / 2^14 + 27) / 2.
            let sx = (su + 27 * (1 << 14) + (1 << 14)) >> 15;
            let sy = (sv + 27 * (1 << 14) + (1 << 14)) >> 15;
            if sx >= 0 && sx < 28 && sy >= 0 && sy < 28 {
                map[(y * 28 + x) as usize] = (sy * 28 + sx) as u16;
            }
            x += 1;
        }
        y += 1;
    }
    map
}

/// The 30-degree rotation: cos 30 = 14189 / 2^14, sin 30 = 8192 / 2^14.
pub static ROTATE_30: [u16; PIXELS] = rotation_map(14_189, 8_192);

impl Shift {
    /// Where each pixel comes from ([`rotation_map`]), or `None` for the images as they are.
    #[must_use]
    pub fn map(self) -> Option<&'static [u16; PIXELS]> {
        match self {
            Shift::None => None,
            Shift::Rotate30 => Some(&ROTATE_30),
        }
    }
}

/// The interrupt's work: each [`Feeder::tick`] unpacks the next stream image from flash,
/// shifts and quantises it, and offers it to the queue; after the last one it closes the
/// stream.
#[derive(Debug, Clone, Copy)]
pub struct Feeder<'d> {
    /// The packed images.
    pub data: PackedMnist<'d>,
    /// The next image to offer.
    pub next: u32,
    /// One past the last image to offer.
    pub end: u32,
    /// The scenario's shift.
    pub shift: Shift,
    /// The backbone's input table.
    pub input_lut: &'d [i8; 256],
}

impl Feeder<'_> {
    /// Offers the next image (dropped and counted if the queue is full); closes the stream
    /// after the last. Returns `false` once the stream is closed.
    pub fn tick(&mut self, inlet: &mut Inlet<'_, Sample>) -> bool {
        if self.next >= self.end {
            inlet.close();
            return false;
        }
        let mut sample = Sample { q: [0; PIXELS], label: 0 };
        // An image that does not unpack is offered as a blank one with label 0: the interrupt
        // has nowhere to report an error, and the packed set was checked when it was opened.
        sample.label =
            self.data.get_quantized(self.next as usize, self.input_lut, self.shift.map(), &mut sample.q).unwrap_or(0);
        inlet.offer(sample);
        self.next += 1;
        if self.next >= self.end {
            inlet.close();
        }
        true
    }
}

/// How samples arrive.
pub trait Arrivals {
    /// Starts the stream at its image `first` (0, or where a resumed run stopped): the device
    /// starts the timer.
    fn start(&mut self, first: u32);
    /// Waits for the next interrupt: the device idles until the timer fires, the simulator
    /// delivers the next sample.
    fn wait(&mut self);
}

/// A fine-tuning run.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FineTuneConfig {
    /// Index of the first stream image in the packed set.
    pub first: u32,
    /// Images the stream delivers.
    pub stream: u32,
    /// New samples per optimizer step.
    pub new_per_step: usize,
    /// Replayed samples per optimizer step.
    pub replay_per_step: usize,
    /// Learning rate.
    pub lr: f32,
    /// Momentum.
    pub momentum: f32,
    /// Seed of the replay draws.
    pub seed: u64,
    /// Optimizer steps between two head checkpoints.
    pub checkpoint_every: u32,
    /// Optimizer steps per loss record.
    pub record_every: u32,
    /// Test images evaluated before and after.
    pub test: u32,
    /// The domain shift.
    pub shift: Shift,
    /// Where the head's training store goes in the flash.
    pub storage_offset: u32,
    /// How long the LED stays in each state after a record, in milliseconds.
    pub blink_ms: u32,
}

impl FineTuneConfig {
    /// The reference scenario: 1,000 images of all ten classes over the backbone pre-trained
    /// on classes 0-4; 4 new and 4 replayed per step, lr 0.01, momentum 0.9.
    pub const REFERENCE: FineTuneConfig = FineTuneConfig {
        first: 0,
        stream: STREAM_IMAGES as u32,
        new_per_step: 4,
        replay_per_step: 4,
        lr: 0.01,
        momentum: 0.9,
        seed: 7,
        checkpoint_every: 50,
        record_every: 25,
        test: TEST_IMAGES as u32,
        shift: Shift::None,
        storage_offset: 0,
        blink_ms: 10,
    };
    /// The domain-shift scenario: the same stream rotated by 30 degrees, over the backbone
    /// pre-trained on upright images of all ten classes.
    pub const SHIFT: FineTuneConfig = FineTuneConfig { shift: Shift::Rotate30, ..FineTuneConfig::REFERENCE };

    /// The hash of the settings a head checkpoint belongs to.
    #[must_use]
    pub fn settings_hash(&self) -> u32 {
        let mut d = tinytrain::checkpoint::CRC32.digest();
        d.update(b"finetune");
        d.update(&self.first.to_le_bytes());
        d.update(&self.stream.to_le_bytes());
        d.update(&(self.new_per_step as u32).to_le_bytes());
        d.update(&(self.replay_per_step as u32).to_le_bytes());
        d.update(&self.lr.to_bits().to_le_bytes());
        d.update(&self.momentum.to_bits().to_le_bytes());
        d.update(&self.seed.to_le_bytes());
        d.update(&[u8::from(self.shift == Shift::Rotate30)]);
        d.finalize()
    }
}

/// What a fine-tuning run found.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FineTuneOutcome {
    /// The run as the other firmware runs report it: per-record losses (as epochs), the test
    /// set after fine-tuning, the head's weights file CRCs, instructions per sample.
    pub outcome: Outcome,
    /// The test set before fine-tuning (the pre-trained head).
    pub before: Eval,
    /// Samples the interrupt offered.
    pub offered: u32,
    /// Samples it dropped because the queue was full.
    pub dropped: u32,
    /// Samples the training loop took.
    pub consumed: u32,
    /// Optimizer steps.
    pub steps: u32,
    /// Head checkpoints saved.
    pub checkpoints: u32,
    /// Instructions per backbone pass (queue to features in the replay buffer).
    pub instructions_per_backbone: u64,
    /// Instructions per optimizer step (new and replayed samples, the update).
    pub instructions_per_step: u64,
    /// Instructions per head checkpoint.
    pub instructions_per_checkpoint: u64,
    /// Bytes of a head checkpoint.
    pub checkpoint_bytes: u32,
    /// Sequence number of the head checkpoint this boot went on from (`None`: a fresh start).
    pub resumed_from: Option<u32>,
    /// Optimizer steps before this boot (from the checkpoint).
    pub steps_before: u32,
    /// Samples trained on before this boot (from the checkpoint).
    pub consumed_before: u32,
}

/// How a boot of [`run_finetune_boot`] ended.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[allow(clippy::large_enum_variant)] // returned once per boot; no heap to box it in
pub enum FineTuneBoot {
    /// The stream is over, the head saved and evaluated.
    Finished(FineTuneOutcome),
    /// Power was cut (as `cut_after_steps` asked) after this many optimizer steps of this
    /// boot; nothing was saved since the last head checkpoint.
    PowerCut {
        /// Steps this boot did before the cut.
        steps: u32,
    },
}

/// Where a fine-tuning run reports: [`Report`] for the parts all runs share, and the
/// fine-tuning figures. Every method has a default that does nothing.
pub trait FineTuneReport: Report {
    /// After each optimizer step: its number (from 1) and the sequence numbers (order in which
    /// the loop took them, from 0) of the samples it trained on, new ones first.
    fn batch(&mut self, _step: u32, _samples: &[u32]) {}
    /// At the end.
    fn fine_tuned(&mut self, _outcome: &FineTuneOutcome) {}
}

impl FineTuneReport for () {}

/// Evaluates the head over the backbone on the first `n` test images, shifted by `shift`.
///
/// # Errors
/// [`tinytrain::Error::Empty`] for no images; what the packed set or the loss reports.
pub fn evaluate(tuner: &mut Tuner<'_>, test: &PackedMnist<'_>, n: u32, shift: Shift) -> Result<Eval, AppError> {
    let n = (n as usize).min(Dataset::<crate::mnist::Image, usize>::len(test));
    if n == 0 {
        return Err(AppError::Train(tinytrain::Error::Empty));
    }
    let (mut sum, mut correct) = (0.0f64, 0usize);
    let mut q = [0i8; PIXELS];
    for i in 0..n {
        let label = usize::from(test.get_quantized(i, tuner.backbone.input_lut, shift.map(), &mut q)?);
        let mut f = [0i8; FEATURES];
        tuner.backbone.features_quantized(&q, &mut f);
        tuner.load_feature(&f);
        let y = tuner.infer();
        sum += f64::from(CrossEntropy.loss(y, &label)?);
        correct += usize::from(argmax(y) == label);
    }
    Ok(Eval { loss: (sum / n as f64) as f32, accuracy: correct as f32 / n as f32, correct, samples: n })
}

/// Running figures of one record.
#[derive(Debug, Clone, Copy, Default)]
struct Chunk {
    loss_sum: f64,
    counted: u32,
    correct: u32,
    mark: u64,
}

/// Fine-tunes the head of `tuner` on the stream, as the module docs say: evaluates the
/// pre-trained head (`head_init`) on `test`, takes the stream's samples from `consumer` until
/// the interrupt side closes it (`counters`), trains, checkpoints, evaluates again.
///
/// `tuner` and `replay` must be fresh (as after a reset); `arrivals` starts the stream and
/// waits for it.
///
/// # Errors
/// [`AppError::Config`] for a batch of 0 or more than [`MAX_BATCH`] samples, more new samples
/// per step than [`REPLAY`], or more records than [`MAX_EPOCHS`]; [`AppError::Train`] for a
/// data, flash or checkpoint error; [`AppError::Led`] for a pin error.
pub fn run_finetune<L, D, F, C, R, A>(
    board: &mut Board<L, D, F, C>,
    tuner: &mut Tuner<'_>,
    replay: &mut HeadReplay,
    consumer: &mut Consumer<'_, Sample>,
    counters: &StreamCounters,
    arrivals: &mut A,
    head_init: &Head,
    test: &PackedMnist<'_>,
    cfg: &FineTuneConfig,
    report: &mut R,
) -> Result<FineTuneOutcome, AppError>
where
    L: OutputPin,
    D: DelayNs,
    F: NorFlash,
    C: Counter,
    R: FineTuneReport,
    A: Arrivals,
{
    match run_finetune_boot(board, tuner, replay, consumer, counters, arrivals, head_init, test, cfg, None, report)? {
        FineTuneBoot::Finished(outcome) => Ok(outcome),
        FineTuneBoot::PowerCut { .. } => Err(AppError::Config("a power cut without one asked for")),
    }
}

/// One boot of [`run_finetune`]: when the flash holds a head checkpoint of these settings the
/// boot goes on from it (head, velocity, steps, replay draws and stream position; the replay
/// buffer starts empty, and images that arrived after that checkpoint come again), or, if that
/// checkpoint says the stream was over, only evaluates. `cut_after_steps` is for power-cut
/// tests: the boot stops after that many optimizer steps of its own, as if power were lost
/// (nothing saved since the last head checkpoint), and returns [`FineTuneBoot::PowerCut`];
/// `None` on a device.
///
/// # Errors
/// As [`run_finetune`].
#[allow(clippy::too_many_lines)] // one boot, top to bottom
pub fn run_finetune_boot<L, D, F, C, R, A>(
    board: &mut Board<L, D, F, C>,
    tuner: &mut Tuner<'_>,
    replay: &mut HeadReplay,
    consumer: &mut Consumer<'_, Sample>,
    counters: &StreamCounters,
    arrivals: &mut A,
    head_init: &Head,
    test: &PackedMnist<'_>,
    cfg: &FineTuneConfig,
    cut_after_steps: Option<u32>,
    report: &mut R,
) -> Result<FineTuneBoot, AppError>
where
    L: OutputPin,
    D: DelayNs,
    F: NorFlash,
    C: Counter,
    R: FineTuneReport,
    A: Arrivals,
{
    let (k, r) = (cfg.new_per_step, cfg.replay_per_step);
    if k == 0 || k + r > MAX_BATCH || k > REPLAY {
        return Err(AppError::Config("new_per_step must be 1..=REPLAY and the batch at most MAX_BATCH"));
    }
    let max_steps = cfg.stream.div_ceil(k as u32);
    if cfg.record_every == 0 || max_steps.div_ceil(cfg.record_every) as usize > MAX_EPOCHS {
        return Err(AppError::Config("more loss records than MAX_EPOCHS"));
    }
    let store = TrainingStore::<Head, HeadOpt>::new(&board.flash, cfg.storage_offset)?;
    let settings = cfg.settings_hash();
    report.start(&StartInfo {
        params: HEAD_PARAMS as u32,
        trainer_bytes: core::mem::size_of::<Tuner<'static>>() as u32,
        train_samples: cfg.stream,
        test_samples: cfg.test,
        dataset_bytes: test.packed_bytes() as u32,
        config: crate::RunConfig {
            epochs: 1,
            batch_size: k + r,
            seed: cfg.seed,
            storage_offset: cfg.storage_offset,
            blink_ms: cfg.blink_ms,
            bench_samples: 0,
        },
    });
    board.led.set_low().map_err(|_| AppError::Led)?;

    // The pre-trained head, before.
    tuner.trainer.model.copy_from(head_init);
    let mark = board.counter.now();
    let before = evaluate(tuner, test, cfg.test, cfg.shift)?;
    let eval_instructions = board.counter.now().saturating_sub(mark);

    let momentum = MomentumConfig {
        lr: Schedule::Constant(cfg.lr),
        momentum: cfg.momentum,
        nesterov: false,
        form: MomentumForm::Torch,
    };
    // Go on from the newest head checkpoint of these settings, or start.
    let mut state = FitState::new();
    let resumed_from = store.load(&mut board.flash, &mut tuner.trainer, &mut state, settings)?;
    let mut rng = Rng::new(cfg.seed);
    let (mut records_run, mut consumed, mut steps) = (0usize, 0u32, 0u32);
    if resumed_from.is_some() {
        (records_run, consumed, steps) = (state.epoch.saturating_sub(1) as usize, state.counted, state.batch);
        rng = Rng::from_state(state.rng);
    }
    let (consumed_before, steps_before) = (consumed, steps);
    let already_over = resumed_from.is_some() && state.over;
    let mut records = [EpochRecord { epoch: 0, loss: 0.0, accuracy: 0.0, instructions: 0 }; MAX_EPOCHS];
    let mut chunk = Chunk::default();
    let (mut pending, mut checkpoints) = (0usize, 0u32);
    let (mut work, mut backbone_work, mut step_work, mut save_work) = (0u64, 0u64, 0u64, 0u64);
    let (mut toggles, mut led_on) = (0u32, false);
    if !already_over {
        arrivals.start(consumed);
    }
    loop {
        if already_over {
            break;
        }
        let stream_over = counters.is_closed() && !consumer.ready();
        // Work on the sample where it lies in the queue, then free its slot.
        let Some(sample) = consumer.peek() else {
            if stream_over {
                break;
            }
            arrivals.wait();
            continue;
        };
        let t0 = board.counter.now();
        let mut feature = Feature { q: [0; FEATURES], label: sample.label };
        tuner.backbone.features_quantized(&sample.q, &mut feature.q);
        let _ = consumer.dequeue();
        replay.write(feature);
        consumed += 1;
        pending += 1;
        let t1 = board.counter.now();
        backbone_work += t1 - t0;
        let last = counters.is_closed() && !consumer.ready();
        if pending == k || (last && pending > 0) {
            // The batch: the pending new samples, then replayed ones drawn from the buffer.
            let n = pending + r;
            let scale = 1.0 / n as f32;
            let mut seqs = [0u32; MAX_BATCH];
            let len = replay.len() as u32;
            for (j, seq) in seqs.iter_mut().enumerate().take(n) {
                // Sequence numbers of this boot: the buffer started empty with it.
                let local = if j < pending {
                    consumed - consumed_before - pending as u32 + j as u32
                } else {
                    // Slot s holds the newest sample whose number is s modulo REPLAY.
                    let s = rng.below(len);
                    let newest = consumed - consumed_before - 1;
                    newest - (newest + REPLAY as u32 - s) % REPLAY as u32
                };
                *seq = consumed_before + local;
                let slot = (local % REPLAY as u32) as usize;
                let Some(f) = replay.get(slot) else {
                    return Err(AppError::Config("replay slot out of range"));
                };
                let (q, label) = (f.q, usize::from(f.label));
                tuner.load_feature(&q);
                let (loss, correct) = tuner.accumulate(&CrossEntropy, &label, scale)?;
                chunk.loss_sum += f64::from(loss);
                chunk.counted += 1;
                chunk.correct += u32::from(correct);
            }
            tuner.apply(&momentum);
            steps += 1;
            pending = 0;
            report.batch(steps, &seqs[..n]);
            let t2 = board.counter.now();
            step_work += t2 - t1;
            work += t2 - t0;
            let over = last;
            if steps.is_multiple_of(cfg.record_every) || over {
                let record = EpochRecord {
                    epoch: records_run as u32 + 1,
                    loss: (chunk.loss_sum / f64::from(chunk.counted.max(1))) as f32,
                    accuracy: chunk.correct as f32 / chunk.counted.max(1) as f32,
                    instructions: work - chunk.mark,
                };
                if let Some(slot) = records.get_mut(records_run) {
                    *slot = record;
                }
                records_run += 1;
                report.epoch(&record);
                led_on = !led_on;
                let set = if led_on { board.led.set_high() } else { board.led.set_low() };
                set.map_err(|_| AppError::Led)?;
                toggles += 1;
                board.delay.delay_ms(cfg.blink_ms);
                chunk = Chunk { mark: work, ..Chunk::default() };
            }
            if steps.is_multiple_of(cfg.checkpoint_every) || over {
                state.epoch = records_run as u32 + 1;
                state.batch = steps;
                state.rng = rng.state();
                state.counted = consumed;
                state.over = over;
                let before_save = board.counter.now();
                store.save(&mut board.flash, &tuner.trainer, &state, settings)?;
                save_work += board.counter.now().saturating_sub(before_save);
                checkpoints += 1;
            }
            if cut_after_steps.is_some_and(|cut| steps - steps_before >= cut) {
                return Ok(FineTuneBoot::PowerCut { steps: steps - steps_before });
            }
        } else {
            work += t1 - t0;
        }
    }

    // The head as saved: read the last checkpoint back (CRC checked) and evaluate it.
    let mut back = FitState::new();
    if store.load(&mut board.flash, &mut tuner.trainer, &mut back, settings)?.is_none() || back != state {
        return Err(AppError::Train(tinytrain::Error::InvalidConfig("the head checkpoint did not read back")));
    }
    let after = evaluate(tuner, test, cfg.test, cfg.shift)?;
    let (crc, params_crc) = weights_crc(&tuner.trainer.model)?;
    let len = file_len::<Head>() as u32;
    report.saved(len, crc);
    let outcome = Outcome {
        epochs_run: records_run as u32,
        epochs: records,
        test: after,
        weights_len: len,
        weights_crc: crc,
        params_crc,
        led_toggles: toggles,
        train_samples: consumed - consumed_before,
        instructions_per_sample: work / u64::from((consumed - consumed_before).max(1)),
        instructions_per_sample_batch1: 0,
        instructions_per_inference: eval_instructions / u64::from(before.samples.max(1) as u32),
        instructions_per_unpack: 0,
        instructions_per_eval: eval_instructions / u64::from(before.samples.max(1) as u32),
    };
    let fine = FineTuneOutcome {
        outcome,
        before,
        offered: counters.offered(),
        dropped: counters.dropped(),
        consumed: consumed - consumed_before,
        steps: steps - steps_before,
        checkpoints,
        instructions_per_backbone: backbone_work / u64::from((consumed - consumed_before).max(1)),
        instructions_per_step: step_work / u64::from((steps - steps_before).max(1)),
        instructions_per_checkpoint: save_work / u64::from(checkpoints.max(1)),
        checkpoint_bytes: TrainingStore::<Head, HeadOpt>::PAYLOAD_LEN as u32,
        resumed_from,
        steps_before,
        consumed_before,
    };
    report.finish(&outcome);
    report.fine_tuned(&fine);
    Ok(FineTuneBoot::Finished(fine))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_map_turns_about_the_centre() {
        // 0 degrees: the identity.
        let id = rotation_map(1 << 14, 0);
        assert!(id.iter().enumerate().all(|(i, &m)| usize::from(m) == i));
        // 90 degrees: (x, y) takes the pixel at (y, 27 - x) rotated back.
        let quarter = rotation_map(0, 1 << 14);
        assert!(quarter.iter().all(|&m| m != u16::MAX));
        let mut img = [0u8; PIXELS];
        img[3] = 200; // (x 3, y 0)
        let turned: [u8; PIXELS] = core::array::from_fn(|i| img[usize::from(quarter[i])]);
        assert_eq!(turned.iter().filter(|&&p| p > 0).map(|&p| usize::from(p)).sum::<usize>(), 200);
        // Corners of a 30-degree rotation fall outside and read 0.
        assert_eq!(ROTATE_30[0], u16::MAX);
    }
}
