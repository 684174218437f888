//! The inference-footprint harness shared by the `sine` and `sine_bare` binaries: runs a model
//! on fixed inputs, counts instructions per call with SysTick under QEMU `-icount shift=7`
//! (instruction counts, not cycles), checks the outputs and reports flash-independent
//! figures (RAM: statics and measured stack). `sine_bare` runs the same harness with the
//! identity in place of the network, so the difference of the two ELF sizes is the model's
//! share of flash.

use cortex_m::peripheral::SYST;

use tinytrain_firmware_app::Counter;

use crate::{SysTickCounter, exit_failure, exit_success, stack};

/// x and sin(x) at eight points of [0, 2π] (computed in double precision).
pub const CHECK: [(f32, f32); 8] = [
    (0.300_000, 0.295_520),
    (1.085_398, 0.884_489),
    (1.870_796, 0.955_336),
    (2.656_194, 0.466_561),
    (3.441_593, -0.295_520),
    (4.226_991, -0.884_489),
    (5.012_389, -0.955_336),
    (5.797_787, -0.466_561),
];

/// Calls of the model per measurement.
const CALLS: u32 = 100;

/// Runs `model` on [`CHECK`] and on [`CALLS`] points of [0, 2π], reports, and exits QEMU:
/// 0 when every output is within `tolerance` of sin(x), 1 otherwise.
pub fn run(syst: SYST, name: &str, tolerance: f32, mut model: impl FnMut(&[f32; 1], &mut [f32; 1])) -> ! {
    let mut counter = SysTickCounter::start(syst);
    let mut y = [0.0f32; 1];
    let mut worst = 0.0f32;
    for (x, s) in CHECK {
        model(&[x], &mut y);
        worst = worst.max((y[0] - s).abs());
        defmt::println!("TT-SINE-OUT x={=f32} y={=f32} y_bits={=u32:#010x} sin={=f32}", x, y[0], y[0].to_bits(), s);
    }
    let step = 2.0 * core::f32::consts::PI / CALLS as f32;
    let mark = counter.now();
    for i in 0..CALLS {
        let x = [core::hint::black_box(i as f32 * step)];
        model(&x, &mut y);
        core::hint::black_box(&y);
    }
    let per_call = (counter.now() - mark) / u64::from(CALLS);
    defmt::println!(
        "TT-SINE model={=str} instructions_per_inference={=u64} static_ram={=usize} stack_used={=usize} worst_error={=f32}",
        name,
        per_call,
        stack::static_ram(),
        stack::used(),
        worst
    );
    if worst <= tolerance { exit_success() } else { exit_failure() }
}
