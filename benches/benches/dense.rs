//! Dense layer and `digits-mlp` training benches (single thread).
//!
//! `cargo bench -p tinytrain-benches --bench dense`
//!
//! Training throughput is forward + backward + optimizer step, as in the PyTorch baselines;
//! data comes from a pre-filled in-memory set (the baselines also exclude data loading).
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tinytrain::prelude::*;
use tinytrain::zoo::DigitsMlp;

type DigitsAdam = Adam<{ <DigitsMlp as Layer>::NUM_PARAMS }>;

fn samples() -> Vec<([f32; 64], usize)> {
    let mut rng = Rng::new(11);
    (0..256).map(|i| (core::array::from_fn(|_| rng.next_f32()), i % 10)).collect()
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
    let cfg = AdamConfig::default();
    let mut g = c.benchmark_group("digits_mlp");
    for batch in [1usize, 32] {
        let mut t = Box::new(Trainer::<DigitsMlp, DigitsAdam>::ZERO);
        t.model.init_with(Init::TorchDefault, &mut Rng::new(0));
        let mut next = 0;
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_function(format!("train_step_batch_{batch}"), |b| {
            b.iter(|| {
                let scale = 1.0 / batch as f32;
                for _ in 0..batch {
                    let (x, label) = &data[next % data.len()];
                    next += 1;
                    t.x = *x;
                    t.accumulate(&CrossEntropy, label, scale, &mut Mode::Infer).unwrap();
                }
                black_box(t.apply(&cfg, None));
            });
        });
    }
    let mut t = Box::new(Trainer::<DigitsMlp, DigitsAdam>::ZERO);
    t.model.init_with(Init::TorchDefault, &mut Rng::new(0));
    let x = data[3].0;
    g.throughput(Throughput::Elements(1));
    g.bench_function("inference", |b| {
        b.iter(|| {
            let mut y = [0.0f32; 10];
            t.model.predict(black_box(&x), &mut t.acts, &mut y);
            black_box(y)
        });
    });
    g.finish();
}

criterion_group!(benches, dense, digits_training);
criterion_main!(benches);
