// The Keras mnist_cnn builds and runs forward: every shape assert holds.
use tinytrain::prelude::*;
use tinytrain::zoo::{MnistCnn, MnistCnnTiny};

fn main() {
    let net = Box::new(MnistCnnTiny::ZERO);
    let mut acts = Box::new(<MnistCnnTiny as Layer>::Acts::ZERO);
    let mut y = [0.0f32; 10];
    net.predict(&[[[0.0; 28]; 28]; 1], &mut acts, &mut y);
    assert_eq!(MnistCnn::NUM_PARAMS, 1_199_882);
}
