//! The counterpart of the failing cases: matching shapes and a matching optimizer size build,
//! and a training step runs.
use tinytrain::prelude::*;

type Net = tinytrain::sequential![Dense<4, 8>, Relu<8>, Dense<8, 2>];

fn main() {
    let mut t = Box::new(Trainer::<Net, Adam<{ <Net as Layer>::NUM_PARAMS }>>::ZERO);
    t.model.init(&mut Rng::new(1));
    t.x = [0.5, -0.25, 1.0, 0.0];
    let _ = t.accumulate(&CrossEntropy, &1, 1.0, &mut Mode::Infer);
    let _ = t.apply(&AdamConfig::default(), None);
    assert_eq!(<Net as Layer>::NUM_PARAMS, 4 * 8 + 8 + 8 * 2 + 2);
}
