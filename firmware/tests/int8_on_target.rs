//! On-target tests of the int8 kernels, run on the Cortex-M4F under QEMU with defmt-test
//! (`cargo test --release --test int8_on_target` in `firmware/`): the inline-assembly kernels of
//! `tinytrain::int8::dsp` (`SMLAD`, `SXTB16`, `SXTAB16`) against their portable twins on random
//! data and on the extremes (all -128, all 127, 16-bit lanes at -32768 and 32767, the widest
//! input offsets, lengths that leave a tail), and the const-generic layers built on them
//! against the slice kernels (the reference loops the host interpreter runs).
#![no_std]
#![no_main]
#![allow(missing_docs)]

use cortex_m_rt as _;
use defmt_semihosting as _;

#[defmt::panic_handler]
fn defmt_panic() -> ! {
    tinytrain_firmware::exit_failure()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    tinytrain_firmware::exit_failure()
}

#[cortex_m_rt::exception]
unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
    defmt::error!("HardFault at pc={=u32:#010x}", frame.pc());
    tinytrain_firmware::exit_failure()
}

/// Input offsets: TFLite's range, 0, and the widest the assembly takes; and two outside it
/// (the portable loop must take over).
pub const OFFSETS: [i32; 8] = [0, 128, -127, 1, -32640, 32640, 40_000, -40_000];

/// Starting accumulators: zero, a bias, and the extremes (the sums wrap).
pub const INITS: [i32; 4] = [0, -12_345, i32::MAX, i32::MIN];

/// Fills `v` with one of the patterns: random, all -128, all 127, alternating extremes.
pub fn fill(v: &mut [i8], pattern: u32, rng: &mut tinytrain::Rng) {
    for (i, x) in v.iter_mut().enumerate() {
        *x = match pattern % 4 {
            0 => rng.next_u32() as i8,
            1 => -128,
            2 => 127,
            _ => {
                if i % 2 == 0 {
                    -128
                } else {
                    127
                }
            }
        };
    }
}

/// `2^e` by repeated halving or doubling (exact).
#[must_use]
pub fn pow2(e: i32) -> f64 {
    let mut v = 1.0f64;
    for _ in 0..e.unsigned_abs() {
        v = if e < 0 { v * 0.5 } else { v * 2.0 };
    }
    v
}

/// An `I -> O` layer (weights from a formula) against the slice kernel, with and without a
/// bias, on the four input patterns.
///
/// # Panics
/// When the layer's outputs differ from the slice kernel's.
pub fn dense_shape_matches<const I: usize, const O: usize>(rng: &mut tinytrain::Rng) {
    let mut weight = [[0i8; I]; O];
    for (i, v) in weight.as_flattened_mut().iter_mut().enumerate() {
        *v = (((i * 89 + 7) % 256) as u8).cast_signed();
    }
    let bias: [i32; O] = core::array::from_fn(|_| rng.next_u32().cast_signed() >> 18);
    let params = tinytrain::int8::FullyConnectedParams {
        input_offset: 128,
        weights_offset: 0,
        output_offset: -3,
        activation_min: -128,
        activation_max: 127,
    };
    let scale = 0.000_37;
    let Ok(exact) = tinytrain::int8::ExactScale::for_float_rule(scale, -128 + 3, 127 + 3) else {
        defmt::panic!("no multiplier")
    };
    let mut input = [0i8; I];
    for pattern in 0..4 {
        fill(&mut input, pattern, rng);
        for bias in [Some(&bias), None] {
            let layer = tinytrain::int8::Int8Dense { weight: &weight, bias, params, scale: exact };
            let mut y = [0i8; O];
            tinytrain::int8::Int8Layer::forward(&layer, &input, &mut y);
            let mut z = [0i8; O];
            let requant = tinytrain::int8::Requant::FloatPerTensor(scale);
            let b = bias.map(|b| &b[..]);
            assert!(
                tinytrain::int8::fully_connected(&params, requant, &input, weight.as_flattened(), O, b, &mut z).is_ok()
            );
            assert_eq!(y, z);
        }
    }
}

