//! Any bytes given to the IDX loader (gzipped or not): an error with a message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinytrain_sim::idx;

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = idx::decompress(data.to_vec()) {
        if let Ok(images) = idx::parse_images(&raw) {
            assert_eq!(images.pixels.len(), images.count * images.sample_len());
        }
        if let Ok(labels) = idx::parse_labels(&raw, 10) {
            assert!(labels.iter().all(|&l| l < 10));
        }
    }
});
