// A 1-D convolution with kernel 5, stride 2 and padding 1 takes length 32 to 15, not 16.
use tinytrain::prelude::*;

type Conv = Conv1d<1, 4, 5, 2, 1, 32, 16>;

fn main() {
    let mut y = [[0.0f32; 16]; 4];
    Conv::ZERO.predict(&[[0.0; 32]; 1], &mut (), &mut y);
}
