//! An Adam sized for another network fails to build (a post-monomorphization assert, which
//! fires at `cargo build`).
use tinytrain::prelude::*;

type Net = tinytrain::sequential![Dense<4, 8>, Relu<8>, Dense<8, 2>];

fn main() {
    // Net has 58 parameters.
    let mut t = Box::new(Trainer::<Net, Adam<57>>::ZERO);
    t.model.init(&mut Rng::new(1));
    let _ = t.apply(&AdamConfig::default(), None);
}
