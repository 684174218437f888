//! Board support shared by the tinytrain firmware binaries.
//!
//! - [`TRAIN`] and [`TEST`]: the digits set, packed by `build.rs` and baked into flash;
//!   [`MNIST_TRAIN`] and [`MNIST_TEST`]: the MNIST slice of the `qemu_cnn` binary;
//! - [`DefmtReport`]: the app's [`Report`] over defmt, one machine-readable line per fact
//!   (`TT-...`), read back by `tinytrain-sim qemu`;
//! - [`SysTickCounter`]: instructions counted with SysTick under QEMU `-icount shift=7`;
//! - [`qemu`]: the mps2-an386 LED, memory-mapped "flash" and delay;
//! - [`sine`]: the inference-footprint harness of the `sine`, `sine_int8` and `sine_bare` binaries;
//! - [`int8`]: the harness of the int8 binaries (`hello_world_int8`, `micro_speech`): outputs
//!   for the host to compare, instruction counts.
//!
//! The app itself (training, saving, measuring) is `tinytrain_firmware_app::run`, the very code
//! the host simulator runs.
#![no_std]
#![deny(missing_docs)]

pub mod finetune;
pub mod int8;
pub mod qemu;
pub mod sine;

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use tinytrain_firmware_app::{AppError, Board, Boot, Counter, EpochRecord, Outcome, Report, StartInfo};

/// The packed digits training set (1,437 images).
pub static TRAIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/digits-train.ttdp"));
/// The packed digits test set (360 images).
pub static TEST: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/digits-test.ttdp"));

/// The packed MNIST training slice (the first 1,000 images of the shipped subset).
pub static MNIST_TRAIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mnist-train.ttmp"));
/// The packed MNIST test slice (the first 200 images of the shipped test subset).
pub static MNIST_TEST: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mnist-test.ttmp"));
/// The packed waves training signals (the first 1,000 of the shipped set).
pub static WAVES_TRAIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/waves-train.ttwv"));
/// The packed waves test signals (the first 200 of the shipped test set).
pub static WAVES_TEST: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/waves-test.ttwv"));

/// Reports over defmt. Lines starting with `TT-` are parsed by the host: keep their shape.
#[derive(Debug, Default)]
pub struct DefmtReport;

impl Report for DefmtReport {
    fn start(&mut self, i: &StartInfo) {
        defmt::println!(
            "TT-START params={=u32} trainer_bytes={=u32} train={=u32} test={=u32} dataset_bytes={=u32} epochs={=u32} batch={=usize} seed={=u64}",
            i.params,
            i.trainer_bytes,
            i.train_samples,
            i.test_samples,
            i.dataset_bytes,
            i.config.epochs,
            i.config.batch_size,
            i.config.seed
        );
    }

    fn epoch(&mut self, r: &EpochRecord) {
        defmt::println!(
            "TT-EPOCH epoch={=u32} loss_bits={=u32:#010x} loss={=f32} accuracy={=f32} instructions={=u64}",
            r.epoch,
            r.loss_bits(),
            r.loss,
            r.accuracy,
            r.instructions
        );
    }

    fn saved(&mut self, len: u32, crc: u32) {
        defmt::println!("TT-SAVED len={=u32} crc={=u32:#010x}", len, crc);
    }

    fn finish(&mut self, o: &Outcome) {
        defmt::println!(
            "TT-TEST loss_bits={=u32:#010x} loss={=f32} accuracy={=f32} correct={=usize} samples={=usize}",
            o.test.loss.to_bits(),
            o.test.loss,
            o.test.accuracy,
            o.test.correct,
            o.test.samples
        );
        defmt::println!(
            "TT-INSTRUCTIONS per_sample_batch={=u64} per_sample_batch1={=u64} per_inference={=u64} per_unpack={=u64} per_eval={=u64}",
            o.instructions_per_sample,
            o.instructions_per_sample_batch1,
            o.instructions_per_inference,
            o.instructions_per_unpack,
            o.instructions_per_eval
        );
        defmt::println!(
            "TT-DONE weights_crc={=u32:#010x} params_crc={=u32:#010x} weights_len={=u32} led_toggles={=u32} epochs={=u32}",
            o.weights_crc,
            o.params_crc,
            o.weights_len,
            o.led_toggles,
            o.epochs_run
        );
    }
}

/// SysTick reload: the full 24 bits.
const RELOAD: u32 = 0x00FF_FFFF;
/// SysTick wraps so far, counted by [`systick_wrapped`].
static WRAPS: AtomicU32 = AtomicU32::new(0);

