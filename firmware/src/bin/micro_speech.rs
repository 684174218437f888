//! Int8 inference of TensorFlow Lite Micro's micro_speech model ("yes"/"no" keyword spotting,
//! 49x40 spectrogram in, (silence, unknown, yes, no) out), written as Rust by `tinytrain-sim
//! import micro_speech_quantized.tflite --rust` (`src/nets/micro_speech.rs`): its 10x8
//! depthwise convolution of one channel runs as a convolution on the `SMLAD` kernels, the
//! 4,000-input FULLY_CONNECTED on the four-row dot kernel, then SOFTMAX.
//!
//! Runs the fixture's 100 inputs (SplitMix64 from seed 3, `tests/fixtures/tflite/README.md`),
//! prints every output for the host to compare with TensorFlow's reference outputs and the
//! host interpreter bit for bit, the instructions per inference and per layer, RAM (statics
//! and measured stack).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use defmt_semihosting as _;
use tinytrain::int8::Int8Layer;
use tinytrain_firmware::int8::SplitMix64;
use tinytrain_firmware::{SysTickCounter, exit_failure, exit_success, int8, stack};
use tinytrain_firmware_app::Counter;

#[allow(missing_docs, dead_code)]
mod net {
    include!("../nets/micro_speech.rs");
}
use net::NET;

/// The fixture's seed and number of inputs.
const SEED: u64 = 3;
const INPUTS: usize = 100;

#[entry]
fn main() -> ! {
    stack::paint();
    let Some(cp) = cortex_m::Peripherals::take() else { exit_failure() };
    let mut counter = SysTickCounter::start(cp.SYST);
    let mut rng = SplitMix64(SEED);
    let measured =
        int8::run(&mut counter, "micro_speech", &NET, INPUTS, net::MACS, |_, x: &mut [i8; net::INPUT_LEN]| {
            for v in x.iter_mut() {
                *v = rng.next_i8();
            }
        });
    // One more inference, layer by layer: convolution, FULLY_CONNECTED, SOFTMAX.
    let mut x = [0i8; net::INPUT_LEN];
    for v in &mut x {
        *v = rng.next_i8();
    }
    let mut conv = [0i8; 4000];
    let mut dense = [0i8; 4];
    let mut out = [0i8; net::OUTPUT_LEN];
    let t0 = counter.now();
    NET.first.forward(&x, &mut conv);
    let t1 = counter.now();
    NET.second.first.forward(&conv, &mut dense);
    let t2 = counter.now();
    NET.second.second.forward(&dense, &mut out);
    let t3 = counter.now();
    defmt::println!(
        "TT-MICRO-SPEECH instructions_per_inference={=u64} macs={=u64} conv={=u64} conv_macs={=u64} dense={=u64} dense_macs={=u64} softmax={=u64} static_ram={=usize} stack_used={=usize}",
        measured.instructions_per_inference,
        net::MACS,
        t1 - t0,
        25 * 20 * 8 * 10 * 8,
        t2 - t1,
        4000 * 4,
        t3 - t2,
        stack::static_ram(),
        stack::used()
    );
    exit_success()
}

tinytrain_firmware::qemu_handlers!(quiet_panics);
