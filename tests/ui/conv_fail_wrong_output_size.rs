// A 3x3 convolution without padding takes 28x28 to 26x26; declaring 27x26 does not build.
use tinytrain::prelude::*;

type Conv = Conv2d<1, 4, 3, 1, 0, 28, 28, 27, 26>;

fn main() {
    let conv = Conv::ZERO;
    let mut y = [[[0.0f32; 26]; 27]; 4];
    conv.predict(&[[[0.0; 28]; 28]; 1], &mut (), &mut y);
}
