//! The simulated runs of the firmware app: the packed sets, the simulator's interrupt, boots.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The stream, the firmware's test slice and the whole test set, packed as the firmware's
/// `build.rs` packs them.
#[derive(Debug, Clone)]
pub struct FineTuneSets {
    /// The stream's images (training images [`PRETRAIN_IMAGES`]..+[`STREAM_IMAGES`]).
    pub stream: Vec<u8>,
    /// The first [`TEST_IMAGES`] test images.
    pub test: Vec<u8>,
    /// All test images.
    pub test_all: Vec<u8>,
}

fn pack(set: &ImageSet, range: std::ops::Range<usize>) -> Result<Vec<u8>> {
    ensure!(set.len() >= range.end, "{}: {} images, need {}", set.images_path.display(), set.len(), range.end);
    let pixels = &set.pixels[range.start * PIXELS..range.end * PIXELS];
    let mut out = vec![0u8; mnist::packed_len(pixels, range.len())?];
    mnist::pack(pixels, &set.labels[range], &mut out)?;
    Ok(out)
}

/// Loads and packs the fine-tuning sets from `data_dir`.
///
/// # Errors
/// Missing or short data.
pub fn pack_sets(data_dir: &Path) -> Result<FineTuneSets> {
    let data = datasets::load(DatasetKind::Mnist, data_dir)?;
    Ok(FineTuneSets {
        stream: pack(&data.train, PRETRAIN_IMAGES..PRETRAIN_IMAGES + STREAM_IMAGES)?,
        test: pack(&data.test, 0..TEST_IMAGES)?,
        test_all: pack(&data.test, 0..data.test.len())?,
    })
}

/// The simulator's interrupt: every wait delivers the next sample.
struct SimArrivals<'d, 'q> {
    feeder: Feeder<'d>,
    inlet: Inlet<'q, Sample>,
}

impl Arrivals for SimArrivals<'_, '_> {
    fn start(&mut self, first: u32) {
        self.feeder.next = self.feeder.next.saturating_add(first);
    }
    fn wait(&mut self) {
        self.feeder.tick(&mut self.inlet);
    }
}

/// A finished simulated fine-tuning run.
pub struct SimFineTune {
    /// What the app reported.
    pub fine: FineTuneOutcome,
    /// The head after fine-tuning.
    pub head: Box<Head>,
    /// The head's accuracy on all test images (shifted as the scenario says), before and after.
    pub test_all: (Eval, Eval),
    /// The batches: the stream indices each optimizer step trained on.
    pub batches: Vec<Vec<u32>>,
    /// The board as the run left it.
    pub board: SimBoard,
}

/// Records the batches and passes the rest on.
struct Recorder<'r, R> {
    inner: &'r mut R,
    batches: Vec<Vec<u32>>,
}

impl<R: Report> Report for Recorder<'_, R> {
    fn start(&mut self, info: &tinytrain_firmware_app::StartInfo) {
        self.inner.start(info);
    }
    fn epoch(&mut self, record: &EpochRecord) {
        self.inner.epoch(record);
    }
    fn saved(&mut self, len: u32, crc: u32) {
        self.inner.saved(len, crc);
    }
    fn finish(&mut self, outcome: &tinytrain_firmware_app::Outcome) {
        self.inner.finish(outcome);
    }
}

impl<R: FineTuneReport> FineTuneReport for Recorder<'_, R> {
    fn batch(&mut self, step: u32, samples: &[u32]) {
        self.batches.push(samples.to_vec());
        self.inner.batch(step, samples);
    }
    fn fine_tuned(&mut self, outcome: &FineTuneOutcome) {
        self.inner.fine_tuned(outcome);
    }
}

/// Runs [`run_finetune`](tinytrain_firmware_app::finetune::run_finetune) on a simulated board over `backbone` from `head_init`, with the
/// stream and test sets of `sets`.
///
/// # Errors
/// When the packed sets do not read or the app fails.
pub fn simulate(
    backbone: &'static MnistBackbone<'static>,
    head_init: &Head,
    sets: &FineTuneSets,
    cfg: &FineTuneConfig,
    report: &mut impl FineTuneReport,
) -> Result<SimFineTune> {
    match simulate_boot(backbone, head_init, sets, cfg, SimFlash::new(crate::board::SIM_FLASH_BYTES), None, report)? {
        SimBoot::Finished(run) => Ok(*run),
        SimBoot::PowerCut { .. } => Err(anyhow!("a power cut without one asked for")),
    }
}

