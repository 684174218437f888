//! Fine-tuning on the device, the domain-shift scenario: a backbone pre-trained on upright images of all ten classes, a stream and test set rotated by 30 degrees: the int8 backbone is a static in flash, the f32 head
//! (`Dense<216, 10>`, SGD with momentum) trains in RAM on images that a timer interrupt
//! (CMSDK TIMER0) delivers through a `heapless` queue, with a replay buffer of features, and is
//! checkpointed to a power-safe training store. Reports over defmt (semihosting); exits 0 on
//! success, 1 on any error, panic or fault. `tinytrain-sim qemu --model finetune-shift` compares
//! it with the simulator bit for bit.
//!
//! Run: `cargo run --release --bin qemu_finetune_shift` in `firmware/`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use defmt_semihosting as _;
use tinytrain_firmware::finetune::{on_interrupt, qemu_finetune};
use tinytrain_firmware_app::finetune::FineTuneConfig;
use tinytrain_firmware_app::finetune_weights::{SHIFT_BACKBONE, SHIFT_HEAD};

#[entry]
fn main() -> ! {
    qemu_finetune(
        "fine-tuning a head over an int8 backbone (images rotated 30 degrees)",
        &SHIFT_BACKBONE,
        &SHIFT_HEAD,
        &FineTuneConfig::SHIFT,
    )
}

/// Every interrupt without a handler of its own: TIMER0 (IRQ 8) feeds the stream.
#[cortex_m_rt::exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == 8 {
        on_interrupt();
    }
}

tinytrain_firmware::qemu_handlers!();
