//! The `sine` firmware without the model: the same harness with the identity in place of the
//! network, so that `size(sine) - size(sine_bare)` is the model's share of flash and RAM. Its
//! outputs are not sin(x), so it always reports and exits 0.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use defmt_semihosting as _;
use tinytrain_firmware::exit_failure;

#[entry]
fn main() -> ! {
    tinytrain_firmware::stack::paint();
    let Some(cp) = cortex_m::Peripherals::take() else { exit_failure() };
    tinytrain_firmware::sine::run(cp.SYST, "identity", f32::INFINITY, |x, y| y[0] = core::hint::black_box(x[0]))
}

tinytrain_firmware::qemu_handlers!(quiet_panics);
