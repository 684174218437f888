//! `math::exp_in_place`, the branch-free vectorisable form of `libm`'s `expf` that softmax and
//! cross-entropy use, against `libm` one value at a time.

use tinytrain::math;

#[test]
fn exp_in_place_gives_libm_bits() {
    // Every 251st bit pattern (both signs, every exponent, NaN and infinities), and the
    // neighbours of each range boundary of libm's expf.
    let mut xs: Vec<f32> = (0..=u32::MAX).step_by(251).map(f32::from_bits).collect();
    for edge in [0x42ae_ac50u32, 0x42b1_7218, 0x42cf_f1b5, 0x3f85_1592, 0x3eb1_7218, 0x3900_0000, 0, 0x7f80_0000] {
        for d in 0..64 {
            for b in [edge.wrapping_sub(d), edge.wrapping_add(d)] {
                xs.extend([f32::from_bits(b), f32::from_bits(b | 0x8000_0000)]);
            }
        }
    }
    // The values of softmax's usual range once more, in chunks of their own.
    let inside: Vec<f32> = xs.iter().copied().filter(|x| x.abs() < 87.0).collect();
    assert!(inside.len() > xs.len() / 3);
    xs.extend(inside);
    let want: Vec<f32> = xs.iter().map(|&x| math::exp(x)).collect();
    // Chunks of several lengths, so that vector bodies and scalar remainders both run.
    for len in [1usize, 7, 10, 16, 1000] {
        let mut got = xs.clone();
        got.chunks_mut(len).for_each(math::exp_in_place);
        for ((x, g), w) in xs.iter().zip(&got).zip(&want) {
            assert!(g.to_bits() == w.to_bits() || g.is_nan() && w.is_nan(), "exp({x:e}) = {g:e}, libm {w:e}");
        }
    }
}