/// Call from the `SysTick` exception handler.
pub fn systick_wrapped() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// Counts instructions with SysTick on the core clock (25 MHz on mps2) under QEMU
/// `-icount shift=7`: each instruction advances the virtual clock by 2^7 ns = 3.2 ticks, so
/// instructions = ticks · 5 / 16, the same on every run. These are instruction counts, not
/// Cortex-M4 cycles. The binary must forward its `SysTick` exception to [`systick_wrapped`].
pub struct SysTickCounter {
    _syst: SYST,
    last: u64,
}

impl SysTickCounter {
    /// Starts SysTick: core clock, full reload, wrap interrupt on.
    #[must_use]
    pub fn start(mut syst: SYST) -> Self {
        syst.disable_counter();
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        SysTickCounter { _syst: syst, last: 0 }
    }

    /// SysTick ticks since [`SysTickCounter::start`].
    #[must_use]
    pub fn ticks(&self) -> u64 {
        loop {
            let before = WRAPS.load(Ordering::Relaxed);
            let pending_before = SCB::is_pendst_pending();
            let current = SYST::get_current();
            let pending_after = SCB::is_pendst_pending();
            if WRAPS.load(Ordering::Relaxed) != before || pending_before != pending_after {
                continue;
            }
            // A wrap whose interrupt has not been taken yet still counts.
            let wraps = u64::from(before) + u64::from(pending_before);
            return wraps * u64::from(RELOAD + 1) + u64::from(RELOAD - current);
        }
    }
}

impl Counter for SysTickCounter {
    fn now(&mut self) -> u64 {
        self.last = self.last.max(self.ticks() * 5 / 16);
        self.last
    }
}

/// The QEMU board the training binaries run on.
pub type QemuBoard = Board<qemu::Led, qemu::Delay, qemu::Flash, SysTickCounter>;

/// Paints the stack, starts the instruction counter and takes the mps2 board.
fn qemu_board() -> QemuBoard {
    stack::paint();
    let Some(cp) = cortex_m::Peripherals::take() else { exit_failure() };
    let counter = SysTickCounter::start(cp.SYST);
    Board { led: qemu::Led::default(), delay: qemu::Delay, flash: qemu::Flash::new(), counter }
}

/// Prints the `TT-MEMORY` line: statics, the stack's deepest use, and their sum.
fn report_memory() {
    let (statics, stack) = (stack::static_ram(), stack::used());
    defmt::println!(
        "TT-MEMORY static_ram={=usize} stack_used={=usize} ram_total={=usize}",
        statics,
        stack,
        statics + stack
    );
}

/// The body of a QEMU training binary: paints the stack, starts the instruction counter and
/// the board, runs `train` on it, reports memory and the outcome, and ends the run with exit
/// code 0, or 1 on any error.
pub fn qemu_training(what: &str, train: impl FnOnce(&mut QemuBoard) -> Result<Outcome, AppError>) -> ! {
    let mut board = qemu_board();
    defmt::info!("tinytrain firmware: {=str} on QEMU mps2-an386 (Cortex-M4F)", what);
    match train(&mut board) {
        Ok(outcome) => {
            report_memory();
            defmt::info!(
                "trained {=u32} epochs; test accuracy {=f32}; LED toggled {=u32} times",
                outcome.epochs_run,
                outcome.test.accuracy,
                board.led.toggles()
            );
            exit_success()
        }
        Err(e) => {
            defmt::error!("run failed: {}", e);
            exit_failure()
        }
    }
}

/// The body of the QEMU power-cut binary: like [`qemu_training`], but `boot` is one boot of
/// `tinytrain_firmware_app::run_resumable`. When it reports a power cut the core is reset
/// (`SYSRESETREQ`): QEMU restarts the firmware with fresh RAM while the flash region keeps
/// what the boot wrote, and the next boot resumes from it. A finished boot reports the run
/// and ends with exit code 0; an error ends it with 1.
pub fn qemu_resumable(what: &str, boot: impl FnOnce(&mut QemuBoard) -> Result<Boot, AppError>) -> ! {
    let mut board = qemu_board();
    defmt::info!("tinytrain firmware: {=str}, resumable, on QEMU mps2-an386 (Cortex-M4F)", what);
    match boot(&mut board) {
        Ok(Boot::PowerCut { steps }) => {
            defmt::println!("TT-CUT steps={=u32}", steps);
            SCB::sys_reset()
        }
        Ok(Boot::Finished(r)) => {
            defmt::println!(
                "TT-RESUMED from={=u32} steps_before={=u32} steps={=u32} checkpoints={=u32} checkpoint_bytes={=u32} checkpoint_flash={=u32} per_checkpoint={=u64}",
                r.resumed_from.unwrap_or(0),
                r.steps_before,
                r.steps,
                r.checkpoints,
                r.checkpoint_bytes,
                r.checkpoint_flash,
                r.instructions_per_checkpoint
            );
            defmt::println!(
                "TT-TEST loss_bits={=u32:#010x} loss={=f32} accuracy={=f32} correct={=usize} samples={=usize}",
                r.test.loss.to_bits(),
                r.test.loss,
                r.test.accuracy,
                r.test.correct,
                r.test.samples
            );
            defmt::println!(
                "TT-DONE weights_crc={=u32:#010x} params_crc={=u32:#010x} weights_len={=u32} epochs_this_boot={=u32}",
                r.weights_crc,
                r.params_crc,
                r.weights_len,
                r.epochs_run
            );
            report_memory();
            exit_success()
        }
        Err(e) => {
            defmt::error!("boot failed: {}", e);
            exit_failure()
        }
    }
}

