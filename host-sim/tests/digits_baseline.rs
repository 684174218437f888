//! The digits MLP with the PyTorch baseline's settings (Adam lr 1e-3, batch 32, 30 epochs,
//! PyTorch's default init, cross-entropy) reaches at least the baseline's test accuracy on the
//! shipped sequential split: PyTorch gets 0.8889, 0.8944, 0.8917 for seeds 0, 1, 2.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tinytrain::Init;
use tinytrain_sim::models;
use tinytrain_sim::optimizers::OptimizerConfig;
use tinytrain_sim::run::TrainOptions;

#[test]
fn digits_mlp_reaches_the_pytorch_baseline() {
    let model = models::find("digits-mlp").unwrap();
    let opts = TrainOptions {
        progress: false,
        data_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data"),
        ..TrainOptions::defaults(model)
    };
    // The defaults are the baseline's settings.
    let OptimizerConfig::Adam(adam) = opts.optimizer else { panic!("default optimizer {:?}", opts.optimizer) };
    assert_eq!((adam.lr.initial(), adam.beta1, adam.beta2, adam.eps), (1e-3, 0.9, 0.999, 1e-8));
    assert_eq!((opts.fit.batch_size, opts.fit.epochs, opts.init), (32, 30, Init::TorchDefault));

    for seed in [0, 1, 2] {
        let opts = TrainOptions { fit: tinytrain::train::FitConfig { seed, ..opts.fit }, ..opts.clone() };
        let outcome = model.train(&opts, &mut std::io::sink()).unwrap();
        assert_eq!(outcome.test.samples, 360);
        assert!(outcome.test.accuracy >= 0.889, "seed {seed}: test accuracy {}", outcome.test.accuracy);
        assert_eq!(outcome.report.epochs_run, 30);
    }
}
