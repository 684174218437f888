//! The CNN training firmware on QEMU's mps2-an386 (Cortex-M4F): trains `MnistCnnTiny` with
//! Adam on a slice of MNIST in flash (1,000 training and 200 test images), saves the weights
//! to flash, reads them back and reports over defmt (semihosting). Exits 0 on success, 1 on
//! any error, panic or fault.
//!
//! Run: `cargo run --release --bin qemu_cnn` in `firmware/`.
#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use cortex_m_rt::entry;
use defmt_semihosting as _;
use tinytrain_firmware::{DefmtReport, MNIST_TEST, MNIST_TRAIN};
use tinytrain_firmware_app::{CnnTrainer, MnistSlice, RunConfig, run_cnn};

/// The whole training state (about 98 KB), zero-initialised in `.bss`.
static mut TRAINER: CnnTrainer = CnnTrainer::ZERO;

#[entry]
fn main() -> ! {
    // SAFETY: `main` runs once and is the only user of this static.
    let trainer = unsafe { &mut *addr_of_mut!(TRAINER) };
    tinytrain_firmware::qemu_training("mnist-cnn-tiny", |board| {
        let data = MnistSlice::new(MNIST_TRAIN, MNIST_TEST)?;
        run_cnn(board, trainer, &data, &RunConfig::CNN, &mut DefmtReport)
    })
}

tinytrain_firmware::qemu_handlers!();
