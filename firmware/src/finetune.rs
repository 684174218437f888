//! The fine-tuning firmware's board side: the CMSDK timer of the mps2-an386 as the stream's
//! interrupt, the queue and the training state as statics, and the body of the
//! `qemu_finetune` binaries.
//!
//! TIMER0 (base `0x4000_0000`, IRQ 8, clocked at the 25 MHz core clock) fires every
//! [`PERIOD_TICKS`] ticks; its interrupt ([`on_interrupt`], called from `DefaultHandler`) runs
//! the app's [`Feeder::tick`]: unpack the next image from flash, shift, quantise, offer to the
//! queue (dropped and counted when full). Under QEMU `-icount shift=7` a tick is 1/3.2
//! instruction, so the stream brings a sample every `PERIOD_TICKS / 3.2` instructions, the same
//! on every run. The training loop polls the queue while it waits (a real board would `wfi`;
//! polling keeps the instruction counts independent of how QEMU idles).

use core::ptr::addr_of_mut;

use cortex_m::peripheral::NVIC;
use tinytrain::finetune::{Inlet, StreamCounters};
use tinytrain_firmware_app::finetune::{
    Arrivals, Feeder, FineTuneConfig, FineTuneOutcome, FineTuneReport, FineTuneSummary, Head, HeadReplay,
    MnistBackbone, QUEUE_SLOTS, Sample, SampleQueue, Tuner, run_finetune,
};
use tinytrain_firmware_app::mnist::PackedMnist;
use tinytrain_firmware_app::{AppError, Board};

use crate::{DefmtReport, SysTickCounter, exit_failure, exit_success, qemu, stack};

/// The packed stream images (`finetune::STREAM_IMAGES` training images).
pub static STREAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/finetune-stream.ttmp"));
/// The packed test slice (`finetune::TEST_IMAGES` test images).
pub static TEST: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/finetune-test.ttmp"));

/// Timer ticks between two samples: 3,000,000 ticks, 937,500 instructions under
/// `-icount shift=7` (120 ms of a 25 MHz board: about 8 images a second). The longest busy
/// stretch (a sample, an optimizer step and a head checkpoint: about 1.5 M instructions) sees
/// at most two arrivals, which the queue holds: no sample is dropped.
pub const PERIOD_TICKS: u32 = 3_000_000;

const TIMER0: usize = 0x4000_0000;
const CTRL: usize = TIMER0;
const RELOAD: usize = TIMER0 + 0x08;
const VALUE: usize = TIMER0 + 0x04;
const INTCLEAR: usize = TIMER0 + 0x0C;

/// TIMER0's interrupt line.
#[derive(Debug, Clone, Copy)]
struct Timer0Irq;

// SAFETY: 8 is TIMER0's line on the mps2-an386, a valid external interrupt number.
unsafe impl cortex_m::interrupt::InterruptNumber for Timer0Irq {
    fn number(self) -> u16 {
        8
    }
}

fn write(reg: usize, v: u32) {
    // SAFETY: the CMSDK APB timer's registers, plain 32-bit device registers.
    unsafe { (reg as *mut u32).write_volatile(v) };
}

/// The interrupt's state: the feeder and the queue's producer.
struct Stream {
    feeder: Feeder<'static>,
    inlet: Inlet<'static, Sample>,
}

static mut QUEUE: SampleQueue = SampleQueue::new();
static COUNTERS: StreamCounters = StreamCounters::new();
static mut STREAM_STATE: Option<Stream> = None;

/// The fine-tuner: the head's trainer (about 27 KB of `.bss`) and the backbone's address.
static mut TUNER: Option<Tuner<'static>> = None;
/// The replay buffer.
static mut REPLAY: HeadReplay = HeadReplay::new();

/// TIMER0's interrupt: one sample into the queue; stops the timer after the last.
pub fn on_interrupt() {
    write(INTCLEAR, 1);
    // SAFETY: set before the timer starts and never touched by `main` after; the interrupt
    // does not preempt itself.
    let stream = unsafe { (*addr_of_mut!(STREAM_STATE)).as_mut() };
    if let Some(s) = stream
        && !s.feeder.tick(&mut s.inlet)
    {
        write(CTRL, 0);
    }
}

/// The device's arrivals: the timer.
struct Timer;

impl Arrivals for Timer {
    fn start(&mut self, first: u32) {
        write(CTRL, 0);
        // SAFETY: the timer is stopped: its interrupt does not run while this moves the
        // feeder to where a resumed run stopped.
        let stream = unsafe { (*addr_of_mut!(STREAM_STATE)).as_mut() };
        if let Some(s) = stream {
            s.feeder.next = s.feeder.next.saturating_add(first);
        }
        write(RELOAD, PERIOD_TICKS);
        write(VALUE, PERIOD_TICKS);
        write(INTCLEAR, 1);
        // SAFETY: the interrupt's state is in place (set before `start` is reachable).
        unsafe { NVIC::unmask(Timer0Irq) };
        // Enable, interrupt enable.
        write(CTRL, 0b1001);
    }