#[defmt_test::tests]
mod tests {
    use super::{INITS, OFFSETS, dense_shape_matches, fill, pow2};
    use tinytrain::Rng;
    use tinytrain::int8::dsp::{self, ColumnPair, FilterTaps, Stride, portable};
    use tinytrain::int8::{
        ConvParams, ExactScale, FullyConnectedParams, Int8Conv2d, Int8Dense, Int8Layer, OutputScale,
        QuantizedMultiplier, Requant, Shape4, ShiftedMultiplier, conv_2d, fully_connected,
        multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_plus,
    };

    #[test]
    fn dot_kernels_match_portable() {
        let mut rng = Rng::new(1);
        let mut x = [0i8; 70];
        let mut w = [0i8; 4 * 80];
        let mut cases = 0u32;
        for n in [0usize, 1, 3, 4, 5, 8, 15, 16, 17, 33, 64, 70] {
            for (k, &offset) in OFFSETS.iter().enumerate() {
                for pattern in 0..4 {
                    fill(&mut x, pattern, &mut rng);
                    fill(&mut w, pattern + k as u32, &mut rng);
                    let x = &x[..n];
                    let init = [INITS[k % 4], INITS[(k + 1) % 4], INITS[(k + 2) % 4], INITS[(k + 3) % 4]];
                    assert_eq!(
                        dsp::dot_rows4::<Stride<80>>(x, &w, offset, init),
                        portable::dot_rows4::<Stride<80>>(x, &w, offset, init)
                    );
                    assert_eq!(
                        dsp::dot_rows4::<Stride<73>>(x, &w, offset, init),
                        portable::dot_rows4::<Stride<73>>(x, &w, offset, init)
                    );
                    let init2 = [init[0], init[1]];
                    assert_eq!(
                        dsp::dot_rows2::<Stride<71>>(x, &w, offset, init2),
                        portable::dot_rows2::<Stride<71>>(x, &w, offset, init2)
                    );
                    assert_eq!(
                        dsp::dot_row1(x, &w[5..], offset, init[2]),
                        portable::dot_row1(x, &w[5..], offset, init[2])
                    );
                    assert_eq!(
                        dsp::dot_row1_small(x, &w[5..], offset, init[3]),
                        portable::dot_row1_small(x, &w[5..], offset, init[3])
                    );
                    // A weight slice too short for the rows: the portable loop, same result.
                    assert_eq!(
                        dsp::dot_rows4::<Stride<80>>(x, &w[..200], offset, init),
                        portable::dot_rows4::<Stride<80>>(x, &w[..200], offset, init)
                    );
                    cases += 1;
                }
            }
        }
        defmt::info!("dot_rows4/2, dot_row1, dot_row1_small: {=u32} cases", cases);
    }

