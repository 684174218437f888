//! The training firmware on QEMU's mps2-an386 (Cortex-M4F): trains the digits MLP, saves the
//! weights to flash, reads them back and reports over defmt (semihosting). Exits 0 on success,
//! 1 on any error, panic or fault.
//!
//! Run: `cargo run --release --bin qemu` in `firmware/`.
#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use cortex_m_rt::entry;
use defmt_semihosting as _;
use tinytrain_firmware::{DefmtReport, TEST, TRAIN};
use tinytrain_firmware_app::{AppTrainer, Digits, RunConfig, run};

/// The whole training state, zero-initialised in `.bss`.
static mut TRAINER: AppTrainer = AppTrainer::ZERO;

#[entry]
fn main() -> ! {
    // SAFETY: `main` runs once and is the only user of this static.
    let trainer = unsafe { &mut *addr_of_mut!(TRAINER) };
    tinytrain_firmware::qemu_training("digits MLP", |board| {
        let data = Digits::new(TRAIN, TEST)?;
        run(board, trainer, &data, &RunConfig::STANDARD, &mut DefmtReport)
    })
}

tinytrain_firmware::qemu_handlers!();
