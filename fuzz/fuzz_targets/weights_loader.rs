//! Any bytes given to the weights-file loader: an error leaves the model untouched, success
//! loads only finite values, and nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinytrain::prelude::*;
use tinytrain::zoo::DigitsMlp;

fuzz_target!(|data: &[u8]| {
    let mut model = DigitsMlp::ZERO;
    model.init(&mut Rng::new(1));
    let before = model.clone();
    match tinytrain::checkpoint::load(&mut model, data) {
        Ok(()) => assert!(model.params_finite()),
        Err(e) => {
            assert!(model == before, "a refused file changed the model");
            assert!(!e.to_string().is_empty());
        }
    }
});
