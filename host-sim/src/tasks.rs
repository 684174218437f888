//! Tasks: how a kind of model gets its data and its loss. Each task is a module with generic
//! functions, `train::<M, O, U>`, `eval::<M>` and `predict::<M>` on the model's own data, and
//! `fit_arrays::<M, O>` and `eval_arrays::<M>` on samples handed over as arrays
//! ([`crate::session`]), that the model registry calls with a concrete network; the bounds on
//! `M` say which networks fit the task.
//!
//! - [`classify`]: images with class labels from IDX files, softmax cross-entropy on 10
//!   logits; any input tensor of `rows · cols` elements (a vector for an MLP, CHW for a CNN).
//! - [`xor`]: the four XOR samples built in, mean squared error on one sigmoid output.
//! - [`sine`]: y = sin(x) + noise on [0, 2π], generated from a seed (the TensorFlow Lite
//!   Micro "hello world" data), mean squared error.

/// Image classification with softmax cross-entropy.
pub mod classify {
    use std::io::Write;

    use anyhow::{Result, bail};
    use tinytrain::prelude::{CrossEntropy, Eval, FitConfig, Layer, Optimizer, Tensor};
    use tinytrain::tensor::argmax;
    use tinytrain::train::UnitMonitor;

    use crate::session::{self, Fitted, Labelled, Samples};

    use crate::datasets::{self, ImageSet, Split};
    use crate::predict::{self, PredictOptions};
    use crate::run::{self, EvalOptions, TrainOptions, TrainOutcome};
    use crate::spec::{Data, ModelSpec};

    /// Classes of every image dataset here.
    pub const CLASSES: usize = 10;

    fn kind(model: &ModelSpec) -> Result<datasets::DatasetKind> {
        match model.data {
            Data::Images(kind) => Ok(kind),
            Data::Builtin => bail!("model {} has no image dataset", model.name),
        }
    }

    /// Checks that the images fit the network's input.
    fn check_input<M: Layer>(model: &ModelSpec, set: &ImageSet) -> Result<()> {
        let len = <M::Input as Tensor>::LEN;
        if set.sample_len() != len {
            bail!(
                "{}: images of {}x{} = {} pixels do not fit model {}, which takes {len} inputs",
                set.images_path.display(),
                set.rows,
                set.cols,
                set.sample_len(),
                model.name
            );
        }
        Ok(())
    }

    fn describe(what: &str, set: &ImageSet) -> String {
        format!(
            "{what}: {} images of {}x{} from {} and {}\n",
            set.len(),
            set.rows,
            set.cols,
            set.images_path.display(),
            set.labels_path.display()
        )
    }

    /// Trains on the model's training set, validating on its test set.
    ///
    /// # Errors
    /// Missing or invalid data files, and whatever [`run::train`] reports.
    pub fn train<M, O, U>(
        model: &ModelSpec,
        opts: &TrainOptions,
        cfg: &O::Config,
        monitor: &mut U,
        out: &mut dyn Write,
    ) -> Result<TrainOutcome>
    where
        M: Layer<Output = [f32; CLASSES]>,
        O: Optimizer,
        U: UnitMonitor,
    {
        let data = datasets::load(kind(model)?, &opts.data_dir)?;
        check_input::<M>(model, &data.train)?;
        check_input::<M>(model, &data.test)?;
        let note = describe("train", &data.train) + &describe("test", &data.test);
        let train = data.train.byte_images(CLASSES)?;
        let test = data.test.byte_images(CLASSES)?;
        let no_mae = None::<&CrossEntropy>;
        run::train::<M, O, _, _, _, _, _>(model, &note, opts, cfg, &CrossEntropy, no_mae, &train, &test, monitor, out)
    }

    /// Evaluates saved weights on the model's test set.
    ///
    /// # Errors
    /// Missing or invalid data or weights files.
    pub fn eval<M>(model: &ModelSpec, opts: &EvalOptions, out: &mut dyn Write) -> Result<Eval>
    where
        M: Layer<Output = [f32; CLASSES]>,
    {
        let test = datasets::load_split(kind(model)?, Split::Test, &opts.data_dir)?;
        check_input::<M>(model, &test)?;
        let note = describe("test", &test);
        let images = test.byte_images(CLASSES)?;
        run::evaluate::<M, _, _, _>(model, &note, opts, &CrossEntropy, None::<&CrossEntropy>, &images, out)
    }

    /// Trains `net` on samples given as arrays ([`crate::session`]), with integer labels.
    ///
    /// # Errors
    /// Bad samples or labels; whatever [`session::fit`] reports.
    pub fn fit_arrays<M, O>(
        net: &mut M,
        cfg: &O::Config,
        opts: &FitConfig,
        train: &Samples<'_>,
        val: Option<&Samples<'_>>,
    ) -> Result<Fitted>
    where
        M: Layer<Output = [f32; CLASSES]>,
        O: Optimizer,
    {
        let len = <M::Input as Tensor>::LEN;
        let train = Labelled::new(train, len, CLASSES)?;
        let val = val.map(|v| Labelled::new(v, len, CLASSES)).transpose()?;
        session::fit::<M, O, _, _>(net, cfg, opts, &CrossEntropy, &train, val.as_ref())
    }