    fn wait(&mut self) {
        for _ in 0..16 {
            cortex_m::asm::nop();
        }
    }
}

impl FineTuneReport for DefmtReport {
    fn fine_tuned(&mut self, f: &FineTuneOutcome) {
        defmt::println!(
            "TT-FINETUNE before_loss_bits={=u32:#010x} before_accuracy={=f32} before_correct={=usize} after_accuracy={=f32} offered={=u32} dropped={=u32} consumed={=u32} steps={=u32} checkpoints={=u32} checkpoint_bytes={=u32}",
            f.before.loss.to_bits(),
            f.before.accuracy,
            f.before.correct,
            f.outcome.test.accuracy,
            f.offered,
            f.dropped,
            f.consumed,
            f.steps,
            f.checkpoints,
            f.checkpoint_bytes
        );
        defmt::println!(
            "TT-FT-INSTRUCTIONS per_sample={=u64} per_backbone={=u64} per_step={=u64} per_checkpoint={=u64} per_inference={=u64}",
            f.outcome.instructions_per_sample,
            f.instructions_per_backbone,
            f.instructions_per_step,
            f.instructions_per_checkpoint,
            f.outcome.instructions_per_inference
        );
    }
}

/// The body of a fine-tuning binary: sets up the queue, the timer's state and the board, runs
/// [`run_finetune`] over `backbone` from `head`, reports memory and the outcome (defmt), and
/// exits 0, or 1 on any error.
pub fn qemu_finetune(
    what: &str,
    backbone: &'static MnistBackbone<'static>,
    head: &'static Head,
    cfg: &FineTuneConfig,
) -> ! {
    stack::paint();
    let Some(cp) = cortex_m::Peripherals::take() else { exit_failure() };
    let counter = SysTickCounter::start(cp.SYST);
    let mut board = Board { led: qemu::Led::default(), delay: qemu::Delay, flash: qemu::Flash::new(), counter };
    defmt::info!("tinytrain firmware: {=str} on QEMU mps2-an386 (Cortex-M4F)", what);
    let summary = FineTuneSummary::new("head", core::mem::size_of::<SampleQueue>(), QUEUE_SLOTS);
    defmt::println!(
        "TT-FT-MEMORY tuner={=usize} replay={=usize} queue={=usize} backbone_flash={=usize} backbone_stack={=usize}",
        summary.tuner_bytes,
        summary.replay_bytes,
        summary.queue_bytes,
        summary.backbone_flash_bytes,
        summary.backbone_stack_bytes
    );
    let mut run = || -> Result<FineTuneOutcome, AppError> {
        let stream = PackedMnist::new(STREAM)?;
        let test = PackedMnist::new(TEST)?;
        // SAFETY: `main` runs once; the queue is split once, its producer goes to the
        // interrupt's state before the timer starts, and these statics have no other user.
        let (producer, mut consumer) = unsafe { (*addr_of_mut!(QUEUE)).split() };
        let feeder = Feeder {
            data: stream,
            next: cfg.first,
            end: cfg.first + cfg.stream,
            shift: cfg.shift,
            input_lut: backbone.input_lut,
        };
        // SAFETY: as above; the timer is not running yet.
        unsafe { *addr_of_mut!(STREAM_STATE) = Some(Stream { feeder, inlet: Inlet::new(producer, &COUNTERS) }) };
        // SAFETY: as above.
        let tuner = unsafe { (*addr_of_mut!(TUNER)).insert(Tuner::new(backbone)) };
        // SAFETY: as above.
        let replay = unsafe { &mut *addr_of_mut!(REPLAY) };
        run_finetune(
            &mut board,
            tuner,
            replay,
            &mut consumer,
            &COUNTERS,
            &mut Timer,
            head,
            &test,
            cfg,
            &mut DefmtReport,
        )
    };
    match run() {
        Ok(f) => {
            let (statics, stack) = (stack::static_ram(), stack::used());
            defmt::println!(
                "TT-MEMORY static_ram={=usize} stack_used={=usize} ram_total={=usize}",
                statics,
                stack,
                statics + stack
            );
            defmt::info!(
                "fine-tuned on {=u32} samples ({=u32} dropped); test accuracy {=f32} -> {=f32}",
                f.consumed,
                f.dropped,
                f.before.accuracy,
                f.outcome.test.accuracy
            );
            exit_success()
        }
        Err(e) => {
            defmt::error!("fine-tuning failed: {}", e);
            exit_failure()
        }
    }
}
