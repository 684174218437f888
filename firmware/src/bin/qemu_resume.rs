//! A power cut in the middle of on-device training, in QEMU: the first boot trains the digits
//! MLP as the `qemu` firmware does, saving a training checkpoint to flash every 16 optimizer
//! steps, and is cut (a core reset, RAM lost) after step 100, between two checkpoints. The
//! second boot finds the checkpoint of step 96, resumes, finishes, and must end with the very
//! weights of the uninterrupted `qemu` run (`firmware/ci.sh` compares the params CRC).
//!
//! Run: `cargo run --release --bin qemu_resume` in `firmware/`.
#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use cortex_m_rt::entry;
use defmt_semihosting as _;
use tinytrain_firmware::{DefmtReport, TEST, TRAIN};
use tinytrain_firmware_app::resumable::{settings_hash, stores};
use tinytrain_firmware_app::{AppTrainer, CHECKPOINT_EVERY, Digits, Net, Opt, RunConfig, run_resumable};

/// Optimizer step after which the first boot loses power (3 epochs of 45 steps: mid-epoch 3).
const CUT_AT_STEP: u32 = 100;

/// The whole training state, zero-initialised in `.bss` at every boot.
static mut TRAINER: AppTrainer = AppTrainer::ZERO;

#[entry]
fn main() -> ! {
    // SAFETY: `main` runs once per boot and is the only user of this static.
    let trainer = unsafe { &mut *addr_of_mut!(TRAINER) };
    tinytrain_firmware::qemu_resumable("digits MLP", |board| {
        let data = Digits::new(TRAIN, TEST)?;
        let cfg = RunConfig::STANDARD;
        // A flash without a training checkpoint: the first boot, the one that is cut.
        let (_, store) = stores::<Net, Opt, _>(&board.flash, &cfg)?;
        let first = store.scan(&mut board.flash, settings_hash(&cfg))?.newest().is_none();
        let cut = first.then_some(CUT_AT_STEP);
        run_resumable(board, trainer, &data.train, &data.test, &cfg, CHECKPOINT_EVERY, cut, &mut DefmtReport)
    })
}

tinytrain_firmware::qemu_handlers!();