    /// Evaluates `net` on samples given as arrays, with integer labels.
    ///
    /// # Errors
    /// Bad samples or labels.
    pub fn eval_arrays<M>(net: &M, data: &Samples<'_>) -> Result<Eval>
    where
        M: Layer<Output = [f32; CLASSES]>,
    {
        let data = Labelled::new(data, <M::Input as Tensor>::LEN, CLASSES)?;
        session::evaluate(net, &CrossEntropy, &data)
    }

    /// Prints every test sample's prediction, label and logits ([`crate::predict`]).
    ///
    /// # Errors
    /// Missing or invalid data or weights files.
    pub fn predict<M>(model: &ModelSpec, opts: &PredictOptions, out: &mut dyn Write) -> Result<Eval>
    where
        M: Layer<Output = [f32; CLASSES]>,
    {
        let test = datasets::load_split(kind(model)?, Split::Test, &opts.data_dir)?;
        check_input::<M>(model, &test)?;
        let images = test.byte_images(CLASSES)?;
        predict::predict::<M, _, _>(model, opts, &CrossEntropy, &images, |&t| t, |y| argmax(y), out)
    }
}

/// XOR on its four samples, mean squared error.
pub mod xor {
    use std::io::Write;

    use anyhow::Result;
    use tinytrain::prelude::{Eval, FitConfig, Layer, Mse, Optimizer, Tensor};
    use tinytrain::train::UnitMonitor;

    use crate::session::{self, Fitted, Samples, Valued};

    use crate::predict::{self, PredictOptions};
    use crate::run::{self, EvalOptions, TrainOptions, TrainOutcome};
    use crate::spec::ModelSpec;

    /// The four XOR samples, inputs and targets.
    pub const SAMPLES: [([f32; 2], [f32; 1]); 4] =
        [([0.0, 0.0], [0.0]), ([0.0, 1.0], [1.0]), ([1.0, 0.0], [1.0]), ([1.0, 1.0], [0.0])];

    /// Trains on the four samples and validates on the same four.
    ///
    /// # Errors
    /// Whatever [`run::train`] reports.
    pub fn train<M, O, U>(
        model: &ModelSpec,
        opts: &TrainOptions,
        cfg: &O::Config,
        monitor: &mut U,
        out: &mut dyn Write,
    ) -> Result<TrainOutcome>
    where
        M: Layer<Input = [f32; 2], Output = [f32; 1]>,
        O: Optimizer,
        U: UnitMonitor,
    {
        let note = "data: the 4 XOR samples (built in), for training and testing\n";
        let (data, no_mae) = (&SAMPLES[..], None::<&Mse>);
        run::train::<M, O, _, _, _, _, _>(model, note, opts, cfg, &Mse::MEAN, no_mae, data, data, monitor, out)
    }

    /// Evaluates saved weights on the four samples.
    ///
    /// # Errors
    /// A missing or invalid weights file.
    pub fn eval<M>(model: &ModelSpec, opts: &EvalOptions, out: &mut dyn Write) -> Result<Eval>
    where
        M: Layer<Input = [f32; 2], Output = [f32; 1]>,
    {
        let note = "data: the 4 XOR samples (built in)\n";
        run::evaluate::<M, _, _, _>(model, note, opts, &Mse::MEAN, None::<&Mse>, &SAMPLES[..], out)
    }

    /// Trains `net` on samples given as arrays ([`crate::session`]), with target values.
    ///
    /// # Errors
    /// Bad samples or targets; whatever [`session::fit`] reports.
    pub fn fit_arrays<M, O>(
        net: &mut M,
        cfg: &O::Config,
        opts: &FitConfig,
        train: &Samples<'_>,
        val: Option<&Samples<'_>>,
    ) -> Result<Fitted>
    where
        M: Layer<Input = [f32; 2], Output = [f32; 1]>,
        O: Optimizer,
    {
        let train = Valued::new(train, <M::Input as Tensor>::LEN, 1)?;
        let val = val.map(|v| Valued::new(v, <M::Input as Tensor>::LEN, 1)).transpose()?;
        session::fit::<M, O, _, _>(net, cfg, opts, &Mse::MEAN, &train, val.as_ref())
    }

