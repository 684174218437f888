//! Batched inference (`Layer::predict4`, `evaluate4`) gives the bits of one sample at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tinytrain::loss::CrossEntropy;
use tinytrain::prelude::*;
use tinytrain::train::{Batch4, evaluate4};
use tinytrain::zoo::{DigitsBnMlp, DigitsMlp, MnistCnnTiny};

fn check<M: Layer>(seed: u64, samples: usize)
where
    CrossEntropy: Loss<M::Output, Target = usize>,
    M::Input: Clone,
{
    let mut t: Box<Trainer<M, Sgd>> = Box::new(Trainer::ZERO);
    t.model.init(&mut Rng::new(seed));
    let mut rng = Rng::new(seed + 1);
    let data: Vec<(M::Input, usize)> = (0..samples)
        .map(|i| {
            let mut x = M::Input::ZERO;
            x.flat_mut().iter_mut().for_each(|v| *v = rng.uniform(-1.0, 2.0));
            (x, i % 10)
        })
        .collect();
    let one = t.evaluate(&CrossEntropy, &data[..]).unwrap();
    let mut batch: Box<Batch4<M>> = Box::new(Batch4::ZERO);
    let four = evaluate4(&t.model, &mut batch, &CrossEntropy, &data[..]).unwrap();
    assert_eq!((one.loss.to_bits(), one.correct), (four.loss.to_bits(), four.correct), "{samples} samples");
    for chunk in data.chunks(4) {
        for (dst, (x, _)) in batch.x.iter_mut().zip(chunk) {
            *dst = x.clone();
        }
        batch.predict(&t.model, chunk.len());
        for (y, (x, _)) in batch.y.iter().zip(chunk) {
            t.x = x.clone();
            let single: Vec<u32> = t.infer().flat().iter().map(|v| v.to_bits()).collect();
            let batched: Vec<u32> = y.flat().iter().map(|v| v.to_bits()).collect();
            assert_eq!(single, batched);
        }
    }
}

#[test]
fn four_at_a_time_gives_the_bits_of_one_at_a_time() {
    for n in [1, 3, 4, 5, 33] {
        check::<DigitsMlp>(7, n);
    }
    check::<DigitsBnMlp>(8, 10);
    check::<MnistCnnTiny>(9, 6);
}
