// Max pooling of 3 with stride 2 in floor mode takes length 10 to 4, not 5.
use tinytrain::prelude::*;

type Pool = MaxPool1d<2, 3, 2, 10, 5>;

fn main() {
    let mut y = [[0.0f32; 5]; 2];
    Pool::ZERO.predict(&[[0.0; 10]; 2], &mut (), &mut y);
}