/// The exception and panic handlers every QEMU binary needs: SysTick wraps for the
/// instruction counter, a HardFault that logs the PC and exits 1 (the default one spins until
/// the timeout), and panics that log and exit 1. `qemu_handlers!(quiet_panics)` does not
/// format the panic message, which keeps `core::fmt` out of the smallest binaries.
#[macro_export]
macro_rules! qemu_handlers {
    () => {
        $crate::qemu_handlers!(@common);

        #[panic_handler]
        fn panic(info: &core::panic::PanicInfo) -> ! {
            defmt::error!("panic: {}", defmt::Display2Format(info));
            $crate::exit_failure()
        }
    };
    (quiet_panics) => {
        $crate::qemu_handlers!(@common);

        #[panic_handler]
        fn panic(_info: &core::panic::PanicInfo) -> ! {
            defmt::error!("panic");
            $crate::exit_failure()
        }
    };
    (@common) => {
        #[cortex_m_rt::exception]
        fn SysTick() {
            $crate::systick_wrapped();
        }

        #[cortex_m_rt::exception]
        unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
            defmt::error!("HardFault at pc={=u32:#010x} lr={=u32:#010x}", frame.pc(), frame.lr());
            $crate::exit_failure()
        }

        #[defmt::panic_handler]
        fn defmt_panic() -> ! {
            $crate::exit_failure()
        }
    };
}

/// Logs a failure and ends the QEMU run with exit code 1 (semihosting).
pub fn exit_failure() -> ! {
    loop {
        cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    }
}

/// Ends the QEMU run with exit code 0 (semihosting).
pub fn exit_success() -> ! {
    loop {
        cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
    }
}

/// Stack use, measured by painting: [`stack::paint`] fills the free stack with a pattern at
/// start-up, [`stack::used`] finds the deepest word that changed.
pub mod stack {
    use core::ptr::addr_of;

    const PATTERN: u32 = 0xA5C3_5A3C;
    /// Words just below the stack pointer left alone while painting (the painter's own frame).
    const MARGIN: usize = 64;

    unsafe extern "C" {
        /// Lowest address the stack may reach (end of `.bss`/`.uninit`), from cortex-m-rt.
        static _stack_end: u32;
        /// Initial stack pointer (top of RAM), from cortex-m-rt.
        static _stack_start: u32;
    }

    fn bounds() -> (usize, usize) {
        (addr_of!(_stack_end) as usize, addr_of!(_stack_start) as usize)
    }

    /// Bytes of RAM below the stack: `.data`, `.bss` and `.uninit`.
    #[must_use]
    pub fn static_ram() -> usize {
        bounds().0 - 0x2000_0000
    }

    /// Fills the unused stack with the pattern. Call once, early in `main`.
    pub fn paint() {
        let (bottom, _) = bounds();
        let sp = cortex_m::register::msp::read() as usize;
        let mut at = bottom.next_multiple_of(4);
        while at + 4 * MARGIN < sp {
            // SAFETY: [bottom, sp - margin) is RAM that nothing uses yet: below every live
            // frame and above every static.
            unsafe { (at as *mut u32).write_volatile(PATTERN) };
            at += 4;
        }
    }

    /// Deepest stack use since [`paint`], in bytes.
    #[must_use]
    pub fn used() -> usize {
        let (bottom, top) = bounds();
        let mut at = bottom.next_multiple_of(4);
        // SAFETY: reads RAM between the statics and the stack pointer's top.
        while at < top && unsafe { (at as *const u32).read_volatile() } == PATTERN {
            at += 4;
        }
        top - at
    }
}
