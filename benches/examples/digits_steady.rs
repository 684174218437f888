//! `digits-mlp` at batch 1 over many Adam steps: throughput per window of steps, the time of
//! forward + backward and of the update, the steps whose loss gradient held a subnormal, and a
//! census of subnormal values (parameters, one sample's gradients, logits, loss gradient,
//! activations, optimizer state) at the end of each window (1,000 steps up to 10,000, then
//! 10,000). The optimizer state is read through its `Debug` output.
//!
//! `cargo run --release -p tinytrain-benches --example digits_steady [STEPS]`
#![allow(missing_docs, clippy::unwrap_used)]
use std::time::{Duration, Instant};

use tinytrain::prelude::*;
use tinytrain::zoo::DigitsMlp;
use tinytrain_sim::datasets::{self, DatasetKind, Split};

type Opt = Adam<{ <DigitsMlp as Layer>::NUM_PARAMS }>;

fn subnormal(x: &[f32]) -> usize {
    x.iter().filter(|v| v.is_subnormal()).count()
}

fn main() {
    let steps: usize = std::env::args().nth(1).map_or(200_000, |s| s.parse().unwrap());
    let set = datasets::load_split(DatasetKind::Digits, Split::Train, &datasets::workspace_data_dir()).unwrap();
    let images = set.byte_images(10).unwrap();
    let n = Dataset::<[f32; 64], usize>::len(&images);
    let data: Vec<([f32; 64], usize)> = (0..n)
        .map(|i| {
            let mut s = ([0.0f32; 64], 0usize);
            images.get(i, &mut s.0, &mut s.1).unwrap();
            s
        })
        .collect();
    let mut t: Box<Trainer<DigitsMlp, Opt>> = Box::new(Trainer::ZERO);
    t.model.init_with(Init::TorchDefault, &mut Rng::new(0));
    let cfg = AdamConfig::default();
    println!(
        "steps     samples/s  fwd+bwd ns  update ns  steps with subnormal dlogits  subnormal: params grads logits dlogits acts opt_state"
    );
    let mut start = Instant::now();
    let (mut fwd_bwd, mut update) = (Duration::ZERO, Duration::ZERO);
    let mut tiny_steps = 0;
    for step in 1..=steps {
        let (x, label) = &data[(step * 7) % n];
        t.x = *x;
        let a = Instant::now();
        t.accumulate(&CrossEntropy, label, 1.0, &mut Mode::Infer).unwrap();
        fwd_bwd += a.elapsed();
        tiny_steps += usize::from(t.dy.iter().any(|v| v.is_subnormal()));
        // Windows of 1,000 steps up to 10,000, of 10,000 after.
        let window = if step <= 10_000 { 1_000 } else { 10_000 };
        let report = step % window == 0;
        if report {
            let elapsed = start.elapsed();
            let mut params = 0;
            t.model.visit(&mut |_, p| params += subnormal(p));
            let mut grads = 0;
            DigitsMlp::visit_grads(&t.grads, &mut |g| grads += subnormal(g));
            let mut acts = 0;
            DigitsMlp::visit_outputs(&t.acts, &t.y, &mut |_, out| acts += subnormal(out));
            let state = format!("{:?}", t.opt);
            let opt = state
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
                .filter_map(|w| w.parse::<f32>().ok())
                .filter(|v| v.is_subnormal())
                .count();
            println!(
                "{step:>7} {:>11.0} {:>10.0} {:>10.0} {tiny_steps:>29} {params:>17} {grads:>5} {:>6} {:>7} {acts:>4} {opt:>9}",
                window as f64 / elapsed.as_secs_f64(),
                fwd_bwd.as_nanos() as f64 / window as f64,
                update.as_nanos() as f64 / window as f64,
                subnormal(&t.y),
                subnormal(&t.dy),
            );
        }
        let a = Instant::now();
        t.apply(&cfg, None);
        update += a.elapsed();
        if report {
            (fwd_bwd, update, tiny_steps) = (Duration::ZERO, Duration::ZERO, 0);
            start = Instant::now();
        }
    }
}
