//! The harness of the int8 inference binaries (`hello_world_int8`, `micro_speech`): runs a
//! network written by `tinytrain-sim import model.tflite --rust` on a sequence of inputs,
//! prints every output for the host to compare bit for bit (`host-sim/tests/firmware_int8.rs`)
//! and counts instructions (SysTick under QEMU `-icount shift=7`: instruction counts, not
//! cycles).
//!
//! Lines (parsed by the host; keep their shape):
//! - `TT-I8 model=NAME index=K output=[..]`: the output of input `K`, as signed bytes;
//! - `TT-I8-DONE model=NAME inferences=N outputs_crc=0x.. instructions_per_inference=I
//!   macs=M`: the CRC-32 of all outputs in order and the mean instructions of `forward`.

use tinytrain::int8::Int8Layer;
use tinytrain_firmware_app::Counter;

use crate::SysTickCounter;

/// SplitMix64, the generator of the fixtures' inputs (`tests/fixtures/tflite/README.md`).
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next int8 element as the fixtures map it: the top byte, read as signed.
    pub fn next_i8(&mut self) -> i8 {
        ((self.next_u64() >> 56) as u8).cast_signed()
    }
}

/// zlib's CRC-32, one byte at a time (small and slow: it runs outside the timed part).
#[derive(Debug, Clone, Copy)]
pub struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Self {
        Crc32(!0)
    }
}

impl Crc32 {
    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[i8]) {
        for &b in bytes {
            self.0 ^= u32::from(b.cast_unsigned());
            for _ in 0..8 {
                self.0 = if self.0 & 1 != 0 { (self.0 >> 1) ^ 0xEDB8_8320 } else { self.0 >> 1 };
            }
        }
    }

    /// The CRC of everything added.
    #[must_use]
    pub fn value(self) -> u32 {
        !self.0
    }
}

/// What [`run`] measured.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Mean instructions of one `forward`.
    pub instructions_per_inference: u64,
    /// CRC-32 of all outputs.
    pub outputs_crc: u32,
}

/// Runs `net` on `count` inputs, input `k` written by `input(k, &mut x)`, prints each output
/// and the summary line, and returns the mean instructions of `forward` (the counter's own
/// cost, measured on an empty interval, taken off).
pub fn run<const IN: usize, const OUT: usize>(
    counter: &mut SysTickCounter,
    model: &str,
    net: &impl Int8Layer<IN, OUT>,
    count: usize,
    macs: u64,
    mut input: impl FnMut(usize, &mut [i8; IN]),
) -> Measured {
    let mut x = [0i8; IN];
    let mut y = [0i8; OUT];
    let mut crc = Crc32::default();
    let mut total = 0u64;
    let empty = {
        let a = counter.now();
        counter.now() - a
    };
    for k in 0..count {
        input(k, &mut x);
        let start = counter.now();
        net.forward(core::hint::black_box(&x), &mut y);
        total += (counter.now() - start).saturating_sub(empty);
        crc.update(&y);
        defmt::println!("TT-I8 model={=str} index={=usize} output={=[?]}", model, k, &y[..]);
    }
    let per = total / count.max(1) as u64;
    defmt::println!(
        "TT-I8-DONE model={=str} inferences={=usize} outputs_crc={=u32:#010x} instructions_per_inference={=u64} macs={=u64}",
        model,
        count,
        crc.value(),
        per,
        macs
    );
    Measured { instructions_per_inference: per, outputs_crc: crc.value() }
}
