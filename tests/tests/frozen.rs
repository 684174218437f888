//! Frozen layers: they train nothing, keep their bits, cost no gradient and no optimizer RAM,
//! and give the same results as dropping their gradients at run time.
#![allow(clippy::unwrap_used)]

use core::mem::size_of;

use tinytrain::checkpoint::{self, CRC32, HEADER_LEN, VERSION, VERSION_1, file_len, fingerprint, fingerprint_v1};
use tinytrain::params::{InFlash, Role};
use tinytrain::prelude::*;
use tinytrain_tests::{flat_params, param_bits};

type Full = tinytrain::sequential![Dense<16, 24>, Relu<24>, Dense<24, 12>, Tanh<12>, Dense<12, 4>];
type Half = tinytrain::sequential![Frozen<Dense<16, 24>>, Relu<24>, Frozen<Dense<24, 12>>, Tanh<12>, Dense<12, 4>];
const FULL: usize = <Full as Layer>::NUM_PARAMS;
const HEAD: usize = <Half as Layer>::NUM_PARAMS;

/// 4 Gaussian blobs in 16 dimensions, 64 samples each.
fn blobs() -> Vec<([f32; 16], usize)> {
    let mut rng = Rng::new(42);
    let centres: Vec<[f32; 16]> = (0..4).map(|_| core::array::from_fn(|_| rng.uniform(-1.0, 1.0))).collect();
    (0..256)
        .map(|i| {
            let c = i % 4;
            (core::array::from_fn(|k| centres[c][k] + 0.3 * rng.uniform(-1.0, 1.0)), c)
        })
        .collect()
}

/// A frozen network with the weights of `full`.
fn frozen_copy(full: &Full) -> Box<Half> {
    let mut half = Box::new(Half::ZERO);
    half.a.0 = full.a.clone();
    half.b.b.a.0 = full.b.b.a.clone();
    half.b.b.b.b = full.b.b.b.b.clone();
    half
}

fn initial() -> Box<Full> {
    let mut full = Box::new(Full::ZERO);
    full.init(&mut Rng::new(3));
    full
}

#[test]
fn counts_follow_the_roles() {
    assert_eq!(FULL, 16 * 24 + 24 + 24 * 12 + 12 + 12 * 4 + 4);
    assert_eq!(HEAD, 12 * 4 + 4);
    assert_eq!(<Half as Params>::STORED_LEN, FULL);
    let mut roles = Vec::new();
    Half::ZERO.visit(&mut |d, p| roles.push((d.name, d.role, p.len())));
    assert_eq!(roles[0], ("weight", Role::Frozen, 384));
    assert_eq!(roles[3], ("bias", Role::Frozen, 12));
    assert_eq!(roles[4], ("weight", Role::Trainable, 48));
    // Freezing changes neither the weights file nor its fingerprint.
    assert_eq!(fingerprint::<Half>(), fingerprint::<Full>());
    assert_eq!(file_len::<Half>(), file_len::<Full>());
}

#[test]
fn frozen_first_half_keeps_its_bits_and_the_head_learns() {
    let data = blobs();
    let full = initial();
    let mut t = Box::new(Trainer::<Half, Adam<HEAD>>::ZERO);
    t.model = *frozen_copy(&full);
    let before = t.model.clone();
    let adam = AdamConfig { lr: Schedule::Constant(0.01), ..AdamConfig::default() };
    let first = t.evaluate(&CrossEntropy, &data[..]).unwrap();
    let report = t.fit(&adam, &CrossEntropy, &data[..]).epochs(20).batch_size(16).seed(5).run().unwrap();
    assert_eq!(param_bits(&t.model.a), param_bits(&before.a), "first frozen layer changed");
    assert_eq!(param_bits(&t.model.b.b.a), param_bits(&before.b.b.a), "second frozen layer changed");
    assert_ne!(param_bits(&t.model.b.b.b.b), param_bits(&before.b.b.b.b), "the head did not train");
    let last = t.evaluate(&CrossEntropy, &data[..]).unwrap();
    assert!(last.loss < 0.5 * first.loss, "loss {} -> {}", first.loss, last.loss);
    assert!(report.last.train_accuracy > 0.9, "{report:?}");
}

#[test]
fn typed_freezing_equals_run_time_freezing_bit_for_bit() {
    let data = blobs();
    let full = initial();
    let adam = AdamConfig { lr: Schedule::Constant(0.01), ..AdamConfig::default() };

    let mut typed = Box::new(Trainer::<Half, Adam<HEAD>>::ZERO);
    typed.model = *frozen_copy(&full);
    typed.fit(&adam, &CrossEntropy, &data[..]).epochs(5).batch_size(8).seed(9).clip_norm(1.0).run().unwrap();

    let mut masked = Box::new(Trainer::<Full, Adam<FULL>>::ZERO);
    masked.model = (*full).clone();
    masked.fit(&adam, &CrossEntropy, &data[..]).epochs(5).batch_size(8).seed(9).clip_norm(1.0).freeze(2).run().unwrap();

    assert_eq!(param_bits(&typed.model), param_bits(&masked.model));
    assert_eq!(param_bits(&masked.model.a), param_bits(&full.a), "run-time freezing changed a frozen layer");
    // Unfrozen, the same run gives other weights (the test can fail).
    let mut open = Box::new(Trainer::<Full, Adam<FULL>>::ZERO);
    open.model = (*full).clone();
    open.fit(&adam, &CrossEntropy, &data[..]).epochs(5).batch_size(8).seed(9).clip_norm(1.0).run().unwrap();
    assert_ne!(param_bits(&open.model), param_bits(&masked.model));
}

