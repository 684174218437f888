// 2x2 max pooling in floor mode takes 25x25 to 12x12, not 13x13.
use tinytrain::prelude::*;

type Pool = MaxPool2x2<8, 25, 25, 13, 13>;

fn main() {
    let mut y = [[[0.0f32; 13]; 13]; 8];
    Pool::ZERO.predict(&[[[0.0; 25]; 25]; 8], &mut (), &mut y);
}
