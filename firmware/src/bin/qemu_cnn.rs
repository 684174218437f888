//! The CNN training firmware on QEMU's mps2-an386 (Cortex-M4F): trains `MnistCnnTiny` with
//! Adam on a slice of MNIST in flash (1,000 training and 200 test images), saves the weights
//! to flash, reads them back and reports over defmt (semihosting). Exits 0 on success, 1 on
//! any error, panic or fault.
//!
//! Run: `cargo run --release --bin qemu_cnn` in `firmware/`.
#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use cortex_m_rt::{ExceptionFrame, entry, exception};
use defmt_semihosting as _;
use tinytrain_firmware::qemu::{Delay, Flash, Led};
use tinytrain_firmware::{DefmtReport, MNIST_TEST, MNIST_TRAIN, SysTickCounter, exit_failure, exit_success};
use tinytrain_firmware_app::{Board, CnnTrainer, MnistSlice, RunConfig, run_cnn};

/// The whole training state (about 98 KB), zero-initialised in `.bss`.
static mut TRAINER: CnnTrainer = CnnTrainer::ZERO;

#[entry]
fn main() -> ! {
    tinytrain_firmware::stack::paint();
    let Some(cp) = cortex_m::Peripherals::take() else { exit_failure() };
    // SAFETY: `main` runs once and is the only user of these statics.
    let trainer = unsafe { &mut *addr_of_mut!(TRAINER) };
    let counter = SysTickCounter::start(cp.SYST);
    let mut board = Board { led: Led::default(), delay: Delay, flash: Flash::new(), counter };
    defmt::info!("tinytrain firmware: mnist-cnn-tiny on QEMU mps2-an386 (Cortex-M4F)");
    let data = match MnistSlice::new(MNIST_TRAIN, MNIST_TEST) {
        Ok(d) => d,
        Err(e) => {
            defmt::error!("packed data set: {}", e);
            exit_failure()
        }
    };
    match run_cnn(&mut board, trainer, &data, &RunConfig::CNN, &mut DefmtReport) {
        Ok(outcome) => {
            let (statics, stack) = (tinytrain_firmware::stack::static_ram(), tinytrain_firmware::stack::used());
            defmt::println!(
                "TT-MEMORY static_ram={=usize} stack_used={=usize} ram_total={=usize}",
                statics,
                stack,
                statics + stack
            );
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

#[exception]
fn SysTick() {
    tinytrain_firmware::systick_wrapped();
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    defmt::error!("HardFault at pc={=u32:#010x} lr={=u32:#010x}", frame.pc(), frame.lr());
    exit_failure()
}

#[defmt::panic_handler]
fn defmt_panic() -> ! {
    exit_failure()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    exit_failure()
}
