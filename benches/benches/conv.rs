//! Convolution and `mnist-cnn` benches: the Keras `mnist_cnn` network trained with Adadelta at
//! batch 128 and batch 1, inference of one sample, and the big convolution alone.
//!
//! ```text
//! cargo bench -p tinytrain-benches --bench conv                        # everything
//! cargo bench -p tinytrain-benches --bench conv -- mnist-cnn/inference  # one of them
//! ```
//!
//! FLOPs per sample (multiply and add counted as two), forward / training: conv2 21.2 M /
//! 63.7 M, dense 9216x128 2.36 M / 7.1 M, the whole network 24.0 M / 71.5 M (conv1 needs no
//! input gradient). Criterion's `elem/s` for the convolution and dense groups is FLOP/s. The
//! host's kernels are picked at run time (AVX-512, else AVX2, else the portable code; same bits).
//!
//! Measured on the 2-vCPU AMD EPYC development VM (AVX-512, 3.5-4.2 GHz), one thread, on
//! 2026-12-03; the machine is shared, expect ±30 % (the README's Results section has the
//! ratios against PyTorch from `baselines/compare.py`):
//!
//! | | AVX-512 (picked at run time) |
//! |---|---:|
//! | conv2 forward | 94-102 µs, 208-226 GFLOP/s |
//! | conv2 backward (weights + input) | 263-300 µs, 142-161 GFLOP/s |
//! | dense 9216 -> 128 forward | 47-55 µs (4.7 MB of weights) |
//! | inference, batch 1 | 150-171 µs |
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tinytrain::prelude::*;
use tinytrain::zoo::MnistCnn;

type Opt = Adadelta<{ <MnistCnn as Layer>::NUM_PARAMS }>;
type Conv2 = Conv2d<32, 64, 3, 1, 0, 26, 26, 24, 24>;

/// MNIST-like synthetic images: about 80 % zero pixels, the rest in (0, 1].
fn images(n: usize, seed: u64) -> Vec<([[[f32; 28]; 28]; 1], usize)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let mut x = [[[0.0f32; 28]; 28]; 1];
            for v in x.flat_mut() {
                if rng.next_f32() < 0.2 {
                    *v = 1.0 - rng.next_f32();
                }
            }
            (x, rng.below(10) as usize)
        })
        .collect()
}

fn trainer() -> Box<Trainer<MnistCnn, Opt>> {
    let mut t: Box<Trainer<MnistCnn, Opt>> = Box::new(Trainer::ZERO);
    t.model.init(&mut Rng::new(0));
    t
}

fn train_steps(t: &mut Trainer<MnistCnn, Opt>, data: &[([[[f32; 28]; 28]; 1], usize)], batch: usize, mode: &mut Mode) {
    let cfg = AdadeltaConfig::default();
    for chunk in data.chunks(batch) {
        let scale = 1.0 / chunk.len() as f32;
        for (x, label) in chunk {
            t.x = *x;
            t.accumulate(&CrossEntropy, label, scale, mode).unwrap();
        }
        t.apply(&cfg, None);
    }
}

fn mnist_cnn(c: &mut Criterion) {
    let data = images(128, 1);
    let mut t = trainer();
    let mut mode = Mode::Train(Rng::new(5));
    train_steps(&mut t, &data, 128, &mut mode);

    let mut g = c.benchmark_group("mnist-cnn");
    g.sample_size(10).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(128));
    g.bench_function("train batch 128 (Adadelta)", |b| b.iter(|| train_steps(&mut t, &data, 128, &mut mode)));
    g.throughput(Throughput::Elements(16));
    g.bench_function("train batch 1 (Adadelta)", |b| b.iter(|| train_steps(&mut t, &data[..16], 1, &mut mode)));
    g.throughput(Throughput::Elements(1));
    g.bench_function("inference", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % data.len();
            black_box(t.predict(&data[i].0).unwrap()[0])
        });
    });
    g.finish();
}

/// A zero tensor of `N` channels on the heap, never on the stack.
fn boxed_zeros<T: Zero + Clone + std::fmt::Debug, const N: usize>() -> Box<[T; N]> {
    vec![T::ZERO; N].into_boxed_slice().try_into().unwrap()
}

fn layers(c: &mut Criterion) {
    let mut rng = Rng::new(2);
    let mut conv: Box<Conv2> = Box::new(Conv2::ZERO);
    conv.init(&mut rng);
    let mut grads: Box<Conv2> = Box::new(Conv2::ZERO);
    let mut x: Box<[[[f32; 26]; 26]; 32]> = boxed_zeros();
    x.flat_mut().iter_mut().for_each(|v| *v = rng.uniform(-1.0, 1.0).max(0.0));
    let mut y: Box<[[[f32; 24]; 24]; 64]> = boxed_zeros();
    let mut dy: Box<[[[f32; 24]; 24]; 64]> = boxed_zeros();
    dy.flat_mut().iter_mut().for_each(|v| *v = rng.uniform(-1.0, 1.0));
    let mut dx: Box<[[[f32; 26]; 26]; 32]> = boxed_zeros();

    let mut g = c.benchmark_group("conv 32->64 3x3 on 26x26");
    g.sample_size(20).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    // Elements = floating-point operations, so criterion's "elem/s" reads as FLOP/s.
    g.throughput(Throughput::Elements(2 * 64 * 24 * 24 * 32 * 9));
    g.bench_function("forward", |b| b.iter(|| conv.forward(&x, &mut (), &mut y, &mut Mode::Infer)));
    g.throughput(Throughput::Elements(4 * 64 * 24 * 24 * 32 * 9));
    g.bench_function("backward (weights and input)", |b| {
        b.iter(|| conv.backward(&x, &(), &y, &dy, &mut (), Some(&mut grads), Some(&mut dx)));
    });
    g.throughput(Throughput::Elements(2 * 64 * 24 * 24 * 32 * 9));
    g.bench_function("backward (weights only)", |b| {
        b.iter(|| conv.backward(&x, &(), &y, &dy, &mut (), Some(&mut grads), None));
    });
    g.finish();

    // mnist-cnn's dense layer: 4.7 MB of weights, more than the caches close to the core.
    let mut dense: Box<Dense<9216, 128>> = Box::new(Dense::ZERO);
    dense.init(&mut rng);
    let mut v: Box<[f32; 9216]> = boxed_zeros();
    v.iter_mut().for_each(|e| *e = rng.uniform(-1.0, 1.0).max(0.0));
    let mut h = [0.0f32; 128];
    let mut g = c.benchmark_group("dense 9216->128");
    g.sample_size(20).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(2 * 9216 * 128));
    g.bench_function("forward", |b| b.iter(|| dense.forward(&v, &mut (), &mut h, &mut Mode::Infer)));
    g.finish();
}

criterion_group!(benches, layers, mnist_cnn);
criterion_main!(benches);