    /// Evaluates `net` on samples given as arrays, with target values.
    ///
    /// # Errors
    /// Bad samples or targets.
    pub fn eval_arrays<M>(net: &M, data: &Samples<'_>) -> Result<Eval>
    where
        M: Layer<Input = [f32; 2], Output = [f32; 1]>,
    {
        let data = Valued::new(data, <M::Input as Tensor>::LEN, 1)?;
        session::evaluate(net, &Mse::MEAN, &data)
    }

    /// Prints the prediction (output rounded to 0 or 1), label and output of each sample.
    ///
    /// # Errors
    /// A missing or invalid weights file.
    pub fn predict<M>(model: &ModelSpec, opts: &PredictOptions, out: &mut dyn Write) -> Result<Eval>
    where
        M: Layer<Input = [f32; 2], Output = [f32; 1]>,
    {
        let class = |v: f32| usize::from(v >= 0.5);
        predict::predict::<M, _, _>(model, opts, &Mse::MEAN, &SAMPLES[..], |t| class(t[0]), |y| class(y[0]), out)
    }
}

/// The TensorFlow Lite Micro "hello world" task: y = sin(x) for x in [0, 2π], with Gaussian
/// noise of standard deviation 0.1 on the targets, 800 training and 200 test samples drawn from
/// fixed seeds. Mean squared error; `train` and `eval` end with the test MSE and MAE.
pub mod sine {
    use std::io::Write;

    use anyhow::Result;
    use tinytrain::prelude::{Eval, FitConfig, Layer, Mae, Mse, Optimizer, Rng, Tensor};
    use tinytrain::train::UnitMonitor;

    use crate::session::{self, Fitted, Samples, Valued};

    use crate::predict::{self, PredictOptions};
    use crate::run::{self, EvalOptions, TrainOptions, TrainOutcome};
    use crate::spec::ModelSpec;

    /// Training samples.
    pub const TRAIN: usize = 800;
    /// Test samples.
    pub const TEST: usize = 200;

    /// `n` samples of `(x, sin(x) + 0.1·noise)` drawn from `seed`.
    #[must_use]
    pub fn samples(n: usize, seed: u64) -> Vec<([f32; 1], [f32; 1])> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|_| {
                let x = rng.uniform(0.0, 2.0 * core::f32::consts::PI);
                ([x], [libm::sinf(x) + 0.1 * rng.normal()])
            })
            .collect()
    }

    fn note() -> String {
        format!("data: y = sin(x) + noise on [0, 2pi], {TRAIN} training and {TEST} test samples (generated)\n")
    }

    /// Trains on the generated training set, validating on the test set.
    ///
    /// # Errors
    /// Whatever [`run::train`] reports.
    pub fn train<M, O, U>(
        model: &ModelSpec,
        opts: &TrainOptions,
        cfg: &O::Config,
        monitor: &mut U,
        out: &mut dyn Write,
    ) -> Result<TrainOutcome>
    where
        M: Layer<Input = [f32; 1], Output = [f32; 1]>,
        O: Optimizer,
        U: UnitMonitor,
    {
        let (train, test) = (samples(TRAIN, 1), samples(TEST, 2));
        run::train::<M, O, _, _, _, _, _>(
            model,
            &note(),
            opts,
            cfg,
            &Mse::MEAN,
            Some(&Mae),
            &train[..],
            &test[..],
            monitor,
            out,
        )
    }

    /// Evaluates saved weights on the test set.
    ///
    /// # Errors
    /// A missing or invalid weights file.
    pub fn eval<M>(model: &ModelSpec, opts: &EvalOptions, out: &mut dyn Write) -> Result<Eval>
    where
        M: Layer<Input = [f32; 1], Output = [f32; 1]>,
    {
        run::evaluate::<M, _, _, _>(model, &note(), opts, &Mse::MEAN, Some(&Mae), &samples(TEST, 2)[..], out)
    }

    /// Trains `net` on samples given as arrays ([`crate::session`]), with target values.
    ///
    /// # Errors
    /// Bad samples or targets; whatever [`session::fit`] reports.
    pub fn fit_arrays<M, O>(
        net: &mut M,
        cfg: &O::Config,
        opts: &FitConfig,
        train: &Samples<'_>,
        val: Option<&Samples<'_>>,
    ) -> Result<Fitted>
    where
        M: Layer<Input = [f32; 1], Output = [f32; 1]>,
        O: Optimizer,
    {
        let train = Valued::new(train, <M::Input as Tensor>::LEN, 1)?;
        let val = val.map(|v| Valued::new(v, <M::Input as Tensor>::LEN, 1)).transpose()?;
        session::fit::<M, O, _, _>(net, cfg, opts, &Mse::MEAN, &train, val.as_ref())
    }

    /// Evaluates `net` on samples given as arrays, with target values.
    ///
    /// # Errors
    /// Bad samples or targets.
    pub fn eval_arrays<M>(net: &M, data: &Samples<'_>) -> Result<Eval>
    where
        M: Layer<Input = [f32; 1], Output = [f32; 1]>,
    {
        let data = Valued::new(data, <M::Input as Tensor>::LEN, 1)?;
        session::evaluate(net, &Mse::MEAN, &data)
    }

    /// Prints each test sample's output and target (the class columns are 0: a regression).
    ///
    /// # Errors
    /// A missing or invalid weights file.
    pub fn predict<M>(model: &ModelSpec, opts: &PredictOptions, out: &mut dyn Write) -> Result<Eval>
    where
        M: Layer<Input = [f32; 1], Output = [f32; 1]>,
    {
        predict::predict::<M, _, _>(model, opts, &Mse::MEAN, &samples(TEST, 2)[..], |_| 0, |_| 0, out)
    }
}