    #[test]
    fn dense_blocks_match_portable() {
        let mut rng = Rng::new(9);
        let mut x = [0i8; 100];
        let mut w = [0i8; 12 * 100];
        let mut init = [0i32; 12];
        let mut cases = 0u32;
        for (k, &offset) in OFFSETS.iter().enumerate() {
            for pattern in 0..4 {
                fill(&mut x, pattern, &mut rng);
                fill(&mut w, pattern + k as u32, &mut rng);
                for (i, v) in init.iter_mut().enumerate() {
                    *v = INITS[(i + k) % 4];
                }
                for blocks in 0..=3 {
                    let (mut a, mut b) = ([7i32; 12], [7i32; 12]);
                    dsp::dense_blocks4::<Stride<80>>(&x, &w, offset, &init, &mut a, blocks);
                    portable::dense_blocks4::<Stride<80>>(&x, &w, offset, &init, &mut b, blocks);
                    assert_eq!(a, b);
                    // A stride that is not a multiple of four: the inputs past the groups are
                    // the caller's.
                    let (mut a, mut b) = ([7i32; 12], [7i32; 12]);
                    dsp::dense_blocks4::<Stride<73>>(&x[..73], &w, offset, &init, &mut a, blocks);
                    portable::dense_blocks4::<Stride<73>>(&x[..73], &w, offset, &init, &mut b, blocks);
                    assert_eq!(a, b);
                    // A stride whose block step (300 bytes) takes a 32-bit ADD.
                    let (mut a, mut b) = ([7i32; 12], [7i32; 12]);
                    dsp::dense_blocks4::<Stride<100>>(&x, &w, offset, &init, &mut a, blocks);
                    portable::dense_blocks4::<Stride<100>>(&x, &w, offset, &init, &mut b, blocks);
                    assert_eq!(a, b);
                    // Too few inputs for the stride: the portable loop.
                    let (mut a, mut b) = ([7i32; 12], [7i32; 12]);
                    dsp::dense_blocks4::<Stride<80>>(&x[..40], &w, offset, &init, &mut a, blocks);
                    portable::dense_blocks4::<Stride<80>>(&x[..40], &w, offset, &init, &mut b, blocks);
                    assert_eq!(a, b);
                    cases += 4;
                }
                // Every block written into a new array (12 rows), a stride that leaves inputs
                // to the caller, rows past the last block (10), too few weights or inputs.
                assert_eq!(
                    dsp::dense_blocks4_array::<Stride<80>, 12>(&x, &w, offset, &init),
                    portable::dense_blocks4_array::<Stride<80>, 12>(&x, &w, offset, &init)
                );
                assert_eq!(
                    dsp::dense_blocks4_array::<Stride<73>, 12>(&x[..73], &w, offset, &init),
                    portable::dense_blocks4_array::<Stride<73>, 12>(&x[..73], &w, offset, &init)
                );
                let init10: [i32; 10] = core::array::from_fn(|i| init[i]);
                assert_eq!(
                    dsp::dense_blocks4_array::<Stride<80>, 10>(&x, &w, offset, &init10),
                    portable::dense_blocks4_array::<Stride<80>, 10>(&x, &w, offset, &init10)
                );
                assert_eq!(
                    dsp::dense_blocks4_array::<Stride<80>, 12>(&x, &w[..900], offset, &init),
                    portable::dense_blocks4_array::<Stride<80>, 12>(&x, &w[..900], offset, &init)
                );
                assert_eq!(
                    dsp::dense_blocks4_array::<Stride<80>, 12>(&x[..40], &w, offset, &init),
                    portable::dense_blocks4_array::<Stride<80>, 12>(&x[..40], &w, offset, &init)
                );
                cases += 5;
            }
        }
        defmt::info!("dense_blocks4, dense_blocks4_array: {=u32} cases", cases);
    }

    #[test]
    fn mat_2x2_matches_portable() {
        let mut rng = Rng::new(2);
        let mut w = [0i8; 2 * 100];
        let mut buffer = [0u32; 90];
        let mut cases = 0u32;
        for n in [1usize, 3, 4, 6, 8, 18, 54, 80, 90] {
            for pattern in 0..6u32 {
                fill(&mut w, pattern, &mut rng);
                for (i, c) in buffer.iter_mut().enumerate() {
                    let lanes: [i16; 2] = match pattern {
                        0 | 1 => [rng.next_u32() as i16, rng.next_u32() as i16],
                        2 => [-32768; 2],
                        3 => [32767; 2],
                        4 => [i16::from(rng.next_u32() as i8) + 128, i16::from(rng.next_u32() as i8) - 127],
                        _ => {
                            if i % 3 == 0 {
                                [-32768, 32767]
                            } else {
                                [32767, -32768]
                            }
                        }
                    };
                    *c = u32::from(lanes[0].cast_unsigned()) | (u32::from(lanes[1].cast_unsigned()) << 16);
                }
                let init = [INITS[pattern as usize % 4], 7, INITS[(pattern as usize + 1) % 4], -7];
                let cols = &buffer[..n];
                assert_eq!(
                    dsp::mat_2x2::<Stride<100>>(cols, &w, n, init),
                    portable::mat_2x2::<Stride<100>>(cols, &w, n, init)
                );
                // Rows as long as the stride (a filter): the unrolled LDRD path when n is 90.
                assert_eq!(
                    dsp::mat_2x2::<FilterTaps<3, 3, 10>>(cols, &w, n, init),
                    portable::mat_2x2::<FilterTaps<3, 3, 10>>(cols, &w, n, init)
                );
                assert_eq!(
                    dsp::mat_2x2::<FilterTaps<1, 1, 18>>(cols, &w, n, init),
                    portable::mat_2x2::<FilterTaps<1, 1, 18>>(cols, &w, n, init)
                );
                cases += 1;
            }
        }
        defmt::info!("mat_2x2: {=u32} cases", cases);
    }

