//! Any flash contents given to the checkpoint slot scanner: it finds at most the valid
//! checkpoints, loads only finite values, leaves the model untouched when nothing is valid,
//! and never panics. The input is laid over a valid two-slot region so that mutations reach
//! deep into the format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinytrain::prelude::*;
use tinytrain::storage::CheckpointStore;
use tinytrain::zoo::Xor;
use tinytrain_sim::flash::SimFlash;

fuzz_target!(|data: &[u8]| {
    let mut flash = SimFlash::<4, 256>::new(1024);
    let store = CheckpointStore::<Xor>::new(&flash, 0).unwrap();
    let mut m = Xor::ZERO;
    m.init(&mut Rng::new(2));
    store.save(&mut flash, &m).unwrap();
    store.save(&mut flash, &m).unwrap();
    // Overwrite with the fuzz input by erasing and programming the first bytes.
    let mut image = flash.bytes().to_vec();
    for (dst, src) in image.iter_mut().zip(data) {
        *dst = *src;
    }
    let mut fuzzed = SimFlash::<4, 256>::new(1024);
    use embedded_storage::nor_flash::NorFlash;
    fuzzed.write(0, &image).unwrap();
    let mut model = Xor::ZERO;
    let before = model.clone();
    match store.load(&mut fuzzed, &mut model) {
        Ok(Some(_)) => assert!(model.params_finite()),
        Ok(None) | Err(_) => assert!(model == before, "nothing valid, yet the model changed"),
    }
});
