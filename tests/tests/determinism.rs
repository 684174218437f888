//! Determinism and the weights file.
//!
//! * Two `fit` runs with the same seeds give bit-identical weights (compared with `to_bits`);
//!   another shuffling seed or another init seed gives different weights.
//! * A weights file round-trips bit-exactly.
//! * A corrupted, truncated, padded or foreign weights file is refused with the matching
//!   [`Error`] variant, and the model keeps every bit of its weights.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tinytrain::checkpoint::{CRC32, HEADER_LEN, file_len, load, save, verify};
use tinytrain::prelude::*;
use tinytrain_tests::param_bits;

type Net = tinytrain::sequential![Dense<8, 16>, Relu<16>, Dense<16, 3>];
/// Same parameter count as `Net`, another activation: another fingerprint.
type SameSizeNet = tinytrain::sequential![Dense<8, 16>, Tanh<16>, Dense<16, 3>];
type SmallNet = tinytrain::sequential![Dense<8, 4>, Relu<4>, Dense<4, 3>];

/// 90 samples of three noisy clusters, from a fixed seed.
fn dataset() -> Vec<([f32; 8], usize)> {
    let mut rng = Rng::new(2024);
    (0..90)
        .map(|i| {
            let class = i % 3;
            let x = core::array::from_fn(|k| if k % 3 == class { 1.0 } else { 0.0 } + 0.4 * rng.normal());
            (x, class)
        })
        .collect()
}

/// Trains `Net` with Adam (batch 8 with a short last batch, shuffled, gradient clipping)
/// and returns the trainer.
fn train(init_seed: u64, fit_seed: u64) -> Box<Trainer<Net, Adam<{ <Net as Layer>::NUM_PARAMS }>>> {
    let data = dataset();
    let mut t = Box::new(Trainer::<Net, Adam<{ <Net as Layer>::NUM_PARAMS }>>::ZERO);
    t.model.init(&mut Rng::new(init_seed));
    let adam = AdamConfig { lr: Schedule::Constant(0.01), ..AdamConfig::default() };
    let fit = FitConfig { epochs: 6, batch_size: 8, seed: fit_seed, clip_norm: Some(5.0), ..FitConfig::default() };
    let report = t
        .fit_with(&adam, &CrossEntropy, &data[..], None::<&[([f32; 8], usize)]>, &fit, None, &mut (), &mut ())
        .unwrap();
    assert_eq!(report.epochs_run, 6);
    assert!(report.last.train_accuracy > 0.8, "training did not learn: {:?}", report.last);
    t
}

#[test]
fn same_seeds_give_bit_identical_weights() {
    let (a, b) = (train(1, 7), train(1, 7));
    assert_eq!(param_bits(&a.model), param_bits(&b.model));
    // The optimizer state too: a resumed run would continue identically.
    assert_eq!(a.opt, b.opt);
}

#[test]
fn another_shuffling_seed_gives_other_weights() {
    let (a, b) = (train(1, 7), train(1, 8));
    let (pa, pb) = (param_bits(&a.model), param_bits(&b.model));
    let differing = pa.iter().zip(&pb).filter(|(x, y)| x != y).count();
    assert!(differing > pa.len() / 2, "only {differing} of {} parameters differ", pa.len());
}

#[test]
fn another_init_seed_gives_other_weights() {
    let (a, b) = (train(1, 7), train(2, 7));
    let (pa, pb) = (param_bits(&a.model), param_bits(&b.model));
    let differing = pa.iter().zip(&pb).filter(|(x, y)| x != y).count();
    assert!(differing > pa.len() / 2, "only {differing} of {} parameters differ", pa.len());
}

fn trained_file() -> (Box<Trainer<Net, Adam<{ <Net as Layer>::NUM_PARAMS }>>>, Vec<u8>) {
    let t = train(3, 3);
    let mut buf = vec![0u8; file_len::<Net>()];
    assert_eq!(save(&t.model, &mut buf).unwrap(), file_len::<Net>());
    (t, buf)
}

#[test]
fn save_load_round_trip_is_bit_exact() {
    let (t, file) = trained_file();
    assert_eq!(file.len(), HEADER_LEN + 4 * <Net as Layer>::NUM_PARAMS + 4);
    verify::<Net>(&file).unwrap();
    let mut copy = Box::new(Net::ZERO);
    load(&mut *copy, &file).unwrap();
    assert_eq!(param_bits(&*copy), param_bits(&t.model));
    // Saving the copy gives the same bytes.
    let mut again = vec![0u8; file.len()];
    save(&*copy, &mut again).unwrap();
    assert_eq!(again, file);
    // And the loaded network predicts the same bits.
    let mut loaded = Box::new(Trainer::<Net, Sgd>::ZERO);
    loaded.model = (*copy).clone();
    let mut original = Box::new(Trainer::<Net, Sgd>::ZERO);
    original.model = t.model.clone();
    for (x, _) in dataset().iter().take(10) {
        let a = loaded.predict(x).unwrap().map(f32::to_bits);
        let b = original.predict(x).unwrap().map(f32::to_bits);
        assert_eq!(a, b);
    }
}