/// How a simulated boot of [`run_finetune_boot`] ended.
pub enum SimBoot {
    /// The run, finished.
    Finished(Box<SimFineTune>),
    /// Power was cut after `steps` optimizer steps of the boot; `flash` is as it was left.
    PowerCut {
        /// Steps of the boot.
        steps: u32,
        /// The flash.
        flash: SimFlash<4, 4096>,
    },
}

/// One boot of [`run_finetune_boot`] on a simulated board whose flash is `flash` (as a previous
/// boot left it), cut after `cut_after_steps` optimizer steps if given.
///
/// # Errors
/// When the packed sets do not read or the app fails.
#[allow(clippy::too_many_arguments)]
pub fn simulate_boot(
    backbone: &'static MnistBackbone<'static>,
    head_init: &Head,
    sets: &FineTuneSets,
    cfg: &FineTuneConfig,
    flash: SimFlash<4, 4096>,
    cut_after_steps: Option<u32>,
    report: &mut impl FineTuneReport,
) -> Result<SimBoot> {
    let stream = PackedMnist::new(&sets.stream).context("packed stream")?;
    let test = PackedMnist::new(&sets.test).context("packed test slice")?;
    let test_all = PackedMnist::new(&sets.test_all).context("packed test set")?;
    let mut board = sim_board_with(flash);
    let mut tuner: Box<Tuner<'static>> = Box::new(Tuner::new(backbone));
    let mut replay = Box::new(HeadReplay::new());
    let counters = StreamCounters::new();
    let mut queue: Box<SampleQueue> = Box::new(SampleQueue::new());
    let (producer, mut consumer) = queue.split();
    let feeder = Feeder {
        data: stream,
        next: cfg.first,
        end: cfg.first + cfg.stream,
        shift: cfg.shift,
        input_lut: backbone.input_lut,
    };
    let mut arrivals = SimArrivals { feeder, inlet: Inlet::new(producer, &counters) };
    let mut recorder = Recorder { inner: report, batches: Vec::new() };
    let boot = run_finetune_boot(
        &mut board,
        &mut tuner,
        &mut replay,
        &mut consumer,
        &counters,
        &mut arrivals,
        head_init,
        &test,
        cfg,
        cut_after_steps,
        &mut recorder,
    )
    .map_err(|e| anyhow!("fine-tuning app: {e}"))?;
    let fine = match boot {
        FineTuneBoot::Finished(fine) => fine,
        FineTuneBoot::PowerCut { steps } => return Ok(SimBoot::PowerCut { steps, flash: board.flash }),
    };
    let n = tinytrain::data::Dataset::<mnist::Image, usize>::len(&test_all) as u32;
    let after = evaluate(&mut tuner, &test_all, n, cfg.shift).map_err(|e| anyhow!("evaluation: {e}"))?;
    let head = Box::new(tuner.trainer.model.clone());
    tuner.trainer.model.copy_from(head_init);
    let before = evaluate(&mut tuner, &test_all, n, cfg.shift).map_err(|e| anyhow!("evaluation: {e}"))?;
    let batches = recorder.batches.iter().map(|b| b.iter().map(|&s| cfg.first + s).collect()).collect();
    Ok(SimBoot::Finished(Box::new(SimFineTune { fine, head, test_all: (before, after), batches, board })))
}

/// [`simulate`] for a scenario: over `prepared` (pre-trained and quantised in this process) or,
/// without it, over the generated statics the firmware links.
///
/// # Errors
/// As [`simulate`] and [`Prepared::leak`].
pub fn simulate_scenario(
    data_dir: &Path,
    scenario: Scenario,
    prepared: Option<&Prepared>,
    report: &mut impl FineTuneReport,
) -> Result<SimFineTune> {
    let sets = pack_sets(data_dir)?;
    let (backbone, head) = match prepared {
        Some(p) => (p.leak()?, &*p.head),
        None => scenario.statics(),
    };
    simulate(backbone, head, &sets, &scenario.config(), report)
}
