//! The same for momentum, stepping the optimizer directly.
use tinytrain::prelude::*;

type Net = tinytrain::sequential![Dense<2, 4>, Tanh<4>, Dense<4, 1>];

fn main() {
    let mut net = Net::ZERO;
    let grads = Net::ZERO;
    let mut opt = Momentum::<{ <Net as Layer>::NUM_PARAMS + 1 }>::ZERO;
    opt.step(&MomentumConfig::default(), &mut net, &grads);
}
