//! The int8 slice kernels never panic on what arrives at run time: random shapes, lengths,
//! strides, paddings, offsets and multipliers give `Ok` or an `Error`, in debug builds (where
//! integer overflow would panic) too.
#![allow(clippy::unwrap_used)]

use tinytrain::Rng;
use tinytrain::int8::{
    AddParams, ConvParams, FullyConnectedParams, FusedActivation, PoolParams, QuantizedMultiplier, Requant, Shape4,
    SoftmaxParams, add, average_pool, conv_2d, depthwise_conv_2d, fully_connected, lookup, max_pool, softmax,
    tanh_table,
};

fn small(rng: &mut Rng) -> usize {
    rng.below(5) as usize
}

fn any_i32(rng: &mut Rng) -> i32 {
    match rng.below(4) {
        0 => i32::MIN,
        1 => i32::MAX,
        _ => rng.next_u32().cast_signed() >> rng.below(32),
    }
}

fn shape(rng: &mut Rng) -> Shape4 {
    Shape4([small(rng), small(rng), small(rng), small(rng)])
}

fn bytes(rng: &mut Rng, n: usize) -> Vec<i8> {
    (0..n).map(|_| rng.next_u32() as i8).collect()
}

#[test]
fn random_arguments_give_ok_or_error() {
    let mut rng = Rng::new(2026);
    let mut ok = 0;
    for _ in 0..20_000 {
        let (xs, ws, os) = (shape(&mut rng), shape(&mut rng), shape(&mut rng));
        // Lengths usually right, sometimes off by one.
        let len = |s: Shape4, rng: &mut Rng| s.flat_size().unwrap() + usize::from(rng.below(8) == 0);
        let (nx, nw, ny) = (len(xs, &mut rng), len(ws, &mut rng), len(os, &mut rng));
        let x = bytes(&mut rng, nx);
        let w = bytes(&mut rng, nw);
        let mut y = vec![0i8; ny];
        let n_b = small(&mut rng);
        let bias: Vec<i32> = (0..n_b).map(|_| any_i32(&mut rng)).collect();
        let m: Vec<QuantizedMultiplier> = (0..small(&mut rng))
            .map(|_| QuantizedMultiplier { multiplier: any_i32(&mut rng), shift: any_i32(&mut rng) })
            .collect();
        let scales: Vec<f64> = (0..small(&mut rng)).map(|_| f64::from(any_i32(&mut rng))).collect();
        let requant = match rng.below(5) {
            0 => Requant::PerTensor(m.first().copied().unwrap_or_default()),
            1 => Requant::PerChannel(&m),
            2 => Requant::FloatPerTensor(scales.first().copied().unwrap_or(f64::NAN)),
            3 => Requant::FloatPerChannel(&scales),
            _ => Requant::SingleRoundingPerChannel(&m),
        };
        let p = ConvParams {
            input_offset: any_i32(&mut rng),
            output_offset: any_i32(&mut rng),
            stride_height: small(&mut rng),
            stride_width: small(&mut rng),
            dilation_height: small(&mut rng),
            dilation_width: small(&mut rng),
            pad_height: small(&mut rng),
            pad_width: small(&mut rng),
            activation_min: any_i32(&mut rng),
            activation_max: any_i32(&mut rng),
        };
        let b = (rng.below(2) == 0).then_some(bias.as_slice());
        ok += usize::from(conv_2d(&p, requant, xs, &x, ws, &w, b, os, &mut y).is_ok());
        ok += usize::from(depthwise_conv_2d(&p, small(&mut rng), requant, xs, &x, ws, &w, b, os, &mut y).is_ok());
        let fp = FullyConnectedParams {
            input_offset: p.input_offset,
            weights_offset: any_i32(&mut rng),
            output_offset: p.output_offset,
            activation_min: p.activation_min,
            activation_max: p.activation_max,
        };
        ok += usize::from(fully_connected(&fp, requant, &x, &w, small(&mut rng), b, &mut y).is_ok());
        let pp = PoolParams {
            stride_height: p.stride_height,
            stride_width: p.stride_width,
            filter_height: small(&mut rng),
            filter_width: small(&mut rng),
            pad_height: p.pad_height,
            pad_width: p.pad_width,
            activation_min: p.activation_min,
            activation_max: p.activation_max,
        };
        ok += usize::from(average_pool(&pp, xs, &x, os, &mut y).is_ok());
        ok += usize::from(max_pool(&pp, xs, &x, os, &mut y).is_ok());
        let sp = SoftmaxParams {
            input_multiplier: any_i32(&mut rng),
            input_left_shift: any_i32(&mut rng),
            diff_min: any_i32(&mut rng),
        };
        ok += usize::from(softmax(&sp, small(&mut rng), &x, &mut y).is_ok());
        let ap = AddParams::new(1.0, 0, 1.0, 0, 1.0, 0, FusedActivation::None).unwrap();
        let ap = AddParams {
            input1_offset: any_i32(&mut rng),
            input2_shift: any_i32(&mut rng),
            left_shift: any_i32(&mut rng),
            ..ap
        };
        let x2 = bytes(&mut rng, x.len());
        ok += usize::from(add(&ap, &x, &x2, &mut y).is_ok());
        let lut = tanh_table(
            f32::from_bits(rng.next_u32()),
            any_i32(&mut rng),
            f32::from_bits(rng.next_u32()),
            any_i32(&mut rng),
        );
        ok += usize::from(lookup(&lut, &x, &mut y).is_ok());
    }
    // Some calls did run (the test is not only about rejections).
    assert!(ok > 10_000, "{ok}");
}
