//! The training firmware on an STM32F411 (Nucleo-F411RE: LED on PA5): the same app as the
//! QEMU binary, logging over defmt-RTT. The two checkpoint slots are the last two flash sectors
//! (6 and 7, 128 KiB each from 0x0804_0000), which `memory-stm32f411.x` keeps free of code.
//!
//! Build: `cargo build --release --no-default-features --features stm32f411 --bin stm32f411`;
//! flash and run: `probe-rs run --chip STM32F411RETx <elf>` (see README.md).
#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use cortex_m_rt::entry;
use defmt_rtt as _;
use panic_probe as _;
use stm32f4xx_hal::flash::{FlashExt, LockedFlash};
use stm32f4xx_hal::pac;
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::rcc::Config;
use tinytrain_firmware::{DefmtReport, TEST, TRAIN};
use tinytrain_firmware_app::{AppTrainer, Board, Digits, RunConfig, run};

/// Offset of flash sector 6 from the start of flash: checkpoint slots in sectors 6 and 7.
const WEIGHTS_OFFSET: u32 = 0x4_0000;

/// The whole training state, zero-initialised in `.bss`.
static mut TRAINER: AppTrainer = AppTrainer::ZERO;

#[entry]
fn main() -> ! {
    let (Some(dp), Some(cp)) = (pac::Peripherals::take(), cortex_m::Peripherals::take()) else {
        defmt::panic!("peripherals already taken")
    };
    // SAFETY: `main` runs once and is the only user of these statics.
    let trainer = unsafe { &mut *addr_of_mut!(TRAINER) };
    let mut rcc = dp.RCC.freeze(Config::hsi().sysclk(84.MHz()));
    let gpioa = dp.GPIOA.split(&mut rcc);
    let led = gpioa.pa5.into_push_pull_output();
    let delay = cp.SYST.delay(&rcc.clocks);
    let mut flash = LockedFlash::new(dp.FLASH);
    // Instructions are counted in QEMU only (`()` reports 0 here).
    let mut board = Board { led, delay, flash: flash.unlocked(), counter: () };
    defmt::info!("tinytrain firmware: digits MLP on STM32F411 at 84 MHz");
    let data = match Digits::new(TRAIN, TEST) {
        Ok(d) => d,
        Err(e) => defmt::panic!("packed data set: {}", e),
    };
    let cfg = RunConfig { storage_offset: WEIGHTS_OFFSET, ..RunConfig::STANDARD };
    match run(&mut board, trainer, &data, &cfg, &mut DefmtReport) {
        Ok(outcome) => defmt::info!(
            "trained {=u32} epochs; test accuracy {=f32}; weights CRC-32 {=u32:#010x}",
            outcome.epochs_run,
            outcome.test.accuracy,
            outcome.weights_crc
        ),
        Err(e) => defmt::error!("run failed: {}", e),
    }
    loop {
        cortex_m::asm::wfi();
    }
}
