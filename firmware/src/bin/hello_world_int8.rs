//! Int8 sine networks on every possible input, for the host to compare bit for bit
//! (`host-sim/tests/firmware_int8.rs`), and the cost of FULLY_CONNECTED's requantisation:
//!
//! - `sine`: our quantised sine model (`src/nets/sine_int8.rs`);
//! - `hello_world_exact`, `hello_world_tflm`, `hello_world_float`: TensorFlow Lite Micro's
//!   hello_world_int8 model written three times (`--fc-requant exact | tflm | float`): the
//!   reference rule in integers, TFLM's fixed-point multiplier, the reference rule in software
//!   f64.
//!
//! Each runs on the 256 int8 inputs (input k is `k - 128`); prints every output, the CRC of
//! all outputs and the mean instructions per inference.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use defmt_semihosting as _;
use tinytrain_firmware::{SysTickCounter, exit_failure, exit_success, int8};

macro_rules! net {
    ($name:ident, $file:literal) => {
        #[allow(missing_docs, dead_code)]
        mod $name {
            include!($file);
        }
    };
}
net!(sine, "../nets/sine_int8.rs");
net!(exact, "../nets/hello_world_int8.rs");
net!(tflm, "../nets/hello_world_int8_tflm.rs");
net!(float, "../nets/hello_world_int8_float.rs");

#[entry]
fn main() -> ! {
    tinytrain_firmware::stack::paint();
    let Some(cp) = cortex_m::Peripherals::take() else { exit_failure() };
    let mut counter = SysTickCounter::start(cp.SYST);
    let every = |k: usize, x: &mut [i8; 1]| x[0] = (k as u8).wrapping_sub(128).cast_signed();
    int8::run(&mut counter, "sine", &sine::NET, 256, sine::MACS, every);
    int8::run(&mut counter, "hello_world_exact", &exact::NET, 256, exact::MACS, every);
    int8::run(&mut counter, "hello_world_tflm", &tflm::NET, 256, tflm::MACS, every);
    int8::run(&mut counter, "hello_world_float", &float::NET, 256, float::MACS, every);
    exit_success()
}

tinytrain_firmware::qemu_handlers!(quiet_panics);
