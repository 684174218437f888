//! The convolutional networks of the zoo: the Keras `mnist_cnn` summary and memory budget,
//! the tiny CNN that trains in 96 KB, and end-to-end training on the shipped MNIST subset
//! (8000 training and 2000 test images, pixels / 255).
//!
//! The `mnist-cnn` run (Adadelta, batch 128, 3 epochs, as the PyTorch baseline) takes about
//! 75 s in release mode (much longer in a debug build), so it is ignored by default; CI runs it
//! with `cargo test --release -p tinytrain-tests --test cnn -- --ignored`. It reached 0.9635
//! after 3 epochs (baseline 0.9425); with `MNIST_CNN_EPOCHS=12` it prints every epoch and
//! reached 0.9810 after 12 (baseline 0.9790).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tinytrain::prelude::*;
use tinytrain::zoo::{MnistCnn, MnistCnnTiny};
use tinytrain_sim::datasets::{DatasetKind, TrainTest, load, workspace_data_dir};

type CnnOpt = Adadelta<{ <MnistCnn as Layer>::NUM_PARAMS }>;
type TinyOpt = Adam<{ <MnistCnnTiny as Layer>::NUM_PARAMS }>;

/// Runs `f` on a thread with a stack large enough for unoptimised builds of big values.
fn with_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(256 << 20).spawn(f).unwrap().join().unwrap()
}

fn mnist() -> TrainTest {
    load(DatasetKind::Mnist, &workspace_data_dir()).expect("the MNIST subset ships in data/")
}

#[test]
fn mnist_cnn_has_the_keras_parameter_count_and_rows() {
    assert_eq!(MnistCnn::NUM_PARAMS, 1_199_882);
    let s = Summary::<MnistCnn, CnnOpt>::new("mnist-cnn").to_string();
    assert!(s.contains("Total params: 1,199,882"), "{s}");
    let rows: Vec<String> = s.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    for row in [
        "conv2d_0 (Conv2D)           (None, 32, 26, 26)               320",
        "relu_1 (ReLU)               (None, 32, 26, 26)                 0",
        "conv2d_2 (Conv2D)           (None, 64, 24, 24)            18,496",
        "maxpool2d_4 (MaxPool2D)     (None, 64, 12, 12)                 0",
        "dropout_5 (Dropout)         (None, 64, 12, 12)                 0",
        "flatten_6 (Flatten)         (None, 9216)                       0",
        "dense_7 (Dense)             (None, 128)                1,179,776",
        "dropout_9 (Dropout)         (None, 128)                        0",
        "dense_10 (Dense)            (None, 10)                     1,290",
    ] {
        let row = row.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(rows.contains(&row), "missing row {row:?} in\n{s}");
    }
}

#[test]
fn summary_memory_is_the_size_of_the_trainer() {
    let s = Summary::<MnistCnn, CnnOpt>::new("mnist-cnn");
    assert_eq!(s.training_bytes(), size_of::<Trainer<MnistCnn, CnnOpt>>());
    assert_eq!(s.optimizer_bytes, 2 * 4 * 1_199_882 + 4);
    let t = Summary::<MnistCnnTiny, TinyOpt>::new("mnist-cnn-tiny");
    assert_eq!(t.training_bytes(), size_of::<Trainer<MnistCnnTiny, TinyOpt>>());
    assert!(t.training_bytes() <= 96 * 1024, "tiny CNN trains in {} bytes", t.training_bytes());
}

#[test]
fn a_wrong_cnn_shape_in_the_summary_cannot_happen() {
    // The layer shapes line up: the output of the last conv is what Flatten takes.
    assert_eq!(<MnistCnn as Layer>::Input::SHAPE, [1, 28, 28]);
    assert_eq!(<MnistCnnTiny as Layer>::Input::SHAPE, [1, 28, 28]);
    assert_eq!(<MnistCnn as Layer>::RELU_UNITS, 32 * 26 * 26 + 64 * 24 * 24 + 128);
}

/// The tiny CNN's recipe: He uniform init, Adam (PyTorch form) lr 2e-3, batch 32, 20 epochs.
fn train_tiny(data: &TrainTest) -> (FitReport, Eval) {
    let train = data.train.byte_images(10).unwrap();
    let test = data.test.byte_images(10).unwrap();
    let mut t = Box::new(Trainer::<MnistCnnTiny, TinyOpt>::ZERO);
    t.model.init_with(Init::HeUniform, &mut Rng::new(0));
    let cfg = AdamConfig { lr: Schedule::Constant(2e-3), ..AdamConfig::default() };
    let fit = FitConfig { epochs: 20, batch_size: 32, seed: 0, ..FitConfig::default() };
    let report =
        t.fit_with(&cfg, &CrossEntropy, &train, None::<&ByteImages<'_>>, &fit, None, &mut (), &mut ()).unwrap();
    let eval = t.evaluate(&CrossEntropy, &test).unwrap();
    (report, eval)
}

#[test]
fn tiny_cnn_reaches_96_percent_in_96_kb() {
    let data = mnist();
    let (report, eval) = train_tiny(&data);
    println!("tiny CNN: train loss {:.4}, test accuracy {:.4}", report.last.train_loss, eval.accuracy);
    assert!(eval.accuracy >= 0.96, "test accuracy {}", eval.accuracy);
}

#[test]
#[ignore = "about 75 s in release mode: cargo test --release -p tinytrain-tests --test cnn -- --ignored"]
fn mnist_cnn_with_adadelta_matches_the_baseline_after_3_epochs() {
    let epochs: u32 = std::env::var("MNIST_CNN_EPOCHS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let accuracy = with_big_stack(move || {
        let data = mnist();
        let train = data.train.byte_images(10).unwrap();
        let test = data.test.byte_images(10).unwrap();
        let mut t: Box<Trainer<MnistCnn, CnnOpt>> = Box::new(Trainer::ZERO);
        t.model.init(&mut Rng::new(0));
        let fit = FitConfig { epochs: 1, batch_size: 128, seed: 0, ..FitConfig::default() };
        let mut accuracy = 0.0;
        for epoch in 1..=epochs {
            // One epoch per call so that each epoch's accuracy is printed; a fresh seed per
            // epoch keeps the shuffles and dropout masks different.
            let fit = FitConfig { seed: u64::from(epoch), ..fit };
            let r = t
                .fit_with(
                    &AdadeltaConfig::default(),
                    &CrossEntropy,
                    &train,
                    None::<&ByteImages<'_>>,
                    &fit,
                    None,
                    &mut (),
                    &mut (),
                )
                .unwrap();
            accuracy = t.evaluate(&CrossEntropy, &test).unwrap().accuracy;
            println!("epoch {epoch}: train loss {:.4}, test accuracy {accuracy:.4}", r.last.train_loss);
        }
        accuracy
    });
    if epochs >= 3 {
        assert!(accuracy >= 0.9425, "test accuracy after {epochs} epochs: {accuracy}");
    }
}
