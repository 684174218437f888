//! The 1-D training firmware on QEMU's mps2-an386 (Cortex-M4F): trains `WavesCnn1d` (Conv1d,
//! max pooling, the mean over time, dense) with Adam on 1,000 waves signals in flash, saves
//! the weights to flash, reads them back and reports over defmt (semihosting). Exits 0 on
//! success, 1 on any error, panic or fault.
//!
//! Run: `cargo run --release --bin qemu_waves` in `firmware/`.
#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use cortex_m_rt::entry;
use defmt_semihosting as _;
use tinytrain_firmware::{DefmtReport, WAVES_TEST, WAVES_TRAIN};
use tinytrain_firmware_app::{RunConfig, WavesSets, WavesTrainer, run_net};

/// The whole training state (about 52 KB), zero-initialised in `.bss`.
static mut TRAINER: WavesTrainer = WavesTrainer::ZERO;

#[entry]
fn main() -> ! {
    // SAFETY: `main` runs once and is the only user of this static.
    let trainer = unsafe { &mut *addr_of_mut!(TRAINER) };
    tinytrain_firmware::qemu_training("waves-cnn1d", |board| {
        let data = WavesSets::new(WAVES_TRAIN, WAVES_TEST)?;
        run_net(board, trainer, &data.train, &data.test, &RunConfig::WAVES, &mut DefmtReport)
    })
}

tinytrain_firmware::qemu_handlers!();
