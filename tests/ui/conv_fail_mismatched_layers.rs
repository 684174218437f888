// The convolution outputs 32x26x26; a pooling layer that takes 32x24x24 cannot follow it.
use tinytrain::prelude::*;

type Net = tinytrain::sequential![
    Conv2d<1, 32, 3, 1, 0, 28, 28, 26, 26>,
    MaxPool2x2<32, 24, 24, 12, 12>,
];

fn main() {
    let _ = Net::NUM_PARAMS;
}