    #[test]
    fn widen4_matches_portable() {
        let mut rng = Rng::new(3);
        for i in 0..2000u32 {
            let word = match i {
                0 => 0x8080_8080,
                1 => 0x7f7f_7f7f,
                2 => 0x7f80_7f80,
                _ => rng.next_u32(),
            };
            let offset = OFFSETS[(i % 6) as usize];
            assert_eq!(dsp::widen4(word, offset), portable::widen4(word, offset));
        }
    }

    #[test]
    fn widening_copies_match_portable() {
        let mut rng = Rng::new(10);
        let mut src = [0i8; 400];
        for pattern in 0..4 {
            fill(&mut src, pattern, &mut rng);
            for &offset in &OFFSETS {
                for (rows, groups, stride) in [(10, 2, 40), (3, 3, 13), (1, 1, 4), (4, 6, 30), (0, 2, 8)] {
                    for c in 0..2 {
                        let (mut a, mut b) = ([0x5555_5555u32; 100], [0x5555_5555u32; 100]);
                        dsp::widen_rows(&src[1..], stride, rows, groups, offset, &mut a, c);
                        portable::widen_rows(&src[1..], stride, rows, groups, offset, &mut b, c);
                        assert_eq!(a, b);
                    }
                }
                for (start, len) in [(0, 40), (3, 41), (1, 7), (5, 200), (2, 0)] {
                    let mut copied = [0x11i8; 256];
                    dsp::copy_bytes(&src[start..start + len], &mut copied[1..]);
                    assert!(copied[1..=len] == src[start..start + len] && copied[0] == 0x11 && copied[len + 1] == 0x11);
                }
                for c in 0..2 {
                    let (mut a, mut b) = ([0u32; 80], [0u32; 80]);
                    dsp::widen_window::<FilterTaps<10, 8, 1>>(&src[3..], 47, offset, &mut a, c);
                    portable::widen_rows(&src[3..], 47, 10, 2, offset, &mut b, c);
                    assert_eq!(a, b);
                }
            }
        }
    }

