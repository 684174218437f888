// A 1-D max pooling over 6 channels cannot follow a 1-D convolution with 4 filters: the
// sequence types [[f32; 14]; 4] and [[f32; 14]; 6] differ, so the chain is not a layer.
use tinytrain::prelude::*;

type Net = tinytrain::sequential![Conv1d<1, 4, 3, 1, 0, 16, 14>, MaxPool1d<6, 2, 2, 14, 7>];

fn main() {
    let _ = Net::NUM_PARAMS;
}
