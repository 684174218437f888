//! Where a batch-1 training step of mnist-cnn goes: forward+backward, finite check, update.
#![allow(missing_docs, clippy::unwrap_used)]
use std::time::Instant;
use tinytrain::optim::{Adadelta, AdadeltaConfig};
use tinytrain::prelude::*;
use tinytrain::zoo::MnistCnn;
type Opt = Adadelta<{ <MnistCnn as Layer>::NUM_PARAMS }>;
fn main() {
    let mut t: Box<Trainer<MnistCnn, Opt>> = Box::new(Trainer::ZERO);
    t.model.init(&mut Rng::new(0));
    let cfg = AdadeltaConfig::default();
    let mut mode = Mode::Train(Rng::new(1));
    let mut rng = Rng::new(5);
    for step in 0..40 {
        for v in t.x.flat_mut() {
            *v = if rng.next_f32() < 0.2 { rng.next_f32() } else { 0.0 };
        }
        let a = Instant::now();
        t.accumulate(&CrossEntropy, &(step % 10), 1.0, &mut mode).unwrap();
        let b = Instant::now();
        let finite = MnistCnn::grads_finite(&t.grads);
        let c = Instant::now();
        t.opt.step(&cfg, &mut t.model, &t.grads);
        let d = Instant::now();
        MnistCnn::zero_grads(&mut t.grads);
        let e = Instant::now();
        if step % 8 == 7 {
            println!(
                "step {step}: fwd+bwd {:?} finite-check {:?} ({finite}) update {:?} zero {:?}",
                b - a,
                c - b,
                d - c,
                e - d
            );
        }
    }
}
