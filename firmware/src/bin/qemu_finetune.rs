//! Fine-tuning on the device, the reference scenario: a backbone pre-trained on MNIST classes 0-4, the head learns all ten: the int8 backbone is a static in flash, the f32 head
//! (`Dense<216, 10>`, SGD with momentum) trains in RAM on images that a timer interrupt
//! (CMSDK TIMER0) delivers through a `heapless` queue, with a replay buffer of features, and is
//! checkpointed to a power-safe training store. Reports over defmt (semihosting); exits 0 on
//! success, 1 on any error, panic or fault. `tinytrain-sim qemu --model finetune` compares
//! it with the simulator bit for bit.
//!
//! Run: `cargo run --release --bin qemu_finetune` in `firmware/`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use defmt_semihosting as _;
use tinytrain_firmware::finetune::{on_interrupt, qemu_finetune};
use tinytrain_firmware_app::finetune::FineTuneConfig;
use tinytrain_firmware_app::finetune_weights::{REFERENCE_BACKBONE, REFERENCE_HEAD};

#[entry]
fn main() -> ! {
    qemu_finetune(
        "fine-tuning a head over an int8 backbone (classes 0-4 -> 0-9)",
        &REFERENCE_BACKBONE,
        &REFERENCE_HEAD,
        &FineTuneConfig::REFERENCE,
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
