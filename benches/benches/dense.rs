//! Dense layer and `digits-mlp` training benches (single thread).
//!
//! `cargo bench -p tinytrain-benches --bench dense`
//!
//! Training throughput is forward + backward + optimizer step, as in the PyTorch baselines;
//! data comes from the shipped digits training set, scaled into memory beforehand (the
//! baselines also exclude data loading).
//!
//! Steady state: before any timing each trainer takes [`WARM_UP_STEPS`] Adam steps on the
//! digits, far more than criterion's own warm-up. A fresh optimizer is faster than one that
//! has trained for a while: the state of weights whose gradient has gone to zero decays
//! towards zero for hundreds of steps (`m`) and tens of thousands (`v`), and a figure taken
//! from a fresh start would not show what those steps cost (before the optimizers flushed
//! subnormal state to zero, training at batch 1 became 9 to 14 times slower after the first
//! few hundred steps).
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tinytrain::prelude::*;
use tinytrain::train::{Batch4, Step};
use tinytrain::zoo::DigitsMlp;
use tinytrain_sim::datasets::{self, DatasetKind, Split};

type DigitsAdam = Adam<{ <DigitsMlp as Layer>::NUM_PARAMS }>;
type Sample = ([f32; 64], usize);

/// Adam steps every trainer takes before it is timed: past the ~83,000 after which a `v`
/// whose gradient stopped would have reached the subnormal range.
const WARM_UP_STEPS: usize = 100_000;

/// The shipped digits training set (1,437 samples) in a fixed shuffled order.
fn samples() -> Vec<Sample> {
    let set = datasets::load_split(DatasetKind::Digits, Split::Train, &datasets::workspace_data_dir()).unwrap();
    let images = set.byte_images(10).unwrap();
    let mut data: Vec<Sample> = (0..Dataset::<[f32; 64], usize>::len(&images))
        .map(|i| {
            let mut s: Sample = ([0.0; 64], 0);
            images.get(i, &mut s.0, &mut s.1).unwrap();
            s
        })
        .collect();
    let mut rng = Rng::new(11);
    for i in (1..data.len()).rev() {
        data.swap(i, rng.below(i as u32 + 1) as usize);
    }
    data
}

/// A `digits-mlp` trainer with its sample cursor.
struct Digits<'a> {
    t: Box<Trainer<DigitsMlp, DigitsAdam>>,
    data: &'a [Sample],
    next: usize,
}

impl<'a> Digits<'a> {
    /// PyTorch's initialisation, then [`WARM_UP_STEPS`] steps of `batch` samples.
    fn trained(data: &'a [Sample], batch: usize) -> Self {
        let mut d = Digits { t: Box::new(Trainer::ZERO), data, next: 0 };
        d.t.model.init_with(Init::TorchDefault, &mut Rng::new(0));
        for _ in 0..WARM_UP_STEPS {
            d.step(batch);
        }
        d
    }

    /// One optimizer step of `batch` samples.
    fn step(&mut self, batch: usize) -> Step {
        let scale = 1.0 / batch as f32;
        for _ in 0..batch {
            let (x, label) = &self.data[self.next % self.data.len()];
            self.next += 1;
            self.t.x = *x;
            self.t.accumulate(&CrossEntropy, label, scale, &mut Mode::Infer).unwrap();
        }
        self.t.apply(&AdamConfig::default(), None)
    }
}

fn dense(c: &mut Criterion) {
    let mut layer = Dense::<64, 32>::ZERO;
    layer.init(&mut Rng::new(1));
    let mut grads = Dense::<64, 32>::ZERO;
    let x: [f32; 64] = core::array::from_fn(|i| i as f32 / 64.0);
    let dy: [f32; 32] = core::array::from_fn(|i| (i as f32 - 16.0) / 32.0);
    let mut y = [0.0f32; 32];
    let mut dx = [0.0f32; 64];
    let mut g = c.benchmark_group("dense_64x32");
    g.bench_function("forward", |b| b.iter(|| layer.predict(black_box(&x), &mut (), &mut y)));
    g.bench_function("backward", |b| {
        b.iter(|| layer.backward(black_box(&x), &(), &y, black_box(&dy), &mut (), Some(&mut grads), Some(&mut dx)));
    });
    g.finish();
}

fn digits_training(c: &mut Criterion) {
    let data = samples();
    let mut g = c.benchmark_group("digits_mlp");
    let mut trained = None;
    for batch in [1usize, 32] {
        let mut d = Digits::trained(&data, batch);
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_function(format!("train_step_batch_{batch}"), |b| b.iter(|| black_box(d.step(batch))));
        trained.get_or_insert(d);
    }
    let mut d = trained.unwrap();
    let x = data[3].0;
    g.throughput(Throughput::Elements(1));
    g.bench_function("inference", |b| {
        b.iter(|| {
            let mut y = [0.0f32; 10];
            d.t.model.predict(black_box(&x), &mut d.t.acts, &mut y);
            black_box(y)
        });
    });
    // The 360 test-set-sized inputs four at a time (`predict4`), as `eval` runs them.
    let inputs: Vec<[f32; 64]> = data.iter().cycle().take(360).map(|(x, _)| *x).collect();
    let mut batch: Box<Batch4<DigitsMlp>> = Box::new(Batch4::ZERO);
    g.throughput(Throughput::Elements(360));
    g.bench_function("inference_batched_360", |b| {
        b.iter(|| {
            for chunk in inputs.chunks(4) {
                batch.x[..chunk.len()].copy_from_slice(chunk);
                batch.predict(&d.t.model, chunk.len());
                black_box(&batch.y);
            }
        });
    });
    g.finish();
}

criterion_group!(benches, dense, digits_training);
criterion_main!(benches);
