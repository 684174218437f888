// Flatten of 64x12x12 gives 9216 values, not 9000.
use tinytrain::prelude::*;

type Net = tinytrain::sequential![
    Conv2d<1, 64, 3, 2, 0, 25, 25, 12, 12>,
    Flatten<64, 12, 12, 9000>,
    Dense<9000, 10>,
];

fn main() {
    let net = Box::new(Net::ZERO);
    let mut acts = Box::new(<Net as Layer>::Acts::ZERO);
    let mut y = [0.0f32; 10];
    net.predict(&[[[0.0; 25]; 25]; 1], &mut acts, &mut y);
}