#[test]
fn frozen_layers_cost_no_gradient_and_no_optimizer_ram() {
    let s = Summary::<Half, Adam<HEAD>>::new("half");
    assert_eq!(s.params, FULL);
    assert_eq!(s.trainable, HEAD);
    assert_eq!(s.param_bytes, size_of::<Half>());
    assert_eq!(s.grad_bytes, size_of::<<Half as Params>::Grads>());
    assert_eq!(s.optimizer_bytes, size_of::<Adam<HEAD>>());
    assert_eq!(s.training_bytes(), size_of::<Trainer<Half, Adam<HEAD>>>());
    // The RAM saved is exactly the difference of the two trainers.
    let unfrozen = size_of::<Trainer<Full, Adam<FULL>>>();
    assert_eq!(s.frozen_savings, unfrozen - size_of::<Trainer<Half, Adam<HEAD>>>());
    let text = s.to_string();
    assert!(text.contains(&format!("Trainable params: {HEAD}")), "{text}");
    assert!(text.contains(&format!("Non-trainable params: {}", FULL - HEAD)), "{text}");
    assert!(text.contains("frozen layers save"), "{text}");
}

static BACKBONE: Dense<16, 24> = Dense { weight: [[0.05; 16]; 24], bias: [0.01; 24] };

struct Backbone;

impl InFlash for Backbone {
    type Layer = Dense<16, 24>;
    fn get() -> &'static Dense<16, 24> {
        &BACKBONE
    }
}

type InFlashNet = tinytrain::sequential![FrozenRef<Backbone>, Relu<24>, Dense<24, 4>];
const FLASH_HEAD: usize = <InFlashNet as Layer>::NUM_PARAMS;

#[test]
fn a_backbone_in_flash_takes_no_ram_and_loads_only_matching_files() {
    assert_eq!(size_of::<InFlashNet>(), size_of::<Dense<24, 4>>());
    let s = Summary::<InFlashNet, Adam<FLASH_HEAD>>::new("in-flash");
    assert_eq!(s.training_bytes(), size_of::<Trainer<InFlashNet, Adam<FLASH_HEAD>>>());
    assert_eq!(s.flash_param_bytes, 4 * (16 * 24 + 24));
    assert_eq!(
        s.frozen_savings,
        size_of::<
            Trainer<tinytrain::sequential![Dense<16, 24>, Relu<24>, Dense<24, 4>], Adam<{ 16 * 24 + 24 + FLASH_HEAD }>>,
        >() - size_of::<Trainer<InFlashNet, Adam<FLASH_HEAD>>>()
    );

    let data: Vec<([f32; 16], usize)> = blobs();
    let mut t = Box::new(Trainer::<InFlashNet, Adam<FLASH_HEAD>>::ZERO);
    t.model.init(&mut Rng::new(1));
    let adam = AdamConfig { lr: Schedule::Constant(0.01), ..AdamConfig::default() };
    t.fit(&adam, &CrossEntropy, &data[..]).epochs(3).batch_size(16).run().unwrap();
    let mut file = vec![0u8; file_len::<InFlashNet>()];
    checkpoint::save(&t.model, &mut file).unwrap();
    let mut back = InFlashNet::ZERO;
    checkpoint::load(&mut back, &file).unwrap();
    assert_eq!(param_bits(&back), param_bits(&t.model));
    // A file whose backbone values differ from the flash's is refused, the head untouched.
    file[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&0.5f32.to_le_bytes());
    let n = file.len() - 4;
    let crc = CRC32.checksum(&file[..n]);
    file[n..].copy_from_slice(&crc.to_le_bytes());
    let mut other = InFlashNet::ZERO;
    assert_eq!(checkpoint::load(&mut other, &file), Err(Error::FixedTensorDiffers { index: 0 }));
    assert_eq!(param_bits(&other), param_bits(&InFlashNet::ZERO));
}

/// `file` rewritten as format version 1 (same payload, older fingerprint).
fn as_version_1(file: &[u8], fp: u32) -> Vec<u8> {
    let mut v1 = file.to_vec();
    v1[4..6].copy_from_slice(&VERSION_1.to_le_bytes());
    v1[8..12].copy_from_slice(&fp.to_le_bytes());
    let n = v1.len() - 4;
    let crc = CRC32.checksum(&v1[..n]);
    v1[n..].copy_from_slice(&crc.to_le_bytes());
    v1
}

#[test]
fn unfrozen_and_version_1_files_load_into_a_frozen_network() {
    let full = initial();
    let mut file = vec![0u8; file_len::<Full>()];
    checkpoint::save(&*full, &mut file).unwrap();
    assert_eq!(u16::from_le_bytes([file[4], file[5]]), VERSION);
    let mut half = Box::new(Half::ZERO);
    checkpoint::load(&mut *half, &file).unwrap();
    assert_eq!(flat_params(&*half), flat_params(&*full));

    let v1 = as_version_1(&file, fingerprint_v1::<Full>());
    let mut again = Box::new(Half::ZERO);
    checkpoint::load(&mut *again, &v1).unwrap();
    assert_eq!(flat_params(&*again), flat_params(&*full));
    // A version 1 file carrying the version 2 fingerprint is another network's.
    let wrong = as_version_1(&file, fingerprint::<Full>());
    assert!(matches!(checkpoint::load(&mut *again, &wrong), Err(Error::WrongNetwork { .. })));
    // Versions other than 1 and 2 are refused with the version named.
    let mut v3 = file.clone();
    v3[4..6].copy_from_slice(&3u16.to_le_bytes());
    let err = checkpoint::load(&mut *again, &v3).unwrap_err();
    assert!(err.to_string().contains("version 3"), "{err}");
}