    #[test]
    fn column_layout_feeds_mat_2x2() {
        // Two columns built slot by slot give two dot products per weight row.
        let mut rng = Rng::new(4);
        let n = 80;
        let mut xs = [[0i8; 80]; 2];
        for x in &mut xs {
            fill(x, 0, &mut rng);
        }
        let mut w = [0i8; 160];
        fill(&mut w, 0, &mut rng);
        let mut cols = [0u32; 80];
        for (c, x) in xs.iter().enumerate() {
            for (p, &v) in x.iter().enumerate() {
                ColumnPair::set(&mut cols, n, c, p, i16::from(v) - 7);
            }
        }
        let got = dsp::mat_2x2::<Stride<80>>(&cols, &w, n, [0; 4]);
        let want = [
            portable::dot_row1(&xs[0], &w, -7, 0),
            portable::dot_row1(&xs[1], &w, -7, 0),
            portable::dot_row1(&xs[0], &w[80..], -7, 0),
            portable::dot_row1(&xs[1], &w[80..], -7, 0),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn fast_multiplier_equals_the_reference() {
        // TFLite's MultiplyByQuantizedMultiplier: the SMLAL form against the port of the C++.
        let edges = [i32::MIN, i32::MIN + 1, -(1 << 30), -3, -1, 0, 1, 3, 1 << 30, i32::MAX - 1, i32::MAX];
        let mut rng = Rng::new(9);
        let mut cases = 0u32;
        for &x in &edges {
            for &m in &edges {
                for s in -33..=32 {
                    for offset in [-128, 0, 127, 1 << 24] {
                        assert_eq!(
                            multiply_by_quantized_multiplier_plus(x, m, s, offset),
                            multiply_by_quantized_multiplier(x, m, s).wrapping_add(offset)
                        );
                        cases += 1;
                    }
                }
            }
        }
        for _ in 0..20_000 {
            let x = rng.next_u32().cast_signed() >> (rng.next_u32() % 32);
            let m = (1 << 30) + (rng.next_u32() >> 2).cast_signed();
            let s = (rng.next_u32() % 40).cast_signed() - 33;
            let offset = (rng.next_u32() % 256).cast_signed() - 128;
            assert_eq!(
                multiply_by_quantized_multiplier_plus(x, m, s, offset),
                multiply_by_quantized_multiplier(x, m, s).wrapping_add(offset)
            );
            cases += 1;
        }
        // The prepared form of the convolutions.
        for _ in 0..5_000 {
            let shift = -2 - (rng.next_u32() % 30).cast_signed();
            let m = QuantizedMultiplier { multiplier: (1 << 30) + (rng.next_u32() >> 2).cast_signed(), shift };
            let Some(s) = ShiftedMultiplier::new(m) else { defmt::panic!("shift {=i32}", shift) };
            for acc in [i32::MIN, -1, 0, 1, i32::MAX, rng.next_u32().cast_signed() >> (rng.next_u32() % 32)] {
                let offset = (rng.next_u32() % 256).cast_signed() - 128;
                assert_eq!(
                    s.apply_plus(acc, offset),
                    multiply_by_quantized_multiplier(acc, m.multiplier, shift) + offset
                );
                cases += 1;
            }
        }
        defmt::info!("multiply_by_quantized_multiplier: {=u32} cases", cases);
    }

    #[test]
    fn exact_scale_gives_the_float_rule_on_the_device() {
        // The device's software f64 and the integer rule agree after the clamp, as on the host.
        let mut rng = Rng::new(5);
        let mut checked = 0u32;
        for i in 0..20 {
            let scale = f64::from(rng.uniform(0.5, 1.0)) * pow2(-(4 + (i % 16)));
            let zp = (rng.next_u32() % 256).cast_signed() - 128;
            let (lo, hi) = (-128 - zp, 127 - zp);
            let Ok(exact) = ExactScale::for_float_rule(scale, lo, hi) else {
                defmt::panic!("no multiplier for scale {=f64}", scale)
            };
            for _ in 0..200 {
                let acc = rng.next_u32().cast_signed() >> (rng.next_u32() % 31);
                let float = Requant::FloatPerTensor(scale).apply(acc, 0);
                assert_eq!(exact.apply(acc).clamp(lo, hi), float.clamp(lo, hi));
                assert_eq!(exact.apply_plus(acc, zp), exact.apply(acc) + zp);
                checked += 1;
            }
        }
        defmt::info!("exact requantisation: {=u32} accumulators", checked);
    }

    #[test]
    fn dense_layer_matches_the_slice_kernel() {
        static W: [[i8; 40]; 7] = {
            let mut w = [[0i8; 40]; 7];
            let mut i = 0;
            while i < 280 {
                w[i / 40][i % 40] = (((i * 89 + 7) % 256) as u8).cast_signed();
                i += 1;
            }
            w
        };
        let mut rng = Rng::new(6);
        let bias: [i32; 7] = core::array::from_fn(|_| rng.next_u32().cast_signed() >> 18);
        let mut x = [0i8; 40];
        for pattern in 0..4 {
            fill(&mut x, pattern, &mut rng);
            for &(offset, zp) in &[(128, -128), (-5, 3), (0, 0)] {
                let params = FullyConnectedParams {
                    input_offset: offset,
                    weights_offset: 0,
                    output_offset: zp,
                    activation_min: zp.max(-128),
                    activation_max: 127,
                };
                let scale = 0.000_37;
                let Ok(exact) = ExactScale::for_float_rule(scale, params.activation_min - zp, 127 - zp) else {
                    defmt::panic!("no multiplier")
                };
                let m = QuantizedMultiplier::from_real(scale);
                for (layer_scale, requant) in [
                    (OutputScale::<7>::ExactPerTensor(exact), Requant::FloatPerTensor(scale)),
                    (OutputScale::PerTensor(m), Requant::PerTensor(m)),
                ] {
                    let layer = Int8Dense { weight: &W, bias: Some(&bias), params, scale: layer_scale };
                    let mut y = [0i8; 7];
                    layer.forward(&x, &mut y);
                    let mut z = [0i8; 7];
                    assert!(fully_connected(&params, requant, &x, W.as_flattened(), 7, Some(&bias), &mut z).is_ok());
                    assert_eq!(y, z);
                }
            }
        }
    }

    #[test]
    fn dense_layer_shapes_match_the_slice_kernel() {
        // Rows a multiple of four (the blocks straight into the accumulators), with and without
        // inputs past the last group of four; fewer than four rows (the small loop); hello_world's.
        let mut rng = Rng::new(11);
        dense_shape_matches::<20, 8>(&mut rng);
        dense_shape_matches::<18, 8>(&mut rng);
        dense_shape_matches::<20, 2>(&mut rng);
        dense_shape_matches::<19, 3>(&mut rng);
        dense_shape_matches::<16, 16>(&mut rng);
        dense_shape_matches::<16, 1>(&mut rng);
        dense_shape_matches::<1, 16>(&mut rng);
    }

    #[test]
    fn narrow_dense_layer_matches_the_slice_kernel() {
        // Fewer than four inputs (the layer's one loop over its outputs), with and without a
        // bias.
        static W3: [[i8; 3]; 5] = [[127, -128, 5], [-1, 0, 1], [64, 63, -64], [-128, -128, -128], [3, 2, 1]];
        let mut rng = Rng::new(10);
        let bias5: [i32; 5] = core::array::from_fn(|_| rng.next_u32().cast_signed() >> 20);
        let mut x3 = [0i8; 3];
        let params = FullyConnectedParams {
            input_offset: 128,
            weights_offset: 0,
            output_offset: -128,
            activation_min: -128,
            activation_max: 127,
        };
        let scale = QuantizedMultiplier::from_real(0.004_1);
        for pattern in 0..4 {
            fill(&mut x3, pattern, &mut rng);
            for bias in [Some(&bias5), None] {
                let layer = Int8Dense { weight: &W3, bias, params, scale };
                let mut y = [0i8; 5];
                layer.forward(&x3, &mut y);
                let mut z = [0i8; 5];
                let b = bias.map(|b| &b[..]);
                let requant = Requant::PerTensor(scale);
                assert!(fully_connected(&params, requant, &x3, W3.as_flattened(), 5, b, &mut z).is_ok());
                assert_eq!(y, z);
            }
        }
    }

    #[test]
    fn conv_layer_matches_the_slice_kernel_micro_speech_shape() {
        // micro_speech's layer shape: SAME, stride 2, 10x8 filter, one input channel.
        static W1: [[[[i8; 1]; 8]; 10]; 8] = {
            let mut w = [[[[0i8; 1]; 8]; 10]; 8];
            let mut i = 0;
            while i < 640 {
                w[i / 80][(i / 8) % 10][i % 8][0] = (((i * 53 + 11) % 256) as u8).cast_signed();
                i += 1;
            }
            w
        };
        let mut rng = Rng::new(7);
        let m1: [QuantizedMultiplier; 8] =
            core::array::from_fn(|c| QuantizedMultiplier::from_real(0.0007 + 0.0001 * c as f64));
        let bias1: [i32; 8] = core::array::from_fn(|_| rng.next_u32().cast_signed() >> 20);
        let mut x1 = [0i8; 49 * 40];
        for pattern in [0, 1, 3] {
            fill(&mut x1, pattern, &mut rng);
            let conv: Int8Conv2d<'_, 49, 40, 1, 8, 10, 8, 2, 2, 25, 20> = Int8Conv2d {
                weight: &W1,
                bias: Some(&bias1),
                input_offset: 128,
                output_offset: -128,
                activation_min: -128,
                activation_max: 127,
                scale: OutputScale::PerChannel(&m1),
            };
            let mut y = [0i8; 4000];
            conv.forward(&x1, &mut y);
            let p = ConvParams {
                input_offset: 128,
                output_offset: -128,
                stride_height: 2,
                stride_width: 2,
                dilation_height: 1,
                dilation_width: 1,
                pad_height: 4,
                pad_width: 3,
                activation_min: -128,
                activation_max: 127,
            };
            let mut z = [0i8; 4000];
            assert!(
                conv_2d(
                    &p,
                    Requant::PerChannel(&m1),
                    Shape4([1, 49, 40, 1]),
                    &x1,
                    Shape4([8, 10, 8, 1]),
                    W1.as_flattened().as_flattened().as_flattened(),
                    Some(&bias1),
                    Shape4([1, 25, 20, 8]),
                    &mut z,
                )
                .is_ok()
            );
            assert_eq!(y, z);
        }
    }

    #[test]
    fn conv_layer_matches_the_slice_kernel_odd_shape() {
        // 3 channels in, 5 out, 3x3, 9-tap filter rows, SAME, stride 1.
        static W2: [[[[i8; 3]; 3]; 3]; 5] = {
            let mut w = [[[[0i8; 3]; 3]; 3]; 5];
            let mut i = 0;
            while i < 135 {
                w[i / 27][(i / 9) % 3][(i / 3) % 3][i % 3] = (((i * 71 + 3) % 256) as u8).cast_signed();
                i += 1;
            }
            w
        };
        let mut rng = Rng::new(8);
        let m2: [QuantizedMultiplier; 5] =
            core::array::from_fn(|c| QuantizedMultiplier::from_real(0.002 + 0.0005 * c as f64));
        let mut x2 = [0i8; 7 * 6 * 3];
        for pattern in 0..4 {
            fill(&mut x2, pattern, &mut rng);
            let conv: Int8Conv2d<'_, 7, 6, 3, 5, 3, 3, 1, 1, 7, 6> = Int8Conv2d {
                weight: &W2,
                bias: None,
                input_offset: -3,
                output_offset: 2,
                activation_min: 2,
                activation_max: 127,
                scale: OutputScale::PerChannel(&m2),
            };
            let mut y = [0i8; 7 * 6 * 5];
            conv.forward(&x2, &mut y);
            let p = ConvParams {
                input_offset: -3,
                output_offset: 2,
                stride_height: 1,
                stride_width: 1,
                dilation_height: 1,
                dilation_width: 1,
                pad_height: 1,
                pad_width: 1,
                activation_min: 2,
                activation_max: 127,
            };
            let mut z = [0i8; 7 * 6 * 5];
            assert!(
                conv_2d(
                    &p,
                    Requant::PerChannel(&m2),
                    Shape4([1, 7, 6, 3]),
                    &x2,
                    Shape4([5, 3, 3, 3]),
                    W2.as_flattened().as_flattened().as_flattened(),
                    None,
                    Shape4([1, 7, 6, 5]),
                    &mut z,
                )
                .is_ok()
            );
            assert_eq!(y, z);
        }
    }
}