/// Loads `bytes` into a model holding other weights and checks that it is refused with an
/// error `expected` accepts, leaving every bit of the model as it was.
#[track_caller]
fn refused<M: Layer>(what: &str, bytes: &[u8], expected: impl Fn(&Error) -> bool) {
    let mut model = Box::new(M::ZERO);
    model.init(&mut Rng::new(99));
    let before = param_bits(&*model);
    let err = load(&mut *model, bytes).expect_err(what);
    assert!(expected(&err), "{what}: unexpected error {err:?} ({err})");
    assert_eq!(verify::<M>(bytes), Err(err), "{what}: verify and load disagree");
    assert_eq!(param_bits(&*model), before, "{what}: a refused file changed the model");
}

fn with_crc(mut bytes: Vec<u8>) -> Vec<u8> {
    let n = bytes.len();
    let crc = CRC32.checksum(&bytes[..n - 4]);
    bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

#[test]
fn corrupted_files_are_refused() {
    let (_, file) = trained_file();
    let n = file.len();
    // A flipped bit anywhere in the payload or the checksum.
    for at in [HEADER_LEN, HEADER_LEN + 1, n / 2, n - 5, n - 4, n - 1] {
        for bit in [0, 7] {
            let mut bad = file.clone();
            bad[at] ^= 1 << bit;
            refused::<Net>(&format!("bit {bit} of byte {at}"), &bad, |e| matches!(e, Error::Checksum { .. }));
        }
    }
    // A flipped bit in the reserved header field or the fingerprint.
    for at in [8, 20] {
        let mut bad = file.clone();
        bad[at] ^= 0x10;
        refused::<Net>(&format!("header byte {at}"), &bad, |e| matches!(e, Error::Checksum { .. }));
    }
    let mut bad = file.clone();
    bad[0] = b'X';
    refused::<Net>("magic", &bad, |e| *e == Error::BadMagic);
    let mut bad = file.clone();
    bad[4] = 9;
    refused::<Net>("version", &bad, |e| matches!(e, Error::UnsupportedVersion { found: 9, .. }));
}

#[test]
fn truncated_files_are_refused() {
    let (_, file) = trained_file();
    let n = file.len();
    for len in [n - 1, n - 4, n - 5, n / 2, HEADER_LEN + 4] {
        refused::<Net>(&format!("{len} of {n} bytes"), &file[..len], |e| {
            *e == Error::Truncated { expected: n, found: len }
        });
    }
    for len in [0, 3, HEADER_LEN + 3] {
        refused::<Net>(
            &format!("{len} bytes"),
            &file[..len],
            |e| matches!(e, Error::Truncated { found, .. } if *found == len),
        );
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let (_, file) = trained_file();
    let mut long = file.clone();
    long.extend_from_slice(&[0, 0, 0]);
    refused::<Net>("3 extra bytes", &long, |e| {
        *e == Error::TrailingBytes { expected: file.len(), found: file.len() + 3 }
    });
}

#[test]
fn a_file_of_another_network_is_refused() {
    let (_, file) = trained_file();
    assert_eq!(<SameSizeNet as Layer>::NUM_PARAMS, <Net as Layer>::NUM_PARAMS);
    refused::<SameSizeNet>("same size, other activation", &file, |e| matches!(e, Error::WrongNetwork { .. }));
    refused::<SmallNet>("smaller network", &file, |e| matches!(e, Error::WrongNetwork { .. }));
    // And the other way round: a small network's file into the big one.
    let mut small = SmallNet::ZERO;
    small.init(&mut Rng::new(4));
    let mut buf = vec![0u8; file_len::<SmallNet>()];
    save(&small, &mut buf).unwrap();
    refused::<Net>("small file into the big network", &buf, |e| matches!(e, Error::WrongNetwork { .. }));
}

#[test]
fn a_consistent_file_with_the_wrong_count_is_refused() {
    let (_, file) = trained_file();
    // The right fingerprint, a header announcing one parameter more, a valid checksum.
    let p = <Net as Layer>::NUM_PARAMS as u32;
    let mut bad = file.clone();
    bad[12..16].copy_from_slice(&(p + 1).to_le_bytes());
    bad[16..20].copy_from_slice(&(4 * (p + 1)).to_le_bytes());
    bad.splice(HEADER_LEN..HEADER_LEN, [0u8; 4]);
    refused::<Net>("one parameter more", &with_crc(bad), |e| {
        *e == Error::ParamCount { expected: p as usize, found: p as usize + 1 }
    });
}

#[test]
fn non_finite_weights_are_refused_and_never_saved() {
    let (t, file) = trained_file();
    let mut bad = file.clone();
    let index = 5;
    bad[HEADER_LEN + 4 * index..HEADER_LEN + 4 * index + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    refused::<Net>("NaN with a valid checksum", &with_crc(bad), |e| *e == Error::NonFinite { index });

    let mut model = t.model.clone();
    model.b.b.bias[1] = f32::INFINITY;
    let mut buf = vec![0u8; file_len::<Net>()];
    let at = <Net as Layer>::NUM_PARAMS - 2;
    assert_eq!(save(&model, &mut buf), Err(Error::NonFinite { index: at }));
    let mut short = vec![0u8; file_len::<Net>() - 1];
    assert!(matches!(save(&t.model, &mut short), Err(Error::BufferTooSmall { .. })));
}
