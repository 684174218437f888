//! A Dense<4, 8> cannot feed a Relu<6>: the network type does not exist.
use tinytrain::prelude::*;

type Bad = tinytrain::sequential![Dense<4, 8>, Relu<6>, Dense<6, 2>];

fn main() {
    let net = Bad::ZERO;
    let mut acts = <Bad as Layer>::Acts::ZERO;
    let mut y = [0.0f32; 2];
    net.forward(&[0.0; 4], &mut acts, &mut y, &mut Mode::Infer);
}
